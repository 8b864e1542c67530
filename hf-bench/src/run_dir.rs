//! Run directories: what identifies a run (`run.json`, so that `--resume DIR` needs
//! nothing else), and the rule that a run never silently replaces another.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::bench::BenchBackend;
use crate::error::{CliError, Result};
use crate::preset::Preset;
use crate::records::write_if_changed;
use crate::settings::OptimizerKind;

/// The files (and the checkpoints directory) a run writes into its directory.
pub const RUN_FILES: [&str; 7] = [
    "run.json",
    "config.json",
    "metrics.csv",
    "metrics.jsonl",
    "summary.json",
    "training.png",
    hf_burn::train::checkpoint::CHECKPOINTS_DIR,
];

/// What a run was started with, beyond its settings (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// The preset.
    pub preset: Preset,
    /// The backend.
    pub backend: BenchBackend,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// The seed of initialization and data.
    pub seed: u64,
    /// The RNN tasks' minimum length.
    pub seq_len: usize,
    /// The IDX data directory given (`None`: the preset's default source).
    pub data_dir: Option<PathBuf>,
    /// The hash of the data files the run started on (presets that read files), so
    /// that a resume on other files is refused.
    #[serde(default)]
    pub data_hash: Option<String>,
}

/// The identity flags of `hessfree train`, each `None` when not given.
#[derive(Debug, Clone, Default)]
pub struct IdentityFlags {
    /// `--preset`.
    pub preset: Option<Preset>,
    /// `--backend`.
    pub backend: Option<BenchBackend>,
    /// `--optimizer`.
    pub optimizer: Option<OptimizerKind>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--seq-len`.
    pub seq_len: Option<usize>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

fn name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

fn file(dir: &Path) -> PathBuf {
    dir.join("run.json")
}

impl RunIdentity {
    /// The flags given, the defaults for the rest.
    pub fn from_flags(flags: &IdentityFlags, default_seq_len: usize) -> Self {
        Self {
            preset: flags.preset.unwrap_or(Preset::CurvesSmall),
            backend: flags.backend.unwrap_or(BenchBackend::Flex),
            optimizer: flags.optimizer.unwrap_or(OptimizerKind::Hf),
            seed: flags.seed.unwrap_or(1),
            seq_len: flags.seq_len.unwrap_or(default_seq_len),
            data_dir: flags.data_dir.clone(),
            data_hash: None,
        }
    }

    /// The identity of the run in `dir`, with every flag given checked against it:
    /// a flag that names something else is an error, not a silent switch. Reads only.
    pub fn for_resume(dir: &Path, flags: &IdentityFlags) -> Result<Self> {
        let path = file(dir);
        let fail = |reason: String| CliError::Resume {
            dir: dir.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(fail(
                "run.json is missing, so the preset, backend, optimizer, seed and data the run started with are \
                 unknown: restore it from a backup (the checkpoint's state.bin names the preset, optimizer and \
                 seed)"
                    .into(),
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| fail(format!("cannot read run.json ({e})")))?;
        let saved: Self = serde_json::from_str(&text).map_err(|e| fail(format!("run.json is corrupt ({e})")))?;
        let conflict = |flag: &str, given: String, saved: String| {
            Err(fail(format!(
                "`{flag} {given}` conflicts with the run, which has {saved}: drop the flag to resume it as it was"
            )))
        };
        if let Some(p) = flags.preset.filter(|p| *p != saved.preset) {
            return conflict("--preset", name(&p), name(&saved.preset));
        }
        if let Some(b) = flags.backend.filter(|b| *b != saved.backend) {
            return conflict("--backend", name(&b), name(&saved.backend));
        }
        if let Some(o) = flags.optimizer.filter(|o| *o != saved.optimizer) {
            return conflict("--optimizer", name(&o), name(&saved.optimizer));
        }
        if let Some(s) = flags.seed.filter(|s| *s != saved.seed) {
            return conflict("--seed", s.to_string(), saved.seed.to_string());
        }
        if let Some(t) = flags.seq_len.filter(|t| *t != saved.seq_len) {
            return conflict("--seq-len", t.to_string(), saved.seq_len.to_string());
        }
        if let Some(d) = flags.data_dir.as_ref().filter(|d| Some(*d) != saved.data_dir.as_ref()) {
            let had = saved
                .data_dir
                .as_ref()
                .map_or("the preset's default data".to_string(), |p| p.display().to_string());
            return conflict("--data-dir", d.display().to_string(), had);
        }
        Ok(saved)
    }

    /// Records the hash of the data read now; on a resumed run (`saved` true), refuses
    /// data whose hash differs from the one the run started on.
    pub fn check_data(&mut self, dir: &Path, hash: Option<&str>, resumed: bool) -> Result<()> {
        if let (true, Some(saved), Some(now)) = (resumed, self.data_hash.as_deref(), hash) {
            if saved != now {
                return Err(CliError::Resume {
                    dir: dir.to_path_buf(),
                    reason: format!(
                        "the data files changed since the run started (hash {saved}, now {now}): resume on the \
                         same data, or start a new run"
                    ),
                });
            }
        }
        self.data_hash = hash.map(str::to_string);
        Ok(())
    }

    /// Writes `dir/run.json`, unless it already holds this identity.
    pub fn save_if_changed(&self, dir: &Path) -> Result<()> {
        write_if_changed(
            &file(dir),
            serde_json::to_string_pretty(self)
                .expect("a run identity serializes")
                .as_bytes(),
        )
    }

    /// The default run directory, `runs/PRESET-OPTIMIZER-BACKEND`.
    pub fn default_dir(&self) -> PathBuf {
        PathBuf::from("runs").join(format!(
            "{}-{}-{}",
            name(&self.preset),
            name(&self.optimizer),
            self.backend.name()
        ))
    }
}

/// The run files present in `dir`.
pub fn run_files(dir: &Path) -> Vec<&'static str> {
    RUN_FILES.iter().copied().filter(|f| dir.join(f).exists()).collect()
}
