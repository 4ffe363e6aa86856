//! QoS 1 acknowledgements: what a v5 PUBACK reason means, and which message a PUBACK is
//! for. rumqttc gives a publish its packet id only when it takes it from its channel, so a
//! sender records what it queued, in channel order, and the packet id is attached when
//! rumqttc reports the outgoing PUBLISH.

use std::collections::{HashMap, VecDeque};

use rumqttc::v5::mqttbytes::v5::PubAckReason;

/// What a PUBACK says about the message it acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubAckOutcome {
    /// The broker took it and someone is subscribed.
    Delivered,
    /// The broker took it, but nobody is subscribed to its topic (v5
    /// `NoMatchingSubscribers`): for a request, no edge server is there.
    NoSubscribers,
    /// The broker refused it (ACL `NotAuthorized`, quota, bad topic, …); sending it again
    /// will not help.
    Refused(PubAckReason),
}

impl PubAckOutcome {
    /// True when the broker took the message, whether or not anyone was listening.
    pub fn is_accepted(self) -> bool {
        !matches!(self, PubAckOutcome::Refused(_))
    }
}

impl From<PubAckReason> for PubAckOutcome {
    fn from(reason: PubAckReason) -> Self {
        match reason {
            PubAckReason::Success => PubAckOutcome::Delivered,
            PubAckReason::NoMatchingSubscribers => PubAckOutcome::NoSubscribers,
            other => PubAckOutcome::Refused(other),
        }
    }
}

/// Messages handed to rumqttc and not yet acknowledged, each known by a tag `T` of the
/// sender's choosing (a request id, a spool sequence number).
#[derive(Debug)]
pub struct PacketIds<T> {
    /// In the order their publishes went into rumqttc's channel, waiting for a packet id.
    queued: VecDeque<T>,
    by_pkid: HashMap<u16, T>,
}

impl<T> Default for PacketIds<T> {
    fn default() -> Self {
        PacketIds {
            queued: VecDeque::new(),
            by_pkid: HashMap::new(),
        }
    }
}

impl<T> PacketIds<T> {
    /// The publish tagged `tag` is about to go into rumqttc's channel. Calls must be in
    /// channel order.
    pub fn queued(&mut self, tag: T) {
        self.queued.push_back(tag);
    }

    /// Handing the last queued publish to rumqttc failed: forget it, if it is `tag`.
    pub fn unqueue(&mut self, tag: &T)
    where
        T: PartialEq,
    {
        if self.queued.back() == Some(tag) {
            self.queued.pop_back();
        }
    }

    /// rumqttc wrote the oldest queued publish with packet id `pkid`.
    pub fn on_sent(&mut self, pkid: u16) {
        if let Some(tag) = self.queued.pop_front() {
            self.by_pkid.insert(pkid, tag);
        }
    }

    /// A PUBACK for `pkid`: the message it is for (none if unknown) and what it says.
    pub fn on_puback(&mut self, pkid: u16, reason: PubAckReason) -> Option<(T, PubAckOutcome)> {
        let tag = self.by_pkid.remove(&pkid)?;
        Some((tag, reason.into()))
    }

    /// Forgets everything (the connection that would have acknowledged them is gone).
    pub fn clear(&mut self) {
        self.queued.clear();
        self.by_pkid.clear();
    }

    /// Messages queued or awaiting their PUBACK.
    pub fn len(&self) -> usize {
        self.queued.len() + self.by_pkid.len()
    }

    /// True when nothing is queued or awaiting a PUBACK.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_delivered_and_no_matching_subscribers_is_accepted_but_unheard() {
        assert_eq!(PubAckOutcome::from(PubAckReason::Success), PubAckOutcome::Delivered);
        let none = PubAckOutcome::from(PubAckReason::NoMatchingSubscribers);
        assert_eq!(none, PubAckOutcome::NoSubscribers);
        assert!(none.is_accepted());
    }

    #[test]
    fn not_authorized_and_other_failure_reasons_are_refusals() {
        for reason in [PubAckReason::NotAuthorized, PubAckReason::QuotaExceeded, PubAckReason::TopicNameInvalid] {
            let outcome = PubAckOutcome::from(reason);
            assert_eq!(outcome, PubAckOutcome::Refused(reason));
            assert!(!outcome.is_accepted());
        }
    }

    #[test]
    fn packet_ids_are_attached_in_channel_order_and_each_puback_resolves_its_own_tag() {
        let mut ids = PacketIds::default();
        ids.queued(10_u64);
        ids.queued(11);
        ids.on_sent(7);
        ids.on_sent(8);
        assert_eq!(ids.on_puback(8, PubAckReason::NotAuthorized), Some((11, PubAckOutcome::Refused(PubAckReason::NotAuthorized))));
        assert_eq!(ids.on_puback(7, PubAckReason::Success), Some((10, PubAckOutcome::Delivered)));
        assert!(ids.is_empty());
    }

    #[test]
    fn a_puback_for_an_unknown_or_already_acknowledged_packet_id_resolves_nothing() {
        let mut ids = PacketIds::default();
        ids.queued(1_u64);
        ids.on_sent(3);
        assert_eq!(ids.on_puback(4, PubAckReason::Success), None);
        assert!(ids.on_puback(3, PubAckReason::Success).is_some());
        assert_eq!(ids.on_puback(3, PubAckReason::Success), None);
    }

    #[test]
    fn a_publish_rumqttc_did_not_take_is_unqueued_so_later_packet_ids_stay_aligned() {
        let mut ids = PacketIds::default();
        ids.queued(1_u64);
        ids.queued(2);
        ids.unqueue(&2);
        ids.unqueue(&5);
        ids.queued(3);
        ids.on_sent(20);
        ids.on_sent(21);
        assert_eq!(ids.on_puback(21, PubAckReason::Success).map(|(t, _)| t), Some(3));
        assert_eq!(ids.on_puback(20, PubAckReason::Success).map(|(t, _)| t), Some(1));
    }

    #[test]
    fn an_outgoing_publish_nobody_queued_is_not_tracked() {
        let mut ids = PacketIds::<u64>::default();
        ids.on_sent(9);
        assert_eq!(ids.on_puback(9, PubAckReason::Success), None);
    }
}
