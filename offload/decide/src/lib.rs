//! `ferry-decide`, the decision: where each request runs, and how that choice is carried out.
//!
//! Synchronous and I/O-free, like rumqttc's `state.rs`: measurements go in as
//! [`Observation`]s, [`Decider::decide`] returns a [`Decision`] without blocking or allocating,
//! and a [`RequestMachine`] turns the decision plus events into actions. The async executor (`ferry-exec`)
//! performs the actions; the simulator ([`sim`]) drives the very same objects from
//! traces.
//!
//! # Layout
//!
//! - [`config`]: the `[decide]`, `[thermal]`, `[energy]`, `[[targets]]` structs.
//! - [`targets`]: targets resolved into small ids, and the shaped input forms per model.
//! - [`ewma`]: mean + variance estimator; [`local`], [`link`], [`edge`]: what they estimate;
//!   [`estimators`]: all of them and the observations that feed them.
//! - [`cost`]: predicted latency and energy per path (an edge's in the form of its input
//!   that costs least: the original or a shaped one).
//! - [`policy`]: the `Policy` trait, `Decision`, `Reason`; [`adaptive`], [`fixed`],
//!   [`threshold`]: the policies; [`hysteresis`]; [`thermal`]: the PI governor.
//! - [`probe`]: how often an unused edge is probed (the expected gain of a probe) and what
//!   that costs.
//! - [`admission`]: per-request constraints (placement, mode, best effort), the candidates
//!   they and a full local queue leave, and load shedding; [`queue`]: the local queue's bound
//!   and its shortest-first-with-aging order (the agent's gate and the simulator use both).
//! - [`decider`]: all of the above behind `decide()` / `decide_with()`.
//! - [`scheduler`]: the per-request state machine (fallback, hedging, the hard deadline,
//!   cancel and supersede, exactly one answer).
//! - [`outcome`]: how an offload went → what the estimators learn; the agent's executor and
//!   the simulator both go through it.
//! - [`sim`]: the trace-driven simulator, the per-request oracle and the hindsight reference
//!   ([`sim::reference`], a schedule that pays for its own queues); its traces are seeded phases
//!   ([`sim::trace`]) or recorded links ([`sim::recorded`]: Mahimahi and cooked logs;
//!   [`sim::replay`]: the `[recorded]` table).

#![deny(unsafe_code, missing_docs)]

pub mod adaptive;
pub mod admission;
pub mod config;
pub mod cost;
pub mod decider;
pub mod edge;
pub mod error;
pub mod estimators;
pub mod ewma;
pub mod fixed;
pub mod hysteresis;
pub mod link;
pub mod local;
pub mod outcome;
pub mod policy;
pub mod probe;
pub mod queue;
pub mod scheduler;
pub mod sim;
pub mod targets;
pub mod thermal;
pub mod threshold;

pub use admission::{Constraints, Placement};
pub use config::{Config, DecideConfig, EnergyConfig, FormConfig, Mode, PolicyKind, TargetConfig, ThermalConfig};
pub use cost::{Candidates, PathEstimate, RequestInfo};
pub use decider::{policy_of, Decider};
pub use error::DecideError;
pub use estimators::{Estimators, FormEstimate, Observation};
pub use local::SystemState;
pub use outcome::{OffloadEnd, OffloadWatch, StopCause};
pub use policy::{Choice, Context, Decision, Policy, Reason, Why};
pub use scheduler::{offload_stop_cause, Action, Actions, Answer, AnswerKind, Event, Fallback, Ran, RequestMachine};
pub use targets::{FormId, FormSpec, ModelId, TargetId, Targets};
