//! The soak (issue 14, "3. Soak"; not in the default run): one bed, the steady load
//! throughout, random faults one after another — broker restart (1–5 s down), link cut
//! (5–30 s), link throttled to 64 kbit/s (5–20 s), the edge flooded by another device
//! (5–15 s), the spool's disk full (5–15 s) — each followed by 10–30 s of quiet, for 30
//! minutes by default; and the agent's and the edge's resident memory (`VmRSS`) sampled every
//! 5 s. The faults that restart the agent or the edge are left to the suite: the soak watches
//! the same two processes for the whole run, so that a leak shows as growth.
//!
//! Checked: nothing lost or duplicated over the whole run (the suite's definitions), the
//! offload path back within [`Fault::recovery_bound_s`] after every fault, both processes alive, and
//! RSS flat after warm-up: the median of the last six samples at most 20 % (and at least
//! 16 MiB) above the median of the first six after warm-up (a sixth of the run, at least a
//! minute).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::figures::{recovery, Figures, Window};
use super::load::{Image, Load};
use super::scenarios::{inject, Fault, LOAD};
use crate::bed::{Bed, BedOptions, MODEL};

/// The faults the soak draws from.
pub const FAULTS: [Fault; 5] = [
    Fault::BrokerRestart,
    Fault::LinkCut,
    Fault::Throttle,
    Fault::EdgeBusy,
    Fault::SpoolFull,
];

/// One memory sample.
#[derive(Debug, Clone, Copy)]
pub struct RssSample {
    /// s since the soak started.
    pub t_s: f64,
    /// The agent's VmRSS, KiB.
    pub agent_kib: u64,
    /// The edge's VmRSS, KiB.
    pub edge_kib: u64,
}

/// What a soak measured.
#[derive(Debug)]
pub struct Soak {
    /// The whole run's figures (one row).
    pub figures: Figures,
    /// Every fault: when it started (s), which, how long (s).
    pub faults: Vec<(f64, Fault, f64)>,
    /// Memory over the run.
    pub rss: Vec<RssSample>,
    /// The seed of the fault sequence (`FERRY_SOAK_SEED` replays it).
    pub seed: u64,
}

/// A small PRNG (splitmix64): the fault sequence, replayable from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How long `fault` lasts in the soak, s.
fn length(fault: Fault, rng: &mut Rng) -> f64 {
    let (lo, hi) = match fault {
        Fault::BrokerRestart => (1.0, 5.0),
        Fault::LinkCut => (5.0, 30.0),
        Fault::Throttle => (5.0, 20.0),
        _ => (5.0, 15.0),
    };
    (rng.between(lo, hi) * 10.0).round() / 10.0
}

/// A process's VmRSS, KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the soak for `duration` with the fault sequence of `seed`.
pub fn run(duration: Duration, seed: u64, images: &Arc<Vec<Image>>) -> Soak {
    let mut bed = Bed::start(&BedOptions {
        tag: "s",
        spool_tmpfs_kib: Some(8192),
        ..BedOptions::default()
    });
    let t0 = Instant::now();
    let load = Load::start(
        bed.work_dir().join("api.sock"),
        MODEL,
        images.clone(),
        LOAD,
        t0,
    );
    let (agent_pid, edge_pid) = (bed.agent.id(), bed.edge.proc.id());
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let s = RssSample {
                    t_s: t0.elapsed().as_secs_f64(),
                    agent_kib: rss_kib(agent_pid),
                    edge_kib: rss_kib(edge_pid),
                };
                samples.lock().unwrap_or_else(|p| p.into_inner()).push(s);
                for _ in 0..50 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };
    let mut rng = Rng(seed);
    let (mut windows, mut violations, mut notes, mut faults) =
        (Vec::<Window>::new(), Vec::new(), Vec::new(), Vec::new());
    std::thread::sleep(Duration::from_secs(10));
    let last_start = duration.as_secs_f64() - 60.0;
    while load.now_s() < last_start {
        let fault = FAULTS[(rng.next() % FAULTS.len() as u64) as usize];
        let secs = length(fault, &mut rng);
        eprintln!(
            "soak: {:>7.1} s {} for {secs:.1} s",
            load.now_s(),
            fault.name()
        );
        faults.push((load.now_s(), fault, secs));
        let injected = inject(fault, secs, &mut bed, &load);
        let end = injected.window.end_s;
        violations.extend(
            injected
                .violations
                .into_iter()
                .map(|v| format!("{} at {end:.0} s: {v}", fault.name())),
        );
        notes.extend(injected.notes);
        windows.push(injected.window);
        let bound = fault.recovery_bound_s();
        let left = (end + bound as f64 - load.now_s()).max(0.0);
        if !load.wait_until(Duration::from_secs_f64(left), |rs| {
            recovery(rs, end).is_some()
        }) {
            violations.push(format!(
                "{} ending at {end:.0} s: the offload path did not come back within {bound} s",
                fault.name()
            ));
        }
        std::thread::sleep(Duration::from_secs_f64(rng.between(10.0, 30.0)));
    }
    std::thread::sleep(Duration::from_secs(10));
    let records = load.finish();
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    let rss = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    if !bed.agent.is_running() || !bed.edge.proc.is_running() {
        violations.push("the agent or the edge is not running at the end of the soak".to_string());
    }
    bed.edge.proc.terminate();
    bed.edge.proc.stderr.wait_eof();
    let edge_line = bed
        .edge
        .proc
        .stderr
        .all()
        .into_iter()
        .find(|l| l.contains("stopped") && l.contains("StatsSnapshot"));
    let minutes = duration.as_secs_f64() / 60.0;
    let mut figures = Figures::count(
        "soak",
        &format!(
            "{} random faults in {minutes:.0} min (seed {seed})",
            faults.len()
        ),
        &records,
        images,
        &windows,
        LOAD.deadline_ms,
    );
    figures.edge_counters(edge_line.as_deref());
    figures.violations.extend(violations);
    figures.notes.extend(notes);
    let warm_s = (duration.as_secs_f64() / 6.0).max(60.0);
    figures
        .violations
        .extend(flat(&rss, warm_s, "agent", |s| s.agent_kib));
    figures
        .violations
        .extend(flat(&rss, warm_s, "edge", |s| s.edge_kib));
    Soak {
        figures,
        faults,
        rss,
        seed,
    }
}

/// The median of the last six samples against the median of the first six after `warm_s`:
/// a violation if it grew by more than 20 % and 16 MiB.
fn flat(
    rss: &[RssSample],
    warm_s: f64,
    who: &str,
    kib: impl Fn(&RssSample) -> u64,
) -> Option<String> {
    let after: Vec<u64> = rss.iter().filter(|s| s.t_s >= warm_s).map(&kib).collect();
    if after.len() < 12 {
        return Some(format!(
            "{who}: {} RSS samples after warm-up ({warm_s:.0} s), too few to judge",
            after.len()
        ));
    }
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (first, last) = (median(&after[..6]), median(&after[after.len() - 6..]));
    let allowed = (first / 5).max(16 * 1024);
    (last > first + allowed).then(|| format!("{who}: RSS grew from {first} KiB after warm-up to {last} KiB at the end (more than {allowed} KiB)"))
}

/// The soak's part of RELIABILITY.md.
pub fn render(soak: &Soak, load: &str) -> String {
    let f = &soak.figures;
    let mut out = format!(
        "Last soak: {}, on {}.\n\nLoad: {load}\n\n",
        super::report::date(),
        super::report::machine()
    );
    out.push_str("| run | sent | answered | on edge | local (fallback) | deadline misses | clear errors | lost | duplicated | worst offload back after |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    out.push_str(&format!(
        "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} |\n\n",
        f.fault,
        f.sent,
        f.answered,
        f.on_edge,
        f.local,
        f.fallback,
        f.deadline_misses,
        f.errors,
        f.lost,
        f.duplicated,
        f.recovery_s
            .map_or_else(|| "never".to_string(), |s| format!("{s:.1} s"))
    ));
    let list: Vec<String> = soak
        .faults
        .iter()
        .map(|(at, fault, secs)| format!("{at:.0} s {} {secs:.1} s", fault.name()))
        .collect();
    out.push_str(&format!("Faults: {}.\n\n", list.join(", ")));
    let pick = |who: fn(&RssSample) -> u64| {
        let v: Vec<String> = soak
            .rss
            .iter()
            .step_by((soak.rss.len() / 8).max(1))
            .map(|s| format!("{:.0} s {} MiB", s.t_s, who(s) / 1024))
            .collect();
        v.join(", ")
    };
    out.push_str(&format!(
        "RSS, agent: {}.\n\nRSS, edge: {}.\n",
        pick(|s| s.agent_kib),
        pick(|s| s.edge_kib)
    ));
    if !f.violations.is_empty() {
        out.push_str(&format!(
            "\n**{} check(s) failed**: {}\n",
            f.violations.len(),
            f.violations.join("; ")
        ));
    }
    out
}
