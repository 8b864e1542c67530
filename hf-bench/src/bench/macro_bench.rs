//! Macro-benchmarks: HF against Adam (with a small learning-rate sweep) and SGD with
//! momentum on the same preset, from the same initialization, for the same wall-time
//! budget. Methods are compared on the held-out error, which every method evaluates
//! the same way (the first-order methods' training objective is a minibatch value).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::preset::Preset;
use crate::progress::Verbosity;
use crate::settings::OptimizerKind;
use crate::settings::RunConfig;
use crate::train::RunOptions;
use hf_burn::train::MetricsRow;

/// JSON has neither infinity nor NaN (serde_json writes both as `null`): reads `null`
/// back as infinity, so that a record without a target round-trips.
fn null_as_infinity<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// Reads `null` back as NaN (a measure never taken).
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One method's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodRun {
    /// `hf` (or an [`HfVariant`]'s name), `adam` or `sgd`.
    pub method: String,
    /// Learning rate (first-order methods).
    pub learning_rate: Option<f64>,
    /// Iterations or steps done within the budget.
    pub iterations: usize,
    /// Held-out error at the end.
    #[serde(deserialize_with = "null_as_nan")]
    pub final_held_out: f64,
    /// Best held-out error seen (infinite without an evaluation).
    #[serde(deserialize_with = "null_as_infinity")]
    pub best_held_out: f64,
    /// Seconds of training until the held-out error first reached the target.
    pub time_to_target_s: Option<f64>,
    /// When the held-out error first fell below the comparison's success threshold
    /// (if it has one and the run got there).
    #[serde(default)]
    pub success: Option<Success>,
    /// `(seconds of training, held-out error)` at each evaluation.
    pub curve: Vec<(f64, f64)>,
    /// HF only: the median time of each phase of an iteration, over the run.
    #[serde(default)]
    pub profile: Option<PhaseProfile>,
    /// The run's budget of training time, seconds (absent in records that predate it).
    #[serde(default)]
    pub budget_s: Option<f64>,
    /// The held-out measure's name (empty in records that predate it).
    #[serde(default)]
    pub measure: String,
}

/// Where an HF iteration's time goes: per-phase medians over a run's iterations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhaseProfile {
    /// Iterations the medians are over.
    pub iterations: usize,
    /// The median of each phase, seconds.
    pub median: hf_core::PhaseTimes,
    /// The median iteration's total, seconds (the sum of its phases).
    pub median_total_s: f64,
    /// Median curvature products per iteration.
    pub median_products: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

impl PhaseProfile {
    /// Medians over the HF rows of a metrics file (`None` without rows).
    pub fn of(rows: &[MetricsRow]) -> Option<Self> {
        if rows.is_empty() {
            return None;
        }
        let m = |f: fn(&hf_core::PhaseTimes) -> f64| median(rows.iter().map(|r| f(&r.phases())).collect());
        Some(Self {
            iterations: rows.len(),
            median: hf_core::PhaseTimes {
                gradient: m(|t| t.gradient),
                preconditioner: m(|t| t.preconditioner),
                solve: m(|t| t.solve),
                backtracking: m(|t| t.backtracking),
                rho: m(|t| t.rho),
                line_search: m(|t| t.line_search),
            },
            median_total_s: m(|t| t.total()),
            median_products: median(rows.iter().map(|r| r.curvature_products as f64).collect()),
        })
    }
}

/// The first evaluation below a success threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Success {
    /// Seconds of training.
    pub seconds: f64,
    /// Iterations (HF) or steps (first-order methods).
    pub iteration: usize,
}

/// A configuration of HF in a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HfVariant {
    /// The preset's own settings (Martens' on the autoencoders).
    Default,
    /// The preset's settings with the Kronecker-factored preconditioner.
    KroneckerFactored,
    /// The preset's settings in the minibatch regime ([`crate::preset::minibatch_regime`]).
    Minibatch,
}

impl HfVariant {
    /// The method's name in reports: `hf`, `hf-kfac`, `hf-minibatch`.
    pub fn name(self) -> &'static str {
        match self {
            HfVariant::Default => "hf",
            HfVariant::KroneckerFactored => "hf-kfac",
            HfVariant::Minibatch => "hf-minibatch",
        }
    }

    /// `defaults` (a preset's settings) changed as this variant says.
    pub fn apply(self, mut defaults: RunConfig) -> RunConfig {
        match self {
            HfVariant::Default => defaults,
            HfVariant::KroneckerFactored => {
                defaults.hf.preconditioner = hf_core::PreconditionerKind::KroneckerFactored;
                defaults
            }
            HfVariant::Minibatch => crate::preset::minibatch_regime(defaults),
        }
    }
}

/// What one comparison runs: a preset, its methods and their common budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison<'a> {
    /// The preset.
    pub preset: Preset,
    /// The RNN tasks' minimum length `T` (ignored by the other presets).
    pub seq_len: usize,
    /// Seconds of training per method.
    pub budget_s: f64,
    /// HF's configurations.
    pub hf_variants: &'a [HfVariant],
    /// Adam's learning rates.
    pub adam_rates: &'a [f64],
    /// SGD's learning rates.
    pub sgd_rates: &'a [f64],
    /// A run stops, successful, once its held-out error falls below this.
    pub success_below: Option<f64>,
    /// The seed of initialization and data, the same for every method.
    pub seed: u64,
    /// Reuse a run that finished earlier (its `method.json` in its directory) instead
    /// of running it again: a long study resumes where it stopped.
    pub resume: bool,
    /// Which methods may start a run; a method left out appears only if it finished
    /// earlier (with `resume`).
    pub start: StartMethods,
}

/// Which of a comparison's methods may start a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StartMethods {
    /// Every method.
    #[default]
    All,
    /// HF only (its configurations).
    Hf,
    /// The first-order methods only (Adam, SGD).
    FirstOrder,
}

impl StartMethods {
    fn allows(self, optimizer: OptimizerKind) -> bool {
        match self {
            StartMethods::All => true,
            StartMethods::Hf => optimizer == OptimizerKind::Hf,
            StartMethods::FirstOrder => optimizer != OptimizerKind::Hf,
        }
    }
}

/// The file in a run's directory that holds its [`MethodRun`] once it finished.
pub const METHOD_RUN_FILE: &str = "method.json";

/// A finished run's record, if `dir` holds a readable one.
fn finished_run(dir: &Path) -> Option<MethodRun> {
    let bytes = std::fs::read(dir.join(METHOD_RUN_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// All methods on one preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MacroResult {
    /// The preset.
    pub preset: String,
    /// The backend.
    pub backend: String,
    /// Wall-time budget per method, seconds of training.
    pub budget_s: f64,
    /// The held-out measure.
    pub measure: String,
    /// The target: the best held-out error the best Adam run reached (infinite
    /// without an Adam run).
    #[serde(deserialize_with = "null_as_infinity")]
    pub target: f64,
    /// Every run.
    pub runs: Vec<MethodRun>,
}

/// Runs `comparison` with backend `B`, writing each run under `out`.
pub fn run<B: burn::prelude::Backend>(
    comparison: &Comparison<'_>,
    backend: &str,
    device: &B::Device,
    dtype: burn::tensor::DType,
    out: &Path,
) -> Result<MacroResult> {
    let preset = comparison.preset;
    let hf = |v: &HfVariant| (OptimizerKind::Hf, None, *v);
    let mut methods: Vec<(OptimizerKind, Option<f64>, HfVariant)> = comparison.hf_variants.iter().map(hf).collect();
    let first_order = |o| move |&lr: &f64| (o, Some(lr), HfVariant::Default);
    methods.extend(comparison.adam_rates.iter().map(first_order(OptimizerKind::Adam)));
    methods.extend(comparison.sgd_rates.iter().map(first_order(OptimizerKind::Sgd)));
    let mut runs = Vec::new();
    let mut measure = String::new();
    for (optimizer, lr, variant) in methods {
        let mut cfg: RunConfig = variant.apply(preset.defaults());
        cfg.hf.max_iterations = 1_000_000;
        cfg.hf.time_budget_s = Some(comparison.budget_s);
        cfg.trainer.target_held_out = comparison.success_below;
        cfg.trainer.checkpoint_every = 0;
        if optimizer != OptimizerKind::Hf {
            // The first-order methods take many cheap steps: evaluated every 20.
            cfg.trainer.eval_every = 20;
        }
        if let Some(lr) = lr {
            cfg.adam.learning_rate = lr;
            cfg.sgd.learning_rate = lr;
        }
        let name = match (optimizer, lr) {
            (OptimizerKind::Hf, _) => variant.name().to_string(),
            (OptimizerKind::Adam, Some(lr)) => format!("adam-{lr:e}"),
            (_, lr) => format!("sgd-{:e}", lr.unwrap_or_default()),
        };
        let dir = out.join(format!("{}-{name}", run_name(comparison)));
        if comparison.resume {
            if let Some(done) = finished_run(&dir).filter(|r| r.budget_s == Some(comparison.budget_s)) {
                if measure.is_empty() {
                    measure.clone_from(&done.measure);
                }
                runs.push(done);
                continue;
            }
        }
        if !comparison.start.allows(optimizer) {
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(|source| crate::error::CliError::Output {
            path: dir.clone(),
            source,
        })?;
        let opts = RunOptions {
            preset,
            backend: backend.to_string(),
            optimizer,
            seed: comparison.seed,
            out: dir.clone(),
            resume: false,
            verbosity: Verbosity::Quiet,
            config: cfg,
            data: None,
            interrupt: crate::interrupt::Interrupt::inactive(),
            worker: crate::train::Worker::SOLE,
        };
        let experiment = preset.experiment(None, comparison.seq_len)?;
        let crate::train::Trained { summary, rows, .. } =
            crate::setup::run::<B>(&opts, experiment, device, dtype, &mut || Ok(()))?;
        measure = summary.held_out_measure.clone();
        let evaluated = || rows.iter().filter(|r| r.held_out_or_nan().is_finite());
        let curve: Vec<(f64, f64)> = evaluated().map(|r| (r.elapsed_s, r.held_out_or_nan())).collect();
        let best = curve.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let success = comparison.success_below.and_then(|t| {
            evaluated().find(|r| r.held_out_or_nan() < t).map(|r| Success {
                seconds: r.elapsed_s,
                iteration: r.iteration,
            })
        });
        let profile = (optimizer == OptimizerKind::Hf)
            .then(|| PhaseProfile::of(&rows))
            .flatten();
        let run = MethodRun {
            budget_s: Some(comparison.budget_s),
            measure: summary.held_out_measure.clone(),
            profile,
            method: match optimizer {
                OptimizerKind::Hf => variant.name().into(),
                o => name_of(o).into(),
            },
            learning_rate: lr,
            iterations: summary.iterations,
            final_held_out: summary.held_out_error,
            best_held_out: best,
            time_to_target_s: None,
            success,
            curve,
        };
        crate::records::write_atomic(
            &dir.join(METHOD_RUN_FILE),
            serde_json::to_string_pretty(&run).expect("runs serialize").as_bytes(),
        )?;
        runs.push(run);
    }
    let target = runs
        .iter()
        .filter(|r| r.method == "adam")
        .map(|r| r.best_held_out)
        .fold(f64::INFINITY, f64::min);
    for r in &mut runs {
        r.time_to_target_s = r.curve.iter().find(|p| p.1 <= target).map(|p| p.0);
    }
    Ok(MacroResult {
        preset: run_name(comparison),
        backend: backend.to_string(),
        budget_s: comparison.budget_s,
        measure,
        target,
        runs,
    })
}

/// The preset's name, with `-T<length>` for the RNN tasks.
fn run_name(c: &Comparison<'_>) -> String {
    match c.preset.experiment(None, c.seq_len) {
        Ok(crate::preset::Experiment::Rnn(_)) => format!("{}-T{}", preset_name(c.preset), c.seq_len),
        _ => preset_name(c.preset),
    }
}

fn name_of(o: OptimizerKind) -> &'static str {
    match o {
        OptimizerKind::Hf => "hf",
        OptimizerKind::Adam => "adam",
        OptimizerKind::Sgd => "sgd",
    }
}

/// A preset's command-line name.
pub fn preset_name(p: Preset) -> String {
    clap::ValueEnum::to_possible_value(&p)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}
