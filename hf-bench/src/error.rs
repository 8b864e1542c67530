//! Errors of the `hessfree` program: each says what was wrong and what to do.

use std::path::PathBuf;

/// Everything that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration file could not be read or parsed, or a value is invalid.
    #[error("config: {0}")]
    Config(String),

    /// The output directory cannot be written.
    #[error("cannot write to the output directory {path}: {source} (choose another with --out)")]
    Output {
        /// The directory or file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint is missing, corrupt, or from another run.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A new run would replace the run already in its directory.
    #[error(
        "{dir} already holds a run ({files}): continue it with --resume {dir}, write elsewhere with --out DIR, or \
         replace it with --overwrite"
    )]
    RunExists {
        /// The run directory.
        dir: PathBuf,
        /// The run files found there.
        files: String,
    },

    /// `--resume` cannot continue the run as asked.
    #[error("cannot resume the run in {dir}: {reason}")]
    Resume {
        /// The run directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },

    /// A backend that this build does not include.
    #[error("{0}")]
    Unsupported(String),

    /// Data could not be loaded or generated.
    #[error(transparent)]
    Data(#[from] hf_models::DataError),

    /// The optimizer failed.
    #[error(transparent)]
    Core(#[from] hf_core::Error),

    /// A tensor-side error.
    #[error(transparent)]
    Burn(#[from] hf_burn::Error),
}

impl From<hf_core::ConfigError> for CliError {
    fn from(e: hf_core::ConfigError) -> Self {
        CliError::Config(e.to_string())
    }
}

/// Result alias for the program.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
