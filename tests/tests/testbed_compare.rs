//! Issue 15's comparison end to end: the netns testbed (real Mosquitto with TLS, a real
//! `ferry-edge` serving the model's splits, the agent as an emulated Pi-class board) with a
//! recorded link replayed on its uplink by `tbf`, the same requests at the same moments under
//! four configurations of the agent:
//!
//! | arm | `[decide] policy` | the edge target's `forms` |
//! |---|---|---|
//! | always-local | `always-local` | — |
//! | offload(original) | `always-offload` | — (the original only) |
//! | adaptive | `adaptive` | — |
//! | adaptive+shaping+split | `adaptive` | jpeg95, jpeg85, int8-tensor and the five cuts |
//!
//! The window: 60 s of the recorded 3G/HSDPA bus link (`tests/traces/recorded/`) from 95 s —
//! 25 s at 1.4–2.7 Mbit/s, 10 s falling from 1.2 to 0.6, 25 s at 0.1–0.9 — inside the
//! recorded links' range where the original images (15–310 KB, 112 KB on average) cost more on
//! the link than a local run. A request every 400 ms (open loop: sent on time whatever the
//! earlier ones are doing), the ten bundled JPEGs in turn, deadline 300 ms (1.6× a local run
//! of the emulated board, ~185 ms).
//!
//! Then, on the last arm's agent, the link held at 250 kbit/s and requests that must run on
//! the edge (`placement=edge-only`): there the cheapest way across is a split (split@92 sends
//! 1.3 KB where jpeg85 sends ~15 KB), and the agent must send one. (Not every time: the
//! 1.3 KB fit in `tbf`'s 4 KiB burst and cross at the veth's speed, so a few splits in a row
//! teach the estimate a fast link and the next request tries a bigger form; seen here: 4 to 8
//! of the 8 requests were splits. The link estimator learning bandwidth from transfers that
//! fit a shaper's burst is a known weakness, not fixed yet.)
//!
//! What it asserts, none of it a speed: every request gets exactly one answer (an HTTP 504
//! `deadline_exceeded` is one); always-local runs everything local; no arm sends a form its
//! configuration did not offer; every answer the edge gave from a shaped form or a split has
//! the local model's top-1 where the local model is confident (p ≥ 0.5); on the slow link
//! at least one edge-only request is sent as a split.
//!
//! Ignored until it has passed 10 runs in a row with this assertion (5 runs so far reached
//! it; the last passed it, the first four would have); run it with `--ignored`. What it prints (with `--nocapture`) is the
//! table for BENCHMARKS.md: mean and p95 latency as the client measured it, the share within
//! the deadline, and the share of requests sent in each form.
//!
//!     cargo test --release -p ferry-tests --test testbed_compare -- --ignored --nocapture

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_agent::client::{infer_query, ClientError, Endpoint};
use ferry_decide::sim::mean_p95;
use ferry_tests::bed::{is_root, Bed, BedOptions, MODEL};
use ferry_tests::harness::repo_root;
use ferry_tests::netns::Side;
use ferry_tests::replay::{capacity_at, replay, window};

const REPLAY: &str = "tests/traces/recorded/hsdpa-bus.ljansbakken-oslo-2010-09-28_1407.log";
const REPLAY_FROM_S: usize = 95;
const REPLAY_S: usize = 60;
const PERIOD: Duration = Duration::from_millis(400);
const DEADLINE_MS: u32 = 300;
/// The link's rate before and between the arms, kbit/s.
const START_KBIT: u32 = 2_000;
/// The slow link of the edge-only phase, kbit/s, and how many requests it sends.
const SLOW_KBIT: u32 = 250;
const EDGE_ONLY_REQUESTS: usize = 8;

const SHAPED: &[&str] = &["jpeg95", "jpeg85", "int8-tensor", "split@10", "split@21", "split@32", "split@66", "split@92"];
const ARMS: [(&str, &str, &[&str]); 4] = [
    ("always-local", "always-local", &[]),
    ("offload(original)", "always-offload", &[]),
    ("adaptive", "adaptive", &[]),
    ("adaptive+shaping+split", "adaptive", SHAPED),
];

/// One answered request.
#[derive(Debug, Clone)]
struct Row {
    n: usize,
    image: usize,
    /// When it was sent, s since the arm's replay started.
    sent_s: f64,
    /// `None` for an HTTP 504 (`deadline_exceeded` carries no id).
    request_id: Option<u64>,
    ran: String,
    form: String,
    fallback: Option<String>,
    top1: Option<u32>,
    /// From the call to its answer, as the client saw it, ms.
    wall_ms: f64,
}

impl Row {
    fn on_edge(&self) -> bool {
        self.ran.starts_with("edge")
    }

    /// Whether it was offloaded: run on the edge, or fallen back from it. (The answer names
    /// the form the decision chose also for a local run, as `original`.)
    fn sent(&self) -> bool {
        self.on_edge() || self.fallback.is_some()
    }
}

/// The ten bundled photographs (the originals the board profiles' mean original size is of).
fn images() -> Vec<(String, Vec<u8>)> {
    let dir = repo_root().join("models/images");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("models/images")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 10, "the bundled photographs: {names:?}");
    names.into_iter().map(|n| (n.clone(), std::fs::read(dir.join(&n)).expect("image"))).collect()
}

fn ask(api: &Endpoint, query: &str, n: usize, image: usize, body: &[u8], t0: Instant) -> Row {
    let sent_s = t0.elapsed().as_secs_f64();
    let asked = Instant::now();
    let answer = infer_query(api, MODEL, query, "image/jpeg", body);
    let wall_ms = asked.elapsed().as_secs_f64() * 1e3;
    match answer {
        Ok(a) => Row {
            n,
            image,
            sent_s,
            request_id: Some(a.request_id),
            form: a.reason.as_ref().and_then(|r| r["form"].as_str()).unwrap_or("-").to_string(),
            ran: a.ran,
            fallback: a.fallback,
            top1: a.top.first().map(|c| c.index),
            wall_ms,
        },
        Err(ClientError::Status { status: 504, .. }) => Row {
            n,
            image,
            sent_s,
            request_id: None,
            ran: "deadline_exceeded".into(),
            form: "-".into(),
            fallback: None,
            top1: None,
            wall_ms,
        },
        Err(e) => panic!("request {n} ({query}): no answer: {e}"),
    }
}

/// Requests every [`PERIOD`] for `secs`, each on its own thread so that a slow answer does not
/// delay the next request; the rows in the order sent.
fn open_loop(api: &Endpoint, images: &[(String, Vec<u8>)], t0: Instant, secs: usize) -> Vec<Row> {
    let count = (Duration::from_secs(secs as u64).as_millis() / PERIOD.as_millis()) as usize;
    let query = format!("deadline_ms={DEADLINE_MS}");
    let mut rows: Vec<Row> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..count)
            .map(|n| {
                if let Some(wait) = (t0 + PERIOD * n as u32).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let (query, image) = (&query, n % images.len());
                s.spawn(move || ask(api, query, n, image, &images[image].1, t0))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a request thread")).collect()
    });
    rows.sort_by_key(|r| r.n);
    rows
}

/// The local model's top-1 and its probability on each image.
fn reference(api: &Endpoint, images: &[(String, Vec<u8>)]) -> Vec<(u32, f32)> {
    images
        .iter()
        .map(|(name, body)| {
            let a = infer_query(api, MODEL, "placement=local-only", "image/jpeg", body).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a.ran, "local");
            (a.top[0].index, a.top[0].score)
        })
        .collect()
}

/// One table row: mean, p95, share within the deadline, on the edge, and the forms sent.
fn summary(arm: &str, rows: &[Row]) -> String {
    let mut ms: Vec<f64> = rows.iter().map(|r| r.wall_ms).collect();
    let (mean, p95) = mean_p95(&mut ms);
    let met = rows.iter().filter(|r| r.request_id.is_some() && r.wall_ms <= f64::from(DEADLINE_MS)).count();
    let edge = rows.iter().filter(|r| r.on_edge()).count();
    let fell_back = rows.iter().filter(|r| r.fallback.is_some()).count();
    let mut forms: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.sent()) {
        *forms.entry(r.form.as_str()).or_default() += 1;
    }
    let sent: usize = forms.values().sum();
    let forms = if sent == 0 {
        "—".to_string()
    } else {
        let list: Vec<String> = forms.iter().map(|(f, k)| format!("{f} {:.0} %", 100.0 * *k as f64 / sent as f64)).collect();
        format!("{} of {sent}", list.join(", "))
    };
    let pct = |k: usize| 100.0 * k as f64 / rows.len().max(1) as f64;
    format!(
        "| {arm} | {} | {mean:.1} | {p95:.1} | {:.1} % | {:.1} % | {:.1} % | {forms} |",
        rows.len(),
        pct(met),
        pct(edge),
        pct(fell_back)
    )
}

/// Exactly one answer per request: every call above got one HTTP answer (or panicked), and
/// the ids of the answers with one are distinct.
fn assert_one_answer_each(arm: &str, rows: &[Row]) {
    let mut ids: Vec<u64> = rows.iter().filter_map(|r| r.request_id).collect();
    let with_id = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), with_id, "{arm}: request ids repeat: {rows:#?}");
}

/// Every answer from the edge that crossed as a shaped form or a split has the local top-1
/// where the local model is confident.
fn assert_same_answers(arm: &str, rows: &[Row], reference: &[(u32, f32)]) {
    for r in rows.iter().filter(|r| r.on_edge() && r.form != "original") {
        let (top1, p) = reference[r.image];
        if p >= 0.5 {
            assert_eq!(r.top1, Some(top1), "{arm}: the edge's answer from {} differs from the local one (p {p:.2}): {r:?}", r.form);
        }
    }
}

#[test]
#[ignore = "not yet run 10 times in a row with its final assertions (1 of 5 so far with them, the other 4 would have passed); ~4 min; run with --ignored"]
fn on_a_recorded_link_four_ways_of_deciding_compared_end_to_end_and_a_slow_link_sends_a_split() {
    if !is_root() {
        eprintln!("testbed_compare: NOT RUN — it needs root (network namespaces and tc); CI runs as root");
        return;
    }
    let images = images();
    let mbps = window(REPLAY, REPLAY_FROM_S, REPLAY_S);
    eprintln!("testbed_compare: replaying {REPLAY} from {REPLAY_FROM_S} s for {REPLAY_S} s (uplink, Mbit/s): {mbps:.1?}");
    let mut bed = Bed::start(&BedOptions {
        tag: "compare",
        kbit: START_KBIT,
        telemetry: false,
        log: "info",
        policy: ARMS[0].1,
        edge_forms: ARMS[0].2,
        edge_splits: true,
        ..BedOptions::default()
    });
    let reference = reference(&bed.api, &images);
    eprintln!("testbed_compare: the local model on the images: {reference:?}");

    let mut table = Vec::new();
    for (i, (arm, policy, forms)) in ARMS.iter().enumerate() {
        if i > 0 {
            bed.tb.shape(Side::Device, START_KBIT).expect("reset the link");
            bed.restart_agent_with(policy, forms);
        }
        let t0 = Instant::now();
        let (rows, steps) = std::thread::scope(|s| {
            let tb = &bed.tb;
            let shaper = s.spawn(|| replay(tb, t0, t0, &mbps));
            let rows = open_loop(&bed.api, &images, t0, REPLAY_S);
            (rows, shaper.join().expect("the shaper thread"))
        });
        for r in &rows {
            eprintln!(
                "testbed_compare: {arm:<22} {:>6.2} s {:>4.1} Mbit/s #{:<3} {:<14} ran {:<18} form {:<11} {:>8.1} ms{}",
                r.sent_s,
                capacity_at(&steps, r.sent_s).unwrap_or(f64::NAN),
                r.n,
                images[r.image].0,
                r.ran,
                r.form,
                r.wall_ms,
                r.fallback.as_deref().map(|f| format!("  (fallback: {f})")).unwrap_or_default()
            );
        }
        assert_one_answer_each(arm, &rows);
        assert_same_answers(arm, &rows, &reference);
        for r in rows.iter().filter(|r| r.sent()) {
            assert!(r.form == "original" || forms.contains(&r.form.as_str()), "{arm}: sent as {}, which it was not offered: {r:?}", r.form);
        }
        if *policy == "always-local" {
            let elsewhere: Vec<&Row> = rows.iter().filter(|r| r.request_id.is_some() && r.ran != "local").collect();
            assert!(elsewhere.is_empty(), "{arm}: not run local: {elsewhere:#?}");
        }
        table.push(summary(arm, &rows));
    }

    // The slow link, on the last arm's agent: edge only, a generous deadline.
    bed.tb.shape(Side::Device, SLOW_KBIT).expect("the slow link");
    let query = "placement=edge-only&deadline_ms=5000";
    let t0 = Instant::now();
    let rows: Vec<Row> = (0..EDGE_ONLY_REQUESTS)
        .map(|n| {
            let image = n % images.len();
            let row = ask(&bed.api, query, n, image, &images[image].1, t0);
            eprintln!("testbed_compare: edge-only at {SLOW_KBIT} kbit/s #{n} {:<14} ran {:<18} form {:<11} {:>8.1} ms", images[image].0, row.ran, row.form, row.wall_ms);
            row
        })
        .collect();
    assert_one_answer_each("edge-only", &rows);
    assert_same_answers("edge-only", &rows, &reference);
    let splits = rows.iter().filter(|r| r.on_edge() && r.form.starts_with("split@")).count();
    assert!(splits > 0, "at {SLOW_KBIT} kbit/s no edge-only request was sent as a split: {rows:#?}\nagent log:\n{}", bed.agent.stderr.text());

    eprintln!("\n| arm | requests | mean ms | p95 ms | within {DEADLINE_MS} ms | on the edge | fell back | sent as |\n|---|---:|---:|---:|---:|---:|---:|---|");
    for line in &table {
        eprintln!("{line}");
    }
}
