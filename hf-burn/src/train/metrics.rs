//! The metrics files of a training run: every field of every iteration's record, as
//! CSV (through the `csv` crate) and as JSON lines, flushed after each row.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use hf_core::{BoxError, Control, HfState, IterationRecord, PhaseTimes, StepOutcome, Termination};
use serde::{Deserialize, Serialize};

use super::{TrainingObserver, TrainingRecord};
use crate::error::{Error, Result};
use crate::vector::ParamVector;

/// The CSV file's name in the run directory.
pub const METRICS_CSV: &str = "metrics.csv";
/// The JSON-lines file's name in the run directory.
pub const METRICS_JSONL: &str = "metrics.jsonl";

/// The held-out column's name for a measure: `held_out_` and the measure's name in
/// lower case with every run of other characters than letters and digits as `_`
/// (`"zero-one loss"` → `held_out_zero_one_loss`); `held_out` without a measure.
pub fn held_out_column(measure: Option<&str>) -> String {
    let Some(measure) = measure else {
        return "held_out".into();
    };
    let mut column = String::from("held_out_");
    let mut gap = false;
    for c in measure.trim().chars() {
        if c.is_alphanumeric() {
            if gap && !column.ends_with('_') {
                column.push('_');
            }
            column.extend(c.to_lowercase());
            gap = false;
        } else {
            gap = true;
        }
    }
    column
}

/// One row of the metrics files: every field of a [`TrainingRecord`], flat. The one
/// schema of `metrics.csv` (its columns are these fields in this order, the held-out
/// one named after its measure: [`held_out_column`]) and of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsRow {
    /// Outer iteration (HF) or step (first-order), 1-based.
    pub iteration: usize,
    /// Seconds of training so far.
    pub elapsed_s: f64,
    /// Objective on the gradient batch before the step.
    pub objective_before: f64,
    /// Objective on the gradient batch after the step.
    pub objective: f64,
    /// The held-out measure at the new `θ`, on evaluation iterations.
    pub held_out: Option<f64>,
    /// Norm of the gradient before the step.
    pub gradient_norm: f64,
    /// Damping `λ` of the solve.
    pub damping: f64,
    /// Damping for the next iteration.
    pub next_damping: f64,
    /// Trust-region radius (trust-region mode only).
    pub radius: Option<f64>,
    /// Reduction ratio `ρ`.
    pub rho: f64,
    /// Inner solver iterations.
    pub solver_iterations: usize,
    /// Why the inner solver stopped.
    pub termination: Option<Termination>,
    /// Curvature-vector products spent.
    pub curvature_products: usize,
    /// The iterate chosen by CG backtracking.
    pub chosen_iterate: usize,
    /// Step length `α` (the learning rate for first-order steps).
    pub step_size: f64,
    /// `‖α p‖`.
    pub step_norm: f64,
    /// What happened to the step.
    pub outcome: StepOutcome,
    /// Seconds in the gradient phase.
    pub gradient_s: f64,
    /// Seconds in the preconditioner phase.
    pub preconditioner_s: f64,
    /// Seconds in the inner solve.
    pub solve_s: f64,
    /// Seconds in CG backtracking.
    pub backtracking_s: f64,
    /// Seconds computing `ρ`.
    pub rho_s: f64,
    /// Seconds in the line search.
    pub line_search_s: f64,
}

/// The position of the held-out column among [`MetricsRow`]'s fields.
const HELD_OUT_FIELD: usize = 4;

impl From<&TrainingRecord> for MetricsRow {
    fn from(r: &TrainingRecord) -> Self {
        let i = &r.iteration;
        let t = &i.phases;
        Self {
            iteration: i.iteration,
            elapsed_s: i.elapsed.as_secs_f64(),
            objective_before: i.objective_before,
            objective: i.objective,
            held_out: r.held_out,
            gradient_norm: i.gradient_norm,
            damping: i.damping,
            next_damping: i.next_damping,
            radius: i.radius,
            rho: i.rho,
            solver_iterations: i.solver_iterations,
            termination: i.termination,
            curvature_products: i.curvature_products,
            chosen_iterate: i.chosen_iterate,
            step_size: i.step_size,
            step_norm: i.step_norm,
            outcome: i.outcome,
            gradient_s: t.gradient,
            preconditioner_s: t.preconditioner,
            solve_s: t.solve,
            backtracking_s: t.backtracking,
            rho_s: t.rho,
            line_search_s: t.line_search,
        }
    }
}

impl MetricsRow {
    /// The [`TrainingRecord`] this row was written from (`None` when `elapsed_s` is
    /// not a valid duration).
    pub fn to_record(&self) -> Option<TrainingRecord> {
        Some(TrainingRecord {
            iteration: IterationRecord {
                iteration: self.iteration,
                elapsed: std::time::Duration::try_from_secs_f64(self.elapsed_s).ok()?,
                objective_before: self.objective_before,
                objective: self.objective,
                gradient_norm: self.gradient_norm,
                damping: self.damping,
                next_damping: self.next_damping,
                radius: self.radius,
                rho: self.rho,
                solver_iterations: self.solver_iterations,
                termination: self.termination,
                curvature_products: self.curvature_products,
                chosen_iterate: self.chosen_iterate,
                step_size: self.step_size,
                step_norm: self.step_norm,
                outcome: self.outcome,
                phases: self.phases(),
            },
            held_out: self.held_out,
        })
    }

    /// The phase times as the optimizer records them.
    pub fn phases(&self) -> PhaseTimes {
        PhaseTimes {
            gradient: self.gradient_s,
            preconditioner: self.preconditioner_s,
            solve: self.solve_s,
            backtracking: self.backtracking_s,
            rho: self.rho_s,
            line_search: self.line_search_s,
        }
    }

    /// The held-out measure, NaN when it was not evaluated in this row.
    pub fn held_out_or_nan(&self) -> f64 {
        self.held_out.unwrap_or(f64::NAN)
    }
}

/// [`MetricsRow`]'s field names, in order, read from the struct itself.
fn field_names() -> Vec<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let probe = MetricsRow::from(&TrainingRecord {
        iteration: IterationRecord {
            iteration: 0,
            objective_before: 0.0,
            objective: 0.0,
            gradient_norm: 0.0,
            damping: 0.0,
            next_damping: 0.0,
            radius: None,
            rho: 0.0,
            solver_iterations: 0,
            termination: None,
            curvature_products: 0,
            chosen_iterate: 0,
            step_size: 0.0,
            step_norm: 0.0,
            outcome: StepOutcome::Accepted,
            elapsed: std::time::Duration::ZERO,
            phases: PhaseTimes::default(),
        },
        held_out: None,
    });
    // Serializing one row with headers on makes the csv crate write the field names.
    let _ = writer.serialize(&probe);
    let bytes = writer.into_inner().unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect()
}

/// The CSV columns: [`MetricsRow`]'s fields, the held-out one named after its
/// measure ([`held_out_column`]).
pub fn metrics_header(held_out: Option<&str>) -> Vec<String> {
    let mut names = field_names();
    names[HELD_OUT_FIELD] = held_out_column(held_out);
    names
}

/// Writes `metrics.csv` and `metrics.jsonl` in a run directory, one row per outer
/// iteration with every field of its [`TrainingRecord`], and keeps the rows for plots.
///
/// A resumed run keeps the rows up to the iteration it resumes from and drops later
/// ones (written after the checkpoint, before the interruption); an existing file
/// whose header differs from this run's is an error, never silently rewritten.
pub struct MetricsWriter {
    csv_path: PathBuf,
    jsonl_path: PathBuf,
    csv: csv::Writer<File>,
    jsonl: File,
    held_out: Option<String>,
    rows: Vec<MetricsRow>,
}

impl MetricsWriter {
    /// Starts the files in `dir` for a run whose held-out measure is `held_out`,
    /// keeping the rows of iterations `1..=resume_from` of an existing file
    /// (`resume_from = 0` requires that no metrics file exists yet).
    ///
    /// # Errors
    /// [`Error::Metrics`] when a file exists but a fresh run was asked for, when its
    /// header is not this run's, or when a row cannot be read; [`Error::Io`] on I/O.
    pub fn create(dir: &Path, held_out: Option<&str>, resume_from: usize) -> Result<Self> {
        let csv_path = dir.join(METRICS_CSV);
        let jsonl_path = dir.join(METRICS_JSONL);
        let header = metrics_header(held_out);
        let rows = if resume_from > 0 {
            resumable_rows(dir, held_out, resume_from)?
        } else {
            if let Some(path) = [&csv_path, &jsonl_path].into_iter().find(|p| p.exists()) {
                return Err(Error::Metrics {
                    path: path.clone(),
                    reason: "exists already: a fresh run never overwrites one; choose a new directory".into(),
                });
            }
            Vec::new()
        };
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { action, path, source }
        };
        // The kept rows are written to temporary files that replace the old ones only
        // once complete: an interruption here loses nothing.
        let mut csv_text = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        let mut jsonl_text = String::new();
        let encode = |e: csv::Error| Error::Metrics {
            path: csv_path.clone(),
            reason: format!("cannot encode a row: {e}"),
        };
        csv_text.write_record(&header).map_err(encode)?;
        for r in &rows {
            csv_text.serialize(r).map_err(encode)?;
            jsonl_text.push_str(&json_line(r, held_out));
            jsonl_text.push('\n');
        }
        let csv_bytes = csv_text.into_inner().map_err(|e| Error::Metrics {
            path: csv_path.clone(),
            reason: format!("cannot encode the rows: {e}"),
        })?;
        replace_atomically(&csv_path, &csv_bytes)?;
        replace_atomically(&jsonl_path, jsonl_text.as_bytes())?;
        let append = |path: &Path| {
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(io("open", path))
        };
        let csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(append(&csv_path)?);
        let jsonl = append(&jsonl_path)?;
        Ok(Self {
            csv_path,
            jsonl_path,
            csv,
            jsonl,
            held_out: held_out.map(str::to_string),
            rows,
        })
    }

    /// Appends a row to both files and flushes them.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Metrics`] when a file cannot be written.
    pub fn push(&mut self, record: &TrainingRecord) -> Result<()> {
        let row = MetricsRow::from(record);
        self.csv.serialize(&row).map_err(|e| Error::Metrics {
            path: self.csv_path.clone(),
            reason: format!("cannot write: {e}"),
        })?;
        self.csv.flush().map_err(|source| Error::Io {
            action: "write",
            path: self.csv_path.clone(),
            source,
        })?;
        writeln!(self.jsonl, "{}", json_line(&row, self.held_out.as_deref()))
            .and_then(|()| self.jsonl.flush())
            .map_err(|source| Error::Io {
                action: "write",
                path: self.jsonl_path.clone(),
                source,
            })?;
        self.rows.push(row);
        Ok(())
    }

    /// Every row so far, those kept from before a resume included.
    pub fn rows(&self) -> &[MetricsRow] {
        &self.rows
    }
}

/// The rows of iterations `1..=resume_from` of the metrics files in `dir`, checked
/// before a run resumes from a checkpoint at iteration `resume_from`: both files
/// present, the CSV's columns this run's, its rows exactly iterations `1, 2, …,
/// resume_from` (later ones, written after the checkpoint before an interruption,
/// are left out), and the JSON lines holding the same iterations with the same
/// objectives. Reads only.
///
/// # Errors
/// [`Error::Metrics`] saying what is inconsistent and how to recover: a directory
/// whose history was lost or damaged is refused, never silently truncated.
pub fn resumable_rows(dir: &Path, held_out: Option<&str>, resume_from: usize) -> Result<Vec<MetricsRow>> {
    let csv_path = dir.join(METRICS_CSV);
    let jsonl_path = dir.join(METRICS_JSONL);
    let recover = "restore it from a backup, or start a new run (the checkpoints hold the parameters, not \
                   the history)";
    for path in [&csv_path, &jsonl_path] {
        if !path.is_file() {
            return Err(Error::Metrics {
                path: path.clone(),
                reason: format!("is missing, so the run's history up to iteration {resume_from} is lost: {recover}"),
            });
        }
    }
    let rows = read_rows(&csv_path, &metrics_header(held_out), resume_from)?;
    let iterations: Vec<usize> = rows.iter().map(|r| r.iteration).collect();
    if iterations != (1..=resume_from).collect::<Vec<_>>() {
        return Err(Error::Metrics {
            path: csv_path,
            reason: format!(
                "holds iterations {} where the checkpoint needs 1..={resume_from}: {recover}",
                ranges(&iterations)
            ),
        });
    }
    let lines = read_json_lines(&jsonl_path, resume_from)?;
    let agree = lines.len() == rows.len()
        && lines.iter().zip(&rows).all(|((it, objective), r)| {
            *it == r.iteration
                && (objective.to_bits() == r.objective.to_bits() || (objective.is_nan() && r.objective.is_nan()))
        });
    if !agree {
        return Err(Error::Metrics {
            path: jsonl_path,
            reason: format!(
                "disagrees with {METRICS_CSV} (iterations {} there, {} here): {recover}",
                ranges(&iterations),
                ranges(&lines.iter().map(|l| l.0).collect::<Vec<_>>())
            ),
        });
    }
    Ok(rows)
}

/// `(iteration, objective)` of each line of a metrics JSON-lines file up to
/// `keep_through`; a torn last line is dropped, a damaged one elsewhere refused.
fn read_json_lines(path: &Path, keep_through: usize) -> Result<Vec<(usize, f64)>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let parsed = serde_json::from_str::<serde_json::Value>(line).ok().and_then(|v| {
            let it = usize::try_from(v.get("iteration")?.as_u64()?).ok()?;
            // Non-finite objectives are written as null.
            let objective = v.get("objective")?.as_f64().unwrap_or(f64::NAN);
            Some((it, objective))
        });
        match parsed {
            Some(p) if p.0 <= keep_through => out.push(p),
            Some(_) => {}
            None if i + 1 == lines.len() && !text.ends_with('\n') => break,
            None => {
                return Err(Error::Metrics {
                    path: path.to_path_buf(),
                    reason: format!("line {} is malformed", i + 1),
                })
            }
        }
    }
    Ok(out)
}

/// `1..=5, 7` for `[1, 2, 3, 4, 5, 7]`; `none` when empty.
fn ranges(values: &[usize]) -> String {
    if values.is_empty() {
        return "none".into();
    }
    let mut parts = Vec::new();
    let mut start = values[0];
    for w in 0..values.len() {
        let end = values[w];
        if w + 1 == values.len() || values[w + 1] != end + 1 {
            parts.push(if start == end {
                start.to_string()
            } else {
                format!("{start}..={end}")
            });
            if w + 1 < values.len() {
                start = values[w + 1];
            }
        }
    }
    parts.join(", ")
}

/// Writes `bytes` to `path` through a temporary file beside it (`.tmp-<name>`, so the
/// extension stays last) and a rename: an interruption never leaves half a file.
///
/// # Errors
/// [`Error::Io`] naming the temporary file.
pub fn replace_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".tmp-{name}"));
    let io = |action| {
        let path = tmp.clone();
        move |source| Error::Io { action, path, source }
    };
    let mut f = File::create(&tmp).map_err(io("create"))?;
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io("write"))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io("rename")));
    if written.is_err() {
        // A full disk, say: no half-written temporary file is left behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The JSON line of a record: the iteration record's fields, the held-out value and
/// the measure's name. Non-finite numbers become `null`.
fn json_line(r: &MetricsRow, held_out: Option<&str>) -> String {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.insert("held_out_measure".into(), held_out.into());
    }
    v.to_string()
}

/// Reads a `metrics.csv` written by a [`MetricsWriter`], whatever its held-out
/// measure: returns the held-out column's name and every row.
///
/// # Errors
/// [`Error::Metrics`] when the columns are not a metrics file's or a row is
/// malformed; [`Error::Io`] when it cannot be read.
pub fn read_metrics(path: &Path) -> Result<(String, Vec<MetricsRow>)> {
    let held = held_out_column_of(path)?;
    let mut header = metrics_header(None);
    header[HELD_OUT_FIELD] = held.clone();
    Ok((held, read_rows(path, &header, usize::MAX)?))
}

/// The name of the held-out column (the fifth) of an existing metrics file.
fn held_out_column_of(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::Reader::from_reader(BufReader::new(file));
    let header = reader.headers().map_err(|e| Error::Metrics {
        path: path.to_path_buf(),
        reason: format!("unreadable header ({e})"),
    })?;
    Ok(header.get(HELD_OUT_FIELD).unwrap_or_default().to_string())
}

fn read_rows(path: &Path, header: &[String], keep_through: usize) -> Result<Vec<MetricsRow>> {
    let fail = |reason: String| Error::Metrics {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::Reader::from_reader(BufReader::new(file));
    let found: Vec<String> = reader
        .headers()
        .map_err(|e| fail(format!("unreadable header ({e})")))?
        .iter()
        .map(str::to_string)
        .collect();
    if found != header {
        return Err(fail(format!(
            "its columns are {found:?}, this run writes {header:?}: it was written by another version or \
             with another held-out measure; resume with the same settings or start a new run directory"
        )));
    }
    // Rows are read by field name: the held-out column under the struct's own name.
    let fields = csv::StringRecord::from(field_names());
    let mut rows = Vec::new();
    let mut records = reader.records().enumerate().peekable();
    while let Some((line, row)) = records.next() {
        let parsed = row
            .ok()
            .and_then(|r| r.deserialize::<MetricsRow>(Some(&fields)).ok())
            .filter(|r| r.to_record().is_some());
        let Some(record) = parsed else {
            // A torn last row (the process was killed while writing it) is dropped;
            // a bad row anywhere else means the file was damaged.
            if records.peek().is_none() {
                break;
            }
            return Err(fail(format!("row {} is malformed", line + 1)));
        };
        if record.iteration <= keep_through {
            rows.push(record);
        }
    }
    Ok(rows)
}

impl<B: Backend> TrainingObserver<B> for MetricsWriter {
    fn on_iteration(&mut self, record: &TrainingRecord, _state: &HfState<ParamVector<B>>) -> Result<Control, BoxError> {
        self.push(record)?;
        Ok(Control::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_held_out_column_is_named_after_its_measure() {
        assert_eq!(held_out_column(Some("zero-one loss")), "held_out_zero_one_loss");
        assert_eq!(
            held_out_column(Some("  Reconstruction  Error ")),
            "held_out_reconstruction_error"
        );
        assert_eq!(held_out_column(Some("mse")), "held_out_mse");
        assert_eq!(held_out_column(None), "held_out");
    }

    #[test]
    fn a_torn_last_row_is_dropped_and_a_damaged_one_refused() {
        let dir = std::env::temp_dir().join(format!("hf-metrics-torn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let header = metrics_header(Some("mse")).join(",");
        let row =
            |i: usize| format!("{i},0.5,2,1,0.25,3,1,1,,0.8,4,max_iterations,4,4,1,0.1,accepted,0.1,0,0.2,0,0.1,0.1");
        let path = dir.join(METRICS_CSV);
        std::fs::write(&path, format!("{header}\n{}\n{}\n3,0.5,2", row(1), row(2))).unwrap();
        let (column, rows) = read_metrics(&path).unwrap();
        assert_eq!(column, "held_out_mse");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].iteration, 2);
        assert_eq!(rows[0].held_out, Some(0.25));
        assert_eq!(rows[0].radius, None);
        assert_eq!(rows[0].termination, Some(Termination::MaxIterations));

        std::fs::write(&path, format!("{header}\n{}\n3,0.5,2\n{}\n", row(1), row(4))).unwrap();
        assert!(matches!(read_metrics(&path), Err(Error::Metrics { ref reason, .. }) if reason.contains("row 2")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_resume_needs_both_files_with_the_same_history_through_the_checkpoint() {
        let dir = std::env::temp_dir().join(format!("hf-metrics-resumable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let header = metrics_header(Some("mse")).join(",");
        let row =
            |i: usize| format!("{i},0.5,2,1,0.25,3,1,1,,0.8,4,max_iterations,4,4,1,0.1,accepted,0.1,0,0.2,0,0.1,0.1");
        // The rows' objective (the fourth column) is 1.
        let line = |i: usize, f: f64| format!("{{\"iteration\":{i},\"objective\":{f}}}\n");
        let csv = |its: &[usize]| {
            let rows: String = its.iter().map(|&i| row(i) + "\n").collect();
            std::fs::write(dir.join(METRICS_CSV), format!("{header}\n{rows}")).unwrap();
        };
        let reason = |r: Result<Vec<MetricsRow>>| match r {
            Err(Error::Metrics { reason, path }) => format!("{}: {reason}", path.display()),
            other => panic!("{other:?}"),
        };

        // Rows after the checkpoint (a run killed between checkpoints) are left out.
        csv(&[1, 2, 3]);
        std::fs::write(dir.join(METRICS_JSONL), line(1, 1.0) + &line(2, 1.0) + &line(3, 1.0)).unwrap();
        let rows = resumable_rows(&dir, Some("mse"), 2).unwrap();
        assert_eq!(rows.iter().map(|r| r.iteration).collect::<Vec<_>>(), [1, 2]);

        // Fewer rows than the checkpoint's iterations.
        let r = reason(resumable_rows(&dir, Some("mse"), 4));
        assert!(
            r.contains("holds iterations 1..=3 where the checkpoint needs 1..=4"),
            "{r}"
        );
        // The files disagree.
        std::fs::write(dir.join(METRICS_JSONL), line(1, 1.0) + &line(2, 0.7)).unwrap();
        let r = reason(resumable_rows(&dir, Some("mse"), 2));
        assert!(r.contains("metrics.jsonl") && r.contains("disagrees"), "{r}");
        std::fs::write(dir.join(METRICS_JSONL), line(1, 1.0)).unwrap();
        assert!(reason(resumable_rows(&dir, Some("mse"), 2)).contains("iterations 1..=2 there, 1 here"));
        // A file is missing.
        std::fs::remove_file(dir.join(METRICS_CSV)).unwrap();
        let r = reason(resumable_rows(&dir, Some("mse"), 2));
        assert!(r.contains("metrics.csv: is missing"), "{r}");
        // And a fresh run refuses either file.
        let e = MetricsWriter::create(&dir, Some("mse"), 0).err().unwrap();
        assert!(e.to_string().contains("metrics.jsonl"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1..=3, 5, 7..=8");
    }
}
