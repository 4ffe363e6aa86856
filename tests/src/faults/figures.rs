//! From a scenario's records to its figures, by the definitions in [`super`]: what each
//! request got, counted; and the checks that do not depend on this machine's speed.

use std::collections::HashMap;

use super::client::Exchange;
use super::load::{Image, Record};

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A result from the edge.
    Edge,
    /// A result from a local variant; `fallback` when the edge was tried first.
    Local {
        /// The fallback the agent reported (`edge_busy`, `edge_error`, `edge_timeout`,
        /// `deadline_at_risk`).
        fallback: Option<String>,
    },
    /// `504 deadline_exceeded`: an answer, and a deadline miss.
    DeadlineExceeded,
    /// `503 busy`: the local queue was full and no other path could take it.
    Busy,
    /// `503 shutting_down`: the agent stopped before it finished.
    ShuttingDown,
    /// Any other answer with a status and a JSON error (a clear error).
    Failed(u16, String),
    /// The connection was refused: the agent was not running (or not yet listening).
    Refused,
    /// The connection was cut with no answer.
    Cut,
    /// No answer and no error, or not one answer.
    Lost(String),
}

/// What a request got, by the answer's status and body.
pub fn classify(r: &Record) -> Kind {
    match &r.exchange {
        Exchange::Refused(_) => Kind::Refused,
        Exchange::Cut(_) => Kind::Cut,
        Exchange::NoAnswer { partial } => Kind::Lost(format!("no answer ({partial} bytes of one)")),
        Exchange::Garbled(why) => Kind::Lost(why.clone()),
        Exchange::Answer { status, body } => {
            let kind = body["status"].as_str().unwrap_or("");
            match (*status, kind) {
                (200, _) => match body["ran"].as_str() {
                    Some(ran) if ran.starts_with("edge") => Kind::Edge,
                    Some("local") => Kind::Local {
                        fallback: body["fallback"].as_str().map(str::to_string),
                    },
                    other => Kind::Lost(format!("a 200 answer that ran on {other:?}")),
                },
                (504, "deadline_exceeded") => Kind::DeadlineExceeded,
                (503, "busy") => Kind::Busy,
                (503, "shutting_down") => Kind::ShuttingDown,
                (s, _) if body["error"].is_string() => {
                    Kind::Failed(s, body["error"].as_str().unwrap_or("").to_string())
                }
                (s, _) => Kind::Lost(format!("HTTP {s} without a JSON error: {body}")),
            }
        }
    }
}

/// How a scenario's fault unfolded, s on the scenario's clock.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// The fault began.
    pub start_s: f64,
    /// The fault ended (the broker, the edge or the agent started again, the link restored,
    /// the flood stopped, the disk freed).
    pub end_s: f64,
    /// When the agent was killed (SIGKILL), if it was: the one time a cut is a clear error.
    pub kill_s: Option<f64>,
    /// From the agent's signal until its restart listened again: the only time a connection
    /// may be refused (outside it, a refusal means the agent died).
    pub agent_down: Option<(f64, f64)>,
    /// Requests in flight when the agent was signalled.
    pub in_flight_at_signal: Option<usize>,
    /// No request sent in this interval can be answered by the edge before its end (the
    /// broker, the edge or the link is gone): an edge answer there means the fault did not
    /// happen.
    pub edge_unreachable: Option<(f64, f64)>,
}

/// One scenario's figures.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// The scenario's name.
    pub scenario: String,
    /// What was done, in words.
    pub fault: String,
    /// Requests the client started.
    pub sent: usize,
    /// Answered with a result (200).
    pub answered: usize,
    /// Of those, by the edge.
    pub on_edge: usize,
    /// Of those, locally.
    pub local: usize,
    /// Of the local ones, after the edge was tried (the agent's `fallback`).
    pub fallback: usize,
    /// Answered `deadline_exceeded`, or with a result later than the deadline.
    pub deadline_misses: usize,
    /// Clear errors: busy, shutting_down, other JSON errors, refused connections.
    pub errors: usize,
    /// Connections cut by the agent's SIGKILL (sent before it, ended at it).
    pub cut_by_kill: usize,
    /// Requests with no answer and no error.
    pub lost: usize,
    /// Requests answered twice, or answered with another request's answer; and answers the
    /// edge sent beyond the requests it received.
    pub duplicated: usize,
    /// From the fault's end to the first answer from the edge to a request sent after it, s.
    pub recovery_s: Option<f64>,
    /// Breakdowns and the edge's own counters.
    pub notes: Vec<String>,
    /// Every check that failed.
    pub violations: Vec<String>,
}

impl Figures {
    /// Counts `records` by the definitions, and checks what cannot depend on speed: nothing
    /// lost, nothing duplicated, a cut only at a kill, a refusal only while the agent was
    /// down, no edge answer while the edge was unreachable. `windows` are the faults, in
    /// order (one per scenario; a soak has many); `deadline_ms` is the load's deadline. The
    /// recovery figure is the longest over the windows.
    pub fn count(
        scenario: &str,
        fault: &str,
        records: &[Record],
        images: &[Image],
        windows: &[Window],
        deadline_ms: u32,
    ) -> Figures {
        let mut f = Figures {
            scenario: scenario.to_string(),
            fault: fault.to_string(),
            sent: records.len(),
            ..Figures::default()
        };
        let mut breakdown: HashMap<String, usize> = HashMap::new();
        let mut ids: HashMap<u64, usize> = HashMap::new();
        for r in records {
            let kind = classify(r);
            let latency_ms = (r.done_s - r.sent_s) * 1e3;
            if let Exchange::Answer { body, .. } = &r.exchange {
                if let Some(id) = body["request_id"].as_u64() {
                    *ids.entry(id).or_default() += 1;
                }
                if crossed(body, r.image, images) {
                    f.duplicated += 1;
                    f.violations.push(format!(
                        "request {} ({}) was answered with another image's class: {body}",
                        r.n, images[r.image].name
                    ));
                }
            }
            match &kind {
                Kind::Edge | Kind::Local { .. } => {
                    f.answered += 1;
                    if latency_ms > f64::from(deadline_ms) {
                        f.deadline_misses += 1;
                    }
                    if kind == Kind::Edge {
                        f.on_edge += 1;
                    } else {
                        f.local += 1;
                    }
                    if let Kind::Local {
                        fallback: Some(why),
                    } = &kind
                    {
                        f.fallback += 1;
                        *breakdown.entry(format!("fallback {why}")).or_default() += 1;
                    }
                }
                Kind::DeadlineExceeded => {
                    f.deadline_misses += 1;
                    *breakdown.entry("504 deadline_exceeded".into()).or_default() += 1;
                }
                Kind::Busy | Kind::ShuttingDown | Kind::Failed(..) | Kind::Refused => {
                    f.errors += 1;
                    let name = match &kind {
                        Kind::Busy => "503 busy".to_string(),
                        Kind::ShuttingDown => "503 shutting_down".to_string(),
                        Kind::Failed(s, _) => format!("{s} error"),
                        _ => "refused".to_string(),
                    };
                    *breakdown.entry(name).or_default() += 1;
                }
                Kind::Cut => {
                    match windows.iter().filter_map(|w| w.kill_s).find(|&kill| {
                        r.sent_s <= kill && r.done_s >= kill && r.done_s <= kill + 1.0
                    }) {
                        Some(_) => f.cut_by_kill += 1,
                        None => {
                            f.lost += 1;
                            f.violations.push(format!("request {} sent at {:.2} s was cut at {:.2} s with no kill then: {:?}", r.n, r.sent_s, r.done_s, r.exchange));
                        }
                    }
                }
                Kind::Lost(why) => {
                    f.lost += 1;
                    f.violations.push(format!(
                        "request {} sent at {:.2} s got no answer and no error: {why}",
                        r.n, r.sent_s
                    ));
                }
            }
            let down = windows
                .iter()
                .filter_map(|w| w.agent_down)
                .any(|(from, to)| r.sent_s >= from - 0.05 && r.sent_s <= to);
            if kind == Kind::Refused && !down {
                f.violations.push(format!("request {} sent at {:.2} s was refused while the agent should have been running: {:?}", r.n, r.sent_s, r.exchange));
            }
            for (from, to) in windows
                .iter()
                .filter_map(|w| w.edge_unreachable)
                .filter(|_| kind == Kind::Edge)
            {
                if r.sent_s >= from && r.done_s < to {
                    f.violations.push(format!(
                        "request {} sent at {:.2} s was answered by the edge at {:.2} s, while the edge was unreachable ({from:.2}–{to:.2} s): the fault did not happen",
                        r.n, r.sent_s, r.done_s
                    ));
                }
            }
        }
        for (id, n) in ids.iter().filter(|(_, n)| **n > 1) {
            f.duplicated += n - 1;
            f.violations
                .push(format!("request id {id} was in {n} answers"));
        }
        // The worst recovery; one that never came is `None`.
        let recoveries: Vec<Option<f64>> =
            windows.iter().map(|w| recovery(records, w.end_s)).collect();
        f.recovery_s = if recoveries.iter().all(Option::is_some) {
            recoveries.into_iter().flatten().max_by(f64::total_cmp)
        } else {
            None
        };
        let mut parts: Vec<String> = breakdown
            .into_iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        parts.sort();
        for n in windows.iter().filter_map(|w| w.in_flight_at_signal) {
            parts.push(format!("{n} in flight at the signal"));
        }
        if !parts.is_empty() {
            f.notes.push(parts.join(", "));
        }
        f
    }

    /// Adds the edge's final counters (its `StatsSnapshot` log line): every message it
    /// received gets at most one answer, so more answers than messages are duplicates.
    pub fn edge_counters(&mut self, line: Option<&str>) {
        let Some(line) = line else {
            self.violations
                .push("the edge logged no final counters".to_string());
            return;
        };
        let get = |field: &str| crate::bed::snapshot_field(line, field).unwrap_or(0);
        let (received, ok, error, busy, probes) = (
            get("received"),
            get("answered_ok"),
            get("answered_error"),
            get("busy"),
            get("probes"),
        );
        let answers = ok + error + busy + probes;
        if answers > received {
            self.duplicated += usize::try_from(answers - received).unwrap_or(usize::MAX);
            self.violations.push(format!(
                "the edge answered {answers} times to {received} messages: {line}"
            ));
        }
        self.notes.push(format!(
            "edge: received {received}, ok {ok}, error {error}, busy {busy}, probes {probes}"
        ));
    }
}

/// From `end_s` to the first answer from the edge to a request sent at or after it, s.
pub fn recovery(records: &[Record], end_s: f64) -> Option<f64> {
    records
        .iter()
        .filter(|r| r.sent_s >= end_s && classify(r) == Kind::Edge)
        .map(|r| r.done_s - end_s)
        .min_by(f64::total_cmp)
}

/// True when an answer for image `mine` carries another image's class and not its own: a
/// request answered with another request's answer.
fn crossed(body: &serde_json::Value, mine: usize, images: &[Image]) -> bool {
    let Some(top1) = body["top"][0]["index"].as_u64() else {
        return false;
    };
    top1 != images[mine].top1
        && images
            .iter()
            .enumerate()
            .any(|(i, img)| i != mine && img.top1 == top1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(n: usize, image: usize, sent_s: f64, done_s: f64, exchange: Exchange) -> Record {
        Record {
            n,
            image,
            sent_s,
            done_s,
            exchange,
        }
    }

    fn ok(id: u64, ran: &str, top1: u64) -> Exchange {
        Exchange::Answer {
            status: 200,
            body: json!({"request_id": id, "ran": ran, "fallback": null, "status": "ok", "top": [{"index": top1}]}),
        }
    }

    #[test]
    fn records_are_counted_by_the_definitions() {
        let images = vec![
            Image {
                name: "a",
                bytes: vec![],
                top1: 1,
            },
            Image {
                name: "b",
                bytes: vec![],
                top1: 2,
            },
        ];
        let records = vec![
            rec(0, 0, 0.0, 0.1, ok(10, "edge:edge", 1)),
            rec(1, 1, 0.5, 0.6, ok(11, "local", 2)),
            rec(2, 0, 1.0, 1.1, Exchange::Cut("reset".into())),
            rec(3, 1, 1.5, 1.5, Exchange::Refused("no socket".into())),
            rec(4, 0, 2.0, 5.0, ok(12, "edge:edge", 1)),
            rec(5, 1, 6.0, 6.1, ok(12, "edge:edge", 1)),
            rec(6, 0, 7.0, 40.0, Exchange::NoAnswer { partial: 0 }),
        ];
        let window = Window {
            start_s: 1.05,
            end_s: 1.9,
            kill_s: Some(1.05),
            agent_down: Some((1.05, 1.9)),
            ..Window::default()
        };
        let f = Figures::count("t", "t", &records, &images, &[window], 1000);
        assert_eq!((f.sent, f.answered, f.on_edge, f.local), (7, 4, 3, 1));
        assert_eq!(
            (f.cut_by_kill, f.errors, f.lost, f.deadline_misses),
            (1, 1, 1, 1)
        );
        // Record 5 repeats id 12 and carries image a's class for image b.
        assert_eq!(f.duplicated, 2, "{:?}", f.violations);
        assert_eq!(f.violations.len(), 3, "{:?}", f.violations);
        assert_eq!(f.recovery_s.map(|s| (s * 10.0).round() / 10.0), Some(3.1));
        // Without a kill, the cut is lost.
        let f = Figures::count(
            "t",
            "t",
            &records,
            &images,
            &[Window {
                end_s: 1.9,
                ..Window::default()
            }],
            1000,
        );
        assert_eq!((f.cut_by_kill, f.lost), (0, 2));
        assert!(
            f.violations
                .iter()
                .any(|v| v.contains("refused while the agent should have been running")),
            "{:?}",
            f.violations
        );
    }
}
