//! The MQTT side of the edge: one task drives rumqttc's event loop, with the connection's
//! state (reconnect backoff, re-subscribing after every CONNACK, what a PUBACK says) kept by
//! the transport's session layer ([`Link`], [`PubAckOutcome`]); it checks and decodes each
//! request, answers at once what can be answered at once (malformed, unknown model, busy),
//! queues the rest for the workers, and a second task publishes the workers' answers.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::{
    decode_request, encode_decode_failure, encode_error_response, topics, DType, DeviceId,
    EdgeTimings, InputRef, Limits, RequestRef, Status, PROBE_MODEL,
};
use ferry_runtime::preprocess;
use ferry_transport::mqtt::session::{AfterConnAck, AfterSubAck, Disconnection, Link, PubAckOutcome};
use ferry_transport::mqtt::{mqtt_options, subscribe_in_background, Backoff};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::EdgeConfig;
use crate::models::Catalogue;
use crate::stats::{Stats, StatsSnapshot};
use crate::worker::{Job, JobInput, Outgoing, Pool, Queue};
use crate::EdgeError;

/// Capacity of rumqttc's request channel (answers waiting for the socket).
const CHANNEL_CAPACITY: usize = 256;

/// Runs the edge server until `shutdown` completes; returns the final counters.
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
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Outgoing>();
    let (queue, pool) = Pool::start(
        config.workers,
        config.queue_capacity,
        config.max_batch,
        out_tx.clone(),
        stats.clone(),
    )
    .map_err(EdgeError::Spawn)?;

    let (client, mut eventloop) = AsyncClient::new(options, CHANNEL_CAPACITY);
    let publisher = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut topic = String::new();
            // Ends when every sender (event loop and workers) is gone.
            while let Some(out) = out_rx.recv().await {
                topics::write_response_topic(&mut topic, &out.device);
                if let Err(e) = client
                    .publish(topic.as_str(), QoS::AtLeastOnce, false, out.payload)
                    .await
                {
                    tracing::warn!(error = %e, device = %out.device, "answer not sent");
                }
            }
        })
    };

    let mut handler = Handler {
        limits: Limits {
            max_message_size: config.mqtt.max_message_size,
        },
        catalogue,
        queue,
        out: out_tx,
        stats: stats.clone(),
        buf: Vec::new(),
    };
    let mut link = Link::new(Backoff::new(&config.mqtt), vec![subscription.clone()]);
    tokio::pin!(shutdown);
    // Runs until shutdown; each turn handles one event or one failed connection attempt.
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let AfterConnAck::Subscribe(filters) = link.on_connack() {
                    subscribe_in_background(&client, filters);
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => match link.on_suback(&ack.return_codes) {
                AfterSubAck::Ready => {
                    tracing::info!(subscription = %subscription, broker = %config.mqtt.broker, "subscribed, ready for requests");
                }
                AfterSubAck::Refused { why } => {
                    tracing::error!(codes = ?ack.return_codes, %why, "subscription refused");
                }
                AfterSubAck::Ignored => {}
            },
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                handler.handle(&publish.topic, &publish.payload);
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
            Ok(_) => {}
            Err(e) => {
                let step = link.on_connection_lost(Disconnection::from(&e));
                tracing::warn!(error = %e, delay = ?step.delay, "broker connection failed; reconnecting");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(step.delay) => link.on_backoff_elapsed(),
                }
            }
        }
    }

    tracing::info!("shutting down");
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
    drop(handler);
    publisher.abort();
    // Workers finish the batch they hold; the queue's last sender is gone with the handler.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::task::spawn_blocking(move || pool.join()),
    )
    .await;
    let snapshot = stats.snapshot();
    tracing::info!(?snapshot, "stopped");
    Ok(snapshot)
}

/// Turns one received message into a queued job or an immediate answer.
struct Handler {
    limits: Limits,
    catalogue: Catalogue,
    queue: Queue,
    out: UnboundedSender<Outgoing>,
    stats: Arc<Stats>,
    buf: Vec<u8>,
}

impl Handler {
    fn handle(&mut self, topic: &[u8], payload: &[u8]) {
        Stats::bump(&self.stats.received);
        let received = Instant::now();
        // The topic's device level is the sender's certificate CN (the broker's ACL allows
        // nothing else), so it, not the envelope, says who to answer.
        let from = std::str::from_utf8(topic)
            .ok()
            .and_then(|t| topics::parse_request_topic(t).ok());
        let Some((device, topic_model)) = from else {
            let n = Stats::bump(&self.stats.dropped);
            tracing::warn!(
                topic = %String::from_utf8_lossy(topic), dropped_total = n,
                "dropped a message on a topic that is not ferry/<device>/req/<model>"
            );
            return;
        };
        let request = match decode_request(payload, &self.limits) {
            Ok(r) => r,
            Err(failure) => {
                tracing::warn!(%device, error = %failure.error, bytes = payload.len(), "undecodable request");
                let same_device = failure.identity.is_some_and(|i| i.device_id == device);
                if same_device {
                    encode_decode_failure(&failure, self.timings(), &mut self.buf);
                } else {
                    // Nothing in the envelope can be trusted: answer the topic's device.
                    let id = failure.identity.map(|i| i.request_id).unwrap_or(0);
                    encode_error_response(
                        id,
                        failure.error.status(),
                        &failure.error.to_string(),
                        self.timings(),
                        &mut self.buf,
                    );
                }
                self.send_error(device);
                return;
            }
        };
        if request.model.as_str() == PROBE_MODEL && request.device_id == device && topic_model == request.model {
            // A probe: what the device measures is the round trip of its bytes; the answer
            // says how deep the queue is now.
            encode_error_response(request.request_id, Status::Ok, "probe", self.timings(), &mut self.buf);
            let n = Stats::bump(&self.stats.probes);
            tracing::trace!(%device, request_id = request.request_id, probes_total = n, "probe answered");
            let payload = std::mem::take(&mut self.buf);
            let _ = self.out.send(Outgoing { device, payload });
            return;
        }
        if let Err((status, detail)) = self.enqueue(&request, device, topic_model, received) {
            tracing::debug!(%device, request_id = request.request_id, %status, %detail, "answered at once");
            encode_error_response(
                request.request_id,
                status,
                &detail,
                self.timings(),
                &mut self.buf,
            );
            if status == Status::Busy {
                Stats::bump(&self.stats.busy);
                let payload = std::mem::take(&mut self.buf);
                let _ = self.out.send(Outgoing { device, payload });
            } else {
                self.send_error(device);
            }
        }
    }

    fn enqueue(
        &self,
        request: &RequestRef<'_>,
        device: DeviceId,
        topic_model: ferry_protocol::ModelName,
        received: Instant,
    ) -> Result<(), (Status, String)> {
        if request.device_id != device {
            return Err((
                Status::Malformed,
                format!(
                    "envelope says device {}, the topic says {device}",
                    request.device_id
                ),
            ));
        }
        if request.model != topic_model {
            return Err((
                Status::Malformed,
                format!(
                    "envelope says model {}, the topic says {topic_model}",
                    request.model
                ),
            ));
        }
        let served = self
            .catalogue
            .find(request.model.as_str(), request.precision)
            .ok_or_else(|| {
                (
                    Status::UnknownModel,
                    format!(
                        "this edge does not serve {} at precision {:?}",
                        request.model, request.precision
                    ),
                )
            })?;
        let input = match request.input {
            InputRef::Image { bytes, .. } => JobInput::Image(bytes.to_vec()),
            InputRef::Tensor(t) => {
                if t.dtype() != DType::F32 {
                    return Err((Status::Malformed, format!("tensor dtype {:?}, expected f32", t.dtype())));
                }
                let data: Vec<f32> = match t.f32_values() {
                    Some(values) => values.collect(),
                    None => return Err((Status::Malformed, "tensor is not f32".into())),
                };
                let shape: Vec<usize> = t.shape().dims().iter().map(|&d| d as usize).collect();
                preprocess::check_tensor(served.model.manifest(), &shape, &data)
                    .map_err(|e| (Status::Malformed, e.to_string()))?;
                JobInput::Tensor(data)
            }
        };
        let job = Job {
            device,
            request_id: request.request_id,
            served,
            input,
            received,
            deadline_at_us: request.deadline_at_us(),
        };
        self.queue.try_push(job).map_err(|_| {
            (
                Status::Busy,
                format!("queue full ({} waiting)", self.queue.depth()),
            )
        })
    }

    fn timings(&self) -> EdgeTimings {
        EdgeTimings {
            queue_depth: u32::try_from(self.queue.depth()).unwrap_or(u32::MAX),
            ..EdgeTimings::default()
        }
    }

    fn send_error(&mut self, device: DeviceId) {
        let n = Stats::bump(&self.stats.answered_error);
        tracing::debug!(%device, answered_error_total = n, "error answer");
        let payload = std::mem::take(&mut self.buf);
        let _ = self.out.send(Outgoing { device, payload });
    }
}
