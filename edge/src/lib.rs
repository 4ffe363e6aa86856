//! `ferry-edge` owns the edge server: it takes inference requests that devices offload, runs
//! them with tract, and answers with the result and its own timings.
#![deny(unsafe_code, missing_docs)]
