//! The Ollama API: version, tags, show, ps, generate and chat (NDJSON streams by default).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State as Shared;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use runtime::chat::Message;
use runtime::Sampling;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::engine::{Event, Finish, Input, KeepAlive, Outcome, Request};
use crate::{collect, error, first_event, fresh_seed, nanos, parse, stream_body, unknown_model};
use crate::{Api, State, Stop};

pub async fn version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

/// The generation options Ollama's `options` carries (others are accepted and not used).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Options {
    temperature: Option<f32>,
    top_k: Option<i64>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    seed: Option<i64>,
    num_predict: Option<i64>,
    num_ctx: Option<u32>,
    stop: Stop,
    repeat_penalty: Option<f32>,
    repeat_last_n: Option<i64>,
}

impl Options {
    /// Ollama's defaults where a value is absent: temperature 0.8, top_k 40, top_p 0.9,
    /// min_p 0, repeat_penalty 1.1 over the last 64 tokens, a fresh seed.
    fn sampling(&self) -> Result<Sampling, String> {
        let temp = self.temperature.unwrap_or(0.8);
        let top_p = self.top_p.unwrap_or(0.9);
        let min_p = self.min_p.unwrap_or(0.0);
        let repeat_penalty = self.repeat_penalty.unwrap_or(1.1);
        check("temperature", temp, 0.0, 100.0)?;
        check("top_p", top_p, 0.0, 1.0)?;
        check("min_p", min_p, 0.0, 1.0)?;
        check("repeat_penalty", repeat_penalty, 0.0, 100.0)?;
        Ok(Sampling {
            temp,
            seed: match self.seed {
                Some(s) if s >= 0 => s as u32,
                _ => fresh_seed(),
            },
            ignore_eos: false,
            top_k: self.top_k.unwrap_or(40).clamp(0, i64::from(u32::MAX)) as u32,
            top_p,
            min_p,
            repeat_penalty,
            repeat_last_n: self.repeat_last_n.unwrap_or(64).clamp(0, 1 << 24) as u32,
        })
    }

    /// `num_predict`: -1 (or absent) until the context is full, -2 the same, else the count.
    fn n_predict(&self) -> Option<usize> {
        self.num_predict.filter(|&n| n >= 0).map(|n| n as usize)
    }
}

pub(crate) fn check(name: &str, v: f32, lo: f32, hi: f32) -> Result<(), String> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(format!("{name} {v} is outside {lo}..={hi}"))
    }
}

#[derive(Debug, Deserialize)]
pub struct GenerateBody {
    model: String,
    #[serde(default)]
    prompt: String,
    system: Option<String>,
    #[serde(default)]
    raw: bool,
    stream: Option<bool>,
    #[serde(default)]
    options: Options,
    format: Option<Value>,
    images: Option<Vec<Value>>,
    keep_alive: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct ChatBody {
    model: String,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    stream: Option<bool>,
    #[serde(default)]
    options: Options,
    format: Option<Value>,
    tools: Option<Vec<Value>>,
    keep_alive: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: String,
    images: Option<Vec<Value>>,
}

/// What this server cannot do, said instead of done silently.
fn unsupported(format: &Option<Value>, images: bool, tools: bool) -> Option<String> {
    let format = format.as_ref().filter(|f| !f.is_null() && **f != json!(""));
    if format.is_some() {
        return Some("\"format\" (JSON or schema output) is not supported by hypura serve".into());
    }
    if images {
        return Some("this model does not support images".into());
    }
    if tools {
        return Some("this model does not support tools".into());
    }
    None
}

pub async fn generate(
    Shared(s): Shared<Arc<State>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let b: GenerateBody = match parse(Api::Ollama, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !s.serves(&b.model) {
        return unknown_model(Api::Ollama, &s, &b.model);
    }
    let images = b.images.as_ref().is_some_and(|i| !i.is_empty());
    if let Some(why) = unsupported(&b.format, images, false) {
        return error(Api::Ollama, StatusCode::BAD_REQUEST, why);
    }
    let keep_alive = match b.keep_alive.as_ref().map(KeepAlive::from_json).transpose() {
        Ok(k) => k,
        Err(e) => return error(Api::Ollama, StatusCode::BAD_REQUEST, e),
    };
    // An empty prompt loads the model, or unloads it with keep_alive 0: Ollama's `ollama stop`.
    if b.prompt.is_empty() {
        return load(&s, b.model, keep_alive, Kind::Generate).await;
    }
    let sampling = match b.options.sampling() {
        Ok(x) => x,
        Err(e) => return error(Api::Ollama, StatusCode::BAD_REQUEST, e),
    };
    let input = if b.raw {
        Input::Raw(b.prompt)
    } else {
        let mut m: Vec<Message> = b.system.into_iter().map(|c| msg("system", c)).collect();
        m.push(msg("user", b.prompt));
        Input::Chat(m)
    };
    let req = Request {
        input,
        n_predict: b.options.n_predict(),
        sampling,
        stop: b.options.stop.list(),
        num_ctx: b.options.num_ctx,
        keep_alive,
    };
    respond(&s, b.model, req, b.stream.unwrap_or(true), Kind::Generate).await
}

pub async fn chat(Shared(s): Shared<Arc<State>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b: ChatBody = match parse(Api::Ollama, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !s.serves(&b.model) {
        return unknown_model(Api::Ollama, &s, &b.model);
    }
    let images = b
        .messages
        .iter()
        .any(|m| m.images.as_ref().is_some_and(|i| !i.is_empty()));
    let tools = b.tools.as_ref().is_some_and(|t| !t.is_empty());
    if let Some(why) = unsupported(&b.format, images, tools) {
        return error(Api::Ollama, StatusCode::BAD_REQUEST, why);
    }
    let keep_alive = match b.keep_alive.as_ref().map(KeepAlive::from_json).transpose() {
        Ok(k) => k,
        Err(e) => return error(Api::Ollama, StatusCode::BAD_REQUEST, e),
    };
    if b.messages.is_empty() {
        return load(&s, b.model, keep_alive, Kind::Chat).await;
    }
    if let Some(m) = b
        .messages
        .iter()
        .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
    {
        return error(
            Api::Ollama,
            StatusCode::BAD_REQUEST,
            format!("message role {:?} is not system, user or assistant", m.role),
        );
    }
    let sampling = match b.options.sampling() {
        Ok(x) => x,
        Err(e) => return error(Api::Ollama, StatusCode::BAD_REQUEST, e),
    };
    let messages = b
        .messages
        .into_iter()
        .map(|m| msg(&m.role, m.content))
        .collect();
    let req = Request {
        input: Input::Chat(messages),
        n_predict: b.options.n_predict(),
        sampling,
        stop: b.options.stop.list(),
        num_ctx: b.options.num_ctx,
        keep_alive,
    };
    respond(&s, b.model, req, b.stream.unwrap_or(true), Kind::Chat).await
}

#[derive(Clone, Copy)]
enum Kind {
    Generate,
    Chat,
}

impl Kind {
    /// A chunk carrying `text`, `done` false.
    fn chunk(self, model: &str, text: &str) -> Value {
        match self {
            Kind::Generate => json!({
                "model": model, "created_at": now(), "response": text, "done": false,
            }),
            Kind::Chat => json!({
                "model": model, "created_at": now(),
                "message": {"role": "assistant", "content": text}, "done": false,
            }),
        }
    }

    /// The last object: `text` (all of it when not streamed), `done`, the reason and timings.
    fn last(self, model: &str, text: &str, o: &Outcome) -> Value {
        let mut v = self.chunk(model, text);
        v["done"] = json!(true);
        v["done_reason"] = json!(match o.finish {
            Finish::Stop => "stop",
            Finish::Length => "length",
        });
        v["total_duration"] = json!(nanos(o.total_s));
        v["load_duration"] = json!(nanos(o.load_s));
        v["prompt_eval_count"] = json!(o.prompt_tokens);
        v["prompt_eval_duration"] = json!(nanos(o.prompt_s));
        v["eval_count"] = json!(o.completion_tokens);
        v["eval_duration"] = json!(nanos(o.decode_s));
        if let Kind::Generate = self {
            v["context"] = json!(o.context);
        }
        v
    }
}

async fn respond(s: &State, model: String, req: Request, stream: bool, kind: Kind) -> Response {
    let rx = s.engine.submit(req);
    if !stream {
        return match collect(Api::Ollama, rx).await {
            Ok((text, o)) => Json(kind.last(&model, &text, &o)).into_response(),
            Err(r) => r,
        };
    }
    let (first, rx) = match first_event(Api::Ollama, rx).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let render = move |e: Event| {
        let v = match e {
            Event::Text(t) => kind.chunk(&model, &t),
            Event::Done(o) => kind.last(&model, "", &o),
            Event::Failed(f) => json!({ "error": f.message }),
        };
        format!("{v}\n")
    };
    stream_body("application/x-ndjson", first, rx, render, None)
}

/// A request with nothing to generate: the model is loaded (again, if it was unloaded) and
/// kept for `keep_alive`; 0 unloads it.
async fn load(s: &State, model: String, keep_alive: Option<KeepAlive>, kind: Kind) -> Response {
    let unload = keep_alive == Some(KeepAlive::For(std::time::Duration::ZERO));
    let req = Request {
        input: Input::Load,
        n_predict: Some(0),
        sampling: Sampling::GREEDY,
        stop: Vec::new(),
        num_ctx: None,
        keep_alive,
    };
    match collect(Api::Ollama, s.engine.submit(req)).await {
        Ok((_, o)) => {
            let mut v = kind.chunk(&model, "");
            v["done"] = json!(true);
            v["done_reason"] = json!(if unload { "unload" } else { "load" });
            v["load_duration"] = json!(nanos(o.load_s));
            Json(v).into_response()
        }
        Err(r) => r,
    }
}

fn msg(role: &str, content: String) -> Message {
    Message {
        role: role.to_string(),
        content,
    }
}

/// Now, as Ollama writes times (RFC 3339, UTC).
pub(crate) fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// `details` of a model, as tags, show and ps give them.
fn details(s: &State) -> Value {
    let inv = &s.engine.info.inventory;
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": inv.arch.arch,
        "families": [inv.arch.arch],
        "parameter_size": parameter_size(inv),
        "quantization_level": quantization(inv),
    })
}

fn parameter_size(inv: &model::Inventory) -> String {
    let n: u64 = inv
        .tensors
        .iter()
        .map(|t| t.dims.iter().product::<u64>())
        .sum();
    match n {
        n if n >= 1_000_000_000 => format!("{:.1}B", n as f64 / 1e9),
        n => format!("{:.1}M", n as f64 / 1e6),
    }
}

fn quantization(inv: &model::Inventory) -> String {
    inv.arch
        .file_type
        .and_then(|ft| model::catalog::Preset::ALL.iter().find(|p| p.ftype() == ft))
        .map_or_else(|| "unknown".into(), |p| p.name().to_ascii_uppercase())
}

fn modified_at(s: &State) -> String {
    let t = std::fs::metadata(&s.engine.info.path)
        .and_then(|m| m.modified())
        .unwrap_or(s.engine.info.loaded_at);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn listing(s: &State) -> Value {
    let info = &s.engine.info;
    json!({
        "name": s.listed_name(),
        "model": s.listed_name(),
        "modified_at": modified_at(s),
        "size": info.plan.inputs.model.file_bytes,
        "digest": info.plan.inputs.model.header_hash,
        "details": details(s),
    })
}

pub async fn tags(Shared(s): Shared<Arc<State>>) -> Json<Value> {
    Json(json!({ "models": [listing(&s)] }))
}

#[derive(Debug, Deserialize)]
pub struct ShowBody {
    model: Option<String>,
    /// Older clients send `name`.
    name: Option<String>,
}

pub async fn show(Shared(s): Shared<Arc<State>>, body: Result<Bytes, BytesRejection>) -> Response {
    let b: ShowBody = match parse(Api::Ollama, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(requested) = b.model.or(b.name) else {
        return error(
            Api::Ollama,
            StatusCode::BAD_REQUEST,
            "model is required".into(),
        );
    };
    if !s.serves(&requested) {
        return unknown_model(Api::Ollama, &s, &requested);
    }
    let info = &s.engine.info;
    let arch = &info.inventory.arch;
    let params: u64 = info
        .inventory
        .tensors
        .iter()
        .map(|t| t.dims.iter().product::<u64>())
        .sum();
    Json(json!({
        "license": "",
        "modelfile": format!("FROM {}\n", info.path.display()),
        "parameters": "",
        "template": info.template,
        "details": details(&s),
        "model_info": {
            "general.architecture": arch.arch,
            "general.parameter_count": params,
            format!("{}.block_count", arch.arch): arch.n_layer,
            format!("{}.context_length", arch.arch): arch.n_ctx_train,
            format!("{}.embedding_length", arch.arch): arch.n_embd,
            format!("{}.expert_count", arch.arch): arch.n_expert,
            format!("{}.expert_used_count", arch.arch): arch.n_expert_used,
        },
        "capabilities": ["completion"],
        "modified_at": modified_at(&s),
    }))
    .into_response()
}

/// The running model with where its plan put each tensor group, and the expert cache now.
pub async fn ps(Shared(s): Shared<Arc<State>>) -> Json<Value> {
    let info = &s.engine.info;
    let tiers = crate::metrics::group_tiers(&info.inventory, &info.plan);
    let totals = s.engine.totals.lock().expect("not poisoned").clone();
    let gpu: u64 = tiers
        .iter()
        .filter(|g| g.tier == plan::Tier::Gpu)
        .map(|g| g.bytes)
        .sum();
    let stream = totals.stream.unwrap_or_default();
    if !s.engine.loaded.load(std::sync::atomic::Ordering::SeqCst) {
        return Json(json!({ "models": [] }));
    }
    let expires = *s.engine.expires.lock().expect("not poisoned");
    let mut model = listing(&s);
    // Ollama gives a time far ahead for a model kept for ever.
    model["expires_at"] = json!(expires.map_or("2318-11-26T00:00:00Z".to_string(), |t| {
        humantime::format_rfc3339_seconds(t).to_string()
    }));
    model["size_vram"] = json!(gpu);
    model["context_length"] = json!(info.n_ctx);
    model["hypura"] = json!({
        "path": info.path,
        "mode": info.plan.mode.name(),
        "predicted_tok_per_s": info.plan.prediction.tok_per_s,
        "measured_tok_per_s": totals.last_decode_tok_per_s,
        "placement": tiers.iter().map(|g| json!({
            "group": g.group.name(), "tier": g.tier.name(), "bytes": g.bytes,
        })).collect::<Vec<_>>(),
        "expert_cache": {
            "policy": info.plan.expert_cache.policy,
            "planned_bytes": info.plan.expert_cache.bytes,
            "planned_hit_rate": info.plan.expert_cache.hit_rate,
            "accesses": stream.expert_accesses,
            "hits": stream.expert_hits,
            "hit_rate": ratio(stream.expert_hits, stream.expert_accesses),
            "resident_bytes": totals.resident_stream_bytes,
        },
    });
    Json(json!({ "models": [model] }))
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}
