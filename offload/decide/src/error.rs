//! The decision layer's errors: only configuration can fail; deciding cannot.

/// A configuration the decider cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The TOML did not parse into [`super::Config`].
    #[error("decide config: {0}")]
    Parse(String),
    /// A value out of range or inconsistent.
    #[error("decide config: `{key}`: {why}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}
