//! `GET /v1/status` (JSON) and `GET /v1/metrics` (Prometheus text).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use ferry_decide::targets::TargetKind;
use serde_json::{json, Value};

use crate::daemon::stats::Stats;
use crate::daemon::Daemon;

fn link_state(daemon: &Daemon) -> String {
    match &daemon.offloader {
        None => "none".to_string(),
        Some(o) => format!("{:?}", o.link_state()),
    }
}

/// What probing has cost since start: probes sent, their payload bytes, and the mean rate
/// (each edge's `probe` says what the present cadence costs).
fn probe_cost(d: &Daemon) -> Value {
    use std::sync::atomic::Ordering;
    let c = d.probe_counters();
    let (sent, bytes) = (c.sent.load(Ordering::Relaxed), c.payload_bytes.load(Ordering::Relaxed));
    let secs = d.uptime().as_secs_f64().max(1e-3);
    json!({"sent": sent, "payload_bytes": bytes, "payload_bytes_per_s": bytes as f64 / secs,
           "header_bytes_per_message": ferry_decide::probe::MESSAGE_OVERHEAD_BYTES})
}

/// The status page.
pub async fn status(State(d): State<Arc<Daemon>>) -> Json<Value> {
    let s = &d.stats;
    let c = d.executor.counters();
    let now = d.executor.now_us();
    let targets: Vec<Value> = d.executor.with_decider(|dec| {
        let est = dec.estimators();
        dec.targets()
            .iter()
            .map(|t| {
                let name = dec.targets().name(t.id);
                match t.kind {
                    TargetKind::Local { model, precision, .. } => {
                        let (mean, std) = est.local_compute_us(t.id);
                        json!({"name": name, "kind": "local", "model": dec.targets().model_name(model), "precision": precision.as_str(),
                               "compute_ms": mean / 1e3, "compute_std_ms": std / 1e3})
                    }
                    TargetKind::Edge { .. } => {
                        let e = est.edge(t.id);
                        let plan = dec.probe_plan(t.id, now);
                        json!({"name": name, "kind": "edge", "queue_ms": e.queue().mean() / 1e3,
                               "failure_probability": e.failure_probability(), "tripped": e.tripped(),
                               "rtt_ms": e.link.rtt().mean() / 1e3, "up_mbps": e.link.up_mbps(),
                               "probe": {"interval_ms": plan.interval_us / 1000, "bytes": plan.bytes, "gain": plan.gain,
                                         "bytes_per_s": plan.bytes_per_s, "uplink_share": plan.uplink_share}})
                    }
                }
            })
            .collect()
    });
    let sensors = d.sensors.lock().map(|v| v.clone()).unwrap_or_default();
    Json(json!({
        "device_id": d.device.as_str(),
        "healthy": true,
        "uptime_s": d.uptime().as_secs_f64(),
        "policy": d.executor.with_decider(|dec| dec.policy_name()),
        "edge_link": link_state(&d),
        "local_busy": d.executor.local_busy(),
        "answers": {"local": Stats::get(&s.local), "edge": Stats::get(&s.edge), "failed": Stats::get(&s.failed), "rejected": Stats::get(&s.rejected)},
        "fallbacks": {"edge_busy": Stats::get(&s.fallback_busy), "edge_error": Stats::get(&s.fallback_error),
                      "edge_timeout": Stats::get(&s.fallback_timeout), "deadline_at_risk": Stats::get(&s.fallback_at_risk)},
        "deadline_misses": Stats::get(&s.deadline_misses),
        "admission": {"deadline_exceeded": Stats::get(&s.deadline_exceeded), "busy": Stats::get(&s.busy),
                      "superseded": Stats::get(&s.superseded), "cancelled": c.cancelled.load(Ordering::Relaxed)},
        "local_runs": {"waiting": d.executor.local_waiting(), "withdrawn": c.local_withdrawn.load(Ordering::Relaxed),
                       "stopped": c.local_stopped.load(Ordering::Relaxed),
                       "compute_ms": c.local_compute_us.load(Ordering::Relaxed) as f64 / 1e3},
        "latency": s.percentiles(),
        "targets": targets,
        "probes": probe_cost(&d),
        "sensors": sensors,
    }))
}

/// Prometheus text exposition of the counters.
pub async fn metrics(State(d): State<Arc<Daemon>>) -> impl IntoResponse {
    let s = &d.stats;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    counter(
        "ferry_requests_total",
        "Answered requests by where they ran.",
        &[
            ("{path=\"local\"}", Stats::get(&s.local)),
            ("{path=\"edge\"}", Stats::get(&s.edge)),
            ("{path=\"failed\"}", Stats::get(&s.failed)),
            ("{path=\"rejected\"}", Stats::get(&s.rejected)),
        ],
    );
    counter(
        "ferry_fallbacks_total",
        "Requests that fell back from the edge to local, by reason.",
        &[
            ("{reason=\"edge_busy\"}", Stats::get(&s.fallback_busy)),
            ("{reason=\"edge_error\"}", Stats::get(&s.fallback_error)),
            ("{reason=\"edge_timeout\"}", Stats::get(&s.fallback_timeout)),
            ("{reason=\"deadline_at_risk\"}", Stats::get(&s.fallback_at_risk)),
        ],
    );
    counter("ferry_deadline_misses_total", "Answers later than their deadline.", &[("", Stats::get(&s.deadline_misses))]);
    counter(
        "ferry_admission_total",
        "Requests answered without running to the end, by status.",
        &[
            ("{status=\"deadline_exceeded\"}", Stats::get(&s.deadline_exceeded)),
            ("{status=\"busy\"}", Stats::get(&s.busy)),
            ("{status=\"superseded\"}", Stats::get(&s.superseded)),
            ("{status=\"cancelled\"}", d.executor.counters().cancelled.load(Ordering::Relaxed)),
        ],
    );
    let p = s.percentiles();
    let _ = writeln!(out, "# HELP ferry_request_latency_ms Request latency over the last {} answers.\n# TYPE ferry_request_latency_ms summary", p.count);
    for (q, v) in [("0.5", p.p50_ms), ("0.95", p.p95_ms), ("0.99", p.p99_ms)] {
        let _ = writeln!(out, "ferry_request_latency_ms{{quantile=\"{q}\"}} {v}");
    }
    let _ = writeln!(out, "# HELP ferry_uptime_seconds Seconds since the agent started.\n# TYPE ferry_uptime_seconds gauge\nferry_uptime_seconds {}", d.uptime().as_secs_f64());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
