//! The task that drains the spool to the broker.
//!
//! Each connection attempt gets a fresh rumqttc client and event loop, dropped whole when
//! the connection is lost. That is deliberate: rumqttc keeps requests that were still in its
//! channel and would send them on the next connection, after the ones this task re-sends
//! from the spool — out of order. With a fresh client per connection the spool is the only
//! source: on every connection the task sends from the spool's head, in order, at most
//! `max_inflight` unacknowledged, and moves the head only over a prefix acknowledged by
//! PUBACK. A message can thus be sent twice only if a connection drops between the broker
//! taking it and its PUBACK arriving (at least once; consumers dedupe by `seq`).
//!
//! On every connection the task first publishes the retained descriptor and the retained
//! `online` status; the connection's last will is a retained `offline`. These state
//! messages are not spooled: they describe the present connection, and replaying an old
//! one later would be wrong.
//!
//! A separate task only polls the event loop and forwards the few events that matter, so
//! that the driver can `select!` on them without cancelling rumqttc's `poll` mid-packet.
//! What those events mean comes from the transport's session layer: the [`Link`] keeps the
//! connection's state and the reconnect backoff across the fresh clients, [`PacketIds`]
//! tells which spool record a PUBACK acknowledges, and [`PubAckOutcome`] whether the broker
//! took it. The window over the spool and its ack pointer are this task's own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::topics;
use ferry_transport::mqtt::session::{Disconnection, Link, PacketIds, PubAckOutcome};
use ferry_transport::mqtt::{mqtt_options, Backoff, MqttConfig};
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::schema::{self, Envelope, SpooledMessage, Status};
use super::{lock, Inner, Telemetry, TelemetryConfig, TelemetryError};

/// Room in rumqttc's request channel: the window plus the state messages, with margin, so
/// that `publish` never waits on it.
const CHANNEL_SLACK: usize = 8;

/// Counters, as read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublisherCounters {
    /// Spooled messages handed to the broker (re-sends after a reconnect included).
    pub published: u64,
    /// Spooled messages acknowledged by the broker.
    pub acked: u64,
    /// Acknowledged with a refusal (e.g. not authorised by the ACL): not retried, logged.
    pub refused: u64,
    /// Successful connections.
    pub connections: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    connections: AtomicU64,
}

/// The running publisher. Dropping it aborts the task (the broker then sends the last
/// will); [`shutdown`](Self::shutdown) says `offline` itself and disconnects cleanly.
pub struct Publisher {
    stop: watch::Sender<bool>,
    connected: watch::Receiver<bool>,
    counters: Arc<Counters>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("connected", &*self.connected.borrow())
            .field("counters", &self.counters())
            .finish()
    }
}

struct Topics {
    status: String,
    descriptor: String,
}

impl Publisher {
    /// Starts draining `telemetry`'s spool to the broker of `mqtt` (TLS, reconnect backoff
    /// and timeouts from there), with a tokio runtime current. Returns at once; connecting
    /// happens in the background and never gives up. `descriptor` is published retained on
    /// every connection.
    pub fn start(
        telemetry: &Telemetry,
        mqtt: &MqttConfig,
        config: &TelemetryConfig,
        descriptor: serde_json::Value,
    ) -> Result<Publisher, TelemetryError> {
        config.check()?;
        let device = telemetry.inner.device;
        let client_id = config
            .client_id
            .clone()
            .unwrap_or_else(|| format!("{}-telemetry", mqtt.client_id.as_deref().unwrap_or(device.as_str())));
        let mut mqtt = mqtt.clone();
        mqtt.client_id = Some(client_id.clone());
        let options = mqtt_options(&mqtt, &client_id)?;
        let topics = Topics {
            status: topics::telemetry_topic(&device, schema::STATUS)?,
            descriptor: topics::telemetry_topic(&device, schema::DESCRIPTOR)?,
        };
        let descriptor = serde_json::to_vec(&Envelope {
            device_id: device.to_string(),
            timestamp: schema::now_ms(),
            seq: None,
            data: descriptor,
        })?;
        let (stop, stop_rx) = watch::channel(false);
        let (connected_tx, connected) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let driver = Driver {
            inner: telemetry.inner.clone(),
            options,
            topics,
            descriptor,
            window: usize::from(config.max_inflight),
            sync_every: match config.fsync_interval_ms {
                0 => Duration::from_secs(1),
                ms => Duration::from_millis(ms),
            },
            // Nothing to subscribe to: the link is ready at every CONNACK.
            link: Link::new(Backoff::new(&mqtt), Vec::new()),
            stop: stop_rx,
            connected: connected_tx,
            counters: counters.clone(),
        };
        let task = tokio::spawn(driver.run());
        Ok(Publisher {
            stop,
            connected,
            counters,
            task: Some(task),
        })
    }

    /// True while connected to the broker.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits until connected, at most `timeout`; false if not.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut c = self.connected.clone();
        let waited = tokio::time::timeout(timeout, c.wait_for(|c| *c)).await;
        matches!(waited, Ok(Ok(_)))
    }

    /// The counters (relaxed atomic loads).
    pub fn counters(&self) -> PublisherCounters {
        let c = &self.counters;
        PublisherCounters {
            published: c.published.load(Ordering::Relaxed),
            acked: c.acked.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
        }
    }

    /// Publishes a retained `offline` (if connected), disconnects and stops the task (at
    /// most about two seconds). What is still spooled stays for the next start.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What the poller forwards.
enum Ev {
    ConnAck,
    /// rumqttc gave the next queued publish this packet id.
    Sent(u16),
    Acked(u16, PubAckReason),
    Lost(Disconnection),
}

/// How a connection ended.
enum End {
    Lost(Disconnection),
    Stopped,
}

struct Driver {
    inner: Arc<Inner>,
    options: MqttOptions,
    topics: Topics,
    descriptor: Vec<u8>,
    window: usize,
    sync_every: Duration,
    link: Link,
    stop: watch::Receiver<bool>,
    connected: watch::Sender<bool>,
    counters: Arc<Counters>,
}

struct AbortOnDrop(JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn status_body(device: &str, state: &str) -> Vec<u8> {
    let envelope = Envelope {
        device_id: device.to_owned(),
        timestamp: schema::now_ms(),
        seq: None,
        data: Status {
            state: state.to_owned(),
        },
    };
    // A struct of strings and integers always serialises.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

impl Driver {
    async fn run(mut self) {
        loop {
            if *self.stop.borrow() {
                return;
            }
            match self.connection().await {
                End::Stopped => return,
                End::Lost(cause) => {
                    let step = self.link.on_connection_lost(cause);
                    self.connected.send_replace(false);
                    let why = &step.cause.why;
                    if step.was_ready {
                        tracing::warn!(error = %why, "telemetry: connection to the broker lost; spooling");
                    } else {
                        tracing::debug!(error = %why, delay = ?step.delay, "telemetry: connection attempt failed");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(step.delay) => self.link.on_backoff_elapsed(),
                        _ = self.stop.changed() => return,
                    }
                }
            }
        }
    }

    async fn connection(&mut self) -> End {
        let device = self.inner.device.to_string();
        let mut options = self.options.clone();
        options.set_last_will(LastWill::new(
            self.topics.status.clone(),
            status_body(&device, "offline"),
            QoS::AtLeastOnce,
            true,
            None,
        ));
        let (client, mut eventloop) = AsyncClient::new(options, self.window + CHANNEL_SLACK);
        let (tx, mut rx) = mpsc::channel(self.window + CHANNEL_SLACK);
        let _poller = AbortOnDrop(tokio::spawn(async move {
            loop {
                let ev = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Ev::ConnAck,
                    Ok(Event::Incoming(Packet::PubAck(ack))) => Ev::Acked(ack.pkid, ack.reason),
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Ev::Sent(pkid),
                    Ok(_) => continue,
                    Err(e) => Ev::Lost(Disconnection::from(&e)),
                };
                let last = matches!(ev, Ev::Lost(_));
                if tx.send(ev).await.is_err() || last {
                    return;
                }
            }
        }));

        // Spool seqs, None for state messages.
        let mut packets: PacketIds<Option<u64>> = PacketIds::default();
        // Sent spool records in order, and whether each is acknowledged.
        let mut inflight: VecDeque<(u64, bool)> = VecDeque::new();
        let mut next_send = lock(&self.inner.spool).head();
        let mut tick = tokio::time::interval(self.sync_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            if self.link.is_ready() && inflight.len() < self.window {
                let records = {
                    let mut spool = lock(&self.inner.spool);
                    next_send = next_send.max(spool.head());
                    spool.read(next_send, self.window - inflight.len())
                };
                let records = match records {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "telemetry spool unreadable");
                        Vec::new()
                    }
                };
                for record in records {
                    next_send = record.seq + 1;
                    let Some(message) = SpooledMessage::decode(&record.payload) else {
                        tracing::error!(seq = record.seq, "undecodable spool record skipped");
                        inflight.push_back((record.seq, true));
                        continue;
                    };
                    let sent = client
                        .publish(message.topic, QoS::AtLeastOnce, message.retain, message.body)
                        .await;
                    if let Err(e) = sent {
                        return End::Lost(Disconnection::network(e.to_string()));
                    }
                    packets.queued(Some(record.seq));
                    inflight.push_back((record.seq, false));
                    self.counters.published.fetch_add(1, Ordering::Relaxed);
                }
                self.advance(&mut inflight);
            }
            tokio::select! {
                _ = self.stop.changed() => {
                    if self.link.is_ready() {
                        self.say_offline(&client, &device, &mut rx).await;
                    }
                    self.link.on_closed();
                    self.connected.send_replace(false);
                    return End::Stopped;
                }
                ev = rx.recv() => match ev {
                    None => return End::Lost(Disconnection::network("event loop ended")),
                    Some(Ev::Lost(cause)) => return End::Lost(cause),
                    Some(Ev::ConnAck) => {
                        // No subscriptions: this makes the link ready.
                        self.link.on_connack();
                        self.counters.connections.fetch_add(1, Ordering::Relaxed);
                        let retained = [
                            (self.topics.descriptor.clone(), self.descriptor.clone()),
                            (self.topics.status.clone(), status_body(&device, "online")),
                        ];
                        for (topic, body) in retained {
                            if let Err(e) = client.publish(topic, QoS::AtLeastOnce, true, body).await {
                                return End::Lost(Disconnection::network(e.to_string()));
                            }
                            packets.queued(None);
                        }
                        self.connected.send_replace(true);
                        tracing::info!("telemetry: connected");
                    }
                    Some(Ev::Sent(pkid)) => packets.on_sent(pkid),
                    Some(Ev::Acked(pkid, reason)) => {
                        let Some((Some(seq), outcome)) = packets.on_puback(pkid, reason) else { continue };
                        // Nobody listening is fine for telemetry: the broker took it.
                        if let PubAckOutcome::Refused(reason) = outcome {
                            self.counters.refused.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(seq, ?reason, "telemetry message refused by the broker; not retried");
                        }
                        if let Some(entry) = inflight.iter_mut().find(|(s, _)| *s == seq) {
                            entry.1 = true;
                        }
                        self.counters.acked.fetch_add(1, Ordering::Relaxed);
                        self.advance(&mut inflight);
                    }
                },
                _ = self.inner.appended.notified(), if self.link.is_ready() => {}
                _ = tick.tick() => {
                    if let Err(e) = lock(&self.inner.spool).sync_if_due() {
                        tracing::error!(error = %e, "telemetry spool fsync failed");
                    }
                }
            }
        }
    }

    /// Moves the spool head over the acknowledged prefix of `inflight`.
    fn advance(&self, inflight: &mut VecDeque<(u64, bool)>) {
        let mut last = None;
        while let Some(&(seq, true)) = inflight.front() {
            last = Some(seq);
            inflight.pop_front();
        }
        if let Some(seq) = last {
            if let Err(e) = lock(&self.inner.spool).ack(seq) {
                tracing::error!(error = %e, "telemetry spool ack failed");
            }
        }
    }

    /// Publishes the retained `offline` and disconnects, waiting at most a second for the
    /// broker to take it.
    async fn say_offline(&self, client: &AsyncClient, device: &str, rx: &mut mpsc::Receiver<Ev>) {
        let body = status_body(device, "offline");
        if client
            .publish(self.topics.status.clone(), QoS::AtLeastOnce, true, body)
            .await
            .is_err()
        {
            return;
        }
        // Wait for any PUBACK after it was queued: the broker answers in order.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let mut queued_before = true;
            while let Some(ev) = rx.recv().await {
                match ev {
                    Ev::Sent(_) => queued_before = false,
                    Ev::Acked(..) if !queued_before => break,
                    Ev::Lost(_) => break,
                    _ => {}
                }
            }
        })
        .await;
        let _ = tokio::time::timeout(Duration::from_millis(500), client.disconnect()).await;
        // Give the poller a moment to write the DISCONNECT.
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
    }
}
