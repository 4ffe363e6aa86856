//! The faults, each on a bed of its own ([`Bed::start`]) under the steady load: how each is
//! injected, when it starts and ends, and what shows it really happened.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_protocol::encode_request;

use super::figures::{classify, Figures, Kind, Window};
use super::load::{Image, Load, LoadConfig, Record};
use crate::bed::{Bed, BedOptions, MODEL};
use crate::fleet;
use crate::harness::{program, Proc};
use crate::netns::{Side, EDGE_IP};

/// The load every scenario runs under: one request a second, alternating between a 80 KB and
/// a 38 KB JPEG, each with a 3 s deadline. Local inference on the emulated board takes
/// ~0.4–0.7 s here (more with the machine loaded): at one a second local alone can carry the
/// load while the edge is away, so the deadline misses show the fallback's cost and not a
/// queue that local could never drain (at two a second it could not, and every scenario
/// ended in a backlog of 504s).
pub const LOAD: LoadConfig = LoadConfig {
    period: Duration::from_millis(1000),
    deadline_ms: 3000,
    // The agent answers by the deadline plus its grace, or within `[api] drain_ms` when it
    // stops; 40 s without an answer is no answer.
    timeout: Duration::from_secs(40),
};

/// Steady load before the fault, at least (then until the edge has answered once), s.
pub const WARM_S: u64 = 4;
/// The offload path must be back within this long of the fault's end, s. Generous: after a
/// fault the agent reconnects with a back-off capped at `reconnect_max_ms` (10 s by default),
/// a tripped breaker lets a probe through within its interval (≤ 2 s), and a restarted agent
/// first loads its models and measures them (a few seconds here, several times that on a
/// loaded machine). After a 30 s silent cut of the link, the agent's MQTT connection (its
/// keep-alive is 30 s, so no ping went unanswered yet) is still open: it carries on once TCP
/// retransmits, or the broker drops it at 1.5 × the keep-alive (45 s after the cut, 15 s
/// after the restore) and the agent reconnects — up to ~19 s measured. 30 s covers these.
pub const RECOVERY_BOUND_S: u64 = 30;
/// [`RECOVERY_BOUND_S`] after the throttle, s. The agent learns that the link is fast again
/// only from a probe, and the decider spaces probes so that they take at most
/// `probe_max_share` (30 %) of the uplink as it estimates it: at 64 kbit/s (125 µs a byte) a
/// probe of 16 KiB, grown up to 8× after contradictions, keeps the uplink busy up to 16.4 s,
/// so the next probe can be up to 55 s away (22 s measured). 75 s covers that by design.
pub const THROTTLE_RECOVERY_BOUND_S: u64 = 75;
/// Steady load after the offload path is back, s.
pub const POST_S: u64 = 3;
/// The link's rate when no fault shapes it, kbit/s.
const FAST_KBIT: u32 = 100_000;
/// The throttled link, kbit/s.
pub const THROTTLE_KBIT: u32 = 64;
/// How long the link is cut, s (the figure).
pub const CUT_S: u64 = 30;

/// One fault scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Mosquitto SIGKILLed, started again 3 s later.
    BrokerRestart,
    /// `ferry-edge` SIGKILLed, started again 5 s later.
    EdgeKill,
    /// The edge side of the veth set down for [`CUT_S`], then up.
    LinkCut,
    /// Both directions shaped to [`THROTTLE_KBIT`] for 15 s.
    Throttle,
    /// An edge with a queue of one, flooded by another device (dev-2, `mosquitto_pub`, a
    /// request every 5 ms) for 12 s: the agent's requests are answered `busy` while the one
    /// place is taken.
    EdgeBusy,
    /// The agent SIGKILLed with a request in flight, started again 2 s later.
    AgentKill,
    /// The agent SIGTERMed 30 ms into a request (`[api] drain_ms = 100`: an edge answer takes
    /// ~150–350 ms here, so the request in flight is mostly answered `503 shutting_down` when
    /// the drain ends, sometimes with its result within it), started again
    /// 2 s after it exited.
    AgentTerm,
    /// The spool's disk (a 2 MiB tmpfs) filled up for 10 s, then freed.
    SpoolFull,
}

impl Fault {
    /// Every scenario, in the order the suite runs them.
    pub const ALL: [Fault; 8] = [
        Fault::BrokerRestart,
        Fault::EdgeKill,
        Fault::LinkCut,
        Fault::Throttle,
        Fault::EdgeBusy,
        Fault::AgentKill,
        Fault::AgentTerm,
        Fault::SpoolFull,
    ];

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Fault::BrokerRestart => "broker restart",
            Fault::EdgeKill => "edge SIGKILL + restart",
            Fault::LinkCut => "link cut",
            Fault::Throttle => "link throttled",
            Fault::EdgeBusy => "edge busy",
            Fault::AgentKill => "agent SIGKILL + restart",
            Fault::AgentTerm => "agent SIGTERM + restart",
            Fault::SpoolFull => "spool disk full",
        }
    }

    /// What is done, in words.
    pub fn describe(self) -> String {
        match self {
            Fault::BrokerRestart => "mosquitto SIGKILLed, started again after 3 s".into(),
            Fault::EdgeKill => "ferry-edge SIGKILLed, started again after 5 s".into(),
            Fault::LinkCut => format!("veth down (edge side) for {CUT_S} s"),
            Fault::Throttle => format!("both directions {THROTTLE_KBIT} kbit/s for 15 s"),
            Fault::EdgeBusy => {
                "edge queue of 1 flooded by dev-2 (a request every 5 ms) for 12 s".into()
            }
            Fault::AgentKill => "agent SIGKILLed mid-request, started again after 2 s".into(),
            Fault::AgentTerm => {
                "agent SIGTERMed mid-request (drain_ms 100), started again 2 s after it exited"
                    .into()
            }
            Fault::SpoolFull => "spool's 2 MiB tmpfs filled for 10 s, then freed".into(),
        }
    }

    /// How long the fault lasts in the suite, s.
    pub fn default_secs(self) -> f64 {
        match self {
            Fault::BrokerRestart => 3.0,
            Fault::EdgeKill => 5.0,
            Fault::LinkCut => CUT_S as f64,
            Fault::Throttle => 15.0,
            Fault::EdgeBusy => 12.0,
            Fault::AgentKill | Fault::AgentTerm => 2.0,
            Fault::SpoolFull => 10.0,
        }
    }

    /// How soon after its end the offload path must be back, s.
    pub fn recovery_bound_s(self) -> u64 {
        match self {
            Fault::Throttle => THROTTLE_RECOVERY_BOUND_S,
            _ => RECOVERY_BOUND_S,
        }
    }

    /// The bed it runs on.
    pub fn options(self) -> BedOptions {
        let base = BedOptions {
            tag: "f",
            kbit: FAST_KBIT,
            ..BedOptions::default()
        };
        match self {
            Fault::EdgeBusy => BedOptions {
                edge_queue: 1,
                ..base
            },
            Fault::AgentTerm => BedOptions {
                drain_ms: Some(100),
                ..base
            },
            Fault::SpoolFull => BedOptions {
                spool_tmpfs_kib: Some(2048),
                ..base
            },
            _ => base,
        }
    }
}

/// What an injection leaves for the checks after the load has stopped.
#[derive(Debug, Default)]
pub struct Injected {
    /// When it happened.
    pub window: Window,
    /// Checks that failed while injecting (the fault did not take, a process misbehaved).
    pub violations: Vec<String>,
    /// What was seen.
    pub notes: Vec<String>,
}

/// Runs one scenario on a bed of its own and returns its figures.
pub fn run(fault: Fault, images: &Arc<Vec<Image>>) -> Figures {
    let started = Instant::now();
    let mut bed = Bed::start(&fault.options());
    let t0 = Instant::now();
    let socket = bed.work_dir().join("api.sock");
    let load = Load::start(socket, MODEL, images.clone(), LOAD, t0);
    let mut early = Vec::new();
    std::thread::sleep(Duration::from_secs(WARM_S));
    if !load.wait_until(Duration::from_secs(30), |rs| {
        rs.iter().any(|r| classify(r) == Kind::Edge)
    }) {
        early.push(
            "the offload path was not in use before the fault (no edge answer in the first 34 s)"
                .to_string(),
        );
    }
    eprintln!(
        "faults: {}: {:.1} s steady, then the fault: {}",
        fault.name(),
        load.now_s(),
        fault.describe()
    );
    let mut injected = inject(fault, fault.default_secs(), &mut bed, &load);
    let end = injected.window.end_s;
    let bound = fault.recovery_bound_s();
    let left = (end + bound as f64 - load.now_s()).max(0.0);
    load.wait_until(Duration::from_secs_f64(left), |rs| {
        rs.iter()
            .any(|r| r.sent_s >= end && classify(r) == Kind::Edge)
    });
    std::thread::sleep(Duration::from_secs(POST_S));
    let records = load.finish();
    if !bed.agent.is_running() {
        injected.violations.push(format!(
            "the agent is not running at the end:\n{}",
            tail(&bed.agent.stderr.text(), 40)
        ));
    }
    let edge_line = stop_edge(&mut bed);
    let mut f = Figures::count(
        fault.name(),
        &fault.describe(),
        &records,
        images,
        std::slice::from_ref(&injected.window),
        LOAD.deadline_ms,
    );
    f.edge_counters(edge_line.as_deref());
    if fault == Fault::EdgeBusy {
        let busy = edge_line
            .as_deref()
            .and_then(|l| crate::bed::snapshot_field(l, "busy"))
            .unwrap_or(0);
        if busy == 0 {
            injected
                .violations
                .push("the flooded edge never answered busy: the fault did not happen".to_string());
        }
    }
    match f.recovery_s {
        Some(s) if s <= bound as f64 => {}
        Some(s) => injected.violations.push(format!(
            "the offload path came back {s:.1} s after the fault, later than {bound} s"
        )),
        None => injected.violations.push(format!(
            "the offload path did not come back within {bound} s of the fault's end"
        )),
    }
    early.append(&mut f.violations);
    f.violations = early;
    f.violations.extend(injected.violations);
    f.notes.extend(injected.notes);
    timeline(fault, &records, &injected.window);
    if !f.violations.is_empty() {
        eprintln!(
            "faults: {}: the agent's log:\n{}",
            fault.name(),
            tail(&bed.agent.stderr.text(), 200)
        );
    }
    eprintln!(
        "faults: {}: {} sent, {} answered ({} edge, {} local, {} fallback), {} deadline misses, {} errors, {} cut, {} lost, {} duplicated, back after {:?} s ({:.0} s with the bed)",
        f.scenario, f.sent, f.answered, f.on_edge, f.local, f.fallback, f.deadline_misses, f.errors, f.cut_by_kill, f.lost, f.duplicated,
        f.recovery_s.map(|s| (s * 10.0).round() / 10.0), started.elapsed().as_secs_f64()
    );
    f
}

/// Injects `fault` into the running bed for `secs` (how long the broker, edge or agent stays
/// down, the link cut or throttled, the edge flooded, the disk full), timing it on the load's
/// clock.
pub fn inject(fault: Fault, secs: f64, bed: &mut Bed, load: &Load) -> Injected {
    let mut out = Injected::default();
    let w = &mut out.window;
    let length = Duration::from_secs_f64(secs);
    match fault {
        Fault::BrokerRestart => {
            w.start_s = load.now_s();
            bed.kill_broker();
            std::thread::sleep(length);
            let spawned = load.now_s();
            bed.start_broker();
            w.end_s = load.now_s();
            w.edge_unreachable = Some((w.start_s + 0.2, spawned));
        }
        Fault::EdgeKill => {
            w.start_s = load.now_s();
            bed.kill_edge();
            std::thread::sleep(length);
            let spawned = load.now_s();
            bed.start_edge();
            w.end_s = load.now_s();
            w.edge_unreachable = Some((w.start_s + 0.2, spawned));
        }
        Fault::LinkCut => {
            w.start_s = load.now_s();
            bed.tb
                .set_link(Side::Edge, false)
                .unwrap_or_else(|e| panic!("link down: {e}"));
            std::thread::sleep(length);
            let restored = load.now_s();
            bed.tb
                .set_link(Side::Edge, true)
                .unwrap_or_else(|e| panic!("link up: {e}"));
            w.end_s = load.now_s();
            w.edge_unreachable = Some((w.start_s + 0.2, restored));
        }
        Fault::Throttle => {
            w.start_s = load.now_s();
            for side in [Side::Device, Side::Edge] {
                bed.tb
                    .shape(side, THROTTLE_KBIT)
                    .unwrap_or_else(|e| panic!("throttle: {e}"));
            }
            std::thread::sleep(length);
            for side in [Side::Device, Side::Edge] {
                bed.tb
                    .shape(side, FAST_KBIT)
                    .unwrap_or_else(|e| panic!("restore: {e}"));
            }
            w.end_s = load.now_s();
        }
        Fault::EdgeBusy => {
            let mut flooder = flood(bed);
            w.start_s = load.now_s();
            std::thread::sleep(length);
            if !flooder.is_running() {
                out.violations.push(format!(
                    "the flooding device stopped early:\n{}",
                    flooder.stderr.text()
                ));
            }
            flooder.kill();
            w.end_s = load.now_s();
        }
        Fault::AgentKill => {
            if !load.wait_mid_request(Duration::from_secs(5), Duration::from_millis(30)) {
                out.violations.push(
                    "no request was in flight within 5 s to kill the agent under".to_string(),
                );
            }
            w.in_flight_at_signal = Some(load.in_flight());
            w.start_s = load.now_s();
            w.kill_s = Some(w.start_s);
            bed.kill_agent();
            std::thread::sleep(length);
            w.end_s = load.now_s();
            bed.start_agent();
            w.agent_down = Some((w.start_s, load.now_s()));
        }
        Fault::AgentTerm => {
            if !load.wait_mid_request(Duration::from_secs(5), Duration::from_millis(30)) {
                out.violations.push(
                    "no request was in flight within 5 s to stop the agent under".to_string(),
                );
            }
            w.in_flight_at_signal = Some(load.in_flight());
            w.start_s = load.now_s();
            let stopped = bed.terminate_agent(Duration::from_secs(10));
            let stop_s = load.now_s() - w.start_s;
            if !stopped {
                out.violations.push(format!(
                    "the agent did not exit within 10 s of SIGTERM:\n{}",
                    tail(&bed.agent.stderr.text(), 40)
                ));
            }
            out.notes
                .push(format!("exited {stop_s:.2} s after SIGTERM"));
            std::thread::sleep(length);
            w.end_s = load.now_s();
            bed.start_agent();
            w.agent_down = Some((w.start_s, load.now_s()));
        }
        Fault::SpoolFull => {
            let spool = bed.work_dir().join("spool");
            let warnings = |bed: &Bed| bed.agent.stderr.count(&["not spooled"]);
            let before = warnings(bed);
            w.start_s = load.now_s();
            let filled = fill(&spool.join("fill"));
            out.notes
                .push(format!("{} KiB written to fill the disk", filled / 1024));
            std::thread::sleep(length);
            let during = warnings(bed) - before;
            if during == 0 {
                out.violations.push("no telemetry record failed to spool while the disk was full: the fault did not happen".to_string());
            }
            let _ = std::fs::remove_file(spool.join("fill"));
            w.end_s = load.now_s();
            // Freed, the spool takes records again: no failure from 2 s after the end on.
            std::thread::sleep(Duration::from_secs(2));
            let settled = warnings(bed);
            std::thread::sleep(Duration::from_secs(4));
            let after = warnings(bed) - settled;
            out.notes.push(format!("{during} telemetry records not spooled while full, {after} in the 4 s from 2 s after"));
            if after > 0 {
                out.violations.push(format!(
                    "telemetry still failed to spool {after} times 2–6 s after the disk was freed"
                ));
            }
        }
    }
    out
}

/// dev-2 flooding the edge from the edge namespace: `mosquitto_pub` repeating one request
/// envelope (a 127-byte PNG for the bed's model) every 5 ms, QoS 0.
fn flood(bed: &Bed) -> Proc {
    let png = fleet::image("models/images/digit-3.png");
    let request = fleet::image_request("dev-2", 1, MODEL, &png, None, crate::harness::now_us());
    let mut envelope = Vec::new();
    encode_request(&request.as_ref(), &mut envelope).expect("encode the flood's request");
    let file = bed.work_dir().join("flood.bin");
    std::fs::write(&file, envelope).expect("write the flood's envelope");
    let certs = bed.certs();
    let mut cmd = bed.tb.command(Side::Edge, program("mosquitto_pub"));
    cmd.args([
        "-h",
        EDGE_IP,
        "-p",
        &crate::bed::PORT.to_string(),
        "-V",
        "mqttv5",
        "-i",
        "dev-2-flood",
        "-q",
        "0",
    ])
    .arg("--cafile")
    .arg(certs.join("ca.crt"))
    .arg("--cert")
    .arg(certs.join("dev-2.crt"))
    .arg("--key")
    .arg(certs.join("dev-2.key"))
    .args([
        "-t",
        &format!("ferry/dev-2/req/{MODEL}"),
        "--repeat",
        "100000",
        "--repeat-delay",
        "0.005",
        "-f",
    ])
    .arg(&file);
    Proc::spawn(cmd, "flood")
}

/// Writes zeros to `path` until the disk is full (bounded: 64 MiB at most); bytes written.
fn fill(path: &std::path::Path) -> usize {
    let Ok(mut file) = std::fs::File::create(path) else {
        return 0;
    };
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    for _ in 0..1024 {
        match file.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n,
        }
    }
    // The last partial page, byte-sized writes until even those fail.
    for _ in 0..4096 {
        if !matches!(file.write(&chunk[..1]), Ok(1)) {
            break;
        }
        written += 1;
    }
    let _ = file.sync_all();
    written
}

/// Stops the edge (SIGTERM) and returns its final counters' log line.
fn stop_edge(bed: &mut Bed) -> Option<String> {
    bed.edge.proc.terminate();
    bed.edge.proc.stderr.wait_eof();
    bed.edge
        .proc
        .stderr
        .all()
        .into_iter()
        .find(|l| l.contains("stopped") && l.contains("StatsSnapshot"))
}

/// Every request of the scenario, one line each (shown with `--nocapture`, or on failure).
fn timeline(fault: Fault, records: &[Record], w: &Window) {
    eprintln!(
        "faults: {}: fault {:.2}–{:.2} s",
        fault.name(),
        w.start_s,
        w.end_s
    );
    for r in records {
        let what = match classify(r) {
            Kind::Local {
                fallback: Some(why),
            } => format!("local (fallback {why})"),
            Kind::Local { fallback: None } => "local".to_string(),
            other => format!("{other:?}"),
        };
        eprintln!(
            "  #{:<3} {:>6.2} s → {:>6.2} s  {:>7.0} ms  {what}",
            r.n,
            r.sent_s,
            r.done_s,
            (r.done_s - r.sent_s) * 1e3
        );
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
