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

use hf_burn::{lift, scalar, BatchSource, BurnProblem, Evaluator, Inner, Loss, MatchingLoss, Network, ParamVector};
use hf_core::{HessianFree, HfState, StepOutcome};

use crate::checkpoint::{self, Checkpoint, CheckpointMeta};
use crate::error::{CliError, Result};
use crate::preset::Preset;
use crate::progress::{Progress, Verbosity};
use crate::records::{write_atomic, MetricsFile, MetricsRow, Summary};
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
}

/// The held-out measure of a preset.
pub type HeldOutFn<B, N, const D: usize> = Box<dyn Fn(&Evaluator<B, N, Loss, D>, &ParamVector<B>) -> Result<f64>>;

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

/// Runs the training and writes its records; returns the summary.
pub fn train<B, N, const D: usize>(opts: &RunOptions, setup: Setup<B, N, D>, device: &B::Device) -> Result<Summary>
where
    B: Backend,
    N: Network<D>,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    let cfg = &opts.config;
    let Setup {
        network,
        loss,
        initial,
        source,
        held_out_label,
        held_out,
    } = setup;
    let mut problem = BurnProblem::new(network.clone(), loss, source, cfg.problem, device)?;
    let parameters = problem.evaluator().num_params();
    let preset = name(&opts.preset);
    let optimizer = name(&opts.optimizer);

    let mut theta = initial;
    let mut damping = cfg.hf.initial_damping;
    let mut radius = cfg.hf.trust_region.initial_radius;
    let mut warm_start = None;
    let mut done = 0;
    let mut elapsed = Duration::ZERO;
    let mut failures = 0;
    let mut products = 0;
    let ckpt_path = checkpoint::path_in(&opts.out);
    if opts.resume {
        let ck = Checkpoint::load(&ckpt_path)?;
        let mismatch = |what: &str, theirs: &str, ours: &str| CliError::Checkpoint {
            path: ckpt_path.clone(),
            reason: format!("written by a {what} `{theirs}` run, this run is `{ours}`: resume with the same {what}"),
        };
        if ck.meta.preset != preset {
            return Err(mismatch("preset", &ck.meta.preset, &preset));
        }
        if ck.meta.optimizer != optimizer {
            return Err(mismatch("optimizer", &ck.meta.optimizer, &optimizer));
        }
        if ck.meta.parameters != parameters {
            return Err(CliError::Checkpoint {
                path: ckpt_path.clone(),
                reason: format!("holds {} parameters, this network has {parameters}", ck.meta.parameters),
            });
        }
        let dtype = theta.tensor().dtype();
        let on_device = |v: Vec<f64>| ParamVector::new(hf_burn::tensor_from_f64(v, [parameters], device, dtype));
        warm_start = ck.warm_start.map(on_device);
        theta = on_device(ck.theta);
        damping = ck.meta.damping;
        radius = ck.meta.radius;
        done = ck.meta.iteration;
        elapsed = Duration::from_secs_f64(ck.meta.elapsed_s);
        failures = ck.meta.consecutive_failures;
        products = ck.meta.curvature_products;
        if let Some(s) = ck.meta.source_rng {
            problem.source_mut().set_rng_state(s);
        }
    }

    let mut metrics = MetricsFile::open(&opts.out, done)?;
    let progress = Progress::new(cfg.iterations, done, opts.verbosity);
    let budget = cfg.time_budget_s.map(Duration::from_secs_f64);
    let save = |problem: &BurnProblem<B, N, Loss, Box<dyn BatchSource<B, D>>, D>, state: &HfState<ParamVector<B>>| {
        Checkpoint {
            meta: CheckpointMeta {
                preset: preset.clone(),
                optimizer: optimizer.clone(),
                seed: opts.seed,
                parameters,
                iteration: state.iteration,
                damping: state.damping,
                radius: state.radius,
                consecutive_failures: state.consecutive_failures,
                curvature_products: state.curvature_products,
                elapsed_s: state.elapsed.as_secs_f64(),
                source_rng: problem.source().rng_state(),
                has_warm_start: state.warm_start.is_some(),
            },
            theta: state.theta.to_vec(),
            warm_start: state.warm_start.as_ref().map(|w| w.to_vec()),
        }
        .save(&ckpt_path)
    };

    let stop;
    match opts.optimizer {
        OptimizerKind::Hf => {
            let mut hf = HessianFree::<ParamVector<B>>::new(cfg.hf.clone())?;
            let mut state = hf.init(theta);
            state.damping = damping;
            state.radius = radius;
            state.warm_start = warm_start;
            state.iteration = done;
            state.elapsed = elapsed;
            state.consecutive_failures = failures;
            state.curvature_products = products;
            stop = loop {
                if state.iteration >= cfg.iterations {
                    break "max_iterations";
                }
                if budget.is_some_and(|b| state.elapsed >= b) {
                    break "time_budget";
                }
                let rec = hf.step(&mut problem, &mut state, &mut ())?;
                let held = evaluate(&held_out, &problem, &state.theta, state.iteration, cfg)?;
                let row = MetricsRow {
                    iteration: rec.iteration,
                    wall_time_s: state.elapsed.as_secs_f64(),
                    train_objective: rec.objective,
                    held_out_error: held,
                    damping: rec.damping,
                    rho: rec.rho,
                    cg_iterations: rec.solver_iterations,
                    curvature_products: rec.curvature_products,
                    phases: rec.phases,
                };
                progress.iteration(&row, held_out_label);
                metrics.push(row)?;
                let periodic = cfg.checkpoint_every > 0 && state.iteration.is_multiple_of(cfg.checkpoint_every);
                if periodic {
                    save(&problem, &state)?;
                }
                if rec.outcome == StepOutcome::Converged {
                    break "converged";
                }
                if reached(cfg, held) {
                    break "target_held_out";
                }
                if state.consecutive_failures >= cfg.hf.max_consecutive_failures {
                    break "too_many_failures";
                }
            };
            save(&problem, &state)?;
            done = state.iteration;
            elapsed = state.elapsed;
            products = state.curvature_products;
        }
        OptimizerKind::Adam | OptimizerKind::Sgd => {
            if opts.resume {
                return Err(CliError::Unsupported(
                    "--resume continues Hessian-free runs; Adam and SGD runs start afresh".into(),
                ));
            }
            let templates = problem.evaluator().templates().clone();
            let mut module = templates.leaf_module(theta.tensor())?;
            let mut adam = AdamConfig::new().init::<Inner<B>, N::Module<Inner<B>>>();
            let mut sgd = SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_momentum(cfg.sgd.momentum)))
                .init::<Inner<B>, N::Module<Inner<B>>>();
            stop = loop {
                if done >= cfg.iterations {
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
                    OptimizerKind::Adam => adam.step(cfg.adam.learning_rate, module, grads),
                    _ => sgd.step(cfg.sgd.learning_rate, module, grads),
                };
                theta = ParamVector::from_module(&module.valid())?;
                elapsed += clock.elapsed();
                let held = evaluate(&held_out, &problem, &theta, done, cfg)?;
                let row = MetricsRow {
                    iteration: done,
                    wall_time_s: elapsed.as_secs_f64(),
                    train_objective: value,
                    held_out_error: held,
                    damping: f64::NAN,
                    rho: f64::NAN,
                    cg_iterations: 0,
                    curvature_products: 0,
                    phases: hf_core::PhaseTimes::default(),
                };
                progress.iteration(&row, held_out_label);
                metrics.push(row)?;
                if !value.is_finite() {
                    break "diverged";
                }
                if reached(cfg, held) {
                    break "target_held_out";
                }
            };
        }
    }
    progress.finish();

    let rows = metrics.rows();
    let final_objective = rows.last().map_or(f64::NAN, |r| r.train_objective);
    let final_held = rows
        .iter()
        .rev()
        .map(|r| r.held_out_error)
        .find(|v| v.is_finite())
        .unwrap_or(f64::NAN);
    let title = format!("{preset} · {optimizer} · {}", opts.backend);
    crate::plot::training_curve(&opts.out.join("training.png"), &title, held_out_label, rows)?;
    let summary = Summary {
        preset,
        backend: opts.backend.clone(),
        optimizer,
        seed: opts.seed,
        parameters,
        iterations: done,
        stop: stop.to_string(),
        final_objective,
        held_out_error: final_held,
        held_out_measure: held_out_label.to_string(),
        wall_time_s: elapsed.as_secs_f64(),
        curvature_products: products,
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

/// Whether the held-out error (NaN when not evaluated) is below the configured target.
fn reached(cfg: &RunConfig, held_out: f64) -> bool {
    cfg.target_held_out.is_some_and(|t| held_out < t)
}

/// The held-out error on evaluation iterations (and the last), NaN otherwise.
fn evaluate<B: Backend, N: Network<D>, S: BatchSource<B, D>, const D: usize>(
    held_out: &HeldOutFn<B, N, D>,
    problem: &BurnProblem<B, N, Loss, S, D>,
    theta: &ParamVector<B>,
    iteration: usize,
    cfg: &RunConfig,
) -> Result<f64> {
    if iteration.is_multiple_of(cfg.eval_every) || iteration == cfg.iterations {
        held_out(problem.evaluator(), theta)
    } else {
        Ok(f64::NAN)
    }
}
