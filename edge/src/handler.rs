//! What the edge does with one received message: check and decode it, answer at once what
//! can be answered at once (malformed, unknown model, probe, busy), queue the rest for the
//! workers. Every answer goes through the bounded answer channel ([`crate::answers`]).

use std::sync::Arc;
use std::time::Instant;

use ferry_protocol::{
    decode_request, encode_decode_failure, encode_error_response, topics, DType, DeviceId,
    EdgeTimings, InputRef, Limits, RequestRef, Status, PROBE_MODEL,
};
use ferry_runtime::preprocess;

use crate::answers::{Answers, Outgoing};
use crate::clock::{self, SkewMonitor};
use crate::models::{Catalogue, Served};
use crate::queue::{Admit, Refusal};
use crate::stats::Stats;
use crate::worker::{Job, JobInput, Queue};

/// Turns one received message into a queued job or an immediate answer.
pub(crate) struct Handler {
    pub(crate) limits: Limits,
    pub(crate) catalogue: Catalogue,
    pub(crate) queue: Queue,
    pub(crate) answers: Answers,
    pub(crate) stats: Arc<Stats>,
    pub(crate) skew: SkewMonitor,
    pub(crate) buf: Vec<u8>,
}

impl Handler {
    pub(crate) fn handle(&mut self, topic: &[u8], payload: &[u8]) {
        Stats::bump(&self.stats.received);
        let received = Instant::now();
        let received_at_us = ferry_protocol::wall_clock_us();
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
        if request.device_id == device {
            self.skew.observe(&self.stats, device, request.sent_at_us, received_at_us);
        }
        if request.model.as_str() == PROBE_MODEL && request.device_id == device && topic_model == request.model {
            // A probe: what the device measures is the round trip of its bytes; the answer
            // says how deep the queue is now.
            encode_error_response(request.request_id, Status::Ok, "probe", self.timings(), &mut self.buf);
            let n = Stats::bump(&self.stats.probes);
            tracing::trace!(%device, request_id = request.request_id, probes_total = n, "probe answered");
            let payload = std::mem::take(&mut self.buf);
            self.answers.try_send(Outgoing { device, payload });
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
                self.answers.try_send(Outgoing { device, payload });
            } else {
                self.send_error(device);
            }
        }
    }

    fn enqueue(
        &mut self,
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
        let found = match request.input {
            InputRef::Split { .. } => self.catalogue.find_split(request.model.as_str()),
            _ => self.catalogue.find(request.model.as_str(), request.precision),
        };
        let served = found
            .ok_or_else(|| {
                (
                    Status::UnknownModel,
                    match request.input {
                        InputRef::Split { .. } => format!("this edge serves no split requests for {}", request.model),
                        _ => format!("this edge does not serve {} at precision {:?}", request.model, request.precision),
                    },
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
            InputRef::ShapedImage { bytes, .. } => JobInput::ShapedImage(bytes.to_vec()),
            InputRef::Quantized(q) => {
                let shape: Vec<usize> = q.tensor.shape().dims().iter().map(|&d| d as usize).collect();
                let signed = q.tensor.dtype() == DType::I8;
                let data = ferry_runtime::forms::tensor_of_quantized(served.model.manifest(), q.params(), &shape, q.tensor.data(), signed)
                    .map_err(|e| (Status::Malformed, e.to_string()))?;
                JobInput::Tensor(data)
            }
            InputRef::Split { cut, tensor } => split_input(&served, cut, &tensor)?,
        };
        let job = Job {
            device,
            request_id: request.request_id,
            served,
            input,
            received,
            expires_at: clock::expiry(received, request.deadline_ms),
        };
        match self.queue.try_push(job) {
            Admit::Queued => Ok(()),
            Admit::QueuedEvicting(_, evicted) => {
                // Already accepted, now the one to go: it still gets its one answer.
                Stats::bump(&self.stats.busy);
                Stats::bump(&self.stats.busy_evicted);
                let timings = EdgeTimings {
                    queue_wait_us: u32::try_from(evicted.received.elapsed().as_micros()).unwrap_or(u32::MAX),
                    ..self.timings()
                };
                encode_error_response(
                    evicted.request_id,
                    Status::Busy,
                    "queue full: this device is beyond its share and another device needed the place",
                    timings,
                    &mut self.buf,
                );
                tracing::debug!(device = %evicted.device, request_id = evicted.request_id, "made room for a device within its share");
                let payload = std::mem::take(&mut self.buf);
                self.answers.try_send(Outgoing { device: evicted.device, payload });
                Ok(())
            }
            Admit::Refused(_, Refusal::OverShare { held, share }) => Err((
                Status::Busy,
                format!("queue full ({} waiting): this device holds {held}, its share is {share}", self.queue.depth()),
            )),
            Admit::Refused(_, Refusal::Closed) => {
                Stats::bump(&self.stats.busy_stopping);
                Err((Status::Busy, "the edge is stopping; run it elsewhere".into()))
            }
        }
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
        self.answers.try_send(Outgoing { device, payload });
    }
}

/// A split request's input, checked against the cut it names: one scale and zero point, u8
/// values of the cut's shape.
fn split_input(served: &Arc<Served>, cut: &str, tensor: &ferry_protocol::QuantizedRef<'_>) -> Result<JobInput, (Status, String)> {
    let model = &served.model.manifest().name;
    let Some(index) = served.tails.iter().position(|t| t.cut().tensor == cut) else {
        let known: Vec<String> = served.tails.iter().map(|t| t.cut().name()).collect();
        return Err((Status::UnknownModel, format!("`{cut}` is not a cut of {model} this edge serves (cuts: {})", known.join(", "))));
    };
    let params: Vec<(f32, i32)> = tensor.params().collect();
    let [(scale, zero_point)] = params.as_slice() else {
        return Err((Status::Malformed, format!("a split tensor has one scale and zero point, got {}", params.len())));
    };
    if tensor.tensor.dtype() != DType::U8 {
        return Err((Status::Malformed, format!("a split tensor's values are u8, got {:?}", tensor.tensor.dtype())));
    }
    let shape: Vec<usize> = tensor.tensor.shape().dims().iter().map(|&d| d as usize).collect();
    served.tails[index]
        .check(&shape, *scale, *zero_point, tensor.tensor.data().len())
        .map_err(|e| (Status::Malformed, e.to_string()))?;
    Ok(JobInput::Split { tail: index, shape, scale: *scale, zero_point: *zero_point, values: tensor.tensor.data().to_vec() })
}
