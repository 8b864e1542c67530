//! Typed errors of the optimizer.

use std::fmt;

/// A boxed error from a backend or a user-supplied component.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias for hf-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while optimizing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; nothing was run.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// Two vectors (or a vector and an operator) disagree in size.
    #[error("dimension mismatch in {context}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// Where the mismatch was found.
        context: &'static str,
        /// The size that was required.
        expected: usize,
        /// The size that was supplied.
        found: usize,
    },

    /// A NaN or an infinity appeared. Inside the HF loop this is a failed step
    /// (the damping grows and the parameters stay); it only surfaces as an error
    /// from the stand-alone solvers or when the starting point itself is not finite.
    #[error("non-finite value (NaN or infinity) in {what}")]
    NonFinite {
        /// The quantity that was not finite.
        what: &'static str,
    },

    /// An argument outside its allowed range.
    #[error("invalid argument `{name}` = {value} (allowed: {allowed})")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },

    /// An [`Observer`](crate::Observer) failed (a metrics file or a checkpoint could
    /// not be written, say); the run stopped after the iteration it was shown.
    #[error("observer error: {0}")]
    Observer(#[source] BoxError),

    /// The workers of a data-parallel run hold different values of a quantity that
    /// must be the same everywhere (the initial parameters, say).
    #[error(
        "the data-parallel workers disagree on {what}: start every worker from the same seed, checkpoint and settings"
    )]
    WorkersDisagree {
        /// The quantity.
        what: &'static str,
    },

    /// A data-parallel reduction failed: a worker was lost or could not be reached,
    /// or the transport failed. The run stopped; its last checkpoint is intact.
    #[error("data-parallel reduction failed: {0}")]
    Reduction(#[source] BoxError),

    /// The user's problem or a backend reported an error.
    #[error("problem or backend error: {0}")]
    Backend(#[source] BoxError),
}

impl Error {
    /// Wraps any error from a backend or user code.
    pub fn backend(e: impl Into<BoxError>) -> Self {
        Error::Backend(e.into())
    }

    /// Whether this error is a non-finite value, which the HF loop treats as a failed step.
    pub fn is_non_finite(&self) -> bool {
        matches!(self, Error::NonFinite { .. })
    }
}

/// An invalid configuration value: names the field, the value and the allowed range.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `cg.max_iterations`.
    pub field: String,
    /// The rejected value, formatted.
    pub value: String,
    /// The allowed range, in words.
    pub allowed: String,
}

impl ConfigError {
    /// Creates an error for `field` holding `value`, which must satisfy `allowed`.
    pub fn new(field: impl Into<String>, value: impl fmt::Display, allowed: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid config: `{}` = {} (allowed: {})",
            self.field, self.value, self.allowed
        )
    }
}

impl std::error::Error for ConfigError {}
