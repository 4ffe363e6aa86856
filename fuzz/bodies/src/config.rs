//! The TOML loaders, fed the same text: the agent config
//! ([`ferry_agent::daemon::config::AgentConfig`]), the board config
//! ([`ferry_drivers::BoardConfig`], with the built-in drivers), the edge config
//! ([`ferry_edge::EdgeConfig`]) and a model manifest ([`ferry_runtime::Manifest`]). Each returns
//! a value or an error, never panics, and every error names the file it is about. A manifest
//! that is accepted has an input whose size can be computed.

use std::path::Path;

use ferry_agent::daemon::config::AgentConfig;
use ferry_drivers::{BoardConfig, Registry};
use ferry_edge::EdgeConfig;
use ferry_runtime::Manifest;

const CONFIG_PATH: &str = "/etc/ferry/fuzz.toml";
/// A manifest's folder must carry its name: the fuzzer can name a model `fuzz`.
const MANIFEST_PATH: &str = "models/fuzz/manifest.toml";

fn names_file(what: &str, error: &dyn std::fmt::Display, path: &str) {
    let text = error.to_string();
    assert!(
        text.contains(path),
        "{what}: the error does not name the file: {text}"
    );
}

/// The body (text that is not UTF-8 is not TOML: nothing to load).
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(CONFIG_PATH);
    if let Err(e) = AgentConfig::parse(text, path) {
        names_file("agent config", &e, CONFIG_PATH);
    }
    match BoardConfig::parse(text, path, &Registry::builtin()) {
        Ok(_) => {}
        Err(errors) => {
            assert!(!errors.is_empty(), "board config: refused with no error");
            for e in errors.iter() {
                names_file("board config", e, CONFIG_PATH);
            }
        }
    }
    if let Err(e) = EdgeConfig::parse(text, path) {
        names_file("edge config", &e, CONFIG_PATH);
    }
    match Manifest::parse(text, Path::new(MANIFEST_PATH)) {
        Ok(m) => {
            let len = m
                .input
                .shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d));
            assert!(
                len.is_some(),
                "an accepted manifest's input shape {:?} has no size",
                m.input.shape
            );
        }
        Err(e) => names_file("manifest", &e, MANIFEST_PATH),
    }
}
