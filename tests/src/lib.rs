//! `ferry-tests` owns Ferry's end-to-end tests: they start real processes (the `ferry` and
//! `ferry-edge` binaries, a broker) and check what crosses between them.
#![deny(unsafe_code, missing_docs)]
//!
//! # Layout
//!
//! - [`bed`]: the netns testbed with broker, edge and agent running in it (root only).
//! - [`faults`]: the fault suite (issue 14): a steady load through the agent's API while one
//!   fault at a time hits the netns testbed (broker restart, edge kill, link cut, throttle,
//!   edge busy, agent kill and stop, spool disk full); what counts as lost and duplicated;
//!   the table of RELIABILITY.md.
//! - [`fleet`]: devices as bare MQTT clients, many in one process, that count every response
//!   envelope (no correlation, so a duplicate shows): the edge's stop, clock, fairness, load.
//! - [`harness`]: the development PKI, a Mosquitto broker from the shipped config (optionally
//!   with persistence, stopped and started again on its port), `mosquitto_sub` subscribers,
//!   `ferry-edge` processes, the workspace's binaries, all on free loopback ports and all
//!   killed on drop.
//! - [`netns`]: a device and an edge network namespace joined by a veth pair whose rate the
//!   kernel's `tbf` shapes (root only): the testbed of `tests/testbed.rs`.
//! - [`replay`]: a recorded link replayed on the testbed's uplink (`tbf` re-shaped every
//!   second), and when the capacity had held on one side of a threshold.
//! - [`raw`]: a bare rumqttc client (no Ferry envelope) for what a device must *not* be able
//!   to do, and for the benchmark's baseline.
//! - [`secrets`]: the private keys of every PKI the tests make, searched for in every output
//!   a [`harness::Proc`] captured and every payload a [`raw`] client received: a hit fails
//!   the test (`tests/secrets_scan.rs` proves the check can fail).
//! - [`systemd`]: a real systemd booted as PID 1 over a cached `debootstrap` Debian root in
//!   namespaces and cgroups of its own (root only; `systemd-nspawn` does not work here), with
//!   `nsenter` to run `systemctl` inside; the shipped unit's test is `tests/systemd_unit.rs`.
//! - [`telemetry`]: a device's telemetry as `mosquitto_sub` prints it (a subscriber that is
//!   ready before the test publishes, its lines parsed).
//! - `tests/*.rs`: offload round trip, reconnect, security, bad input, shared subscription;
//!   `tls_negatives.rs` (the real agent and edge against an expired broker certificate, one
//!   not naming the address dialed, and an expired device certificate); `api_hostile_http.rs`
//!   (oversized, chunked, mistyped and malformed requests to `ferry run`: a JSON 4xx each, and
//!   still serving); `model_files.rs` (corrupt or truncated model files stop `ferry run`,
//!   `ferry-edge` and `ferry check` naming the file; a reload onto one keeps the agent
//!   serving); `secrets_scan.rs` (the no-secret-in-any-output check can fail);
//!   `acl_isolation.rs` (what one device's certificate can do to the others: the edges' shared
//!   group refused, every request reaching the edge, and `verify.sh` against a real broker);
//!   `telemetry_mqtt.rs` (the publisher and its spool against a real broker, stopped and
//!   restarted, and a loader killed mid-spool) and `telemetry_run.rs` (`ferry run` publishing
//!   telemetry); `testbed.rs` (the netns testbed, root only: recovery in seconds, a recorded link replayed);
//!   `idle_probe.rs` (what an idle agent's probes cost on the link, root only); `edge_probe.rs`
//!   (probes answered and counted apart from errors); `edge_stop.rs` (SIGTERM with requests
//!   in flight: exactly one answer each), `edge_clock.rs` (deadlines counted from receipt, a
//!   device clock hours off still served), `edge_fair.rs` (a flooding device cannot make
//!   another within its share get busy), `edge_load.rs` (50 devices above the edge's
//!   capacity: shed fairly, nothing lost; 60 s with `FERRY_LONG=1`); `offload_bench.rs` is an
//!   ignored test (the benchmark in BENCHMARKS.md); `faults.rs` runs the fault suite
//!   ([`faults`]) and regenerates RELIABILITY.md's table with `FERRY_RELIABILITY=RELIABILITY.md`.

pub mod bed;
pub mod faults;
pub mod fleet;
pub mod harness;
pub mod netns;
pub mod raw;
pub mod replay;
pub mod secrets;
pub mod systemd;
pub mod telemetry;
