//! Logging: `tracing` to stderr, filtered by `RUST_LOG` or the `-v` count; no colour codes
//! unless stderr is a terminal, so journald stores plain lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `verbose` raises the default level (0 = warn, 1 = info, 2+ = debug).
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // The demo's in-process broker (rumqttd) logs every probe connection as an error: quiet it.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("{default},rumqttd=off")));
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).with_target(false).try_init();
}
