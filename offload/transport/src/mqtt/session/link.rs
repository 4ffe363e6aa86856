//! The connection's state machine, shared by every MQTT loop: connecting, subscribing,
//! ready, backing off, closed. It decides what a CONNACK, a SUBACK and a lost connection
//! mean and how long to wait before the next attempt; the loop does the waiting.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode;

use super::disconnect::Disconnection;
use crate::mqtt::config::Backoff;

/// Where the connection to the broker stands, as the device's callers see it.
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

/// The step of the connection's life the link is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// An attempt is under way (TCP, TLS, CONNACK).
    Connecting,
    /// Connected; waiting for the SUBACK of the link's subscriptions.
    Subscribing,
    /// Connected and subscribed: messages can go.
    Ready,
    /// Connected, but the broker refused a subscription; nothing changes until the next
    /// connection subscribes again.
    SubscriptionRefused,
    /// The last attempt failed or the connection was lost; the next attempt starts after
    /// this delay.
    BackingOff(Duration),
    /// Shut down for good.
    Closed,
}

/// What to do after a CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterConnAck {
    /// Subscribe to these filters (QoS 1); the link is ready once their SUBACK says so.
    Subscribe(Vec<String>),
    /// Nothing to subscribe to: the link is ready now.
    Ready,
}

/// What a SUBACK meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterSubAck {
    /// Every subscription was granted: the link is ready.
    Ready,
    /// The broker refused one; `why` names the filter and the reason code.
    Refused {
        /// For logs and for [`LinkState::Refused`].
        why: String,
    },
    /// The link is closed; a late SUBACK changes nothing.
    Ignored,
}

/// What to do after the connection failed or was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    /// Wait this long, then report [`Link::on_backoff_elapsed`] and try again.
    pub delay: Duration,
    /// The link was ready when it was lost (a loss worth a warning), as opposed to a
    /// failed attempt.
    pub was_ready: bool,
    /// Why.
    pub cause: Disconnection,
}

/// One broker connection's state across reconnections. No I/O: the loop reports what
/// happened and performs what it is told.
#[derive(Debug, Clone)]
pub struct Link {
    subscriptions: Vec<String>,
    backoff: Backoff,
    phase: Phase,
    /// Why the last attempt failed or the last subscription was refused; cleared once ready.
    last_failure: Option<Disconnection>,
}

impl Link {
    /// A link that subscribes to `subscriptions` after every CONNACK (none: ready at the
    /// CONNACK), waiting between attempts as `backoff` says.
    pub fn new(backoff: Backoff, subscriptions: Vec<String>) -> Self {
        Link {
            subscriptions,
            backoff,
            phase: Phase::Connecting,
            last_failure: None,
        }
    }

    /// The phase now.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// True when messages can go.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// The state callers see: refusals stay visible while the link retries.
    pub fn state(&self) -> LinkState {
        match (&self.phase, &self.last_failure) {
            (Phase::Ready, _) => LinkState::Ready,
            (Phase::Closed, _) => LinkState::Closed,
            (_, Some(f)) if f.refused => LinkState::Refused(f.why.clone()),
            (_, Some(f)) => LinkState::Connecting(f.why.clone()),
            (_, None) => LinkState::Connecting(String::new()),
        }
    }

    /// The broker accepted the connection. Every connection starts clean, so the
    /// subscriptions are made again each time.
    pub fn on_connack(&mut self) -> AfterConnAck {
        self.backoff.reset();
        if self.subscriptions.is_empty() {
            self.ready();
            AfterConnAck::Ready
        } else {
            self.phase = Phase::Subscribing;
            AfterConnAck::Subscribe(self.subscriptions.clone())
        }
    }

    /// The broker answered a subscription with `codes`, one per filter in order.
    pub fn on_suback(&mut self, codes: &[SubscribeReasonCode]) -> AfterSubAck {
        if self.phase == Phase::Closed {
            return AfterSubAck::Ignored;
        }
        let refused = codes
            .iter()
            .enumerate()
            .find(|(_, c)| !matches!(c, SubscribeReasonCode::Success(_)));
        match refused {
            None => {
                self.ready();
                AfterSubAck::Ready
            }
            Some((i, code)) => {
                let filter = self.subscriptions.get(i).map(String::as_str).unwrap_or("?");
                let why = format!("subscription to {filter} refused: {code:?}");
                self.phase = Phase::SubscriptionRefused;
                self.last_failure = Some(Disconnection {
                    why: why.clone(),
                    refused: true,
                });
                AfterSubAck::Refused { why }
            }
        }
    }

    /// The attempt failed or the connection was lost: back off, longer after each failure
    /// in a row.
    pub fn on_connection_lost(&mut self, cause: Disconnection) -> Reconnect {
        let was_ready = self.is_ready();
        let delay = self.backoff.next_delay();
        if self.phase != Phase::Closed {
            self.phase = Phase::BackingOff(delay);
        }
        self.last_failure = Some(cause.clone());
        Reconnect {
            delay,
            was_ready,
            cause,
        }
    }

    /// The backoff delay is over: the next attempt starts.
    pub fn on_backoff_elapsed(&mut self) {
        if matches!(self.phase, Phase::BackingOff(_)) {
            self.phase = Phase::Connecting;
        }
    }

    /// Shut down: nothing reopens the link.
    pub fn on_closed(&mut self) {
        self.phase = Phase::Closed;
    }

    fn ready(&mut self) {
        self.phase = Phase::Ready;
        self.last_failure = None;
    }
}

#[cfg(test)]
mod tests {
    use rumqttc::v5::mqttbytes::QoS;

    use super::*;
    use crate::mqtt::MqttConfig;

    const TOPIC: &str = "ferry/dev-1/resp";

    fn backoff(min_ms: u64, max_ms: u64) -> Backoff {
        let mut c = MqttConfig::new("mqtts://h");
        c.reconnect_min_ms = min_ms;
        c.reconnect_max_ms = max_ms;
        Backoff::new(&c)
    }

    fn device_link() -> Link {
        Link::new(backoff(100, 1000), vec![TOPIC.to_owned()])
    }

    fn network(why: &str) -> Disconnection {
        Disconnection::network(why)
    }

    fn granted() -> [SubscribeReasonCode; 1] {
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    }

    #[test]
    fn a_new_link_is_connecting_with_no_reason_yet() {
        let link = device_link();
        assert_eq!(link.phase(), &Phase::Connecting);
        assert_eq!(link.state(), LinkState::Connecting(String::new()));
    }

    #[test]
    fn a_connack_asks_to_subscribe_and_the_link_is_ready_only_after_the_suback() {
        let mut link = device_link();
        assert_eq!(link.on_connack(), AfterConnAck::Subscribe(vec![TOPIC.to_owned()]));
        assert_eq!(link.phase(), &Phase::Subscribing);
        assert!(!link.is_ready());
        assert_eq!(link.on_suback(&granted()), AfterSubAck::Ready);
        assert_eq!(link.state(), LinkState::Ready);
    }

    #[test]
    fn a_link_without_subscriptions_is_ready_at_the_connack() {
        let mut link = Link::new(backoff(100, 1000), Vec::new());
        assert_eq!(link.on_connack(), AfterConnAck::Ready);
        assert!(link.is_ready());
    }

    #[test]
    fn a_refused_subscription_names_the_filter_and_shows_as_refused() {
        let mut link = device_link();
        link.on_connack();
        let after = link.on_suback(&[SubscribeReasonCode::NotAuthorized]);
        let why = format!("subscription to {TOPIC} refused: NotAuthorized");
        assert_eq!(after, AfterSubAck::Refused { why: why.clone() });
        assert_eq!(link.phase(), &Phase::SubscriptionRefused);
        assert_eq!(link.state(), LinkState::Refused(why));
    }

    #[test]
    fn failed_attempts_back_off_doubling_up_to_the_cap() {
        let mut link = Link::new(backoff(100, 350), vec![TOPIC.to_owned()]);
        let mut delays = Vec::new();
        for _ in 0..4 {
            let step = link.on_connection_lost(network("connection refused"));
            assert!(!step.was_ready);
            assert_eq!(link.phase(), &Phase::BackingOff(step.delay));
            delays.push(step.delay.as_millis());
            link.on_backoff_elapsed();
            assert_eq!(link.phase(), &Phase::Connecting);
        }
        assert_eq!(delays, [100, 200, 350, 350]);
    }

    #[test]
    fn a_good_connection_resets_the_backoff() {
        let mut link = device_link();
        link.on_connection_lost(network("down"));
        link.on_connection_lost(network("down"));
        link.on_backoff_elapsed();
        link.on_connack();
        link.on_suback(&granted());
        let step = link.on_connection_lost(network("reset by peer"));
        assert!(step.was_ready);
        assert_eq!(step.delay, Duration::from_millis(100));
    }

    #[test]
    fn after_a_reconnect_the_link_subscribes_again_and_waits_for_the_suback() {
        let mut link = device_link();
        link.on_connack();
        link.on_suback(&granted());
        link.on_connection_lost(network("reset by peer"));
        assert_eq!(link.state(), LinkState::Connecting("reset by peer".into()));
        link.on_backoff_elapsed();
        assert_eq!(link.on_connack(), AfterConnAck::Subscribe(vec![TOPIC.to_owned()]));
        assert_eq!(link.state(), LinkState::Connecting("reset by peer".into()));
        link.on_suback(&granted());
        assert_eq!(link.state(), LinkState::Ready);
    }

    #[test]
    fn a_refusal_stays_visible_while_the_link_retries() {
        let mut link = device_link();
        link.on_connection_lost(Disconnection {
            why: "invalid peer certificate".into(),
            refused: true,
        });
        link.on_backoff_elapsed();
        assert_eq!(link.state(), LinkState::Refused("invalid peer certificate".into()));
        link.on_connack();
        assert_eq!(link.state(), LinkState::Refused("invalid peer certificate".into()));
        link.on_suback(&granted());
        assert_eq!(link.state(), LinkState::Ready);
    }

    #[test]
    fn a_closed_link_stays_closed() {
        let mut link = device_link();
        link.on_closed();
        link.on_connection_lost(network("gone"));
        link.on_backoff_elapsed();
        assert_eq!(link.on_suback(&granted()), AfterSubAck::Ignored);
        assert_eq!(link.state(), LinkState::Closed);
    }
}
