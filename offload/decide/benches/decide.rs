//! `decide()` overhead: one decision on a warmed-up decider (two local variants, one edge).
//!
//! `CARGO_TARGET_DIR=/tmp/target-decide cargo bench -p ferry-decide --bench decide`
//! Besides criterion's estimate, prints p50/p99 over 100 000 individually timed calls.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use ferry_decide::sim::SIM_CONFIG;
use ferry_decide::{Config, Decider, FormId, ModelId, Observation, RequestInfo, SystemState, TargetId};

fn warmed() -> Decider {
    let mut d = Decider::new(&Config::from_toml(SIM_CONFIG).expect("sim config parses")).expect("decider");
    let mut now = 0;
    d.observe(Observation::System(SystemState { cpu_load: 0.3, freq_ratio: 1.0, temp_c: 70.0 }), 0);
    for _ in 0..50 {
        d.observe(Observation::LocalQueued(TargetId(0)), now);
        d.observe(Observation::LocalStarted(TargetId(0)), now);
        now += 40_000;
        d.observe(Observation::LocalFinished { target: TargetId(0), compute_us: 40_000, ok: true }, now);
        d.observe(Observation::OffloadSent { target: TargetId(3), up_bytes: 150_000 }, now);
        now += 35_000;
        d.observe(
            Observation::OffloadAnswered {
                target: TargetId(3),
                model: ModelId(0),
                form: FormId::ORIGINAL,
                up_bytes: 150_000,
                down_bytes: 1_000,
                total_us: 35_000,
                edge_queue_us: 1_000,
                edge_compute_us: 15_000,
            },
            now,
        );
    }
    d
}

fn bench(c: &mut Criterion) {
    let req = RequestInfo { model: ModelId(0), up_bytes: 150_000, down_bytes: 1_000, deadline_us: Some(120_000), shapeable: false };
    let mut d = warmed();
    let mut now = 10_000_000u64;
    c.bench_function("decide", |b| {
        b.iter(|| {
            now += 1_000;
            black_box(d.decide(black_box(&req), now))
        })
    });

    // Per-call distribution (includes ~20-30 ns of Instant overhead per sample).
    let mut samples = Vec::with_capacity(100_000);
    for _ in 0..100_000 {
        now += 1_000;
        let t = Instant::now();
        black_box(d.decide(black_box(&req), now));
        samples.push(t.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    let q = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!("decide() per call over 100000: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns", q(0.5), q(0.99), q(0.999), q(1.0));
}

criterion_group!(benches, bench);
criterion_main!(benches);
