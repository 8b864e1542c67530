//! Errors of the data readers and generators.

use std::path::PathBuf;

/// What can go wrong reading or generating data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A file is not a valid IDX file (bad magic number, truncated, trailing bytes, bad gzip).
    #[error("{path} is not a valid IDX file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the numbers that disagree.
        reason: String,
    },

    /// A data set is missing; the message says where it was looked for and how to get it.
    #[error("data set not found: {path} ({hint})")]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },

    /// Two files of a data set disagree (image and label counts, say).
    #[error("inconsistent data set: {0}")]
    Inconsistent(String),

    /// A generator or batching parameter is out of range.
    #[error("invalid parameter `{name}` = {value} (allowed: {allowed})")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Its value, formatted.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },

    /// A tensor-side error from hf-burn.
    #[error(transparent)]
    Burn(#[from] hf_burn::Error),
}

impl DataError {
    pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, allowed: &'static str) -> Self {
        DataError::InvalidParameter {
            name,
            value: value.to_string(),
            allowed,
        }
    }
}

impl From<DataError> for hf_core::Error {
    fn from(e: DataError) -> Self {
        hf_core::Error::backend(e)
    }
}

/// Result alias for hf-models.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
