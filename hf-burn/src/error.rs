//! Errors of the burn bindings.

/// What can go wrong between burn tensors and hf-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flat vector does not match the model's parameters.
    #[error("parameter vector has {found} entries but the model's parameters {shapes:?} have {expected}; build the vector from this model (ParamVector::from_module)")]
    ParameterShape {
        /// Entries the model needs.
        expected: usize,
        /// Entries the vector has.
        found: usize,
        /// The shapes of the model's parameter tensors, in visiting order.
        shapes: Vec<Vec<usize>>,
    },

    /// A batch is malformed (inputs and targets disagree, or it is empty).
    #[error("invalid batch: {0}")]
    Batch(String),

    /// The network's outputs do not match the targets.
    #[error("network outputs have shape {outputs:?} but targets have shape {targets:?}")]
    OutputShape {
        /// Shape of the network outputs.
        outputs: Vec<usize>,
        /// Shape of the targets.
        targets: Vec<usize>,
    },

    /// The network uses an operation that burn cannot differentiate twice, so no
    /// curvature product can be computed.
    #[error("the network cannot be differentiated twice ({detail}); build it from operations that can: for burn's nn::Linear call hf_burn::nn::linear(&layer, x) instead of layer.forward(x)")]
    NotTwiceDifferentiable {
        /// burn's message.
        detail: String,
    },

    /// The network uses an operation that hf's forward mode has no tangent rule for
    /// (deformable convolution, quantized tensors).
    #[error("the network uses an operation forward mode cannot differentiate ({detail}); compute curvature products with hf_burn::DoubleBackward instead, or replace the operation")]
    NoTangentRule {
        /// What was refused.
        detail: String,
    },

    /// An invalid setting.
    #[error(transparent)]
    Config(#[from] hf_core::ConfigError),

    /// The model has no float parameters to optimize.
    #[error("the model has no float parameters to optimize")]
    NoParameters,

    /// The optimizer stopped with an error.
    #[error(transparent)]
    Optimizer(#[from] hf_core::Error),

    /// A file or directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("write", "read", "create").
        action: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// A checkpoint is missing, damaged or from another run; nothing was loaded.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint's directory or file.
        path: std::path::PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },

    /// An existing metrics file does not match this run; nothing was changed.
    #[error("metrics file {}: {reason}", path.display())]
    Metrics {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl From<Error> for hf_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Config(c) => hf_core::Error::Config(c),
            Error::Optimizer(e) => e,
            other => hf_core::Error::backend(other),
        }
    }
}

/// Runs a curvature computation, turning burn's panic for an operation without a
/// second derivative into [`Error::NotTwiceDifferentiable`], and the dual backend's for
/// an operation without a tangent rule into [`Error::NoTangentRule`].
pub(crate) fn catch_unsupported<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic in the second backward pass".to_string());
            if detail.contains(crate::dual::NO_TANGENT_RULE) {
                Err(Error::NoTangentRule { detail })
            } else if detail.contains("differentiate") {
                Err(Error::NotTwiceDifferentiable { detail })
            } else {
                std::panic::resume_unwind(payload)
            }
        }
    }
}

/// Result alias for hf-burn.
pub type Result<T, E = Error> = std::result::Result<T, E>;
