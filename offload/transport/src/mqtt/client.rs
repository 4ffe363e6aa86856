//! The device side: [`MqttOffloader`] sends a request on `ferry/<device>/req/<model>` and
//! waits for the response with the same request id on `ferry/<device>/resp`.
//!
//! One background task owns rumqttc's event loop: it reconnects with backoff, re-subscribes
//! to the response topic after every connection, routes responses to the waiting callers
//! and PUBACK refusals to the request they refuse. Callers never touch the socket.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop};
use rumqttc::Outgoing;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::config::{Backoff, ConfigError, MqttConfig};
use super::error::OffloadError;
use ferry_protocol::{
    decode_response, encode_request, topics, DeviceId, Limits, Request, Response,
};

/// Capacity of rumqttc's request channel (publishes and subscribes waiting for the socket).
const CHANNEL_CAPACITY: usize = 64;

/// Where the connection to the broker stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting or reconnecting (the string says why the last attempt failed, if any).
    Connecting(String),
    /// Connected and subscribed to the response topic: requests can go.
    Ready,
    /// The last attempt was refused by the broker (TLS or CONNACK); still retrying with
    /// backoff, since a certificate can be replaced.
    Refused(String),
    /// Shut down.
    Closed,
}

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

type Reply = Result<Response, OffloadError>;

/// Request ids in the order their publishes went into rumqttc's channel, and the packet ids
/// rumqttc gave them, so that a PUBACK refusal reaches the request it refuses.
#[derive(Default)]
struct Outbox {
    queued: VecDeque<u64>,
    by_pkid: HashMap<u16, u64>,
}

struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    outbox: Mutex<Outbox>,
    counters: Counters,
    state: watch::Sender<LinkState>,
}

/// Locks a mutex, carrying on through poisoning: the maps stay consistent per operation.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn fail_all(&self, make: impl Fn() -> OffloadError) {
        let drained: Vec<_> = lock(&self.pending).drain().collect();
        for (_, tx) in drained {
            let _ = tx.send(Err(make()));
        }
        let mut outbox = lock(&self.outbox);
        outbox.queued.clear();
        outbox.by_pkid.clear();
    }

    fn complete(&self, request_id: u64, reply: Reply) -> bool {
        match lock(&self.pending).remove(&request_id) {
            Some(tx) => {
                let _ = tx.send(reply);
                true
            }
            None => false,
        }
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
    /// `Outbox::queued` is the order of rumqttc's channel.
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
        let (client, eventloop) = AsyncClient::new(options, CHANNEL_CAPACITY);
        let (state_tx, state_rx) = watch::channel(LinkState::Connecting(String::new()));
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            outbox: Mutex::new(Outbox::default()),
            counters: Counters::default(),
            state: state_tx,
        });
        let task = tokio::spawn(run_event_loop(
            eventloop,
            client.clone(),
            topics::response_topic(&device),
            Backoff::new(config),
            Limits {
                max_message_size: config.max_message_size,
            },
            shared.clone(),
        ));
        // Ids start from the clock so that a restarted device does not reuse the ids of
        // answers still on their way to its previous incarnation.
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        Ok(MqttOffloader {
            client,
            device,
            limits: Limits {
                max_message_size: config.max_message_size,
            },
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
            LinkState::Connecting(why) => return Err(OffloadError::Disconnected(why.clone())),
            LinkState::Closed => return Err(OffloadError::Closed),
        }
        let id = request.request_id;
        let topic = topics::request_topic(&self.device, &request.model);
        let rx = {
            let (tx, rx) = oneshot::channel();
            let mut pending = lock(&self.shared.pending);
            if pending.contains_key(&id) {
                return Err(OffloadError::Request(format!("request id {id} is already in flight")));
            }
            pending.insert(id, tx);
            rx
        };
        // Removes the id again on every early return, timeout or cancellation.
        let guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        let sent = tokio::time::timeout(timeout, self.publish(&request, &topic)).await;
        match sent {
            Err(_) => {
                self.shared.counters.timeouts.fetch_add(1, Ordering::Relaxed);
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
                self.shared.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(OffloadError::Timeout(timeout))
            }
        };
        drop(guard);
        if reply.is_ok() {
            self.shared.counters.answered.fetch_add(1, Ordering::Relaxed);
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
        lock(&self.shared.outbox).queued.push_back(request.request_id);
        let payload = buf.clone();
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| {
                let mut outbox = lock(&self.shared.outbox);
                if outbox.queued.back() == Some(&request.request_id) {
                    outbox.queued.pop_back();
                }
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
        lock(&self.shared.pending).remove(&self.id);
    }
}

/// True for failures that mean "the broker does not accept us", as opposed to "the network
/// is down": TLS alerts and certificate errors, and CONNACK refusals.
fn is_refusal(e: &ConnectionError) -> bool {
    if matches!(e, ConnectionError::ConnectionRefused(_) | ConnectionError::Tls(_)) {
        return true;
    }
    // rustls reports the server's alert (unknown CA, certificate required, protocol version)
    // and its own verification failures as I/O errors wrapping its error; rumqttc sometimes
    // keeps only their text (e.g. inside a state error while reading the CONNACK).
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    for _ in 0..8 {
        let Some(err) = source else { break };
        if err.is::<rumqttc::tokio_rustls::rustls::Error>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|i| i.is::<rumqttc::tokio_rustls::rustls::Error>()) {
                return true;
            }
        }
        source = err.source();
    }
    let text = e.to_string();
    ["fatal alert", "invalid peer certificate", "CertificateRequired", "HandshakeFailure"]
        .iter()
        .any(|needle| text.contains(needle))
}

async fn run_event_loop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    response_topic: String,
    mut backoff: Backoff,
    limits: Limits,
    shared: Arc<Shared>,
) {
    // Runs until the offloader is dropped (the task is aborted) or shut down
    // (`RequestsDone` once every client handle is gone).
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                shared.counters.connections.fetch_add(1, Ordering::Relaxed);
                // Subscribing from this task through the bounded channel could deadlock if
                // it were full, so it is sent from a task of its own.
                let client = client.clone();
                let topic = response_topic.clone();
                tokio::spawn(async move {
                    let _ = client.subscribe(topic, QoS::AtLeastOnce).await;
                });
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack
                    .return_codes
                    .iter()
                    .find(|c| !matches!(c, SubscribeReasonCode::Success(_)));
                match refused {
                    None => {
                        tracing::info!(topic = %response_topic, "connected and subscribed");
                        shared.state.send_replace(LinkState::Ready);
                    }
                    Some(code) => {
                        shared.state.send_replace(LinkState::Refused(format!(
                            "subscription to {response_topic} refused: {code:?}"
                        )));
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if publish.topic.as_ref() != response_topic.as_bytes() {
                    continue;
                }
                route_response(&publish.payload, &limits, &shared);
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut outbox = lock(&shared.outbox);
                if let Some(id) = outbox.queued.pop_front() {
                    outbox.by_pkid.insert(pkid, id);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let id = lock(&shared.outbox).by_pkid.remove(&ack.pkid);
                let Some(id) = id else { continue };
                let error = match ack.reason {
                    PubAckReason::Success => None,
                    PubAckReason::NoMatchingSubscribers => Some(OffloadError::NoEdge),
                    other => Some(OffloadError::NotAuthorized {
                        topic: String::new(),
                        reason: format!("{other:?}"),
                    }),
                };
                if let Some(e) = error {
                    tracing::debug!(request_id = id, error = %e, "publish refused");
                    shared.complete(id, Err(e));
                }
            }
            Ok(Event::Incoming(Packet::Disconnect(d))) => {
                tracing::warn!(reason = ?d.reason_code, "broker disconnected us");
            }
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => {
                shared.state.send_replace(LinkState::Closed);
                shared.fail_all(|| OffloadError::Closed);
                return;
            }
            Err(e) => {
                let why = e.to_string();
                let refused = is_refusal(&e);
                let was_ready = matches!(*shared.state.borrow(), LinkState::Ready);
                shared.state.send_replace(if refused {
                    LinkState::Refused(why.clone())
                } else {
                    LinkState::Connecting(why.clone())
                });
                shared.fail_all(|| OffloadError::Disconnected(why.clone()));
                let delay = backoff.next_delay();
                if was_ready {
                    tracing::warn!(error = %why, "connection to the broker lost; reconnecting");
                } else {
                    tracing::debug!(error = %why, ?delay, refused, "connection attempt failed");
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

fn route_response(payload: &[u8], limits: &Limits, shared: &Shared) {
    let (id, reply) = match decode_response(payload, limits) {
        Ok(resp) => (resp.request_id, Ok(resp.to_response())),
        Err(e) => match e.header {
            // A response this build cannot fully read still tells its status (e.g. an edge
            // of a newer version answering "unsupported version").
            Some(h) if h.status != ferry_protocol::Status::Ok => (
                h.request_id,
                Ok(Response {
                    request_id: h.request_id,
                    status: h.status,
                    detail: e.error.to_string(),
                    timings: Default::default(),
                    top_k: Vec::new(),
                    output: None,
                }),
            ),
            Some(h) => (h.request_id, Err(OffloadError::Protocol(e))),
            None => {
                shared.counters.dropped_malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e.error, "undecodable response dropped");
                return;
            }
        },
    };
    if !shared.complete(id, reply) {
        shared.counters.dropped_unknown.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(request_id = id, "response for an unknown or expired request dropped");
    }
}
