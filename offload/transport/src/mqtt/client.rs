//! The device side: [`MqttOffloader`] sends a request on `ferry/<device>/req/<model>` and
//! waits for the response with the same request id on `ferry/<device>/resp`.
//!
//! One background task owns rumqttc's event loop and feeds what it sees to the session
//! layer: the [`Link`] (reconnect backoff, resubscription to the response topic, the
//! [`LinkState`] callers see) and the [`Correlator`] (which caller a response, a PUBACK
//! refusal or a disconnect resolves). The task only polls, sleeps and wakes callers;
//! callers never touch the socket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop};
use rumqttc::Outgoing;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::config::{Backoff, ConfigError, MqttConfig};
use super::error::OffloadError;
use super::session::{
    AckWatch, AfterConnAck, AfterSubAck, Correlator, Disconnection, Link, LinkState, Reply, Resolved, Routed,
};
use super::subscribe_in_background;
use ferry_protocol::{encode_request, topics, DeviceId, Limits, Request, Response};

/// Capacity of rumqttc's request channel (publishes and subscribes waiting for the socket).
const CHANNEL_CAPACITY: usize = 64;

/// The counters, as read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSnapshot {
    /// Requests handed to the broker.
    pub sent: u64,
    /// Requests that got their response.
    pub answered: u64,
    /// Responses for an unknown or expired request id, dropped.
    pub dropped_unknown: u64,
    /// Responses that could not be decoded and named no request, dropped.
    pub dropped_malformed: u64,
    /// Requests that got no answer in time.
    pub timeouts: u64,
    /// Successful connections (the first one included).
    pub connections: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    answered: AtomicU64,
    dropped_unknown: AtomicU64,
    dropped_malformed: AtomicU64,
    timeouts: AtomicU64,
    connections: AtomicU64,
}

type Waiter = oneshot::Sender<Reply>;

struct Shared {
    correlator: Mutex<Correlator<Waiter>>,
    counters: Counters,
    state: watch::Sender<LinkState>,
}

/// Locks a mutex, carrying on through poisoning: the correlator stays consistent per call.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wakes the callers, outside the correlator's lock.
fn wake(resolved: impl IntoIterator<Item = Resolved<Waiter>>) {
    for r in resolved {
        // The caller may have given up already; its answer then goes nowhere.
        let _ = r.waiter.send(r.reply);
    }
}

impl Shared {
    fn correlator(&self) -> MutexGuard<'_, Correlator<Waiter>> {
        lock(&self.correlator)
    }

    fn fail_all(&self, make: impl Fn() -> OffloadError) {
        let failed = self.correlator().fail_all(make);
        wake(failed);
    }

    fn show(&self, link: &Link) {
        let now = link.state();
        self.state.send_if_modified(|s| {
            let changed = *s != now;
            *s = now;
            changed
        });
    }
}

/// Offloads requests to edge servers over MQTT. Cheap to share (`Arc` it); every method
/// takes `&self`. Dropping it stops the background task and disconnects.
pub struct MqttOffloader {
    client: AsyncClient,
    device: DeviceId,
    limits: Limits,
    shared: Arc<Shared>,
    state: watch::Receiver<LinkState>,
    /// Held across "remember the id" and "hand the publish to rumqttc", so that the order of
    /// the correlator's queued ids is the order of rumqttc's channel, which is how PUBACKs
    /// find their request.
    send: tokio::sync::Mutex<Vec<u8>>,
    next_id: AtomicU64,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for MqttOffloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttOffloader")
            .field("device", &self.device)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl MqttOffloader {
    /// Starts connecting in the background (with a tokio runtime current) and returns at
    /// once; requests fail with [`OffloadError::Disconnected`] until the link is ready.
    pub fn start(config: &MqttConfig, device: DeviceId) -> Result<Self, ConfigError> {
        let options = super::mqtt_options(config, device.as_str())?;
        let client_id = options.client_id();
        let (client, eventloop) = AsyncClient::new(options, CHANNEL_CAPACITY);
        let limits = Limits {
            max_message_size: config.max_message_size,
        };
        let response_topic = topics::response_topic(&device);
        let link =
            Link::new(Backoff::new(config), vec![response_topic.clone()]).with_client_id(client_id);
        let (state_tx, state_rx) = watch::channel(link.state());
        let shared = Arc::new(Shared {
            correlator: Mutex::new(Correlator::new(response_topic, limits)),
            counters: Counters::default(),
            state: state_tx,
        });
        let liveness = AckWatch::new(Duration::from_secs(u64::from(config.keep_alive_s)));
        let task = tokio::spawn(run_event_loop(
            eventloop,
            client.clone(),
            link,
            shared.clone(),
            liveness,
        ));
        // Ids start from the clock so that a restarted device does not reuse the ids of
        // answers still on their way to its previous incarnation.
        let seed = crate::link::request_id_seed();
        Ok(MqttOffloader {
            client,
            device,
            limits,
            shared,
            state: state_rx,
            send: tokio::sync::Mutex::new(Vec::new()),
            next_id: AtomicU64::new(seed),
            task,
        })
    }

    /// Starts and waits until the link is ready (connected and subscribed), at most
    /// `timeout`. A refusal by the broker is returned as [`OffloadError::Refused`].
    pub async fn connect(
        config: &MqttConfig,
        device: DeviceId,
        timeout: Duration,
    ) -> Result<Self, OffloadError> {
        let offloader =
            Self::start(config, device).map_err(|e| OffloadError::Request(e.to_string()))?;
        offloader.wait_ready(timeout).await?;
        Ok(offloader)
    }

    /// Waits until the link is ready, at most `timeout`; fails at once on a refusal.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), OffloadError> {
        let mut state = self.state.clone();
        let wait = state.wait_for(|s| !matches!(s, LinkState::Connecting(_)));
        let last = match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) => s.clone(),
            Ok(Err(_)) => return Err(OffloadError::Closed),
            Err(_) => {
                return Err(OffloadError::Disconnected(match &*self.state.borrow() {
                    LinkState::Connecting(why) if !why.is_empty() => why.clone(),
                    _ => format!("not connected after {timeout:?}"),
                }))
            }
        };
        match last {
            LinkState::Ready => Ok(()),
            LinkState::Refused(why) => Err(OffloadError::Refused(why)),
            LinkState::TakenOver(why) => Err(OffloadError::TakenOver(why)),
            LinkState::Closed => Err(OffloadError::Closed),
            LinkState::Connecting(why) => Err(OffloadError::Disconnected(why)),
        }
    }

    /// This device's id.
    pub fn device(&self) -> DeviceId {
        self.device
    }

    /// Where the link stands now.
    pub fn link_state(&self) -> LinkState {
        self.state.borrow().clone()
    }

    /// A fresh request id.
    pub fn next_request_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The counters (a few relaxed atomic loads).
    pub fn counters(&self) -> CounterSnapshot {
        let c = &self.shared.counters;
        CounterSnapshot {
            sent: c.sent.load(Ordering::Relaxed),
            answered: c.answered.load(Ordering::Relaxed),
            dropped_unknown: c.dropped_unknown.load(Ordering::Relaxed),
            dropped_malformed: c.dropped_malformed.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
        }
    }

    /// Sends `request` (its `device_id` must be this device's; its `request_id` must not be
    /// in flight — use [`next_request_id`](Self::next_request_id)) and waits at most
    /// `timeout` for the answer. An edge that is busy answers with `Status::Busy`.
    pub async fn offload(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, OffloadError> {
        if request.device_id != self.device {
            return Err(OffloadError::Request(format!(
                "request is from device {}, this offloader is {}",
                request.device_id, self.device
            )));
        }
        match &*self.state.borrow() {
            LinkState::Ready => {}
            LinkState::Refused(why) => return Err(OffloadError::Refused(why.clone())),
            LinkState::TakenOver(why) => return Err(OffloadError::TakenOver(why.clone())),
            LinkState::Connecting(why) => return Err(OffloadError::Disconnected(why.clone())),
            LinkState::Closed => return Err(OffloadError::Closed),
        }
        let id = request.request_id;
        let topic = topics::request_topic(&self.device, &request.model);
        let (tx, rx) = oneshot::channel();
        self.shared.correlator().begin(id, tx)?;
        // Removes the id again on every early return, timeout or cancellation.
        let guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        let sent = tokio::time::timeout(timeout, self.publish(&request, &topic)).await;
        match sent {
            Err(_) => {
                self.shared
                    .counters
                    .timeouts
                    .fetch_add(1, Ordering::Relaxed);
                return Err(OffloadError::Timeout(timeout));
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(())) => {}
        }
        self.shared.counters.sent.fetch_add(1, Ordering::Relaxed);
        let reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(OffloadError::Closed),
            Err(_) => {
                self.shared
                    .counters
                    .timeouts
                    .fetch_add(1, Ordering::Relaxed);
                Err(OffloadError::Timeout(timeout))
            }
        };
        drop(guard);
        if reply.is_ok() {
            self.shared
                .counters
                .answered
                .fetch_add(1, Ordering::Relaxed);
        }
        reply
    }

    async fn publish(&self, request: &Request, topic: &str) -> Result<(), OffloadError> {
        let mut buf = self.send.lock().await;
        let size = encode_request(&request.as_ref(), &mut buf)?;
        if size > self.limits.max_message_size {
            return Err(OffloadError::TooLarge {
                size,
                max: self.limits.max_message_size,
            });
        }
        self.shared.correlator().queued(request.request_id);
        let payload = buf.clone();
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| {
                self.shared.correlator().unqueue(request.request_id);
                OffloadError::Disconnected(e.to_string())
            })
    }

    /// Disconnects cleanly and stops the background task.
    pub async fn shutdown(self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.disconnect()).await;
        // Give the event loop a moment to send DISCONNECT before it is stopped.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            let mut state = self.state.clone();
            let _ = state.wait_for(|s| !matches!(s, LinkState::Ready)).await;
        })
        .await;
        self.task.abort();
        self.shared.state.send_replace(LinkState::Closed);
        self.shared.fail_all(|| OffloadError::Closed);
    }
}

impl Drop for MqttOffloader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.correlator().forget(self.id);
    }
}

/// Says once (then at most once a minute, with a count) that the broker handed this
/// client's session to another client: two agents with one identity would otherwise fight for
/// it without a word beyond "connection lost".
fn report_takeover(takeover: &super::session::Takeover, delay: Duration) {
    if takeover.report {
        let evidence = if takeover.certain {
            "the broker handed it this session (MQTT v5 reason: session taken over)"
        } else {
            "the broker closed this client's connections soon after accepting them, twice or \
             more in a row"
        };
        tracing::error!(
            takeovers = takeover.count,
            ?delay,
            "{}; backing off ({evidence}): is a second agent or client running with the same \
             device_id or [mqtt] client_id?",
            takeover.why
        );
    } else {
        tracing::debug!(
            takeovers = takeover.count,
            ?delay,
            "{}; backing off",
            takeover.why
        );
    }
}

async fn run_event_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    mut link: Link,
    shared: Arc<Shared>,
    mut liveness: AckWatch,
) {
    // Runs until the offloader is dropped (the task is aborted) or shut down
    // (`RequestsDone` once every client handle is gone).
    loop {
        // A connection that went silent with publishes waiting (a cut link) is given up after
        // the keep-alive, as the broker would give us up: rumqttc sends no ping while
        // publishes keep it busy, and TCP takes minutes to give up by itself.
        let polled = match liveness.deadline() {
            Some(deadline) => {
                match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), eventloop.poll()).await {
                    Ok(polled) => Some(polled),
                    Err(_) => None,
                }
            }
            None => Some(eventloop.poll().await),
        };
        let Some(polled) = polled else {
            if liveness.is_dead(Instant::now()) {
                liveness.reset();
                // rumqttc drops the connection and reconnects at the next poll.
                eventloop.clean();
                let why = "no acknowledgement and nothing else from the broker for the keep-alive: the link went silent";
                let step = link.on_connection_lost(Disconnection::network(why));
                shared.show(&link);
                shared.fail_all(|| OffloadError::Disconnected(why.to_string()));
                tracing::warn!(error = why, "connection to the broker given up; reconnecting");
                tokio::time::sleep(step.delay).await;
                link.on_backoff_elapsed();
            }
            continue;
        };
        if let Ok(Event::Incoming(_)) = &polled {
            liveness.on_received(Instant::now());
        }
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                shared.counters.connections.fetch_add(1, Ordering::Relaxed);
                if let AfterConnAck::Subscribe(filters) = link.on_connack() {
                    subscribe_in_background(&client, filters);
                }
                shared.show(&link);
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if link.on_suback(&ack.return_codes) == AfterSubAck::Ready {
                    let topic = shared.correlator().response_topic().to_owned();
                    tracing::info!(%topic, "connected and subscribed");
                }
                shared.show(&link);
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let routed = shared
                    .correlator()
                    .on_publish(&publish.topic, &publish.payload);
                match routed {
                    Routed::NotOurs => {}
                    Routed::Answered(answer) => wake([answer]),
                    Routed::Unknown { request_id } => {
                        shared
                            .counters
                            .dropped_unknown
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            request_id,
                            "response for an unknown or expired request dropped"
                        );
                    }
                    Routed::Malformed { error } => {
                        shared
                            .counters
                            .dropped_malformed
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "undecodable response dropped");
                    }
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                liveness.on_sent(Instant::now());
                shared.correlator().on_sent(pkid);
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                liveness.on_ack(Instant::now());
                let refused = shared.correlator().on_puback(ack.pkid, ack.reason);
                if let Some(refused) = refused {
                    if let Err(e) = &refused.reply {
                        tracing::debug!(request_id = refused.request_id, error = %e, "publish refused");
                    }
                    wake([refused]);
                }
            }
            // rumqttc reports the DISCONNECT as the error that ends the connection (below);
            // the event itself may come only after the next CONNACK.
            Ok(Event::Incoming(Packet::Disconnect(d))) => {
                tracing::debug!(reason = ?d.reason_code, "broker disconnected us");
            }
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => {
                link.on_closed();
                shared.show(&link);
                shared.fail_all(|| OffloadError::Closed);
                return;
            }
            Err(e) => {
                liveness.reset();
                let step = link.on_connection_lost(Disconnection::from(&e));
                shared.show(&link);
                let why = &step.cause.why;
                if step.cause.taken_over {
                    shared.fail_all(|| OffloadError::TakenOver(why.clone()));
                } else {
                    shared.fail_all(|| OffloadError::Disconnected(why.clone()));
                }
                if let Some(takeover) = &step.takeover {
                    report_takeover(takeover, step.delay);
                } else if step.was_ready {
                    tracing::warn!(error = %why, "connection to the broker lost; reconnecting");
                } else {
                    tracing::debug!(error = %why, delay = ?step.delay, refused = step.cause.refused, "connection attempt failed");
                }
                tokio::time::sleep(step.delay).await;
                link.on_backoff_elapsed();
            }
        }
    }
}
