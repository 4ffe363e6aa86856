//! The simulator's shaped inputs: the options' costs on a steady link follow the board
//! profile's figures, and shaping loses nothing, duplicates nothing and sends only the forms
//! offered.

use std::path::PathBuf;
use std::sync::Arc;

use ferry_decide::sim::{shaping, BoardProfile, TraceSpec};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rpi4() -> Arc<BoardProfile> {
    Arc::new(BoardProfile::load(&repo().join("tests/traces/boards/rpi4.toml")).unwrap())
}

fn cost(costs: &[(String, f64)], name: &str) -> f64 {
    costs.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} in {costs:?}")).1
}

#[test]
fn on_a_slow_uplink_the_small_jpeg_beats_the_original_and_on_a_fast_one_it_does_not() {
    let board = rpi4();
    // 2 Mbit/s: the original's 112,842 B take 451 ms up; the q85 JPEG's 13,388 B 54 ms after
    // 47.6 ms of making.
    let slow = shaping::option_costs(&board, 1.0, 2.0, 100.0, 30.0);
    let (original, jpeg85) = (cost(&slow, "offload(original)"), cost(&slow, "offload(jpeg85)"));
    assert!((original - (30.0 + 451.4 + 52.0 + 0.01)).abs() < 1.0, "{slow:?}");
    assert!((jpeg85 - (47.6 + 30.0 + 53.6 + 52.0 + 0.01)).abs() < 1.0, "{slow:?}");
    // 100 Mbit/s: making the JPEG costs more than the original's 9 ms on the link.
    let fast = shaping::option_costs(&board, 1.0, 100.0, 100.0, 30.0);
    assert!(cost(&fast, "offload(original)") < cost(&fast, "offload(jpeg85)"), "{fast:?}");
    assert_eq!(
        shaping::form_names(&board),
        ["original", "int8-tensor", "jpeg85", "jpeg95", "split@10", "split@21", "split@32", "split@66", "split@92"]
    );
}

#[test]
fn shaping_on_a_recorded_link_loses_nothing_and_sends_only_offered_forms() {
    let mut spec = TraceSpec::load(&repo().join("tests/traces/recorded/hsdpa-bus.toml")).unwrap();
    spec.board = rpi4();
    let rows = shaping::forms_table(&spec).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.policy.as_str()).collect();
    assert_eq!(names, ["always-local", "always-offload", "adaptive", "adaptive+shaping"]);
    for r in &rows {
        assert_eq!(r.lost(), 0, "{}", r.policy);
        assert_eq!(r.duplicate_answers, 0, "{}", r.policy);
        assert_eq!(r.sent_by_form.len(), ferry_decide::config::MAX_FORMS + 1, "{}", r.policy);
    }
    // Without shaping every offload is the original; with it, the shaped forms are used.
    for r in &rows[..3] {
        assert!(r.sent_by_form[1..].iter().all(|&n| n == 0), "{}: {:?}", r.policy, r.sent_by_form);
    }
    assert!(rows[3].sent_by_form[1..].iter().sum::<usize>() > 0, "{:?}", rows[3].sent_by_form);
}
