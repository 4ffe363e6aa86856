//! From the board config (ferry-drivers) and the agent's `[decide]` section to the decider's
//! config (ferry-offload): field by field, plus a local target for every model variant the
//! board runs that the board's `[[targets]]` do not list.

use ferry_drivers::config as board;
use ferry_drivers::BoardConfig;
use ferry_offload::decide::config as decide;
use ferry_offload::decide::{Config, DecideConfig};

/// Priority given to local variants added because the board config did not list them.
const IMPLICIT_PRIORITY: u8 = 10;

/// The decider's config for this board; edge targets only when there is a link to reach them.
pub fn decide_config(board_config: &BoardConfig, decide_section: &DecideConfig, with_edges: bool) -> Config {
    let mut targets: Vec<decide::TargetConfig> = board_config
        .targets
        .iter()
        .filter(|t| with_edges || matches!(t, board::TargetConfig::Local(_)))
        .map(target)
        .collect();
    for model in &board_config.models {
        for &precision in &model.precisions {
            let listed = targets.iter().any(|t| matches!(t, decide::TargetConfig::Local(l) if l.model == model.name && l.precision == precision));
            if !listed {
                targets.push(decide::TargetConfig::Local(decide::LocalTarget {
                    name: format!("local-{}-{}", model.name, precision),
                    model: model.name.clone(),
                    precision,
                    priority: IMPLICIT_PRIORITY,
                    max_memory_ratio: 0.9,
                    prior_ms: None,
                }));
            }
        }
    }
    let t = &board_config.thermal;
    let thermal_defaults: decide::ThermalConfig = decide::ThermalConfig {
        throttle_point_c: t.throttle_point_c,
        set_point_c: t.set_point_c,
        ..thermal_gains()
    };
    let e = &board_config.energy;
    Config {
        decide: decide_section.clone(),
        thermal: thermal_defaults,
        energy: decide::EnergyConfig {
            radio_nj_per_byte: e.radio_nj_per_byte,
            radio_tail_mj: e.radio_tail_mj,
            idle_mw: e.idle_mw,
            inference: e
                .inference
                .iter()
                .map(|i| decide::InferenceEnergy { model: i.model.clone(), precision: i.precision, mj_per_inference: i.mj_per_inference })
                .collect(),
        },
        targets,
    }
}

/// The PI gains' defaults, as the decider's own parser would fill them in.
fn thermal_gains() -> decide::ThermalConfig {
    // Parsing the smallest section gives exactly the documented defaults, with no second copy
    // of them here.
    #[derive(serde::Deserialize)]
    struct Only {
        thermal: decide::ThermalConfig,
    }
    toml::from_str::<Only>("[thermal]\nthrottle_point_c = 85.0\nset_point_c = 75.0\n")
        .map(|o| o.thermal)
        .unwrap_or(decide::ThermalConfig { throttle_point_c: 85.0, set_point_c: 75.0, kp: 0.1, ki: 0.01, max_local_penalty: 3.0 })
}

fn target(t: &board::TargetConfig) -> decide::TargetConfig {
    match t {
        board::TargetConfig::Local(l) => decide::TargetConfig::Local(decide::LocalTarget {
            name: l.name.clone(),
            model: l.model.clone(),
            precision: l.precision,
            priority: l.priority,
            max_memory_ratio: l.max_memory_ratio,
            prior_ms: None,
        }),
        board::TargetConfig::Edge(e) => decide::TargetConfig::Edge(decide::EdgeTarget {
            name: e.name.clone(),
            endpoint: e.endpoint.clone(),
            models: e.models.clone(),
            priority: e.priority,
            timeout_ms: e.timeout_ms,
            max_inflight: e.max_inflight,
            compute_prior_ms: None,
        }),
    }
}
