//! Devices as bare MQTT clients, any number of them in one process: each connects with its
//! own certificate, subscribes to its response topic, publishes Ferry request envelopes and
//! collects every response envelope that arrives, decoded, so tests can count answers per
//! request (exactly one each) and per device. The edge's stop, clock, fairness and load tests
//! use them; unlike [`ferry_transport::mqtt::MqttOffloader`] nothing here correlates or
//! drops a duplicate, so a second answer is seen.

use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{
    decode_response, encode_request, DeviceId, ImageFormat, Input, Limits, ModelName, Precision,
    Request, Response,
};
use ferry_transport::mqtt::{tls, TlsVersion};
use rumqttc::tokio_rustls::rustls::ClientConfig;

use crate::harness::{cert, repo_root, Broker};
use crate::raw::{self, RawClient};

/// A TLS 1.3 client config with the test PKI's certificate for `identity`.
pub fn identity(identity: &str) -> Arc<ClientConfig> {
    tls::build(
        &cert("ca.crt"),
        Some((
            &cert(&format!("{identity}.crt")),
            &cert(&format!("{identity}.key")),
        )),
        tls::protocol_versions(TlsVersion::Tls13),
    )
    .unwrap_or_else(|e| panic!("TLS config for {identity}: {e}"))
}

/// An image from the repository (e.g. `models/images/cat.jpg`).
pub fn image(path: &str) -> Vec<u8> {
    std::fs::read(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// A request from `device` for `model` (FP32) with an encoded image.
pub fn image_request(
    device: &str,
    request_id: u64,
    model: &str,
    image: &[u8],
    deadline_ms: Option<u32>,
    sent_at_us: u64,
) -> Request {
    Request {
        request_id,
        device_id: DeviceId::new(device).expect("device id"),
        model: ModelName::new(model).expect("model name"),
        precision: Precision::Fp32,
        deadline_ms,
        sent_at_us,
        input: Input::Image {
            format: ImageFormat::Unspecified,
            bytes: image.to_vec(),
        },
    }
}

/// One device's connection.
pub struct FleetDevice {
    /// Its device id (certificate CN).
    pub name: String,
    client: RawClient,
    buf: Vec<u8>,
}

impl FleetDevice {
    /// Connects as `name` (client id `<name>-<tag>`) and subscribes to `ferry/<name>/resp`.
    pub async fn connect(broker: &Broker, name: &str, tag: &str) -> FleetDevice {
        let mut client = raw::connect(broker.port, Some(identity(name)), &format!("{name}-{tag}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{name} cannot connect: {e}\nbroker:\n{}",
                    broker.proc.stderr.text()
                )
            });
        client.subscribe(&format!("ferry/{name}/resp")).await;
        FleetDevice {
            name: name.to_string(),
            client,
            buf: Vec::new(),
        }
    }

    /// Publishes `request` (QoS 1) to `ferry/<name>/req/<model>` without waiting for the
    /// PUBACK.
    pub async fn send(&mut self, request: &Request) {
        self.buf.clear();
        encode_request(&request.as_ref(), &mut self.buf).expect("encode request");
        let topic = format!("ferry/{}/req/{}", self.name, request.model);
        self.client.publish_nowait(&topic, self.buf.clone()).await;
    }

    /// The next response envelope on this device's topic, or None after `timeout`; panics on
    /// an envelope that does not decode (the edge only sends good ones).
    pub async fn next_response(&mut self, timeout: Duration) -> Option<Response> {
        let (topic, payload) = self.client.next_message(timeout).await?;
        assert_eq!(
            topic,
            format!("ferry/{}/resp", self.name),
            "a message on another topic"
        );
        let r = decode_response(&payload, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: undecodable response: {e:?}", self.name));
        Some(r.to_response())
    }

    /// Every response that arrives until none has for `quiet` (or `max` has passed).
    pub async fn collect(&mut self, quiet: Duration, max: Duration) -> Vec<Response> {
        let end = tokio::time::Instant::now() + max;
        let mut got = Vec::new();
        while tokio::time::Instant::now() < end {
            match self.next_response(quiet).await {
                Some(r) => got.push(r),
                None => break,
            }
        }
        got
    }
}
