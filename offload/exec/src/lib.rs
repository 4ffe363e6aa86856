//! `ferry-exec`, the executor: carries one request's [`Decision`](ferry_decide::Decision) out with real
//! paths — a local runner and edge links — driving the pure
//! [`RequestMachine`](ferry_decide::RequestMachine) with their results and a timer, and
//! feeding every outcome back to the [`Decider`](ferry_decide::Decider).
//!
//! The machine decides; this module only performs its actions (start, time, cancel, answer), so
//! the "exactly one answer" guarantee lives in one tested place. An edge answer that arrives
//! after the request was answered locally is still observed (`OffloadLate`), so a slow link is
//! measured for what it is.
//!
//! # Layout
//! - [`paths`]: the `LocalRunner` and `Shaper` traits the agent implements (tract, the
//!   manifest's preprocessing); edges are any
//!   [`EdgeLink`] (`ferry-transport`).
//! - [`executor`]: `Executor::submit` / `submit_with` (constraints, stream), the per-request
//!   loop; dropping its future cancels the request; freshest-frame per stream.
//! - [`gate`]: the local gate: one local run at a time, shortest first with aging, bounded
//!   (the rules are `ferry_decide::queue`'s).

#![deny(unsafe_code, missing_docs)]

pub mod executor;
pub mod gate;
pub mod paths;

pub use executor::{ExecCounters, ExecError, Executor, Outcome, SubmitOptions};
pub use gate::QueueFull;
pub use ferry_transport::{EdgeLink, LinkError};
pub use paths::{LocalResult, LocalRunner, Shaper};
