//! The device side's request correlation: which caller waits for which request id, which
//! packet id carries which request, and what a response, a PUBACK or a lost connection
//! resolves. Each pending request is resolved at most once: resolving removes it.
//!
//! A waiter `W` is whatever the caller is woken with (a oneshot sender in the offloader, a
//! plain value in tests); the correlator hands it back with the reply instead of sending.

use std::collections::HashMap;

use rumqttc::v5::mqttbytes::v5::PubAckReason;

use super::puback::{PacketIds, PubAckOutcome};
use crate::mqtt::OffloadError;
use ferry_protocol::{decode_response, Limits, Response, Status};

/// What a waiting caller gets.
pub type Reply = Result<Response, OffloadError>;

/// A pending request that has its answer: wake `waiter` with `reply`.
#[derive(Debug)]
pub struct Resolved<W> {
    /// The request.
    pub request_id: u64,
    /// Who waits for it.
    pub waiter: W,
    /// Its answer or why there is none.
    pub reply: Reply,
}

/// What a message received on some topic meant.
#[derive(Debug)]
pub enum Routed<W> {
    /// Not on the response topic: not for the correlator.
    NotOurs,
    /// It answers a pending request.
    Answered(Resolved<W>),
    /// It names a request that is not pending (unknown, expired, or already answered):
    /// dropped.
    Unknown {
        /// The id it named.
        request_id: u64,
    },
    /// It cannot be decoded and names no request: dropped.
    Malformed {
        /// Why it cannot be read.
        error: String,
    },
}

/// Pending requests by request id and their publishes by packet id.
#[derive(Debug)]
pub struct Correlator<W> {
    response_topic: String,
    limits: Limits,
    pending: HashMap<u64, W>,
    packets: PacketIds<u64>,
}

impl<W> Correlator<W> {
    /// Correlates responses arriving on `response_topic`, read within `limits`.
    pub fn new(response_topic: String, limits: Limits) -> Self {
        Correlator {
            response_topic,
            limits,
            pending: HashMap::new(),
            packets: PacketIds::default(),
        }
    }

    /// The topic responses arrive on (the one the device subscribes to).
    pub fn response_topic(&self) -> &str {
        &self.response_topic
    }

    /// Requests waiting for an answer.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// `waiter` waits for the answer to `request_id`; refused if that id is already in
    /// flight, since its answer could not be told apart.
    pub fn begin(&mut self, request_id: u64, waiter: W) -> Result<(), OffloadError> {
        if self.pending.contains_key(&request_id) {
            return Err(OffloadError::Request(format!(
                "request id {request_id} is already in flight"
            )));
        }
        self.pending.insert(request_id, waiter);
        Ok(())
    }

    /// The caller stopped waiting (answered, timed out, cancelled): a later answer or
    /// PUBACK for it is dropped.
    pub fn forget(&mut self, request_id: u64) -> Option<W> {
        self.pending.remove(&request_id)
    }

    /// The request's publish is about to go into rumqttc's channel (in channel order).
    pub fn queued(&mut self, request_id: u64) {
        self.packets.queued(request_id);
    }

    /// Handing the request's publish to rumqttc failed.
    pub fn unqueue(&mut self, request_id: u64) {
        self.packets.unqueue(&request_id);
    }

    /// rumqttc wrote the oldest queued request with packet id `pkid`.
    pub fn on_sent(&mut self, pkid: u16) {
        self.packets.on_sent(pkid);
    }

    /// A PUBACK: a refusal fails the request it refuses; an acceptance resolves nothing
    /// (the answer is still to come).
    pub fn on_puback(&mut self, pkid: u16, reason: PubAckReason) -> Option<Resolved<W>> {
        let (request_id, outcome) = self.packets.on_puback(pkid, reason)?;
        let error = match outcome {
            PubAckOutcome::Delivered => return None,
            PubAckOutcome::NoSubscribers => OffloadError::NoEdge,
            PubAckOutcome::Refused(reason) => OffloadError::NotAuthorized {
                topic: String::new(),
                reason: format!("{reason:?}"),
            },
        };
        self.resolve(request_id, Err(error))
    }

    /// A message on `topic`: if it is on the response topic, the answer it carries.
    pub fn on_publish(&mut self, topic: &[u8], payload: &[u8]) -> Routed<W> {
        if topic != self.response_topic.as_bytes() {
            return Routed::NotOurs;
        }
        let (request_id, reply) = match decode_response(payload, &self.limits) {
            Ok(resp) => (resp.request_id, Ok(resp.to_response())),
            Err(e) => match e.header {
                // A response this build cannot fully read still tells its status (e.g. an
                // edge of a newer version answering "unsupported version").
                Some(h) if h.status != Status::Ok => (
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
                    return Routed::Malformed {
                        error: e.error.to_string(),
                    }
                }
            },
        };
        match self.resolve(request_id, reply) {
            Some(resolved) => Routed::Answered(resolved),
            None => Routed::Unknown { request_id },
        }
    }

    /// The connection is gone (or the offloader shut down): every pending request fails
    /// with `make()`, and no packet id of the old connection means anything any more.
    pub fn fail_all(&mut self, make: impl Fn() -> OffloadError) -> Vec<Resolved<W>> {
        self.packets.clear();
        self.pending
            .drain()
            .map(|(request_id, waiter)| Resolved {
                request_id,
                waiter,
                reply: Err(make()),
            })
            .collect()
    }

    fn resolve(&mut self, request_id: u64, reply: Reply) -> Option<Resolved<W>> {
        let waiter = self.pending.remove(&request_id)?;
        Some(Resolved {
            request_id,
            waiter,
            reply,
        })
    }
}

#[cfg(test)]
mod tests {
    use ferry_protocol::{encode_error_response, encode_response, EdgeTimings, ResponseRef, TopKList};

    use super::*;

    const TOPIC: &str = "ferry/dev-1/resp";

    /// Waiters are labels: a test checks who was woken.
    fn correlator() -> Correlator<&'static str> {
        Correlator::new(TOPIC.to_owned(), Limits::default())
    }

    fn busy_answer(request_id: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_error_response(request_id, Status::Busy, "queue full", EdgeTimings::default(), &mut buf);
        buf
    }

    fn ok_answer(request_id: u64) -> Vec<u8> {
        let resp = ResponseRef {
            request_id,
            status: Status::Ok,
            detail: "",
            timings: EdgeTimings::default(),
            top_k: TopKList::EMPTY,
            output: None,
        };
        let mut buf = Vec::new();
        encode_response(&resp, &mut buf).unwrap();
        buf
    }

    /// A request begun, queued and written with packet id `pkid`.
    fn in_flight(c: &mut Correlator<&'static str>, request_id: u64, waiter: &'static str, pkid: u16) {
        c.begin(request_id, waiter).unwrap();
        c.queued(request_id);
        c.on_sent(pkid);
    }

    fn answered(routed: Routed<&'static str>) -> Resolved<&'static str> {
        match routed {
            Routed::Answered(r) => r,
            other => panic!("not answered: {other:?}"),
        }
    }

    #[test]
    fn a_response_resolves_the_request_with_the_same_request_id() {
        let mut c = correlator();
        in_flight(&mut c, 1, "first", 1);
        in_flight(&mut c, 2, "second", 2);
        let r = answered(c.on_publish(TOPIC.as_bytes(), &ok_answer(2)));
        assert_eq!((r.request_id, r.waiter), (2, "second"));
        assert_eq!(r.reply.unwrap().status, Status::Ok);
        assert_eq!(c.in_flight(), 1);
    }

    #[test]
    fn a_busy_answer_is_a_reply_not_an_error() {
        let mut c = correlator();
        in_flight(&mut c, 5, "caller", 1);
        let r = answered(c.on_publish(TOPIC.as_bytes(), &busy_answer(5)));
        assert_eq!(r.reply.unwrap().status, Status::Busy);
    }

    #[test]
    fn no_request_is_answered_twice() {
        let mut c = correlator();
        in_flight(&mut c, 3, "caller", 1);
        answered(c.on_publish(TOPIC.as_bytes(), &ok_answer(3)));
        assert!(matches!(c.on_publish(TOPIC.as_bytes(), &ok_answer(3)), Routed::Unknown { request_id: 3 }));
        assert!(c.on_puback(1, PubAckReason::NotAuthorized).is_none());
    }

    #[test]
    fn a_late_response_for_a_forgotten_request_is_dropped_as_unknown() {
        let mut c = correlator();
        in_flight(&mut c, 4, "caller", 1);
        assert_eq!(c.forget(4), Some("caller"));
        assert!(matches!(c.on_publish(TOPIC.as_bytes(), &ok_answer(4)), Routed::Unknown { request_id: 4 }));
    }

    #[test]
    fn a_response_for_an_id_never_sent_is_dropped_as_unknown() {
        let mut c = correlator();
        in_flight(&mut c, 1, "caller", 1);
        assert!(matches!(c.on_publish(TOPIC.as_bytes(), &ok_answer(99)), Routed::Unknown { request_id: 99 }));
        assert_eq!(c.in_flight(), 1);
    }

    #[test]
    fn a_message_on_another_topic_is_not_ours() {
        let mut c = correlator();
        in_flight(&mut c, 1, "caller", 1);
        assert!(matches!(c.on_publish(b"ferry/dev-2/resp", &ok_answer(1)), Routed::NotOurs));
        assert_eq!(c.in_flight(), 1);
    }

    #[test]
    fn an_undecodable_response_that_names_no_request_is_malformed_and_resolves_nothing() {
        let mut c = correlator();
        in_flight(&mut c, 1, "caller", 1);
        assert!(matches!(c.on_publish(TOPIC.as_bytes(), b"junk"), Routed::Malformed { .. }));
        assert_eq!(c.in_flight(), 1);
    }

    #[test]
    fn a_truncated_ok_response_fails_its_request_with_a_protocol_error() {
        let mut c = correlator();
        in_flight(&mut c, 6, "caller", 1);
        let mut payload = ok_answer(6);
        payload.truncate(payload.len() - 1);
        let r = answered(c.on_publish(TOPIC.as_bytes(), &payload));
        assert!(matches!(r.reply, Err(OffloadError::Protocol(_))), "{:?}", r.reply);
    }

    #[test]
    fn a_puback_not_authorized_fails_the_pending_request_with_not_authorized() {
        let mut c = correlator();
        in_flight(&mut c, 7, "caller", 42);
        let r = c.on_puback(42, PubAckReason::NotAuthorized).unwrap();
        assert_eq!((r.request_id, r.waiter), (7, "caller"));
        match r.reply {
            Err(OffloadError::NotAuthorized { reason, .. }) => assert_eq!(reason, "NotAuthorized"),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn a_puback_no_matching_subscribers_fails_the_pending_request_with_no_edge() {
        let mut c = correlator();
        in_flight(&mut c, 8, "caller", 1);
        let r = c.on_puback(1, PubAckReason::NoMatchingSubscribers).unwrap();
        assert!(matches!(r.reply, Err(OffloadError::NoEdge)));
    }

    #[test]
    fn a_successful_puback_leaves_the_request_waiting_for_its_answer() {
        let mut c = correlator();
        in_flight(&mut c, 9, "caller", 1);
        assert!(c.on_puback(1, PubAckReason::Success).is_none());
        answered(c.on_publish(TOPIC.as_bytes(), &ok_answer(9)));
    }

    #[test]
    fn a_puback_refusal_reaches_the_request_whose_packet_id_it_names() {
        let mut c = correlator();
        c.begin(1, "first").unwrap();
        c.begin(2, "second").unwrap();
        c.queued(1);
        c.queued(2);
        c.on_sent(10);
        c.on_sent(11);
        let r = c.on_puback(11, PubAckReason::NotAuthorized).unwrap();
        assert_eq!(r.waiter, "second");
        assert_eq!(c.in_flight(), 1);
    }

    #[test]
    fn a_publish_that_failed_to_queue_does_not_take_the_next_requests_packet_id() {
        let mut c = correlator();
        c.begin(1, "failed").unwrap();
        c.queued(1);
        c.unqueue(1);
        in_flight(&mut c, 2, "sent", 5);
        assert_eq!(c.on_puback(5, PubAckReason::NotAuthorized).unwrap().waiter, "sent");
    }

    #[test]
    fn a_request_id_already_in_flight_is_refused() {
        let mut c = correlator();
        c.begin(1, "first").unwrap();
        assert!(matches!(c.begin(1, "again"), Err(OffloadError::Request(_))));
        assert_eq!(c.forget(1), Some("first"));
    }

    #[test]
    fn a_disconnect_fails_every_in_flight_request_once_and_forgets_their_packet_ids() {
        let mut c = correlator();
        in_flight(&mut c, 1, "a", 1);
        in_flight(&mut c, 2, "b", 2);
        let failed = c.fail_all(|| OffloadError::Disconnected("reset".into()));
        let mut waiters: Vec<_> = failed.iter().map(|r| r.waiter).collect();
        waiters.sort();
        assert_eq!(waiters, ["a", "b"]);
        assert!(failed.iter().all(|r| matches!(r.reply, Err(OffloadError::Disconnected(_)))));
        assert_eq!(c.in_flight(), 0);
        assert!(c.fail_all(|| OffloadError::Closed).is_empty());
        assert!(c.on_puback(1, PubAckReason::NotAuthorized).is_none());
        assert!(matches!(c.on_publish(TOPIC.as_bytes(), &ok_answer(1)), Routed::Unknown { .. }));
    }
}
