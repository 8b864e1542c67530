//! Errors of the `hessfree` program: each says what was wrong and what to do.

use std::path::PathBuf;

/// Everything that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration file could not be read or parsed, or a value is invalid.
    #[error("config: {0}")]
    Config(String),

    /// The output directory cannot be written.
    #[error("cannot write {path}: {source}{}", output_hint(source))]
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

    /// Another process is running in the run directory.
    #[error(
        "another hessfree process is running in {dir} (it holds {dir}/.hessfree.lock): wait for it to end, or \
         start a new run elsewhere with --out DIR"
    )]
    Busy {
        /// The run directory.
        dir: PathBuf,
    },

    /// The run was stopped by a signal before it wrote anything.
    #[error("interrupted by {signal} before the run started; nothing was written")]
    Interrupted {
        /// The signal's name.
        signal: &'static str,
        /// The exit status.
        status: u8,
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

/// What to do about an output error.
fn output_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            " (free space on that device; a run with a checkpoint continues with --resume DIR once there is room)"
        }
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            " (a new run can write elsewhere with --out DIR)"
        }
        _ => "",
    }
}

impl CliError {
    /// Whether an I/O error anywhere in this error's chain is a full disk.
    pub fn is_disk_full(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) {
                    return true;
                }
            }
            source = e.source();
        }
        false
    }
}

/// Result alias for the program.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
