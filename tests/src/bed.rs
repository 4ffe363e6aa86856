//! The netns testbed with its processes running: a real Mosquitto (TLS 1.3, client
//! certificates, the shipped ACL) and a real `ferry-edge` in the edge namespace, the agent
//! (`ferry run`, adaptive policy) in the device namespace, the link between them shaped by
//! `tbf`. Used by `tests/testbed.rs` and `tests/idle_probe.rs`. Root only.
//!
//! The device is emulated as a Pi-class board: the agent's `emulate_slowdown = 4` stretches its
//! local compute 4× (this VM is about that much faster than a Raspberry Pi 4), so that a fast
//! link makes offloading worth it, as it is on a real board. The edge runs at this machine's
//! speed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_agent::client::{self, Endpoint};

use crate::harness::{make_pki, program, render_broker_config, repo_root, shared_tempdir, workspace_binary, Edge, EdgeOptions, Proc};
use crate::netns::{Side, Testbed, EDGE_IP};

/// The broker's port on the edge side.
pub const PORT: u16 = 8883;
/// The model the testbed's device runs.
pub const MODEL: &str = "efficientnet-lite0";

/// How to start the bed.
#[derive(Debug, Clone)]
pub struct BedOptions {
    /// Namespace tag (see [`Testbed::create_tagged`]).
    pub tag: &'static str,
    /// The link's rate both ways at start, kbit/s.
    pub kbit: u32,
    /// Whether the agent publishes telemetry (to a spool in its own work dir).
    pub telemetry: bool,
    /// The agent's `RUST_LOG`.
    pub log: &'static str,
}

impl Default for BedOptions {
    fn default() -> Self {
        BedOptions { tag: "", kbit: 100_000, telemetry: true, log: "info,ferry_agent=debug" }
    }
}

/// A started testbed. Dropped in field order: the agent, the edge and the broker are killed
/// before the namespaces go.
pub struct Bed {
    /// The agent.
    pub agent: Proc,
    /// Its API.
    pub api: Endpoint,
    /// The edge server.
    pub edge: Edge,
    /// The broker.
    pub broker: Proc,
    _work: tempfile::TempDir,
    _pki: tempfile::TempDir,
    /// The namespaces and the link.
    pub tb: Testbed,
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn write_configs(dir: &Path, certs: &Path, telemetry: bool) -> PathBuf {
    let board = dir.join("board.toml");
    std::fs::write(
        &board,
        "[board]\nname = \"testbed-device\"\ndescription = \"the testbed's device namespace\"\n\
         [[sensors]]\nname = \"cpu\"\ndriver = \"cpu\"\ninterval_ms = 200\n\
         [thermal]\nzone = \"testbed\"\nthrottle_point_c = 85.0\nset_point_c = 78.0\n\
         [energy]\nradio_nj_per_byte = 5.0\nidle_mw = 2000.0\n\
         [[models]]\nname = \"efficientnet-lite0\"\nprecisions = [\"fp32\", \"int8\"]\n\
         [[targets]]\nkind = \"local\"\nname = \"local-fp32\"\nmodel = \"efficientnet-lite0\"\nprecision = \"fp32\"\n\
         [[targets]]\nkind = \"local\"\nname = \"local-int8\"\nmodel = \"efficientnet-lite0\"\nprecision = \"int8\"\npriority = 1\n\
         [[targets]]\nkind = \"edge\"\nname = \"edge\"\nendpoint = \"mqtts://10.201.0.2:8883\"\npriority = 2\n",
    )
    .expect("write board.toml");
    let telemetry = if telemetry {
        format!("[telemetry]\nspool_dir = \"{}\"\n", dir.join("spool").display())
    } else {
        "[telemetry]\nenabled = false\n".to_string()
    };
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 2\nemulate_slowdown = 4.0\n\
             [api]\nunix = \"{}\"\n\
             [mqtt]\nbroker = \"mqtts://{EDGE_IP}:{PORT}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             [decide]\npolicy = \"adaptive\"\n{telemetry}",
            board.display(),
            repo_root().join("models").display(),
            dir.join("api.sock").display(),
            certs.join("ca.crt").display(),
            certs.join("dev-1.crt").display(),
            certs.join("dev-1.key").display(),
        ),
    )
    .expect("write agent.toml");
    config
}

impl Bed {
    /// Builds the namespaces, shapes the link, starts the broker, the edge and the agent, and
    /// waits until the agent is connected and its API is open.
    pub fn start(options: &BedOptions) -> Bed {
        assert!(is_root(), "the testbed needs root for network namespaces and tc (CI runs as root); run it as root");
        let tb = Testbed::create_tagged(options.tag).unwrap_or_else(|e| panic!("cannot build the testbed: {e}"));
        tb.shape(Side::Device, options.kbit).expect("shape uplink");
        tb.shape(Side::Edge, options.kbit).expect("shape downlink");

        // A PKI whose broker certificate names the edge side's address.
        let pki = shared_tempdir();
        let certs = pki.path().join("certs");
        make_pki(&certs, &["--broker-san", &format!("IP:{EDGE_IP}")], &["dev-1"]);

        // The broker, from the shipped template and ACL, listening on the edge side.
        let conf = render_broker_config(pki.path(), &certs, PORT, EDGE_IP);
        let mut mosquitto = tb.command(Side::Edge, program("mosquitto"));
        mosquitto.arg("-c").arg(&conf);
        let broker = Proc::spawn(mosquitto, "mosquitto");

        // The edge server beside it (its own connection to the broker stays inside the edge
        // namespace; only the device's traffic crosses the shaped link).
        let url = format!("mqtts://{EDGE_IP}:{PORT}");
        let edge_options = EdgeOptions { models: vec![MODEL], workers: 1, ..EdgeOptions::default() };
        let edge = Edge::start_with(&url, &certs, &edge_options, |bin| tb.command(Side::Edge, bin), &broker.stderr);

        // The agent on the device side.
        let work = tempfile::tempdir().expect("tempdir");
        let config = write_configs(work.path(), &certs, options.telemetry);
        let mut cmd = tb.command(Side::Device, workspace_binary("ferry"));
        cmd.args(["run", "--config"]).arg(&config).env("RUST_LOG", options.log);
        let api = Endpoint::Unix(work.path().join("api.sock"));
        let mut agent = Proc::spawn(cmd, "ferry");
        let until = Instant::now() + Duration::from_secs(120);
        while agent.stderr.count(&["edge link ready"]) == 0 {
            assert!(
                Instant::now() < until && agent.is_running(),
                "the agent never connected to the broker across the link:\n{}",
                agent.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let ready = Instant::now() + Duration::from_secs(30);
        while !work.path().join("api.sock").exists() {
            assert!(Instant::now() < ready, "the agent never opened its API:\n{}", agent.stderr.text());
            std::thread::sleep(Duration::from_millis(100));
        }
        Bed { agent, api, edge, broker, _work: work, _pki: pki, tb }
    }

    /// The agent's `/v1/status`.
    pub fn status(&self) -> serde_json::Value {
        client::status(&self.api).unwrap_or_else(|e| panic!("status: {e}"))
    }

    /// Stops the edge (SIGTERM) and returns its final counters' log line.
    pub fn stop_edge(&mut self) -> String {
        self.edge.proc.terminate();
        let log = self.edge.proc.stderr.text();
        log.lines().find(|l| l.contains("stopped") && l.contains("StatsSnapshot")).map(str::to_string).unwrap_or_else(|| panic!("the edge logged no final counters:\n{log}"))
    }
}

/// One counter from an edge's `StatsSnapshot { received: 5, … }` log line.
pub fn snapshot_field(line: &str, field: &str) -> Option<u64> {
    let at = line.find(&format!("{field}: "))? + field.len() + 2;
    line[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}
