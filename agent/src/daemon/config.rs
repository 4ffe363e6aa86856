//! The agent's own config file (`/etc/ferry/agent.toml`): who this device is, which board
//! config and models it uses, where the local API listens, how it reaches the edge, and how it
//! decides. The struct is the documentation; unknown keys are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ferry_decide::DecideConfig;
use ferry_transport::mqtt::MqttConfig;
use serde::Deserialize;

/// The whole agent config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This device.
    pub agent: AgentSection,
    /// The local API for applications on the device.
    #[serde(default)]
    pub api: ApiConfig,
    /// The broker through which requests are offloaded to the edge; absent: local only.
    #[serde(default)]
    pub mqtt: Option<MqttConfig>,
    /// How the agent decides (policy, mode, hedging, hysteresis, probes).
    #[serde(default)]
    pub decide: DecideConfig,
    /// Telemetry to the `[mqtt]` broker, spooled on disk while it is away (only with `[mqtt]`).
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// The file this was read from (set by [`AgentConfig::load`]).
    #[serde(skip)]
    pub path: PathBuf,
}

/// `[agent]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// This device's id: `[A-Za-z0-9_.-]{1,64}`, the CN of its client certificate.
    pub device_id: String,
    /// The board config (relative paths are relative to this file).
    pub board: PathBuf,
    /// The model folder; default: `$FERRY_MODELS`, `./models`, the source tree's, or
    /// `/usr/share/ferry/models`.
    #[serde(default)]
    pub models: Option<PathBuf>,
    /// Threads for tract's matrix products (1..=64). Default 1.
    #[serde(default = "default_threads")]
    pub threads: u16,
    /// Classes returned per answer (1..=100). Default 5.
    #[serde(default = "default_top_k")]
    pub top_k: u16,
    /// Runs of each local variant at start-up, to seed the latency estimates (0..=100). Default 3.
    #[serde(default = "default_warmup")]
    pub warmup_runs: u16,
    /// Deadline for requests that name none, ms; 0 = none. Default 0.
    #[serde(default)]
    pub default_deadline_ms: u32,
    /// For demonstrations on a fast machine: the board's compute — local runs and making an
    /// offload's form (resizing, JPEG encoding, a split's head) — takes this many times as long
    /// as it really computes (the difference is waited out), to stand in for a slower board
    /// (1.0..=50.0). Default 1.0 — leave it there on a real board.
    #[serde(default = "default_slowdown")]
    pub emulate_slowdown: f64,
}

impl AgentSection {
    /// The emulated board's slowdown ([`AgentSection::emulate_slowdown`]).
    pub fn slowdown(&self) -> super::emulate::Slowdown {
        super::emulate::Slowdown::new(self.emulate_slowdown)
    }
}

fn default_slowdown() -> f64 {
    1.0
}

fn default_threads() -> u16 {
    1
}
fn default_top_k() -> u16 {
    5
}
fn default_warmup() -> u16 {
    3
}

/// `[api]`: where the local API listens. Both may be set; at least one must be.
///
/// The API has no authentication of its own: who may use it is who may connect. On the Unix
/// socket that is the socket's owner and group (`socket_mode`, `socket_group`); on TCP it is
/// **every local user** — TCP is for development, the shipped config uses the socket only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// A TCP address, e.g. `127.0.0.1:8080` (without an `[api]` section: `127.0.0.1:8080`).
    /// Unauthenticated: any local user can connect.
    #[serde(default)]
    pub tcp: Option<SocketAddr>,
    /// A Unix socket path, e.g. `/run/ferry/api.sock`.
    #[serde(default)]
    pub unix: Option<PathBuf>,
    /// The group the Unix socket is given right after bind (a name in `/etc/group`, or a
    /// number), so that the applications in it can connect; a group that does not exist stops
    /// `ferry run` with an error naming this key. Default: the agent's own group.
    #[serde(default)]
    pub socket_group: Option<String>,
    /// The Unix socket's permission bits, octal, set right after bind whatever the umask:
    /// `"0660"` (owner and group read/write, the default) .. `"0600"`; other users are never
    /// given access (`0..=0770`, each class `rw` or nothing).
    #[serde(default = "default_socket_mode")]
    pub socket_mode: String,
    /// The largest request body accepted, bytes (1 KiB..=64 MiB). Default 8 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// On stop (SIGTERM, reload), how long requests in flight may take to finish, ms
    /// (0..=60000): new connections are refused at once, what is still running after this is
    /// answered `503 shutting_down`. Default 5000.
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u32,
}

fn default_socket_mode() -> String {
    "0660".to_string()
}
fn default_drain_ms() -> u32 {
    5000
}

impl ApiConfig {
    /// `socket_mode` as permission bits; `None` when it is not a mode this key accepts.
    pub fn socket_mode_bits(&self) -> Option<u32> {
        let bits = u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8).ok()?;
        // Owner and group only, each read+write or nothing (execute means nothing on a socket).
        let ok = bits & !0o660 == 0;
        ok.then_some(bits)
    }
}

fn default_tcp() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
}
fn default_max_body() -> usize {
    8 << 20
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            tcp: default_tcp(),
            unix: None,
            socket_group: None,
            socket_mode: default_socket_mode(),
            max_body_bytes: default_max_body(),
            drain_ms: default_drain_ms(),
        }
    }
}

/// A config that cannot be used: the file, the key, what was expected.
#[derive(Debug, thiserror::Error)]
pub enum AgentConfigError {
    /// Unreadable.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or not the schema (the message names the key and line).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value out of range.
    #[error("{path}: key `{key}`: expected {expected}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What was expected.
        expected: String,
    },
}

impl AgentConfig {
    /// Reads and checks the agent config at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, AgentConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and checks config text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<AgentConfig, AgentConfigError> {
        let mut config: AgentConfig = toml::from_str(text).map_err(|e| AgentConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " | "),
        })?;
        config.path = path.to_path_buf();
        config.check()?;
        Ok(config)
    }

    fn value(&self, key: &str, expected: impl Into<String>) -> AgentConfigError {
        AgentConfigError::Value { path: self.path.clone(), key: key.to_string(), expected: expected.into() }
    }

    fn check(&self) -> Result<(), AgentConfigError> {
        let a = &self.agent;
        if ferry_protocol::DeviceId::new(&a.device_id).is_err() {
            return Err(self.value("agent.device_id", "1 to 64 characters of [A-Za-z0-9_.-]"));
        }
        if !(1..=64).contains(&a.threads) {
            return Err(self.value("agent.threads", "1..=64"));
        }
        if !(1..=100).contains(&a.top_k) {
            return Err(self.value("agent.top_k", "1..=100"));
        }
        if !(1.0..=50.0).contains(&a.emulate_slowdown) {
            return Err(self.value("agent.emulate_slowdown", "1.0..=50.0"));
        }
        if a.warmup_runs > 100 {
            return Err(self.value("agent.warmup_runs", "0..=100"));
        }
        if self.api.tcp.is_none() && self.api.unix.is_none() {
            return Err(self.value("api", "at least one of `tcp` or `unix`"));
        }
        if !(1024..=64 << 20).contains(&self.api.max_body_bytes) {
            return Err(self.value("api.max_body_bytes", "1024..=67108864"));
        }
        if self.api.socket_mode_bits().is_none() {
            return Err(self.value("api.socket_mode", format!("an octal mode giving owner and group rw or nothing, e.g. \"0660\" or \"0600\", not `{}`", self.api.socket_mode)));
        }
        if self.api.drain_ms > 60_000 {
            return Err(self.value("api.drain_ms", "0..=60000"));
        }
        if self.api.unix.is_none() && self.api.socket_group.is_some() {
            return Err(self.value("api.socket_group", "`api.unix` too: the group is the Unix socket's"));
        }
        let d = &self.decide;
        if d.deadline_grace_ms > 10_000 {
            return Err(self.value("decide.deadline_grace_ms", "0..=10000"));
        }
        if d.local_queue_max > 1024 {
            return Err(self.value("decide.local_queue_max", "0..=1024"));
        }
        if !(0.0..=1000.0).contains(&d.aging_factor) {
            return Err(self.value("decide.aging_factor", "0..=1000"));
        }
        if let Some(mqtt) = &self.mqtt {
            mqtt.check().map_err(|e| self.value("mqtt", e.to_string()))?;
        }
        self.telemetry.check().map_err(|e| self.value("telemetry", e.to_string()))?;
        Ok(())
    }

    /// A path named in this file, resolved against the file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, AgentConfigError> {
        AgentConfig::parse(text, Path::new("/etc/ferry/agent.toml"))
    }

    #[test]
    fn a_minimal_config_takes_the_defaults() {
        let c = parse("[agent]\ndevice_id = \"dev-1\"\nboard = \"rpi4.toml\"\n").unwrap();
        assert_eq!(c.api.tcp, Some(SocketAddr::from(([127, 0, 0, 1], 8080))));
        assert_eq!(c.agent.top_k, 5);
        assert!(c.mqtt.is_none());
        assert_eq!(c.resolve(&c.agent.board), Path::new("/etc/ferry/rpi4.toml"));
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let e = parse("[agent]\ndevice_id = \"dev/1\"\nboard = \"b.toml\"\n").unwrap_err().to_string();
        assert!(e.contains("/etc/ferry/agent.toml") && e.contains("agent.device_id"), "{e}");
        let e = parse("[agent]\ndevice_id = \"d\"\nboard = \"b.toml\"\ncolour = 1\n").unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let e = parse("[agent]\ndevice_id = \"d\"\nboard = \"b.toml\"\n[api]\ntcp = \"nope\"\n").unwrap_err().to_string();
        assert!(e.contains("tcp"), "{e}");
        let e = parse("[agent]\ndevice_id = \"d\"\nboard = \"b.toml\"\n[api]\nunix = \"/run/a.sock\"\nsocket_mode = \"0666\"\n").unwrap_err().to_string();
        assert!(e.contains("api.socket_mode") && e.contains("0666"), "{e}");
        let e = parse("[agent]\ndevice_id = \"d\"\nboard = \"b.toml\"\n[decide]\naging_factor = -1.0\n").unwrap_err().to_string();
        assert!(e.contains("/etc/ferry/agent.toml") && e.contains("decide.aging_factor"), "{e}");
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    #[test]
    fn the_shipped_agent_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-configs/agent.toml");
        let c = AgentConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.agent.device_id, "dev-1");
        assert!(c.mqtt.is_some() && c.api.unix.is_some());
        // The socket only: TCP would let every local user in.
        assert!(c.api.tcp.is_none(), "the shipped config must not open the unauthenticated TCP API");
        assert_eq!((c.api.socket_group.as_deref(), c.api.socket_mode_bits()), (Some("ferry-apps"), Some(0o660)));
        assert!(c.resolve(&c.agent.board).ends_with("firmware-configs/rpi4.toml"));
    }
}
