//! What the device puts in an offload's envelope as it sends it, and which link carries each
//! edge target.
//!
//! Deadlines cross the link as a *relative* budget: the time the request has left when it is
//! sent, minus the one-way trip the link is measured to take (half its round-trip estimate).
//! The edge counts that budget from the moment it receives the request, on its own clock, so a
//! device whose wall clock is wrong (a board without RTC or NTP) is judged fairly, and the edge
//! never works past the device's own deadline.
//!
//! Routing: `[[targets]].endpoint` is what routes a request. Ferry has one MQTT link (the
//! agent's `[mqtt]`), so an edge target is reachable only when its endpoint names that broker
//! (scheme, host and port), and one broker is one edge group (its edges share one
//! subscription): a second target over it would be a phantom edge with estimates of its own.
//! CoAP endpoints are refused until CoAP exists.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_decide::config::TargetConfig;
use ferry_drivers::BoardConfig;
use ferry_protocol::{wall_clock_us, Request, Response};
use ferry_transport::mqtt::MqttConfig;
use ferry_transport::{EdgeLink, LinkError};

/// An edge target's link, restamping each request's deadline as it is sent.
pub struct DeadlineLink<L> {
    inner: Arc<L>,
    /// The one-way trip to this edge, µs: half the link's round-trip estimate, kept current
    /// by the daemon.
    one_way_us: AtomicU64,
}

impl<L> DeadlineLink<L> {
    /// `inner`, with no one-way estimate yet.
    pub fn new(inner: Arc<L>) -> Self {
        Self {
            inner,
            one_way_us: AtomicU64::new(0),
        }
    }

    /// Sets the one-way estimate from the link's round-trip estimate (µs).
    pub fn set_rtt_us(&self, rtt_us: f64) {
        let one_way = if rtt_us.is_finite() && rtt_us > 0.0 {
            (rtt_us / 2.0) as u64
        } else {
            0
        };
        self.one_way_us.store(one_way, Ordering::Relaxed);
    }
}

/// The budget the edge gets, ms: what is left of `deadline_ms` (counted from `sent_at_us`) at
/// `now_us`, minus the one-way trip; 0 when nothing is left (the edge then refuses it at once).
pub fn remaining_ms(deadline_ms: u32, sent_at_us: u64, now_us: u64, one_way_us: u64) -> u32 {
    let elapsed = now_us.saturating_sub(sent_at_us);
    let left = (u64::from(deadline_ms) * 1000)
        .saturating_sub(elapsed)
        .saturating_sub(one_way_us);
    u32::try_from(left / 1000).unwrap_or(u32::MAX)
}

impl<L: EdgeLink> EdgeLink for DeadlineLink<L> {
    fn offload(
        &self,
        mut request: Request,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Response, LinkError>> + Send {
        let now = wall_clock_us();
        if let Some(d) = request.deadline_ms {
            request.deadline_ms = Some(remaining_ms(
                d,
                request.sent_at_us,
                now,
                self.one_way_us.load(Ordering::Relaxed),
            ));
        }
        request.sent_at_us = now;
        self.inner.offload(request, timeout)
    }
}

/// An edge target the agent cannot route: the file, the key, what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{path}: key `{key}`: {message}")]
pub struct RouteError {
    /// The board config.
    pub path: String,
    /// `targets[i].endpoint`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Checks that every edge target of `board` is routed by its endpoint: over `mqtt` (the agent
/// config at `agent_path`'s `[mqtt]`), one target per broker. Without `[mqtt]` the edges are
/// left out (local only), as before.
pub fn check_routes(
    board: &BoardConfig,
    mqtt: Option<&MqttConfig>,
    agent_path: &Path,
) -> Result<(), RouteError> {
    let Some(mqtt) = mqtt else { return Ok(()) };
    let err = |i: usize, message: String| RouteError {
        path: board.path.display().to_string(),
        key: format!("targets[{i}].endpoint"),
        message,
    };
    let broker = mqtt.broker_addr().map_err(|e| err(0, e.to_string()))?;
    let mut routed: Option<usize> = None;
    for (i, t) in board.targets.iter().enumerate() {
        let TargetConfig::Edge(e) = t else { continue };
        if e.endpoint.starts_with("coap://") || e.endpoint.starts_with("coaps://") {
            return Err(err(i, format!("`{}`: CoAP is not implemented yet; expected the mqtts:// broker of the agent's [mqtt]", e.endpoint)));
        }
        // Only the address is compared here (whether plain TCP is allowed is `[mqtt]`'s to say).
        let endpoint = MqttConfig {
            insecure: true,
            ..MqttConfig::new(e.endpoint.clone())
        };
        let addr = endpoint
            .broker_addr()
            .map_err(|x| err(i, format!("`{}`: {x}", e.endpoint)))?;
        if addr != broker {
            return Err(err(
                i,
                format!(
                    "`{}` is not the broker the agent reaches edges through: expected `{}` ({}: key `mqtt.broker`), which carries every offload",
                    e.endpoint,
                    mqtt.broker,
                    agent_path.display()
                ),
            ));
        }
        if let Some(first) = routed {
            return Err(err(
                i,
                format!("`{}`: the same broker as targets[{first}]; one broker is one edge group, expected one edge target for it", e.endpoint),
            ));
        }
        routed = Some(i);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_gets_what_is_left_of_the_deadline_minus_the_one_way_trip() {
        // 100 ms deadline, sent 30 ms ago, 10 ms one way: 60 ms left when it arrives.
        assert_eq!(remaining_ms(100, 1_000_000, 1_030_000, 10_000), 60);
        // Nothing left: 0, never a wrap-around.
        assert_eq!(remaining_ms(100, 1_000_000, 1_200_000, 10_000), 0);
        // A clock that went backwards leaves the whole budget, less the trip.
        assert_eq!(remaining_ms(100, 2_000_000, 1_000_000, 4_000), 96);
    }

    fn plain(broker: &str) -> MqttConfig {
        MqttConfig {
            insecure: true,
            ..MqttConfig::new(broker)
        }
    }

    fn repo() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn the_shipped_agent_config_reaches_its_boards_edge_by_its_endpoint() {
        let c = crate::daemon::AgentConfig::load(&repo().join("firmware-configs/agent.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let board = BoardConfig::load(c.resolve(&c.agent.board)).unwrap_or_else(|e| panic!("{e}"));
        check_routes(&board, c.mqtt.as_ref(), &c.path).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn an_edge_endpoint_that_is_not_the_broker_is_refused_naming_the_file_and_both_keys() {
        // x86-dev.toml's edge is mqtt://127.0.0.1:1883.
        let board = BoardConfig::load(repo().join("firmware-configs/x86-dev.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let e = check_routes(
            &board,
            Some(&plain("mqtt://127.0.0.1:9")),
            Path::new("/etc/ferry/agent.toml"),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("x86-dev.toml")
                && e.key.starts_with("targets[")
                && e.key.ends_with("].endpoint"),
            "{text}"
        );
        assert!(
            text.contains("mqtt.broker")
                && text.contains("/etc/ferry/agent.toml")
                && text.contains("mqtt://127.0.0.1:9"),
            "{text}"
        );
        // The same broker (the port spelled or defaulted) routes it.
        check_routes(
            &board,
            Some(&plain("mqtt://127.0.0.1")),
            Path::new("a.toml"),
        )
        .unwrap();
        // No [mqtt]: the edges are left out, nothing to route.
        check_routes(&board, None, Path::new("a.toml")).unwrap();
    }

    #[test]
    fn two_edge_targets_over_one_broker_are_refused() {
        let text = std::fs::read_to_string(repo().join("firmware-configs/x86-dev.toml")).unwrap()
            + "\n[[targets]]\nkind = \"edge\"\nname = \"phantom\"\nendpoint = \"mqtt://127.0.0.1:1883\"\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("board.toml");
        std::fs::write(&path, text).unwrap();
        let board = BoardConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let e = check_routes(
            &board,
            Some(&plain("mqtt://127.0.0.1:1883")),
            Path::new("a.toml"),
        )
        .unwrap_err();
        assert!(e.message.contains("one edge target"), "{e}");
    }

    struct Recorder(std::sync::Mutex<Vec<Request>>);
    impl EdgeLink for Recorder {
        fn offload(
            &self,
            request: Request,
            _timeout: Duration,
        ) -> impl std::future::Future<Output = Result<Response, LinkError>> + Send {
            self.0.lock().unwrap().push(request);
            async { Err(LinkError::no_link()) }
        }
    }

    #[tokio::test]
    async fn the_envelope_carries_the_relative_budget_stamped_at_send() {
        use ferry_protocol::{DeviceId, ImageFormat, Input, ModelName, Precision};
        let inner = Arc::new(Recorder(std::sync::Mutex::new(Vec::new())));
        let link = DeadlineLink::new(inner.clone());
        link.set_rtt_us(20_000.0);
        let sent_at = ferry_protocol::wall_clock_us() - 30_000;
        let request = Request {
            request_id: 7,
            device_id: DeviceId::new("dev-1").unwrap(),
            model: ModelName::new("digits").unwrap(),
            precision: Precision::Any,
            deadline_ms: Some(100),
            sent_at_us: sent_at,
            input: Input::Image {
                format: ImageFormat::Png,
                bytes: vec![1],
            },
        };
        let _ = link.offload(request, Duration::from_secs(1)).await;
        let sent = inner.0.lock().unwrap().pop().unwrap();
        let d = sent.deadline_ms.unwrap();
        assert!(
            (50..=60).contains(&d),
            "100 ms - 30 ms elapsed - 10 ms one way, got {d}"
        );
        assert!(sent.sent_at_us >= sent_at + 30_000, "stamped at send");
    }
}
