//! The training driver, generic over the backend and the network: HF through
//! hf-core's loop, or burn's Adam or SGD with momentum from the same initialization.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use hf_burn::train::{MetricsWriter, Trainer, TrainingObserver, TrainingRecord, TrainingReport};
use hf_burn::{lift, scalar, BatchSource, BurnProblem, Evaluator, Inner, Loss, MatchingLoss, Network, ParamVector};
use hf_core::{BoxError, Control, HessianFree, HfState, IterationRecord, StepOutcome};

use crate::error::{CliError, Result};
use crate::preset::Preset;
use crate::progress::{Progress, Verbosity};
use crate::records::{write_atomic, DataInfo, MetricsRow, Summary};
use crate::settings::RunConfig;

/// The optimizer of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Hessian-free optimization.
    Hf,
    /// burn's Adam.
    Adam,
    /// burn's SGD with momentum.
    Sgd,
}

/// Everything about a run but its data.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The preset.
    pub preset: Preset,
    /// The backend's name, for records.
    pub backend: String,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// The seed of initialization and data.
    pub seed: u64,
    /// The output directory.
    pub out: PathBuf,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    /// Terminal output.
    pub verbosity: Verbosity,
    /// Settings.
    pub config: RunConfig,
    /// The data set, when the preset reads files.
    pub data: Option<DataInfo>,
}

/// The held-out measure of a preset.
pub type HeldOutFn<B, N, const D: usize> =
    Box<dyn Fn(&Evaluator<B, N, Loss, D>, &ParamVector<B>) -> hf_burn::Result<f64>>;

/// What a preset trains on backend `B`.
pub struct Setup<B: Backend, N: Network<D>, const D: usize> {
    /// The architecture.
    pub network: N,
    /// Its loss.
    pub loss: Loss,
    /// The initial parameters.
    pub initial: ParamVector<B>,
    /// Training batches.
    pub source: Box<dyn BatchSource<B, D>>,
    /// The held-out measure's name.
    pub held_out_label: &'static str,
    /// The held-out measure.
    pub held_out: HeldOutFn<B, N, D>,
}

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The progress bar as a trainer observer.
struct ProgressObserver {
    progress: Progress,
    label: &'static str,
}

impl<B: Backend> TrainingObserver<B> for ProgressObserver {
    fn on_iteration(&mut self, r: &TrainingRecord, _: &HfState<ParamVector<B>>) -> Result<Control, BoxError> {
        self.progress.iteration(&MetricsRow::from(r), self.label);
        Ok(Control::Continue)
    }

    fn on_finish(&mut self, _: &TrainingReport, _: &HfState<ParamVector<B>>) -> Result<(), BoxError> {
        self.progress.finish();
        Ok(())
    }
}

/// How a run ended, for its summary.
struct Outcome {
    stop: &'static str,
    iterations: usize,
    elapsed: Duration,
    curvature_products: usize,
    held_out: f64,
    rows: Vec<MetricsRow>,
}

/// Runs the training and writes its records; returns the summary.
pub fn train<B, N, const D: usize>(opts: &RunOptions, setup: Setup<B, N, D>, device: &B::Device) -> Result<Summary>
where
    B: Backend,
    N: Network<D> + 'static,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    let cfg = &opts.config;
    let label = setup.held_out_label;
    let problem = BurnProblem::new(setup.network.clone(), setup.loss, setup.source, cfg.problem, device)?;
    let parameters = problem.evaluator().num_params();
    let preset = name(&opts.preset);
    let optimizer = name(&opts.optimizer);
    let outcome = match opts.optimizer {
        OptimizerKind::Hf => train_hf(opts, problem, setup.initial, label, setup.held_out, device)?,
        OptimizerKind::Adam | OptimizerKind::Sgd => {
            if opts.resume {
                return Err(CliError::Unsupported(
                    "--resume continues Hessian-free runs; Adam and SGD runs start afresh".into(),
                ));
            }
            train_first_order(
                opts,
                problem,
                setup.network,
                setup.loss,
                setup.initial,
                label,
                &setup.held_out,
            )?
        }
    };
    let final_objective = outcome.rows.last().map_or(f64::NAN, |r| r.train_objective);
    let title = format!("{preset} · {optimizer} · {}", opts.backend);
    crate::plot::training_curve(&opts.out.join("training.png"), &title, label, &outcome.rows)?;
    let summary = Summary {
        preset,
        backend: opts.backend.clone(),
        optimizer,
        seed: opts.seed,
        parameters,
        iterations: outcome.iterations,
        stop: outcome.stop.to_string(),
        final_objective,
        held_out_error: outcome.held_out,
        held_out_measure: label.to_string(),
        wall_time_s: outcome.elapsed.as_secs_f64(),
        curvature_products: outcome.curvature_products,
        data: opts.data.clone(),
        config: cfg.clone(),
    };
    write_atomic(
        &opts.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)
            .expect("summary serializes")
            .as_bytes(),
    )?;
    Ok(summary)
}

/// Hessian-free training through the library's [`Trainer`]: metrics, checkpoints and
/// resume are its observers.
fn train_hf<B, N, const D: usize>(
    opts: &RunOptions,
    problem: BurnProblem<B, N, Loss, Box<dyn BatchSource<B, D>>, D>,
    initial: ParamVector<B>,
    label: &'static str,
    held_out: HeldOutFn<B, N, D>,
    device: &B::Device,
) -> Result<Outcome>
where
    B: Backend,
    N: Network<D> + 'static,
{
    let cfg = &opts.config;
    let identity = serde_json::json!({
        "preset": name(&opts.preset),
        "optimizer": name(&opts.optimizer),
        "seed": opts.seed,
    });
    let hf = HessianFree::<ParamVector<B>>::new(cfg.hf.clone())?;
    let mut trainer = Trainer::new(problem, hf, cfg.trainer.clone())?.held_out(label, held_out);
    let mut state = if opts.resume {
        let (state, saved) = trainer.resume(&opts.out, device)?;
        for key in ["preset", "optimizer", "seed"] {
            if saved[key] != identity[key] {
                return Err(CliError::Checkpoint {
                    path: opts.out.join(hf_burn::train::checkpoint::CHECKPOINTS_DIR),
                    reason: format!(
                        "written by a run with {key} {}, this run has {}: resume with the same {key}",
                        saved[key], identity[key]
                    ),
                });
            }
        }
        state
    } else {
        trainer.optimizer().init(initial)
    };
    let progress = Progress::new(cfg.hf.max_iterations, state.iteration, opts.verbosity);
    let mut trainer = trainer
        .metrics(&opts.out, state.iteration)?
        .checkpoints(&opts.out, identity)
        .observe(ProgressObserver { progress, label });
    let report = trainer.run(&mut state)?;
    Ok(Outcome {
        stop: report.stop.as_str(),
        iterations: state.iteration,
        elapsed: state.elapsed,
        curvature_products: state.curvature_products,
        held_out: report.held_out.unwrap_or(f64::NAN),
        rows: trainer.metrics_rows().iter().map(MetricsRow::from).collect(),
    })
}

/// burn's Adam or SGD with momentum from the same initialization, with the same
/// limits (`hf.max_iterations` steps, `hf.time_budget_s`) and the same metrics files.
fn train_first_order<B, N, const D: usize>(
    opts: &RunOptions,
    mut problem: BurnProblem<B, N, Loss, Box<dyn BatchSource<B, D>>, D>,
    network: N,
    loss: Loss,
    initial: ParamVector<B>,
    label: &'static str,
    held_out: &HeldOutFn<B, N, D>,
) -> Result<Outcome>
where
    B: Backend,
    N: Network<D>,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    let cfg = &opts.config;
    let limit = cfg.hf.max_iterations;
    let budget = cfg.hf.time_budget_s.map(Duration::from_secs_f64);
    let mut metrics = MetricsWriter::create(&opts.out, Some(label), 0)?;
    let progress = Progress::new(limit, 0, opts.verbosity);
    let templates = problem.evaluator().templates().clone();
    let mut module = templates.leaf_module(initial.tensor())?;
    let mut theta = initial;
    let mut adam = AdamConfig::new().init::<Inner<B>, N::Module<Inner<B>>>();
    let mut sgd = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(cfg.sgd.momentum)))
        .init::<Inner<B>, N::Module<Inner<B>>>();
    let learning_rate = match opts.optimizer {
        OptimizerKind::Adam => cfg.adam.learning_rate,
        _ => cfg.sgd.learning_rate,
    };
    let mut done = 0;
    let mut elapsed = Duration::ZERO;
    let mut last_held = f64::NAN;
    let stop = loop {
        if done >= limit {
            break "max_iterations";
        }
        if budget.is_some_and(|b| elapsed >= b) {
            break "time_budget";
        }
        let clock = Instant::now();
        done += 1;
        let batch = problem.source_mut().gradient_batch(done)?;
        let out = network.forward(&module, lift(batch.input.clone()));
        let objective = loss.per_case(out.z, lift(batch.target.clone())).mean();
        let grads = GradientsParams::from_grads(objective.backward(), &module);
        let value = scalar(objective.inner());
        module = match opts.optimizer {
            OptimizerKind::Adam => adam.step(learning_rate, module, grads),
            _ => sgd.step(learning_rate, module, grads),
        };
        theta = ParamVector::from_module(&module.valid())?;
        elapsed += clock.elapsed();
        let due = done.is_multiple_of(cfg.trainer.eval_every) || done == limit;
        let held = due.then(|| held_out(problem.evaluator(), &theta)).transpose()?;
        if let Some(h) = held {
            last_held = h;
        }
        let record = TrainingRecord {
            iteration: first_order_record(done, value, learning_rate, elapsed),
            held_out: held,
        };
        progress.iteration(&MetricsRow::from(&record), label);
        metrics.push(&record)?;
        if !value.is_finite() {
            break "diverged";
        }
        if cfg.trainer.target_held_out.is_some_and(|t| held.is_some_and(|h| h < t)) {
            break "target_held_out";
        }
    };
    progress.finish();
    if last_held.is_nan() || !(done.is_multiple_of(cfg.trainer.eval_every) || done == limit) {
        last_held = held_out(problem.evaluator(), &theta)?;
    }
    Ok(Outcome {
        stop,
        iterations: done,
        elapsed,
        curvature_products: 0,
        held_out: last_held,
        rows: metrics.rows().iter().map(MetricsRow::from).collect(),
    })
}

/// A first-order step as an iteration record: what HF-only fields would hold is NaN
/// (or zero), the step size is the learning rate.
fn first_order_record(iteration: usize, objective: f64, learning_rate: f64, elapsed: Duration) -> IterationRecord {
    IterationRecord {
        iteration,
        objective_before: objective,
        objective,
        gradient_norm: f64::NAN,
        damping: f64::NAN,
        next_damping: f64::NAN,
        radius: None,
        rho: f64::NAN,
        solver_iterations: 0,
        termination: None,
        curvature_products: 0,
        chosen_iterate: 0,
        step_size: learning_rate,
        step_norm: f64::NAN,
        outcome: if objective.is_finite() {
            StepOutcome::Accepted
        } else {
            StepOutcome::NonFinite
        },
        elapsed,
        phases: hf_core::PhaseTimes::default(),
    }
}
