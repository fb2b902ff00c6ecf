//! The model and its one generation at a time: a thread owns the loaded model and its context
//! (llama.cpp contexts are not shared across threads) and takes requests from a queue in
//! arrival order. Each request gets its text as events on its own channel; a request whose
//! channel closes (the client went away) stops generating at the next token.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use runtime::chat::{apply_template, fallback_template, Message};
use runtime::stream::StreamStats;
use runtime::{MoeOptions, PlannedModel, Sampling};

use crate::text::TextStream;

/// What to load and how to run it.
pub struct EngineConfig {
    pub model_path: PathBuf,
    pub plan: plan::Plan,
    /// Decode threads.
    pub threads: u32,
    /// Context size for a request that does not ask for one (at most the plan's).
    pub n_ctx: u32,
    /// A chat template by name or Jinja text (default: the GGUF's, else one for its
    /// architecture, else chatml).
    pub chat_template: Option<String>,
    /// How long the model stays loaded after a request that does not say.
    pub keep_alive: KeepAlive,
}

/// How long the model stays loaded after a request (Ollama's `keep_alive`); an unloaded model
/// is loaded again by the next request, which reports the time as its `load_duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeepAlive {
    Forever,
    For(Duration),
}

impl KeepAlive {
    /// Ollama's forms: seconds as a number, or a string (`"5m"`, `"1h30m"`, `"300"`, `"0"`);
    /// anything negative is forever.
    pub fn from_json(v: &serde_json::Value) -> Result<KeepAlive, String> {
        match v {
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(s) if s < 0.0 => Ok(KeepAlive::Forever),
                Some(s) if s.is_finite() && s < 1e12 => {
                    Ok(KeepAlive::For(Duration::from_secs_f64(s)))
                }
                _ => Err(format!("keep_alive {n} is not a number of seconds")),
            },
            serde_json::Value::String(s) => KeepAlive::parse(s),
            other => Err(format!(
                "keep_alive {other} is neither seconds nor a duration like \"5m\""
            )),
        }
    }

    /// `-1` (or anything negative: forever), seconds (`300`), or a duration (`5m`, `1h30m`).
    pub fn parse(s: &str) -> Result<KeepAlive, String> {
        let s = s.trim();
        if s.starts_with('-') {
            return Ok(KeepAlive::Forever);
        }
        if let Ok(secs) = s.parse::<f64>() {
            return KeepAlive::from_json(&serde_json::json!(secs));
        }
        humantime::parse_duration(s)
            .map(KeepAlive::For)
            .map_err(|e| format!("keep_alive {s:?}: {e} (give seconds, \"5m\" or -1 for ever)"))
    }

    /// When the model unloads if nothing arrives, from `now`; `None` for never.
    fn deadline(self, now: Instant) -> Option<Instant> {
        match self {
            KeepAlive::Forever => None,
            KeepAlive::For(d) => Some(
                now.checked_add(d)
                    .unwrap_or(now + Duration::from_secs(1 << 40)),
            ),
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub input: Input,
    /// Most tokens to generate (`None`: until the context is full or generation ends).
    pub n_predict: Option<usize>,
    pub sampling: Sampling,
    pub stop: Vec<String>,
    /// Context size for this request (at most the plan's; another size re-creates the context).
    pub num_ctx: Option<u32>,
    /// How long the model stays loaded after this request (default: the server's).
    pub keep_alive: Option<KeepAlive>,
}

#[derive(Debug, Clone)]
pub enum Input {
    /// Text tokenized as it is (a completion).
    Raw(String),
    /// A conversation, formatted with the chat template, the assistant's turn opened.
    Chat(Vec<Message>),
    /// Nothing to generate: load the model (Ollama's empty prompt), or unload it with a
    /// keep_alive of 0.
    Load,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// An end-of-generation token or a stop string.
    Stop,
    /// The token limit or the end of the context.
    Length,
}

/// What a finished request took.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt and generated token ids (Ollama's `context`).
    pub context: Vec<i32>,
    pub prompt_s: f64,
    pub decode_s: f64,
    /// From the request's arrival to its end, queueing included.
    pub total_s: f64,
    /// Loading the model for it (0 when it was loaded).
    pub load_s: f64,
    pub finish: Finish,
}

/// A request's failure that is the request's fault (HTTP 400) or the server's (500).
#[derive(Debug, Clone)]
pub struct Failure {
    pub bad_request: bool,
    pub message: String,
}

#[derive(Debug)]
pub enum Event {
    Text(String),
    Done(Outcome),
    Failed(Failure),
}

/// Totals since the server started, for `/metrics` and `/api/ps`.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub requests: u64,
    pub cancelled: u64,
    pub prompt_tokens: u64,
    pub prompt_s: f64,
    pub completion_tokens: u64,
    pub decode_s: f64,
    /// Decode steps (generated tokens after the first of each request).
    pub decode_steps: u64,
    /// Bytes read from storage during decode steps, as the kernel counts them.
    pub decode_read_bytes: u64,
    /// The streamer's counters (expert cache, reads, I/O wait, pool) since the context was made.
    pub stream: Option<StreamStats>,
    pub resident_stream_bytes: u64,
    /// Tokens per second of the last request's decode.
    pub last_decode_tok_per_s: f64,
}

/// The model's facts the APIs report.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub inventory: model::Inventory,
    pub plan: plan::Plan,
    pub template: String,
    pub n_ctx: u32,
    pub loaded_at: std::time::SystemTime,
}

/// The running engine: submit requests, read its totals.
pub struct Engine {
    jobs: Mutex<mpsc::Sender<Job>>,
    pub info: Arc<ModelInfo>,
    pub totals: Arc<Mutex<Totals>>,
    /// Requests waiting for the model.
    pub queued: Arc<AtomicU64>,
    /// Requests generating (0 or 1).
    pub busy: Arc<AtomicU64>,
    /// Whether the model is loaded now, and until when it stays (`None`: for ever).
    pub loaded: Arc<AtomicBool>,
    pub expires: Arc<Mutex<Option<SystemTime>>>,
}

struct Job {
    req: Request,
    events: tokio::sync::mpsc::Sender<Event>,
    arrived: Instant,
}

/// Events buffered per request before the generating thread waits for the client to read.
const EVENT_BUFFER: usize = 64;

impl Engine {
    /// Loads the model on its own thread; returns once it is loaded (or failed to).
    pub fn start(config: EngineConfig) -> Result<Engine, String> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<ModelInfo, String>>();
        let totals = Arc::new(Mutex::new(Totals::default()));
        let queued = Arc::new(AtomicU64::new(0));
        let busy = Arc::new(AtomicU64::new(0));
        let loaded = Arc::new(AtomicBool::new(false));
        let expires = Arc::new(Mutex::new(None));
        let worker = Worker {
            totals: totals.clone(),
            queued: queued.clone(),
            busy: busy.clone(),
            loaded: loaded.clone(),
            expires: expires.clone(),
        };
        std::thread::Builder::new()
            .name("hypura-model".into())
            .spawn(move || worker.run(config, queue, ready_tx))
            .map_err(|e| format!("cannot start the model thread: {e}"))?;
        let info = ready_rx
            .recv()
            .map_err(|_| "the model thread ended while loading".to_string())??;
        Ok(Engine {
            jobs: Mutex::new(jobs),
            info: Arc::new(info),
            totals,
            queued,
            busy,
            loaded,
            expires,
        })
    }

    /// Queues `req`; its events arrive on the returned channel.
    pub fn submit(&self, req: Request) -> tokio::sync::mpsc::Receiver<Event> {
        let (events, rx) = tokio::sync::mpsc::channel(EVENT_BUFFER);
        self.queued.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            req,
            events,
            arrived: Instant::now(),
        };
        if let Err(mpsc::SendError(job)) = self.jobs.lock().expect("not poisoned").send(job) {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            let _ = job.events.try_send(Event::Failed(Failure {
                bad_request: false,
                message: "the model thread has stopped".into(),
            }));
        }
        rx
    }
}

struct Worker {
    totals: Arc<Mutex<Totals>>,
    queued: Arc<AtomicU64>,
    busy: Arc<AtomicU64>,
    loaded: Arc<AtomicBool>,
    expires: Arc<Mutex<Option<SystemTime>>>,
}

/// Why the model stopped serving requests.
enum Unload {
    /// Idle past its keep_alive, or asked to: load again for the next request.
    Idle,
    /// The server is gone.
    Closed,
    /// Asked to unload by this request, answered once the model is gone.
    Asked(Job),
}

impl Worker {
    fn run(
        self,
        config: EngineConfig,
        queue: mpsc::Receiver<Job>,
        ready: mpsc::Sender<Result<ModelInfo, String>>,
    ) {
        let mut ready = Some(ready);
        // A request that arrived while the model was unloaded: served once it is loaded again.
        let mut pending: Option<Job> = None;
        loop {
            let started = Instant::now();
            let planned = match PlannedModel::load(&config.model_path, &config.plan, None) {
                Ok(p) => p,
                Err(e) => {
                    let msg = format!("cannot load {}: {e}", config.model_path.display());
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(msg));
                        return;
                    }
                    if let Some(job) = pending.take() {
                        fail(&job, false, msg);
                    }
                    match self.next(&queue) {
                        Some(job) => pending = Some(job),
                        None => return,
                    }
                    continue;
                }
            };
            let template = config.chat_template.clone().unwrap_or_else(|| {
                planned
                    .model
                    .chat_template()
                    .unwrap_or_else(|| fallback_template(&planned.inventory.arch.arch).to_string())
            });
            if let Some(r) = ready.take() {
                let info = ModelInfo {
                    path: config.model_path.clone(),
                    inventory: planned.inventory.clone(),
                    plan: config.plan.clone(),
                    template: template.clone(),
                    n_ctx: config.n_ctx.min(plan_ctx(&config)).max(1),
                    loaded_at: SystemTime::now(),
                };
                if r.send(Ok(info)).is_err() {
                    return;
                }
            }
            self.loaded.store(true, Ordering::SeqCst);
            let why = self.serve_while_loaded(
                &config,
                &planned,
                &template,
                &queue,
                &mut pending,
                started,
            );
            drop(planned);
            self.loaded.store(false, Ordering::SeqCst);
            if let Unload::Asked(job) = &why {
                answer_load(job, &self.totals, 0.0);
            }
            match why {
                Unload::Closed => return,
                Unload::Idle | Unload::Asked(_) => match self.next(&queue) {
                    Some(job) => pending = Some(job),
                    None => return,
                },
            }
        }
    }

    /// The next request, waiting for ever; `None` when the server is gone.
    fn next(&self, queue: &mpsc::Receiver<Job>) -> Option<Job> {
        let job = queue.recv().ok()?;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        Some(job)
    }

    /// Serves requests on the loaded model until it is idle past its keep_alive.
    fn serve_while_loaded(
        &self,
        config: &EngineConfig,
        planned: &PlannedModel,
        template: &str,
        queue: &mpsc::Receiver<Job>,
        pending: &mut Option<Job>,
        started: Instant,
    ) -> Unload {
        let plan_ctx = plan_ctx(config);
        let default_ctx = config.n_ctx.min(plan_ctx).max(1);
        let mut n_ctx = default_ctx;
        let mut ctx = match planned.context(&MoeOptions::default(), n_ctx, config.threads, false) {
            Ok(c) => c,
            Err(e) => {
                if let Some(job) = pending.take() {
                    fail(&job, false, format!("cannot make a context: {e}"));
                }
                return Unload::Idle;
            }
        };
        // The load's time is the first request's `load_duration`.
        let mut load_s = Some(started.elapsed().as_secs_f64());
        let mut deadline = config.keep_alive.deadline(Instant::now());
        loop {
            let job = match pending.take() {
                Some(j) => j,
                None => {
                    let got = match deadline {
                        None => queue
                            .recv()
                            .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                        Some(d) => queue.recv_timeout(d.saturating_duration_since(Instant::now())),
                    };
                    match got {
                        Ok(j) => {
                            self.queued.fetch_sub(1, Ordering::SeqCst);
                            j
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => return Unload::Idle,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return Unload::Closed,
                    }
                }
            };
            if job.events.is_closed() {
                self.totals.lock().expect("not poisoned").cancelled += 1;
                continue;
            }
            let keep = job.req.keep_alive.unwrap_or(config.keep_alive);
            deadline = keep.deadline(Instant::now());
            *self.expires.lock().expect("not poisoned") = match keep {
                KeepAlive::Forever => None,
                KeepAlive::For(d) => SystemTime::now().checked_add(d),
            };
            let unload_after = keep == KeepAlive::For(Duration::ZERO);
            if unload_after && matches!(job.req.input, Input::Load) {
                return Unload::Asked(job);
            }
            let want_ctx = job.req.num_ctx.unwrap_or(default_ctx);
            if want_ctx > plan_ctx {
                fail(
                    &job,
                    true,
                    format!(
                        "num_ctx {want_ctx} is more than the plan's context ({plan_ctx} tokens), \
                         for which it reserved memory; solve the plan with a larger --ctx"
                    ),
                );
                continue;
            }
            if want_ctx != n_ctx && !matches!(job.req.input, Input::Load) {
                drop(ctx);
                ctx = match planned.context(&MoeOptions::default(), want_ctx, config.threads, false)
                {
                    Ok(c) => {
                        n_ctx = want_ctx;
                        c
                    }
                    Err(e) => {
                        // Back to the size that worked, so that later requests still run.
                        fail(
                            &job,
                            false,
                            format!("cannot make a context of {want_ctx}: {e}"),
                        );
                        match planned.context(&MoeOptions::default(), n_ctx, config.threads, false)
                        {
                            Ok(c) => c,
                            Err(_) => return Unload::Idle,
                        }
                    }
                };
                if n_ctx != want_ctx {
                    continue;
                }
            }
            self.busy.store(1, Ordering::SeqCst);
            self.serve(
                planned,
                &mut ctx,
                n_ctx,
                template,
                job,
                load_s.take().unwrap_or(0.0),
            );
            self.busy.store(0, Ordering::SeqCst);
            if unload_after {
                return Unload::Idle;
            }
        }
    }

    fn serve(
        &self,
        planned: &PlannedModel,
        ctx: &mut runtime::Context<'_>,
        n_ctx: u32,
        template: &str,
        job: Job,
        load_s: f64,
    ) {
        let model = &planned.model;
        let text = match &job.req.input {
            Input::Load => {
                return answer_load(&job, &self.totals, load_s);
            }
            Input::Raw(t) => t.clone(),
            Input::Chat(messages) => match apply_template(template, messages, true) {
                Ok(t) => t,
                Err(e) => return fail(&job, true, e.to_string()),
            },
        };
        let prompt = match model.tokenize(&text, true) {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => return fail(&job, true, "the prompt is empty".into()),
            Err(e) => return fail(&job, true, e.to_string()),
        };
        let room = (n_ctx as usize).saturating_sub(prompt.len());
        if room == 0 {
            return fail(
                &job,
                true,
                format!(
                    "the prompt has {} tokens; the context holds {n_ctx} (num_ctx)",
                    prompt.len()
                ),
            );
        }
        let n = job.req.n_predict.map_or(room, |n| n.min(room));
        if n == 0 {
            return finish(
                &job,
                0,
                prompt,
                0.0,
                0.0,
                Finish::Length,
                &self.totals,
                None,
                load_s,
            );
        }
        ctx.clear();
        let mut out = TextStream::new(&job.req.stop);
        let mut gone = false;
        let generated = ctx.generate_with(&prompt, n, job.req.sampling, |t| {
            if !model.is_end_of_generation(t) {
                let text = out.push(&model.token_piece(t));
                if !text.is_empty() && job.events.blocking_send(Event::Text(text)).is_err() {
                    gone = true;
                }
            }
            !gone && !out.stopped()
        });
        let g = match generated {
            Ok(g) => g,
            Err(e) => return fail(&job, false, e.to_string()),
        };
        if gone {
            self.totals.lock().expect("not poisoned").cancelled += 1;
        }
        let rest = out.finish();
        if !rest.is_empty() {
            let _ = job.events.blocking_send(Event::Text(rest));
        }
        let ended = g
            .tokens
            .last()
            .is_some_and(|&t| model.is_end_of_generation(t));
        let reason = if ended || out.stopped() {
            Finish::Stop
        } else {
            Finish::Length
        };
        {
            let mut t = self.totals.lock().expect("not poisoned");
            if let Some(s) = ctx.streamer() {
                t.stream = Some(s.stats());
                t.resident_stream_bytes = s.resident_bytes();
            }
            t.decode_steps += g.tokens.len().saturating_sub(1) as u64;
            t.decode_read_bytes += g.decode_read_bytes.unwrap_or(0);
            t.last_decode_tok_per_s = g.decode_tok_per_s();
        }
        let mut context = g.prompt_tokens.clone();
        context.extend(g.tokens.iter().filter(|&&t| !model.is_end_of_generation(t)));
        let completion = g.tokens.len();
        finish(
            &job,
            completion,
            context,
            g.prompt_s,
            g.decode_s(),
            reason,
            &self.totals,
            Some(g.prompt_tokens.len()),
            load_s,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    job: &Job,
    completion_tokens: usize,
    context: Vec<i32>,
    prompt_s: f64,
    decode_s: f64,
    finish: Finish,
    totals: &Mutex<Totals>,
    prompt_tokens: Option<usize>,
    load_s: f64,
) {
    let prompt_tokens = prompt_tokens.unwrap_or(context.len());
    {
        let mut t = totals.lock().expect("not poisoned");
        t.requests += 1;
        t.prompt_tokens += prompt_tokens as u64;
        t.prompt_s += prompt_s;
        t.completion_tokens += completion_tokens as u64;
        t.decode_s += decode_s;
    }
    let _ = job.events.blocking_send(Event::Done(Outcome {
        prompt_tokens,
        completion_tokens,
        context,
        prompt_s,
        decode_s,
        total_s: job.arrived.elapsed().as_secs_f64(),
        load_s,
        finish,
    }));
}

/// Answers a request that generates nothing (a load or an unload).
fn answer_load(job: &Job, totals: &Mutex<Totals>, load_s: f64) {
    finish(
        job,
        0,
        Vec::new(),
        0.0,
        0.0,
        Finish::Stop,
        totals,
        Some(0),
        load_s,
    );
}

fn fail(job: &Job, bad_request: bool, message: String) {
    let _ = job.events.blocking_send(Event::Failed(Failure {
        bad_request,
        message,
    }));
}

fn plan_ctx(config: &EngineConfig) -> u32 {
    config.plan.inputs.ctx.min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_reads_ollama_s_forms() {
        let secs = |s: u64| KeepAlive::For(Duration::from_secs(s));
        assert_eq!(KeepAlive::parse("5m"), Ok(secs(300)));
        assert_eq!(KeepAlive::parse("1h 30m"), Ok(secs(5400)));
        assert_eq!(KeepAlive::parse("300"), Ok(secs(300)));
        assert_eq!(KeepAlive::parse("0"), Ok(secs(0)));
        assert_eq!(KeepAlive::parse("-1"), Ok(KeepAlive::Forever));
        assert_eq!(KeepAlive::parse("-5m"), Ok(KeepAlive::Forever));
        assert_eq!(
            KeepAlive::from_json(&serde_json::json!(2.5)),
            Ok(KeepAlive::For(Duration::from_millis(2500)))
        );
        assert_eq!(
            KeepAlive::from_json(&serde_json::json!(-1)),
            Ok(KeepAlive::Forever)
        );
        assert!(KeepAlive::parse("soon").unwrap_err().contains("soon"));
        assert!(KeepAlive::from_json(&serde_json::json!([1])).is_err());
        assert!(KeepAlive::from_json(&serde_json::json!(1e300)).is_err());
    }
}
