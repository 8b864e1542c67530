//! Checkpoints of a training run: the model in burn's record format beside the
//! optimizer's state, verified on load.
//!
//! A run directory holds `checkpoints/<iteration>/` (the iteration zero-padded to
//! nine digits), each with
//! - `model.mpk`: the network at `θ`, written by burn's [`ModelRecorder`]
//!   (`NamedMpkFileRecorder<DoublePrecisionSettings>`, exact for f32 and f64 models), so any burn program loads it
//!   with `Module::load_file`;
//! - `state.bin`: `HFSTATE2`, a little-endian `u64` length, that many bytes of JSON
//!   (the whole [`HfState`] with each vector replaced by its length, the caller's run
//!   metadata and the FNV-1a hash of `model.mpk`), `θ` and the warm start as
//!   little-endian `f64`, then the 64-bit FNV-1a hash of everything before it.
//!
//! A checkpoint is written into a temporary directory and renamed into place, so an
//! interruption never leaves half of one; only the last `keep` are kept. Loading
//! verifies both hashes and that every value is finite, so a flipped byte or a NaN
//! is refused with [`Error::Checkpoint`] instead of resumed from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::Backend;
use burn::record::{DoublePrecisionSettings, NamedMpkBytesRecorder, NamedMpkFileRecorder, Recorder};
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

use hf_core::HfState;

use crate::error::{Error, Result};
use crate::network::Network;
use crate::templates::Templates;
use crate::vector::ParamVector;

/// The recorder of `model.mpk`: burn's named MessagePack format in f64, so f32 and f64 models round-trip exactly.
pub type ModelRecorder = NamedMpkFileRecorder<DoublePrecisionSettings>;

/// The directory of checkpoints inside a run directory.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The model file's name inside a checkpoint (burn appends `.mpk`).
pub const MODEL_FILE: &str = "model";
/// The optimizer state's file name inside a checkpoint.
pub const STATE_FILE: &str = "state.bin";

const MAGIC: &[u8; 8] = b"HFSTATE2";
/// The format before the state was written whole.
const MAGIC_V1: &[u8; 8] = b"HFSTATE1";

/// 64-bit FNV-1a: cheap, and any single changed byte changes it.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Everything in `state.bin` besides the vectors: the state itself, each vector as
/// its length ([`HfState::map_vectors`]), so no field of the state can miss the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateMeta {
    state: HfState<usize>,
    /// The method that wrote it (`hf`, `adam`, …).
    method: String,
    model_hash: u64,
    /// The FNV-1a hash of each file the method added (a first-order optimizer's state).
    extra_files: BTreeMap<String, u64>,
    run: serde_json::Value,
}

/// A verified checkpoint in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Its directory.
    pub dir: PathBuf,
    /// The optimizer state, vectors as `f64`.
    pub state: HfState<Vec<f64>>,
    /// The method that wrote it ([`TrainingMethod::name`](super::TrainingMethod::name)).
    pub method: String,
    /// The run metadata the writer attached (preset, seed, … for a program).
    pub run: serde_json::Value,
}

impl Checkpoint {
    /// The model file of this checkpoint, for `Module::load_file` (without the
    /// `.mpk` extension, which burn's recorder adds).
    pub fn model_path(&self) -> PathBuf {
        self.dir.join(MODEL_FILE)
    }

    /// The state on backend `B`, vectors of `dtype` on `device`.
    pub fn to_state<B: Backend>(&self, device: &B::Device, dtype: DType) -> HfState<ParamVector<B>> {
        self.state
            .map_vectors(|v| ParamVector::new(crate::tensor_from_f64(v.clone(), [v.len()], device, dtype)))
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { action, path, source }
}

/// The checkpoint directories under `root`, oldest first, with their iterations.
fn list(root: &Path) -> Result<Vec<(usize, PathBuf)>> {
    if !root.exists() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let mut set_aside = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io("read", root))? {
        let entry = entry.map_err(io("read", root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(i) = name.parse::<usize>() {
            found.push((i, entry.path()));
        } else if let Some(Ok(i)) = name.strip_prefix(".old-").map(str::parse::<usize>) {
            set_aside.push((i, entry.path()));
        }
    }
    // A checkpoint moved aside while being replaced counts if its replacement never
    // arrived (an interruption between the two renames in `save`).
    for (i, path) in set_aside {
        if !found.iter().any(|(j, _)| *j == i) {
            found.push((i, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The newest checkpoint directory under `root` (a run directory's
/// [`CHECKPOINTS_DIR`]), if any.
///
/// # Errors
/// [`Error::Io`] when `root` cannot be listed.
pub fn latest(root: &Path) -> Result<Option<PathBuf>> {
    Ok(list(root)?.pop().map(|(_, p)| p))
}

/// Writes a checkpoint of `state` (the model built from `state.theta` by
/// `templates`) by `method` under `root`, with the files `extra` writes into its
/// directory (hashed, and verified on load), then deletes all but the newest `keep`
/// (at least one). Returns the new checkpoint's directory.
///
/// # Errors
/// [`Error::Io`] on a file-system error, [`Error::Checkpoint`] when burn's recorder
/// fails or the state is not finite.
pub fn save<B: Backend, N: Network<D>, const D: usize>(
    root: &Path,
    templates: &Templates<B, N, D>,
    state: &HfState<ParamVector<B>>,
    method: &str,
    run: &serde_json::Value,
    keep: usize,
    extra: &dyn Fn(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let final_dir = root.join(format!("{:09}", state.iteration));
    let tmp = root.join(format!(".tmp-{:09}", state.iteration));
    let fail = |reason: String| Error::Checkpoint {
        path: final_dir.clone(),
        reason,
    };
    let host = state.map_vectors(ParamVector::to_vec);
    let (theta, warm) = (&host.theta, &host.warm_start);
    if theta.iter().chain(warm.iter().flatten()).any(|v| !v.is_finite()) {
        return Err(fail(
            "the state holds a NaN or an infinity; a checkpoint is never written from one".into(),
        ));
    }
    // Half-written checkpoints of an interrupted writer go first.
    if root.exists() {
        for entry in std::fs::read_dir(root).map_err(io("read", root))? {
            let entry = entry.map_err(io("read", root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // A checkpoint set aside whose replacement did arrive is stale too.
            let replaced = name.strip_prefix(".old-").is_some_and(|n| root.join(n).is_dir());
            if name.starts_with(".tmp-") || replaced {
                std::fs::remove_dir_all(entry.path()).map_err(io("remove", &entry.path()))?;
            }
        }
    }
    std::fs::create_dir_all(&tmp).map_err(io("create", &tmp))?;
    let written = write_checkpoint(&tmp, &final_dir, templates, state, &host, method, run, extra);
    if written.is_err() {
        // A failed write (a full disk, say) leaves nothing half-made behind; the
        // previous checkpoints are untouched.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written?;

    // Replacing a checkpoint of the same iteration (a resumed run that ends where it
    // started): the old one is moved aside first, so one complete copy always exists.
    let old = root.join(format!(".old-{:09}", state.iteration));
    if final_dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
        }
        std::fs::rename(&final_dir, &old).map_err(io("rename", &final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io("rename", &tmp))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
    }
    let all = list(root)?;
    for (_, old) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        std::fs::remove_dir_all(old).map_err(io("remove", old))?;
    }
    Ok(final_dir)
}

/// Writes a checkpoint's files into `tmp` and syncs them; `host` is `state` on the
/// host.
#[allow(clippy::too_many_arguments)]
fn write_checkpoint<B: Backend, N: Network<D>, const D: usize>(
    tmp: &Path,
    final_dir: &Path,
    templates: &Templates<B, N, D>,
    state: &HfState<ParamVector<B>>,
    host: &HfState<Vec<f64>>,
    method: &str,
    run: &serde_json::Value,
    extra: &dyn Fn(&Path) -> Result<()>,
) -> Result<()> {
    let fail = |reason: String| Error::Checkpoint {
        path: final_dir.to_path_buf(),
        reason,
    };
    let (theta, warm) = (&host.theta, &host.warm_start);
    let model = templates.module(state.theta.tensor())?;
    // burn's file recorder writes these same bytes (`NamedMpkFileRecorder` is
    // `rmp_serde::encode::write_named` into the file), but reports a full disk as a
    // MessagePack error: written here, an I/O error says what it is.
    let model_bytes = NamedMpkBytesRecorder::<DoublePrecisionSettings>::new()
        .record(model.into_record(), ())
        .map_err(|e| fail(format!("burn's recorder could not encode the model: {e}")))?;
    let model_file = tmp.join(MODEL_FILE).with_extension("mpk");
    std::fs::write(&model_file, &model_bytes).map_err(io("write", &model_file))?;
    extra(tmp)?;
    let mut extra_files = BTreeMap::new();
    for entry in std::fs::read_dir(tmp).map_err(io("read", tmp))? {
        let path = entry.map_err(io("read", tmp))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path != model_file {
            let bytes = std::fs::read(&path).map_err(io("read", &path))?;
            extra_files.insert(name, fnv1a(&bytes));
        }
    }

    let meta = StateMeta {
        state: host.map_vectors(Vec::len),
        method: method.to_string(),
        model_hash: fnv1a(&model_bytes),
        extra_files,
        run: run.clone(),
    };
    let json = serde_json::to_vec(&meta).map_err(|e| fail(format!("cannot encode the state ({e})")))?;
    let mut bytes = Vec::with_capacity(24 + json.len() + 16 * theta.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(json.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&json);
    for v in theta.iter().chain(warm.iter().flatten()) {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let sum = fnv1a(&bytes);
    bytes.extend_from_slice(&sum.to_le_bytes());
    let state_file = tmp.join(STATE_FILE);
    std::fs::write(&state_file, &bytes).map_err(io("write", &state_file))?;
    let written: Vec<PathBuf> = std::fs::read_dir(tmp)
        .map_err(io("read", tmp))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io("read", tmp))?;
    for f in &written {
        std::fs::File::open(f)
            .and_then(|f| f.sync_all())
            .map_err(io("sync", f))?;
    }
    Ok(())
}

/// Reads and verifies the checkpoint in `dir`.
///
/// # Errors
/// [`Error::Checkpoint`] naming what is wrong: a missing file, a bad magic number,
/// a checksum mismatch (of the state or of the model file), a truncated file or a
/// non-finite value.
pub fn load(dir: &Path) -> Result<Checkpoint> {
    let state_file = dir.join(STATE_FILE);
    let fail = |reason: String| Error::Checkpoint {
        path: dir.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(&state_file)
        .map_err(|e| fail(format!("cannot read {STATE_FILE} ({e}); is this a checkpoint?")))?;
    if bytes.len() >= 8 && &bytes[..8] == MAGIC_V1 {
        return Err(fail(format!(
            "{STATE_FILE} was written by an earlier version of hf (format 1), which this one does not read; \
             start the run afresh"
        )));
    }
    if bytes.len() < 24 || &bytes[..8] != MAGIC {
        return Err(fail(format!(
            "{STATE_FILE} is not an hf optimizer state (bad magic number)"
        )));
    }
    let (body, stored) = bytes.split_at(bytes.len() - 8);
    let stored = u64::from_le_bytes(stored.try_into().expect("8 bytes"));
    if fnv1a(body) != stored {
        return Err(fail(format!(
            "{STATE_FILE}: checksum mismatch: the file was changed or damaged after it was written; resume from an \
             earlier checkpoint (delete this directory) or start afresh"
        )));
    }
    let len = usize::try_from(u64::from_le_bytes(body[8..16].try_into().expect("8 bytes"))).unwrap_or(usize::MAX);
    let json = 16usize
        .checked_add(len)
        .and_then(|end| body.get(16..end))
        .ok_or_else(|| fail(format!("{STATE_FILE}: truncated metadata")))?;
    let meta: StateMeta =
        serde_json::from_slice(json).map_err(|e| fail(format!("{STATE_FILE}: corrupt metadata ({e})")))?;
    let vectors = &body[16 + len..];
    let parameters = meta.state.theta;
    let warm_len = meta.state.warm_start;
    if warm_len.is_some_and(|w| w != parameters) {
        return Err(fail(format!(
            "{STATE_FILE}: a warm start of {} entries for {parameters} parameters",
            warm_len.unwrap_or_default()
        )));
    }
    let count = parameters
        .checked_mul(if warm_len.is_some() { 2 } else { 1 })
        .and_then(|c| c.checked_mul(8));
    if count != Some(vectors.len()) {
        return Err(fail(format!(
            "{STATE_FILE} holds {} bytes of vectors, which {parameters} parameters{} do not fill",
            vectors.len(),
            if warm_len.is_some() { " and a warm start" } else { "" }
        )));
    }
    let values: Vec<f64> = vectors
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        let (what, at) = if k < parameters {
            ("parameter", k)
        } else {
            ("warm-start entry", k - parameters)
        };
        return Err(fail(format!(
            "{what} {at} is {}: a run never saves non-finite values, so the file is corrupt",
            values[k]
        )));
    }
    let s = &meta.state;
    if !(s.damping.is_finite() && s.damping >= 0.0 && s.radius.is_finite()) {
        return Err(fail(format!(
            "damping {}, radius {}: not a state a run saves, so the file is corrupt",
            s.damping, s.radius
        )));
    }
    let model_file = dir.join(MODEL_FILE).with_extension("mpk");
    let model = std::fs::read(&model_file).map_err(|e| fail(format!("cannot read the model file ({e})")))?;
    if fnv1a(&model) != meta.model_hash {
        return Err(fail(
            "model.mpk: checksum mismatch: the model file was changed or damaged after it was written".into(),
        ));
    }
    for (name, hash) in &meta.extra_files {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| fail(format!("cannot read {name} ({e})")))?;
        if fnv1a(&bytes) != *hash {
            return Err(fail(format!(
                "{name}: checksum mismatch: the file was changed or damaged after it was written"
            )));
        }
    }
    // The vectors in the order map_vectors visits them: θ, then the warm start.
    // (Their lengths were checked against the bytes above.)
    let mut rest = values.as_slice();
    let state = meta.state.map_vectors(|&n| {
        let (v, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        v.to_vec()
    });
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        state,
        method: meta.method,
        run: meta.run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_set_aside_counts_until_its_replacement_arrives() {
        let root = std::env::temp_dir().join(format!("hf-ckpt-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for name in ["000000005", ".old-000000007", ".tmp-000000008", "notes"] {
            std::fs::create_dir_all(root.join(name)).unwrap();
        }
        assert_eq!(latest(&root).unwrap(), Some(root.join(".old-000000007")));
        std::fs::create_dir_all(root.join("000000007")).unwrap();
        assert_eq!(latest(&root).unwrap(), Some(root.join("000000007")));
        let iterations: Vec<usize> = list(&root).unwrap().into_iter().map(|(i, _)| i).collect();
        assert_eq!(iterations, [5, 7]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
