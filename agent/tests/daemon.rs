//! `ferry run` as a process: it starts, serves the local API on TCP and on a Unix socket,
//! answers correctly, refuses bad requests with 4xx and a JSON message before they take any
//! runner, reports status and metrics, gives its socket the configured mode and group, never
//! reuses a request id, and stops on SIGTERM answering every request in flight.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The daemon process; killed on drop, even when a test fails.
struct Agent {
    child: Child,
    tcp: String,
    unix: PathBuf,
    /// Kept open: the agent prints a ready line again after a reload.
    stdout: BufReader<ChildStdout>,
    dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(extra: &str) -> Agent {
    start_agent_with(extra, "")
}

/// `extra` goes into `[agent]`, `api` into `[api]`.
fn start_agent_with(extra: &str, api: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let unix = dir.path().join("api.sock");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 1\n{extra}\n[api]\ntcp = \"127.0.0.1:0\"\nunix = \"{}\"\nmax_body_bytes = 4194304\n{api}\n",
            repo().join("firmware-configs/x86-dev.toml").display(),
            repo().join("models").display(),
            unix.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferry run");
    // The first stdout line says where the API is (after the models are loaded).
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let tcp = ready_line(&mut stdout);
    Agent { child, tcp, unix, stdout, dir }
}

/// Reads the next "ferry: ready" line; returns the TCP address it names.
fn ready_line(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready line");
    assert!(line.starts_with("ferry: ready"), "{line}");
    line.split_whitespace().skip_while(|w| *w != "tcp").nth(1).expect("tcp address").to_string()
}

fn signal(agent: &Agent, sig: &str) {
    assert!(Command::new("kill").args([sig, &agent.child.id().to_string()]).status().unwrap().success());
}

/// Waits at most `within` for the agent to exit; its exit status.
fn exited(agent: &mut Agent, within: Duration) -> Option<std::process::ExitStatus> {
    let until = std::time::Instant::now() + within;
    while std::time::Instant::now() < until {
        if let Some(status) = agent.child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A minimal HTTP/1.1 exchange; returns (status, body).
fn http(stream: &mut dyn ReadWrite, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: ferry\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no HTTP answer (an empty reply): {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn tcp(agent: &Agent) -> TcpStream {
    let s = TcpStream::connect(&agent.tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

fn unix(agent: &Agent) -> UnixStream {
    let s = UnixStream::connect(&agent.unix).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn the_local_api_answers_on_tcp_and_on_the_unix_socket() {
    let agent = start_agent("");
    let espresso = std::fs::read(repo().join("models/images/espresso.jpg")).unwrap();
    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/efficientnet-lite0?deadline_ms=2000", "image/jpeg", &espresso);
    assert_eq!(status, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["top"][0]["label"], "espresso", "{v}");
    assert_eq!(v["ran"], "local", "no edge is configured: {v}");
    assert!(v["reason"]["why"].is_string() && v["latency_ms"].as_f64().is_some(), "{v}");

    let digit = std::fs::read(repo().join("models/images/digit-7.png")).unwrap();
    let (status, body) = http(&mut unix(&agent), "POST", "/v1/infer/digits", "image/png", &digit);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["top"][0]["label"], "7");

    // A raw tensor: the held-out "7" is not needed; an all-zero input must simply be answered.
    let zeros = vec![0u8; 64 * 4];
    let (status, body) = http(&mut unix(&agent), "POST", "/v1/infer/digits?shape=1,1,8,8", "application/octet-stream", &zeros);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["top"].as_array().map(Vec::len), Some(5));
}

#[test]
fn bad_requests_get_4xx_with_a_clear_json_message() {
    let agent = start_agent("");
    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/resnet-9000", "image/png", b"x");
    assert_eq!(status, 404, "{body}");
    assert!(json(&body)["error"].as_str().unwrap_or("").contains("unknown model `resnet-9000`"), "{body}");

    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "text/plain", b"hello");
    assert_eq!(status, 415, "{body}");
    assert!(json(&body)["error"].as_str().unwrap_or("").contains("image/png"), "{body}");

    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits?shape=1,1,8,8", "application/octet-stream", &[0u8; 10]);
    assert_eq!(status, 400, "{body}");
    json(&body);

    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "application/octet-stream", &[0u8; 256]);
    assert_eq!(status, 400, "{body}");
    assert!(json(&body)["error"].as_str().unwrap_or("").contains("shape"), "{body}");

    let big = vec![0u8; 5 << 20];
    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "image/png", &big);
    assert_eq!(status, 413, "{body}");
    assert!(json(&body)["error"].as_str().unwrap_or("").contains("max_body_bytes"), "{body}");

    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits?deadline_ms=soon", "image/png", b"x");
    assert_eq!(status, 400, "{body}");
    assert!(json(&body)["error"].as_str().unwrap_or("").contains("deadline_ms"), "{body}");

    let (status, body) = http(&mut tcp(&agent), "GET", "/v1/nothing-here", "text/plain", b"");
    assert_eq!(status, 404, "{body}");
    assert!(json(&body)["error"].as_str().unwrap_or("").contains("/v1/nothing-here"), "{body}");

    let (status, body) = http(&mut tcp(&agent), "GET", "/v1/infer/digits", "text/plain", b"");
    assert_eq!(status, 405, "{body}");
    assert!(json(&body)["error"].as_str().unwrap_or("").contains("GET"), "{body}");

    // Inputs the model cannot take: refused before they are decided on, 400 with what is wrong.
    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "image/png", b"not a png");
    assert_eq!(status, 400, "an undecodable image is a client error: {body}");
    let v = json(&body);
    assert_eq!(v["status"], "invalid_input", "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("image"), "{v}");
    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits?shape=1,1,4,4", "application/octet-stream", &[0u8; 64]);
    assert_eq!(status, 400, "a tensor of the wrong shape is a client error: {body}");
    assert!(json(&body)["error"].as_str().unwrap_or("").contains("[1, 1, 8, 8]"), "{body}");

    // None of them took the runner or was counted as an answer.
    let (_, body) = http(&mut tcp(&agent), "GET", "/v1/status", "text/plain", b"");
    let v = json(&body);
    assert_eq!((v["answers"]["local"].as_u64(), v["answers"]["failed"].as_u64()), (Some(0), Some(0)), "{v}");
    assert_eq!(v["local_runs"]["compute_ms"].as_f64(), Some(0.0), "no local compute was spent: {v}");

    // The agent is still serving.
    let digit = std::fs::read(repo().join("models/images/digit-3.png")).unwrap();
    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "image/png", &digit);
    assert_eq!((status, json(&body)["top"][0]["label"].clone()), (200, serde_json::json!("3")), "{body}");
}

#[test]
fn status_and_metrics_report_what_happened() {
    let agent = start_agent("");
    let digit = std::fs::read(repo().join("models/images/digit-3.png")).unwrap();
    for _ in 0..3 {
        let (status, _) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "image/png", &digit);
        assert_eq!(status, 200);
    }
    let (status, body) = http(&mut tcp(&agent), "GET", "/v1/status", "text/plain", b"");
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["device_id"], "dev-1");
    assert_eq!(v["answers"]["local"], 3, "{v}");
    assert!(v["targets"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "local-fp32")), "{v}");
    // The manifests' accuracy bounds: digits INT8 (99.78 vs 99.56 %, max drop 1) may run;
    // efficientnet-lite0 INT8 (60 % top-1 agreement, max drop 10) may not, though the board
    // lists it as `local-int8`.
    let names: Vec<&str> = v["targets"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"local-digits-int8"), "{names:?}");
    assert!(!names.contains(&"local-int8"), "{names:?}");

    let (status, body) = http(&mut unix(&agent), "GET", "/v1/metrics", "text/plain", b"");
    assert_eq!(status, 200);
    assert!(body.contains("ferry_requests_total{path=\"local\"} 3"), "{body}");
    assert!(body.contains("# TYPE ferry_request_latency_ms summary"), "{body}");
}

#[test]
fn sigterm_stops_the_agent_cleanly() {
    let mut agent = start_agent("");
    let pid = agent.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut stopped = None;
    for _ in 0..100 {
        if let Some(status) = agent.child.try_wait().unwrap() {
            stopped = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = stopped.expect("ferry run exits within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_rust_client_function_talks_to_both_sockets() {
    use ferry_agent::client::{infer, infer_tensor, ClientError, Endpoint};
    let agent = start_agent("");
    let tcp = Endpoint::Tcp(agent.tcp.parse().unwrap());
    let jpeg = std::fs::read(repo().join("models/images/espresso.jpg")).unwrap();
    let answer = infer(&tcp, "efficientnet-lite0", "image/jpeg", &jpeg, Some(2000)).unwrap();
    assert_eq!(answer.top[0].label, "espresso");
    assert_eq!(answer.ran, "local");
    let unix = Endpoint::Unix(agent.unix.clone());
    let answer = infer_tensor(&unix, "digits", &[1, 1, 8, 8], &[0.0; 64], None).unwrap();
    assert_eq!(answer.top.len(), 5);
    match infer(&unix, "nope", "image/png", b"x", None) {
        Err(ClientError::Status { status: 404, message }) => assert!(message.contains("nope"), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// Sends a slow request (efficientnet-lite0 at 50 times its compute) on its own thread,
/// waits until it holds the local runner, then sends SIGTERM. Returns the one answer and how
/// long the agent took to exit. `drain_ms`: `None` for the default (5000).
fn answer_across_sigterm(drain_ms: Option<u32>) -> ((u16, String), std::process::ExitStatus) {
    let api = drain_ms.map(|d| format!("drain_ms = {d}")).unwrap_or_default();
    let mut agent = start_agent_with("emulate_slowdown = 50.0", &api);
    let espresso = std::fs::read(repo().join("models/images/espresso.jpg")).unwrap();
    let mut stream = tcp(&agent);
    let in_flight = std::thread::spawn(move || http(&mut stream, "POST", "/v1/infer/efficientnet-lite0?placement=local-only", "image/jpeg", &espresso));
    let mut busy = false;
    for _ in 0..500 {
        let (_, body) = http(&mut tcp(&agent), "GET", "/v1/status", "text/plain", b"");
        if json(&body)["local_busy"] == true {
            busy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(busy, "the request never took the local runner");
    signal(&agent, "-TERM");
    let answer = in_flight.join().expect("the client thread");
    let bound = Duration::from_millis(u64::from(drain_ms.unwrap_or(5000))) + Duration::from_secs(10);
    let status = exited(&mut agent, bound).unwrap_or_else(|| panic!("ferry run exits within {bound:?} of SIGTERM"));
    (answer, status)
}

#[test]
fn a_request_in_flight_at_sigterm_gets_exactly_one_complete_answer() {
    let ((status, body), exit) = answer_across_sigterm(None);
    assert!(exit.success(), "{exit:?}");
    // Finished within the drain (200), or explicitly refused: never an empty reply.
    let v = json(&body);
    match status {
        200 => assert_eq!(v["top"][0]["label"], "espresso", "{v}"),
        503 => assert_eq!(v["status"], "shutting_down", "{v}"),
        other => panic!("{other}: {v}"),
    }
}

#[test]
fn what_cannot_finish_within_the_drain_is_answered_shutting_down() {
    // 50 × efficientnet-lite0's compute is far more than a 100 ms drain.
    let ((status, body), exit) = answer_across_sigterm(Some(100));
    assert!(exit.success(), "{exit:?}");
    assert_eq!(status, 503, "{body}");
    let v = json(&body);
    assert_eq!(v["status"], "shutting_down", "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("drain_ms"), "{v}");
}

fn request_id(agent: &Agent) -> u64 {
    let digit = std::fs::read(repo().join("models/images/digit-3.png")).unwrap();
    let (status, body) = http(&mut tcp(agent), "POST", "/v1/infer/digits", "image/png", &digit);
    assert_eq!(status, 200, "{body}");
    json(&body)["request_id"].as_u64().expect("request_id")
}

#[test]
fn request_ids_never_repeat_across_a_reload_or_a_restart() {
    let mut agent = start_agent("");
    let first = request_id(&agent);
    // The ids come from the clock: a new run's cannot meet the late answers of an old one.
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    assert!(first > now_us - 600_000_000 && first <= now_us, "seeded from the clock (µs), got {first}");
    signal(&agent, "-HUP");
    agent.tcp = ready_line(&mut agent.stdout);
    let after_reload = request_id(&agent);
    assert!(after_reload > first, "reload: {after_reload} after {first}");
    drop(agent);
    let agent = start_agent("");
    let after_restart = request_id(&agent);
    assert!(after_restart > after_reload, "restart: {after_restart} after {after_reload}");
}

/// A group of this system other than root's: (name, gid).
fn some_group() -> (String, u32) {
    let text = std::fs::read_to_string("/etc/group").unwrap();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .find(|(_, gid)| *gid != 0)
        .expect("a non-root group in /etc/group")
}

#[test]
fn the_unix_socket_gets_the_configured_mode_and_group() {
    use std::os::unix::fs::MetadataExt;
    let (group, gid) = some_group();
    let agent = start_agent_with("", &format!("socket_group = \"{group}\"\nsocket_mode = \"0660\""));
    let meta = std::fs::metadata(&agent.unix).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, gid), "mode {:o}, gid {}", meta.mode() & 0o777, meta.gid());
    // And it serves.
    let (status, _) = http(&mut unix(&agent), "GET", "/v1/status", "text/plain", b"");
    assert_eq!(status, 200);
    let agent = start_agent_with("", "socket_mode = \"0600\"");
    assert_eq!(std::fs::metadata(&agent.unix).unwrap().mode() & 0o777, 0o600);
    let _ = agent.dir.path();
}

/// `ferry run` on a config that cannot work: its exit status and stderr.
fn run_refused(config: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferry run did not refuse the config within 60 s: it started");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut stderr));
    (status, stderr)
}

#[test]
fn a_socket_group_that_does_not_exist_stops_the_agent_naming_the_key() {
    let (status, stderr) = run_refused(&format!(
        "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 0\n[api]\nunix = \"/tmp/ferry-test-nogroup.sock\"\nsocket_group = \"no-such-group-here\"\n",
        repo().join("firmware-configs/x86-dev.toml").display(),
        repo().join("models").display()
    ));
    assert!(!status.success());
    assert!(stderr.contains("api.socket_group") && stderr.contains("no-such-group-here") && stderr.contains("agent.toml"), "{stderr}");
}

#[test]
fn an_edge_target_whose_endpoint_is_not_the_broker_is_refused_at_start() {
    // x86-dev.toml's edge is mqtt://127.0.0.1:1883; the broker here is another.
    let (status, stderr) = run_refused(&format!(
        "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 0\n[api]\ntcp = \"127.0.0.1:0\"\n[mqtt]\nbroker = \"mqtt://127.0.0.1:9\"\ninsecure = true\n[telemetry]\nenabled = false\n",
        repo().join("firmware-configs/x86-dev.toml").display(),
        repo().join("models").display()
    ));
    assert!(!status.success());
    assert!(stderr.contains("x86-dev.toml") && stderr.contains("].endpoint") && stderr.contains("mqtt.broker"), "{stderr}");
}
