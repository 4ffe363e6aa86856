//! Edge estimator: the link to it, its reported queue wait and compute time, its availability.

use super::config::MAX_MODELS;
use super::ewma::Ewma;
use super::link::LinkEstimator;

/// What the decision knows about one edge endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeEstimator {
    /// The link to it.
    pub link: LinkEstimator,
    queue_us: Ewma,
    compute_us: [Ewma; MAX_MODELS],
    /// The same over a ten times longer window: what the edge's compute has been in the long
    /// run, where an estimate nothing refreshes returns to ([`Self::compute_at`]).
    compute_long_us: [Ewma; MAX_MODELS],
    /// When an answer last reported each model's compute, µs.
    compute_at_us: [u64; MAX_MODELS],
    /// Share of recent attempts that failed (error or timeout), as an EWMA of 0/1.
    fail_rate: Ewma,
    /// Share of recent attempts answered "busy".
    busy_rate: Ewma,
    consecutive_errors: u32,
    down_until_us: Option<u64>,
    backoff_us: u64,
    /// Requests in flight now.
    pub inflight: u16,
    /// When the path last carried a request or probe, µs.
    pub last_used_us: u64,
    /// A probe is out.
    pub probing: bool,
    /// Bytes this device had queued on the uplink and not yet sent, as of `uplink_at_us` (one
    /// connection carries the uploads one after another). They drain at the *current* pace
    /// estimate, so a backlog queued while the link was slow drains fast once answers and
    /// probes show it is fast again.
    uplink_backlog_bytes: f64,
    uplink_at_us: u64,
    /// The best RTT and paces seen recently: what the link would give if it recovered (see
    /// [`Self::recovered_us`]). Each follows its estimate down at once and up slowly
    /// ([`PACE_MEMORY_US`]), so a link that has been slow for long stops promising a recovery.
    best: [f64; 3],
    best_at_us: u64,
    /// An offload that showed a collapse (its wait restarted the link estimate) and is still
    /// unanswered: while it stays so, the link is proven at least that slow.
    collapse: Option<Pending>,
    /// The last probe restarted the link estimate to faster, and no real transfer has checked
    /// it yet: the estimate from before it.
    probe_claim: Option<LinkEstimator>,
    /// Probes carry `probe_bytes` times this (1, 2, 4 or 8): doubled each time a real transfer
    /// contradicts a probe, halved after [`CONFIRMATIONS_TO_SHRINK`] in a row confirm one.
    probe_scale: u32,
    confirmations: u32,
    /// Probes answered since start.
    pub probes_answered: u64,
    /// What requests would gain per request on this edge recovered (see
    /// [`crate::Estimators::note_recovery_gain`]), µs: an average over the request mix, so
    /// that one small request does not make probing look worthless.
    pub gain_us: Ewma,
}

/// An abandoned offload still out.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pending {
    sent_us: u64,
    model: usize,
    up: u32,
    down: u32,
}

const MIN_BACKOFF_US: u64 = 500_000;
/// A probe is a few KiB; retrying a dead edge every 2 s costs next to nothing and brings the
/// edge back within 2 s of its recovery (outages of a shared edge last seconds, not minutes).
const MAX_BACKOFF_US: u64 = 2_000_000;
/// Weight of the edge's own report of its queue (and of a probe's "not busy"): the edge states
/// its present queue, so the estimate follows it quickly instead of averaging it with the past.
pub const STATE_REPORT_WEIGHT: f64 = 0.6;
/// An idle edge path is "recovering" while it is believed this unreliable ...
const RECOVERING_FAILURE_P: f64 = 0.02;
/// ... or its queue wait is believed this long, µs.
const RECOVERING_QUEUE_US: f64 = 20_000.0;
/// How long the best recent uplink pace is remembered: it relaxes towards the present
/// estimate with this time constant, µs.
pub const PACE_MEMORY_US: f64 = 600e6;
/// Largest factor a probe grows by after contradictions.
pub const MAX_PROBE_SCALE: u32 = 8;
/// How many σ above its mean the edge's own time (queue + compute) may plausibly be before a
/// wait is put down to the link ([`EdgeEstimator::on_waited_at_least`]).
const EDGE_TIME_K: f64 = 2.0;
/// The long-run compute estimate averages over this many times the window of the present one.
const LONG_WINDOW: f64 = 10.0;
/// A compute estimate no answer has refreshed for this long starts to relax towards the
/// long-run one, µs ([`EdgeEstimator::compute_at`]).
const COMPUTE_STALE_US: f64 = 2e6;
/// ... with this time constant, µs.
const COMPUTE_RELAX_US: f64 = 5e6;
/// Real transfers in a row that confirm a probe before probes shrink back by half.
pub const CONFIRMATIONS_TO_SHRINK: u32 = 2;

impl EdgeEstimator {
    /// Starts from priors.
    pub fn new(alpha: f64, compute_prior_us: f64) -> EdgeEstimator {
        EdgeEstimator {
            link: LinkEstimator::new(alpha),
            queue_us: Ewma::with_prior(alpha, 0.0, 1_000.0),
            compute_us: [Ewma::with_prior(alpha, compute_prior_us, compute_prior_us * 0.5); MAX_MODELS],
            compute_long_us: [Ewma::with_prior(alpha / LONG_WINDOW, compute_prior_us, compute_prior_us * 0.5); MAX_MODELS],
            compute_at_us: [0; MAX_MODELS],
            fail_rate: Ewma::new(alpha),
            busy_rate: Ewma::new(alpha),
            consecutive_errors: 0,
            down_until_us: None,
            backoff_us: MIN_BACKOFF_US,
            inflight: 0,
            last_used_us: 0,
            probing: false,
            uplink_backlog_bytes: 0.0,
            uplink_at_us: 0,
            best: {
                let l = LinkEstimator::new(alpha);
                [l.rtt().mean(), l.up_pace().mean(), l.down_pace().mean()]
            },
            best_at_us: 0,
            collapse: None,
            probe_claim: None,
            probe_scale: 1,
            confirmations: 0,
            probes_answered: 0,
            gain_us: Ewma::new(alpha),
        }
    }

    /// An upload of `up_bytes` left at `now_us`: it queues behind the bytes already sent.
    pub fn on_sent(&mut self, now_us: u64, up_bytes: u32) {
        self.uplink_backlog_bytes = self.unsent_bytes(now_us) + f64::from(up_bytes);
        self.uplink_at_us = now_us;
    }

    /// An answer (or an answered probe) came back at `now_us`: on one connection its bytes, and
    /// every byte sent before them, have left. What can still be queued is bounded by what the
    /// requests still in flight sent (taken as `per_request_bytes` each) — an approximation:
    /// offloads abandoned after this one was sent are no longer counted in flight.
    pub fn on_delivered(&mut self, now_us: u64, per_request_bytes: u32) {
        let bound = f64::from(self.inflight) * f64::from(per_request_bytes);
        self.uplink_backlog_bytes = self.unsent_bytes(now_us).min(bound);
        self.uplink_at_us = now_us;
    }

    /// Bytes still queued on the uplink at `now_us`.
    fn unsent_bytes(&self, now_us: u64) -> f64 {
        let pace = self.link.up_pace().mean().max(1e-9);
        let sent = now_us.saturating_sub(self.uplink_at_us) as f64 / pace;
        (self.uplink_backlog_bytes - sent).max(0.0)
    }

    /// An offload sent at `now_us - waited_us` was out `waited_us` without an answer: the link
    /// is at least that slow. Censored: only a wait longer than predicted carries information;
    /// one far longer ([`LinkEstimator::on_at_least`]) restarts the estimate, and while that
    /// offload stays unanswered [`Self::raise_pending`] keeps raising it.
    pub fn on_waited_at_least(&mut self, now_us: u64, model: usize, up: u32, down: u32, waited_us: f64) {
        let waited_net = waited_us - self.edge_time_us(model, now_us);
        self.check_claim(up, down, waited_net);
        if self.link.on_at_least(up, down, waited_net) && self.collapse.is_none() {
            let sent_us = now_us.saturating_sub(waited_us.max(0.0) as u64);
            self.collapse = Some(Pending { sent_us, model, up, down });
        }
        self.note_pace(now_us);
    }

    /// The offload that showed a collapse is still unanswered at `now_us`: the link estimate
    /// is raised to what its wait proves.
    pub fn raise_pending(&mut self, now_us: u64) {
        if let Some(p) = self.collapse {
            let waited_net = now_us.saturating_sub(p.sent_us) as f64 - self.edge_time_us(p.model, now_us);
            self.link.raise_to(p.up, p.down, waited_net);
        }
    }

    /// The offloads out have ended (answered, late, or expired): nothing is proven any more.
    pub fn settle_pending(&mut self) {
        self.collapse = None;
    }

    /// The edge's own part of a request's time, as estimated: queue + compute, at its upper
    /// plausible value (mean + 2σ). A wait is evidence against the link only beyond what a
    /// slow edge run could explain: with the mean alone, one edge run 2σ slower than usual,
    /// overtaken by the local run, read as a link three times slower than it was.
    fn edge_time_us(&self, model: usize, now_us: u64) -> f64 {
        let compute = self.compute_at(model, now_us);
        let mean = self.queue_us.mean() + compute.as_ref().map_or(0.0, Ewma::mean);
        let var = self.queue_us.var() + compute.as_ref().map_or(0.0, Ewma::var);
        mean + EDGE_TIME_K * var.max(0.0).sqrt()
    }

    /// A real transfer (or a lower bound on one) after a probe that said the link got faster:
    /// the probe was fooled (it fit in a burst allowance) if the transfer is
    /// [`crate::link::CHANGE_FACTOR`] or more slower than the probe made the estimate *and*
    /// still about as slow as the estimate before the probe (within the same factor) — then the
    /// next probes are twice as large. A transfer that merely falls short of an over-optimistic
    /// probe (a 16 KiB probe timed at less than its RTT on a 100 Mbit/s link) is no
    /// contradiction.
    fn check_claim(&mut self, up: u32, down: u32, net_us: f64) {
        let Some(before) = self.probe_claim.take() else { return };
        let vs_probe = self.link.ratio(up, down, net_us);
        let vs_before = before.ratio(up, down, net_us);
        let fooled = matches!((vs_probe, vs_before), (Some(p), Some(b)) if p >= crate::link::CHANGE_FACTOR && b >= 1.0 / crate::link::CHANGE_FACTOR);
        if fooled {
            self.probe_scale = (self.probe_scale * 2).min(MAX_PROBE_SCALE);
            self.confirmations = 0;
        } else {
            self.confirmations += 1;
            if self.confirmations >= CONFIRMATIONS_TO_SHRINK {
                self.probe_scale = (self.probe_scale / 2).max(1);
                self.confirmations = 0;
            }
        }
    }

    /// Payload bytes of the next probe: `base` times the growth after contradictions.
    pub fn probe_bytes(&self, base: u32) -> u32 {
        base.saturating_mul(self.probe_scale)
    }

    /// Tracks the best recent RTT and paces at `now_us` (see the field's doc). Called after
    /// every measurement of the path: without one, nothing relaxes.
    pub fn note_pace(&mut self, now_us: u64) {
        let dt = now_us.saturating_sub(self.best_at_us) as f64;
        self.best_at_us = now_us;
        // Geometric relaxation towards the present: e^-1 of the ratio left after a memory constant.
        let w = (dt / PACE_MEMORY_US).min(1.0);
        let now = [self.link.rtt().mean(), self.link.up_pace().mean(), self.link.down_pace().mean()];
        for (best, cur) in self.best.iter_mut().zip(now) {
            if !(cur.is_finite() && cur > 0.0) {
                continue;
            }
            if cur <= *best || best.is_nan() || *best <= 0.0 {
                *best = cur;
            } else {
                *best *= (cur / *best).powf(w);
            }
        }
    }

    /// Predicted time of a request on this edge if its path were healthy: at the best recent
    /// RTT and paces, with no queue and no failure, µs.
    pub fn recovered_us(&self, model: usize, up: u32, down: u32) -> f64 {
        let [rtt, up_pace, down_pace] = self.best;
        rtt + f64::from(up) * up_pace + f64::from(down) * down_pace + self.compute_us.get(model).map_or(0.0, Ewma::mean)
    }

    /// How long an upload sent now would wait behind this device's earlier uploads, µs.
    pub fn uplink_wait_us(&self, now_us: u64) -> f64 {
        self.unsent_bytes(now_us) * self.link.up_pace().mean().max(0.0)
    }

    /// Reported queue wait.
    pub fn queue(&self) -> &Ewma {
        &self.queue_us
    }

    /// Reported compute time of a model (the present estimate, however old).
    pub fn compute(&self, model: usize) -> Option<&Ewma> {
        self.compute_us.get(model)
    }

    /// The compute time of a model to plan with at `now_us`. Only real answers report it
    /// (probes run no model), so while the device keeps off the edge nothing refreshes it:
    /// three slow runs in a row, an ordinary streak for an edge with a 27 % spread, made its
    /// quantile miss the deadline and kept an idle Pi-class board local for 64 s on a good
    /// link. So an estimate no answer has refreshed for [`COMPUTE_STALE_US`] relaxes towards
    /// the long-run one (time constant [`COMPUTE_RELAX_US`]): a streak is forgotten, and an
    /// edge that stays slow shows it again at the next answer.
    pub fn compute_at(&self, model: usize, now_us: u64) -> Option<Ewma> {
        let (now, long) = (self.compute_us.get(model)?, self.compute_long_us.get(model)?);
        let age = now_us.saturating_sub(self.compute_at_us.get(model).copied().unwrap_or(0)) as f64;
        if now.samples() == 0 || age <= COMPUTE_STALE_US {
            return Some(*now);
        }
        let w = (-(age - COMPUTE_STALE_US) / COMPUTE_RELAX_US).exp();
        let mean = w * now.mean() + (1.0 - w) * long.mean();
        let var = w * now.var() + (1.0 - w) * long.var();
        Some(Ewma::with_prior(0.0, mean, var.sqrt()))
    }

    /// Probability that an attempt now ends without an answer (error, timeout or busy).
    pub fn failure_probability(&self) -> f64 {
        (self.fail_rate.mean() + self.busy_rate.mean()).clamp(0.0, 1.0)
    }

    /// Whether the circuit breaker has it marked down at `now_us`.
    pub fn is_down(&self, now_us: u64) -> bool {
        self.down_until_us.is_some_and(|t| now_us < t)
    }

    /// Whether the breaker has tripped at all (down, or waiting for a probe to confirm).
    pub fn tripped(&self) -> bool {
        self.down_until_us.is_some()
    }

    /// A successful answer: the edge's own timings and the bytes moved.
    pub fn on_answer(&mut self, now_us: u64, model: usize, up: u32, down: u32, total_us: f64, queue_us: f64, compute_us: f64) {
        self.on_answer_in_form(now_us, model, up, down, total_us, queue_us, compute_us, 1.0);
    }

    /// [`Self::on_answer`] for a request sent in a form whose edge compute is `share` of the
    /// whole model's (a split's tail): the link is charged what the edge did not spend
    /// (`total − queue − compute`, the compute as reported), the model's compute estimate
    /// learns the whole model's (`compute / share`).
    #[allow(clippy::too_many_arguments)]
    pub fn on_answer_in_form(&mut self, now_us: u64, model: usize, up: u32, down: u32, total_us: f64, queue_us: f64, compute_us: f64, share: f64) {
        self.check_claim(up, down, total_us - queue_us - compute_us);
        self.settle_pending();
        self.link.on_transfer(up, down, total_us - queue_us - compute_us);
        self.queue_us.update_weighted(queue_us, STATE_REPORT_WEIGHT);
        if let (Some(c), Some(l), Some(at)) =
            (self.compute_us.get_mut(model), self.compute_long_us.get_mut(model), self.compute_at_us.get_mut(model))
        {
            let whole = compute_us / share.clamp(1e-3, 1.0);
            c.update(whole);
            l.update(whole);
            *at = now_us;
        }
        self.on_alive();
    }

    /// A "busy" refusal, with the queue wait the edge reported if any.
    pub fn on_busy(&mut self, reported_queue_us: Option<f64>) {
        self.busy_rate.update(1.0);
        self.fail_rate.update(0.0);
        if let Some(q) = reported_queue_us {
            self.queue_us.update_weighted(q, STATE_REPORT_WEIGHT);
        }
        self.consecutive_errors = 0;
    }

    /// An error or a timeout. Enough in a row mark the edge down with doubling backoff.
    pub fn on_error(&mut self, now_us: u64, breaker_errors: u32) {
        self.fail_rate.update(1.0);
        self.busy_rate.update(0.0);
        self.consecutive_errors = self.consecutive_errors.saturating_add(1);
        if self.consecutive_errors >= breaker_errors.max(1) {
            self.down_until_us = Some(now_us.saturating_add(self.backoff_us));
            self.backoff_us = (self.backoff_us * 2).min(MAX_BACKOFF_US);
        }
    }

    /// Any sign of life: a good answer or a good probe.
    pub fn on_alive(&mut self) {
        self.fail_rate.update(0.0);
        self.busy_rate.update(0.0);
        self.reset_breaker();
    }

    fn reset_breaker(&mut self) {
        self.consecutive_errors = 0;
        self.down_until_us = None;
        self.backoff_us = MIN_BACKOFF_US;
    }

    /// A probe came back: ping RTT, a payload exchange, and the queue wait if reported.
    ///
    /// An answered probe is the edge stating its present state: the failure share and the
    /// queue estimate follow it with [`STATE_REPORT_WEIGHT`], and so does the busy share when
    /// the reported queue is short (an edge that answers promptly with a short queue is not
    /// refusing work now).
    ///
    /// Probes go out only on a path that has been idle for a while, so what the estimators hold
    /// is stale: the probe's RTT and transfer are weighted the same way.
    ///
    /// A payload exchange far off the prediction restarts the link estimate
    /// ([`LinkEstimator::on_probe_transfer`]); a restart to faster is a claim the next real
    /// transfer checks (see [`Self::probe_bytes`]).
    pub fn on_probe(&mut self, rtt_us: f64, up: u32, down: u32, transfer_us: f64, queue_us: Option<f64>) {
        self.probing = false;
        self.probes_answered = self.probes_answered.saturating_add(1);
        // The payload is split with the RTT as known before this ping, and a ping far above
        // that while an abandoned offload is still out waited behind its bytes: it measures
        // that backlog, not the RTT, and is left out (with it, the payload right after it —
        // which did not wait — would look fast, and its spread would hide the end of a
        // throttle).
        let backlog = self.collapse.is_some() || self.uplink_backlog_bytes > 0.0;
        let faster = self.link.ratio(up, down, transfer_us).is_some_and(|f| f < 1.0);
        let before = self.link;
        if self.link.on_probe_transfer(up, down, transfer_us, STATE_REPORT_WEIGHT) {
            self.probe_claim = faster.then_some(before);
            if faster {
                // Measured since: what an older offload's wait proved no longer holds, and
                // the failures the collapsed link caused (offloads that expired) are over.
                self.settle_pending();
                self.fail_rate.update_weighted(0.0, 1.0);
            }
        }
        let queued = backlog && rtt_us > crate::link::CHANGE_FACTOR * before.rtt().mean() + crate::link::CHANGE_MIN_US;
        if !queued {
            self.link.on_rtt_weighted(rtt_us, STATE_REPORT_WEIGHT);
        }
        // An answered probe is the edge saying it is up now: the failure memory follows it.
        self.fail_rate.update_weighted(0.0, STATE_REPORT_WEIGHT);
        match queue_us {
            Some(q) => {
                self.queue_us.update_weighted(q, STATE_REPORT_WEIGHT);
                let w = if q < RECOVERING_QUEUE_US { STATE_REPORT_WEIGHT } else { 0.0 };
                self.busy_rate.update_weighted(0.0, w);
            }
            None => self.busy_rate.update(0.0),
        }
        self.reset_breaker();
    }

    /// Whether the path was recently unhealthy (failures, refusals, a long queue).
    pub fn recovering(&self) -> bool {
        self.tripped() || self.failure_probability() > RECOVERING_FAILURE_P || self.queue_us.mean() > RECOVERING_QUEUE_US
    }

    /// Errors in a row (reset by any answer).
    pub fn consecutive_errors(&self) -> u32 {
        self.consecutive_errors
    }

    /// Whether a probe should go out now, at a cadence of `interval_us` (from
    /// [`crate::probe::plan`]): never while one is out or requests are in flight; otherwise
    /// once the path has been unused for `interval_us` — and, if the breaker has it down, once
    /// its backoff has passed too.
    pub fn probe_due(&self, now_us: u64, interval_us: u64) -> bool {
        if self.probing || self.inflight > 0 {
            return false;
        }
        let backoff_over = self.down_until_us.is_none_or(|t| now_us >= t);
        backoff_over && now_us.saturating_sub(self.last_used_us) >= interval_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_backlog_queued_on_a_slow_link_drains_at_the_pace_learned_since() {
        let mut e = EdgeEstimator::new(0.2, 20_000.0);
        // A slow link (1 Mbit/s = 8 µs/byte): three 150 KB uploads queue 3.6 s of bytes.
        for _ in 0..30 {
            e.link.on_transfer_weighted(150_000, 0, 1_200_000.0, 1.0);
        }
        for _ in 0..3 {
            e.on_sent(0, 150_000);
        }
        let slow = e.uplink_wait_us(0);
        assert!((slow - 3_600_000.0).abs() < 200_000.0, "{slow}");
        assert!((e.uplink_wait_us(1_800_000) - 1_800_000.0).abs() < 200_000.0);
        // Probes then show 100 Mbit/s: what is left of the backlog drains at that pace, not
        // at the pace it was queued with.
        for _ in 0..10 {
            e.link.on_transfer_weighted(150_000, 0, 12_000.0, 1.0);
        }
        assert_eq!(e.uplink_wait_us(100_000), 0.0);
    }

    #[test]
    fn a_wait_a_slow_edge_run_explains_does_not_slow_the_link() {
        // A 150 KB image over a fast link (≈ 10 ms) to an edge computing 50 ± 14 ms.
        let mut e = EdgeEstimator::new(0.2, 50_000.0);
        for i in 0..100 {
            let compute = 50_000.0 + 20_000.0 * (f64::from(i) * 0.7).sin();
            e.on_answer(0, 0, 150_000, 100, 10_000.0 + compute, 100.0, compute);
        }
        let before = e.link.predict(150_000, 100).0;
        // The local run (100 ms) overtook an offload out for 100 ms: 40 ms over the mean edge
        // time, but within 2 σ of it, so not evidence that the link slowed.
        e.on_waited_at_least(1_000_000, 0, 150_000, 100, 100_000.0);
        let after = e.link.predict(150_000, 100).0;
        assert!(after < 1.5 * before, "link {before:.0} µs -> {after:.0} µs");
        // A wait far beyond anything the edge explains still raises it.
        e.on_waited_at_least(2_000_000, 0, 150_000, 100, 400_000.0);
        let collapsed = e.link.predict(150_000, 100).0;
        assert!(collapsed > 200_000.0, "{collapsed:.0} µs");
    }

    #[test]
    fn a_compute_estimate_no_answer_refreshes_relaxes_to_the_long_run() {
        let mut e = EdgeEstimator::new(0.2, 50_000.0);
        let mut t = 0;
        for i in 0..100 {
            t = i * 200_000;
            e.on_answer(t, 0, 150_000, 100, 62_000.0, 100.0, 50_000.0 + 10_000.0 * (i as f64 * 0.7).sin());
        }
        // A streak of three slow runs: the present estimate jumps, the long-run one hardly.
        for x in [80_000.0, 85_000.0, 92_000.0] {
            t += 200_000;
            e.on_answer(t, 0, 150_000, 100, x + 12_000.0, 100.0, x);
        }
        let fresh = e.compute_at(0, t).unwrap();
        assert!(fresh.mean() > 65_000.0, "{}", fresh.mean());
        // Within COMPUTE_STALE_US nothing changes; 20 s later the streak is forgotten.
        assert_eq!(e.compute_at(0, t + 1_000_000).unwrap().mean(), fresh.mean());
        let relaxed = e.compute_at(0, t + 20_000_000).unwrap();
        assert!((relaxed.mean() - 52_000.0).abs() < 3_000.0, "{}", relaxed.mean());
        assert!(relaxed.std() < fresh.std(), "{} vs {}", relaxed.std(), fresh.std());
        // The next answer counts at once again.
        e.on_answer(t + 20_000_000, 0, 150_000, 100, 112_000.0, 100.0, 100_000.0);
        assert!(e.compute_at(0, t + 20_000_000).unwrap().mean() > 70_000.0);
    }

    #[test]
    fn reported_queue_and_compute_are_tracked() {
        let mut e = EdgeEstimator::new(0.2, 20_000.0);
        for _ in 0..50 {
            e.on_answer(0, 1, 150_000, 1_000, 60_000.0, 5_000.0, 15_000.0);
        }
        assert!((e.queue().mean() - 5_000.0).abs() < 10.0);
        assert!((e.compute(1).map(Ewma::mean).unwrap_or(0.0) - 15_000.0).abs() < 10.0);
        // Model 0 was never seen: still the prior.
        assert_eq!(e.compute(0).map(Ewma::mean), Some(20_000.0));
    }

    #[test]
    fn three_errors_trip_the_breaker_and_a_probe_resets_it() {
        let mut e = EdgeEstimator::new(0.2, 20_000.0);
        e.on_error(1_000, 3);
        e.on_error(2_000, 3);
        assert!(!e.is_down(2_000));
        e.on_error(3_000, 3);
        assert!(e.is_down(3_000));
        assert!(!e.probe_due(3_000, 500_000));
        assert!(e.probe_due(3_000 + MIN_BACKOFF_US, 500_000));
        e.on_probe(5_000.0, 16_384, 64, 10_000.0, Some(0.0));
        assert!(!e.is_down(3_000 + MIN_BACKOFF_US));
        assert!(!e.tripped());
    }

    #[test]
    fn busy_answers_raise_the_failure_probability_without_tripping() {
        let mut e = EdgeEstimator::new(0.2, 20_000.0);
        for _ in 0..10 {
            e.on_busy(Some(200_000.0));
        }
        assert!(e.failure_probability() > 0.8);
        assert!(!e.tripped());
        assert!(e.queue().mean() > 100_000.0);
    }

    #[test]
    fn a_probe_reporting_an_empty_queue_ends_an_overload_quickly() {
        let mut e = EdgeEstimator::new(0.2, 20_000.0);
        for _ in 0..20 {
            e.on_busy(Some(200_000.0));
            e.on_answer(0, 1, 150_000, 1_000, 230_000.0, 200_000.0, 15_000.0);
        }
        assert!(e.recovering());
        let mut probes = 0;
        while e.recovering() && probes < 20 {
            e.on_probe(5_000.0, 16_384, 64, 7_000.0, Some(500.0));
            probes += 1;
        }
        assert!(probes <= 6, "{probes} probes to see the overload end");
        assert!(e.queue().mean() < 20_000.0 && e.failure_probability() < 0.05);
    }

    #[test]
    fn a_probe_whose_ping_waited_behind_a_backlog_still_measures_the_link() {
        let mut e = fast();
        // The link is throttled to 400 kbit/s: an offload is overtaken by the local run and still out; the next probe's ping
        // waited 500 ms behind its bytes; the payload right after it did not: 16 KiB at
        // 400 kbit/s (20 µs/B).
        e.on_waited_at_least(10_000_000, 0, 80_000, 512, 1_600_000.0);
        e.on_probe(505_000.0, 16_384, 64, 2_000.0 + 16_384.0 * 20.0, Some(0.0));
        assert!(e.link.up_mbps() < 0.5, "{}", e.link.up_mbps());
        assert!(e.link.rtt().mean() < 150_000.0, "{}", e.link.rtt().mean());
        // The end of the throttle is still seen in one probe.
        e.on_probe(2_000.0, 16_384, 64, 2_000.0 + 16_384.0 * 0.08, Some(0.0));
        assert!(e.link.up_mbps() > 50.0, "{}", e.link.up_mbps());
    }

    #[test]
    fn a_dead_edge_is_retried_once_its_backoff_and_the_probe_interval_have_passed() {
        let mut e = EdgeEstimator::new(0.2, 20_000.0);
        let mut now = 0;
        for _ in 0..30 {
            e.on_error(now, 1);
            now += 1_000_000;
        }
        // The backoff stops doubling at 2 s ...
        assert!(e.probe_due(now + MAX_BACKOFF_US, 1_000_000));
        // ... and a long probe interval (nothing to gain) spaces retries out further.
        assert!(!e.probe_due(now + MAX_BACKOFF_US, 600_000_000));
    }

    /// A path learned at 100 Mbit/s up (80 KB images, 2 ms RTT, 15 ms compute).
    fn fast() -> EdgeEstimator {
        let mut e = EdgeEstimator::new(0.2, 15_000.0);
        for i in 0..30 {
            e.link.on_rtt(2_000.0);
            e.on_answer(0, 0, 80_000, 512, 2_000.0 + 80_000.0 * 0.08 + 15_000.0, 0.0, 15_000.0);
            e.note_pace(i * 100_000);
        }
        e
    }

    #[test]
    fn a_collapse_shown_by_an_abandoned_offload_is_raised_while_it_stays_unanswered() {
        let mut e = fast();
        let t0 = 10_000_000;
        // Overtaken by the local run 670 ms after it was sent (predicted ~25 ms).
        e.on_waited_at_least(t0 + 670_000, 0, 80_000, 512, 670_000.0);
        let at_bound = e.link.predict(80_000, 512).0;
        assert!(at_bound > 600_000.0, "{at_bound}");
        // 1.5 s after the send it is still out: the link is at least that slow.
        e.raise_pending(t0 + 1_500_000);
        assert!(e.link.predict(80_000, 512).0 > 1_400_000.0);
        // Its late answer settles it: no more raising.
        e.on_answer(0, 0, 80_000, 512, 1_700_000.0, 0.0, 15_000.0);
        let answered = e.link.predict(80_000, 512).0;
        e.raise_pending(t0 + 5_000_000);
        assert_eq!(e.link.predict(80_000, 512).0, answered);
    }

    #[test]
    fn the_recovered_prediction_remembers_the_good_pace_for_minutes() {
        let mut e = fast();
        let good = e.recovered_us(0, 80_000, 512);
        assert!(good < 30_000.0, "{good}");
        // The link collapses to 400 kbit/s (20 µs/B) at t = 10 s.
        e.on_waited_at_least(10_000_000, 0, 80_000, 512, 1_600_000.0);
        e.on_answer(0, 0, 80_000, 512, 2_000.0 + 80_000.0 * 20.0 + 15_000.0, 0.0, 15_000.0);
        e.note_pace(10_000_000);
        assert!(e.link.predict(80_000, 512).0 > 1_000_000.0);
        // A minute later a recovery would still gain as much ...
        e.note_pace(70_000_000);
        assert!(e.recovered_us(0, 80_000, 512) < 1.5 * good, "{} vs {good}: {e:?}", e.recovered_us(0, 80_000, 512));
        // ... after an hour of a slow link, the memory has gone.
        for m in 2..=60 {
            e.note_pace(m * 60_000_000);
        }
        assert!(e.recovered_us(0, 80_000, 512) > 1_000_000.0);
    }

    #[test]
    fn a_probe_a_real_transfer_contradicts_makes_the_next_probes_larger() {
        // Throttled at 400 kbit/s, learned.
        let mut e = EdgeEstimator::new(0.2, 15_000.0);
        for _ in 0..30 {
            e.link.on_rtt(2_000.0);
            e.on_answer(0, 0, 80_000, 512, 2_000.0 + 80_000.0 * 20.0 + 15_000.0, 0.0, 15_000.0);
        }
        assert_eq!(e.probe_bytes(16_384), 16_384);
        // A 16 KiB probe fits in a 32 KiB burst allowance and crosses at line rate ...
        e.on_probe(2_000.0, 16_384, 64, 2_000.0 + 16_384.0 * 0.08, Some(0.0));
        assert!(e.link.predict(80_000, 512).0 < 100_000.0);
        // ... the next offload does not: still unanswered after 1.2 s.
        e.on_waited_at_least(5_000_000, 0, 80_000, 512, 1_200_000.0);
        assert_eq!(e.probe_bytes(16_384), 32_768);
        assert!(e.link.predict(80_000, 512).0 > 1_000_000.0);
        // A probe confirmed by the next transfer changes nothing ...
        e.on_probe(2_000.0, 32_768, 64, 2_000.0 + 32_768.0 * 0.08, Some(0.0));
        e.on_answer(0, 0, 80_000, 512, 2_000.0 + 80_000.0 * 0.09 + 15_000.0, 0.0, 15_000.0);
        assert_eq!(e.probe_bytes(16_384), 32_768);
        // ... nor does a transfer slower than a probe that over-promised, but far faster than
        // the link before it (a probe timed within its RTT: a 4× faster estimate than true).
        e.on_waited_at_least(6_000_000, 0, 80_000, 512, 1_600_000.0);
        e.settle_pending();
        e.on_probe(2_000.0, 16_384, 64, 2_000.0 + 16_384.0 * 0.01, Some(0.0));
        e.on_answer(0, 0, 80_000, 512, 2_000.0 + 80_000.0 * 0.1 + 15_000.0, 0.0, 15_000.0);
        // Two confirmations in a row: back to the configured size.
        assert_eq!(e.probe_bytes(16_384), 16_384);
        // Grown again by a fooled probe.
        e.on_waited_at_least(7_000_000, 0, 80_000, 512, 1_600_000.0);
        e.settle_pending();
        e.on_probe(2_000.0, 16_384, 64, 2_000.0 + 16_384.0 * 0.08, Some(0.0));
        e.on_waited_at_least(8_000_000, 0, 80_000, 512, 1_200_000.0);
        assert_eq!(e.probe_bytes(16_384), 32_768);
        // Growth stops at 8×.
        for _ in 0..5 {
            e.on_probe(2_000.0, 16_384, 64, 2_000.0 + 16_384.0 * 20.0, Some(0.0));
            e.on_probe(2_000.0, 16_384, 64, 2_000.0 + 16_384.0 * 0.08, Some(0.0));
            e.on_waited_at_least(9_000_000, 0, 80_000, 512, 1_500_000.0);
            e.settle_pending();
        }
        assert_eq!(e.probe_bytes(16_384), 16_384 * MAX_PROBE_SCALE);
    }

    #[test]
    fn an_unused_path_becomes_due_for_a_probe() {
        let mut e = EdgeEstimator::new(0.2, 20_000.0);
        e.last_used_us = 10_000;
        assert!(!e.probe_due(500_000, 1_000_000));
        assert!(e.probe_due(1_010_000, 1_000_000));
        e.inflight = 1;
        assert!(!e.probe_due(1_010_000, 1_000_000));
    }
}
