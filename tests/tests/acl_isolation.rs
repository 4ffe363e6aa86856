//! What one device's certificate can do to the other devices, against a real Mosquitto with
//! the shipped config and authorization (issue 14, defect 2): it cannot join the edges'
//! shared-subscription group (the broker refuses the SUBACK, so it takes no turn in the round
//! robin and every other device's request reaches the edge), cannot subscribe to or publish
//! into another device's topics, and `firmware-configs/mosquitto/verify.sh` passes.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{topics, DeviceId, ModelName, Status};
use ferry_tests::harness::{self, cert, program, repo_root, Broker, Edge, EdgeOptions};
use ferry_tests::raw::{self, RawClient};
use ferry_transport::mqtt::{tls, TlsVersion};
use rumqttc::v5::mqttbytes::v5::{PubAckReason, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;

/// Connections the impostor opens, each under its own client id (as in the defect).
const IMPOSTOR_CONNECTIONS: usize = 7;
/// Requests dev-2 sends while the impostor is (trying to be) in the group.
const REQUESTS: usize = 16;

/// A raw MQTT v5 connection with `identity`'s certificate as `client_id`.
async fn connect_as(broker: &Broker, identity: &str, client_id: &str) -> RawClient {
    let config = tls::build(
        &cert("ca.crt"),
        Some((
            &cert(&format!("{identity}.crt")),
            &cert(&format!("{identity}.key")),
        )),
        tls::protocol_versions(TlsVersion::Tls13),
    )
    .expect("client TLS config");
    raw::connect(broker.port, Some(config), client_id)
        .await
        .unwrap_or_else(|e| panic!("{identity} cannot connect as {client_id}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_certificate_cannot_join_the_edges_group_and_every_request_reaches_the_edge() {
    let broker = Broker::start();
    let options = EdgeOptions::default();
    let edge = Edge::start(&broker, &options);
    // The shipped default group, named in full: refusing it must not rest on its secrecy.
    let group = topics::edge_request_subscription(&options.share_group).expect("edge filter");
    assert_eq!(group, "$share/ferry-edges/ferry/+/req/+");

    let mut impostors = Vec::new();
    let mut subacks = Vec::new();
    for i in 0..IMPOSTOR_CONNECTIONS {
        let mut c = connect_as(&broker, "dev-1", &format!("dev-1-impostor-{i}")).await;
        subacks.push(c.subscribe(&group).await);
        impostors.push(c);
    }

    let dev2 = Arc::new(broker.device("dev-2").await);
    let mut sent = Vec::new();
    for _ in 0..REQUESTS {
        let dev2 = dev2.clone();
        sent.push(tokio::spawn(async move {
            let request = harness::image_request(&dev2, "digits", "models/images/digit-7.png");
            dev2.offload(request, Duration::from_secs(10)).await
        }));
    }
    let mut answered = 0;
    let mut failures = Vec::new();
    for t in sent {
        match t.await.expect("request task") {
            Ok(r) if r.status == Status::Ok => answered += 1,
            Ok(r) => failures.push(format!("{:?}: {}", r.status, r.detail)),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let mut drawn = 0;
    for c in &mut impostors {
        while c.next_message(Duration::from_millis(100)).await.is_some() {
            drawn += 1;
        }
    }
    let at_edge = edge.proc.stderr.count(&["answered ok"]);
    let report = format!(
        "impostor SUBACKs {subacks:?}; dev-2's answers {answered}/{REQUESTS}, requests the edge \
         answered {at_edge}, delivered to the impostor {drawn}; failures {failures:?}"
    );
    assert!(
        subacks
            .iter()
            .all(|codes| codes == &[SubscribeReasonCode::NotAuthorized]),
        "a device certificate joined the edges' group: {report}\nbroker:\n{}",
        broker.proc.stderr.text()
    );
    assert_eq!(answered, REQUESTS, "{report}");
    assert_eq!(at_edge, REQUESTS, "{report}");
    assert_eq!(drawn, 0, "{report}");
    assert_eq!(dev2.counters().dropped_unknown, 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_can_neither_subscribe_to_nor_publish_into_another_devices_topics() {
    let broker = Broker::start();
    let _edge = Edge::start(&broker, &EdgeOptions::default());
    let mut snoop = connect_as(&broker, "dev-1", "dev-1-snoop").await;
    for filter in [
        "ferry/dev-2/resp",
        "ferry/dev-2/#",
        "ferry/+/resp",
        "$share/any-group/ferry/dev-2/resp",
        "$share/any-group/ferry/+/req/+",
        topics::REQUEST_FILTER,
        "ferry/#",
        "#",
    ] {
        assert_eq!(
            snoop.subscribe(filter).await,
            [SubscribeReasonCode::NotAuthorized],
            "dev-1 subscribing to {filter}"
        );
    }
    let dev2_id = DeviceId::new("dev-2").expect("device id");
    let digits = ModelName::new("digits").expect("model name");
    for topic in [
        topics::request_topic(&dev2_id, &digits),
        topics::response_topic(&dev2_id),
        topics::telemetry_topic(&dev2_id, "status").expect("telemetry topic"),
    ] {
        assert_eq!(
            snoop.publish(&topic, b"forged".to_vec()).await,
            PubAckReason::NotAuthorized,
            "dev-1 publishing to {topic}"
        );
    }
    // Its own response topic it may read (and the refusals above were about whose topic).
    assert_eq!(
        snoop.subscribe("ferry/dev-1/resp").await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );

    let dev2 = broker.device("dev-2").await;
    let request = harness::image_request(&dev2, "digits", "models/images/digit-7.png");
    let response = dev2
        .offload(request, Duration::from_secs(15))
        .await
        .expect("dev-2's answer");
    assert_eq!(response.status, Status::Ok);
    assert!(
        snoop
            .next_message(Duration::from_millis(500))
            .await
            .is_none(),
        "dev-1 received something"
    );
    // The edge never saw a forged request: dev-2 got no stray answer.
    assert_eq!(dev2.counters().dropped_unknown, 0);
}

#[test]
fn verify_sh_passes_against_a_real_broker() {
    let script = repo_root().join("firmware-configs/mosquitto/verify.sh");
    // verify.sh calls mosquitto by name: Debian puts it in /usr/sbin.
    let mosquitto_dir = program("mosquitto")
        .parent()
        .expect("a directory")
        .to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(mosquitto_dir).chain(std::env::split_paths(&path)))
            .expect("PATH");
    let out = Command::new("bash")
        .arg(&script)
        .env("PATH", path)
        .output()
        .expect("run verify.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "verify.sh failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let checks = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(
        checks >= 40,
        "verify.sh ran only {checks} checks:\n{stdout}"
    );
}

/// The shipped lab authorization (`firmware-configs/mosquitto/dynamic-security.json`, which
/// the lab `mosquitto.conf` points at) is what `make-dynsec.sh` makes for the lab devices.
#[test]
fn the_shipped_lab_authorization_is_make_dynsec_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("dynamic-security.json");
    let status = Command::new(repo_root().join("firmware-configs/mosquitto/make-dynsec.sh"))
        .arg(&out)
        .args(harness::DEVICES)
        .status()
        .expect("run make-dynsec.sh");
    assert!(status.success());
    let shipped = std::fs::read_to_string(
        repo_root().join("firmware-configs/mosquitto/dynamic-security.json"),
    )
    .expect("read the shipped authorization");
    assert_eq!(
        shipped,
        std::fs::read_to_string(&out).expect("read"),
        "regenerate it: firmware-configs/mosquitto/make-dynsec.sh firmware-configs/mosquitto/dynamic-security.json dev-1 dev-2"
    );
}

/// Each identity's grants in an authorization, as (ACL type, topic) pairs.
fn grants(json: &serde_json::Value, role: &str) -> BTreeSet<(String, String)> {
    let roles = json["roles"].as_array().expect("roles");
    let role = roles
        .iter()
        .find(|r| r["rolename"] == role)
        .unwrap_or_else(|| panic!("no role {role}"));
    role["acls"]
        .as_array()
        .expect("acls")
        .iter()
        .map(|a| {
            assert_eq!(a["allow"], true, "{a}");
            (
                a["acltype"].as_str().expect("acltype").into(),
                a["topic"].as_str().expect("topic").into(),
            )
        })
        .collect()
}

/// What make-dynsec.sh grants is exactly the topics ferry-protocol builds, and nothing more;
/// whatever is not granted is refused (no default access, no other ACL source).
#[test]
fn the_authorization_grants_each_identity_only_its_topics() {
    let text = std::fs::read_to_string(
        repo_root().join("firmware-configs/mosquitto/dynamic-security.json"),
    )
    .expect("read the shipped authorization");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let defaults = &json["defaultACLAccess"];
    for kind in ["publishClientSend", "publishClientReceive", "subscribe"] {
        assert_eq!(defaults[kind], false, "default {kind}");
    }
    let pair = |t: &str, topic: String| (t.to_string(), topic);
    let requests = topics::REQUEST_FILTER.to_string();
    assert_eq!(
        grants(&json, "ferry-edge"),
        BTreeSet::from([
            pair("subscribePattern", format!("$share/+/{requests}")),
            pair("subscribePattern", requests.clone()),
            pair("publishClientReceive", requests),
            pair("publishClientSend", "ferry/+/resp".into()),
        ])
    );
    assert_eq!(
        grants(&json, "ferry-collector"),
        BTreeSet::from([
            pair("subscribePattern", "ferry/+/telemetry/#".into()),
            pair("publishClientReceive", "ferry/+/telemetry/#".into()),
        ])
    );
    for id in harness::DEVICES {
        let device = DeviceId::new(id).expect("device id");
        let resp = topics::response_topic(&device);
        let req = topics::request_topic(&device, &ModelName::new("m").expect("model"));
        let telemetry = topics::telemetry_topic(&device, "x").expect("telemetry topic");
        assert_eq!(
            grants(&json, &format!("device-{id}")),
            BTreeSet::from([
                pair("publishClientSend", req.replace("/m", "/+")),
                pair("publishClientSend", telemetry.replace("/x", "/#")),
                pair("subscribeLiteral", resp.clone()),
                pair("publishClientReceive", resp),
            ]),
            "{id}"
        );
    }
    let conf =
        std::fs::read_to_string(repo_root().join("firmware-configs/mosquitto/mosquitto.conf.in"))
            .expect("read the template");
    assert!(
        !conf.lines().any(|l| l.trim_start().starts_with("acl_file")),
        "an acl_file next to the plugin grants every subscription the plugin does not"
    );
}
