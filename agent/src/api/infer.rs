//! `POST /v1/infer/{model}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_decide::{Fallback, PathEstimate, Ran};
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
    /// `auto` (the default) or the configured decision mode; other modes are refused.
    pub mode: Option<String>,
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
    Query(q): Query<InferQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(mode) = q.mode.as_deref() {
        let configured = format!("{:?}", daemon.config.decide.mode).to_ascii_lowercase();
        if mode != "auto" && mode != configured {
            return error(StatusCode::BAD_REQUEST, format!("mode `{mode}`: this agent decides in `{configured}` mode; use `auto` or `{configured}`"));
        }
    }
    let input = match parse_input(&headers, &q, body) {
        Ok(input) => input,
        Err(response) => return response,
    };
    let submission = Submission { model: model.clone(), input, deadline_ms: q.deadline_ms };
    match daemon.submit(submission).await {
        Err(SubmitError::UnknownModel(m)) => error(StatusCode::NOT_FOUND, format!("unknown model `{m}`")),
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
                "ran": ran,
                "target": outcome.ran_on,
                "latency_ms": a.latency_us as f64 / 1e3,
                "fallback": a.fallback.map(fallback_name),
                "raced": a.raced,
                "reason": {
                    "why": format!("{:?}", a.reason.why),
                    "chosen": a.reason.chosen.map(estimate),
                    "best_local": a.reason.best_local.map(estimate),
                    "best_edge": a.reason.best_edge.map(estimate),
                    "deadline_ms": a.reason.deadline_ms,
                    "thermal": a.reason.thermal,
                },
                "top": outcome.response.top_k.iter().map(|t| json!({"index": t.class, "label": t.label, "score": t.score})).collect::<Vec<_>>(),
                "error": if a.ok { Value::Null } else { Value::from(outcome.response.detail.clone()) },
            });
            let status = match (a.ok, outcome.response.status) {
                (true, _) => StatusCode::OK,
                (false, Status::Malformed | Status::TooLarge | Status::UnknownModel) => StatusCode::UNPROCESSABLE_ENTITY,
                (false, _) => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, Json(body)).into_response()
        }
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
    })
}
