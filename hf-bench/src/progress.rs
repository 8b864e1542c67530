//! Progress on the terminal: a live bar (indicatif) or one line per iteration.

use indicatif::{ProgressBar, ProgressStyle};

use hf_burn::train::MetricsRow;

/// How much the program says while it trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Nothing but errors and the final summary line.
    Quiet,
    /// A live progress bar.
    Normal,
    /// One line per iteration.
    Verbose,
}

/// The terminal side of a run.
pub struct Progress {
    bar: ProgressBar,
    verbosity: Verbosity,
}

impl Progress {
    /// A bar for `total` iterations, starting at `done`.
    pub fn new(total: usize, done: usize, verbosity: Verbosity) -> Self {
        let bar = match verbosity {
            Verbosity::Normal => ProgressBar::new(total as u64),
            _ => ProgressBar::hidden(),
        };
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_position(done as u64);
        Self { bar, verbosity }
    }

    /// Reports an iteration.
    pub fn iteration(&self, row: &MetricsRow, held_out_label: &str) {
        let msg = format!(
            "f={:.4e} {held_out_label}={:.4e} λ={:.2e} ρ={:.2} cg={}",
            row.objective,
            row.held_out_or_nan(),
            row.damping,
            row.rho,
            row.solver_iterations
        );
        if self.verbosity == Verbosity::Verbose {
            println!("iter {:>5} t={:>8.1}s {msg}", row.iteration, row.elapsed_s);
        }
        self.bar.set_message(msg);
        self.bar.inc(1);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
