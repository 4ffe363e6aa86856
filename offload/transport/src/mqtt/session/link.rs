//! The connection's state machine, shared by every MQTT loop: connecting, subscribing,
//! ready, backing off, closed. It decides what a CONNACK, a SUBACK and a lost connection
//! mean and how long to wait before the next attempt; the loop does the waiting. Time comes
//! in as an argument (the `_at` methods) so that all of it is tested without waiting.

use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode;

use super::disconnect::Disconnection;
use crate::mqtt::backoff::{Backoff, TAKEOVER_MIN_DELAY};

/// A session takeover is reported (logged as an error) at most this often; the ones in
/// between are counted and the count given with the next report.
pub const TAKEOVER_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// Accepted connections in a row that the broker closed before they became stable, after
/// which the link takes it for a takeover even without the v5 reason code. A broker that
/// restarts does not look like this: the attempts in between fail, and a failed attempt
/// ends the streak.
pub const SILENT_TAKEOVER_AFTER: u32 = 2;

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
    /// The broker handed this client's session to another client with the same client id
    /// (two processes with one identity); still retrying, with a backoff of at least
    /// [`TAKEOVER_MIN_DELAY`]. The string says so, naming the client id.
    TakenOver(String),
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
    /// Set when the broker handed the session to another client: whether to report it now.
    pub takeover: Option<Takeover>,
}

/// A session taken over by another client with the same client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    /// The broker said so (v5 DISCONNECT 0x8E); false when inferred from
    /// [`SILENT_TAKEOVER_AFTER`] accepted connections in a row closed soon by the broker.
    pub certain: bool,
    /// Report it now (an error in the log): the first takeover, then at most once every
    /// [`TAKEOVER_REPORT_INTERVAL`].
    pub report: bool,
    /// Takeovers since the last report, this one included.
    pub count: u64,
    /// What to tell the operator: "another client is connected as <client id>" (or "seems
    /// to be", when inferred).
    pub why: String,
}

/// Counts takeovers and decides when to report one.
#[derive(Debug, Clone, Default)]
struct TakeoverReports {
    last_report: Option<Instant>,
    unreported: u64,
}

impl TakeoverReports {
    fn record(&mut self, now: Instant) -> (bool, u64) {
        self.unreported += 1;
        let due = self
            .last_report
            .is_none_or(|t| now.saturating_duration_since(t) >= TAKEOVER_REPORT_INTERVAL);
        let count = self.unreported;
        if due {
            self.last_report = Some(now);
            self.unreported = 0;
        }
        (due, count)
    }
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
    /// When the current connection's CONNACK came; None while not connected.
    connected_at: Option<Instant>,
    /// The MQTT client id, for what a takeover reports.
    client_id: Option<String>,
    takeovers: TakeoverReports,
    /// Accepted connections in a row the broker closed before they became stable.
    short_closes: u32,
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
            connected_at: None,
            client_id: None,
            takeovers: TakeoverReports::default(),
            short_closes: 0,
        }
    }

    /// Names the MQTT client id in what a takeover reports.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The phase now.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// True when messages can go.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// The state callers see: refusals and takeovers stay visible while the link retries.
    pub fn state(&self) -> LinkState {
        match (&self.phase, &self.last_failure) {
            (Phase::Ready, _) => LinkState::Ready,
            (Phase::Closed, _) => LinkState::Closed,
            (_, Some(f)) if f.taken_over => LinkState::TakenOver(f.why.clone()),
            (_, Some(f)) if f.refused => LinkState::Refused(f.why.clone()),
            (_, Some(f)) => LinkState::Connecting(f.why.clone()),
            (_, None) => LinkState::Connecting(String::new()),
        }
    }

    /// The broker accepted the connection, now. See [`Link::on_connack_at`].
    pub fn on_connack(&mut self) -> AfterConnAck {
        self.on_connack_at(Instant::now())
    }

    /// The broker accepted the connection at `now`. Every connection starts clean, so the
    /// subscriptions are made again each time. The backoff is not reset here: only a
    /// connection that lasts resets it (when it ends), so that a broker that closes every
    /// connection at once, or a competitor for the same client id, is not met with the
    /// shortest delay every time.
    pub fn on_connack_at(&mut self, now: Instant) -> AfterConnAck {
        self.connected_at = Some(now);
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
                self.last_failure = Some(Disconnection::refusal(why.clone()));
                AfterSubAck::Refused { why }
            }
        }
    }

    /// The attempt failed or the connection was lost, now. See
    /// [`Link::on_connection_lost_at`].
    pub fn on_connection_lost(&mut self, cause: Disconnection) -> Reconnect {
        self.on_connection_lost_at(cause, Instant::now())
    }

    /// The attempt failed or the connection was lost at `now`: back off, longer after each
    /// failure in a row. A connection that lasted [`Backoff::stable_after`] starts the
    /// schedule again. A session taken over by another client — said by the broker, or
    /// inferred after [`SILENT_TAKEOVER_AFTER`] accepted connections in a row closed by the
    /// broker before they became stable — waits at least [`TAKEOVER_MIN_DELAY`].
    pub fn on_connection_lost_at(&mut self, mut cause: Disconnection, now: Instant) -> Reconnect {
        let was_ready = self.is_ready();
        let lasted = self
            .connected_at
            .take()
            .map(|t| now.saturating_duration_since(t));
        let stable = lasted.is_some_and(|d| d >= self.backoff.stable_after());
        if stable {
            self.backoff.reset();
        }
        // `lasted` is None for an attempt that got no CONNACK: the broker is away or refuses
        // us, which no competitor for the client id explains.
        let closed_soon = lasted.is_some() && !stable && (cause.closed_by_peer || cause.taken_over);
        self.short_closes = if closed_soon {
            self.short_closes + 1
        } else {
            0
        };
        let certain = cause.taken_over;
        let takeover = if certain || self.short_closes >= SILENT_TAKEOVER_AFTER {
            self.backoff.at_least(TAKEOVER_MIN_DELAY);
            let verb = if certain { "is" } else { "seems to be" };
            cause.why = match &self.client_id {
                Some(id) => format!("another client {verb} connected as {id}"),
                None => format!("another client {verb} connected with this client id"),
            };
            cause.taken_over = true;
            let (report, count) = self.takeovers.record(now);
            Some(Takeover {
                certain,
                report,
                count,
                why: cause.why.clone(),
            })
        } else {
            None
        };
        let delay = self.backoff.next_delay();
        if self.phase != Phase::Closed {
            self.phase = Phase::BackingOff(delay);
        }
        self.last_failure = Some(cause.clone());
        Reconnect {
            delay,
            was_ready,
            cause,
            takeover,
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
        assert_eq!(
            link.on_connack(),
            AfterConnAck::Subscribe(vec![TOPIC.to_owned()])
        );
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

    /// Each delay is drawn between half the nominal and the nominal.
    fn within(delay: Duration, nominal_ms: u64) -> bool {
        let nominal = Duration::from_millis(nominal_ms);
        delay >= nominal / 2 && delay <= nominal
    }

    #[test]
    fn failed_attempts_back_off_doubling_up_to_the_cap() {
        let mut link = Link::new(backoff(100, 350), vec![TOPIC.to_owned()]);
        for nominal in [100, 200, 350, 350] {
            let step = link.on_connection_lost(network("connection refused"));
            assert!(!step.was_ready);
            assert!(step.takeover.is_none());
            assert_eq!(link.phase(), &Phase::BackingOff(step.delay));
            assert!(
                within(step.delay, nominal),
                "{:?} for {nominal} ms",
                step.delay
            );
            link.on_backoff_elapsed();
            assert_eq!(link.phase(), &Phase::Connecting);
        }
    }

    /// Connects at `at`, subscribed, and ready.
    fn connect_at(link: &mut Link, at: Instant) {
        link.on_backoff_elapsed();
        link.on_connack_at(at);
        link.on_suback(&granted());
        assert!(link.is_ready());
    }

    #[test]
    fn a_connection_that_lasted_resets_the_backoff() {
        let t0 = Instant::now();
        let mut link = device_link();
        link.on_connection_lost_at(network("down"), t0);
        link.on_connection_lost_at(network("down"), t0);
        connect_at(&mut link, t0);
        let step =
            link.on_connection_lost_at(network("reset by peer"), t0 + Duration::from_secs(30));
        assert!(step.was_ready);
        assert!(within(step.delay, 100), "{:?}", step.delay);
    }

    #[test]
    fn a_connection_closed_soon_after_its_connack_does_not_reset_the_backoff() {
        // Before, every CONNACK reset the backoff: a broker closing each connection at once
        // (or a competitor for the client id) was met with the shortest delay every time.
        let t0 = Instant::now();
        let mut link = device_link();
        let mut t = t0;
        for nominal in [100, 200, 400, 800, 1000, 1000] {
            connect_at(&mut link, t);
            t += Duration::from_secs(2);
            let step = link.on_connection_lost_at(network("closed by the broker"), t);
            assert!(
                within(step.delay, nominal),
                "{:?} for {nominal} ms",
                step.delay
            );
        }
    }

    #[test]
    fn a_takeover_waits_at_least_a_second_doubling_and_shows_the_client_id() {
        let t0 = Instant::now();
        let mut link =
            Link::new(backoff(100, 30_000), vec![TOPIC.to_owned()]).with_client_id("dev-1");
        let mut t = t0;
        for nominal in [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000] {
            connect_at(&mut link, t);
            // The competitor's attempts come within the longest delay: never stable.
            t += Duration::from_secs(29);
            let step = link.on_connection_lost_at(
                Disconnection {
                    taken_over: true,
                    ..network("session taken over")
                },
                t,
            );
            assert!(step.was_ready);
            assert!(
                within(step.delay, nominal),
                "{:?} for {nominal} ms",
                step.delay
            );
            let why = "another client is connected as dev-1".to_owned();
            assert_eq!(
                step.takeover.as_ref().map(|k| (k.certain, k.why.clone())),
                Some((true, why.clone()))
            );
            assert_eq!(link.state(), LinkState::TakenOver(why));
        }
    }

    #[test]
    fn a_takeover_is_reported_at_once_then_at_most_once_a_minute_with_a_count() {
        let t0 = Instant::now();
        let mut link = device_link();
        let mut reports = Vec::new();
        // Takeovers every 5 s for 130 s.
        for i in 0..=26u64 {
            let t = t0 + Duration::from_secs(5 * i);
            connect_at(&mut link, t);
            let step = link.on_connection_lost_at(
                Disconnection {
                    taken_over: true,
                    ..network("x")
                },
                t,
            );
            let k = step.takeover.expect("a takeover");
            if k.report {
                reports.push((5 * i, k.count));
            }
        }
        assert_eq!(reports, [(0, 1), (60, 12), (120, 12)]);
    }

    #[test]
    fn after_a_reconnect_the_link_subscribes_again_and_waits_for_the_suback() {
        let mut link = device_link();
        link.on_connack();
        link.on_suback(&granted());
        link.on_connection_lost(network("reset by peer"));
        assert_eq!(link.state(), LinkState::Connecting("reset by peer".into()));
        link.on_backoff_elapsed();
        assert_eq!(
            link.on_connack(),
            AfterConnAck::Subscribe(vec![TOPIC.to_owned()])
        );
        assert_eq!(link.state(), LinkState::Connecting("reset by peer".into()));
        link.on_suback(&granted());
        assert_eq!(link.state(), LinkState::Ready);
    }

    #[test]
    fn a_refusal_stays_visible_while_the_link_retries() {
        let mut link = device_link();
        link.on_connection_lost(Disconnection::refusal("invalid peer certificate"));
        link.on_backoff_elapsed();
        assert_eq!(
            link.state(),
            LinkState::Refused("invalid peer certificate".into())
        );
        link.on_connack();
        assert_eq!(
            link.state(),
            LinkState::Refused("invalid peer certificate".into())
        );
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

    fn closed_by_broker() -> Disconnection {
        Disconnection {
            closed_by_peer: true,
            ..network("Connection closed by peer abruptly")
        }
    }

    #[test]
    fn accepted_connections_closed_soon_by_the_broker_twice_in_a_row_are_taken_for_a_takeover() {
        // Mosquitto 2.0.11 closes the old connection without saying why.
        let t0 = Instant::now();
        let mut link =
            Link::new(backoff(100, 10_000), vec![TOPIC.to_owned()]).with_client_id("dev-1");
        connect_at(&mut link, t0);
        let first = link.on_connection_lost_at(closed_by_broker(), t0 + Duration::from_secs(5));
        assert!(
            first.takeover.is_none() && within(first.delay, 100),
            "{first:?}"
        );
        connect_at(&mut link, t0 + Duration::from_secs(6));
        let second = link.on_connection_lost_at(closed_by_broker(), t0 + Duration::from_secs(7));
        let why = "another client seems to be connected as dev-1".to_owned();
        let takeover = second.takeover.clone().expect("a takeover");
        assert!(
            !takeover.certain && takeover.report && takeover.why == why,
            "{takeover:?}"
        );
        assert!(second.cause.taken_over);
        assert!(within(second.delay, 1000), "{:?}", second.delay);
        assert_eq!(link.state(), LinkState::TakenOver(why));
    }

    #[test]
    fn a_broker_restart_is_not_taken_for_a_takeover() {
        let t0 = Instant::now();
        let mut link = device_link();
        for i in 0..5 {
            let t = t0 + Duration::from_secs(10 * i);
            connect_at(&mut link, t);
            // Closed by the broker going away; the next attempt is refused until it is back.
            let lost = link.on_connection_lost_at(closed_by_broker(), t + Duration::from_secs(2));
            assert!(lost.takeover.is_none(), "{lost:?}");
            let refused = network("Connection refused (os error 111)");
            let failed = link.on_connection_lost_at(refused, t + Duration::from_secs(3));
            assert!(failed.takeover.is_none(), "{failed:?}");
        }
        // Stable connections closed by the broker, twice in a row, are no takeover either.
        for i in 0..2 {
            let t = t0 + Duration::from_secs(100 + 40 * i);
            connect_at(&mut link, t);
            let step = link.on_connection_lost_at(closed_by_broker(), t + Duration::from_secs(31));
            assert!(
                step.takeover.is_none() && within(step.delay, 100),
                "{step:?}"
            );
        }
    }
}
