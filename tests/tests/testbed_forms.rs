//! What crosses the link, end to end: the netns testbed (real Mosquitto with TLS, a real
//! `ferry-edge`, the agent as a Pi-class board) with its uplink shaped to 2 Mbit/s by `tbf`,
//! inside the recorded links' range (0.8–3 Mbit/s on average). There the original images
//! (38 and 80 KB) cost more on the link than a local run, and the 224×224 JPEG at quality 85
//! (about 15 KB) costs less: the agent, whose board config offers the edge that form, must
//! send it, and the edge's answer must be the local answer.
//!
//! With `FERRY_LONG=1` it also runs the same requests on a bed whose edge is offered no form,
//! and prints both runs' latencies for BENCHMARKS.md (not asserted: speed is measured, not
//! tested).
//!
//!     cargo test --release -p ferry-tests --test testbed_forms -- --nocapture

use std::time::{Duration, Instant};

use ferry_agent::client::{infer, infer_query, Endpoint};
use ferry_tests::bed::{is_root, Bed, BedOptions, MODEL};
use ferry_tests::harness::repo_root;

/// The uplink (and downlink), kbit/s.
const KBIT: u32 = 2_000;
const IMAGES: [&str; 2] = ["models/images/espresso.jpg", "models/images/cat.jpg"];
const DEADLINE_MS: u32 = 2_000;
/// How long requests are sent, one every 200 ms, s.
const SECS: f64 = 15.0;

/// One answer.
#[derive(Debug)]
struct Row {
    image: usize,
    ran: String,
    form: String,
    top1: u32,
    latency_ms: f64,
}

fn run(api: &Endpoint, images: &[Vec<u8>]) -> Vec<Row> {
    let end = Instant::now() + Duration::from_secs_f64(SECS);
    let mut rows = Vec::new();
    while Instant::now() < end {
        let image = rows.len() % images.len();
        let a = infer(api, MODEL, "image/jpeg", &images[image], Some(DEADLINE_MS))
            .unwrap_or_else(|e| panic!("request {}: no answer: {e}", rows.len()));
        let form = a.reason.as_ref().and_then(|r| r["form"].as_str()).unwrap_or("?").to_string();
        let row = Row { image, ran: a.ran, form, top1: a.top.first().map_or(u32::MAX, |c| c.index), latency_ms: a.latency_ms };
        eprintln!("testbed_forms: #{:<3} image {} ran {:<10} form {:<9} top-1 {:>4} {:>7.1} ms", rows.len(), row.image, row.ran, row.form, row.top1, row.latency_ms);
        rows.push(row);
        std::thread::sleep(Duration::from_millis(200));
    }
    rows
}

/// The answer of the local model on each image (placement=local-only).
fn local_top1(api: &Endpoint, images: &[Vec<u8>]) -> Vec<u32> {
    images
        .iter()
        .map(|body| {
            let a = infer_query(api, MODEL, "placement=local-only", "image/jpeg", body).expect("a local answer");
            assert_eq!(a.ran, "local");
            a.top[0].index
        })
        .collect()
}

fn summary(name: &str, rows: &[Row]) -> String {
    let mean = rows.iter().map(|r| r.latency_ms).sum::<f64>() / rows.len().max(1) as f64;
    let edge = rows.iter().filter(|r| r.ran.starts_with("edge")).count();
    let shaped = rows.iter().filter(|r| r.ran.starts_with("edge") && r.form != "original").count();
    format!("{name}: {} requests, mean {mean:.1} ms, {edge} on the edge ({shaped} shaped)", rows.len())
}

#[test]
fn on_a_2_mbit_link_the_agent_sends_the_shaped_jpeg_and_gets_the_local_answer() {
    if !is_root() {
        eprintln!("testbed_forms: NOT RUN — it needs root (network namespaces and tc); CI runs as root");
        return;
    }
    let images: Vec<Vec<u8>> = IMAGES.iter().map(|p| std::fs::read(repo_root().join(p)).expect("image")).collect();
    let bed = Bed::start(&BedOptions { tag: "forms", kbit: KBIT, telemetry: false, edge_forms: &["jpeg85"], ..BedOptions::default() });
    let reference = local_top1(&bed.api, &images);
    let rows = run(&bed.api, &images);
    let shaped: Vec<&Row> = rows.iter().filter(|r| r.ran.starts_with("edge") && r.form == "jpeg85").collect();
    assert!(!shaped.is_empty(), "no request was offloaded as the shaped JPEG on a 2 Mbit/s link:\n{rows:#?}\nagent log:\n{}", bed.agent.stderr.text());
    for r in &shaped {
        assert_eq!(r.top1, reference[r.image], "the shaped JPEG's answer differs from the local one: {r:?}");
    }
    for r in &rows {
        assert!(["original", "jpeg85"].contains(&r.form.as_str()), "a form the config did not offer: {r:?}");
    }
    eprintln!("{}", summary("offered jpeg85", &rows));
    drop(bed);

    if std::env::var("FERRY_LONG").is_ok_and(|v| v == "1") {
        let bed = Bed::start(&BedOptions { tag: "forms", kbit: KBIT, telemetry: false, ..BedOptions::default() });
        let plain = run(&bed.api, &images);
        eprintln!("{}", summary("original only", &plain));
    }
}
