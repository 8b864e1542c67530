//! `hessfree experiment rnn-tasks`: the pathological long-range-dependency study of Martens
//! & Sutskever (2011). For each task and minimum length `T`, HF (structural damping
//! on) and Adam (a small learning-rate sweep) train the same 100-unit tanh RNN from
//! the same initialization for the same wall-time budget; a run succeeds, and stops,
//! when its zero-one loss on fresh test sequences (spanning the task's lengths) falls
//! below 1%.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::bench::macro_bench::{preset_name, MacroResult, MethodRun};
use crate::error::{CliError, Result};
use crate::preset::{Experiment, Preset};
use crate::records::write_atomic;

/// Everything one study measured: `results.json` in its directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RnnStudy {
    /// The command line that produced it.
    pub command: String,
    /// Logical CPUs seen.
    pub cpus: usize,
    /// `RAYON_NUM_THREADS` as set for the run, if it was.
    pub threads: Option<String>,
    /// The backend.
    pub backend: String,
    /// Seconds of training per method, per task and length, in the last command (each
    /// comparison records its own).
    pub budget_s: f64,
    /// The success threshold on the held-out zero-one loss.
    pub success_below: f64,
    /// One comparison per task and length.
    pub comparisons: Vec<TaskComparison>,
}

/// HF against Adam on one task at one length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskComparison {
    /// The task's preset name.
    pub task: String,
    /// The minimum sequence length `T`.
    pub length: usize,
    /// The runs, HF first.
    pub result: MacroResult,
}

impl RnnStudy {
    /// Adds `c`, replacing an earlier comparison of the same task and length.
    pub fn record(&mut self, c: TaskComparison) {
        match self
            .comparisons
            .iter_mut()
            .find(|old| old.task == c.task && old.length == c.length)
        {
            Some(old) => *old = c,
            None => self.comparisons.push(c),
        }
    }
}

/// The study in `dir`'s `results.json`, if there is one.
///
/// # Errors
/// [`CliError::Config`] when the file exists but is not a study's results.
pub fn read(dir: &Path) -> Result<Option<RnnStudy>> {
    let path = dir.join("results.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        CliError::Config(format!(
            "{} is not an RNN study's results ({e}): point --out elsewhere or remove it",
            path.display()
        ))
    })
}

/// Checks that every preset is an RNN task.
///
/// # Errors
/// [`CliError::Config`] naming the first preset that is not.
pub fn check_tasks(tasks: &[Preset]) -> Result<()> {
    for &t in tasks {
        if !matches!(
            t.experiment(None, crate::preset::DEFAULT_SEQ_LEN),
            Ok(Experiment::Rnn(_))
        ) {
            return Err(CliError::Config(format!(
                "`{}` is not a pathological RNN task: --tasks takes addition, multiplication, xor, temporal-order2, \
                 temporal-order3, random-permutation, memorization5 or memorization20",
                preset_name(t)
            )));
        }
    }
    Ok(())
}

fn seconds(s: Option<f64>) -> String {
    s.map_or("—".into(), |s| format!("{s:.0}"))
}

fn method_label(run: &MethodRun) -> String {
    match run.learning_rate {
        Some(lr) => format!("{} (lr {lr:e})", run.method),
        None => format!("{} (μ = 0.03)", run.method),
    }
}

/// The study as a Markdown table, one row per task, length and method.
pub fn markdown(study: &RnnStudy) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "`{}` — backend {}, {} CPUs{}, {:.0} s of training per method (the last command's; each row's budget is in its own column); success: held-out zero-one loss < {}.\n",
        study.command,
        study.backend,
        study.cpus,
        study
            .threads
            .as_ref()
            .map_or(String::new(), |t| format!(" (RAYON_NUM_THREADS={t})")),
        study.budget_s,
        study.success_below
    );
    let _ = writeln!(
        s,
        "| task | T | method | budget (s) | solved | time to success (s) | iterations to success | iterations run | final held-out | best held-out |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for c in &study.comparisons {
        for run in &c.result.runs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} |",
                c.task,
                c.length,
                method_label(run),
                seconds(run.budget_s.or(Some(c.result.budget_s))),
                if run.success.is_some() { "yes" } else { "no" },
                seconds(run.success.map(|x| x.seconds)),
                run.success.map_or("—".into(), |x| x.iteration.to_string()),
                run.iterations,
                run.final_held_out,
                run.best_held_out
            );
        }
    }
    s
}

/// Writes `results.json`, `results.md` and one plot per task and length into `dir`.
///
/// # Errors
/// A file that cannot be written.
pub fn write(dir: &Path, study: &RnnStudy) -> Result<()> {
    write_atomic(
        &dir.join("results.json"),
        serde_json::to_string_pretty(study)
            .expect("results serialize")
            .as_bytes(),
    )?;
    write_atomic(&dir.join("results.md"), markdown(study).as_bytes())?;
    for c in &study.comparisons {
        crate::bench::report::comparison_plot(dir, &c.result)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rnn_tasks_are_accepted() {
        assert!(check_tasks(&[Preset::Addition, Preset::TemporalOrder2]).is_ok());
        let e = check_tasks(&[Preset::Addition, Preset::CurvesSmall]).unwrap_err();
        assert!(e.to_string().contains("curves-small"), "{e}");
    }

    fn comparison(task: &str, length: usize, budget_s: f64) -> TaskComparison {
        TaskComparison {
            task: task.into(),
            length,
            result: MacroResult {
                preset: format!("{task}-T{length}"),
                backend: "flex".into(),
                budget_s,
                measure: "zero-one".into(),
                target: 1.0,
                runs: Vec::new(),
            },
        }
    }

    #[test]
    fn a_resumed_study_replaces_its_task_and_length_and_keeps_the_others() {
        let mut study = RnnStudy {
            command: String::new(),
            cpus: 2,
            threads: None,
            backend: "flex".into(),
            budget_s: 900.0,
            success_below: 0.01,
            comparisons: vec![comparison("addition", 50, 900.0), comparison("xor", 50, 600.0)],
        };
        // A stage that ran HF alone has no Adam target: infinite, `null` in JSON.
        study.comparisons[1].result.target = f64::INFINITY;
        study.record(comparison("addition", 50, 901.0));
        study.record(comparison("addition", 100, 900.0));
        let cells: Vec<_> = study
            .comparisons
            .iter()
            .map(|c| (c.task.as_str(), c.length, c.result.budget_s))
            .collect();
        assert_eq!(
            cells,
            [("addition", 50, 901.0), ("xor", 50, 600.0), ("addition", 100, 900.0)]
        );

        let dir = std::env::temp_dir().join(format!("hf-study-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read(&dir).unwrap().is_none());
        std::fs::write(dir.join("results.json"), b"{not json").unwrap();
        let e = read(&dir).unwrap_err();
        assert!(e.to_string().contains("not an RNN study"), "{e}");
        write_atomic(
            &dir.join("results.json"),
            serde_json::to_string(&study).unwrap().as_bytes(),
        )
        .unwrap();
        assert_eq!(read(&dir).unwrap(), Some(study));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
