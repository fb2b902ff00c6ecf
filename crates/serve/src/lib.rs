//! `hypura serve`: the Ollama API (`/api/*`) and the OpenAI API (`/v1/*`) over one model loaded
//! on its plan, so that programs written for either server run a model larger than memory.
//!
//! One model, one generation at a time: requests queue in arrival order on the [`engine`]
//! thread, which owns the model; a client that disconnects cancels its generation. Chat turns
//! are formatted with the GGUF's chat template. `/metrics` exports what llama-server does
//! (tokens, seconds, requests) and what the plan-driven runtime knows besides (expert-cache hit
//! rate, bytes read per token, I/O wait, prefetch hits and waste, streamed bytes resident,
//! predicted against measured tok/s).
//!
//! Not here: model management (pull, delete, create), embeddings, tools, images, JSON-schema
//! output; those requests get the API's error shape, never a silent substitute.

pub mod engine;
mod metrics;
mod ollama;
mod openai;
pub mod text;

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

pub use engine::{Engine, EngineConfig};

/// Where to listen and what to call the model.
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
    /// The model's name in requests and listings (`gemma-3-270m`; `:latest` is implied, as in
    /// Ollama).
    pub name: String,
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
}

pub(crate) struct State {
    pub engine: Engine,
    pub name: String,
    pub next_id: AtomicU64,
}

impl State {
    /// The name as listed: `name:latest` unless it carries a tag.
    pub fn listed_name(&self) -> String {
        if self.name.contains(':') {
            self.name.clone()
        } else {
            format!("{}:latest", self.name)
        }
    }

    /// Whether a request's `model` names the served model.
    pub fn serves(&self, requested: &str) -> bool {
        requested == self.name || requested == self.listed_name()
    }
}

/// Binds, calls `listening` with the address, and serves until the process ends.
pub fn serve(
    engine: Engine,
    options: Options,
    listening: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .thread_name("hypura-http")
        .build()
        .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
    rt.block_on(async move {
        let addr = format!("{}:{}", options.host, options.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        listening(local);
        let state = Arc::new(State {
            engine,
            name: options.name,
            next_id: AtomicU64::new(1),
        });
        axum::serve(listener, router(state, options.max_body_bytes))
            .await
            .map_err(|e| format!("serving on {local}: {e}"))
    })
}

fn router(state: Arc<State>, max_body: usize) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { "hypura is running (Ollama and OpenAI APIs)" }),
        )
        .route("/api/version", get(ollama::version))
        .route("/api/tags", get(ollama::tags))
        .route("/api/show", post(ollama::show))
        .route("/api/ps", get(ollama::ps))
        .route("/api/generate", post(ollama::generate))
        .route("/api/chat", post(ollama::chat))
        .route("/v1/models", get(openai::models))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/completions", post(openai::completions))
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async {
            error(
                Api::Ollama,
                StatusCode::NOT_FOUND,
                "no such endpoint".into(),
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Which API's error shape a response takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Api {
    /// `{"error": "message"}`
    Ollama,
    /// `{"error": {"message", "type", "param", "code"}}`
    OpenAi,
}

pub(crate) fn error(api: Api, status: StatusCode, message: String) -> Response {
    let body = match api {
        Api::Ollama => serde_json::json!({ "error": message }),
        Api::OpenAi => serde_json::json!({ "error": {
            "message": message,
            "type": if status.is_server_error() { "server_error" } else { "invalid_request_error" },
            "param": null,
            "code": status.as_u16().to_string(),
        }}),
    };
    (status, Json(body)).into_response()
}

/// A request body as `T`: too large is 413, not JSON or not `T` is 400 naming the field.
pub(crate) fn parse<T: DeserializeOwned>(
    api: Api,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, Response> {
    let bytes = body.map_err(|e| {
        let status = e.status();
        let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is larger than this server accepts (--max-body)".to_string()
        } else {
            e.body_text()
        };
        error(api, status, msg)
    })?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let msg = if at == "." || at == "?" {
            format!("invalid JSON body: {}", e.inner())
        } else {
            format!("invalid JSON body at {at}: {}", e.inner())
        };
        error(api, StatusCode::BAD_REQUEST, msg)
    })
}

/// The 404 for a model this server does not serve.
pub(crate) fn unknown_model(api: Api, state: &State, requested: &str) -> Response {
    error(
        api,
        StatusCode::NOT_FOUND,
        format!(
            "model \"{requested}\" not found: this server runs {}",
            state.listed_name()
        ),
    )
}

/// A stop field that is one string or a list of them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum Stop {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn list(self) -> Vec<String> {
        match self {
            Stop::None => Vec::new(),
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// A seed for a request that gives none.
pub(crate) fn fresh_seed() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u32) ^ std::process::id()
}

/// Seconds as nanoseconds (Ollama's durations).
pub(crate) fn nanos(s: f64) -> u64 {
    (s * 1e9).round().max(0.0) as u64
}

/// The first event of a request: a failure as an error response (400 or 500), else the event
/// and the rest of the channel, so that a streamed response starts only once generation does.
pub(crate) async fn first_event(
    api: Api,
    mut rx: tokio::sync::mpsc::Receiver<engine::Event>,
) -> Result<(engine::Event, tokio::sync::mpsc::Receiver<engine::Event>), Response> {
    match rx.recv().await {
        Some(engine::Event::Failed(f)) => Err(failure(api, f)),
        Some(ev) => Ok((ev, rx)),
        None => Err(error(
            api,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the model thread dropped the request".into(),
        )),
    }
}

pub(crate) fn failure(api: Api, f: engine::Failure) -> Response {
    let status = if f.bad_request {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    error(api, status, f.message)
}

/// A whole generation: its text and outcome.
pub(crate) async fn collect(
    api: Api,
    rx: tokio::sync::mpsc::Receiver<engine::Event>,
) -> Result<(String, engine::Outcome), Response> {
    let (first, mut rx) = first_event(api, rx).await?;
    let mut text = String::new();
    let mut ev = Some(first);
    while let Some(e) = ev.take() {
        match e {
            engine::Event::Text(t) => text.push_str(&t),
            engine::Event::Done(o) => return Ok((text, o)),
            engine::Event::Failed(f) => return Err(failure(api, f)),
        }
        ev = rx.recv().await;
    }
    Err(error(
        api,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the generation ended without an outcome".into(),
    ))
}

/// A streamed response of `content_type` whose chunks `render` makes from each event (then
/// `tail` once the channel closes).
pub(crate) fn stream_body(
    content_type: &'static str,
    first: engine::Event,
    rx: tokio::sync::mpsc::Receiver<engine::Event>,
    render: impl FnMut(engine::Event) -> String + Send + 'static,
    tail: Option<String>,
) -> Response {
    use tokio_stream::StreamExt;
    let events = tokio_stream::iter([first]).chain(tokio_stream::wrappers::ReceiverStream::new(rx));
    let chunks = events
        .map(render)
        .chain(tokio_stream::iter(tail))
        .map(|s| Ok::<_, std::convert::Infallible>(Bytes::from(s)));
    (
        [(axum::http::header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}
