//! No secret in any log or telemetry, across the whole suite: every PKI
//! [`make_pki`](crate::harness::make_pki) makes registers its private keys here, and every
//! process output a test captures ([`Proc`](crate::harness::Proc)'s stdout and stderr — agent,
//! edge, broker, `mosquitto_sub` with the telemetry it prints — checked when the handle drops)
//! and every payload a bare client receives ([`raw`](crate::raw)) is searched for them. A hit
//! fails the test, naming the output, the line and the key file, never the secret itself.
//!
//! What is searched for, per key: the lines of its PEM body (base64, so the key printed as
//! PEM, as one base64 string, or inside a JSON string shows) that carry its private part, and,
//! for an EC key, its private scalar in hex (either case) and in base64. The public key, which
//! the certificate shows too, is not a secret. The suite has no passwords or pre-shared keys
//! (the broker authenticates by certificate only); [`register`] takes any other secret a test
//! makes.

use std::path::Path;
use std::sync::Mutex;

use rumqttc::tokio_rustls::rustls::pki_types::pem::PemObject;
use rumqttc::tokio_rustls::rustls::pki_types::PrivateKeyDer;

/// Shortest needle kept: a shorter piece of base64 could occur by chance.
const MIN_NEEDLE: usize = 16;

/// A secret and the strings that give it away.
#[derive(Debug, Clone)]
struct Secret {
    /// Where it came from (a key file), for the failure message.
    origin: String,
    needles: Vec<String>,
}

static SECRETS: Mutex<Vec<Secret>> = Mutex::new(Vec::new());

fn secrets() -> std::sync::MutexGuard<'static, Vec<Secret>> {
    SECRETS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remembers `needles` (each at least 16 characters; shorter ones are ignored) as giving away
/// the secret from `origin`.
pub fn register(origin: &str, needles: impl IntoIterator<Item = String>) {
    let needles: Vec<String> = needles
        .into_iter()
        .filter(|n| n.len() >= MIN_NEEDLE)
        .collect();
    if needles.is_empty() {
        return;
    }
    let mut all = secrets();
    if !all
        .iter()
        .any(|s| s.origin == origin && s.needles == needles)
    {
        all.push(Secret {
            origin: origin.to_string(),
            needles,
        });
    }
}

/// The strings that give away the private key in PEM text `pem`: for an EC key, the PEM body
/// lines that carry part of its private scalar (not the one that holds only the public key,
/// which the certificate shows too) and the scalar alone in hex and base64; for another key,
/// every body line.
pub fn key_needles(pem: &str) -> Vec<String> {
    let lines: Vec<String> = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .map(str::to_string)
        .collect();
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok();
    let Some((at, scalar)) = der.as_ref().and_then(|d| ec_scalar(d.secret_der())) else {
        return lines;
    };
    // Each full 64-character line encodes 48 bytes of the DER.
    let standard = lines.iter().rev().skip(1).all(|l| l.len() == 64);
    let mut needles: Vec<String> = lines
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !standard || (48 * i < at + scalar.len() && at < 48 * (i + 1)))
        .map(|(_, l)| l)
        .collect();
    let hex: String = scalar.iter().map(|b| format!("{b:02x}")).collect();
    needles.push(hex.to_uppercase());
    needles.push(hex);
    needles.push(base64(scalar));
    needles
}

/// The private scalar of an EC key and where it starts: SEC1 `ECPrivateKey` (also inside
/// PKCS#8) is `version 1` followed by an OCTET STRING of 32 to 66 bytes.
fn ec_scalar(der: &[u8]) -> Option<(usize, &[u8])> {
    let at = der
        .windows(5)
        .position(|w| w[..4] == [0x02, 0x01, 0x01, 0x04] && (32..=66).contains(&w[4]))?;
    let len = usize::from(der[at + 4]);
    der.get(at + 5..at + 5 + len).map(|s| (at + 5, s))
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Registers every private key (`*.key`) in `dir`.
pub fn register_keys_in(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_some_and(|e| e == "key") {
            if let Ok(pem) = std::fs::read_to_string(&path) {
                register(&path.display().to_string(), key_needles(&pem));
            }
        }
    }
}

/// A secret found in an output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// The line (0-based) it is on.
    pub line: usize,
    /// Where the secret came from (a key file).
    pub origin: String,
}

/// Every registered secret in `lines`.
pub fn leaks<S: AsRef<str>>(lines: &[S]) -> Vec<Leak> {
    let all = secrets();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.as_ref();
        for s in all.iter() {
            if s.needles.iter().any(|n| line.contains(n.as_str())) {
                found.push(Leak {
                    line: i,
                    origin: s.origin.clone(),
                });
            }
        }
    }
    found
}

/// Panics if `lines` (the output named `what`) hold a registered secret; the message names the
/// lines and the key files, not the secret.
pub fn assert_clean<S: AsRef<str>>(what: &str, lines: &[S]) {
    let found = leaks(lines);
    if !found.is_empty() {
        let list: Vec<String> = found
            .iter()
            .map(|l| format!("line {} holds {}", l.line + 1, l.origin))
            .collect();
        panic!(
            "SECRET LEAKED: {what} printed private key material: {}",
            list.join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg");
        assert_eq!(base64(b"fo"), "Zm8");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
