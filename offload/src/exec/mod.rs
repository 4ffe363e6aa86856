//! The executor: carries one request's [`Decision`](crate::decide::Decision) out with real
//! paths — a local runner and edge links — driving the pure
//! [`RequestMachine`](crate::decide::RequestMachine) with their results and a timer, and
//! feeding every outcome back to the [`Decider`](crate::decide::Decider).
//!
//! The machine decides; this module only performs its actions (start, time, cancel, answer), so
//! the "exactly one answer" guarantee lives in one tested place. An edge answer that arrives
//! after the request was answered locally is still observed (`OffloadLate`), so a slow link is
//! measured for what it is.
//!
//! # Layout
//! - [`paths`]: the `LocalRunner` and `EdgeLink` traits the agent implements (tract, MQTT).
//! - [`executor`]: `Executor::submit`, the per-request loop.
//! - [`gate`]: the local gate: one local run at a time, shortest first.

pub mod executor;
pub mod gate;
pub mod paths;

pub use executor::{Executor, ExecError, Outcome};
pub use paths::{EdgeLink, LocalResult, LocalRunner};
