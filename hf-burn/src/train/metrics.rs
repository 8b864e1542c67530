//! The metrics files of a training run: every field of every iteration's record, as
//! CSV (through the `csv` crate) and as JSON lines, flushed after each row.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use hf_core::{BoxError, Control, HfState, IterationRecord, PhaseTimes, StepOutcome, Termination};

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

/// The CSV columns, the held-out one named after its measure ([`held_out_column`]).
pub fn metrics_header(held_out: Option<&str>) -> Vec<String> {
    let held = held_out_column(held_out);
    [
        "iteration",
        "elapsed_s",
        "objective_before",
        "objective",
        held.as_str(),
        "gradient_norm",
        "damping",
        "next_damping",
        "radius",
        "rho",
        "solver_iterations",
        "termination",
        "curvature_products",
        "chosen_iterate",
        "step_size",
        "step_norm",
        "outcome",
        "gradient_s",
        "preconditioner_s",
        "solve_s",
        "backtracking_s",
        "rho_s",
        "line_search_s",
    ]
    .map(str::to_string)
    .to_vec()
}

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// One record as CSV fields, in [`metrics_header`]'s order. Floats are written in
/// Rust's shortest round-trip form, so a parsed row equals the written one.
fn csv_fields(r: &TrainingRecord) -> Vec<String> {
    let i = &r.iteration;
    let t = &i.phases;
    vec![
        i.iteration.to_string(),
        i.elapsed.as_secs_f64().to_string(),
        i.objective_before.to_string(),
        i.objective.to_string(),
        opt(r.held_out),
        i.gradient_norm.to_string(),
        i.damping.to_string(),
        i.next_damping.to_string(),
        opt(i.radius),
        i.rho.to_string(),
        i.solver_iterations.to_string(),
        i.termination.as_ref().map(name).unwrap_or_default(),
        i.curvature_products.to_string(),
        i.chosen_iterate.to_string(),
        i.step_size.to_string(),
        i.step_norm.to_string(),
        name(&i.outcome),
        t.gradient.to_string(),
        t.preconditioner.to_string(),
        t.solve.to_string(),
        t.backtracking.to_string(),
        t.rho.to_string(),
        t.line_search.to_string(),
    ]
}

/// Parses a row written by [`csv_fields`]; `None` when any field is malformed.
fn parse_fields(f: &csv::StringRecord) -> Option<TrainingRecord> {
    let num = |k: usize| f.get(k)?.parse::<f64>().ok();
    let int = |k: usize| f.get(k)?.parse::<usize>().ok();
    let optional = |k: usize| match f.get(k)? {
        "" => Some(None),
        s => s.parse::<f64>().ok().map(Some),
    };
    let enumeration = |k: usize| Some(serde_json::Value::String(f.get(k)?.to_string()));
    let termination = match f.get(11)? {
        "" => None,
        _ => Some(serde_json::from_value::<Termination>(enumeration(11)?).ok()?),
    };
    Some(TrainingRecord {
        iteration: IterationRecord {
            iteration: int(0)?,
            elapsed: std::time::Duration::try_from_secs_f64(num(1)?).ok()?,
            objective_before: num(2)?,
            objective: num(3)?,
            gradient_norm: num(5)?,
            damping: num(6)?,
            next_damping: num(7)?,
            radius: optional(8)?,
            rho: num(9)?,
            solver_iterations: int(10)?,
            termination,
            curvature_products: int(12)?,
            chosen_iterate: int(13)?,
            step_size: num(14)?,
            step_norm: num(15)?,
            outcome: serde_json::from_value::<StepOutcome>(enumeration(16)?).ok()?,
            phases: PhaseTimes {
                gradient: num(17)?,
                preconditioner: num(18)?,
                solve: num(19)?,
                backtracking: num(20)?,
                rho: num(21)?,
                line_search: num(22)?,
            },
        },
        held_out: optional(4)?,
    })
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
    rows: Vec<TrainingRecord>,
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
        let rows = if resume_from > 0 && csv_path.exists() {
            read_rows(&csv_path, &header, resume_from)?
        } else {
            if resume_from == 0 && csv_path.exists() {
                return Err(Error::Metrics {
                    path: csv_path,
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
        let mut csv_text = csv::Writer::from_writer(Vec::new());
        let mut jsonl_text = String::new();
        let encode = |e: csv::Error| Error::Metrics {
            path: csv_path.clone(),
            reason: format!("cannot encode a row: {e}"),
        };
        csv_text.write_record(&header).map_err(encode)?;
        for r in &rows {
            csv_text.write_record(csv_fields(r)).map_err(encode)?;
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
        self.csv.write_record(csv_fields(record)).map_err(|e| Error::Metrics {
            path: self.csv_path.clone(),
            reason: format!("cannot write: {e}"),
        })?;
        self.csv.flush().map_err(|source| Error::Io {
            action: "write",
            path: self.csv_path.clone(),
            source,
        })?;
        writeln!(self.jsonl, "{}", json_line(record, self.held_out.as_deref()))
            .and_then(|()| self.jsonl.flush())
            .map_err(|source| Error::Io {
                action: "write",
                path: self.jsonl_path.clone(),
                source,
            })?;
        self.rows.push(record.clone());
        Ok(())
    }

    /// Every row so far, those kept from before a resume included.
    pub fn rows(&self) -> &[TrainingRecord] {
        &self.rows
    }
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
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io("write"))?;
    std::fs::rename(&tmp, path).map_err(io("rename"))
}

/// The JSON line of a record: the iteration record's fields, the held-out value and
/// the measure's name. Non-finite numbers become `null`.
fn json_line(r: &TrainingRecord, held_out: Option<&str>) -> String {
    let mut v = serde_json::to_value(&r.iteration).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.insert("held_out".into(), r.held_out.into());
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
pub fn read_metrics(path: &Path) -> Result<(String, Vec<TrainingRecord>)> {
    let held = held_out_column_of(path)?;
    let mut header = metrics_header(None);
    header[4] = held.clone();
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
    Ok(header.get(4).unwrap_or_default().to_string())
}

fn read_rows(path: &Path, header: &[String], keep_through: usize) -> Result<Vec<TrainingRecord>> {
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
    let mut rows = Vec::new();
    let mut records = reader.records().enumerate().peekable();
    while let Some((line, row)) = records.next() {
        let parsed = row.ok().as_ref().and_then(parse_fields);
        let Some(record) = parsed else {
            // A torn last row (the process was killed while writing it) is dropped;
            // a bad row anywhere else means the file was damaged.
            if records.peek().is_none() {
                break;
            }
            return Err(fail(format!("row {} is malformed", line + 1)));
        };
        if record.iteration.iteration <= keep_through {
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
        assert_eq!(rows[1].iteration.iteration, 2);
        assert_eq!(rows[0].held_out, Some(0.25));
        assert_eq!(rows[0].iteration.radius, None);

        std::fs::write(&path, format!("{header}\n{}\n3,0.5,2\n{}\n", row(1), row(4))).unwrap();
        assert!(matches!(read_metrics(&path), Err(Error::Metrics { ref reason, .. }) if reason.contains("row 2")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
