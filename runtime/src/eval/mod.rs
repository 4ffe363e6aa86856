//! Measuring a model's accuracy on a labelled image set: real top-1 and top-5 against the
//! labels, and the agreement of one variant (or one input form) with a reference, each with
//! its 95 % confidence interval.
//!
//! # Layout
//! - [`dataset`]: a folder of images with a `labels.csv`, and its fixed seeded split into
//!   calibration and evaluation images (never evaluated on what was calibrated on).
//! - [`interval`]: a proportion with its Wilson score interval.
//! - [`tally`]: per-image answers gathered into the figures.
//!
//! The figures are what the accuracy gate reads from the manifest; `ferry eval` prints them
//! and the tests re-measure them on the evaluation split.

pub mod dataset;
pub mod interval;
pub mod tally;

pub use dataset::{LabelledImage, LabelledSet, Split, SplitPart};
pub use interval::Proportion;
pub use tally::{Tally, TOP_K};
