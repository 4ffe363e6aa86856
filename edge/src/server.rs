//! The MQTT side of the edge: one task drives rumqttc's event loop, with the connection's
//! state (reconnect backoff, re-subscribing after every CONNACK, what a PUBACK says) kept by
//! the transport's session layer ([`Link`], [`PubAckOutcome`]); each request goes to the
//! [`Handler`], and a second task publishes the answers.
//!
//! Stopping keeps "exactly one answer": take no new requests (unsubscribe; what still
//! arrives before the UNSUBACK is answered `busy`), let the workers answer what is queued
//! (`busy`, the device runs it locally at once) and finish what they hold, publish every
//! answer and wait for the broker's PUBACKs — all within `shutdown_drain_ms` — and only then
//! disconnect. What the deadline cuts off is counted and logged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{topics, Limits};
use ferry_transport::mqtt::session::{AfterConnAck, AfterSubAck, Disconnection, Link, PubAckOutcome};
use ferry_transport::mqtt::{mqtt_options, subscribe_in_background, Backoff};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::answers::{self, AnswerReceiver, Answers};
use crate::clock::SkewMonitor;
use crate::config::EdgeConfig;
use crate::handler::Handler;
use crate::models::Catalogue;
use crate::stats::{Stats, StatsSnapshot};
use crate::worker::{Pool, Queue};
use crate::EdgeError;

/// Capacity of rumqttc's request channel (answers waiting for the socket).
const CHANNEL_CAPACITY: usize = 256;

/// Runs the edge server until `shutdown` completes, then stops as the module doc says;
/// returns the final counters.
pub async fn run(
    config: EdgeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<StatsSnapshot, EdgeError> {
    config.check()?;
    let loading = config.clone();
    let catalogue = tokio::task::spawn_blocking(move || Catalogue::load(&loading))
        .await
        .map_err(|e| EdgeError::Task(e.to_string()))??;
    if catalogue.is_empty() {
        return Err(EdgeError::NoModels);
    }
    tracing::info!(models = ?catalogue.describe(), "models ready");
    let subscription = topics::edge_request_subscription(&config.share_group)
        .map_err(|e| EdgeError::Config(crate::config::ConfigError::Value {
            key: "share_group",
            reason: e.to_string(),
        }))?;
    let options = mqtt_options(
        &config.mqtt,
        &format!("ferry-edge-{}", std::process::id()),
    )
    .map_err(crate::config::ConfigError::from)?;
    let stats = Arc::new(Stats::default());
    let (answers, answer_rx) = answers::channel(config.answer_capacity, stats.clone());
    let queue = Queue::new(config.queue_capacity);
    let pool = Pool::start(
        config.workers,
        &queue,
        config.max_batch,
        answers.clone(),
        stats.clone(),
    )
    .map_err(EdgeError::Spawn)?;

    let (client, mut eventloop) = AsyncClient::new(options, CHANNEL_CAPACITY);
    let (stop_publisher, publisher_stop) = oneshot::channel();
    let publisher = tokio::spawn(publish(client.clone(), answer_rx, publisher_stop));

    let mut session = Session {
        handler: Handler {
            limits: Limits {
                max_message_size: config.mqtt.max_message_size,
            },
            catalogue,
            queue: queue.clone(),
            answers: answers.clone(),
            stats: stats.clone(),
            skew: SkewMonitor::default(),
            buf: Vec::new(),
        },
        link: Link::new(Backoff::new(&config.mqtt), vec![subscription.clone()]),
        client: client.clone(),
        subscription,
        broker: config.mqtt.broker.clone(),
        stopping: false,
        unsubscribed: false,
        published: 0,
    };
    tokio::pin!(shutdown);
    // Runs until shutdown; each turn handles one event or one failed connection attempt.
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => break,
            event = eventloop.poll() => event,
        };
        if let Some(delay) = session.on_event(event) {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(delay) => session.link.on_backoff_elapsed(),
            }
        }
    }

    let drain = Duration::from_millis(config.shutdown_drain_ms);
    tracing::info!(queued = queue.depth(), ?drain, "stopping: no new requests; answering what is queued and in flight");
    session.stopping = true;
    queue.close();
    {
        let (client, filter) = (client.clone(), session.subscription.clone());
        tokio::spawn(async move {
            if let Err(e) = client.unsubscribe(filter).await {
                tracing::debug!(error = %e, "unsubscribe not sent");
            }
        });
    }
    let drained = session.drain(&mut eventloop, &pool, &answers, Instant::now() + drain).await;
    if !drained {
        tracing::warn!(
            queued = queue.depth(),
            workers_done = pool.is_finished(),
            unpublished = answers.unpublished(),
            awaiting_puback = eventloop.state.inflight(),
            "stopping: shutdown_drain_ms ran out; what is left is counted in answers_lost (unpublished) or was sent without a PUBACK"
        );
    }

    let _ = tokio::time::timeout(Duration::from_millis(500), client.disconnect()).await;
    // Flush the DISCONNECT (bounded: a few events at most, never longer than 500 ms).
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        for _ in 0..16 {
            if eventloop.poll().await.is_err() {
                break;
            }
        }
    })
    .await;
    let _ = stop_publisher.send(());
    drop(session);
    drop(answers);
    if let Ok(Ok(mut rx)) = tokio::time::timeout(Duration::from_millis(500), publisher).await {
        let lost = rx.close_and_count_lost();
        if lost > 0 {
            tracing::warn!(lost, "answers never published");
        }
    }
    // Workers finish the batch they hold (a worker waiting for room in the closed answer
    // channel gives up, counting its answer lost).
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::task::spawn_blocking(move || pool.join()),
    )
    .await;
    let snapshot = stats.snapshot();
    tracing::info!(?snapshot, "stopped");
    Ok(snapshot)
}

/// Publishes answers (QoS 1) until every producer is gone or `stop` fires; hands the
/// receiver back so what is left can be counted.
async fn publish(
    client: AsyncClient,
    mut rx: AnswerReceiver,
    mut stop: oneshot::Receiver<()>,
) -> AnswerReceiver {
    let mut topic = String::new();
    loop {
        let out = tokio::select! {
            biased;
            _ = &mut stop => break,
            out = rx.recv() => out,
        };
        let Some(out) = out else { break };
        topics::write_response_topic(&mut topic, &out.device);
        let device = out.device;
        let sent = tokio::select! {
            biased;
            _ = &mut stop => {
                rx.lost();
                break;
            }
            sent = client.publish(topic.as_str(), QoS::AtLeastOnce, false, out.payload) => sent,
        };
        match sent {
            Ok(()) => rx.handed(),
            Err(e) => {
                rx.lost();
                tracing::warn!(error = %e, %device, "answer not sent");
            }
        }
    }
    rx
}

/// The connection's state and what the event loop does with each event.
struct Session {
    handler: Handler,
    link: Link,
    client: AsyncClient,
    subscription: String,
    broker: String,
    /// Set once shutdown began: no (re-)subscribing.
    stopping: bool,
    /// Stopping, and no request can arrive any more (UNSUBACK, or the connection that held
    /// the subscription is gone: the edge starts clean).
    unsubscribed: bool,
    /// Answers written to the socket (first sends).
    published: u64,
}

impl Session {
    /// Handles one event; Some(delay) to wait before the next connection attempt.
    fn on_event(&mut self, event: Result<Event, ConnectionError>) -> Option<Duration> {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let after = self.link.on_connack();
                if self.stopping {
                    // A new clean session holds no subscription: nothing more will arrive.
                    self.unsubscribed = true;
                } else if let AfterConnAck::Subscribe(filters) = after {
                    subscribe_in_background(&self.client, filters);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => match self.link.on_suback(&ack.return_codes) {
                AfterSubAck::Ready if !self.stopping => {
                    tracing::info!(subscription = %self.subscription, broker = %self.broker, "subscribed, ready for requests");
                }
                AfterSubAck::Refused { why } => {
                    tracing::error!(codes = ?ack.return_codes, %why, "subscription refused");
                }
                _ => {}
            },
            Ok(Event::Incoming(Packet::UnsubAck(_))) if self.stopping => {
                tracing::info!("unsubscribed: no new requests");
                self.unsubscribed = true;
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                self.handler.handle(&publish.topic, &publish.payload);
            }
            // Answers are not tracked one by one (a device that is gone simply misses its
            // answer), but a broker refusing them is a misconfigured ACL worth seeing.
            Ok(Event::Incoming(Packet::PubAck(ack))) => match PubAckOutcome::from(ack.reason) {
                PubAckOutcome::Delivered => {}
                PubAckOutcome::NoSubscribers => {
                    tracing::debug!(pkid = ack.pkid, "answer published with no device subscribed");
                }
                PubAckOutcome::Refused(reason) => {
                    tracing::warn!(pkid = ack.pkid, ?reason, "answer refused by the broker");
                }
            },
            Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) => self.published += 1,
            Ok(_) => {}
            Err(e) => {
                if self.stopping {
                    self.unsubscribed = true;
                }
                let step = self.link.on_connection_lost(Disconnection::from(&e));
                tracing::warn!(error = %e, delay = ?step.delay, "broker connection failed; reconnecting");
                return Some(step.delay);
            }
        }
        None
    }

    /// Keeps the connection going until every answer is published and acknowledged and no
    /// request can arrive any more; false if `deadline` came first.
    async fn drain(&mut self, eventloop: &mut EventLoop, pool: &Pool, answers: &Answers, deadline: Instant) -> bool {
        let done = |s: &Session, eventloop: &EventLoop| {
            s.unsubscribed
                && pool.is_finished()
                && answers.unpublished() == 0
                && s.published >= answers.handed()
                && eventloop.state.inflight() == 0
                && eventloop.pending.is_empty()
        };
        // Every step towards done is an event (a request answered, an answer sent, a PUBACK),
        // except a worker exiting with nothing to say: `exited` wakes the loop for that.
        // (Waking it on a timer instead would cancel rumqttc's poll mid-write.)
        let exited = pool.exited();
        while !done(self, eventloop) {
            let event = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return false,
                _ = exited.notified() => continue,
                event = eventloop.poll() => event,
            };
            if let Some(delay) = self.on_event(event) {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => return false,
                    _ = tokio::time::sleep(delay) => self.link.on_backoff_elapsed(),
                }
            }
        }
        true
    }
}
