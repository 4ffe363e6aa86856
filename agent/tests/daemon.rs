//! `ferry run` as a process: it starts, serves the local API on TCP and on a Unix socket,
//! answers correctly, refuses bad requests with 4xx and a message, reports status and metrics,
//! and stops on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The daemon process; killed on drop, even when a test fails.
struct Agent {
    child: Child,
    tcp: String,
    unix: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(extra: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let unix = dir.path().join("api.sock");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 1\n{extra}\n[api]\ntcp = \"127.0.0.1:0\"\nunix = \"{}\"\nmax_body_bytes = 4194304\n",
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
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("ready line");
    assert!(line.starts_with("ferry: ready"), "{line}");
    let tcp = line.split_whitespace().skip_while(|w| *w != "tcp").nth(1).expect("tcp address").to_string();
    Agent { child, tcp, unix, _dir: dir }
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
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
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
fn bad_requests_get_4xx_with_a_clear_message() {
    let agent = start_agent("");
    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/resnet-9000", "image/png", b"x");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown model `resnet-9000`"), "{body}");

    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "text/plain", b"hello");
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("image/png"), "{body}");

    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits?shape=1,1,8,8", "application/octet-stream", &[0u8; 10]);
    assert_eq!(status, 400, "{body}");

    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "application/octet-stream", &[0u8; 256]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("shape"), "{body}");

    let big = vec![0u8; 5 << 20];
    let (status, _) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "image/png", &big);
    assert_eq!(status, 413);

    let (status, body) = http(&mut tcp(&agent), "POST", "/v1/infer/digits", "image/png", b"not a png");
    assert_eq!(status, 503, "an undecodable image fails its run: {body}");
    assert!(json(&body)["error"].as_str().unwrap_or("").contains("image"), "{body}");

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
