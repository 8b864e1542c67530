//! A run of the program: the preset's network, data and held-out measure handed to
//! the library's [`Trainer`] with the chosen method — HF, or burn's Adam or SGD with
//! momentum from the same initialization — and its records written.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use burn::module::AutodiffModule;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, SgdConfig};
use burn::prelude::*;
use serde::Serialize;

use hf_burn::train::{
    FirstOrder, FirstOrderConfig, HeldOutMeasure, MetricsRow, Trainer, TrainingMethod, TrainingObserver,
    TrainingRecord, TrainingReport, TrainingStop,
};
use hf_burn::{BatchSource, BurnProblem, CollectiveReduction, Inner, Loss, Network, ParamVector};
use hf_core::{BoxError, Control, HfState, StopReason};

use crate::error::{CliError, Result};
use crate::interrupt::Interrupt;
use crate::preset::Preset;
use crate::progress::{Progress, Verbosity};
use crate::records::{write_atomic, DataInfo, Summary};
use crate::settings::{OptimizerKind, RunConfig};

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
    /// Ctrl-C and SIGTERM.
    pub interrupt: Interrupt,
    /// This worker of a data-parallel run.
    pub worker: Worker,
}

/// One worker of a data-parallel run: rank `rank` of `workers`. Rank 0 leads: it
/// alone writes the run directory, the metrics, the checkpoints and the progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    /// This worker's rank, `0..workers`.
    pub rank: usize,
    /// Workers in the run.
    pub workers: usize,
    /// How long a worker waits for the others in one sum before it stops.
    pub timeout: Duration,
    /// This process's node of a multi-process run; `None`: the workers are threads
    /// of this process.
    pub node: Option<Node>,
}

/// A process of a multi-process run (burn-collective's global mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The orchestrator, `ws://host:port`.
    pub orchestrator: String,
    /// How the other nodes reach this one, `ws://host:port`.
    pub address: String,
}

impl Worker {
    /// The only worker of a run on one device.
    pub const SOLE: Worker = Worker {
        rank: 0,
        workers: 1,
        timeout: hf_burn::DEFAULT_COLLECTIVE_TIMEOUT,
        node: None,
    };

    /// Whether this worker writes the run's files.
    pub fn leads(&self) -> bool {
        self.rank == 0
    }
}

/// Claims the run directory once everything it takes to start has been read and
/// checked (see `main`'s `train`): the first write of a run.
pub type Claim<'a> = &'a mut dyn FnMut() -> Result<()>;

/// How a run ended, for the program's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// It reached its iteration or time budget, its target, or converged.
    Finished,
    /// It diverged, or failed too many steps in a row.
    Failed,
    /// A signal stopped it; the final checkpoint holds the last iteration.
    Interrupted,
}

/// The held-out measure of a preset.
pub type HeldOutFn<B, N, const D: usize> = Box<dyn HeldOutMeasure<B, N, Loss, D>>;

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
    /// The held-out measure.
    pub held_out: HeldOutFn<B, N, D>,
}

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Asks the trainer to stop once a signal arrived.
struct InterruptObserver(Interrupt);

impl<B: Backend> TrainingObserver<B> for InterruptObserver {
    fn on_iteration(&mut self, _: &TrainingRecord, _: &HfState<ParamVector<B>>) -> Result<Control, BoxError> {
        Ok(if self.0.requested() {
            Control::Stop
        } else {
            Control::Continue
        })
    }
}

/// The progress bar as a trainer observer.
struct ProgressObserver {
    progress: Progress,
    label: String,
}

impl<B: Backend> TrainingObserver<B> for ProgressObserver {
    fn on_iteration(&mut self, r: &TrainingRecord, _: &HfState<ParamVector<B>>) -> Result<Control, BoxError> {
        self.progress.iteration(&MetricsRow::from(r), &self.label);
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
    end: RunEnd,
}

/// What a run leaves besides its files: the summary and the trainer's rows.
pub struct Trained {
    /// `summary.json`.
    pub summary: Summary,
    /// Every iteration's row, as the trainer recorded it (those of a resumed run's
    /// earlier part included).
    pub rows: Vec<MetricsRow>,
    /// How it ended.
    pub end: RunEnd,
}

/// Runs the training and writes its records; returns the summary and the rows.
pub fn train<B, N, const D: usize>(
    opts: &RunOptions,
    setup: Setup<B, N, D>,
    device: &B::Device,
    claim: Claim<'_>,
) -> Result<Trained>
where
    B: Backend,
    N: Network<D> + 'static,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    let cfg = &opts.config;
    let label = setup.held_out.name().to_string();
    let mut problem = BurnProblem::new(setup.network, setup.loss, setup.source, cfg.problem, device)?;
    let w = &opts.worker;
    if w.workers > 1 {
        let reduction = match &w.node {
            None => CollectiveReduction::<B>::new(
                w.rank,
                w.workers,
                device.clone(),
                burn::collective::CollectiveConfig::default().with_num_devices(w.workers),
                w.timeout,
            ),
            Some(node) => CollectiveReduction::<B>::global(
                w.rank,
                w.workers,
                device.clone(),
                &node.orchestrator,
                &node.address,
                w.timeout,
            ),
        }
        .map_err(hf_burn::Error::from)?;
        problem = problem.data_parallel(Arc::new(reduction));
    }
    let parameters = problem.evaluator().num_params();
    let preset = name(&opts.preset);
    let optimizer = name(&opts.optimizer);
    let first_order = |learning_rate| FirstOrderConfig {
        learning_rate,
        max_iterations: cfg.hf.max_iterations,
        time_budget_s: cfg.hf.time_budget_s,
    };
    let outcome = match opts.optimizer {
        OptimizerKind::Hf => {
            let dtype = setup.initial.tensor().dtype();
            let hf = hf_burn::hessian_free::<B>(cfg.hf.clone(), device, dtype)?;
            run_trainer(opts, problem, hf, setup.initial, setup.held_out, device, claim)?
        }
        OptimizerKind::Adam => {
            let adam = FirstOrder::adam(AdamConfig::new(), first_order(cfg.adam.learning_rate));
            run_trainer(opts, problem, adam, setup.initial, setup.held_out, device, claim)?
        }
        OptimizerKind::Sgd => {
            let momentum = MomentumConfig::new().with_momentum(cfg.sgd.momentum);
            let sgd = FirstOrder::sgd(
                SgdConfig::new().with_momentum(Some(momentum)),
                first_order(cfg.sgd.learning_rate),
            );
            run_trainer(opts, problem, sgd, setup.initial, setup.held_out, device, claim)?
        }
    };
    let final_objective = outcome.rows.last().map_or(f64::NAN, |r| r.objective);
    let title = format!("{preset} · {optimizer} · {}", opts.backend);
    if opts.worker.leads() {
        crate::plot::training_curve(&opts.out.join("training.png"), &title, &label, &outcome.rows)?;
    }
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
        held_out_measure: label,
        wall_time_s: outcome.elapsed.as_secs_f64(),
        curvature_products: outcome.curvature_products,
        data: opts.data.clone(),
        config: cfg.clone(),
    };
    if opts.worker.leads() {
        write_atomic(
            &opts.out.join("summary.json"),
            serde_json::to_string_pretty(&summary)
                .expect("summary serializes")
                .as_bytes(),
        )?;
    }
    Ok(Trained {
        summary,
        rows: outcome.rows,
        end: outcome.end,
    })
}

/// Training through the library's [`Trainer`], whatever the method: metrics,
/// checkpoints, resume and the progress bar are its observers. The run directory is
/// claimed (`claim`) only once the trainer is built and, on resume, the checkpoint
/// and the metrics files have been verified against each other.
fn run_trainer<B, N, M, const D: usize>(
    opts: &RunOptions,
    problem: BurnProblem<B, N, Loss, D>,
    method: M,
    initial: ParamVector<B>,
    held_out: HeldOutFn<B, N, D>,
    device: &B::Device,
    claim: Claim<'_>,
) -> Result<Outcome>
where
    B: Backend,
    N: Network<D> + 'static,
    M: TrainingMethod<B, N, Loss, D> + 'static,
{
    let cfg = &opts.config;
    let identity = serde_json::json!({
        "preset": name(&opts.preset),
        "optimizer": name(&opts.optimizer),
        "seed": opts.seed,
    });
    let label = held_out.name().to_string();
    let mut trainer = Trainer::new(problem, method, cfg.trainer.clone())?.held_out_measure(held_out);
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
        if state.iteration > cfg.hf.max_iterations {
            return Err(CliError::Resume {
                dir: opts.out.clone(),
                reason: format!(
                    "the run has done {} iterations, more than the {} asked for (--iterations or \
                     hf.max_iterations): ask for more to continue it",
                    state.iteration, cfg.hf.max_iterations
                ),
            });
        }
        hf_burn::train::resumable_rows(&opts.out, Some(&label), state.iteration)?;
        state
    } else {
        trainer.start_at(initial)
    };
    claim()?;
    if opts.worker.leads() {
        let progress = Progress::new(cfg.hf.max_iterations, state.iteration, opts.verbosity);
        trainer = trainer
            .metrics(&opts.out, state.iteration)?
            .checkpoints(&opts.out, identity)
            .observe(ProgressObserver { progress, label });
    }
    let mut trainer = trainer.observe(InterruptObserver(opts.interrupt.clone()));
    let report = trainer.run(&mut state)?;
    let end = match report.stop {
        TrainingStop::Optimizer(StopReason::Requested) if opts.interrupt.requested() => RunEnd::Interrupted,
        TrainingStop::Optimizer(StopReason::Diverged | StopReason::TooManyFailures) => RunEnd::Failed,
        _ => RunEnd::Finished,
    };
    Ok(Outcome {
        stop: report.stop.as_str(),
        iterations: state.iteration,
        elapsed: state.elapsed,
        curvature_products: state.curvature_products,
        held_out: report.held_out.unwrap_or(f64::NAN),
        rows: trainer.metrics_rows().to_vec(),
        end,
    })
}
