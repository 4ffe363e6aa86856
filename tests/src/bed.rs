//! The netns testbed with its processes running: a real Mosquitto (TLS 1.3, client
//! certificates, the shipped ACL) and a real `ferry-edge` in the edge namespace, the agent
//! (`ferry run`, adaptive policy) in the device namespace, the link between them shaped by
//! `tbf`. Used by `tests/testbed.rs` and `tests/idle_probe.rs`. Root only.
//!
//! The device is emulated as a Pi-class board: the agent's `emulate_slowdown = 4` stretches its
//! local compute 4× (this VM is about that much faster than a Raspberry Pi 4), so that a fast
//! link makes offloading worth it, as it is on a real board. The edge runs at this machine's
//! speed.
//!
//! The fault suite (`tests/faults.rs`, [`crate::faults`]) breaks the running bed piece by
//! piece: [`Bed::kill_broker`] and [`Bed::start_broker`], [`Bed::kill_edge`] and [`Bed::start_edge`],
//! [`Bed::kill_agent`], [`Bed::terminate_agent`] and [`Bed::start_agent`], the link through
//! [`Testbed::set_link`] and [`Testbed::shape`], and the spool's disk through a small tmpfs
//! ([`BedOptions::spool_tmpfs_kib`]).

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
    /// The agent's `[api] drain_ms`; `None`: the default (5000).
    pub drain_ms: Option<u32>,
    /// Mount a tmpfs of this many KiB on the agent's spool folder before it starts (unmounted
    /// when the bed drops), so that a test can fill the spool's disk.
    pub spool_tmpfs_kib: Option<u32>,
    /// The edge server's queue capacity.
    pub edge_queue: usize,
    /// The shaped input forms and splits the board config's edge target lists (`forms`);
    /// none: the original only. A `split@N` needs [`BedOptions::edge_splits`].
    pub edge_forms: &'static [&'static str],
    /// The agent's `[decide] policy` (`adaptive`, `always-local`, `always-offload`).
    pub policy: &'static str,
    /// Whether the edge serves split requests (`splits = true`: it cuts and loads the tails).
    pub edge_splits: bool,
}

impl Default for BedOptions {
    fn default() -> Self {
        BedOptions {
            tag: "",
            kbit: 100_000,
            telemetry: true,
            log: "info,ferry_agent=debug",
            drain_ms: None,
            spool_tmpfs_kib: None,
            edge_queue: EdgeOptions::default().queue_capacity,
            edge_forms: &[],
            policy: "adaptive",
            edge_splits: false,
        }
    }
}

/// A tmpfs mounted on a folder, unmounted on drop (lazily if something still holds it).
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `kib` KiB on `dir` (created if missing).
    pub fn mount(dir: &Path, kib: u32) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let out = Command::new(program("mount"))
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k,mode=0755"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount tmpfs on {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs { dir: dir.to_path_buf() })
    }

    /// The mounted folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new(program("umount")).arg(&self.dir).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new(program("umount")).arg("-l").arg(&self.dir).status();
        }
    }
}

/// A started testbed. Dropped in field order: the agent, the edge and the broker are killed
/// before the spool's tmpfs is unmounted and the namespaces go.
pub struct Bed {
    /// The agent.
    pub agent: Proc,
    /// Its API.
    pub api: Endpoint,
    /// The edge server.
    pub edge: Edge,
    /// The broker.
    pub broker: Proc,
    /// The tmpfs on the spool folder, if [`BedOptions::spool_tmpfs_kib`] asked for one.
    pub spool_mount: Option<Tmpfs>,
    broker_conf: PathBuf,
    agent_config: PathBuf,
    edge_options: EdgeOptions,
    options: BedOptions,
    work: tempfile::TempDir,
    pki: tempfile::TempDir,
    /// The namespaces and the link.
    pub tb: Testbed,
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// The agent's config (and its board config) for the bed's options, written into `dir`.
fn write_configs(dir: &Path, certs: &Path, options: &BedOptions) -> PathBuf {
    let BedOptions { telemetry, drain_ms, edge_forms, policy, .. } = *options;
    let board = dir.join("board.toml");
    let forms: Vec<String> = edge_forms.iter().map(|f| format!("\"{f}\"")).collect();
    std::fs::write(
        &board,
        "[board]\nname = \"testbed-device\"\ndescription = \"the testbed's device namespace\"\n\
         [[sensors]]\nname = \"cpu\"\ndriver = \"cpu\"\ninterval_ms = 200\n\
         [thermal]\nzone = \"testbed\"\nthrottle_point_c = 85.0\nset_point_c = 78.0\n\
         [energy]\nradio_nj_per_byte = 5.0\nidle_mw = 2000.0\n\
         [[models]]\nname = \"efficientnet-lite0\"\nprecisions = [\"fp32\", \"int8\"]\n\
         [[targets]]\nkind = \"local\"\nname = \"local-fp32\"\nmodel = \"efficientnet-lite0\"\nprecision = \"fp32\"\n\
         [[targets]]\nkind = \"local\"\nname = \"local-int8\"\nmodel = \"efficientnet-lite0\"\nprecision = \"int8\"\npriority = 1\n\
         [[targets]]\nkind = \"edge\"\nname = \"edge\"\nendpoint = \"mqtts://10.201.0.2:8883\"\npriority = 2\n"
            .to_string()
            + &format!("forms = [{}]\n", forms.join(", ")),
    )
    .expect("write board.toml");
    let telemetry = if telemetry {
        format!("[telemetry]\nspool_dir = \"{}\"\n", dir.join("spool").display())
    } else {
        "[telemetry]\nenabled = false\n".to_string()
    };
    let drain = drain_ms.map(|d| format!("drain_ms = {d}\n")).unwrap_or_default();
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 2\nemulate_slowdown = 4.0\n\
             [api]\nunix = \"{}\"\n{drain}\
             [mqtt]\nbroker = \"mqtts://{EDGE_IP}:{PORT}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             [decide]\npolicy = \"{policy}\"\n{telemetry}",
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

        // A PKI whose broker certificate names the edge side's address (dev-2 for a second
        // device, e.g. one that floods the edge).
        let pki = shared_tempdir();
        let certs = pki.path().join("certs");
        make_pki(&certs, &["--broker-san", &format!("IP:{EDGE_IP}")], &["dev-1", "dev-2"]);

        // The broker, from the shipped template and ACL, listening on the edge side.
        let broker_conf = render_broker_config(pki.path(), &certs, PORT, EDGE_IP);
        let broker = spawn_broker(&tb, &broker_conf);

        // The edge server beside it (its own connection to the broker stays inside the edge
        // namespace; only the device's traffic crosses the shaped link).
        let edge_options = EdgeOptions {
            models: vec![MODEL],
            workers: 1,
            queue_capacity: options.edge_queue,
            splits: options.edge_splits,
            ..EdgeOptions::default()
        };
        let edge = start_edge_in(&tb, &certs, &edge_options, &broker);

        // The agent on the device side.
        let work = tempfile::tempdir().expect("tempdir");
        let spool_mount = options.spool_tmpfs_kib.map(|kib| {
            Tmpfs::mount(&work.path().join("spool"), kib).unwrap_or_else(|e| panic!("the spool's tmpfs: {e}"))
        });
        let agent_config = write_configs(work.path(), &certs, options);
        let api = Endpoint::Unix(work.path().join("api.sock"));
        let agent = spawn_agent(&tb, &agent_config, options.log, work.path());
        Bed {
            agent,
            api,
            edge,
            broker,
            spool_mount,
            broker_conf,
            agent_config,
            edge_options,
            options: options.clone(),
            work,
            pki,
            tb,
        }
    }

    /// The agent's work folder (its config, API socket and spool).
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// The bed's certificates (`ca.crt`, `dev-1.crt`, `dev-2.crt`, `ferry-edge.crt`, keys).
    pub fn certs(&self) -> PathBuf {
        self.pki.path().join("certs")
    }

    /// Kills the agent (SIGKILL) and reaps it.
    pub fn kill_agent(&mut self) {
        self.agent.kill();
    }

    /// Sends the agent SIGTERM; true if it exited within `within`. It is killed then if not.
    pub fn terminate_agent(&mut self, within: Duration) -> bool {
        let pid = self.agent.id();
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        let end = Instant::now() + within;
        while Instant::now() < end {
            if !self.agent.is_running() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let exited = !self.agent.is_running();
        self.agent.kill();
        exited
    }

    /// Starts the agent again with the same config and work folder (after a kill or a stop;
    /// a running agent is killed first), and waits until it is connected and its API is open.
    /// The old process's log is returned.
    pub fn start_agent(&mut self) -> Proc {
        self.agent.kill();
        let agent = spawn_agent(&self.tb, &self.agent_config, self.options.log, self.work.path());
        std::mem::replace(&mut self.agent, agent)
    }

    /// Stops the agent and starts it again with `policy` and the edge target offering
    /// `edge_forms` (the bed's other options kept; its work folder, with the split cache,
    /// too), and waits until it is connected and its API is open. The old process's log is
    /// returned.
    pub fn restart_agent_with(&mut self, policy: &'static str, edge_forms: &'static [&'static str]) -> Proc {
        let options = BedOptions { policy, edge_forms, ..self.options.clone() };
        self.agent_config = write_configs(self.work.path(), &self.certs(), &options);
        self.options = options;
        self.start_agent()
    }

    /// Kills the broker (SIGKILL) and reaps it.
    pub fn kill_broker(&mut self) {
        self.broker.kill();
    }

    /// Starts the broker again on the same address with the same config (a running one is
    /// killed first) and returns once it listens; the old process is returned.
    pub fn start_broker(&mut self) -> Proc {
        self.broker.kill();
        let broker = spawn_broker(&self.tb, &self.broker_conf);
        std::mem::replace(&mut self.broker, broker)
    }

    /// Kills the edge server (SIGKILL) and reaps it.
    pub fn kill_edge(&mut self) {
        self.edge.proc.kill();
    }

    /// Starts an edge server with the bed's options (a running one is killed first) and waits
    /// until it is ready; the old one's handle is returned.
    pub fn start_edge(&mut self) -> Edge {
        self.edge.proc.kill();
        let edge = start_edge_in(&self.tb, &self.certs(), &self.edge_options, &self.broker);
        std::mem::replace(&mut self.edge, edge)
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

/// Mosquitto from `conf` in the edge namespace, once it accepts connections on [`PORT`].
fn spawn_broker(tb: &Testbed, conf: &Path) -> Proc {
    let mut mosquitto = tb.command(Side::Edge, program("mosquitto"));
    mosquitto.arg("-c").arg(conf);
    let mut broker = Proc::spawn(mosquitto, "mosquitto");
    // Listening once a TCP connection to its port succeeds from inside the edge namespace
    // (this process lives in another one).
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let probe = tb
            .command(Side::Edge, "bash")
            .args(["-c", &format!("exec 3<>/dev/tcp/{EDGE_IP}/{PORT}")])
            .stderr(std::process::Stdio::null())
            .status();
        if probe.is_ok_and(|s| s.success()) {
            return broker;
        }
        assert!(Instant::now() < end && broker.is_running(), "mosquitto did not start in the edge namespace:\n{}", broker.stderr.text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ferry-edge` with `options` in the edge namespace, once it is ready.
fn start_edge_in(tb: &Testbed, certs: &Path, options: &EdgeOptions, broker: &Proc) -> Edge {
    let url = format!("mqtts://{EDGE_IP}:{PORT}");
    Edge::start_with(&url, certs, options, |bin| tb.command(Side::Edge, bin), &broker.stderr)
}

/// `ferry run` with `config` in the device namespace, once it is connected to the broker and
/// its API socket is there (in `work`).
fn spawn_agent(tb: &Testbed, config: &Path, log: &str, work: &Path) -> Proc {
    let socket = work.join("api.sock");
    // A socket left by a killed agent must not pass for the new one's.
    let _ = std::fs::remove_file(&socket);
    let mut cmd = tb.command(Side::Device, workspace_binary("ferry"));
    // The split heads are cut into the work folder, not the user's cache.
    cmd.args(["run", "--config"]).arg(config).env("RUST_LOG", log).env(ferry_runtime::split::CACHE_ENV, work.join("cache"));
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
    while !socket.exists() {
        assert!(Instant::now() < ready, "the agent never opened its API:\n{}", agent.stderr.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    agent
}

/// One counter from an edge's `StatsSnapshot { received: 5, … }` log line.
pub fn snapshot_field(line: &str, field: &str) -> Option<u64> {
    let at = line.find(&format!("{field}: "))? + field.len() + 2;
    line[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}
