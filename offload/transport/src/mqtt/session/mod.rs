//! The MQTT session layer, without I/O: what the device's offloader, the edge server and the
//! telemetry publisher share about one broker connection. Like rumqttc's own `state.rs`,
//! it takes what happened (a CONNACK, a SUBACK, a packet id written, a PUBACK, a message
//! received, a connection lost) as plain values and returns what it means and what to do;
//! the event loops only poll, wait and perform. So all of it is tested without a socket.
//!
//! - `link`: [`Link`], the connection's state machine (connecting, subscribing, ready,
//!   backing off with [`Backoff`](super::Backoff), closed), the resubscription after every
//!   CONNACK, and the [`LinkState`] callers see.
//! - `disconnect`: [`Disconnection`] and [`is_refusal`]: a failure of the network or a
//!   refusal by the broker.
//! - `puback`: [`PubAckOutcome`] (what a v5 PUBACK reason means) and [`PacketIds`] (which
//!   message a PUBACK acknowledges).
//! - `correlator`: [`Correlator`], the device side's pending requests by request id and by
//!   packet id, and what a response, a PUBACK or a disconnect resolves.
//! - `ackwatch`: [`AckWatch`], when a connection that went silent with publishes waiting is
//!   given up (a cut link).

mod ackwatch;
mod correlator;
mod disconnect;
mod link;
mod puback;

pub use ackwatch::AckWatch;
pub use correlator::{Correlator, Reply, Resolved, Routed};
pub use disconnect::{is_closed_by_peer, is_refusal, is_takeover, Disconnection};
pub use link::{
    AfterConnAck, AfterSubAck, Link, LinkState, Phase, Reconnect, Takeover,
    TAKEOVER_REPORT_INTERVAL,
};
pub use puback::{PacketIds, PubAckOutcome};
