//! What a run leaves in its output directory: the metrics file, the summary, and the
//! atomic-write helper they share.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

/// Writes `bytes` to `path` through a temporary file in the same directory and a
/// rename, so a crash never leaves a half-written file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    hf_burn::train::replace_atomically(path, bytes).map_err(|e| match e {
        hf_burn::Error::Io { source, .. } => CliError::Output {
            path: path.to_path_buf(),
            source,
        },
        other => CliError::Output {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}

/// [`write_atomic`], unless `path` already holds exactly `bytes` (a resume that
/// changes no setting leaves the file untouched).
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    write_atomic(path, bytes)
}

/// `dir/.name.tmp` beside `path`, keeping its extension last (image encoders read it).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".tmp-{name}"))
}

/// `summary.json`: what the run did and reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The preset.
    pub preset: String,
    /// The backend.
    pub backend: String,
    /// The optimizer.
    pub optimizer: String,
    /// The seed.
    pub seed: u64,
    /// Trainable parameters.
    pub parameters: usize,
    /// Iterations completed.
    pub iterations: usize,
    /// Why the run stopped.
    pub stop: String,
    /// Final training objective.
    pub final_objective: f64,
    /// Final held-out error, and what it measures.
    pub held_out_error: f64,
    /// The held-out measure's name.
    pub held_out_measure: String,
    /// Seconds of training.
    pub wall_time_s: f64,
    /// Curvature-vector products in all.
    pub curvature_products: usize,
    /// The data set read from files (none for generated data).
    pub data: Option<DataInfo>,
    /// The effective settings.
    pub config: crate::settings::RunConfig,
}

/// A data set read from files: which one, and a hash of each file, so two runs can
/// tell whether they saw the same data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// The data set's name (`mnist`, `fashion-mnist`, `faces`).
    pub name: String,
    /// The directory it was read from.
    pub dir: PathBuf,
    /// Each IDX file there (sorted by name) with its 64-bit FNV-1a hash, in hex.
    pub files: Vec<(String, String)>,
    /// The FNV-1a hash of the files' hashes in order, in hex: one value to compare.
    pub hash: String,
}

impl DataInfo {
    /// Hashes the IDX files (`*-ubyte`, `*-ubyte.gz`) in `dir`, read by `preset`.
    pub fn of_idx_dir(preset: crate::preset::Preset, dir: &Path) -> Result<Self> {
        let unreadable = |path: &Path, e: std::io::Error| {
            CliError::Data(hf_models::DataError::Missing {
                path: path.to_path_buf(),
                hint: format!("cannot read it ({e}); pass the directory of the data set's IDX files with --data-dir"),
            })
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| unreadable(dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with("-ubyte") || n.ends_with("-ubyte.gz"))
            .collect();
        names.sort();
        let mut files = Vec::new();
        let mut all = Vec::new();
        for n in names {
            let bytes = std::fs::read(dir.join(&n)).map_err(|e| unreadable(&dir.join(&n), e))?;
            let h = hf_burn::train::checkpoint::fnv1a(&bytes);
            all.extend_from_slice(&h.to_le_bytes());
            files.push((n, format!("{h:016x}")));
        }
        use crate::preset::Preset;
        let name = match preset.full_batch() {
            Preset::Mnist => "mnist",
            Preset::Faces => "faces",
            Preset::FashionMnist => "fashion-mnist",
            _ if dir == Path::new(hf_models::idx::DEBIAN_FASHION_MNIST) => "fashion-mnist",
            _ => "mnist-format idx files",
        }
        .to_string();
        Ok(Self {
            name,
            dir: dir.to_path_buf(),
            hash: format!("{:016x}", hf_burn::train::checkpoint::fnv1a(&all)),
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::Preset;

    #[test]
    fn data_info_names_the_set_and_hashes_each_file() {
        let dir = std::env::temp_dir().join(format!("hf-data-info-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), b"images").unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), b"labels").unwrap();
        std::fs::write(dir.join("README"), b"not data").unwrap();
        let info = DataInfo::of_idx_dir(Preset::Mnist, &dir).unwrap();
        assert_eq!(info.name, "mnist");
        let names: Vec<&str> = info.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["t10k-labels-idx1-ubyte", "train-images-idx3-ubyte.gz"]);
        assert_eq!(
            info.files[1].1,
            format!("{:016x}", hf_burn::train::checkpoint::fnv1a(b"images"))
        );

        // One changed byte changes the data hash.
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), b"labelz").unwrap();
        let changed = DataInfo::of_idx_dir(Preset::Mnist, &dir).unwrap();
        assert_ne!(changed.hash, info.hash);
        assert_eq!(
            DataInfo::of_idx_dir(Preset::FashionMnist, &dir).unwrap().name,
            "fashion-mnist"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
