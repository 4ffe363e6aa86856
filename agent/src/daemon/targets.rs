//! From the board config (ferry-drivers) and the agent's `[decide]` section to the decider's
//! config. The board's `[[targets]]`, `[thermal]` and `[energy]` already are the decision's
//! structs; this adds a local target for every model variant the board runs that its
//! `[[targets]]` do not list, and leaves the edges out when there is no link to reach them.

use ferry_decide::config as decide;
use ferry_decide::{Config, DecideConfig};
use ferry_drivers::BoardConfig;

/// Priority given to local variants added because the board config did not list them.
const IMPLICIT_PRIORITY: u8 = 10;

/// The decider's config for this board; edge targets only when there is a link to reach them.
pub fn decide_config(board_config: &BoardConfig, decide_section: &DecideConfig, with_edges: bool) -> Config {
    let mut targets: Vec<decide::TargetConfig> = board_config
        .targets
        .iter()
        .filter(|t| with_edges || matches!(t, decide::TargetConfig::Local(_)))
        .cloned()
        .collect();
    for model in &board_config.models {
        for &precision in &model.precisions {
            let listed = targets.iter().any(|t| matches!(t, decide::TargetConfig::Local(l) if l.model == model.name && l.precision == precision));
            if !listed {
                let name = format!("local-{}-{}", model.name, precision);
                targets.push(decide::TargetConfig::Local(decide::LocalTarget::new(name, model.name.clone(), precision, IMPLICIT_PRIORITY)));
            }
        }
    }
    Config {
        decide: decide_section.clone(),
        thermal: board_config.thermal.clone(),
        energy: board_config.energy.clone(),
        targets,
        forms: Vec::new(),
    }
}
