//! Real processes for the telemetry tests: a development PKI from the shipped script, a
//! Mosquitto broker rendered from the shipped template (TLS 1.3, client certificates, the
//! shipped ACL) but with persistence on, so that it can be stopped and started again on the
//! same port with a subscriber's session intact, and `mosquitto_sub` as the consumer.
//! Every process is killed when its handle drops.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferry_transport::mqtt::MqttConfig;

pub const DEVICE: &str = "dev-1";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn program(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: tests/run.sh installs it"))
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A temp dir mosquitto (which drops to its own user) can read.
pub fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("ferry-telemetry-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    chmod(dir.path(), 0o755);
    dir
}

pub fn certs() -> &'static Path {
    static PKI: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = shared_tempdir();
        let certs = dir.path().join("certs");
        let status = Command::new(repo_root().join("firmware-configs/certs/make-dev-certs.sh"))
            .arg(&certs)
            .arg(DEVICE)
            .status()
            .expect("run make-dev-certs.sh");
        assert!(status.success(), "make-dev-certs.sh failed");
        (dir, certs)
    })
    .1
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Lines a child wrote (stdout or stderr), collected by a thread.
#[derive(Debug, Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>, Arc<std::sync::atomic::AtomicBool>);

impl Lines {
    fn capture(stream: impl std::io::Read + Send + 'static, echo: &'static str) -> Lines {
        let lines = Lines::default();
        let inner = lines.0.clone();
        let eof = lines.1.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if std::env::var_os("FERRY_TEST_ECHO").is_some() {
                    eprintln!("[{echo}] {line}");
                }
                inner.lock().unwrap().push(line);
            }
            eof.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        lines
    }

    /// Waits (at most 10 s) until the stream reached its end (the process is gone).
    pub fn wait_eof(&self) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self.1.load(std::sync::atomic::Ordering::SeqCst) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits until `done(lines)` holds; false after `timeout`.
    pub fn wait(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if done(&self.0.lock().unwrap()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        done(&self.0.lock().unwrap())
    }
}

/// A child killed and reaped on drop.
#[derive(Debug)]
pub struct Proc {
    pub child: Option<Child>,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Proc {
    pub fn spawn(mut cmd: Command, echo: &'static str) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = child.stdout.take().map(|s| Lines::capture(s, echo)).unwrap_or_default();
        let stderr = child.stderr.take().map(|s| Lines::capture(s, echo)).unwrap_or_default();
        Proc {
            child: Some(child),
            stdout,
            stderr,
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait (at most 10 s, then SIGKILL).
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

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Mosquitto on a fixed loopback port, stoppable and restartable.
pub struct Broker {
    pub port: u16,
    conf: PathBuf,
    proc: Option<Proc>,
    _dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Broker {
        let dir = shared_tempdir();
        let acl = dir.path().join("acl");
        std::fs::copy(repo_root().join("firmware-configs/mosquitto/acl"), &acl).expect("acl");
        chmod(&acl, 0o644);
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        chmod(&data, 0o777);
        let conf = dir.path().join("mosquitto.conf");
        for _attempt in 0..5 {
            let port = free_port();
            let status = Command::new(repo_root().join("firmware-configs/mosquitto/render.sh"))
                .arg(port.to_string())
                .arg(certs())
                .arg(&conf)
                .arg(&acl)
                .status()
                .expect("render.sh");
            assert!(status.success());
            // Persistence, so that the subscriber's session (and what was queued for it)
            // survives a restart of the broker.
            let text = std::fs::read_to_string(&conf).expect("read conf").replace(
                "persistence false",
                &format!("persistence true\npersistence_location {}/", data.display()),
            );
            std::fs::write(&conf, text).expect("write conf");
            chmod(&conf, 0o644);
            if let Some(proc) = spawn_broker(&conf, port) {
                return Broker {
                    port,
                    conf,
                    proc: Some(proc),
                    _dir: dir,
                };
            }
        }
        panic!("mosquitto would not start");
    }

    /// Starts it again on its port; false if it does not listen within 10 s.
    pub fn restart(&mut self) -> bool {
        self.proc = spawn_broker(&self.conf, self.port);
        self.proc.is_some()
    }

    /// SIGTERM (mosquitto saves its sessions) and wait.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate();
        }
    }

    pub fn log(&self) -> Vec<String> {
        self.proc.as_ref().map(|p| p.stderr.all()).unwrap_or_default()
    }

    pub fn mqtt_config(&self) -> MqttConfig {
        let c = certs();
        let mut m = MqttConfig::new(format!("mqtts://127.0.0.1:{}", self.port)).with_tls_files(
            c.join("ca.crt"),
            c.join(format!("{DEVICE}.crt")),
            c.join(format!("{DEVICE}.key")),
        );
        m.connect_timeout_ms = 3000;
        m.reconnect_min_ms = 50;
        m.reconnect_max_ms = 300;
        m
    }

    /// Publishes a retained probe (with `mosquitto_pub`), starts `subscribe`, and waits until
    /// the subscriber printed the probe: from then on it is subscribed.
    pub fn ready_subscriber(&self, client_id: &str) -> Proc {
        let c = certs();
        let status = Command::new(program("mosquitto_pub"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--cafile")
            .arg(c.join("ca.crt"))
            .arg("--cert")
            .arg(c.join(format!("{DEVICE}.crt")))
            .arg("--key")
            .arg(c.join(format!("{DEVICE}.key")))
            .args(["-V", "mqttv5", "-q", "1", "-r", "-i", "probe-pub"])
            .args(["-t", &format!("ferry/{DEVICE}/telemetry/probe")])
            .args(["-m", &format!(r#"{{"device_id":"{DEVICE}","timestamp":1700000000000,"data":{{}}}}"#)])
            .status()
            .expect("mosquitto_pub");
        assert!(status.success(), "mosquitto_pub failed: {:?}", self.log());
        let sub = self.subscribe(client_id);
        let probe = format!("ferry/{DEVICE}/telemetry/probe ");
        assert!(
            sub.stdout.wait(Duration::from_secs(60), |l| l.iter().any(|l| l.starts_with(&probe))),
            "subscriber not ready: {:?} {:?}",
            sub.stderr.all(),
            self.log()
        );
        sub
    }

    /// `mosquitto_sub` on every telemetry topic of the device, with the device's certificate
    /// (the ACL confines it to `ferry/dev-1/#`), a persistent session, QoS 1, `topic payload`
    /// per line.
    pub fn subscribe(&self, client_id: &str) -> Proc {
        let c = certs();
        let mut cmd = Command::new(program("mosquitto_sub"));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--cafile")
            .arg(c.join("ca.crt"))
            .arg("--cert")
            .arg(c.join(format!("{DEVICE}.crt")))
            .arg("--key")
            .arg(c.join(format!("{DEVICE}.key")))
            .args(["-V", "mqttv5", "-q", "1", "-c", "-i", client_id, "-v"])
            .args(["-t", &format!("ferry/{DEVICE}/telemetry/#")]);
        Proc::spawn(cmd, "sub")
    }
}

fn spawn_broker(conf: &Path, port: u16) -> Option<Proc> {
    let mut cmd = Command::new(program("mosquitto"));
    cmd.arg("-c").arg(conf);
    let mut proc = Proc::spawn(cmd, "mosquitto");
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && proc.is_running() {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(proc);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("mosquitto did not start on {port}: {:?}", proc.stderr.all());
    None
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }
}

/// One line of `mosquitto_sub -v`: topic and JSON.
pub fn parse_line(line: &str) -> (String, serde_json::Value) {
    let (topic, json) = line.split_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
    let value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
    (topic.to_owned(), value)
}

/// The `data.n` values of the sensor messages a subscriber printed, in order.
pub fn sensor_numbers(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter(|l| l.starts_with(&format!("ferry/{DEVICE}/telemetry/sensors ")))
        .map(|l| {
            let (_, v) = parse_line(l);
            v["data"]["load.n"].as_f64().unwrap_or_else(|| panic!("no data.load.n: {l}")) as u64
        })
        .collect()
}
