//! `POST /v1/infer/{model}`.
//!
//! Per request: `deadline_ms`, `mode=auto|latency|energy`, `placement=any|local-only|edge-only`,
//! `best_effort=true|false`, `stream=<id>` with `freshest=true|false`. The answer's JSON says
//! which constraints applied and its `status`: `ok` (200), `deadline_exceeded` (504, with the
//! predictions that showed it), `busy` (503: the local queue is full and no other path was
//! allowed or available), `superseded` (409: a newer frame of its stream replaced it before it
//! started), `failed` (422 for an input the edge refused, else 503). An input the model cannot
//! take is refused before it is decided on: 400 `invalid_input`, with what was expected.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_decide::{AnswerKind, Constraints, Fallback, Mode, PathEstimate, Placement, Ran};
use ferry_exec::SubmitOptions;
use ferry_protocol::{DType, ImageFormat, Input, Shape, Status, Tensor};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::daemon::{Daemon, Submission, SubmitError};

/// Query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferQuery {
    /// Relative deadline, ms.
    pub deadline_ms: Option<u32>,
    /// `auto` (the default: the configured `[decide] mode`), `latency` or `energy`.
    pub mode: Option<String>,
    /// `any` (the default), `local-only` (the input never leaves the board) or `edge-only`.
    pub placement: Option<String>,
    /// Opt out of the hard deadline: never answered `deadline_exceeded`. Default false.
    pub best_effort: Option<bool>,
    /// The stream the request belongs to (1..=64 characters), for freshest-frame.
    pub stream: Option<String>,
    /// Freshest-frame for this request; default: `[decide] freshest`. Needs `stream`.
    pub freshest: Option<bool>,
    /// For raw tensors: the shape, comma-separated.
    pub shape: Option<String>,
}

/// A client error: status and message, as JSON `{"error": ...}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The handler.
pub async fn infer(
    State(daemon): State<Arc<Daemon>>,
    Path(model): Path<String>,
    query: Result<Query<InferQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A bad query is a client error with a JSON body, like every other.
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("query: {}", e.body_text())),
    };
    let options = match parse_options(&q) {
        Ok(o) => o,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let input = match parse_input(&headers, &q, body) {
        Ok(input) => input,
        Err(response) => return response,
    };
    let submission = Submission { model: model.clone(), input, deadline_ms: q.deadline_ms };
    let freshest = options.freshest.unwrap_or(daemon.config.decide.freshest) && options.stream.is_some();
    let c = options.constraints;
    let constraints = json!({
        "placement": c.placement.as_str(),
        "mode": mode_name(c.mode.unwrap_or(daemon.config.decide.mode)),
        "deadline_ms": q.deadline_ms.or(match daemon.config.agent.default_deadline_ms { 0 => None, d => Some(d) }),
        "best_effort": c.best_effort,
        "stream": options.stream,
        "freshest": freshest,
    });
    // The agent stopping: what has not finished by the end of the drain is answered so.
    let submitted = tokio::select! {
        r = daemon.submit_with(submission, options) => r,
        () = daemon.aborted() => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "the agent is stopping: the request did not finish within [api] drain_ms", "status": "shutting_down", "model": model, "ran": "nowhere" })),
            )
                .into_response();
        }
    };
    match submitted {
        Err(SubmitError::UnknownModel(m)) => error(StatusCode::NOT_FOUND, format!("unknown model `{m}`")),
        Err(SubmitError::InvalidInput(message)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": message, "status": "invalid_input", "model": model, "ran": "nowhere" })),
        )
            .into_response(),
        Ok(outcome) => {
            let a = outcome.answer;
            let ran = match a.ran {
                Ran::Local(_) => "local".to_string(),
                Ran::Edge(_) => format!("edge:{}", outcome.ran_on),
                Ran::Nowhere => "nowhere".to_string(),
            };
            let body = json!({
                "request_id": outcome.response.request_id,
                "model": model,
                "ok": a.ok,
                "status": a.kind.as_str(),
                "constraints": constraints,
                "ran": ran,
                "target": outcome.ran_on,
                "latency_ms": a.latency_us as f64 / 1e3,
                "fallback": a.fallback.map(fallback_name),
                "raced": a.raced,
                "reason": {
                    "why": format!("{:?}", a.reason.why),
                    "form": outcome.form,
                    "chosen": a.reason.chosen.map(estimate),
                    "best_local": a.reason.best_local.map(estimate),
                    "best_edge": a.reason.best_edge.map(estimate),
                    "deadline_ms": a.reason.deadline_ms,
                    "thermal": a.reason.thermal,
                },
                "top": outcome.response.top_k.iter().map(|t| json!({"index": t.class, "label": t.label, "score": t.score})).collect::<Vec<_>>(),
                "error": if a.ok { Value::Null } else { Value::from(error_text(a.kind, &outcome.response.detail)) },
            });
            let status = match (a.kind, outcome.response.status) {
                (AnswerKind::Result, _) => StatusCode::OK,
                (AnswerKind::DeadlineExceeded, _) => StatusCode::GATEWAY_TIMEOUT,
                (AnswerKind::Superseded, _) => StatusCode::CONFLICT,
                (AnswerKind::Busy | AnswerKind::Cancelled, _) => StatusCode::SERVICE_UNAVAILABLE,
                (AnswerKind::Failed, Status::Malformed | Status::TooLarge | Status::UnknownModel) => StatusCode::UNPROCESSABLE_ENTITY,
                (AnswerKind::Failed, _) => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, Json(body)).into_response()
        }
    }
}

/// The request's constraints and stream from its query; `Err`: what is wrong with it.
pub fn parse_options(q: &InferQuery) -> Result<SubmitOptions, String> {
    let mode = match q.mode.as_deref() {
        None | Some("auto") => None,
        Some("latency") => Some(Mode::Latency),
        Some("energy") => Some(Mode::Energy),
        Some(other) => return Err(format!("mode `{other}`: expected auto, latency or energy")),
    };
    let placement = match q.placement.as_deref() {
        None => Placement::Any,
        Some(p) => Placement::parse(p).ok_or_else(|| format!("placement `{p}`: expected any, local-only or edge-only"))?,
    };
    if let Some(s) = q.stream.as_deref() {
        if s.is_empty() || s.len() > 64 {
            return Err("stream: expected 1 to 64 characters".to_string());
        }
    }
    if q.freshest == Some(true) && q.stream.is_none() {
        return Err("freshest=true needs stream=<id>: frames supersede others of their stream".to_string());
    }
    Ok(SubmitOptions {
        constraints: Constraints { placement, mode, best_effort: q.best_effort.unwrap_or(false) },
        stream: q.stream.clone(),
        freshest: q.freshest,
    })
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Latency => "latency",
        Mode::Energy => "energy",
    }
}

fn error_text(kind: AnswerKind, detail: &str) -> String {
    match kind {
        AnswerKind::DeadlineExceeded => "no path could answer by the deadline (plus grace); see reason".to_string(),
        AnswerKind::Busy => "the local queue is full and no other path is allowed or available".to_string(),
        AnswerKind::Superseded => "a newer frame of this stream replaced it before it started".to_string(),
        AnswerKind::Cancelled => "cancelled".to_string(),
        AnswerKind::Result | AnswerKind::Failed => detail.to_string(),
    }
}

fn parse_input(headers: &HeaderMap, q: &InferQuery, body: Bytes) -> Result<Input, Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if body.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "empty body: send an image or a tensor"));
    }
    match mime.as_str() {
        "image/png" => Ok(Input::Image { format: ImageFormat::Png, bytes: body.to_vec() }),
        "image/jpeg" | "image/jpg" => Ok(Input::Image { format: ImageFormat::Jpeg, bytes: body.to_vec() }),
        "application/octet-stream" => {
            let Some(shape) = q.shape.as_deref() else {
                return Err(error(StatusCode::BAD_REQUEST, "a raw tensor needs ?shape=d0,d1,... (little-endian f32 values)"));
            };
            let dims: Result<Vec<u32>, _> = shape.split(',').map(|d| d.trim().parse::<u32>()).collect();
            let dims = dims.map_err(|_| error(StatusCode::BAD_REQUEST, format!("shape `{shape}`: expected comma-separated integers")))?;
            let shape = Shape::new(&dims).map_err(|e| error(StatusCode::BAD_REQUEST, format!("shape: {e}")))?;
            let tensor = Tensor::new(DType::F32, shape, body.to_vec())
                .map_err(|e| error(StatusCode::BAD_REQUEST, format!("tensor: {e}")))?;
            Ok(Input::Tensor(tensor))
        }
        other => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type `{other}`: expected image/png, image/jpeg or application/octet-stream (f32 tensor)"),
        )),
    }
}

fn fallback_name(f: Fallback) -> &'static str {
    match f {
        Fallback::EdgeBusy => "edge_busy",
        Fallback::EdgeError => "edge_error",
        Fallback::EdgeTimeout => "edge_timeout",
        Fallback::DeadlineAtRisk => "deadline_at_risk",
    }
}

fn estimate(p: PathEstimate) -> Value {
    json!({
        "target": p.target, "local": p.local, "mean_ms": p.mean_ms, "std_ms": p.std_ms,
        "quantile_ms": p.quantile_ms, "energy_mj": p.energy_mj, "fail_p": p.fail_p,
        "form": p.form, "up_bytes": p.up_bytes,
    })
}
