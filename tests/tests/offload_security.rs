//! Who may connect and what a connected device may do, against the shipped broker config.

use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{DeviceId, Status};
use ferry_transport::mqtt::{tls, LinkState, MqttConfig, MqttOffloader, OffloadError, TlsVersion};
use ferry_tests::harness::{self, cert, Broker, Edge, EdgeOptions};
use ferry_tests::raw;
use rumqttc::tokio_rustls::rustls::{self, pki_types::ServerName, ProtocolVersion};
use rumqttc::v5::mqttbytes::v5::{PubAckReason, SubscribeReasonCode};
use rumqttc::tokio_rustls::TlsConnector;

fn tls13_identity(identity: &str) -> Arc<rustls::ClientConfig> {
    tls::build(
        &cert("ca.crt"),
        Some((&cert(&format!("{identity}.crt")), &cert(&format!("{identity}.key")))),
        tls::protocol_versions(TlsVersion::Tls13),
    )
    .unwrap()
}

/// Handshakes `client` with a local rustls server (the broker's certificate) that speaks only
/// `version`; the negotiated version, or the error.
async fn local_handshake(
    client: Arc<rustls::ClientConfig>,
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<ProtocolVersion, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<_> = CertificateDer::pem_file_iter(cert("broker.crt")).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(cert("broker.key")).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = rumqttc::tokio_rustls::TlsAcceptor::from(Arc::new(server)).accept(tcp).await;
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        TlsConnector::from(client).connect(ServerName::try_from("127.0.0.1").unwrap(), tcp),
    )
    .await
    .map_err(|_| "timeout".to_string())?
    .map_err(|e| e.to_string())
    .map(|s| s.get_ref().1.protocol_version().unwrap());
    accept.abort();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused() {
    let broker = Broker::start();
    let no_cert = tls::build(&cert("ca.crt"), None, tls::protocol_versions(TlsVersion::Tls13)).unwrap();
    let result = raw::connect(broker.port, Some(no_cert), "anon").await;
    assert!(result.is_err(), "a client without a certificate got a CONNACK");
    // The same client with a certificate gets in: the refusal was about the certificate.
    raw::connect(broker.port, Some(tls13_identity("dev-1")), "dev-1-raw").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    let broker = Broker::start();
    let config = broker.config_for("rogue-dev-1");
    let result = MqttOffloader::connect(&config, DeviceId::new("dev-1").unwrap(), Duration::from_secs(10)).await;
    match result {
        Err(OffloadError::Refused(why)) => assert!(!why.is_empty()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_to_the_tls_port_is_refused() {
    let broker = Broker::start();
    let mut config = MqttConfig::new(format!("mqtt://127.0.0.1:{}", broker.port));
    config.insecure = true;
    config.connect_timeout_ms = 2000;
    let offloader = MqttOffloader::start(&config, DeviceId::new("dev-1").unwrap()).unwrap();
    let result = offloader.wait_ready(Duration::from_secs(3)).await;
    assert!(result.is_err(), "plain MQTT reached a TLS listener");
    assert_ne!(offloader.link_state(), LinkState::Ready);
    assert!(raw::connect(broker.port, None, "plain").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls12_only_client_is_refused_when_13_is_required() {
    let broker = Broker::start();
    let tls12_only = tls::build(
        &cert("ca.crt"),
        Some((&cert("dev-1.crt"), &cert("dev-1.key"))),
        &[&rustls::version::TLS12],
    )
    .unwrap();
    // It really offers only 1.2: a local 1.2-only server accepts it, a 1.3-only one does not.
    assert_eq!(local_handshake(tls12_only.clone(), &rustls::version::TLS12).await, Ok(ProtocolVersion::TLSv1_2));
    assert!(local_handshake(tls12_only.clone(), &rustls::version::TLS13).await.is_err());
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", broker.port)).await.unwrap();
    let handshake = TlsConnector::from(tls12_only.clone())
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp);
    let result = tokio::time::timeout(Duration::from_secs(5), handshake).await.unwrap();
    let err = result.expect_err("a TLS 1.2-only handshake succeeded against a tlsv1.3 listener");
    eprintln!("TLS 1.2 refused as expected: {err}");
    assert!(raw::connect(broker.port, Some(tls12_only), "dev-1-tls12").await.is_err());
    // A client that allows 1.2 but offers 1.3 too still connects (negotiating 1.3).
    let mut config = broker.config_for("dev-1");
    config.min_tls_version = TlsVersion::Tls12;
    MqttOffloader::connect(&config, DeviceId::new("dev-1").unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_a_can_neither_read_b_responses_nor_publish_on_b_request_topic() {
    let broker = Broker::start();
    let _edge = Edge::start(&broker, &EdgeOptions::default());
    let mut snoop = raw::connect(broker.port, Some(tls13_identity("dev-1")), "dev-1-snoop").await.unwrap();
    // The broker refuses the subscriptions (tests/acl_isolation.rs has the full matrix).
    for filter in ["ferry/dev-2/resp", "ferry/dev-2/#"] {
        assert_eq!(
            snoop.subscribe(filter).await,
            [SubscribeReasonCode::NotAuthorized],
            "{filter}"
        );
    }
    let reason = snoop
        .publish("ferry/dev-2/req/digits", b"forged".to_vec())
        .await;
    assert_eq!(reason, PubAckReason::NotAuthorized);

    let dev2 = broker.device("dev-2").await;
    let request = harness::image_request(&dev2, "digits", "models/images/digit-7.png");
    let response = dev2.offload(request, Duration::from_secs(15)).await.unwrap();
    assert_eq!(response.status, Status::Ok);
    assert!(
        snoop.next_message(Duration::from_millis(500)).await.is_none(),
        "dev-1 received something of dev-2's"
    );
    // The edge never saw the forged request: dev-2 got no stray answer.
    assert_eq!(dev2.counters().dropped_unknown, 0);
}
