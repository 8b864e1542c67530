//! The benchmark report: JSON, a Markdown table, and PNG plots.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::macro_bench::MacroResult;
use super::micro::{MicroResult, Timing};
use super::Skipped;
use crate::error::Result;
use crate::records::write_atomic;

/// Everything one `hessfree bench` run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// The command line that produced it.
    pub command: String,
    /// Logical CPUs seen.
    pub cpus: usize,
    /// Micro-benchmarks.
    pub micro: Vec<MicroResult>,
    /// Macro-benchmarks.
    pub macro_results: Vec<MacroResult>,
    /// Backends not measured, and why.
    pub skipped: Vec<Skipped>,
}

fn ms(t: &Timing) -> String {
    format!("{:.2} [{:.2}–{:.2}]", 1e3 * t.median_s, 1e3 * t.min_s, 1e3 * t.max_s)
}

/// The report as Markdown.
pub fn markdown(r: &BenchReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# hessfree bench\n\n`{}` on {} CPUs.\n", r.command, r.cpus);
    if !r.micro.is_empty() {
        let _ = writeln!(
            s,
            "## Micro-benchmarks\n\nMilliseconds, median [min–max] over repeats after a warm-up; the device is \
             synchronized inside each timed region. GN/grad is the ratio of medians measured side by side.\n"
        );
        let _ = writeln!(
            s,
            "| backend | model | params | batch | gradient | GN product | Hessian product | preconditioner (batch, one pass) | per-case preconditioner (32 cases) | CG iteration | GN/grad | precond/grad | grad ex/s | peak host MiB (GN) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for m in &r.micro {
            let model = serde_json::to_value(m.model)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {:.1} |",
                m.backend,
                model,
                m.parameters,
                m.batch,
                ms(&m.gradient),
                ms(&m.gauss_newton),
                ms(&m.hessian),
                ms(&m.preconditioner),
                m.per_case_preconditioner.as_ref().map_or("—".into(), ms),
                ms(&m.cg_iteration),
                m.gn_over_gradient,
                m.preconditioner_over_gradient,
                m.gradient.examples_per_s,
                m.gauss_newton.peak_host_bytes as f64 / 1048576.0
            );
        }
    }
    for m in &r.macro_results {
        let _ = writeln!(
            s,
            "\n## {} on {}: equal wall time ({:.0} s of training each)\n\nHeld-out {}; target = the best Adam run's best \
             value, {:.4e}.\n",
            m.preset, m.backend, m.budget_s, m.measure, m.target
        );
        let _ = writeln!(
            s,
            "| method | learning rate | iterations | final held-out | best held-out | time to target (s) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for run in &m.runs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.4e} | {:.4e} | {} |",
                run.method,
                run.learning_rate.map_or("—".into(), |l| format!("{l:e}")),
                run.iterations,
                run.final_held_out,
                run.best_held_out,
                run.time_to_target_s.map_or("not reached".into(), |t| format!("{t:.1}"))
            );
        }
    }
    let profiled: Vec<_> = r
        .macro_results
        .iter()
        .flat_map(|m| m.runs.iter().filter_map(move |run| run.profile.map(|p| (m, p))))
        .collect();
    if !profiled.is_empty() {
        let _ = writeln!(
            s,
            "\n## Where an HF iteration's time goes\n\nMedian seconds per iteration over the macro runs' HF \
             iterations (share of the median total). The solve includes every curvature product.\n"
        );
        let _ = writeln!(
            s,
            "| preset | backend | iterations | products | gradient | preconditioner | solve | backtracking | ρ | line search | total |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
        for (m, p) in profiled {
            let t = &p.median;
            let cell = |x: f64| format!("{x:.3} ({:.0}%)", 100.0 * x / p.median_total_s);
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.3} |",
                m.preset,
                m.backend,
                p.iterations,
                p.median_products,
                cell(t.gradient),
                cell(t.preconditioner),
                cell(t.solve),
                cell(t.backtracking),
                cell(t.rho),
                cell(t.line_search),
                p.median_total_s
            );
        }
    }
    for k in &r.skipped {
        let _ = writeln!(s, "\nSkipped {}: {}", k.backend, k.reason);
    }
    s
}

/// Writes `bench.json`, `bench.md` and one comparison plot per macro result into `dir`.
pub fn write(dir: &Path, r: &BenchReport) -> Result<()> {
    write_atomic(
        &dir.join("bench.json"),
        serde_json::to_string_pretty(r).expect("report serializes").as_bytes(),
    )?;
    write_atomic(&dir.join("bench.md"), markdown(r).as_bytes())?;
    for m in &r.macro_results {
        comparison_plot(dir, m)?;
    }
    Ok(())
}

/// Draws `m`'s held-out curves, one per method, into `dir/PRESET-BACKEND.png`.
pub fn comparison_plot(dir: &Path, m: &MacroResult) -> Result<()> {
    let series: Vec<(String, Vec<(f64, f64)>)> = m
        .runs
        .iter()
        .map(|run| {
            let label = match run.learning_rate {
                Some(lr) => format!("{} lr={lr:e}", run.method),
                None => run.method.clone(),
            };
            (label, run.curve.clone())
        })
        .collect();
    crate::plot::comparison(
        &dir.join(format!("{}-{}.png", m.preset, m.backend)),
        &format!(
            "{} on {}: held-out {} against training time",
            m.preset, m.backend, m.measure
        ),
        &m.measure,
        &series,
    )
}
