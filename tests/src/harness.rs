//! Real processes for end-to-end tests: a development PKI, a Mosquitto broker rendered from
//! the shipped config on a free loopback port (optionally with persistence, to be stopped and
//! started again with its sessions intact), `mosquitto_sub` subscribers, and `ferry-edge`
//! servers. Every process is killed when its handle drops, so a failing test leaves nothing
//! running; what it printed is then searched for the test keys ([`crate::secrets`]).

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ferry_protocol::DeviceId;
use ferry_transport::mqtt::MqttConfig;

/// The devices every test PKI has certificates for.
pub const DEVICES: [&str; 2] = ["dev-1", "dev-2"];

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A program from PATH, or from /usr/sbin (where Debian puts mosquitto).
pub fn program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH or in /usr/sbin: tests/run.sh installs it"))
}

/// A binary of this workspace, from the target directory this test was built into (the
/// test executable lives in `<target>/<profile>/deps/`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in <target>/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build --release -p ferry-edge -p ferry-agent`, \
         or tests/run.sh, which builds the whole workspace; `cargo test -p ferry-edge` builds \
         ferry-edge, `cargo test -p ferry-agent` builds ferry)",
        bin.display()
    );
    bin
}

/// A loopback port nobody listens on (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A temporary directory every local user can read (mosquitto drops to its own user before
/// it reads certificates and the ACL).
pub fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("ferry-e2e-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    chmod(dir.path(), 0o755);
    dir
}

/// Sets a path's permission bits.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The development PKI (CA, broker, edge, collector, `dev-1`, `dev-2`, a rogue CA with a
/// `dev-1` certificate, and expired `dev-1` and broker certificates), made once per test
/// binary with the shipped script.
pub fn pki() -> &'static Path {
    static PKI: OnceLock<tempfile::TempDir> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = shared_tempdir();
        make_pki(&dir.path().join("certs"), &["--rogue", "--expired"], &DEVICES);
        dir
    })
    .path()
}

/// Runs the shipped `make-dev-certs.sh` into `certs` with `options` (e.g. `--rogue`,
/// `--expired`, `--broker-san IP:…`) for `devices`, leaving the folder readable by
/// mosquitto's user, and registers its private keys as secrets no output may show.
pub fn make_pki(certs: &Path, options: &[&str], devices: &[&str]) {
    let status = Command::new(repo_root().join("firmware-configs/certs/make-dev-certs.sh"))
        .args(options)
        .arg(certs)
        .args(devices)
        .status()
        .expect("run make-dev-certs.sh");
    assert!(status.success(), "make-dev-certs.sh failed");
    chmod(certs, 0o755);
    crate::secrets::register_keys_in(certs);
}

/// Writes the broker's authorization for [`DEVICES`] into `dir` with the shipped
/// `make-dynsec.sh` (unless `dir` already has one) and renders the shipped mosquitto.conf
/// template there for `port` on `bind` with the certificates in `certs`; returns the config's
/// path.
pub fn render_broker_config(dir: &Path, certs: &Path, port: u16, bind: &str) -> PathBuf {
    render_broker_config_for(dir, certs, port, bind, &[])
}

/// [`render_broker_config`] authorizing `extra_devices` as well as [`DEVICES`].
pub fn render_broker_config_for(dir: &Path, certs: &Path, port: u16, bind: &str, extra_devices: &[String]) -> PathBuf {
    let authz = dir.join("dynamic-security.json");
    if !authz.exists() {
        let status = Command::new(repo_root().join("firmware-configs/mosquitto/make-dynsec.sh"))
            .arg(&authz)
            .args(DEVICES)
            .args(extra_devices)
            .status()
            .expect("run make-dynsec.sh");
        assert!(status.success(), "make-dynsec.sh failed");
    }
    let conf = dir.join("mosquitto.conf");
    let status = Command::new(repo_root().join("firmware-configs/mosquitto/render.sh"))
        .arg(port.to_string())
        .arg(certs)
        .arg(&conf)
        .arg(&authz)
        .arg(bind)
        .status()
        .expect("run render.sh");
    assert!(status.success(), "render.sh failed");
    chmod(&conf, 0o644);
    conf
}

/// A file of the test PKI, e.g. `cert("dev-1.crt")`.
pub fn cert(name: &str) -> PathBuf {
    pki().join("certs").join(name)
}

/// Lines a child process wrote to one of its streams, collected by a thread.
#[derive(Debug, Clone, Default)]
pub struct Log {
    lines: Arc<Mutex<Vec<String>>>,
    eof: Arc<AtomicBool>,
}

impl Log {
    fn capture(stream: impl Read + Send + 'static, echo_prefix: &'static str) -> Log {
        let log = Log::default();
        let (lines, eof) = (log.lines.clone(), log.eof.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if std::env::var_os("FERRY_TEST_ECHO").is_some() {
                    eprintln!("[{echo_prefix}] {line}");
                }
                lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
            eof.store(true, Ordering::SeqCst);
        });
        log
    }

    fn lines(&self) -> MutexGuard<'_, Vec<String>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything so far, one line each.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Everything so far.
    pub fn all(&self) -> Vec<String> {
        self.lines().clone()
    }

    /// Lines containing every one of `needles`.
    pub fn count(&self, needles: &[&str]) -> usize {
        matching(&self.lines(), needles)
    }

    /// Waits until `done(lines so far)` holds; false if it still does not after `timeout`.
    pub fn wait(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if done(&self.lines()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        done(&self.lines())
    }

    /// Waits until at least `n` lines contain every one of `needles`; false after `timeout`.
    pub fn wait_for_count(&self, needles: &[&str], n: usize, timeout: Duration) -> bool {
        self.wait(timeout, |lines| matching(lines, needles) >= n)
    }

    /// Waits until a line contains every one of `needles`; false after `timeout`.
    pub fn wait_for(&self, needles: &[&str], timeout: Duration) -> bool {
        self.wait_for_count(needles, 1, timeout)
    }

    /// Waits (at most 10 s) until the stream reached its end (the process is gone and every
    /// line it wrote is here).
    pub fn wait_eof(&self) -> bool {
        self.wait_eof_within(Duration::from_secs(10))
    }

    /// [`Log::wait_eof`], at most `timeout`.
    pub fn wait_eof_within(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.eof.load(Ordering::SeqCst) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// How many of `lines` contain every one of `needles`.
fn matching(lines: &[String], needles: &[&str]) -> usize {
    lines
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// A child process killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    /// Its stdout.
    pub stdout: Log,
    /// Its stderr.
    pub stderr: Log,
    /// What it is, for messages.
    prefix: &'static str,
}

impl Proc {
    /// Starts `cmd` with stdin closed and its stdout and stderr collected into
    /// [`Proc::stdout`] and [`Proc::stderr`].
    pub fn spawn(mut cmd: Command, echo_prefix: &'static str) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = child.stdout.take().map(|s| Log::capture(s, echo_prefix)).unwrap_or_default();
        let stderr = child.stderr.take().map(|s| Log::capture(s, echo_prefix)).unwrap_or_default();
        Proc {
            child: Some(child),
            stdout,
            stderr,
            prefix: echo_prefix,
        }
    }

    /// Kills it now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Asks it to stop (SIGTERM) and waits; SIGKILL if it is still there after 10 s.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits at most `timeout` for it to exit on its own; its exit status, or None while it
    /// still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            let status = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if status.is_some() || Instant::now() >= end {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id (to signal it); panics once it has been killed and reaped.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("the process was reaped")
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    /// Kills it, then fails the test if anything it printed holds a registered secret (not
    /// while the test is already failing: a second panic would abort).
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            return;
        }
        for (name, log) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            // A grandchild may hold the pipe open: check what is there after a short wait.
            log.wait_eof_within(Duration::from_secs(2));
            crate::secrets::assert_clean(&format!("{} ({name})", self.prefix), &log.all());
        }
    }
}

/// How to run a [`Broker`].
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// Persistence on (the shipped config has it off): sessions, and what is queued for them,
    /// are saved when the broker stops ([`Broker::stop`]) and loaded when it starts again
    /// ([`Broker::start_again`]), so a subscriber with a persistent session misses nothing.
    pub persistence: bool,
    /// Device identities the broker authorizes besides [`DEVICES`] (each needs a certificate
    /// too: [`make_pki`]). The broker refuses every identity its authorization file does not
    /// list, so a test with a fleet of its own names it here.
    pub extra_devices: Vec<String>,
    /// The loopback address it listens on (default 127.0.0.1): on another one (127.0.0.2) a
    /// client dials an address the broker's certificate does not name.
    pub bind: Option<String>,
    /// The certificate folder it serves from (default: the test PKI's, [`pki`]); its
    /// `ca.crt`, `broker.crt` and `broker.key` are used, and [`Broker::config_for`] and
    /// [`Broker::client_args`] take the clients' certificates from it too.
    pub certs: Option<PathBuf>,
}

/// A Mosquitto broker from the shipped template, TLS 1.3 with client certificates, on a free
/// loopback port that stays its own across restarts.
#[derive(Debug)]
pub struct Broker {
    /// The process (the last one started, after a restart).
    pub proc: Proc,
    /// Its TLS port.
    pub port: u16,
    /// The address it listens on.
    pub host: String,
    certs: PathBuf,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts mosquitto with `conf` and waits (at most `timeout`) until `host:port` accepts
/// connections; None (and what mosquitto said, on stderr) if it exits or never listens.
fn spawn_mosquitto(conf: &Path, host: &str, port: u16, timeout: Duration) -> Option<Proc> {
    let mut cmd = Command::new(program("mosquitto"));
    cmd.arg("-c").arg(conf);
    let mut proc = Proc::spawn(cmd, "mosquitto");
    let end = Instant::now() + timeout;
    while Instant::now() < end && proc.is_running() {
        if TcpStream::connect((host, port)).is_ok() {
            return Some(proc);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("mosquitto did not start on {port}:\n{}", proc.stderr.text());
    None
}

impl Broker {
    /// Renders the shipped config as it is, starts mosquitto and waits until the port accepts
    /// connections.
    pub fn start() -> Broker {
        Broker::start_with(&BrokerOptions::default())
    }

    /// [`Broker::start`] with `options`.
    pub fn start_with(options: &BrokerOptions) -> Broker {
        let certs = options.certs.clone().unwrap_or_else(|| pki().join("certs"));
        let host = options.bind.clone().unwrap_or_else(|| "127.0.0.1".to_string());
        let dir = shared_tempdir();
        let data = dir.path().join("data");
        if options.persistence {
            std::fs::create_dir(&data).expect("create the persistence directory");
            chmod(&data, 0o777);
        }
        // A port can be taken between being found free and mosquitto binding it: retry.
        for _attempt in 0..5 {
            let port = free_port();
            let conf = render_broker_config_for(dir.path(), &certs, port, &host, &options.extra_devices);
            if options.persistence {
                let text = std::fs::read_to_string(&conf).expect("read mosquitto.conf");
                assert!(text.contains("persistence false"), "the shipped config changed: {conf:?}");
                let text = text.replace(
                    "persistence false",
                    &format!("persistence true\npersistence_location {}/", data.display()),
                );
                std::fs::write(&conf, text).expect("write mosquitto.conf");
            }
            if let Some(proc) = spawn_mosquitto(&conf, &host, port, Duration::from_secs(10)) {
                return Broker {
                    proc,
                    port,
                    host,
                    certs,
                    conf,
                    _dir: dir,
                };
            }
        }
        panic!("mosquitto would not start");
    }

    /// Stops the broker cleanly (SIGTERM; with persistence it saves its sessions) and waits
    /// until it is gone. [`Broker::start_again`] brings it back.
    pub fn stop(&mut self) {
        self.proc.terminate();
    }

    /// Starts the broker again on the same port with the same config, killing it first if it
    /// still runs; true once the port accepts connections, false if it does not within
    /// about 10 s.
    pub fn start_again(&mut self) -> bool {
        self.proc.kill();
        // The port was just released; mosquitto sets SO_REUSEADDR, a few tries cover the rest.
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Some(proc) = spawn_mosquitto(&self.conf, &self.host, self.port, Duration::from_secs(3)) {
                self.proc = proc;
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Kills the broker and starts it again on the same port with the same config (a
    /// broker restart, as clients see it). Waits until the port accepts connections again.
    pub fn restart(&mut self) {
        assert!(self.start_again(), "mosquitto would not restart on {}", self.port);
    }

    /// `mqtts://<host>:<port>`.
    pub fn url(&self) -> String {
        format!("mqtts://{}:{}", self.host, self.port)
    }

    /// A file of the certificate folder it serves from, e.g. `cert("dev-1.crt")`.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.certs.join(name)
    }

    /// A client config for `identity` (a device id, `ferry-edge`, or `rogue-dev-1`).
    pub fn config_for(&self, identity: &str) -> MqttConfig {
        let mut c = MqttConfig::new(self.url()).with_tls_files(
            self.cert("ca.crt"),
            self.cert(&format!("{identity}.crt")),
            self.cert(&format!("{identity}.key")),
        );
        c.connect_timeout_ms = 3000;
        c.reconnect_min_ms = 50;
        c.reconnect_max_ms = 500;
        c
    }

    /// Starts a device offloader for `device` and waits until it is ready.
    pub async fn device(&self, device: &str) -> ferry_transport::mqtt::MqttOffloader {
        let id = DeviceId::new(device).expect("device id");
        ferry_transport::mqtt::MqttOffloader::connect(
            &self.config_for(device),
            id,
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("{device} cannot connect: {e}\nbroker log:\n{}", self.proc.stderr.text()))
    }

    /// mosquitto_pub/_sub arguments for `identity` against this broker (MQTT v5).
    pub fn client_args(&self, identity: &str) -> Vec<String> {
        let p = |s: PathBuf| s.display().to_string();
        vec![
            "-h".into(),
            self.host.clone(),
            "-p".into(),
            self.port.to_string(),
            "--cafile".into(),
            p(self.cert("ca.crt")),
            "--cert".into(),
            p(self.cert(&format!("{identity}.crt"))),
            "--key".into(),
            p(self.cert(&format!("{identity}.key"))),
            "-V".into(),
            "mqttv5".into(),
        ]
    }

    /// Publishes `payload` to `topic` as `identity` with `mosquitto_pub`, QoS 1, retained;
    /// panics if mosquitto_pub fails.
    pub fn publish_retained(&self, identity: &str, topic: &str, payload: &str) {
        let out = Command::new(program("mosquitto_pub"))
            .args(self.client_args(identity))
            .args(["-q", "1", "-r", "-t", topic, "-m", payload])
            .output()
            .expect("run mosquitto_pub");
        assert!(
            out.status.success(),
            "mosquitto_pub to {topic}: {}\nbroker:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.proc.stderr.text()
        );
    }

    /// `mosquitto_sub` as `identity` on `filter`: QoS 1, a persistent session under
    /// `client_id` (`-c`), one `topic payload` line a message on its [`Proc::stdout`].
    pub fn subscriber(&self, identity: &str, client_id: &str, filter: &str) -> Proc {
        let mut cmd = Command::new(program("mosquitto_sub"));
        cmd.args(self.client_args(identity))
            .args(["-q", "1", "-c", "-i", client_id, "-v", "-t", filter]);
        Proc::spawn(cmd, "mosquitto_sub")
    }
}

/// Options for an edge server.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// MQTT client id (distinct per edge).
    pub client_id: String,
    /// Models served (FP32).
    pub models: Vec<&'static str>,
    /// Queue capacity.
    pub queue_capacity: usize,
    /// Workers.
    pub workers: usize,
    /// Shared-subscription group.
    pub share_group: String,
    /// Serve split requests for the models (their tails cut into the edge's own temporary
    /// cache folder).
    pub splits: bool,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        EdgeOptions {
            client_id: "edge-a".into(),
            models: vec!["digits"],
            queue_capacity: 32,
            workers: 1,
            share_group: "ferry-edges".into(),
            splits: false,
        }
    }
}

/// A running `ferry-edge`.
#[derive(Debug)]
pub struct Edge {
    /// The process.
    pub proc: Proc,
    _dir: tempfile::TempDir,
}

impl Edge {
    /// Writes an edge.toml for `broker`, starts the real binary and waits for "ready".
    pub fn start(broker: &Broker, options: &EdgeOptions) -> Edge {
        Edge::start_with(&broker.url(), &broker.certs, options, Command::new, &broker.proc.stderr)
    }

    /// Writes an edge.toml for the broker at `url` with certificates from `certs`, starts the
    /// real binary through `command` (e.g. inside a network namespace) and waits for "ready";
    /// `broker_log` is shown if it never gets there.
    pub fn start_with(
        url: &str,
        certs: &Path,
        options: &EdgeOptions,
        command: impl FnOnce(PathBuf) -> Command,
        broker_log: &Log,
    ) -> Edge {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut toml = format!(
            "share_group = \"{}\"\nmodels_dir = \"{}\"\nqueue_capacity = {}\nworkers = {}\n",
            options.share_group,
            repo_root().join("models").display(),
            options.queue_capacity,
            options.workers,
        );
        if options.splits {
            toml.push_str(&format!("cache_dir = \"{}\"\n", dir.path().join("cache").display()));
        }
        for m in &options.models {
            toml.push_str(&format!("[models.{m}]\nprecisions = [\"fp32\"]\nsplits = {}\n", options.splits));
        }
        toml.push_str(&format!(
            "[mqtt]\nbroker = \"{}\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nclient_id = \"{}\"\n\
             reconnect_min_ms = 50\nreconnect_max_ms = 500\n",
            url,
            certs.join("ca.crt").display(),
            certs.join("ferry-edge.crt").display(),
            certs.join("ferry-edge.key").display(),
            options.client_id,
        ));
        let config = dir.path().join("edge.toml");
        std::fs::write(&config, toml).expect("write edge.toml");
        let mut cmd = command(workspace_binary("ferry-edge"));
        cmd.arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info,ferry_edge=debug");
        let proc = Proc::spawn(cmd, "ferry-edge");
        let edge = Edge { proc, _dir: dir };
        assert!(
            edge.proc.stderr.wait_for(&["ready for requests"], Duration::from_secs(60)),
            "ferry-edge did not become ready:\n{}\nbroker:\n{}",
            edge.proc.stderr.text(),
            broker_log.text()
        );
        edge
    }
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    ferry_protocol::wall_clock_us()
}

/// A request for `model` (FP32) with the image file `image` (relative to the repository).
pub fn image_request(
    offloader: &ferry_transport::mqtt::MqttOffloader,
    model: &str,
    image: &str,
) -> ferry_protocol::Request {
    use ferry_protocol::{ImageFormat, Input, ModelName, Precision, Request};
    let bytes = std::fs::read(repo_root().join(image)).expect("read image");
    Request {
        request_id: offloader.next_request_id(),
        device_id: offloader.device(),
        model: ModelName::new(model).expect("model name"),
        precision: Precision::Fp32,
        deadline_ms: None,
        sent_at_us: now_us(),
        input: Input::Image {
            format: ImageFormat::Unspecified,
            bytes,
        },
    }
}

/// The top-1 class index of local FP32 inference on an image (relative to the repository).
pub fn local_top1(model: &str, image: &str) -> usize {
    use ferry_runtime::{preprocess, ModelStore, Precision, Threads, TractEngine};
    let store = ModelStore::new(repo_root().join("models"));
    let m = store
        .load(&TractEngine::new(Threads(1)), model, Precision::Fp32)
        .expect("load model");
    let img = preprocess::load_image(&repo_root().join(image)).expect("load image");
    m.infer_image(&img, 1).expect("infer").top[0].index
}

/// `firmware-configs/x86-dev.toml` written into `dir` with its edge target's endpoint set to
/// `broker`: the endpoint routes the target, so it must be the agent's `[mqtt] broker`.
pub fn dev_board(dir: &Path, broker: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("firmware-configs/x86-dev.toml")).expect("read x86-dev.toml");
    assert!(text.contains("mqtt://127.0.0.1:1883"), "x86-dev.toml's edge endpoint moved");
    let path = dir.join("x86-dev.toml");
    std::fs::write(&path, text.replace("mqtt://127.0.0.1:1883", broker)).expect("write the board config");
    path
}
