//! MQTT v5 over TLS 1.3: the device side ([`MqttOffloader`]), and what the edge server and the
//! telemetry publisher share with it: the connection settings ([`MqttConfig`],
//! [`mqtt_options`], [`Backoff`]) and the session layer ([`session`]).
//!
//! - `config`: [`MqttConfig`] (serde, documented, `deny_unknown_fields`).
//! - `backoff`: [`Backoff`]: exponential, jittered, bounded, reset only after a stable
//!   connection, at least [`TAKEOVER_MIN_DELAY`] after a session takeover.
//! - `tls`: the rustls client config (ring, configured CA only, mutual TLS, 1.3 by default).
//! - [`credentials`]: where a certificate or key is read from — a path, or `credential:NAME`
//!   for a file systemd hands the service with `LoadCredential=` — and the refusal of a
//!   private key that anyone but its owner can read.
//! - [`session`]: the I/O-free session layer every MQTT loop is driven by: the link's state
//!   machine (reconnect backoff, resubscription, [`LinkState`]), refusal vs network failure,
//!   PUBACK reasons and packet ids, and the device's request correlator.
//! - `subscribe`: [`subscribe_in_background`], the link's "subscribe" performed.
//! - `client`: [`MqttOffloader`]: the device's event loop and callers' API, counters.
//! - `error`: [`OffloadError`].
//! - `link`: [`MqttOffloader`] as a transport-neutral [`EdgeLink`](crate::EdgeLink).
//!
//! Facts that shaped it (measured against Mosquitto 2.0.11): TCP_NODELAY must be on or each
//! round trip stalls ~43 ms behind Nagle; rumqttc's default 10 KiB packet limit refuses
//! images, so the limit follows [`MqttConfig::max_message_size`]; v5 is used because a broker
//! answers an ACL denial with PUBACK `NotAuthorized` instead of dropping it silently.

mod backoff;
mod client;
pub mod config;
pub mod credentials;
mod error;
mod link;
pub mod session;
mod subscribe;
pub mod tls;

pub use backoff::{MIN_STABLE, TAKEOVER_MIN_DELAY};
pub use client::{CounterSnapshot, MqttOffloader};
pub use config::{Backoff, BrokerAddr, ConfigError, MqttConfig, TlsVersion};
pub use error::OffloadError;
pub use session::LinkState;
pub use subscribe::subscribe_in_background;

use rumqttc::v5::MqttOptions;
use rumqttc::{NetworkOptions, TlsConfiguration, Transport};

/// The most QoS 1 publishes one connection keeps unacknowledged at once (the broker's
/// `receive_maximum` may lower it; Mosquitto's default is 20). A bound of our own matters for
/// memory, not for flow: rumqttc sizes its outgoing table for the bound when an event loop is
/// created (one `Option<Publish>`, 216 bytes, per packet id), and with none it takes `u16::MAX`:
/// 14.2 MB (13.6 MiB) allocated and written per event loop. The telemetry publisher makes a
/// fresh event loop per connection, and glibc kept those blocks in its per-thread arenas
/// after they were freed: the agent's RSS grew in 13.6 MiB steps over broker restarts (the
/// rest of that growth is glibc's, see `ferry_agent::malloc`). At 256 the table is 55 KB (the
/// whole event loop 103 KB), below glibc's mmap threshold.
pub const MAX_OUTGOING_INFLIGHT: u16 = 256;

/// Builds rumqttc options from `config` for the client id `client_id`: TLS (or plain TCP when
/// allowed, with a warning logged), keep-alive, clean start, TCP_NODELAY, packet limits, at
/// most [`MAX_OUTGOING_INFLIGHT`] publishes in flight.
pub fn mqtt_options(config: &MqttConfig, client_id: &str) -> Result<MqttOptions, ConfigError> {
    config.check()?;
    let addr = config.broker_addr()?;
    let id = config.client_id.as_deref().unwrap_or(client_id);
    let mut options = MqttOptions::new(id, addr.host.clone(), addr.port);
    if addr.tls {
        let tls = tls::client_config(config)?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    } else {
        tracing::warn!(
            broker = %config.broker,
            "INSECURE: plain TCP to the broker (insecure = true): no encryption, no authentication"
        );
        options.set_transport(Transport::Tcp);
    }
    options.set_keep_alive(std::time::Duration::from_secs(u64::from(
        config.keep_alive_s,
    )));
    // Requests are short-lived: a reconnecting client starts clean and re-subscribes; the
    // scheduler has already fallen back for anything in flight.
    options.set_clean_start(true);
    options.set_max_packet_size(config.max_packet_size());
    options.set_outgoing_inflight_upper_limit(MAX_OUTGOING_INFLIGHT);
    options.set_connection_timeout(config.connect_timeout_ms.div_ceil(1000).max(1));
    let mut network = NetworkOptions::new();
    // Without it every small response waits for Nagle (~43 ms measured).
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(config.connect_timeout_ms.div_ceil(1000).max(1));
    options.set_network_options(network);
    Ok(options)
}
