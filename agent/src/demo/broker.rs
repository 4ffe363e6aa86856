//! The demo's MQTT broker: rumqttd, in-process, plain TCP on loopback. (Production points at
//! Mosquitto or a fleet broker with TLS and ACLs; rumqttd has no ACLs.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Starts rumqttd (MQTT v5) on `127.0.0.1:port` in a thread of its own and waits until it
/// accepts connections.
pub fn start(port: u16) -> Result<SocketAddr, String> {
    let text = format!(
        r#"
id = 0
[router]
max_connections = 64
max_outgoing_packet_count = 512
max_segment_size = 104857600
max_segment_count = 10

[v5.1]
name = "demo-v5"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
[v5.1.connections]
connection_timeout_ms = 5000
max_payload_size = 8388608
max_inflight_count = 256
"#
    );
    let config: rumqttd::Config =
        toml::from_str(&text).map_err(|e| format!("broker config: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    std::thread::Builder::new()
        .name("demo-broker".to_string())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "demo broker stopped");
            }
        })
        .map_err(|e| format!("broker thread: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("the demo broker did not start listening on {addr}"))
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
