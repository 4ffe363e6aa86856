//! `ferry-offload` owns everything between "a request exists" and "it ran somewhere": the wire
//! protocol, the transports to the edge (MQTT over TLS, CoAP over DTLS), the estimators, the
//! cost model and policy that decide, and the scheduler that carries a decision out.
#![deny(unsafe_code, missing_docs)]
