//! One request to the agent's API over its Unix socket, observed at the byte level: whether
//! the connection was refused, cut, left unanswered, or answered — and answered exactly once.
//! [`ferry_agent::client`] folds these cases into one error type; the fault suite must tell
//! them apart (a refusal is a clear error, a cut is one only when the agent was killed, and
//! bytes after the answer would be a second answer).

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// What came back.
#[derive(Debug, Clone)]
pub enum Exchange {
    /// One whole HTTP response: its status and JSON body.
    Answer {
        /// HTTP status.
        status: u16,
        /// The body (JSON; `Value::Null` if it was not JSON).
        body: serde_json::Value,
    },
    /// The connection could not be made (no socket, nobody listening): the request was not
    /// taken, and the client knows it.
    Refused(String),
    /// Connected, then closed or reset before a single byte of an answer came.
    Cut(String),
    /// Nothing, or not a whole answer, within the timeout.
    NoAnswer {
        /// Bytes of an answer that did arrive.
        partial: usize,
    },
    /// Bytes that are not one HTTP response: unparseable, truncated, or followed by more
    /// bytes (a second answer on the same exchange).
    Garbled(String),
}

/// Sends `POST path` with `body` as `content_type` and reads the answer, giving up after
/// `timeout` in all.
pub fn post(
    socket: &Path,
    path: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Exchange {
    let end = Instant::now() + timeout;
    let mut s = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => return Exchange::Refused(e.to_string()),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: ferry\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if let Err(e) = s.set_write_timeout(Some(timeout)) {
        return Exchange::Cut(e.to_string());
    }
    if let Err(e) = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
    {
        return match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Exchange::NoAnswer { partial: 0 },
            _ => Exchange::Cut(format!("while sending: {e}")),
        };
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Exchange::NoAnswer { partial: raw.len() };
        }
        if let Err(e) = s.set_read_timeout(Some(left)) {
            return Exchange::Cut(e.to_string());
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Exchange::NoAnswer { partial: raw.len() };
            }
            Err(e) if raw.is_empty() => return Exchange::Cut(format!("while waiting: {e}")),
            Err(e) => {
                return Exchange::Garbled(format!("{e} after {} bytes of an answer", raw.len()))
            }
        }
    }
    if raw.is_empty() {
        return Exchange::Cut("closed without an answer".to_string());
    }
    parse(&raw)
}

/// One HTTP/1.1 response, and nothing after it.
fn parse(raw: &[u8]) -> Exchange {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Exchange::Garbled(format!("no HTTP header in {} bytes", raw.len()));
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let rest = &raw[split + 4..];
    let Some(status) = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return Exchange::Garbled(format!("bad status line: {:.60}", head));
    };
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    let body = match length {
        Some(n) if rest.len() < n => {
            return Exchange::Garbled(format!("a body of {} bytes, {n} announced", rest.len()))
        }
        Some(n) if rest.len() > n => {
            return Exchange::Garbled(format!(
                "{} bytes after the answer's {n}-byte body: a second answer?",
                rest.len() - n
            ))
        }
        Some(n) => &rest[..n],
        None => rest,
    };
    Exchange::Answer {
        status,
        body: serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_response_parses_and_a_second_one_after_it_is_garbled() {
        let one = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ran\":\"x\"}";
        match parse(one) {
            Exchange::Answer { status, body } => {
                assert_eq!((status, body["ran"].as_str()), (200, Some("x")))
            }
            other => panic!("{other:?}"),
        }
        let two = [&one[..], &one[..]].concat();
        assert!(matches!(parse(&two), Exchange::Garbled(m) if m.contains("second answer")));
        assert!(matches!(parse(&one[..one.len() - 2]), Exchange::Garbled(_)));
        assert!(matches!(parse(b"garbage"), Exchange::Garbled(_)));
    }
}
