//! What crosses the link is part of the decision: an edge path is priced in every form its
//! input may be sent in (the original, and the shaped forms that edge accepts), and the
//! decision names the form.

use ferry_decide::{Config, Decider, FormId, ModelId, Observation, RequestInfo, SystemState, TargetId};

const LOCAL: TargetId = TargetId(0);
const EDGE: TargetId = TargetId(1);
const IMAGE: ModelId = ModelId(0);

/// A board with a 150 ms local run and one edge; `EDGE_FORMS` is what the edge accepts.
const CONFIG: &str = r#"
[thermal]
throttle_point_c = 85.0
set_point_c = 75.0

[[targets]]
kind = "local"
name = "local-fp32"
model = "efficientnet-lite0"
precision = "fp32"
prior_ms = 150.0

[[targets]]
kind = "edge"
name = "edge"
timeout_ms = 5000
compute_prior_ms = 50.0
forms = EDGE_FORMS

[[forms]]
model = "efficientnet-lite0"
name = "jpeg85"
up_bytes = 15600
encode_ms = 6.0

[[forms]]
model = "efficientnet-lite0"
name = "int8-tensor"
up_bytes = 150700
encode_ms = 4.0
"#;

fn decider(edge_forms: &str) -> Decider {
    let config = Config::from_toml(&CONFIG.replace("EDGE_FORMS", edge_forms)).unwrap();
    Decider::new(&config).unwrap()
}

fn request(shapeable: bool) -> RequestInfo {
    RequestInfo { model: IMAGE, up_bytes: 112_842, down_bytes: 200, deadline_us: Some(2_000_000), shapeable }
}

/// Teaches the decider a link of `mbps` up and 20 ms of RTT with an edge computing in 50 ms,
/// from answers to requests of `bytes`, and local runs of 150 ms. Returns the time after.
fn learn(d: &mut Decider, mbps: f64, bytes: u32) -> u64 {
    let mut now = 1_000_000u64;
    d.observe(Observation::System(SystemState { cpu_load: 0.0, freq_ratio: 1.0, temp_c: 50.0 }), now);
    for _ in 0..20 {
        d.observe(Observation::LocalFinished { target: LOCAL, compute_us: 150_000, ok: true }, now);
        d.observe(Observation::OffloadSent { target: EDGE, up_bytes: bytes }, now);
        let total = 20_000.0 + f64::from(bytes) * 8.0 / mbps + 50_000.0;
        now += total as u64;
        d.observe(
            Observation::OffloadAnswered {
                target: EDGE,
                model: IMAGE,
                form: FormId::ORIGINAL,
                up_bytes: bytes,
                down_bytes: 200,
                total_us: total as u32,
                edge_queue_us: 0,
                edge_compute_us: 50_000,
            },
            now,
        );
        now += 500_000;
    }
    now
}

#[test]
fn on_a_slow_link_the_small_shaped_form_makes_offloading_pay() {
    // 2 Mbit/s: the original (113 KB) takes 450 ms up, a local run 150 ms; the 15.6 KB JPEG
    // takes 62 ms + 6 ms to make: 20 + 68 + 50 = 138 ms on the edge.
    let mut d = decider(r#"["jpeg85", "int8-tensor"]"#);
    let now = learn(&mut d, 2.0, 112_842);
    let dec = d.decide(&request(true), now);
    assert_eq!(dec.form(), FormId(1), "the JPEG: {dec:?}");
    assert!(matches!(dec.choice, ferry_decide::Choice::Offload(EDGE)), "{dec:?}");
    let chosen = dec.reason.chosen.unwrap();
    assert_eq!(chosen.up_bytes, 15_600);
    assert!(chosen.mean_ms < 150.0, "{chosen:?}");

    // The same request, its input not an image the device can shape: the original, so local.
    let dec = d.decide(&request(false), now);
    assert_eq!(dec.form(), FormId::ORIGINAL);
    assert!(matches!(dec.choice, ferry_decide::Choice::Local(LOCAL)), "{dec:?}");
}

#[test]
fn an_edge_is_sent_only_the_forms_it_accepts() {
    let mut d = decider(r#"["int8-tensor"]"#);
    let now = learn(&mut d, 2.0, 112_842);
    let dec = d.decide(&request(true), now);
    // The INT8 tensor is larger than the original here: the original is the edge's best,
    // and local beats both.
    assert_eq!(dec.reason.best_edge.unwrap().form_id(), FormId::ORIGINAL, "{dec:?}");
    assert!(matches!(dec.choice, ferry_decide::Choice::Local(LOCAL)), "{dec:?}");
    assert_eq!(dec.form(), FormId::ORIGINAL);

    let mut d = decider("[]");
    let now = learn(&mut d, 2.0, 112_842);
    assert_eq!(d.decide(&request(true), now).reason.best_edge.unwrap().form_id(), FormId::ORIGINAL);
}

#[test]
fn on_a_fast_link_the_original_wins_because_shaping_takes_time() {
    // 400 Mbit/s: the original is 2.3 ms up; the JPEG 0.3 ms + 6 ms to make.
    let mut d = decider(r#"["jpeg85"]"#);
    let now = learn(&mut d, 400.0, 112_842);
    let dec = d.decide(&request(true), now);
    assert_eq!(dec.form(), FormId::ORIGINAL, "{dec:?}");
    assert!(matches!(dec.choice, ferry_decide::Choice::Offload(EDGE)), "{dec:?}");
}

#[test]
fn measured_shaping_replaces_the_prior() {
    let mut d = decider(r#"["jpeg85"]"#);
    let now = learn(&mut d, 2.0, 112_842);
    assert_eq!(d.estimators().form_cost(IMAGE, FormId(1)).unwrap().0, 15_600);
    // The images of this application make 90 KB JPEGs that take 40 ms: no longer worth it.
    for i in 0..30 {
        d.observe(Observation::Shaped { model: IMAGE, form: FormId(1), up_bytes: 90_000, encode_us: 40_000 }, now + i);
    }
    let (bytes, encode_us, share) = d.estimators().form_cost(IMAGE, FormId(1)).unwrap();
    assert_eq!(share, 1.0, "a shaped input runs the whole model");
    assert!((89_000..=90_000).contains(&bytes), "{bytes}");
    assert!((encode_us - 40_000.0).abs() < 500.0, "{encode_us}");
    let dec = d.decide(&request(true), now + 100);
    assert!(matches!(dec.choice, ferry_decide::Choice::Local(LOCAL)), "{dec:?}");
    // Under load the making slows down with the board, as local compute does.
    d.observe(Observation::System(SystemState { cpu_load: 1.0, freq_ratio: 0.5, temp_c: 50.0 }), now + 200);
    let (_, loaded, _) = d.estimators().form_cost(IMAGE, FormId(1)).unwrap();
    assert!(loaded >= 2.0 * encode_us, "{loaded} vs {encode_us}");
}

#[test]
fn forms_are_checked() {
    let bad = |edit: &str, from: &str| {
        let text = CONFIG.replace("EDGE_FORMS", "[]").replace(from, edit);
        Config::from_toml(&text).unwrap_err().to_string()
    };
    assert!(bad("up_bytes = 0", "up_bytes = 15600").contains("forms.up_bytes"));
    assert!(bad("encode_ms = -1.0", "encode_ms = 6.0").contains("forms.encode_ms"));
    assert!(bad("name = \"original\"", "name = \"jpeg85\"").contains("forms.name"));
    assert!(bad("name = \"jpeg85\"", "name = \"int8-tensor\"").contains("forms"));
    let text = CONFIG.replace("EDGE_FORMS", r#"["original"]"#);
    assert!(Config::from_toml(&text).unwrap_err().to_string().contains("targets.forms"));
}

/// A split: the device runs the head (here 40 ms), sends 9.4 KB, and the edge runs only the
/// tail, `edge_share` of its whole-model compute. The edge's compute estimate stays the whole
/// model's: a split's answer teaches it the tail's time divided by the share.
#[test]
fn a_split_is_priced_with_the_tails_share_of_the_edge_compute() {
    let split = |share: f64| {
        let text = CONFIG.replace("EDGE_FORMS", r#"["split@66"]"#)
            + &format!("\n[[forms]]\nmodel = \"efficientnet-lite0\"\nname = \"split@66\"\nup_bytes = 9500\nencode_ms = 40.0\nedge_share = {share}\n");
        Decider::new(&Config::from_toml(&text).unwrap()).unwrap()
    };
    let (mut whole, mut tail) = (split(1.0), split(0.3));
    let now = learn(&mut whole, 2.0, 112_842);
    let now_t = learn(&mut tail, 2.0, 112_842);
    assert_eq!(now, now_t);
    let mean = |d: &mut Decider| {
        let dec = d.decide(&request(true), now);
        let p = dec.reason.best_edge.unwrap();
        assert_eq!(p.form_id(), FormId(3), "the split, the third form: {dec:?}");
        p.mean_ms
    };
    let (m_whole, m_tail) = (mean(&mut whole), mean(&mut tail));
    // 50 ms of edge compute against 15: 35 ms less.
    assert!((m_whole - m_tail - 35.0).abs() < 1.0, "{m_whole} vs {m_tail}");
    // On this 2 Mbit/s link the split (40 + 38 + 20 + 15 ms) beats local's 150 ms.
    assert!(matches!(tail.decide(&request(true), now).choice, ferry_decide::Choice::Offload(EDGE)));

    // Answers to splits report the tail's 15 ms: the whole-model estimate stays at 50, so the
    // original's prediction does not move.
    let original_before = {
        let mut d = split(0.3);
        let n = learn(&mut d, 2.0, 112_842);
        d.decide(&request(false), n).reason.best_edge.unwrap().mean_ms
    };
    let mut t = now;
    for _ in 0..10 {
        tail.observe(Observation::OffloadSent { target: EDGE, up_bytes: 9_500 }, t);
        let total = 20_000.0 + 9_500.0 * 8.0 / 2.0 + 15_000.0;
        t += total as u64;
        tail.observe(
            Observation::OffloadAnswered {
                target: EDGE,
                model: IMAGE,
                form: FormId(3),
                up_bytes: 9_500,
                down_bytes: 200,
                total_us: total as u32,
                edge_queue_us: 0,
                edge_compute_us: 15_000,
            },
            t,
        );
        t += 500_000;
    }
    let original_after = tail.decide(&request(false), t).reason.best_edge.unwrap().mean_ms;
    assert!((original_after - original_before).abs() < 3.0, "{original_before} -> {original_after}");
}
