//! Performs the link's "subscribe" for the loops that own one rumqttc client.

use rumqttc::v5::mqttbytes::v5::Filter;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::AsyncClient;

/// Subscribes to `filters` (QoS 1) from a task of its own: the event loop that learns of
/// the CONNACK must not wait on rumqttc's bounded channel, which only it drains.
pub fn subscribe_in_background(client: &AsyncClient, filters: Vec<String>) {
    if filters.is_empty() {
        return;
    }
    let client = client.clone();
    tokio::spawn(async move {
        let filters = filters.into_iter().map(|f| Filter::new(f, QoS::AtLeastOnce));
        if let Err(e) = client.subscribe_many(filters).await {
            // The event loop is gone or going: its own error says why.
            tracing::debug!(error = %e, "subscription not sent");
        }
    });
}
