//! What an idle agent costs on its link (issue 13: it used to send a 16 KiB probe every
//! ~1.5 s, ~1 GB a day). The agent runs in the netns testbed ([`ferry_tests::bed`]) with no
//! application traffic and telemetry off; the test counts every byte the device side sends on
//! the veth (`tx_bytes`: probes, MQTT keep-alives, TCP acknowledgements, all headers) over a
//! window and scales it to a day. The bar: 10 MB a day (≈ 116 B/s).
//!
//! - `an_idle_agent_sends_less_than_ten_megabytes_a_day_*` (CI): a 60 s window on a good
//!   (100 Mbit/s) and a throttled (400 kbit/s) link, after the agent's first probe has been
//!   answered; asserts at most half the bar.
//! - `idle_probe_traffic_ten_minutes` (ignored; the figure for BENCHMARKS.md): the same over
//!   10 minutes from start-up (connection set-up and the first probe included) plus 10 s, so
//!   that the window also holds the second probe (the idle cadence is `probe_idle_ms`,
//!   10 min), both links at once. Run it with
//!   `cargo test --release -p ferry-tests --test idle_probe -- --ignored --nocapture`.
//!
//! Needs root (network namespaces, `tc`).

use std::time::{Duration, Instant};

use ferry_tests::bed::{Bed, BedOptions};
use ferry_tests::netns::Side;

/// 10 MB a day, in bytes per second.
const BAR_BYTES_PER_S: f64 = 10e6 / 86_400.0;

/// What one window measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    kbit: u32,
    secs: f64,
    bytes: u64,
    probes: u64,
}

impl Measured {
    fn per_s(&self) -> f64 {
        self.bytes as f64 / self.secs
    }
    fn per_day_mb(&self) -> f64 {
        self.per_s() * 86_400.0 / 1e6
    }
}

/// Starts a bed at `kbit`, optionally waits for the first probe to be answered, and counts the
/// device side's bytes over `window`.
fn measure(tag: &'static str, kbit: u32, after_first_probe: bool, window: Duration) -> Measured {
    let bed = Bed::start(&BedOptions { tag, kbit, telemetry: false, ..BedOptions::default() });
    if after_first_probe {
        assert!(
            bed.agent.stderr.wait_for(&["probe answered"], Duration::from_secs(60)),
            "the agent never probed its edge:\n{}",
            bed.agent.stderr.text()
        );
        // Its TCP acknowledgements and the answer's bytes settle.
        std::thread::sleep(Duration::from_secs(1));
    }
    let probes_before = bed.agent.stderr.count(&["probe sent"]);
    let before = bed.tb.tx_bytes(Side::Device).expect("tx_bytes");
    let start = Instant::now();
    std::thread::sleep(window);
    let after = bed.tb.tx_bytes(Side::Device).expect("tx_bytes");
    let secs = start.elapsed().as_secs_f64();
    let probes = (bed.agent.stderr.count(&["probe sent"]) - probes_before) as u64;
    let status = bed.status();
    let m = Measured { kbit, secs, bytes: after - before, probes };
    eprintln!(
        "idle-probe: {kbit} kbit/s: {} B in {:.0} s = {:.1} B/s = {:.2} MB/day-equivalent; {} probes sent in the window; the agent's plan: {}; its counters: {}",
        m.bytes,
        m.secs,
        m.per_s(),
        m.per_day_mb(),
        m.probes,
        status["targets"],
        status["probes"],
    );
    m
}

fn assert_under_half_the_bar(m: Measured) {
    assert!(
        m.per_s() <= 0.5 * BAR_BYTES_PER_S,
        "an idle agent sent {:.1} B/s on a {} kbit/s link ({:.2} MB a day; the bar is 10 MB, this test allows half)",
        m.per_s(),
        m.kbit,
        m.per_day_mb()
    );
}

#[test]
fn an_idle_agent_sends_less_than_ten_megabytes_a_day_on_a_good_link() {
    assert_under_half_the_bar(measure("g", 100_000, true, Duration::from_secs(60)));
}

#[test]
fn an_idle_agent_sends_less_than_ten_megabytes_a_day_on_a_throttled_link() {
    assert_under_half_the_bar(measure("t", 400, true, Duration::from_secs(60)));
}

#[test]
#[ignore = "10 minutes; the figure for BENCHMARKS.md"]
fn idle_probe_traffic_ten_minutes() {
    let window = Duration::from_secs(610);
    let good = std::thread::spawn(move || measure("G", 100_000, false, window));
    let slow = std::thread::spawn(move || measure("T", 400, false, window));
    let (good, slow) = (good.join().expect("good link"), slow.join().expect("throttled link"));
    for m in [good, slow] {
        assert!(m.per_s() <= BAR_BYTES_PER_S, "{m:?}: {:.2} MB a day", m.per_day_mb());
    }
}
