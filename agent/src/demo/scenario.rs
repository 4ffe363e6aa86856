//! The scenario: the phases every policy goes through, the policies, and the order they take
//! turns in.

/// One phase of the scenario.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Phase {
    /// What it stands for.
    pub name: &'static str,
    /// Link bandwidth each way, Mbit/s.
    pub mbps: f64,
    /// One-way delay, ms.
    pub delay_ms: f64,
    /// Whether a background job loads the CPU.
    pub cpu_load: bool,
}

/// A device that moves between good Wi-Fi and a collapsed link, with a background job at
/// times. Every collapse is followed by good Wi-Fi again (phase 3 with the CPU busy, phase 5
/// with it idle), so that the table shows whether a policy finds its way back to the edge.
pub const PHASES: [Phase; 5] = [
    Phase {
        name: "good Wi-Fi, idle CPU",
        mbps: 80.0,
        delay_ms: 2.0,
        cpu_load: false,
    },
    Phase {
        name: "link collapse",
        mbps: 1.5,
        delay_ms: 40.0,
        cpu_load: false,
    },
    Phase {
        name: "good Wi-Fi, busy CPU",
        mbps: 80.0,
        delay_ms: 2.0,
        cpu_load: true,
    },
    Phase {
        name: "collapse, busy CPU",
        mbps: 1.5,
        delay_ms: 40.0,
        cpu_load: true,
    },
    Phase {
        name: "good Wi-Fi again",
        mbps: 80.0,
        delay_ms: 2.0,
        cpu_load: false,
    },
];

/// The policies compared; the first is the one under test, the others are the static rules.
pub const POLICIES: [&str; 3] = ["adaptive", "always-local", "always-offload"];

/// The policy under test.
pub const ADAPTIVE: &str = POLICIES[0];

/// Whether `policy` is one of the static rules.
pub fn is_static(policy: &str) -> bool {
    policy != ADAPTIVE
}

/// The order the policies take turns in during `round` (0-based): rotated by one each round,
/// so that over `POLICIES.len()` rounds every policy goes first, second and last once.
pub fn order(round: u32) -> [&'static str; POLICIES.len()] {
    let mut o = POLICIES;
    o.rotate_left(round as usize % POLICIES.len());
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_takes_every_place_once_over_as_many_rounds_as_policies() {
        for (place, _) in POLICIES.iter().enumerate() {
            let mut seen: Vec<&str> = (0..POLICIES.len() as u32)
                .map(|r| order(r)[place])
                .collect();
            seen.sort_unstable();
            let mut all = POLICIES.to_vec();
            all.sort_unstable();
            assert_eq!(seen, all, "place {place}");
        }
        assert_eq!(order(0), POLICIES);
        assert_eq!(order(3), POLICIES);
    }

    #[test]
    fn every_collapse_is_followed_by_good_wifi() {
        for w in PHASES.windows(2) {
            if w[0].mbps < 10.0 {
                assert!(w[1].mbps > 10.0, "{} → {}", w[0].name, w[1].name);
            }
        }
        assert!(PHASES[PHASES.len() - 1].mbps > 10.0);
    }
}
