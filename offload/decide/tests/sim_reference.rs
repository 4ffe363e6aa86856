//! The hindsight reference (`sim::reference`): it queues what its own earlier choices make wait
//! (on the runner and on the uplink), sheds what no path can finish in time, equals the
//! per-request oracle on an idle system, and says where the oracle stops being a bound. Also
//! the statistics the tables print beside it (deadline met, answers in time, probe bytes) and
//! `--load none`.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_decide::sim::reference::{self, Admission, Path, Placement};
use ferry_decide::sim::trace::{Sample, Timeline};
use ferry_decide::sim::world::{self, Req};
use ferry_decide::sim::{self, BoardProfile, TraceSpec};
use ferry_decide::{policy_of, PolicyKind};

fn traces() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/traces")
}

fn board(name: &str) -> Arc<BoardProfile> {
    Arc::new(BoardProfile::load(&traces().join("boards").join(name)).unwrap())
}

/// An image request at `at_ms` that takes `local_ms` on the board (FP32; INT8 half as slow
/// again), 15 ms on the edge, 150 000 B up and 1 000 B down, no noise.
fn image(at_ms: u64, local_ms: f64, deadline_ms: u32) -> Req {
    Req {
        at_us: at_ms * 1000,
        image: true,
        deadline_us: deadline_ms * 1000,
        local_ms: [local_ms, 1.5 * local_ms],
        local_noise: [1.0, 1.0],
        edge_ms: 15.0,
        edge_noise: 1.0,
        net_noise: 1.0,
        busy_roll: 1.0,
        board_slowdown: 1.0,
        load_k: 0.0,
        throttle_c: 85.0,
        up_bytes: 150_000,
        down_bytes: 1_000,
        forms: Default::default(),
        form_count: 0,
    }
}

/// 10 s of a constant world: `up_mbps` up, 100 Mbit/s down, 5 ms RTT, idle board, an edge with
/// no queue (or down).
fn world_of(up_mbps: f64, edge_down: bool) -> Timeline {
    let s = Sample {
        up_mbps,
        down_mbps: 100.0,
        rtt_ms: 5.0,
        cpu_load: 0.0,
        temp_c: 50.0,
        edge_queue_ms: 0.0,
        edge_busy: 0.0,
        edge_down,
    };
    Timeline { samples: vec![s; 100] }
}

fn ms(p: &Placement) -> f64 {
    p.latency_us / 1e3
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn the_second_of_two_simultaneous_images_waits_for_the_runner() {
    // No edge: both run locally, one after the other.
    let reqs = [image(0, 40.0, 1000), image(0, 40.0, 1000)];
    let plan = reference::schedule(&reqs, &world_of(30.0, true), Admission::Shed);
    assert_eq!(plan[0].path, Path::Local { fp32: true });
    assert_eq!(plan[1].path, Path::Local { fp32: true });
    assert!(close(ms(&plan[0]), 40.0) && close(ms(&plan[1]), 80.0), "{plan:?}");
    assert!(!plan[0].queued && plan[1].queued && plan.iter().all(|p| p.run));
    // The per-request oracle gives both 40 ms: it assumes an idle runner for each.
    let world = world_of(30.0, true);
    assert!(reqs.iter().all(|r| close(world::oracle_us(r, &world).0, 40_000.0)));
}

#[test]
fn a_queue_on_one_path_sends_the_next_request_to_the_other() {
    // 150 000 B at 30 Mbit/s is 40 ms up: the edge answers in 5 + 40 + 15 + 0.08 = 60.08 ms.
    let world = world_of(30.0, false);
    let reqs = [image(0, 40.0, 1000), image(0, 40.0, 1000), image(0, 40.0, 1000)];
    let plan = reference::schedule(&reqs, &world, Admission::Shed);
    // First: local (40 < 60.08). Second: local would wait to 80, the edge is 60.08.
    assert_eq!((plan[0].path, plan[1].path), (Path::Local { fp32: true }, Path::Edge));
    assert!(close(ms(&plan[0]), 40.0) && close(ms(&plan[1]), 60.08), "{plan:?}");
    // Third: the edge's upload would wait behind the second's (done at 80 ms: 100.08 ms), the
    // runner frees at 40: local, 80 ms.
    assert_eq!(plan[2].path, Path::Local { fp32: true });
    assert!(close(ms(&plan[2]), 80.0), "{plan:?}");
    assert_eq!(plan.iter().map(|p| p.queued).collect::<Vec<_>>(), [false, true, true]);
}

#[test]
fn uploads_queue_behind_the_references_own_uploads() {
    // A board too slow to matter: everything goes to the edge, one upload after the other.
    let world = world_of(30.0, false);
    let reqs = [image(0, 1000.0, 2000), image(0, 1000.0, 2000), image(10, 1000.0, 2000)];
    let plan = reference::schedule(&reqs, &world, Admission::Shed);
    assert!(plan.iter().all(|p| p.path == Path::Edge), "{plan:?}");
    // Uploads end at 40, 80 and 120 ms; each answer 20.08 ms after its upload.
    let want = [60.08, 100.08, 140.08 - 10.0];
    for (p, w) in plan.iter().zip(want) {
        assert!(close(ms(p), w), "{} vs {w}: {plan:?}", ms(p));
    }
}

#[test]
fn a_request_no_path_can_finish_in_time_is_not_run_and_books_nothing() {
    // No edge, 40 ms runs, a 100 ms deadline: four at once, then one at 130 ms.
    let world = world_of(30.0, true);
    let reqs = [image(0, 40.0, 100), image(0, 40.0, 100), image(0, 40.0, 100), image(0, 40.0, 100), image(130, 40.0, 100)];
    let shed = reference::schedule(&reqs, &world, Admission::Shed);
    assert_eq!(shed.iter().map(|p| p.run).collect::<Vec<_>>(), [true, true, false, false, true]);
    // The third and fourth would end at 120 ms: not run, so the runner is free from 80 ms and
    // the fifth starts on arrival.
    assert!(close(ms(&shed[2]), 120.0) && close(ms(&shed[3]), 120.0) && close(ms(&shed[4]), 40.0), "{shed:?}");
    // The idle world would have answered them in 40 ms: they count as queued.
    assert_eq!(shed.iter().map(|p| p.queued).collect::<Vec<_>>(), [false, true, true, true, false]);
    let all = reference::schedule(&reqs, &world, Admission::RunAll);
    assert!(all.iter().all(|p| p.run));
    let got: Vec<f64> = all.iter().map(ms).collect();
    // 40, 80, 120, 160, then from 160 to 200: 70 ms after its arrival at 130.
    for (g, w) in got.iter().zip([40.0, 80.0, 120.0, 160.0, 70.0]) {
        assert!(close(*g, w), "{got:?}");
    }
}

#[test]
fn int8_is_taken_when_it_finishes_first() {
    let world = world_of(30.0, true);
    let mut r = image(0, 40.0, 1000);
    r.local_ms = [40.0, 30.0];
    let plan = reference::schedule(&[r], &world, Admission::Shed);
    assert_eq!(plan[0].path, Path::Local { fp32: false });
    assert!(close(ms(&plan[0]), 30.0));
}

/// A 120 s trace at one request per second on a constant link (no wobble) and an idle board:
/// nothing ever waits.
fn idle_trace() -> TraceSpec {
    let text = r#"
name = "idle"
description = "test"
seed = 9
duration_s = 120
fps = 1.0
deadline_ms = 100
digits_share = 0.2
jitter = 0.0

[[link]]
weight = 1.0
secs = [20.0, 40.0]
up_mbps = [5.0, 100.0]
down_mbps = [50.0, 50.0]
rtt_ms = [3.0, 60.0]

[[device]]
weight = 1.0
secs = [10.0, 30.0]
cpu_load = [0.0, 1.0]
temp_c = [50.0, 90.0]
"#;
    let mut spec = TraceSpec::from_toml(text).unwrap();
    spec.board = board("legacy-constants.toml");
    spec
}

#[test]
fn on_an_idle_system_every_request_takes_the_oracles_time() {
    let spec = idle_trace();
    let timeline = spec.timeline();
    let reqs = world::requests(&spec);
    let plan = reference::schedule(&reqs, &timeline, Admission::RunAll);
    let (mut edge, mut checked) = (0, 0);
    for (r, p) in reqs.iter().zip(&plan) {
        let (oracle_us, oracle_edge) = world::oracle_us(r, &timeline);
        // An upload that crosses into another step sees that step's rate; the oracle takes the
        // rate at arrival throughout. The link is constant within each phase (no wobble), so
        // only uploads across a phase change (at most 240 ms long here) differ; there are few.
        let step = sim::trace::STEP_US;
        let crosses = p.path == Path::Edge && timeline.at(r.at_us).up_mbps != timeline.at(r.at_us + 3 * step).up_mbps;
        if !crosses {
            assert!(close(p.latency_us, oracle_us), "at {} µs: {} vs oracle {}", r.at_us, p.latency_us, oracle_us);
            assert_eq!(p.path == Path::Edge, oracle_edge, "at {} µs", r.at_us);
            checked += 1;
        }
        assert!(!p.queued, "at {} µs: {p:?}", r.at_us);
        edge += usize::from(p.path == Path::Edge);
    }
    // Not vacuous: both kinds of path, and (below) some requests past their deadline even idle.
    assert!(edge > 10 && edge < reqs.len() - 10, "{edge} of {}", reqs.len());
    assert!(checked >= reqs.len() * 9 / 10, "{checked} of {}", reqs.len());
    let (oracle, run_all) = (sim::oracle(&spec, &timeline), sim::reference(&spec, &timeline, Admission::RunAll));
    assert!((run_all.mean_ms - oracle.mean_ms).abs() < 0.005 * oracle.mean_ms, "{run_all:?} vs {oracle:?}");
    assert_eq!((run_all.in_time, run_all.queued), (oracle.in_time, 0));
    assert!(sim::oracle_is_valid(&run_all));
    // The shedding reference meets the same deadlines and runs nothing it need not.
    let shed = sim::reference(&spec, &timeline, Admission::Shed);
    assert_eq!((shed.in_time, shed.failed), (oracle.in_time, oracle.requests - oracle.in_time));
    assert!(oracle.in_time < oracle.requests, "{oracle:?}");
}

#[test]
fn under_overload_the_reference_pays_for_its_queues_and_the_oracle_is_no_bound() {
    // The Pi-class board with hsdpa-bus's background jobs: local runs of 100-600 ms at
    // 4 images/s on a 2-3 Mbit/s link.
    let mut spec = TraceSpec::load(&traces().join("recorded/hsdpa-bus.toml")).unwrap();
    spec.board = board("rpi4.toml");
    let timeline = spec.timeline();
    let oracle = sim::oracle(&spec, &timeline);
    let run_all = sim::reference(&spec, &timeline, Admission::RunAll);
    let shed = sim::reference(&spec, &timeline, Admission::Shed);
    assert!(!sim::oracle_is_valid(&run_all), "{run_all:?}");
    assert!(run_all.mean_ms > 1.5 * oracle.mean_ms, "{run_all:?} vs {oracle:?}");
    // Running what cannot make it anyway costs the requests behind it their deadlines.
    assert!(shed.in_time > run_all.in_time, "{shed:?} vs {run_all:?}");
    assert_eq!((shed.answers, shed.duplicate_answers, run_all.failed), (shed.requests, 0, 0));
    // On the legacy board with no load nothing waits: the oracle is valid.
    spec.board = board("legacy-constants.toml");
    spec.without_background_load();
    let timeline = spec.timeline();
    assert!(sim::oracle_is_valid(&sim::reference(&spec, &timeline, Admission::RunAll)));
}

#[test]
fn the_statistics_count_answers_in_time_and_probe_bytes() {
    let mut spec = TraceSpec::load(&traces().join("congested-wifi.toml")).unwrap();
    spec.board = board("rpi4.toml");
    let timeline = spec.timeline();
    for kind in [PolicyKind::Adaptive, PolicyKind::AlwaysLocal, PolicyKind::AlwaysOffload] {
        let s = sim::run(&spec, &timeline, policy_of(kind), false).unwrap();
        assert_eq!(s.in_time + s.misses, s.requests, "{s:?}");
        assert!((s.deadline_met_share() - s.in_time as f64 / s.requests as f64).abs() < 1e-12);
        assert!(s.in_time_mean_ms <= s.in_time_p95_ms && s.in_time_p95_ms <= 120.0, "{s:?}");
        assert_eq!(s.probe_bytes, s.probes as u64 * (16_384 + 64), "{s:?}");
        assert!((s.probe_bytes_per_s() - s.probe_bytes as f64 / 300.0).abs() < 1e-9);
        // Something is late on this board and link: the latest answer past its deadline.
        assert!(s.max_late_ms > 0.0 && s.max_late_ms < 600_000.0, "{s:?}");
        assert_eq!(s.lost(), 0);
        assert_eq!(s.in_time_by_request.iter().flatten().count(), s.in_time);
        let (n, a, b) = sim::paired_in_time(&s, &s);
        assert_eq!(n, s.in_time);
        assert!((a - s.in_time_mean_ms).abs() < 1e-9 && a == b, "{a} {b} {s:?}");
    }
}

#[test]
fn over_the_requests_both_answer_in_time_a_row_that_meets_only_easy_deadlines_gains_nothing() {
    // The Pi-class board under hsdpa-bus's load: always-local meets almost only the tiny digits
    // requests' deadlines, so its mean over its own answers in time is a few ms, far under the
    // reference's. Over the requests both answered in time it gains nothing: there its digits
    // wait behind running images (4 ms against the reference's 0.3 ms; with admission control
    // shedding those images, both 0.4 ms).
    let mut spec = TraceSpec::load(&traces().join("recorded/hsdpa-bus.toml")).unwrap();
    spec.board = board("rpi4.toml");
    let timeline = spec.timeline();
    let local = sim::run(&spec, &timeline, policy_of(PolicyKind::AlwaysLocal), false).unwrap();
    let reference = sim::reference(&spec, &timeline, Admission::Shed);
    assert!(local.in_time_mean_ms < 0.2 * reference.in_time_mean_ms, "{local:?} vs {reference:?}");
    assert!(local.deadline_met_share() < 0.5 * reference.deadline_met_share());
    let (n, a, b) = sim::paired_in_time(&local, &reference);
    assert!(n > 10 && n <= local.in_time, "{n}");
    assert!(a >= 0.99 * b, "{a} vs {b}");
}

#[test]
fn without_background_load_changes_the_device_and_nothing_else() {
    let spec = TraceSpec::load(&traces().join("recorded/fcc-amazon.toml")).unwrap();
    let mut idle = spec.clone();
    idle.without_background_load();
    let (a, b) = (spec.timeline(), idle.timeline());
    assert_eq!(a.samples.len(), b.samples.len());
    assert!(a.samples.iter().any(|s| s.cpu_load > 0.5));
    for (x, y) in a.samples.iter().zip(&b.samples) {
        assert_eq!((y.cpu_load, y.temp_c), (0.0, 55.0));
        assert_eq!((x.up_mbps, x.down_mbps, x.rtt_ms), (y.up_mbps, y.down_mbps, y.rtt_ms));
        assert_eq!((x.edge_queue_ms, x.edge_busy, x.edge_down), (y.edge_queue_ms, y.edge_busy, y.edge_down));
    }
    let (ra, rb) = (world::requests(&spec), world::requests(&idle));
    assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
}
