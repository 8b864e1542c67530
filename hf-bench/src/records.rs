//! What a run leaves in its output directory: the metrics file, the summary, and the
//! atomic-write helper they share.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

/// Writes `bytes` to `path` through a temporary file in the same directory and a
/// rename, so a crash never leaves a half-written file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let io = |source| CliError::Output {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// `dir/.name.tmp` beside `path`, keeping its extension last (image encoders read it).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".tmp-{name}"))
}

/// One row of the metrics file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// Iteration (HF) or step (first-order), 1-based.
    pub iteration: usize,
    /// Seconds of training so far.
    pub wall_time_s: f64,
    /// Training objective on the gradient batch.
    pub train_objective: f64,
    /// The preset's held-out error (NaN when not evaluated this iteration).
    pub held_out_error: f64,
    /// Damping `λ` used (NaN for first-order optimizers).
    pub damping: f64,
    /// Reduction ratio `ρ` (NaN when not computed).
    pub rho: f64,
    /// CG iterations (0 for first-order optimizers).
    pub cg_iterations: usize,
    /// Curvature-vector products in this iteration.
    pub curvature_products: usize,
    /// Where the iteration's time went (HF only; zeros for first-order optimizers).
    pub phases: hf_core::PhaseTimes,
}

/// The metrics file's header.
pub const METRICS_HEADER: &str = "iteration,wall_time_s,train_objective,held_out_error,damping,rho,cg_iterations,\
                                  curvature_products,gradient_s,preconditioner_s,solve_s,backtracking_s,rho_s,\
                                  line_search_s";

/// Columns of [`METRICS_HEADER`].
const METRICS_COLUMNS: usize = 14;

impl MetricsRow {
    fn csv(&self) -> String {
        let t = &self.phases;
        format!(
            "{},{:.6},{:.9e},{:.9e},{:.6e},{:.6},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6}",
            self.iteration,
            self.wall_time_s,
            self.train_objective,
            self.held_out_error,
            self.damping,
            self.rho,
            self.cg_iterations,
            self.curvature_products,
            t.gradient,
            t.preconditioner,
            t.solve,
            t.backtracking,
            t.rho,
            t.line_search
        )
    }

    /// Parses a row written by [`MetricsFile`].
    pub fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != METRICS_COLUMNS {
            return None;
        }
        Some(Self {
            iteration: f[0].parse().ok()?,
            wall_time_s: f[1].parse().ok()?,
            train_objective: f[2].parse().ok()?,
            held_out_error: f[3].parse().ok()?,
            damping: f[4].parse().ok()?,
            rho: f[5].parse().ok()?,
            cg_iterations: f[6].parse().ok()?,
            curvature_products: f[7].parse().ok()?,
            phases: hf_core::PhaseTimes {
                gradient: f[8].parse().ok()?,
                preconditioner: f[9].parse().ok()?,
                solve: f[10].parse().ok()?,
                backtracking: f[11].parse().ok()?,
                rho: f[12].parse().ok()?,
                line_search: f[13].parse().ok()?,
            },
        })
    }
}

/// The metrics CSV, one row per iteration, flushed as it goes (a crash loses at most
/// the row being written).
pub struct MetricsFile {
    path: PathBuf,
    file: File,
    rows: Vec<MetricsRow>,
}

impl MetricsFile {
    /// Starts `metrics.csv` in `dir`, keeping the rows of earlier iterations up to
    /// `keep_through` (for a resumed run; 0 starts afresh).
    pub fn open(dir: &Path, keep_through: usize) -> Result<Self> {
        let path = dir.join("metrics.csv");
        let rows: Vec<MetricsRow> = if keep_through > 0 {
            std::fs::read_to_string(&path)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .filter_map(MetricsRow::parse)
                .filter(|r| r.iteration <= keep_through)
                .collect()
        } else {
            Vec::new()
        };
        let mut text = String::from(METRICS_HEADER);
        text.push('\n');
        for r in &rows {
            text.push_str(&r.csv());
            text.push('\n');
        }
        write_atomic(&path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| CliError::Output {
                path: path.clone(),
                source,
            })?;
        Ok(Self { path, file, rows })
    }

    /// Appends a row.
    pub fn push(&mut self, row: MetricsRow) -> Result<()> {
        writeln!(self.file, "{}", row.csv())
            .and_then(|_| self.file.flush())
            .map_err(|source| CliError::Output {
                path: self.path.clone(),
                source,
            })?;
        self.rows.push(row);
        Ok(())
    }

    /// Every row so far.
    pub fn rows(&self) -> &[MetricsRow] {
        &self.rows
    }
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
    /// The effective settings.
    pub config: crate::settings::RunConfig,
}
