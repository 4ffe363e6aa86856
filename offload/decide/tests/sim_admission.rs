//! Admission in the simulator: on a Pi 4-class board with background load — local demand
//! above what the board can run while the link is often too slow to offload — every request
//! is answered exactly once and none later than its deadline plus the grace, whatever the
//! policy; the overload is shed (answered `deadline_exceeded` or `busy`), not queued.

use std::path::PathBuf;

use ferry_decide::sim::{self, BoardProfile, TraceSpec};

fn traces() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/traces")
}

/// `[decide] deadline_grace_ms` of the simulator's config (the default).
const GRACE_MS: f64 = 20.0;

#[test]
fn under_overload_no_answer_is_later_than_deadline_plus_grace_and_none_is_lost_or_duplicated() {
    let rpi4 = BoardProfile::load(&traces().join("boards/rpi4.toml")).unwrap();
    let mut overloaded = 0;
    for name in [
        "background-load.toml",
        "commute-mixed.toml",
        "recorded/hsdpa-bus.toml",
        "recorded/fcc-amazon.toml",
    ] {
        let mut spec =
            TraceSpec::load(&traces().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        spec.board = rpi4.clone().into();
        for slowdown in [1.0, 4.0] {
            spec.board_slowdown = slowdown;
            let rows = sim::table(&spec).unwrap();
            for s in &rows[1..] {
                let at = format!("{name} {slowdown}× {}", s.policy);
                assert_eq!(
                    (s.answers, s.duplicate_answers),
                    (s.requests, 0),
                    "{at}: lost or duplicated"
                );
                assert!(
                    s.max_late_ms <= GRACE_MS + 1e-6,
                    "{at}: an answer {:.1} ms after its deadline",
                    s.max_late_ms
                );
                eprintln!(
                    "{at}: shed {}, misses {}, max late {:+.1} ms",
                    s.shed, s.misses, s.max_late_ms
                );
                overloaded += usize::from(s.shed > 0);
            }
        }
    }
    // Not vacuous: these runs do overload the board and the link.
    assert!(overloaded > 10, "{overloaded}");
}
