//! Every error the API answers has a JSON body `{"error": ...}`: its own (the handlers build
//! them with [`crate::api::infer::error`]) and the ones axum makes on its own — an unknown
//! path (404), a method a route does not take (405), a body over `[api] max_body_bytes` (413),
//! an extractor's rejection — which this layer rewrites from their plain-text or empty bodies.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// The most of a plain-text error body kept as the JSON message.
const MAX_TEXT: usize = 4096;

/// The router's fallback: an unknown path.
pub async fn not_found(request: Request) -> Response {
    super::infer::error(
        StatusCode::NOT_FOUND,
        format!("no endpoint {} {}: expected POST /v1/infer/{{model}}, GET /v1/status or GET /v1/metrics", request.method(), request.uri().path()),
    )
}

/// Rewrites any error response without a JSON body into one.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("method {method} is not allowed on {path}"),
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the body is larger than this agent accepts (`[api] max_body_bytes`): {text}")
        }
        _ if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut rewritten = super::infer::error(status, message);
    // Keep what the status needs (`Allow` on a 405), not the old body's framing.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}
