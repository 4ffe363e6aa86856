//! The shipped broker files agree with the protocol: the ACL grants exactly the topics
//! `protocol::topics` builds, the packet limit fits the protocol's message limit, and the
//! ready `mosquitto.conf` is the template rendered (so the two cannot drift apart).
//! `firmware-configs/mosquitto/verify.sh` checks the same files against a real broker.

use std::path::PathBuf;

use ferry_protocol::{topics, DEFAULT_MAX_MESSAGE_SIZE};

fn read(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../firmware-configs/mosquitto")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Non-comment, non-empty lines, trimmed.
fn directives(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn acl_lets_the_edge_read_requests_and_write_responses_and_confines_devices() {
    let acl = directives(&read("acl"));
    let edge = acl
        .iter()
        .position(|l| l == "user ferry-edge")
        .expect("edge user");
    let edge_rules: Vec<&str> = acl[edge + 1..]
        .iter()
        .take_while(|l| l.starts_with("topic "))
        .map(String::as_str)
        .collect();
    assert!(edge_rules.contains(&format!("topic read {}", topics::REQUEST_FILTER).as_str()));
    assert!(edge_rules.contains(&"topic write ferry/+/resp"));
    assert_eq!(
        edge_rules.len(),
        2,
        "edge has more rights than it needs: {edge_rules:?}"
    );
    // The device pattern is the filter protocol::topics::device_filter builds.
    assert!(acl.contains(&"pattern readwrite ferry/%u/#".to_string()));
    assert!(acl.iter().filter(|l| l.starts_with("pattern ")).count() == 1);
}

#[test]
fn template_has_the_security_settings_and_fits_the_message_limit() {
    let conf = directives(&read("mosquitto.conf.in"));
    for required in [
        "allow_anonymous false",
        "require_certificate true",
        "use_identity_as_username true",
        "tls_version tlsv1.3",
        "set_tcp_nodelay true",
        "listener @PORT@ @BIND@",
        "cafile @CERT_DIR@/ca.crt",
        "certfile @CERT_DIR@/broker.crt",
        "keyfile @CERT_DIR@/broker.key",
        "acl_file @ACL_FILE@",
    ] {
        assert!(conf.iter().any(|l| l == required), "missing `{required}`");
    }
    let max_packet: usize = conf
        .iter()
        .find_map(|l| l.strip_prefix("max_packet_size "))
        .and_then(|v| v.parse().ok())
        .expect("max_packet_size");
    // Room for the MQTT fixed header, topic (≤ 5 + 64 + 4 + 64 bytes) and v5 properties.
    assert!(
        max_packet >= DEFAULT_MAX_MESSAGE_SIZE + 1024,
        "{max_packet}"
    );
}

#[test]
fn ready_config_is_the_template_rendered_with_lab_values() {
    let rendered = read("mosquitto.conf.in")
        .replace("@PORT@", "8883")
        .replace("@BIND@", "0.0.0.0")
        .replace("@CERT_DIR@", "/etc/ferry/certs")
        .replace("@ACL_FILE@", "/etc/ferry/mosquitto/acl");
    assert_eq!(directives(&read("mosquitto.conf")), directives(&rendered));
}
