//! How often an unused edge is probed, and what that costs.
//!
//! A probe of an unused path is worth what it could reveal: if the path recovered, every
//! request from then on gains the difference between the local latency and the edge's when
//! healthy. So the expected gain of probing is the request rate times that difference — a
//! share of time ("seconds saved per second"). With no requests there is nothing to gain, and
//! the path is probed once per `probe_idle_ms`; with a stream that a recovered edge would
//! serve much faster, every `probe_after_ms`; in between, proportionally less often. Whatever
//! the gain, probes take at most `probe_max_share` of the uplink's time as its present
//! estimate has it, so that on a throttled link they are spaced out.
//!
//! Pure arithmetic on what the estimators hold; [`plan`] is tested on its own.

/// The gain (seconds saved per second of requests) at and above which probes go out every
/// `probe_after_ms`: 2 requests/s gaining 50 ms each.
pub const FULL_GAIN: f64 = 0.1;
/// Bytes of headers per probe message beyond its payload (envelope, MQTT, TLS record, TCP/IP;
/// an estimate): a probe is two messages (a 1-byte ping and the payload).
pub const MESSAGE_OVERHEAD_BYTES: f64 = 200.0;

/// What the plan is made from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeInputs {
    /// Requests per second now: 1 / max(mean time between requests, time since the last one),
    /// so that it decays when requests stop; 0 before the first.
    pub request_rate: f64,
    /// What a request like the latest would gain per request on the edge at its best recent
    /// state, over its best local path, µs (0 if it would not gain).
    pub gain_us: f64,
    /// Payload bytes of the next probe.
    pub bytes: u32,
    /// Uplink pace estimate now, µs per byte.
    pub up_pace_us: f64,
    /// RTT estimate now, µs.
    pub rtt_us: f64,
    /// Whether the path has ever been measured (an answer or a probe): until then its
    /// estimates are priors, and so is any gain computed from them.
    pub measured: bool,
    /// Failures in a row (errors, timeouts, failed probes).
    pub failures: u32,
}

/// The knobs, from `[decide]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeLimits {
    /// Shortest interval, µs (`probe_after_ms`).
    pub min_interval_us: u64,
    /// Longest interval, µs (`probe_idle_ms`).
    pub idle_interval_us: u64,
    /// Largest share of the uplink's time (`probe_max_share`).
    pub max_share: f64,
}

/// When the next probe of one edge is due, and its cost at that cadence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbePlan {
    /// Time between probes while the path stays unused, µs.
    pub interval_us: u64,
    /// Payload bytes of a probe.
    pub bytes: u32,
    /// Expected gain: seconds a recovery would save per second (request rate × gain).
    pub gain: f64,
    /// Bytes per second the probes send up at this cadence (payloads + headers).
    pub bytes_per_s: f64,
    /// Share of the uplink's time they take, as the uplink estimate says.
    pub uplink_share: f64,
}

/// The plan for the inputs: see the module doc.
pub fn plan(inputs: &ProbeInputs, limits: &ProbeLimits) -> ProbePlan {
    let min = limits.min_interval_us.max(1) as f64;
    let idle = (limits.idle_interval_us as f64).max(min);
    let raw = inputs.request_rate.max(0.0) * inputs.gain_us.max(0.0) / 1e6;
    let gain = if raw.is_finite() { raw } else { 0.0 };
    let for_gain = if gain > 0.0 { min * (FULL_GAIN / gain).max(1.0) } else { idle };
    // A probe is a ping and a payload: the uplink is busy with them for about this long.
    let link_us = (2.0 * inputs.rtt_us.max(0.0) + f64::from(inputs.bytes) * inputs.up_pace_us.max(0.0)).max(0.0);
    let for_share = link_us / limits.max_share.clamp(1e-6, 1.0);
    let interval = if inputs.measured {
        for_gain.max(for_share).clamp(min, idle)
    } else {
        // Priors say nothing about the gain: probe until the path answers once, backing off
        // while it fails (a dead edge must not cost an idle device much).
        (min * f64::from(1u32 << inputs.failures.min(16))).min(idle)
    };
    let interval_s = interval / 1e6;
    ProbePlan {
        interval_us: interval as u64,
        bytes: inputs.bytes,
        gain,
        bytes_per_s: (f64::from(inputs.bytes) + 1.0 + 2.0 * MESSAGE_OVERHEAD_BYTES) / interval_s,
        uplink_share: link_us / interval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ProbeLimits = ProbeLimits { min_interval_us: 1_000_000, idle_interval_us: 600_000_000, max_share: 0.3 };
    /// 100 Mbit/s and 400 kbit/s, µs per byte.
    const FAST: f64 = 0.08;
    const SLOW: f64 = 20.0;

    fn inputs(rate: f64, gain_ms: f64, pace: f64) -> ProbeInputs {
        ProbeInputs { request_rate: rate, gain_us: gain_ms * 1e3, bytes: 16_384, up_pace_us: pace, rtt_us: 2_000.0, measured: true, failures: 0 }
    }

    #[test]
    fn with_no_requests_probes_are_rare_and_cost_under_ten_megabytes_a_day() {
        let p = plan(&inputs(0.0, 0.0, FAST), &LIMITS);
        assert_eq!(p.interval_us, 600_000_000);
        assert!(p.bytes_per_s * 86_400.0 < 10e6, "{} B/s", p.bytes_per_s);
        assert_eq!(p.gain, 0.0);
        // Requests that a recovered edge would not serve faster gain nothing either.
        assert_eq!(plan(&inputs(2.0, 0.0, FAST), &LIMITS).interval_us, 600_000_000);
    }

    #[test]
    fn a_stream_a_recovered_edge_would_serve_much_faster_is_probed_every_probe_after_ms() {
        // 2 requests/s, each 380 ms faster on a recovered edge; a 100 Mbit/s uplink.
        let p = plan(&inputs(2.0, 380.0, FAST), &LIMITS);
        assert_eq!(p.interval_us, 1_000_000);
        assert!((p.gain - 0.76).abs() < 1e-9);
        assert!(p.uplink_share < 0.01, "{}", p.uplink_share);
    }

    #[test]
    fn a_smaller_gain_means_proportionally_rarer_probes() {
        // One request every 10 s gaining 100 ms: gain 0.01, a tenth of FULL_GAIN.
        let p = plan(&inputs(0.1, 100.0, FAST), &LIMITS);
        assert_eq!(p.interval_us, 10_000_000);
        // As requests stop, the rate decays with the time since the last one, and so does
        // the cadence, down to the idle one.
        let later = plan(&inputs(1.0 / 3_600.0, 100.0, FAST), &LIMITS);
        assert_eq!(later.interval_us, 600_000_000);
    }

    #[test]
    fn on_a_slow_link_probes_stay_within_their_share_of_the_uplink() {
        // 400 kbit/s: a 16 KiB probe takes ~330 ms of the uplink; at 30 % that is one every 1.1 s.
        let p = plan(&inputs(2.0, 380.0, SLOW), &LIMITS);
        assert!((p.uplink_share - 0.3).abs() < 1e-6, "{}", p.uplink_share);
        assert!(p.interval_us > 1_000_000 && p.interval_us < 1_200_000, "{}", p.interval_us);
        // A larger probe (grown after being fooled) is spaced out further.
        let big = plan(&ProbeInputs { bytes: 65_536, ..inputs(2.0, 380.0, SLOW) }, &LIMITS);
        assert!((big.uplink_share - 0.3).abs() < 1e-6);
        assert!(big.interval_us > 4 * p.interval_us - 100_000, "{}", big.interval_us);
    }

    #[test]
    fn a_path_never_measured_is_probed_until_it_answers_backing_off_while_it_fails() {
        let first = ProbeInputs { measured: false, ..inputs(0.0, 0.0, FAST) };
        assert_eq!(plan(&first, &LIMITS).interval_us, 1_000_000);
        assert_eq!(plan(&ProbeInputs { failures: 3, ..first }, &LIMITS).interval_us, 8_000_000);
        assert_eq!(plan(&ProbeInputs { failures: 40, ..first }, &LIMITS).interval_us, 600_000_000);
    }

    #[test]
    fn garbage_inputs_give_the_idle_cadence() {
        let p = plan(&ProbeInputs { request_rate: f64::NAN, gain_us: f64::INFINITY, ..inputs(1.0, 1.0, FAST) }, &LIMITS);
        assert_eq!(p.interval_us, 600_000_000);
        let p = plan(&ProbeInputs { up_pace_us: f64::NAN, ..inputs(2.0, 380.0, FAST) }, &LIMITS);
        assert!(p.interval_us >= 1_000_000 && p.interval_us <= 600_000_000);
    }
}
