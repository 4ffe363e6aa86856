// Shared by the decide_* tests (included with `#[path]`, not a test of its own).
#![allow(dead_code)]

use ferry_decide::{Config, Constraints, Decider, FormId, ModelId, Observation, RequestInfo, SystemState, TargetId};

pub const CONFIG: &str = r#"
[decide]
hedge = HEDGE

[thermal]
throttle_point_c = 85.0
set_point_c = 75.0

[[targets]]
kind = "local"
name = "local-fp32"
model = "efficientnet-lite0"
precision = "fp32"

[[targets]]
kind = "edge"
name = "edge"
timeout_ms = 1000
"#;

pub const LOCAL: TargetId = TargetId(0);
pub const EDGE: TargetId = TargetId(1);

pub fn decider(hedge: bool) -> Decider {
    let text = CONFIG.replace("HEDGE", if hedge { "true" } else { "false" });
    Decider::new(&Config::from_toml(&text).unwrap()).unwrap()
}

pub fn image(deadline_ms: Option<u32>) -> RequestInfo {
    RequestInfo { model: ModelId(0), up_bytes: 150_000, down_bytes: 1_000, deadline_us: deadline_ms.map(|d| d * 1000), shapeable: false }
}

pub fn system(d: &mut Decider, load: f64, now: u64) {
    d.observe(Observation::System(SystemState { cpu_load: load, freq_ratio: 1.0, temp_c: 50.0 }), now);
}

/// `n` local runs of `ms` each under the current system state.
pub fn local_runs(d: &mut Decider, ms: f64, n: usize, now: &mut u64) {
    for _ in 0..n {
        d.observe(Observation::LocalQueued(LOCAL), *now);
        d.observe(Observation::LocalStarted(LOCAL), *now);
        *now += (ms * 1e3) as u64;
        d.observe(Observation::LocalFinished { target: LOCAL, compute_us: (ms * 1e3) as u32, ok: true }, *now);
    }
}

/// One offload answered over a link of `mbps` up and `rtt_ms`, edge compute 15 ms.
pub fn offload(d: &mut Decider, mbps: f64, rtt_ms: f64, now: &mut u64) {
    d.observe(Observation::OffloadSent { target: EDGE, up_bytes: 150_000 }, *now);
    d.observe(Observation::ProbeAnswered {
        target: EDGE,
        rtt_us: (rtt_ms * 1e3) as u32,
        up_bytes: 0,
        down_bytes: 0,
        transfer_us: 0,
        edge_queue_us: None,
    }, *now);
    let total = rtt_ms * 1e3 + 150_000.0 * 8.0 / mbps + 1_000.0 * 8.0 / (2.0 * mbps) + 15_000.0;
    *now += total as u64;
    d.observe(Observation::OffloadAnswered {
        target: EDGE,
        model: ModelId(0),
        form: FormId::ORIGINAL,
        up_bytes: 150_000,
        down_bytes: 1_000,
        total_us: total as u32,
        edge_queue_us: 0,
        edge_compute_us: 15_000,
    }, *now);
}

/// A request that opted out of the hard deadline (no shedding): the policy itself decides.
pub const BEST_EFFORT: Constraints = Constraints { placement: ferry_decide::Placement::Any, mode: None, best_effort: true };
