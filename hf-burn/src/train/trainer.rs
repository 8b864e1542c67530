//! [`Trainer`]: Hessian-free training of a burn network, with held-out evaluation,
//! metrics, checkpoints and resume, reported through observers.

use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use hf_core::{BoxError, Control, HfState, IterationRecord, StopReason};
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, CHECKPOINTS_DIR};
use super::held_out::HeldOutMeasure;
use super::method::TrainingMethod;
use super::metrics::{MetricsRow, MetricsWriter};
use crate::error::{Error, Result};
use crate::evaluator::Evaluator;
use crate::loss::MatchingLoss;
use crate::network::Network;
use crate::problem::BurnProblem;
use crate::templates::Templates;
use crate::vector::ParamVector;

/// What the trainer does around the optimizer. The optimizer's own limits
/// (iterations, time budget, target objective) are in [`hf_core::HfConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainerConfig {
    /// Evaluate the held-out measure every this many iterations (and at the last
    /// one, `max_iterations`). Default `1`.
    pub eval_every: usize,
    /// Stop once the held-out measure falls below this. Default none.
    pub target_held_out: Option<f64>,
    /// Save a checkpoint every this many iterations; `0` saves only when the run
    /// ends. Default `0`.
    pub checkpoint_every: usize,
    /// Checkpoints kept on disk (the newest). Default `2`.
    pub keep_checkpoints: usize,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            eval_every: 1,
            target_held_out: None,
            checkpoint_every: 0,
            keep_checkpoints: 2,
        }
    }
}

impl TrainerConfig {
    /// Checks every field, naming the first invalid one.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.eval_every == 0 {
            return Err(hf_core::ConfigError::new("eval_every", 0, "≥ 1").into());
        }
        if self.keep_checkpoints == 0 {
            return Err(hf_core::ConfigError::new("keep_checkpoints", 0, "≥ 1").into());
        }
        if let Some(t) = self.target_held_out.filter(|t| !t.is_finite()) {
            return Err(hf_core::ConfigError::new("target_held_out", t, "finite").into());
        }
        Ok(())
    }
}

/// One outer iteration as the trainer reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRecord {
    /// The optimizer's record.
    pub iteration: IterationRecord,
    /// The held-out measure at the new `θ`, on evaluation iterations.
    pub held_out: Option<f64>,
}

/// Why [`Trainer::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingStop {
    /// The optimizer's rule (or an observer's request).
    Optimizer(StopReason),
    /// The held-out measure fell below [`TrainerConfig::target_held_out`].
    TargetHeldOut,
}

impl TrainingStop {
    /// The reason's name: the optimizer's (`max_iterations`, …) or `target_held_out`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrainingStop::Optimizer(r) => r.as_str(),
            TrainingStop::TargetHeldOut => "target_held_out",
        }
    }
}

/// The summary of [`Trainer::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingReport {
    /// Why it stopped.
    pub stop: TrainingStop,
    /// Outer iterations done in this call.
    pub iterations: usize,
    /// The training objective after the last iteration (NaN if none was done).
    pub objective: f64,
    /// The held-out measure at the final `θ` (evaluated at the end if the last
    /// iteration was not an evaluation one); `None` without a held-out measure.
    pub held_out: Option<f64>,
}

/// Receives the trainer's records: metrics writers, checkpointers, progress bars,
/// early stopping. [`on_iteration`](Self::on_iteration) sees the state after the
/// step; returning [`Control::Stop`] ends the run, an error ends it with that error.
pub trait TrainingObserver<B: Backend> {
    /// After each outer iteration.
    fn on_iteration(&mut self, record: &TrainingRecord, state: &HfState<ParamVector<B>>) -> Result<Control, BoxError>;

    /// Once, when the run ends (not on an error), with the final state.
    fn on_finish(&mut self, _report: &TrainingReport, _state: &HfState<ParamVector<B>>) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The trainer's held-out measure.
type HeldOutFn<B, N, L, const D: usize> = Box<dyn HeldOutMeasure<B, N, L, D>>;

/// Saves checkpoints: every `every` iterations and when the run ends, with what the
/// method adds ([`TrainingMethod::save`]).
struct Checkpointer<B: Backend, N: Network<D>, const D: usize> {
    root: PathBuf,
    templates: Templates<B, N, D>,
    every: usize,
    keep: usize,
    run: serde_json::Value,
    last_saved: Option<usize>,
}

impl<B: Backend, N: Network<D>, const D: usize> Checkpointer<B, N, D> {
    fn save<L: MatchingLoss>(
        &mut self,
        state: &HfState<ParamVector<B>>,
        method: &dyn TrainingMethod<B, N, L, D>,
    ) -> Result<()> {
        if self.last_saved != Some(state.iteration) {
            let extra = |dir: &Path| method.save(dir);
            checkpoint::save(
                &self.root,
                &self.templates,
                state,
                method.name(),
                &self.run,
                self.keep,
                &extra,
            )?;
            self.last_saved = Some(state.iteration);
        }
        Ok(())
    }

    fn due(&self, iteration: usize) -> bool {
        self.every > 0 && iteration.is_multiple_of(self.every)
    }
}

/// Training of a burn network by any [`TrainingMethod`] — Hessian-free
/// optimization ([`hf_core::HessianFree`]) or one of burn's first-order optimizers
/// ([`FirstOrder`](super::FirstOrder)) — over a [`BurnProblem`], with one loop for
/// all: the method's limits and stopping rules, a held-out measure evaluated every
/// [`TrainerConfig::eval_every`] iterations, [`metrics`](Self::metrics) files,
/// [`checkpoints`](Self::checkpoints) in burn's record format, and observers for
/// everything else (a progress bar of your own). [`resume`](Self::resume) continues
/// from the newest checkpoint exactly where the run stopped, whatever the method.
///
/// # Example
/// ```
/// use burn::backend::NdArray;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::prelude::*;
/// use hf_burn::train::{Trainer, TrainerConfig};
/// use hf_burn::{BurnProblem, DataBatch, FixedBatches, Network, Outputs, ProblemConfig, SquaredError};
/// use hf_core::{HessianFree, HfConfig};
///
/// #[derive(Clone)]
/// struct Line;
/// impl Network<2> for Line {
///     type Module<B: Backend> = Linear<B>;
///     fn init<B: Backend>(&self, device: &B::Device) -> Linear<B> { LinearConfig::new(1, 1).init(device) }
///     fn forward<B: Backend>(&self, m: &Linear<B>, x: Tensor<B, 2>) -> Outputs<B> { Outputs::new(m.forward(x)) }
/// }
///
/// type B = NdArray<f64>;
/// let device = Default::default();
/// let x = Tensor::<B, 2>::from_data([[0.0], [1.0], [2.0], [3.0]], &device);
/// let y = x.clone().mul_scalar(2.0).add_scalar(1.0);
/// let batches = FixedBatches::split(DataBatch::new(x.clone(), y.clone()).unwrap(), 1);
/// let problem = BurnProblem::new(Line, SquaredError, batches, ProblemConfig::default(), &device).unwrap();
/// let hf = HessianFree::new(HfConfig { initial_damping: Some(1e-3), max_iterations: 20, ..Default::default() }).unwrap();
/// let held_out = DataBatch::new(x, y).unwrap();
///
/// let dir = std::env::temp_dir().join(format!("hf-trainer-doc-{}", std::process::id()));
/// let mut trainer = Trainer::new(problem, hf, TrainerConfig::default())
///     .unwrap()
///     .held_out("mse", move |evaluator, theta| evaluator.objective(theta, &held_out))
///     .metrics(&dir, 0)
///     .unwrap()
///     .checkpoints(&dir, serde_json::json!({ "task": "line" }));
/// let mut state = trainer.init(&device).unwrap();
/// let report = trainer.run(&mut state).unwrap();
/// assert!(report.held_out.unwrap() < 1e-10);
/// assert!(dir.join("metrics.csv").exists() && dir.join("checkpoints").exists());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Trainer<B, N, L, const D: usize>
where
    B: Backend,
    N: Network<D>,
    L: MatchingLoss,
{
    problem: BurnProblem<B, N, L, D>,
    method: Box<dyn TrainingMethod<B, N, L, D>>,
    config: TrainerConfig,
    held_out: Option<HeldOutFn<B, N, L, D>>,
    observers: Vec<Box<dyn TrainingObserver<B>>>,
    metrics: Option<MetricsWriter>,
    checkpoints: Option<Checkpointer<B, N, D>>,
}

impl<B, N, L, const D: usize> Trainer<B, N, L, D>
where
    B: Backend,
    N: Network<D> + 'static,
    L: MatchingLoss + 'static,
{
    /// A trainer of `problem` by `method`: a [`HessianFree`](hf_core::HessianFree)
    /// optimizer or a first-order one ([`FirstOrder`](super::FirstOrder)).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid `config`.
    pub fn new(
        problem: BurnProblem<B, N, L, D>,
        method: impl TrainingMethod<B, N, L, D> + 'static,
        config: TrainerConfig,
    ) -> Result<Self> {
        config.validate()?;
        method.validate()?;
        Ok(Self {
            problem,
            method: Box::new(method),
            config,
            held_out: None,
            observers: Vec::new(),
            metrics: None,
            checkpoints: None,
        })
    }

    /// Sets the held-out measure `name` (a metrics column `held_out_<name>`),
    /// computed by `measure` from the evaluator and `θ`.
    pub fn held_out(
        mut self,
        name: impl Into<String>,
        measure: impl FnMut(&Evaluator<B, N, L, D>, &ParamVector<B>) -> Result<f64> + 'static,
    ) -> Self {
        self.held_out = Some(Box::new((name.into(), measure)));
        self
    }

    /// Sets the held-out measure (a metrics column `held_out_<its name>`): one of
    /// hf-models' (reconstruction error, classification error, sequence zero-one
    /// loss) or your own [`HeldOutMeasure`].
    pub fn held_out_measure(mut self, measure: impl HeldOutMeasure<B, N, L, D> + 'static) -> Self {
        self.held_out = Some(Box::new(measure));
        self
    }

    /// Adds an observer; observers see each iteration in the order they were added,
    /// after the metrics files are written.
    pub fn observe(mut self, observer: impl TrainingObserver<B> + 'static) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// Writes `metrics.csv` and `metrics.jsonl` in `dir` (see [`MetricsWriter`]),
    /// keeping the rows of iterations `1..=resume_from` of existing files. Call it
    /// after [`held_out`](Self::held_out), whose name heads a column.
    ///
    /// # Errors
    /// As [`MetricsWriter::create`].
    pub fn metrics(mut self, dir: &Path, resume_from: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let writer = MetricsWriter::create(dir, self.held_out.as_ref().map(|m| m.name()), resume_from)?;
        self.metrics = Some(writer);
        Ok(self)
    }

    /// Saves checkpoints under `dir/checkpoints/` (see [`checkpoint`]) every
    /// [`TrainerConfig::checkpoint_every`] iterations and when the run ends, keeping
    /// the newest [`TrainerConfig::keep_checkpoints`]; `run` is stored with each, for
    /// the program's own identity checks on resume.
    pub fn checkpoints(mut self, dir: &Path, run: serde_json::Value) -> Self {
        self.checkpoints = Some(Checkpointer {
            root: dir.join(CHECKPOINTS_DIR),
            templates: self.problem.evaluator().templates().clone(),
            every: self.config.checkpoint_every,
            keep: self.config.keep_checkpoints,
            run,
            last_saved: None,
        });
        self
    }

    /// The problem.
    pub fn problem(&self) -> &BurnProblem<B, N, L, D> {
        &self.problem
    }

    /// The problem, mutably (to replace its batch source's state, say).
    pub fn problem_mut(&mut self) -> &mut BurnProblem<B, N, L, D> {
        &mut self.problem
    }

    /// The method's name (`hf`, `adam`, …).
    pub fn method_name(&self) -> &str {
        self.method.name()
    }

    /// The starting state at `theta` (an initialization of your own).
    pub fn start_at(&self, theta: ParamVector<B>) -> HfState<ParamVector<B>> {
        self.method.init(theta)
    }

    /// The starting state at the network's own initialization.
    ///
    /// # Errors
    /// As [`BurnProblem::initial_parameters`].
    pub fn init(&self, device: &B::Device) -> Result<HfState<ParamVector<B>>> {
        Ok(self.method.init(self.problem.initial_parameters(device)?))
    }

    /// The state of the newest checkpoint under `dir/checkpoints/`, verified, with the
    /// optimizer's plug-ins and the batch sampler restored: [`run`](Self::run) then
    /// continues as if never interrupted. Also returns the run metadata stored with it.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when there is none, it is damaged, or it was written for
    /// a network with another number of parameters.
    pub fn resume(&mut self, dir: &Path, device: &B::Device) -> Result<(HfState<ParamVector<B>>, serde_json::Value)> {
        let root = dir.join(CHECKPOINTS_DIR);
        let Some(latest) = checkpoint::latest(&root)? else {
            return Err(Error::Checkpoint {
                path: root,
                reason: "no checkpoint to resume from".into(),
            });
        };
        let ck = checkpoint::load(&latest)?;
        let expected = self.problem.evaluator().num_params();
        if ck.state.theta.len() != expected {
            return Err(Error::Checkpoint {
                path: latest,
                reason: format!(
                    "holds {} parameters, this network has {expected}: resume with the network that wrote it",
                    ck.state.theta.len()
                ),
            });
        }
        if ck.method != self.method.name() {
            return Err(Error::Checkpoint {
                path: latest,
                reason: format!(
                    "written by the {} method, this trainer runs {}: resume with the method that wrote it",
                    ck.method,
                    self.method.name()
                ),
            });
        }
        let dtype = self.problem.initial_parameters(device)?.tensor().dtype();
        let state = ck.to_state::<B>(device, dtype);
        self.method.resume(&mut self.problem, &state, &latest)?;
        Ok((state, ck.run))
    }

    /// Trains from `state` until a stopping rule fires — the method's limits and
    /// rules ([`Stepper`](hf_core::Stepper)), the held-out target, an observer's
    /// request — then saves the final checkpoint and lets each observer finish.
    ///
    /// Each iteration: the method's step, the held-out measure when due, the metrics
    /// row, the observers, then the checkpoint when due (so a checkpoint's metrics
    /// rows are always on disk before it).
    ///
    /// # Errors
    /// The method's errors, a held-out measure's, an observer's, or a checkpoint's.
    pub fn run(&mut self, state: &mut HfState<ParamVector<B>>) -> Result<TrainingReport> {
        let evaluator = self.problem.evaluator().clone();
        let reduction = self.problem.reduction().clone();
        let parallel = reduction.workers() > 1;
        if parallel {
            reduction.check_same(
                start_fingerprint(state),
                "the parameters θ, λ and the iteration at the start",
            )?;
        }
        let limits = self.method.limits();
        let start = state.iteration;
        let mut latest_held_out: Option<(usize, f64)> = None;
        let mut objective = f64::NAN;
        let stop = loop {
            if let Some(reason) = limits.reached(state) {
                break TrainingStop::Optimizer(reason);
            }
            let record = self.method.step(&mut self.problem, state, &mut ())?;
            objective = record.objective;
            let i = record.iteration;
            let due = i.is_multiple_of(self.config.eval_every) || i == limits.max_iterations;
            let held_out = match self.held_out.as_mut().filter(|_| due) {
                Some(m) => Some(measure(m.as_mut(), &evaluator, &state.theta, reduction.as_ref())?),
                None => None,
            };
            if let Some(v) = held_out {
                latest_held_out = Some((i, v));
            }
            let record = TrainingRecord {
                iteration: record,
                held_out,
            };
            if let Some(m) = self.metrics.as_mut() {
                m.push(&record)?;
            }
            let mut control = Control::Continue;
            for o in self.observers.iter_mut() {
                if o.on_iteration(&record, state).map_err(observer_error)? == Control::Stop {
                    control = Control::Stop;
                }
            }
            if let Some(c) = self.checkpoints.as_mut().filter(|c| c.due(i)) {
                c.save(state, self.method.as_ref())?;
            }
            if parallel {
                // Every worker stops at the same iteration: on rank 0's clock (the time
                // budget) and on any worker's request (a signal, an observer).
                let mut shared = [
                    if reduction.rank() == 0 {
                        state.elapsed.as_secs_f64()
                    } else {
                        0.0
                    },
                    f64::from(u8::from(control == Control::Stop)),
                ];
                reduction.sum_scalars(&mut shared)?;
                state.elapsed = std::time::Duration::from_secs_f64(shared[0]);
                if shared[1] > 0.0 {
                    control = Control::Stop;
                }
            }
            if let Some(reason) = self.method.stop_after(&record.iteration, state) {
                break TrainingStop::Optimizer(reason);
            }
            if let (Some(t), Some(v)) = (self.config.target_held_out, held_out) {
                if v < t {
                    break TrainingStop::TargetHeldOut;
                }
            }
            if control == Control::Stop {
                break TrainingStop::Optimizer(StopReason::Requested);
            }
        };
        let held_out = match (latest_held_out, self.held_out.as_mut()) {
            (Some((i, v)), _) if i == state.iteration => Some(v),
            (_, Some(m)) => Some(measure(m.as_mut(), &evaluator, &state.theta, reduction.as_ref())?),
            (_, None) => None,
        };
        let report = TrainingReport {
            stop,
            iterations: state.iteration - start,
            objective,
            held_out,
        };
        if let Some(c) = self.checkpoints.as_mut() {
            c.save(state, self.method.as_ref())?;
        }
        for o in self.observers.iter_mut() {
            o.on_finish(&report, state).map_err(observer_error)?;
        }
        Ok(report)
    }

    /// The metrics rows so far (those kept from before a resume included); empty
    /// unless [`metrics`](Self::metrics) files are written.
    pub fn metrics_rows(&self) -> &[MetricsRow] {
        self.metrics.as_ref().map_or(&[], MetricsWriter::rows)
    }
}

/// The held-out measure at `θ`: on this worker's shard of the held-out data, summed
/// over the workers, in a data-parallel run.
fn measure<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize>(
    m: &mut dyn HeldOutMeasure<B, N, L, D>,
    evaluator: &Evaluator<B, N, L, D>,
    theta: &ParamVector<B>,
    reduction: &dyn hf_core::Reduction<ParamVector<B>>,
) -> Result<f64> {
    if reduction.workers() == 1 {
        return m.measure(evaluator, theta);
    }
    let (value, weight) = m.measure_shard(evaluator, theta, reduction.rank(), reduction.workers())?;
    let mut v = [weight * value];
    reduction.sum_scalars(&mut v)?;
    Ok(v[0])
}

/// What every worker of a data-parallel run must agree on before the first step:
/// `θ`, `λ` and the iteration.
fn start_fingerprint<B: Backend>(state: &HfState<ParamVector<B>>) -> u64 {
    let mut bytes: Vec<u8> = state.theta.to_vec().iter().flat_map(|x| x.to_le_bytes()).collect();
    bytes.extend(state.damping.to_le_bytes());
    bytes.extend((state.iteration as u64).to_le_bytes());
    checkpoint::fnv1a(&bytes)
}

/// An observer's error, as the optimizer reports one.
fn observer_error(e: BoxError) -> Error {
    Error::Optimizer(hf_core::Error::Observer(e))
}
