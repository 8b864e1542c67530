//! [`FirstOrder`]: any of burn's first-order optimizers (Adam, SGD with momentum,
//! RMSProp, …) as a [`TrainingMethod`], on minibatches from the problem's batch
//! source: the same trainer, stopping rules, metrics, checkpoints and exact resume as
//! Hessian-free optimization.

use std::path::Path;
use std::time::{Duration, Instant};

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer, Sgd, SgdConfig, SimpleOptimizer};
use burn::prelude::*;
use burn::record::Recorder;
use serde::{Deserialize, Serialize};

use hf_core::{
    ConfigError, HfState, IterationRecord, Limits, Observer, PhaseTimes, Problem, StepOutcome, Stepper, StopReason,
};

use super::checkpoint::ModelRecorder;
use super::method::TrainingMethod;
use crate::backend::{lift, scalar, Inner};
use crate::error::{Error, Result};
use crate::loss::MatchingLoss;
use crate::network::Network;
use crate::problem::BurnProblem;
use crate::vector::ParamVector;

/// The optimizer-state file of a first-order checkpoint (burn's record format; burn
/// appends `.mpk`).
pub const OPTIMIZER_FILE: &str = "optimizer";

/// The settings of a first-order run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirstOrderConfig {
    /// The learning rate. Default `1e-3`.
    pub learning_rate: f64,
    /// Steps in all, counted over resumes. Default `1000`.
    pub max_iterations: usize,
    /// Seconds of stepping in all, counted over resumes. Default none.
    pub time_budget_s: Option<f64>,
}

impl Default for FirstOrderConfig {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            max_iterations: 1000,
            time_budget_s: None,
        }
    }
}

impl FirstOrderConfig {
    /// Checks every field, naming the first invalid one.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ConfigError::new("learning_rate", self.learning_rate, "finite and > 0"));
        }
        if let Some(t) = self.time_budget_s.filter(|t| !(t.is_finite() && *t > 0.0)) {
            return Err(ConfigError::new("time_budget_s", t, "finite and > 0"));
        }
        Ok(())
    }
}

/// A burn optimizer stepping the network on the problem's gradient batches: one
/// forward and one backward pass per step, then the optimizer's update.
///
/// Everything it carries besides [`HfState`] (Adam's moments, SGD's velocity, their
/// step counts) is burn's optimizer record, saved with each checkpoint as
/// `optimizer.mpk` keyed by the parameters' positions in `θ`, so a resumed run goes
/// on bit for bit. The record fields that HF fills and a first-order step has no
/// value for (`λ`, `ρ`, the gradient norm) are NaN; `objective` is the minibatch loss
/// before the update.
///
/// # Example
/// ```
/// use burn::backend::NdArray;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::optim::AdamConfig;
/// use burn::prelude::*;
/// use hf_burn::train::{FirstOrder, FirstOrderConfig, Trainer, TrainerConfig};
/// use hf_burn::{BurnProblem, DataBatch, FixedBatches, Network, Outputs, ProblemConfig, SquaredError};
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
/// let batches = FixedBatches::split(DataBatch::new(x.clone(), x.mul_scalar(2.0)).unwrap(), 1);
/// let problem = BurnProblem::new(Line, SquaredError, batches, ProblemConfig::default(), &device).unwrap();
/// let adam = FirstOrder::adam(AdamConfig::new(), FirstOrderConfig { learning_rate: 0.05, max_iterations: 1000, ..Default::default() });
/// let mut trainer = Trainer::new(problem, adam, TrainerConfig::default()).unwrap();
/// let mut state = trainer.init(&device).unwrap();
/// let report = trainer.run(&mut state).unwrap();
/// assert_eq!(state.iteration, 1000);
/// assert!(report.objective < 1e-3, "{}", report.objective);
/// ```
pub struct FirstOrder<B, N, O, const D: usize>
where
    B: Backend,
    N: Network<D>,
    O: SimpleOptimizer<B>,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    name: String,
    config: FirstOrderConfig,
    optimizer: Option<Adaptor<B, N, O, D>>,
    /// The module at `state.theta` after the iteration it holds, kept between steps
    /// (rebuilt from `θ` when the state is another one).
    module: Option<(usize, N::Module<Inner<B>>)>,
    /// The ids of the trainable parameter tensors in the order of `θ` (burn draws
    /// them afresh in every process; the modules here are all clones of one
    /// template, so they are fixed within one).
    ids: Vec<ParamId>,
}

/// burn's optimizer of the network's module on `Autodiff<B>`.
type Adaptor<B, N, O, const D: usize> = OptimizerAdaptor<O, <N as Network<D>>::Module<Inner<B>>, Inner<B>>;

/// The record of the optimizer of a [`FirstOrder`]: a map from parameter ids.
type OptimizerRecord<B, N, O, const D: usize> =
    <Adaptor<B, N, O, D> as Optimizer<<N as Network<D>>::Module<Inner<B>>, Inner<B>>>::Record;

impl<B, N, const D: usize> FirstOrder<B, N, Adam, D>
where
    B: Backend,
    N: Network<D>,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    /// burn's Adam.
    pub fn adam(adam: AdamConfig, config: FirstOrderConfig) -> Self {
        Self::new("adam", adam.init(), config)
    }
}

impl<B, N, const D: usize> FirstOrder<B, N, Sgd<B>, D>
where
    B: Backend,
    N: Network<D>,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    /// burn's SGD (with momentum when `sgd` has it).
    pub fn sgd(sgd: SgdConfig, config: FirstOrderConfig) -> Self {
        Self::new("sgd", sgd.init(), config)
    }
}

impl<B, N, O, const D: usize> FirstOrder<B, N, O, D>
where
    B: Backend,
    N: Network<D>,
    O: SimpleOptimizer<B>,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    /// Any optimizer built on burn's [`SimpleOptimizer`] (what `XConfig::init` returns
    /// for Adam, AdamW, SGD, RMSProp, AdaGrad, …), named `name` in checkpoints.
    pub fn new(
        name: impl Into<String>,
        optimizer: OptimizerAdaptor<O, N::Module<Inner<B>>, Inner<B>>,
        config: FirstOrderConfig,
    ) -> Self {
        Self {
            name: name.into(),
            config,
            optimizer: Some(optimizer),
            module: None,
            ids: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &FirstOrderConfig {
        &self.config
    }
}

/// The ids of the module's trainable parameters, in the order of `θ`.
fn trainable_ids<B: Backend, M: Module<B>>(module: &M, trainable: &[bool]) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl<B: Backend> ModuleVisitor<B> for Ids {
        fn visit_float<const K: usize>(&mut self, param: &Param<Tensor<B, K>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
        .into_iter()
        .zip(trainable)
        .filter(|(_, &t)| t)
        .map(|(id, _)| id)
        .collect()
}

impl<B, N, O, L, const D: usize> Stepper<BurnProblem<B, N, L, D>> for FirstOrder<B, N, O, D>
where
    B: Backend,
    N: Network<D>,
    O: SimpleOptimizer<B>,
    L: MatchingLoss,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    fn step(
        &mut self,
        problem: &mut BurnProblem<B, N, L, D>,
        state: &mut HfState<ParamVector<B>>,
        _observer: &mut dyn Observer<ParamVector<B>>,
    ) -> hf_core::Result<IterationRecord> {
        let clock = Instant::now();
        let iteration = state.iteration + 1;
        let batch = problem.source_mut().gradient_batch(iteration)?;
        let evaluator = problem.evaluator();
        let module = match self.module.take() {
            Some((i, m)) if i == state.iteration => m,
            _ => {
                let templates = evaluator.templates();
                let module = templates.leaf_module(state.theta.tensor())?;
                self.ids = trainable_ids::<Inner<B>, _>(&module, templates.layout().trainable());
                module
            }
        };
        let out = evaluator
            .templates()
            .network()
            .forward(&module, lift(batch.input.clone()));
        let objective = evaluator.loss().per_case(out.z, lift(batch.target.clone())).mean();
        let value = scalar(objective.clone().inner());
        let grads = GradientsParams::from_grads(objective.backward(), &module);
        let gradient_clock = clock.elapsed().as_secs_f64();
        let optimizer = self
            .optimizer
            .as_mut()
            .expect("the optimizer is put back after every use");
        let module = optimizer.step(self.config.learning_rate, module, grads);
        let theta = ParamVector::from_module(&module.valid())?;
        let step_norm = scalar(
            (theta.tensor().clone() - state.theta.tensor().clone())
                .square()
                .sum()
                .sqrt(),
        );
        let finite = value.is_finite() && step_norm.is_finite();

        state.iteration = iteration;
        state.theta = theta;
        state.consecutive_failures = if finite { 0 } else { state.consecutive_failures + 1 };
        state.sampler = problem.sampler_state();
        state.elapsed += clock.elapsed();
        self.module = Some((iteration, module));
        Ok(IterationRecord {
            iteration,
            objective_before: value,
            objective: value,
            gradient_norm: f64::NAN,
            damping: f64::NAN,
            next_damping: f64::NAN,
            radius: None,
            rho: f64::NAN,
            solver_iterations: 0,
            termination: None,
            curvature_products: 0,
            chosen_iterate: 0,
            step_size: self.config.learning_rate,
            step_norm,
            outcome: if finite {
                StepOutcome::Accepted
            } else {
                StepOutcome::NonFinite
            },
            elapsed: state.elapsed,
            phases: PhaseTimes {
                gradient: gradient_clock,
                ..PhaseTimes::default()
            },
        })
    }

    fn limits(&self) -> Limits {
        Limits {
            max_iterations: self.config.max_iterations,
            time_budget: self.config.time_budget_s.map(Duration::from_secs_f64),
        }
    }

    /// A non-finite loss or update: the parameters are lost, nothing can recover.
    fn stop_after(&self, record: &IterationRecord, _state: &HfState<ParamVector<B>>) -> Option<StopReason> {
        (record.outcome == StepOutcome::NonFinite).then_some(StopReason::Diverged)
    }
}

impl<B, N, O, L, const D: usize> TrainingMethod<B, N, L, D> for FirstOrder<B, N, O, D>
where
    B: Backend,
    N: Network<D>,
    O: SimpleOptimizer<B>,
    L: MatchingLoss,
    N::Module<Inner<B>>: AutodiffModule<Inner<B>>,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self) -> Result<()> {
        Ok(self.config.validate()?)
    }

    fn init(&self, theta: ParamVector<B>) -> HfState<ParamVector<B>> {
        HfState::starting_at(theta)
    }

    /// Writes the optimizer record as `optimizer.mpk`, keyed by each parameter
    /// tensor's position in `θ`.
    fn save(&self, dir: &Path) -> Result<()> {
        let optimizer = self
            .optimizer
            .as_ref()
            .expect("the optimizer is put back after every use");
        let by_position: OptimizerRecord<B, N, O, D> = optimizer
            .to_record()
            .into_iter()
            .filter_map(|(id, value)| {
                let position = self.ids.iter().position(|i| *i == id)?;
                Some((ParamId::from(position as u64), value))
            })
            .collect();
        let path = dir.join(OPTIMIZER_FILE);
        ModelRecorder::new()
            .record(by_position, path.clone())
            .map_err(|e| Error::Checkpoint {
                path: path.with_extension("mpk"),
                reason: format!("burn's recorder could not write the optimizer state: {e}"),
            })?;
        Ok(())
    }

    fn resume(
        &mut self,
        problem: &mut BurnProblem<B, N, L, D>,
        state: &HfState<ParamVector<B>>,
        dir: &Path,
    ) -> Result<()> {
        if let Some(s) = state.sampler {
            problem.restore_sampler(s)?;
        }
        let templates = problem.evaluator().templates();
        let module = templates.leaf_module(state.theta.tensor())?;
        let ids = trainable_ids::<Inner<B>, _>(&module, templates.layout().trainable());
        let path = dir.join(OPTIMIZER_FILE);
        let device = state.theta.tensor().device();
        let saved: OptimizerRecord<B, N, O, D> =
            ModelRecorder::new()
                .load(path.clone(), &device)
                .map_err(|e| Error::Checkpoint {
                    path: path.with_extension("mpk"),
                    reason: format!("burn's recorder could not read the optimizer state ({e})"),
                })?;
        let mut record = OptimizerRecord::<B, N, O, D>::default();
        for (position, value) in saved {
            let Some(id) = usize::try_from(position.val()).ok().and_then(|p| ids.get(p)) else {
                return Err(Error::Checkpoint {
                    path: path.with_extension("mpk"),
                    reason: format!(
                        "holds state for parameter tensor {}, the network has {}",
                        position.val(),
                        ids.len()
                    ),
                });
            };
            record.insert(*id, value);
        }
        let optimizer = self
            .optimizer
            .take()
            .expect("the optimizer is put back after every use");
        self.optimizer = Some(optimizer.load_record(record));
        self.module = Some((state.iteration, module));
        self.ids = ids;
        Ok(())
    }
}
