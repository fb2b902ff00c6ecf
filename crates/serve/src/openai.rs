//! The OpenAI API: models, chat completions and completions (server-sent events when
//! `stream`, ending with `data: [DONE]`).

use std::sync::atomic::Ordering;
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

use crate::engine::{Event, Finish, Input, Outcome, Request};
use crate::ollama::check;
use crate::{collect, error, first_event, fresh_seed, parse, stream_body, unknown_model};
use crate::{Api, State, Stop};

pub async fn models(Shared(s): Shared<Arc<State>>) -> Json<Value> {
    let created = s
        .engine
        .info
        .loaded_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Json(json!({
        "object": "list",
        "data": [{ "id": s.listed_name(), "object": "model", "created": created, "owned_by": "hypura" }],
    }))
}

/// Sampling fields both endpoints take (llama-server's extensions `top_k`, `min_p`,
/// `repeat_penalty` included).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Knobs {
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<u32>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    seed: Option<i64>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    stop: Stop,
    stream: bool,
    stream_options: Option<StreamOptions>,
    n: Option<u32>,
    tools: Option<Vec<Value>>,
    response_format: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

impl Knobs {
    /// llama-server's defaults where a value is absent: temperature 0.8, top_k 40, top_p 0.95,
    /// min_p 0.05, no repetition penalty, a fresh seed.
    fn sampling(&self) -> Result<Sampling, String> {
        let temp = self.temperature.unwrap_or(0.8);
        let top_p = self.top_p.unwrap_or(0.95);
        let min_p = self.min_p.unwrap_or(0.05);
        let repeat_penalty = self.repeat_penalty.unwrap_or(1.0);
        check("temperature", temp, 0.0, 2.0)?;
        check("top_p", top_p, 0.0, 1.0)?;
        check("min_p", min_p, 0.0, 1.0)?;
        check("repeat_penalty", repeat_penalty, 0.0, 100.0)?;
        Ok(Sampling {
            temp,
            seed: self.seed.map_or_else(fresh_seed, |s| s as u32),
            ignore_eos: false,
            top_k: self.top_k.unwrap_or(40),
            top_p,
            min_p,
            repeat_penalty,
            repeat_last_n: 64,
        })
    }

    /// What this server cannot do, said instead of done silently.
    fn unsupported(&self) -> Option<String> {
        if self.n.is_some_and(|n| n != 1) {
            return Some("n other than 1 is not supported".into());
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Some("tools are not supported by this model".into());
        }
        let text = |f: &Value| f.get("type").and_then(Value::as_str) == Some("text");
        if self.response_format.as_ref().is_some_and(|f| !text(f)) {
            return Some("response_format other than text is not supported".into());
        }
        None
    }

    fn request(&self, input: Input) -> Result<Request, String> {
        Ok(Request {
            input,
            n_predict: self
                .max_completion_tokens
                .or(self.max_tokens)
                .map(|n| n.min(1 << 24) as usize),
            sampling: self.sampling()?,
            stop: match &self.stop {
                Stop::None => Vec::new(),
                Stop::One(s) => vec![s.clone()],
                Stop::Many(v) => v.clone(),
            },
            num_ctx: None,
            keep_alive: None,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct ChatBody {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(flatten)]
    knobs: Knobs,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Content,
}

/// A message's content: a string, or parts of which only text is supported.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Content {
    #[default]
    None,
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

impl Content {
    fn text(self) -> Result<String, String> {
        match self {
            Content::None => Ok(String::new()),
            Content::Text(t) => Ok(t),
            Content::Parts(parts) => parts
                .into_iter()
                .map(|p| match (p.kind.as_str(), p.text) {
                    ("text", Some(t)) => Ok(t),
                    (kind, _) => Err(format!("content of type {kind:?} is not supported")),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CompletionBody {
    model: String,
    prompt: Prompt,
    #[serde(flatten)]
    knobs: Knobs,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Prompt {
    One(String),
    Many(Vec<String>),
}

#[derive(Clone, Copy)]
enum Kind {
    Chat,
    Completion,
}

impl Kind {
    fn object(self, chunk: bool) -> &'static str {
        match (self, chunk) {
            (Kind::Chat, false) => "chat.completion",
            (Kind::Chat, true) => "chat.completion.chunk",
            (Kind::Completion, _) => "text_completion",
        }
    }

    fn id(self, n: u64) -> String {
        match self {
            Kind::Chat => format!("chatcmpl-{n}"),
            Kind::Completion => format!("cmpl-{n}"),
        }
    }

    /// One choice carrying `text`, whole (`delta` false) or as a stream delta.
    fn choice(self, text: Option<&str>, finish: Option<Finish>, delta: bool) -> Value {
        let reason = finish.map(|f| match f {
            Finish::Stop => "stop",
            Finish::Length => "length",
        });
        match self {
            Kind::Chat if delta => json!({
                "index": 0,
                "delta": text.map_or(json!({}), |t| json!({"role": "assistant", "content": t})),
                "finish_reason": reason, "logprobs": null,
            }),
            Kind::Chat => json!({
                "index": 0,
                "message": {"role": "assistant", "content": text.unwrap_or("")},
                "finish_reason": reason, "logprobs": null,
            }),
            Kind::Completion => json!({
                "index": 0, "text": text.unwrap_or(""), "finish_reason": reason, "logprobs": null,
            }),
        }
    }
}

fn usage(o: &Outcome) -> Value {
    json!({
        "prompt_tokens": o.prompt_tokens,
        "completion_tokens": o.completion_tokens,
        "total_tokens": o.prompt_tokens + o.completion_tokens,
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub async fn chat_completions(
    Shared(s): Shared<Arc<State>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let b: ChatBody = match parse(Api::OpenAi, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(refused) = refusal(&s, &b.model, &b.knobs) {
        return refused;
    }
    let bad = |m: String| error(Api::OpenAi, StatusCode::BAD_REQUEST, m);
    if b.messages.is_empty() {
        return bad("messages must not be empty".into());
    }
    let mut messages = Vec::with_capacity(b.messages.len());
    for m in b.messages {
        // OpenAI's "developer" role is the system message of newer models.
        let role = match m.role.as_str() {
            "developer" => "system",
            r @ ("system" | "user" | "assistant") => r,
            r => {
                return bad(format!(
                    "message role {r:?} is not system, user or assistant"
                ))
            }
        };
        match m.content.text() {
            Ok(content) => messages.push(Message {
                role: role.into(),
                content,
            }),
            Err(e) => return bad(e),
        }
    }
    match b.knobs.request(Input::Chat(messages)) {
        Ok(req) => respond(&s, b.model, req, &b.knobs, Kind::Chat).await,
        Err(e) => bad(e),
    }
}

pub async fn completions(
    Shared(s): Shared<Arc<State>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let b: CompletionBody = match parse(Api::OpenAi, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(refused) = refusal(&s, &b.model, &b.knobs) {
        return refused;
    }
    let bad = |m: String| error(Api::OpenAi, StatusCode::BAD_REQUEST, m);
    let prompt = match b.prompt {
        Prompt::One(p) => p,
        Prompt::Many(mut v) if v.len() == 1 => v.remove(0),
        Prompt::Many(_) => return bad("a list of prompts is not supported; send one".into()),
    };
    if prompt.is_empty() {
        return bad("prompt must not be empty".into());
    }
    // OpenAI's default for completions is 16 tokens.
    let mut knobs = b.knobs;
    if knobs.max_tokens.is_none() && knobs.max_completion_tokens.is_none() {
        knobs.max_tokens = Some(16);
    }
    match knobs.request(Input::Raw(prompt)) {
        Ok(req) => respond(&s, b.model, req, &knobs, Kind::Completion).await,
        Err(e) => bad(e),
    }
}

/// The response for a model this server does not run or a request it cannot honour.
fn refusal(s: &State, model: &str, knobs: &Knobs) -> Option<Response> {
    if !s.serves(model) {
        return Some(unknown_model(Api::OpenAi, s, model));
    }
    let why = knobs.unsupported()?;
    Some(error(Api::OpenAi, StatusCode::BAD_REQUEST, why))
}

async fn respond(s: &State, model: String, req: Request, knobs: &Knobs, kind: Kind) -> Response {
    let id = kind.id(s.next_id.fetch_add(1, Ordering::SeqCst));
    let created = unix_now();
    let rx = s.engine.submit(req);
    let base = move |chunk: bool| json!({ "id": id, "object": kind.object(chunk), "created": created, "model": model });
    if !knobs.stream {
        return match collect(Api::OpenAi, rx).await {
            Ok((text, o)) => {
                let mut v = base(false);
                v["choices"] = json!([kind.choice(Some(&text), Some(o.finish), false)]);
                v["usage"] = usage(&o);
                Json(v).into_response()
            }
            Err(r) => r,
        };
    }
    let include_usage = knobs
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let (first, rx) = match first_event(Api::OpenAi, rx).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let render = move |e: Event| {
        let data = |v: Value| format!("data: {v}\n\n");
        match e {
            Event::Text(t) => {
                let mut v = base(true);
                v["choices"] = json!([kind.choice(Some(&t), None, true)]);
                data(v)
            }
            Event::Done(o) => {
                let mut v = base(true);
                v["choices"] = json!([kind.choice(None, Some(o.finish), true)]);
                let mut out = data(v);
                if include_usage {
                    let mut u = base(true);
                    u["choices"] = json!([]);
                    u["usage"] = usage(&o);
                    out += &data(u);
                }
                out
            }
            Event::Failed(f) => {
                data(json!({ "error": { "message": f.message, "type": "server_error" } }))
            }
        }
    };
    stream_body(
        "text/event-stream",
        first,
        rx,
        render,
        Some("data: [DONE]\n\n".into()),
    )
}
