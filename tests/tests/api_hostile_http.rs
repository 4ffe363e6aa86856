//! Hostile HTTP against a running `ferry run` (issue 14, the suite's bad-input part): bodies
//! over `[api] max_body_bytes` (with a Content-Length, with one far larger than is sent, and
//! chunked with none), broken chunked framing, wrong or missing content types, malformed
//! queries and model names. Each is answered with a 4xx and a JSON `{"error": ...}` body —
//! never a 5xx, never a panic — and after each the agent still answers a valid request.
//! Requests that hyper refuses before the router sees them (not HTTP at all, headers over its
//! limit) get a 4xx or a closed connection, never a 5xx.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_tests::harness::{repo_root, workspace_binary, Proc};

/// The agent's `[api] max_body_bytes` here.
const LIMIT: usize = 64 * 1024;

struct Agent {
    proc: Proc,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// `ferry run` with the x86 board, no broker, its API on a free loopback port.
fn start() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\ndevice_id = \"dev-1\"\nboard = \"{}\"\nmodels = \"{}\"\nwarmup_runs = 0\n\
             [api]\ntcp = \"127.0.0.1:0\"\nmax_body_bytes = {LIMIT}\n[telemetry]\nenabled = false\n",
            repo_root().join("firmware-configs/x86-dev.toml").display(),
            repo_root().join("models").display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(workspace_binary("ferry"));
    cmd.args(["run", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG");
    let proc = Proc::spawn(cmd, "ferry");
    assert!(
        proc.stdout.wait(Duration::from_secs(120), |l| l
            .iter()
            .any(|l| l.starts_with("ferry: ready"))),
        "ferry run did not get ready:\n{}",
        proc.stderr.text()
    );
    let line = proc
        .stdout
        .all()
        .into_iter()
        .find(|l| l.starts_with("ferry: ready"))
        .unwrap();
    let addr = line
        .split_whitespace()
        .skip_while(|w| *w != "tcp")
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no tcp address in {line:?}"));
    Agent {
        proc,
        addr,
        _dir: dir,
    }
}

/// What came back: the status (None: the connection closed without an HTTP answer), the
/// headers (lower-case names) and the body.
#[derive(Debug)]
struct Answer {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON body's `error`; panics unless the body is JSON with one.
    fn json_error(&self, what: &str) -> String {
        assert!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{what}: not a JSON answer: {self:?}"
        );
        let v: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{what}: body not JSON ({e}): {self:?}"));
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no \"error\" in {v}"))
            .to_string()
    }
}

/// Sends `head` then `body` (from another thread, so that an early answer is read while the
/// body is still going out; a write the server cut short is fine) and reads the answer, at
/// most 20 s. The write side stays open (hyper closes a connection whose client half-closed).
fn exchange(addr: SocketAddr, head: &[u8], body: Vec<u8>) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = head.to_vec();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&head);
        for chunk in body.chunks(8192) {
            if writer.write_all(chunk).is_err() {
                return;
            }
        }
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if complete(&raw) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    let _ = sender.join();
    parse(&raw)
}

/// True once `raw` holds a whole answer (its head and Content-Length bytes of body).
fn complete(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .is_some_and(|n| body.len() >= n)
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A POST to `path` with `content_type` (None: no such header) and a Content-Length body.
fn post(addr: SocketAddr, path: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
    let ct = content_type
        .map(|t| format!("Content-Type: {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: ferry\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    exchange(addr, head.as_bytes(), body.to_vec())
}

fn digit() -> Vec<u8> {
    std::fs::read(repo_root().join("models/images/digit-7.png")).unwrap()
}

/// The agent still serves: a valid image is answered 200 with the right class.
fn still_serving(agent: &mut Agent, after: &str) {
    assert!(
        agent.proc.is_running(),
        "the agent died after {after}:\n{}",
        agent.proc.stderr.text()
    );
    let a = post(agent.addr, "/v1/infer/digits", Some("image/png"), &digit());
    assert_eq!(
        a.status,
        Some(200),
        "after {after}: {a:?}\n{}",
        agent.proc.stderr.text()
    );
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["top"][0]["label"], "7", "after {after}: {v}");
}

/// A client error with a JSON body, then a valid request answered.
fn refused(agent: &mut Agent, what: &str, a: Answer, status: u16, mentions: &str) {
    assert_eq!(a.status, Some(status), "{what}: {a:?}");
    let message = a.json_error(what);
    assert!(
        message.contains(mentions),
        "{what}: `{mentions}` not in {message:?}"
    );
    eprintln!("{what}: {status} {message}");
    still_serving(agent, what);
}

#[test]
fn hostile_http_gets_4xx_with_json_and_the_agent_keeps_serving() {
    let mut agent = start();
    let addr = agent.addr;
    still_serving(&mut agent, "start");

    // Bodies over the limit.
    let over = vec![0u8; LIMIT + 1];
    let a = post(addr, "/v1/infer/digits", Some("image/png"), &over);
    refused(
        &mut agent,
        "a body one byte over the limit",
        a,
        413,
        "max_body_bytes",
    );
    let head = "POST /v1/infer/digits HTTP/1.1\r\nHost: ferry\r\nContent-Type: image/png\r\nContent-Length: 10000000000\r\n\r\n";
    let a = exchange(addr, head.as_bytes(), vec![0u8; LIMIT + 4096]);
    refused(
        &mut agent,
        "a Content-Length of 10 GB (64 KiB + 4 KiB sent)",
        a,
        413,
        "max_body_bytes",
    );
    let mut chunked = Vec::new();
    for _ in 0..((LIMIT / 8192) + 2) {
        chunked.extend_from_slice(b"2000\r\n");
        chunked.extend_from_slice(&[0u8; 8192]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /v1/infer/digits HTTP/1.1\r\nHost: ferry\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let a = exchange(addr, head.as_bytes(), chunked);
    refused(
        &mut agent,
        "a chunked body over the limit, no Content-Length",
        a,
        413,
        "max_body_bytes",
    );
    // Broken chunked framing: a client error, not a server one.
    let a = exchange(addr, head.as_bytes(), b"zz\r\nhello\r\n0\r\n\r\n".to_vec());
    refused(&mut agent, "a chunk size that is not hex", a, 400, "body");

    // Content types.
    let png = digit();
    for (what, ct) in [
        ("no Content-Type", None),
        ("text/plain", Some("text/plain")),
        ("application/json", Some("application/json")),
        (
            "multipart/form-data",
            Some("multipart/form-data; boundary=x"),
        ),
        ("image/gif", Some("image/gif")),
        ("a Content-Type that is not ASCII", Some("image/p\u{e9}ng")),
    ] {
        let a = post(addr, "/v1/infer/digits", ct, &png);
        refused(
            &mut agent,
            what,
            a,
            415,
            "expected image/png, image/jpeg or application/octet-stream",
        );
    }
    // Parameters and case do not matter to the media type.
    let a = post(
        addr,
        "/v1/infer/digits",
        Some("IMAGE/PNG; charset=binary"),
        &png,
    );
    assert_eq!(a.status, Some(200), "{a:?}");
    let a = post(addr, "/v1/infer/digits", Some("image/png"), b"");
    refused(&mut agent, "an empty body", a, 400, "empty body");

    // Malformed queries.
    let zeros = vec![0u8; 64 * 4];
    for (what, query, ct, body, mentions) in [
        (
            "a deadline that is not a number",
            "deadline_ms=soon",
            "image/png",
            &png,
            "deadline_ms",
        ),
        (
            "a negative deadline",
            "deadline_ms=-5",
            "image/png",
            &png,
            "deadline_ms",
        ),
        (
            "a deadline over u32",
            "deadline_ms=4294967296",
            "image/png",
            &png,
            "deadline_ms",
        ),
        (
            "an unknown parameter",
            "colour=blue",
            "image/png",
            &png,
            "colour",
        ),
        (
            "a parameter twice",
            "mode=latency&mode=energy",
            "image/png",
            &png,
            "mode",
        ),
        (
            "bad percent-encoding",
            "mode=%ZZ%",
            "image/png",
            &png,
            "mode",
        ),
        (
            "a bool that is not one",
            "best_effort=maybe",
            "image/png",
            &png,
            "best_effort",
        ),
        (
            "an unknown mode",
            "mode=fast",
            "image/png",
            &png,
            "mode `fast`",
        ),
        (
            "an unknown placement",
            "placement=moon",
            "image/png",
            &png,
            "placement `moon`",
        ),
        ("an empty stream", "stream=", "image/png", &png, "stream"),
        (
            "freshest without a stream",
            "freshest=true",
            "image/png",
            &png,
            "needs stream",
        ),
        (
            "a shape with a hole",
            "shape=1,,8,8",
            "application/octet-stream",
            &zeros,
            "shape",
        ),
        (
            "a shape that overflows",
            "shape=4294967295,4294967295,4294967295,4294967295",
            "application/octet-stream",
            &zeros,
            "tensor",
        ),
        (
            "a shape of nine dimensions",
            "shape=1,1,1,1,1,1,1,8,8",
            "application/octet-stream",
            &zeros,
            "shape",
        ),
        (
            "a tensor without a shape",
            "",
            "application/octet-stream",
            &zeros,
            "shape",
        ),
    ] {
        let a = post(addr, &format!("/v1/infer/digits?{query}"), Some(ct), body);
        refused(&mut agent, what, a, 400, mentions);
    }

    // Model names.
    let long = "m".repeat(4000);
    for (what, path) in [
        (
            "a model path that climbs",
            "/v1/infer/..%2f..%2fetc%2fpasswd".to_string(),
        ),
        ("a 4000-character model name", format!("/v1/infer/{long}")),
        ("a model name with a NUL", "/v1/infer/digits%00".to_string()),
    ] {
        let a = post(addr, &path, Some("image/png"), &png);
        refused(&mut agent, what, a, 404, "unknown model");
    }

    // Below the router: hyper answers (or closes) on its own. A 4xx or nothing, never a 5xx.
    let huge_header = format!(
        "GET /v1/status HTTP/1.1\r\nHost: ferry\r\nX-Junk: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    for (what, raw) in [
        ("not HTTP at all", b"\x16\x03\x01\x00\xa5hello\r\n\r\n".to_vec()),
        (
            "a request line without a version",
            b"POST /v1/infer/digits\r\n\r\n".to_vec(),
        ),
        ("a 1 MiB header", huge_header.into_bytes()),
        (
            "Content-Length twice, different",
            b"POST /v1/infer/digits HTTP/1.1\r\nHost: f\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"
                .to_vec(),
        ),
    ] {
        let a = exchange(addr, &raw, Vec::new());
        eprintln!("{what}: {:?} {:?}", a.status, a.body);
        assert!(a.status.is_none_or(|s| (400..500).contains(&s)), "{what}: {a:?}");
        still_serving(&mut agent, what);
    }

    // Nothing above was counted as an answer or took the runner, and nothing panicked.
    let status = exchange(
        addr,
        b"GET /v1/status HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\n\r\n",
        Vec::new(),
    );
    let v: serde_json::Value =
        serde_json::from_str(&status.body).unwrap_or_else(|e| panic!("{e}: {status:?}"));
    assert_eq!(v["answers"]["failed"], 0, "{v}");
    let text = agent.proc.stderr.text();
    assert!(!text.contains("panicked"), "{text}");
}
