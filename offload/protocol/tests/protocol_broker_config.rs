//! The shipped broker files agree with the protocol: the template has the security settings
//! and authorizes through the dynamic-security plugin alone, the packet limit fits the
//! protocol's message limit, and the ready `mosquitto.conf` is the template rendered (so the
//! two cannot drift apart). What the authorization grants (exactly the topics
//! `protocol::topics` builds) is checked in `tests/tests/acl_isolation.rs`, which also runs
//! `firmware-configs/mosquitto/verify.sh` against a real broker.

use std::path::PathBuf;

use ferry_protocol::DEFAULT_MAX_MESSAGE_SIZE;

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
        "plugin mosquitto_dynamic_security.so",
        "plugin_opt_config_file @DYNSEC_FILE@",
    ] {
        assert!(conf.iter().any(|l| l == required), "missing `{required}`");
    }
    // acl_file grants every SUBSCRIBE, and the plugin defers what it does not grant: together a
    // device could join the edges' shared subscription again.
    assert!(
        !conf.iter().any(|l| l.starts_with("acl_file")),
        "acl_file beside the plugin"
    );
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
        .replace(
            "@DYNSEC_FILE@",
            "/etc/ferry/mosquitto/dynamic-security.json",
        );
    assert_eq!(directives(&read("mosquitto.conf")), directives(&rendered));
}
