//! A bare MQTT v5 client over TLS (rumqttc, no Ferry envelope, no reconnect): what an
//! impostor or a misbehaving device would use, and the benchmark's baseline.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::tokio_rustls::rustls::ClientConfig;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{NetworkOptions, TlsConfiguration, Transport};
use tokio::sync::mpsc;

/// What the connection reported.
#[derive(Debug)]
pub enum RawEvent {
    /// A message arrived.
    Publish {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// A PUBACK.
    PubAck(PubAckReason),
    /// A SUBACK.
    SubAck(Vec<SubscribeReasonCode>),
}

/// A connected bare client.
pub struct RawClient {
    /// rumqttc's handle.
    pub client: AsyncClient,
    events: mpsc::UnboundedReceiver<RawEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects to `127.0.0.1:port` with `tls` (or plain TCP with `None`) as `client_id`; Err with
/// the reason when the broker refuses or the handshake fails (within 5 s).
pub async fn connect(port: u16, tls: Option<Arc<ClientConfig>>, client_id: &str) -> Result<RawClient, String> {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_transport(match tls {
        Some(c) => Transport::tls_with_config(TlsConfiguration::Rustls(c)),
        None => Transport::Tcp,
    });
    options.set_max_packet_size(Some(8 * 1024 * 1024));
    options.set_keep_alive(Duration::from_secs(30));
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    options.set_network_options(net);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let first = tokio::time::timeout(Duration::from_secs(5), async {
        // Bounded: a refused connection errors on the first poll; a good one sends CONNACK.
        for _ in 0..10 {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("no CONNACK".to_string())
    })
    .await
    .map_err(|_| "timed out".to_string())??;
    let _ = first;
    let (tx, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        // Runs until the connection fails or the client is dropped (task aborted).
        loop {
            let ev = match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => RawEvent::Publish {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload.to_vec(),
                },
                Ok(Event::Incoming(Packet::PubAck(a))) => RawEvent::PubAck(a.reason),
                Ok(Event::Incoming(Packet::SubAck(a))) => RawEvent::SubAck(a.return_codes),
                Ok(_) => continue,
                Err(_) => return,
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    Ok(RawClient { client, events, task })
}

impl RawClient {
    /// Subscribes (QoS 1) and waits for the SUBACK's codes.
    pub async fn subscribe(&mut self, filter: &str) -> Vec<SubscribeReasonCode> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.expect("subscribe");
        loop {
            match self.next(Duration::from_secs(5)).await {
                Some(RawEvent::SubAck(codes)) => return codes,
                Some(_) => continue,
                None => panic!("no SUBACK"),
            }
        }
    }

    /// Publishes (QoS 1) and waits for the PUBACK's reason. Messages that arrive meanwhile
    /// are dropped: use it before collecting.
    pub async fn publish(&mut self, topic: &str, payload: Vec<u8>) -> PubAckReason {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
        loop {
            match self.next(Duration::from_secs(5)).await {
                Some(RawEvent::PubAck(r)) => return r,
                Some(_) => continue,
                None => panic!("no PUBACK"),
            }
        }
    }

    /// Publishes (QoS 1) without waiting.
    pub async fn publish_nowait(&self, topic: &str, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
    }

    /// The next event, or None after `timeout` (or when the connection is gone).
    pub async fn next(&mut self, timeout: Duration) -> Option<RawEvent> {
        tokio::time::timeout(timeout, self.events.recv()).await.ok().flatten()
    }

    /// The next message, skipping acks; None after `timeout`.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<(String, Vec<u8>)> {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                RawEvent::Publish { topic, payload } => {
                    let text = String::from_utf8_lossy(&payload);
                    crate::secrets::assert_clean(&format!("a payload on {topic}"), &[text]);
                    return Some((topic, payload));
                }
                _ => continue,
            }
        }
    }
}
