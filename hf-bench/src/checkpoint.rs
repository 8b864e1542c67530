//! Checkpoints: the HF state and the data source's random state in one file, written
//! through a temporary file and a rename so a crash never leaves half of one.
//!
//! Layout: `HFCKPT02`, a little-endian `u64` length, that many bytes of JSON
//! ([`CheckpointMeta`]), the parameters and (if any) the warm-start vector as
//! little-endian `f64`, then the 64-bit FNV-1a hash of everything before it
//! (little-endian). Loading verifies the hash and that every value is finite, so a
//! flipped bit or a NaN is refused instead of resuming from it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};
use crate::records::write_atomic;

const MAGIC: &[u8; 8] = b"HFCKPT02";

/// The layout before checksums.
const MAGIC_V1: &[u8; 8] = b"HFCKPT01";

/// 64-bit FNV-1a: cheap, and any single flipped byte changes it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Everything in a checkpoint besides the vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// The preset that wrote it (a resume must use the same).
    pub preset: String,
    /// The optimizer that wrote it.
    pub optimizer: String,
    /// The seed of the run.
    pub seed: u64,
    /// Number of parameters.
    pub parameters: usize,
    /// Iterations completed.
    pub iteration: usize,
    /// Damping for the next iteration.
    pub damping: f64,
    /// Trust-region radius for the next iteration.
    pub radius: f64,
    /// Failed steps in a row.
    pub consecutive_failures: usize,
    /// Curvature products so far.
    pub curvature_products: usize,
    /// Seconds of training so far.
    pub elapsed_s: f64,
    /// The batch source's random state.
    pub source_rng: Option<u64>,
    /// Whether a warm-start vector follows the parameters.
    pub has_warm_start: bool,
}

/// A checkpoint in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Scalars and identity.
    pub meta: CheckpointMeta,
    /// Parameters.
    pub theta: Vec<f64>,
    /// CG warm start.
    pub warm_start: Option<Vec<f64>>,
}

/// The checkpoint file of a run directory.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join("checkpoint.bin")
}

impl Checkpoint {
    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec(&self.meta).expect("checkpoint metadata serializes");
        let mut bytes = Vec::with_capacity(16 + json.len() + 8 * self.theta.len() * 2);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&json);
        for v in self.theta.iter().chain(self.warm_start.iter().flatten()) {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let sum = fnv1a(&bytes);
        bytes.extend_from_slice(&sum.to_le_bytes());
        write_atomic(path, &bytes)
    }

    /// Reads and checks a checkpoint.
    pub fn load(path: &Path) -> Result<Self> {
        let fail = |reason: String| CliError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read it ({e}); is this a run directory?")))?;
        if bytes.len() >= 8 && &bytes[..8] == MAGIC_V1 {
            return Err(fail(
                "written by an older hf, without a checksum: it cannot be verified; start the run afresh".into(),
            ));
        }
        if bytes.len() < 24 || &bytes[..8] != MAGIC {
            return Err(fail("not an hf checkpoint (bad magic number)".into()));
        }
        let (bytes, stored) = bytes.split_at(bytes.len() - 8);
        let stored = u64::from_le_bytes(stored.try_into().expect("8 bytes"));
        if fnv1a(bytes) != stored {
            return Err(fail(
                "checksum mismatch: the file was changed or damaged after it was written; resume from a copy or \
                 start afresh"
                    .into(),
            ));
        }
        let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
        let body = bytes
            .get(16..16 + len)
            .ok_or_else(|| fail("truncated metadata".into()))?;
        let meta: CheckpointMeta = serde_json::from_slice(body).map_err(|e| fail(format!("corrupt metadata ({e})")))?;
        let vectors = &bytes[16 + len..];
        let count = meta.parameters * if meta.has_warm_start { 2 } else { 1 };
        if vectors.len() != 8 * count {
            return Err(fail(format!(
                "holds {} bytes of vectors, {} parameters need {}",
                vectors.len(),
                meta.parameters,
                8 * count
            )));
        }
        let values: Vec<f64> = vectors
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            let (what, at) = if k < meta.parameters {
                ("parameter", k)
            } else {
                ("warm-start entry", k - meta.parameters)
            };
            return Err(fail(format!(
                "{what} {at} is {}: a run never saves non-finite values, so the file is corrupt",
                values[k]
            )));
        }
        if !(meta.damping.is_finite() && meta.damping > 0.0 && meta.radius.is_finite() && meta.elapsed_s.is_finite()) {
            return Err(fail(format!(
                "damping {}, radius {}, elapsed {} s: not a state a run saves, so the file is corrupt",
                meta.damping, meta.radius, meta.elapsed_s
            )));
        }
        let (theta, warm) = values.split_at(meta.parameters);
        Ok(Self {
            theta: theta.to_vec(),
            warm_start: meta.has_warm_start.then(|| warm.to_vec()),
            meta,
        })
    }
}
