//! Board profiles: the shipped ones parse and round-trip through the writer `ferry bench local
//! --profile-out` uses, a bad one is a typed error naming its key, and a profile holding the
//! constants the simulator had before profiles gives, request by request, exactly the world
//! those constants gave (the old code is restated here, draw for draw).

use std::path::PathBuf;
use std::sync::Arc;

use ferry_decide::sim::rng::Rng;
use ferry_decide::sim::trace::Sample;
use ferry_decide::sim::world::{self, EdgeOutcome};
use ferry_decide::sim::{BoardProfile, ProfileError, TraceSpec};

fn boards() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/traces/boards")
}

fn board(name: &str) -> BoardProfile {
    BoardProfile::load(&boards().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(name: &str) -> String {
    std::fs::read_to_string(boards().join(name)).unwrap()
}

#[test]
fn every_shipped_profile_parses_and_the_default_is_the_legacy_constants() {
    for name in ["vm-dev.toml", "rpi4.toml", "legacy-constants.toml"] {
        let b = board(name);
        assert_eq!(Some(b.board.as_str()), name.strip_suffix(".toml"));
    }
    assert_eq!(BoardProfile::shipped_default().unwrap(), board("legacy-constants.toml"));
    let spec = TraceSpec::load(&boards().join("../steady-wifi.toml")).unwrap();
    assert_eq!(*spec.board, board("legacy-constants.toml"));
}

#[test]
fn a_profile_round_trips_through_the_writer() {
    for name in ["vm-dev.toml", "rpi4.toml", "legacy-constants.toml"] {
        let b = board(name);
        let written = b.to_toml().unwrap();
        assert_eq!(BoardProfile::from_toml(&written).unwrap(), b, "{name}:\n{written}");
    }
    // Values a measurement gives (not round numbers) survive as written.
    let mut b = board("vm-dev.toml");
    b.models.digits.int8.threads_2.mean_ms = 0.123_456_789_012_345_6;
    b.cpu.load_k = 1.0 / 3.0;
    b.source = "a \"quoted\" source\nover two lines".into();
    assert_eq!(BoardProfile::from_toml(&b.to_toml().unwrap()).unwrap(), b);
}

/// The error parsing `legacy-constants.toml` with the first `from` replaced by `to` gives.
fn broken(from: &str, to: &str) -> ProfileError {
    let t = text("legacy-constants.toml");
    assert!(t.contains(from), "{from}");
    BoardProfile::from_toml(&t.replacen(from, to, 1)).unwrap_err()
}

fn invalid_key(e: &ProfileError) -> &str {
    match e {
        ProfileError::Invalid { key, .. } => key,
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

#[test]
fn a_value_out_of_range_is_a_typed_error_naming_its_key() {
    // Only the sigma_ms under [models.digits.int8.threads_1] changes.
    let t = text("legacy-constants.toml");
    let at = t.find("[models.digits.int8.threads_1]").unwrap();
    let (head, tail) = t.split_at(at);
    let bad = format!("{head}{}", tail.replacen("sigma_ms = 0.0025", "sigma_ms = -1.0", 1));
    let e = BoardProfile::from_toml(&bad).unwrap_err();
    assert_eq!(invalid_key(&e), "models.digits.int8.threads_1.sigma_ms");
    assert!(e.to_string().contains("models.digits.int8.threads_1.sigma_ms"), "{e}");

    let e = broken("mean_ms = 40.0", "mean_ms = 0.0");
    assert_eq!(invalid_key(&e), "models.efficientnet-lite0.fp32.threads_1.mean_ms");
    let e = broken("up_bytes = 3300", "up_bytes = 0");
    assert_eq!(invalid_key(&e), "models.digits.up_bytes");
    let e = broken("load_k = 1.5", "load_k = -0.5");
    assert_eq!(invalid_key(&e), "cpu.load_k");
    let e = broken("throttle_c = 85.0", "throttle_c = 1000.0");
    assert_eq!(invalid_key(&e), "cpu.throttle_c");
    let e = broken("board = \"legacy-constants\"", "board = \" \"");
    assert_eq!(invalid_key(&e), "board");
    // σ past the mean: the noise model would span orders of magnitude.
    let e = broken("sigma_ms = 0.75", "sigma_ms = 16.0");
    assert_eq!(invalid_key(&e), "models.efficientnet-lite0.edge.sigma_ms");
}

#[test]
fn an_unknown_or_missing_key_is_a_toml_error_naming_it() {
    for (e, key) in [
        (broken("load_k = 1.5", "load_k = 1.5\nload_kk = 2.0"), "load_kk"),
        (broken("[cpu]\nload_k = 1.5\n", "[cpu]\n"), "load_k"),
        (broken("[models.digits.int8.threads_2]", "[models.digits.int8.threads_3]"), "threads_3"),
        (broken("up_bytes = 150000", "up_bytes = 150000.5"), "up_bytes"),
    ] {
        assert!(matches!(e, ProfileError::Toml(_)), "{e:?}");
        assert!(e.to_string().contains(key), "{key}: {e}");
    }
}

#[test]
fn an_unreadable_profile_is_a_file_error() {
    let e = BoardProfile::load(&boards().join("no-such-board.toml")).unwrap_err();
    assert!(matches!(e, ProfileError::File(_)), "{e:?}");
    assert!(e.to_string().contains("no-such-board.toml"), "{e}");
}

/// The old world (offload/decide/src/sim/world.rs before profiles), restated: its constants,
/// its draws in its order, its formulas.
mod old {
    use super::*;

    pub struct Req {
        pub at_us: u64,
        pub image: bool,
        pub local_noise: f64,
        pub edge_noise: f64,
        pub net_noise: f64,
        pub busy_roll: f64,
    }

    pub fn requests(spec: &TraceSpec) -> Vec<Req> {
        let mut rng = Rng::new(spec.seed ^ 0x44_44);
        let period = 1e6 / spec.fps;
        let end = u64::from(spec.duration_s) * 1_000_000;
        let mut t = period * rng.f64();
        let mut out = Vec::new();
        while (t as u64) < end {
            let image = rng.f64() >= spec.digits_share;
            out.push(Req {
                at_us: t as u64,
                image,
                local_noise: rng.lognormal(0.05),
                edge_noise: rng.lognormal(0.05),
                net_noise: rng.lognormal(0.05),
                busy_roll: rng.f64(),
            });
            t += period * (0.9 + 0.2 * rng.f64());
        }
        out
    }

    fn freq_ratio(temp_c: f64) -> f64 {
        if temp_c <= 85.0 { 1.0 } else { (1.0 - 0.05 * (temp_c - 85.0)).max(0.5) }
    }

    pub fn local_us(r: &Req, fp32: bool, s: &Sample, slowdown: f64) -> f64 {
        let base = match (r.image, fp32) {
            (true, true) => 40.0,
            (true, false) => 60.0,
            (false, _) => 0.05,
        };
        base * 1e3 * slowdown * r.local_noise * (1.0 + 1.5 * s.cpu_load) / freq_ratio(s.temp_c)
    }

    pub fn edge(r: &Req, s: &Sample) -> Option<(f64, f64)> {
        if s.edge_down || r.busy_roll < s.edge_busy {
            return None;
        }
        let up = f64::from(if r.image { 150_000 } else { 3_300 }) * 8.0 / s.up_mbps.max(0.01) * r.net_noise;
        let down = 1_000.0 * 8.0 / s.down_mbps.max(0.01) * r.net_noise;
        let compute = if r.image { 15.0 } else { 0.05 } * 1e3 * r.edge_noise;
        Some((s.rtt_ms * 1e3 * r.net_noise + up + s.edge_queue_ms * 1e3 + compute + down, compute))
    }
}

#[test]
fn the_legacy_profile_gives_the_old_world_exactly_request_by_request() {
    let dir = boards().join("..");
    let legacy = Arc::new(board("legacy-constants.toml"));
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let mut spec = TraceSpec::load(&path).unwrap();
        spec.board = legacy.clone();
        for slowdown in [1.0, 4.0] {
            spec.board_slowdown = slowdown;
            let timeline = spec.timeline();
            let (new, old) = (world::requests(&spec), old::requests(&spec));
            assert_eq!(new.len(), old.len(), "{}", path.display());
            for (n, o) in new.iter().zip(&old) {
                let s = timeline.at(n.at_us);
                assert_eq!((n.at_us, n.image, n.net_noise, n.busy_roll), (o.at_us, o.image, o.net_noise, o.busy_roll));
                for fp32 in [true, false] {
                    // Digits' log-σ is 0.0025 / 0.05 = 0.049999999999999996 in f64, one unit in
                    // the last place off the old 0.05: equal to 1e-15, bit-equal for images.
                    let (a, b) = (world::local_us(n, fp32, &s), old::local_us(o, fp32, &s, slowdown));
                    if n.image {
                        assert_eq!(a.to_bits(), b.to_bits(), "{} at {} µs", path.display(), n.at_us);
                    } else {
                        assert!((a - b).abs() <= 1e-15 * b, "{a} vs {b}");
                    }
                }
                let new_edge = match world::edge_outcome(n, &s) {
                    EdgeOutcome::Answer { total_us, compute_us, .. } => Some((total_us, compute_us)),
                    _ => None,
                };
                match (new_edge, old::edge(o, &s)) {
                    (Some((ta, ca)), Some((tb, cb))) if n.image => assert_eq!((ta.to_bits(), ca.to_bits()), (tb.to_bits(), cb.to_bits())),
                    (Some((ta, _)), Some((tb, _))) => assert!((ta - tb).abs() <= 1e-12 * tb, "{ta} vs {tb}"),
                    (a, b) => assert_eq!(a.is_none(), b.is_none()),
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 20_000, "{checked} requests");
}
