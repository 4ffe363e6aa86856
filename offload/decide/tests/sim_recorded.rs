//! Recorded links in the simulator: the shared recordings parse and replay, a Mahimahi file
//! made here parses to the capacity it encodes and loops as `mm-link` does, a replay at
//! constant capacity is the same world as that link described as a phase, and bad input is a
//! typed error naming the file and line.

use std::path::{Path, PathBuf};

use ferry_decide::sim::recorded::{self, Format, LineError, RecordedError, MAX_BYTES, MAX_LINES};
use ferry_decide::sim::{self, BoardProfile, Stats, TraceError, TraceSpec};

const STEP: u64 = sim::trace::STEP_US;

fn recorded_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/traces/recorded")
}

/// A fresh directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sim_recorded").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn key(rows: &[Stats]) -> Vec<String> {
    rows.iter().map(|s| format!("{s:?}")).collect()
}

/// A trace's top and its device and edge phases, with the link left to `link`.
fn trace_text(name: &str, link: &str) -> String {
    format!(
        r#"
name = "{name}"
description = "test"
seed = 21
duration_s = 60
fps = 5.0
deadline_ms = 150
digits_share = 0.2
jitter = 0.0

{link}

[[device]]
weight = 1.0
secs = [5.0, 15.0]
cpu_load = [0.0, 1.0]
temp_c = [50.0, 90.0]

[[edge]]
weight = 0.7
secs = [5.0, 10.0]
queue_ms = [0.0, 5.0]

[[edge]]
weight = 0.3
secs = [2.0, 5.0]
queue_ms = [50.0, 200.0]
busy = 0.3
"#
    )
}

#[test]
fn each_shared_recording_parses_to_its_documented_length_and_mean() {
    // The lengths and means of tests/traces/recorded/README.md (its means are per line; these
    // are over time, which differs a little where steps are uneven).
    for (file, secs, mean, first) in [
        ("hsdpa-bus.ljansbakken-oslo-2010-09-28_1407.log", 462.0, 2.8, 2.29085714286),
        ("hsdpa-ferry.nesoddtangen-oslo-2010-09-20_1542.log", 970.0, 1.7, 2.92859724951),
        ("fcc-trace_866_amazon.log", 1840.0, 2.6, 1.41832),
    ] {
        let rec = recorded::load(&recorded_dir().join(file), None).unwrap_or_else(|e| panic!("{e}"));
        let got_secs = rec.duration_us() as f64 / 1e6;
        // The last value holds for one more step (≤ 5 s) past the last timestamp.
        assert!((secs..=secs + 6.0).contains(&got_secs), "{file}: {got_secs} s");
        assert!((rec.mean_mbps() - mean).abs() < 0.1, "{file}: mean {} Mbit/s", rec.mean_mbps());
        // The first 100 ms lie inside the first line's step: its value, exactly.
        assert_eq!(rec.sample(STEP, 1), vec![first], "{file}");
    }
}

#[test]
fn a_cooked_value_holds_until_the_next_timestamp_and_a_short_log_loops() {
    let dir = scratch("cooked_loop");
    // Steps of 1 s and 0.5 s; the last value holds as long as the step before it (0.5 s), so
    // the log lasts 2 s and then starts again.
    let path = write(&dir, "l.log", "0\t1.0\n1.0\t2.0\n1.5\t4.0\n");
    let rec = recorded::load(&path, None).unwrap();
    assert_eq!(rec.duration_us(), 2_000_000);
    let s = rec.sample(STEP, 40);
    let pass = [vec![1.0; 10], vec![2.0; 5], vec![4.0; 5]].concat();
    assert_eq!(s, [pass.clone(), pass].concat());
    // A step that straddles a change gets the mean over it.
    let odd = write(&dir, "odd.log", "0 1.0\n0.05 3.0\n1 3.0\n");
    assert_eq!(recorded::load(&odd, None).unwrap().sample(STEP, 2), vec![2.0, 3.0]);
}

#[test]
fn a_mahimahi_file_with_one_opportunity_every_millisecond_is_12_mbit_s_and_loops() {
    let dir = scratch("mahimahi_constant");
    let lines: String = (1..=1000).map(|ms| format!("{ms}\n")).collect();
    for path in [write(&dir, "every-ms.up", &lines), write(&dir, "one-line.down", "1\n")] {
        let rec = recorded::load(&path, None).unwrap();
        let s = rec.sample(STEP, 100); // 10 s: ten passes of the 1 s file, a thousand of the 1 ms one
        // `mm-link` delivers at 1, 2, … ms: the first step misses ms 0 (99 packets); from then
        // on 100 packets × 1500 B × 8 bit per 0.1 s = 12 Mbit/s, across every loop.
        assert_eq!(s[0], 11.88, "{}", path.display());
        assert!(s[1..].iter().all(|&x| x == 12.0), "{}: {s:?}", path.display());
        assert_eq!(rec.mean_mbps(), 12.0);
    }
}

#[test]
fn a_mahimahi_file_loops_at_its_last_timestamp_with_repeats_as_several_packets() {
    let dir = scratch("mahimahi_loop");
    // Two packets in each of ms 0..99, then nothing until the last timestamp, 250 ms (one
    // packet), which is also the period: pass k delivers at t + 250·k.
    let mut text: String = (0..100).map(|ms| format!("{ms}\n{ms}\n")).collect();
    text.push_str("250\n");
    let rec = recorded::load(&write(&dir, "pattern.up", &text), None).unwrap();
    let s = rec.sample(STEP, 11);
    // ms 250: pass 0's last packet and pass 1's two at 0 ms (3 = 36 Mbit/s over 1 ms), then
    // ms 251..299 at 24 Mbit/s: (36 + 49·24)/100 = 12.12. From step 1 on, five steps repeat.
    assert_eq!(s, vec![24.0, 0.0, 12.12, 12.0, 0.0, 24.12, 0.0, 12.12, 12.0, 0.0, 24.12]);
}

#[test]
fn a_replay_at_constant_capacity_equals_the_same_link_described_as_a_phase() {
    let dir = scratch("constant_equals_phase");
    let forty: String = (0..=60).map(|s| format!("{s}\t40.0\n")).collect();
    write(&dir, "forty.log", &forty);
    let twenty: String = (0..=60).map(|s| format!("{s}\t20.0\n")).collect();
    write(&dir, "twenty.log", &twenty);
    let phase = trace_text(
        "phase",
        "[[link]]\nweight = 1.0\nsecs = [60.0, 60.0]\nup_mbps = [40.0, 40.0]\ndown_mbps = [40.0, 40.0]\nrtt_ms = [5.0, 5.0]",
    );
    let phase = TraceSpec::from_toml(&phase).unwrap();
    let replays = [
        "[recorded]\nup = \"forty.log\"\nrtt_ms = 5.0",
        "[recorded]\nup = \"forty.log\"\nrtt_ms = [5.0, 5.0]\nrtt_secs = [5.0, 10.0]",
        "[recorded]\nup = \"twenty.log\"\nscale = 2.0\nrtt_ms = 5",
    ];
    let want = sim::table(&phase).unwrap();
    for link in replays {
        let replay = TraceSpec::from_toml_in(&trace_text("phase", link), &dir).unwrap();
        assert_eq!(replay.timeline().samples, phase.timeline().samples, "{link}");
        assert_eq!(key(&sim::table(&replay).unwrap()), key(&want), "{link}");
    }
    // Not vacuous: the world has offloads, local runs, and a busy edge in it.
    assert!(want.iter().any(|s| s.offload_share > 0.1) && want.iter().any(|s| s.fallbacks > 0), "{want:?}");
}

#[test]
fn a_recorded_trace_takes_its_downlink_from_down_or_down_mbps_and_its_rtt_per_spell() {
    let dir = scratch("down_and_rtt");
    write(&dir, "up.log", "0 2.0\n1 2.0\n");
    write(&dir, "down.log", "0 7.0\n1 7.0\n");
    let load = |link: &str| TraceSpec::from_toml_in(&trace_text("t", link), &dir).unwrap().timeline().samples;
    let same = load("[recorded]\nup = \"up.log\"\nrtt_ms = 50");
    assert!(same.iter().all(|s| s.up_mbps == 2.0 && s.down_mbps == 2.0 && s.rtt_ms == 50.0));
    let own = load("[recorded]\nup = \"up.log\"\ndown = \"down.log\"\nscale = 0.5\nrtt_ms = 50");
    assert!(own.iter().all(|s| s.up_mbps == 1.0 && s.down_mbps == 3.5));
    let fixed = load("[recorded]\nup = \"up.log\"\ndown_mbps = 40.0\nscale = 0.5\nrtt_ms = 50");
    assert!(fixed.iter().all(|s| s.up_mbps == 1.0 && s.down_mbps == 40.0));
    // 10 s spells over 60 s (601 steps): seven RTT levels, each in range and held per spell.
    let spells = load("[recorded]\nup = \"up.log\"\nrtt_ms = [80.0, 120.0]\nrtt_secs = [10.0, 10.0]");
    let levels: Vec<f64> = spells.chunks(100).map(|c| c[0].rtt_ms).collect();
    assert_eq!(levels.len(), 7);
    for (c, &level) in spells.chunks(100).zip(&levels) {
        assert!((80.0..=120.0).contains(&level) && c.iter().all(|s| s.rtt_ms == level), "{level}");
    }
    assert!(levels.windows(2).all(|w| w[0] != w[1]), "{levels:?}");
}

#[test]
fn a_recorded_trace_replays_its_recording_on_the_timeline() {
    let path = recorded_dir().join("hsdpa-bus.toml");
    let spec = TraceSpec::load(&path).unwrap();
    let rec = recorded::load(&recorded_dir().join("hsdpa-bus.ljansbakken-oslo-2010-09-28_1407.log"), None).unwrap();
    let samples = spec.timeline().samples;
    let want = rec.sample(STEP, samples.len());
    for (s, w) in samples.iter().zip(&want) {
        assert_eq!((s.up_mbps, s.down_mbps), (w.max(0.05), w.max(0.05)));
        assert!((80.0 * 0.5..=120.0 * 2.0).contains(&s.rtt_ms), "{}", s.rtt_ms);
    }
}

#[test]
fn every_recorded_trace_replays_with_every_request_answered_exactly_once() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(recorded_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    for path in files {
        let spec = TraceSpec::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(spec.recorded().is_some() && spec.link.is_empty(), "{}", path.display());
        assert_eq!(Some(spec.name.as_str()), path.file_stem().and_then(|s| s.to_str()));
        assert!(!spec.description.trim().is_empty());
        // On the legacy-constants board, whose 4× slower runs still drain: on the measured
        // default (vm-dev) at 4× the local queue outgrows the run and always-local leaves
        // requests unanswered (tests/traces/boards/README.md).
        let legacy = BoardProfile::load(&recorded_dir().join("../boards/legacy-constants.toml")).unwrap();
        for slowdown in [1.0, 4.0] {
            let mut spec = spec.clone();
            spec.board = legacy.clone().into();
            spec.board_slowdown = slowdown;
            let rows = sim::table(&spec).unwrap();
            assert_eq!(key(&rows), key(&sim::table(&spec).unwrap()), "{} is deterministic", path.display());
            // Issue 5's 10 % bar is not asserted here: on hsdpa-bus adaptive comes out at +11 %
            // (see tests/traces/README.md). Printed for `--nocapture`.
            let (oracle, adaptive) = (&rows[0], &rows[1]);
            eprintln!(
                "{} {slowdown}×: adaptive {:.1} ms vs oracle {:.1} ms ({:+.1} %), offloaded {:.2} %, fallbacks {}, probes {}",
                spec.name,
                adaptive.mean_ms,
                oracle.mean_ms,
                100.0 * (adaptive.mean_ms / oracle.mean_ms - 1.0),
                100.0 * adaptive.offload_share,
                adaptive.fallbacks,
                adaptive.probes
            );
            for s in &rows {
                let at = format!("{} {}× {}", path.display(), slowdown, s.policy);
                // The only answers without a result are the shed ones (deadline_exceeded, busy).
                assert_eq!((s.answers, s.duplicate_answers, s.failed), (s.requests, 0, s.shed), "{at}");
                assert!(s.requests > 2000, "{at}");
            }
        }
    }
}

/// The error for `text` parsed as `format`.
fn parse_err(text: &str, format: Format) -> RecordedError {
    match recorded::parse(text, format, Path::new("bad.trace")) {
        Err(e) => e,
        Ok(r) => panic!("{text:?} parsed: {r:?}"),
    }
}

fn line_err(text: &str, format: Format) -> (usize, LineError) {
    match parse_err(text, format) {
        RecordedError::Line { line, kind, .. } => (line, kind),
        e => panic!("{text:?}: {e}"),
    }
}

#[test]
fn a_bad_line_is_a_typed_error_naming_the_file_and_the_line() {
    use Format::{Cooked, Mahimahi};
    use LineError as L;
    let e = parse_err("0 1.0\nabc 2.0\n", Cooked);
    assert_eq!(e.to_string(), "bad.trace:2: `abc` is not a number");
    assert_eq!(line_err("0 1.0\n1 fast\n", Cooked), (2, L::NotANumber("fast".into())));
    assert_eq!(line_err("0 NaN\n", Cooked), (1, L::NotANumber("NaN".into())));
    assert_eq!(line_err("0 1.0 3\n", Cooked), (1, L::Fields(3)));
    assert_eq!(line_err("0\n", Cooked), (1, L::Fields(1)));
    assert_eq!(line_err("-1 2.0\n", Cooked), (1, L::NegativeTime("-1".into())));
    assert_eq!(line_err("0 -2.0\n", Cooked), (1, L::NegativeRate("-2.0".into())));
    assert_eq!(line_err("0 1\n2 1\n\n1 1\n", Cooked), (4, L::Decreasing { prev: "2".into(), this: "1".into() }));
    assert_eq!(line_err("0 1\n1 1\n1 2\n", Cooked), (3, L::Repeated("1".into())));
    assert_eq!(line_err("1e9 1\n", Cooked), (1, L::TimeTooLarge("1e9".into())));
    assert_eq!(line_err("1\n2\nx\n", Mahimahi), (3, L::NotAnInteger("x".into())));
    assert_eq!(line_err("1\n1.5\n", Mahimahi), (2, L::NotAnInteger("1.5".into())));
    assert_eq!(line_err("-5\n", Mahimahi), (1, L::NegativeTime("-5".into())));
    assert_eq!(line_err("5\n5\n3\n", Mahimahi), (3, L::Decreasing { prev: "5".into(), this: "3".into() }));
    assert_eq!(line_err("99999999999999999999999\n", Mahimahi).1, L::TimeTooLarge("99999999999999999999999".into()));
    assert_eq!(line_err("604800001\n", Mahimahi).1, L::TimeTooLarge("604800001".into()));
    // A megabyte of garbage on one line is quoted shortened.
    let (_, L::NotANumber(quoted)) = line_err(&format!("0 1\n{} 1\n", "x".repeat(1 << 20)), Cooked) else { panic!() };
    assert_eq!(quoted.len(), 40);
}

#[test]
fn an_empty_zero_length_oversized_or_unknown_file_is_a_typed_error() {
    for format in [Format::Cooked, Format::Mahimahi] {
        assert!(matches!(parse_err("", format), RecordedError::Empty { .. }));
        assert!(matches!(parse_err("\n  \n\n", format), RecordedError::Empty { .. }));
    }
    assert!(matches!(parse_err("0\n0\n", Format::Mahimahi), RecordedError::ZeroLength { .. }));
    let many = "0\n".repeat(MAX_LINES + 1);
    assert!(matches!(parse_err(&many, Format::Mahimahi), RecordedError::TooManyLines { .. }));
    let dir = scratch("bad_files");
    let big = dir.join("big.up");
    std::fs::write(&big, vec![b'1'; MAX_BYTES as usize + 1]).unwrap();
    let e = recorded::load(&big, None).unwrap_err();
    assert!(matches!(e, RecordedError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("big.up"), "{e}");
    let missing = recorded::load(&dir.join("missing.log"), None).unwrap_err();
    assert!(matches!(missing, RecordedError::Io { .. }), "{missing}");
    let binary = write(&dir, "bin.log", "");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    assert!(matches!(recorded::load(&binary, None), Err(RecordedError::NotText { .. })));
    let csv = write(&dir, "x.csv", "0 1\n");
    assert!(matches!(recorded::load(&csv, None), Err(RecordedError::UnknownFormat { .. })));
    // … unless the format is named.
    assert!(recorded::load(&csv, Some(Format::Cooked)).is_ok());
}

#[test]
fn the_recorded_table_refuses_what_it_cannot_honour() {
    let dir = scratch("toml_errors");
    write(&dir, "r.log", "0 1.0\n");
    let parse = |link: &str| TraceSpec::from_toml_in(&trace_text("t", link), &dir);
    let phase = "[[link]]\nweight = 1.0\nsecs = [1.0, 1.0]\nup_mbps = [1.0, 1.0]\ndown_mbps = [1.0, 1.0]\nrtt_ms = [1.0, 1.0]";
    // Both a recording and phases: which one is the link?
    let both = parse(&format!("{phase}\n\n[recorded]\nup = \"r.log\"\nrtt_ms = 10"));
    assert!(matches!(both, Err(TraceError::Invalid(m)) if m.contains("not both")), "{both:?}");
    // The simulator has no packet loss: a `loss` key would be accepted and do nothing.
    let loss = parse("[recorded]\nup = \"r.log\"\nrtt_ms = 10\nloss = 0.01");
    assert!(matches!(&loss, Err(TraceError::Toml(m)) if m.contains("loss")), "{loss:?}");
    // RTT is not in the recording and has no silent default.
    assert!(matches!(parse("[recorded]\nup = \"r.log\""), Err(TraceError::Toml(_))));
    for (link, bad_key) in [
        ("[recorded]\nup = \"r.log\"\nrtt_ms = 10\ndown = \"r.log\"\ndown_mbps = 5.0", "down_mbps"),
        ("[recorded]\nup = \"r.log\"\nrtt_ms = 10\nscale = 0.0", "scale"),
        ("[recorded]\nup = \"r.log\"\nrtt_ms = [50.0, 10.0]", "rtt_ms"),
        ("[recorded]\nup = \"r.log\"\nrtt_ms = 10\nrtt_secs = [0.0, 1.0]", "rtt_secs"),
    ] {
        let e = parse(link);
        assert!(matches!(e, Err(TraceError::Recorded { key, .. }) if key == bad_key), "{link}: {e:?}");
    }
    let format = parse("[recorded]\nup = \"r.log\"\nrtt_ms = 10\nformat = \"csv\"");
    assert!(matches!(format, Err(TraceError::Toml(_))), "{format:?}");
    // Named explicitly, the format wins over the extension.
    let mm = parse("[recorded]\nup = \"r.log\"\nrtt_ms = 10\nformat = \"mahimahi\"");
    assert!(matches!(mm, Err(TraceError::File(RecordedError::Line { line: 1, .. }))), "{mm:?}");
    // A missing recording names its path; relative paths are relative to the trace's directory.
    let missing = parse("[recorded]\nup = \"nope.log\"\nrtt_ms = 10").unwrap_err();
    assert!(matches!(missing, TraceError::File(RecordedError::Io { .. })) && missing.to_string().contains("nope.log"));
    // Text alone has no directory to read the recording from.
    let text = trace_text("t", "[recorded]\nup = \"r.log\"\nrtt_ms = 10");
    assert!(matches!(TraceSpec::from_toml(&text), Err(TraceError::NoDir)));
    let file = write(&dir, "t.toml", &text);
    assert!(TraceSpec::load(&file).is_ok());
    // Neither phases nor a recording.
    assert!(matches!(parse(""), Err(TraceError::Invalid(_))));
}
