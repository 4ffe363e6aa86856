//! A small client for the local API, for Rust applications on the device (blocking, std only:
//! one HTTP/1.1 exchange per call, over TCP or the Unix socket).
//!
//! ```no_run
//! use ferry_agent::client::{infer, Endpoint};
//! let jpeg = std::fs::read("models/images/espresso.jpg").unwrap();
//! let answer = infer(&Endpoint::Tcp("127.0.0.1:8080".parse().unwrap()), "efficientnet-lite0", "image/jpeg", &jpeg, Some(500)).unwrap();
//! println!("{} on {} in {:.1} ms", answer.top[0].label, answer.ran, answer.latency_ms);
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Where the agent's API listens.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// `[api] tcp`.
    Tcp(SocketAddr),
    /// `[api] unix`.
    Unix(PathBuf),
}

/// One class of an answer.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Class {
    /// Class index.
    pub index: u32,
    /// Label.
    pub label: String,
    /// Probability.
    pub score: f32,
}

/// The agent's answer.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Answer {
    /// The request id the agent gave it.
    pub request_id: u64,
    /// `local`, `edge:<name>`.
    pub ran: String,
    /// From decision to answer, ms.
    pub latency_ms: f64,
    /// The fallback taken, if any (`edge_busy`, `edge_error`, `edge_timeout`, `deadline_at_risk`).
    pub fallback: Option<String>,
    /// The best classes.
    pub top: Vec<Class>,
    /// `ok` for an answer with a result (the only kind this client returns as `Ok`).
    #[serde(default)]
    pub status: Option<String>,
    /// The constraints that applied (placement, mode, deadline_ms, best_effort, stream, freshest).
    #[serde(default)]
    pub constraints: Option<serde_json::Value>,
    /// Why it ran where it did: the predictions compared and the input form chosen for an
    /// offload (`reason.form`).
    #[serde(default)]
    pub reason: Option<serde_json::Value>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket.
    #[error("cannot talk to the agent: {0}")]
    Io(#[from] std::io::Error),
    /// The agent refused or failed the request (status and its message).
    #[error("agent answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The `error` field, or the body.
        message: String,
    },
    /// Not an answer this client understands.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// Asks the agent to run `model` on `body` (`image/png`, `image/jpeg`, or
/// `application/octet-stream` with `?shape=` in `model`'s query — use [`infer_tensor`]).
pub fn infer(endpoint: &Endpoint, model: &str, content_type: &str, body: &[u8], deadline_ms: Option<u32>) -> Result<Answer, ClientError> {
    let query = deadline_ms.map(|d| format!("?deadline_ms={d}")).unwrap_or_default();
    exchange(endpoint, "POST", &format!("/v1/infer/{model}{query}"), content_type, body)
}

/// [`infer`] with a query of per-request constraints, e.g. `placement=local-only&deadline_ms=200`
/// (see the API's `POST /v1/infer/{model}`). A non-200 answer (`deadline_exceeded`, `busy`,
/// `superseded`, ...) is a [`ClientError::Status`] with its message.
pub fn infer_query(endpoint: &Endpoint, model: &str, query: &str, content_type: &str, body: &[u8]) -> Result<Answer, ClientError> {
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    exchange(endpoint, "POST", &format!("/v1/infer/{model}{query}"), content_type, body)
}

/// Asks the agent to run `model` on a raw f32 tensor of `shape`.
pub fn infer_tensor(endpoint: &Endpoint, model: &str, shape: &[usize], values: &[f32], deadline_ms: Option<u32>) -> Result<Answer, ClientError> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let mut query = format!("?shape={}", dims.join(","));
    if let Some(d) = deadline_ms {
        query.push_str(&format!("&deadline_ms={d}"));
    }
    let body: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    exchange(endpoint, "POST", &format!("/v1/infer/{model}{query}"), "application/octet-stream", &body)
}

/// The agent's status page (`GET /v1/status`) as JSON: answers, fallbacks, latency, and the
/// decider's current estimate of every target.
pub fn status(endpoint: &Endpoint) -> Result<serde_json::Value, ClientError> {
    exchange(endpoint, "GET", "/v1/status", "", &[])
}

fn exchange<T: serde::de::DeserializeOwned>(endpoint: &Endpoint, method: &str, path: &str, content_type: &str, body: &[u8]) -> Result<T, ClientError> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: ferry\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let timeout = Some(Duration::from_secs(120));
    let mut raw = Vec::new();
    match endpoint {
        Endpoint::Tcp(addr) => {
            let mut s = TcpStream::connect(addr)?;
            s.set_read_timeout(timeout)?;
            s.set_nodelay(true)?;
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
            s.read_to_end(&mut raw)?;
        }
        Endpoint::Unix(path) => {
            let mut s = UnixStream::connect(path)?;
            s.set_read_timeout(timeout)?;
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
            s.read_to_end(&mut raw)?;
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| ClientError::Protocol("no HTTP header".to_string()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Protocol(format!("bad status line: {head:.60}")))?;
    if status != 200 {
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.trim().to_string());
        return Err(ClientError::Status { status, message });
    }
    serde_json::from_str(body).map_err(|e| ClientError::Protocol(e.to_string()))
}
