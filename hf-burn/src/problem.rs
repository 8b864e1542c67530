//! Binding a burn network, a loss and data to hf-core's HF loop.

use std::sync::Arc;

use burn::prelude::*;
use hf_core::{ReducedOperator, Reduction, SingleWorker, Vector};
use serde::{Deserialize, Serialize};

use crate::batch::DataBatch;
use crate::curvature::{CurvatureKind, CurvatureProduct, StructuralDamping, StructuralDistance};
use crate::diagonal::DiagonalEstimator;
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::loss::MatchingLoss;
use crate::network::Network;
use crate::shard::Shard;
use crate::vector::ParamVector;

/// Random-sign probes in [`BurnProblem`]'s estimate of the curvature's scale (each
/// one curvature product).
pub const CURVATURE_SCALE_PROBES: usize = 2;

/// Where the gradient and curvature batches of each HF iteration come from.
pub trait BatchSource<B: Backend, const D: usize> {
    /// The gradient batch of outer iteration `iteration` (1-based).
    fn gradient_batch(&mut self, iteration: usize) -> Result<DataBatch<B, D>>;

    /// The curvature batch of outer iteration `iteration`.
    fn curvature_batch(&mut self, iteration: usize) -> Result<DataBatch<B, D>>;

    /// The state of the source's random generator, for checkpoints (`None`: the
    /// source is deterministic).
    fn rng_state(&self) -> Option<u64> {
        None
    }

    /// Restores a state returned by [`rng_state`](Self::rng_state).
    fn set_rng_state(&mut self, _state: u64) {}
}

impl<B: Backend, const D: usize, S: BatchSource<B, D> + ?Sized> BatchSource<B, D> for Box<S> {
    fn gradient_batch(&mut self, iteration: usize) -> Result<DataBatch<B, D>> {
        (**self).gradient_batch(iteration)
    }

    fn curvature_batch(&mut self, iteration: usize) -> Result<DataBatch<B, D>> {
        (**self).curvature_batch(iteration)
    }

    fn rng_state(&self) -> Option<u64> {
        (**self).rng_state()
    }

    fn set_rng_state(&mut self, state: u64) {
        (**self).set_rng_state(state)
    }
}

/// A fixed gradient batch and a list of curvature batches used in turn
/// (Martens 2010 cycles the curvature minibatch through the data).
#[derive(Debug, Clone)]
pub struct FixedBatches<B: Backend, const D: usize> {
    gradient: DataBatch<B, D>,
    curvature: Vec<DataBatch<B, D>>,
}

impl<B: Backend, const D: usize> FixedBatches<B, D> {
    /// The gradient batch; the curvature batches are its `parts` consecutive slices,
    /// one per iteration in turn (`parts = 1`: the curvature batch is the gradient batch).
    pub fn split(gradient: DataBatch<B, D>, parts: usize) -> Self {
        let n = gradient.len();
        let parts = parts.clamp(1, n);
        let curvature = (0..parts)
            .map(|k| gradient.slice(k * n / parts..(k + 1) * n / parts))
            .collect();
        Self { gradient, curvature }
    }
}

impl<B: Backend, const D: usize> BatchSource<B, D> for FixedBatches<B, D> {
    fn gradient_batch(&mut self, _iteration: usize) -> Result<DataBatch<B, D>> {
        Ok(self.gradient.clone())
    }

    fn curvature_batch(&mut self, iteration: usize) -> Result<DataBatch<B, D>> {
        Ok(self.curvature[iteration % self.curvature.len()].clone())
    }
}

/// How a [`BurnProblem`] builds its curvature and preconditioner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProblemConfig {
    /// The curvature matrix. Default Gauss-Newton.
    pub curvature: CurvatureKind,
    /// Structural damping strength `μ` (recurrent networks); `None` disables it.
    pub structural_damping: Option<f64>,
    /// The distance structural damping uses on the hidden states. Default the tanh
    /// units' matching loss (the paper's).
    pub structural_distance: StructuralDistance,
    /// The diagonal estimate for the preconditioner.
    pub diagonal: DiagonalEstimator,
}

impl Default for ProblemConfig {
    fn default() -> Self {
        Self {
            curvature: CurvatureKind::GaussNewton,
            structural_damping: None,
            structural_distance: StructuralDistance::TanhMatching,
            diagonal: DiagonalEstimator::default(),
        }
    }
}

/// A burn network with a matching loss and a batch source, as an [`hf_core::Problem`].
///
/// One problem per worker makes a data-parallel run ([`data_parallel`](Self::data_parallel)):
/// every worker draws the same batches, keeps its shard of each and sums the batch
/// quantities over the workers (see [`hf_core::reduction`]).
///
/// # Example
/// ```
/// use burn::backend::NdArray;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::prelude::*;
/// use hf_burn::{BurnProblem, DataBatch, FixedBatches, Network, Outputs, ParamVector, ProblemConfig, SquaredError};
/// use hf_core::{HessianFree, HfConfig};
///
/// #[derive(Clone)]
/// struct Line;
/// impl Network<2> for Line {
///     type Module<B: Backend> = Linear<B>;
///     fn init<B: Backend>(&self, device: &B::Device) -> Linear<B> { LinearConfig::new(1, 1).init(device) }
///     fn forward<B: Backend>(&self, m: &Linear<B>, x: Tensor<B, 2>) -> Outputs<B> { Outputs::new(hf_burn::nn::linear(m, x)) }
/// }
///
/// type B = NdArray<f64>;
/// let device = Default::default();
/// let x = Tensor::<B, 2>::from_data([[0.0], [1.0], [2.0], [3.0]], &device);
/// let y = x.clone().mul_scalar(2.0).add_scalar(1.0);
/// let batches = FixedBatches::split(DataBatch::new(x, y).unwrap(), 1);
/// let mut problem = BurnProblem::new(Line, SquaredError, batches, ProblemConfig::default(), &device).unwrap();
/// let theta = problem.initial_parameters(&device).unwrap();
/// let mut hf = HessianFree::new(HfConfig { initial_damping: Some(1e-3), max_iterations: 20, ..Default::default() }).unwrap();
/// let mut state = hf.init(theta);
/// hf.run(&mut problem, &mut state, &mut ()).unwrap();
/// let fitted = state.theta.to_vec(); // [weight, bias]
/// assert!((fitted[0] - 2.0).abs() < 1e-6 && (fitted[1] - 1.0).abs() < 1e-6);
/// ```
pub struct BurnProblem<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> {
    evaluator: Evaluator<B, N, L, D>,
    source: Box<dyn BatchSource<B, D>>,
    config: ProblemConfig,
    gradient_batch: Option<DataBatch<B, D>>,
    curvature_batch: Option<DataBatch<B, D>>,
    gradient_shard: Shard,
    curvature_shard: Shard,
    reduction: Arc<dyn Reduction<ParamVector<B>>>,
    iteration: usize,
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> BurnProblem<B, N, L, D> {
    /// A problem with curvature products in forward mode ([`Jvp::ForwardMode`](crate::Jvp)).
    ///
    /// # Errors
    /// A network without float parameters.
    pub fn new(
        network: N,
        loss: L,
        source: impl BatchSource<B, D> + 'static,
        config: ProblemConfig,
        device: &B::Device,
    ) -> Result<Self> {
        Ok(Self::from_evaluator(
            Evaluator::new(network, loss, device)?,
            source,
            config,
        ))
    }

    /// A problem around an existing evaluator.
    pub fn from_evaluator(
        evaluator: Evaluator<B, N, L, D>,
        source: impl BatchSource<B, D> + 'static,
        config: ProblemConfig,
    ) -> Self {
        Self {
            evaluator,
            source: Box::new(source),
            config,
            gradient_batch: None,
            curvature_batch: None,
            gradient_shard: Shard::whole(0),
            curvature_shard: Shard::whole(0),
            reduction: Arc::new(SingleWorker),
            iteration: 0,
        }
    }

    /// Makes this problem one worker of a data-parallel run: of every batch the
    /// source draws (the same on every worker: same source, same seed), it keeps the
    /// shard of rank [`Reduction::rank`] ([`Shard::of`]), computes each batch quantity
    /// on it and sums it over the workers by `reduction`, weighted by its share. The
    /// objective, gradient, curvature products, preconditioner statistics and the
    /// curvature's scale are then the whole batch's on every worker, so the HF loop
    /// takes the same path everywhere and `θ` stays identical without a broadcast.
    ///
    /// # Example
    /// Two workers as threads of one process, each with half of every batch:
    /// ```
    /// # use burn::backend::NdArray;
    /// # use burn::nn::{Linear, LinearConfig};
    /// # use burn::prelude::*;
    /// # use hf_burn::{BurnProblem, DataBatch, FixedBatches, Network, Outputs, ParamVector, ProblemConfig, SquaredError};
    /// # use hf_core::{HessianFree, HfConfig, Reduction, ThreadReduction};
    /// # use std::sync::Arc;
    /// # #[derive(Clone)]
    /// # struct Line;
    /// # impl Network<2> for Line {
    /// #     type Module<B: Backend> = Linear<B>;
    /// #     fn init<B: Backend>(&self, device: &B::Device) -> Linear<B> { LinearConfig::new(1, 1).init(device) }
    /// #     fn forward<B: Backend>(&self, m: &Linear<B>, x: Tensor<B, 2>) -> Outputs<B> { Outputs::new(hf_burn::nn::linear(m, x)) }
    /// # }
    /// type B = NdArray<f64>;
    /// let workers: Vec<_> = ThreadReduction::<ParamVector<B>>::group(2)
    ///     .into_iter()
    ///     .map(|reduction| std::thread::spawn(move || {
    ///         let device = Default::default();
    ///         let x = Tensor::<B, 2>::from_data([[0.0], [1.0], [2.0], [3.0]], &device);
    ///         let batches = FixedBatches::split(DataBatch::new(x.clone(), x.mul_scalar(2.0)).unwrap(), 1);
    ///         let mut problem = BurnProblem::new(Line, SquaredError, batches, ProblemConfig::default(), &device)
    ///             .unwrap()
    ///             .data_parallel(Arc::new(reduction));
    ///         let theta = ParamVector::new(Tensor::<B, 1>::from_data([0.5, 0.0], &device));
    ///         let mut hf = HessianFree::new(HfConfig { initial_damping: Some(1e-3), max_iterations: 20, ..Default::default() }).unwrap();
    ///         let mut state = hf.init(theta);
    ///         hf.run(&mut problem, &mut state, &mut ()).unwrap();
    ///         state.theta.to_vec()
    ///     }))
    ///     .collect();
    /// let thetas: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    /// assert_eq!(thetas[0], thetas[1]);
    /// assert!((thetas[0][0] - 2.0).abs() < 1e-6);
    /// ```
    pub fn data_parallel(mut self, reduction: Arc<dyn Reduction<ParamVector<B>>>) -> Self {
        self.reduction = reduction;
        self.gradient_batch = None;
        self.curvature_batch = None;
        self
    }

    /// The reduction over the workers ([`SingleWorker`] unless
    /// [`data_parallel`](Self::data_parallel) set one).
    pub fn reduction(&self) -> &Arc<dyn Reduction<ParamVector<B>>> {
        &self.reduction
    }

    fn parallel(&self) -> bool {
        self.reduction.workers() > 1
    }

    /// Draws iteration `iteration`'s batches and keeps this worker's shards.
    fn draw(&mut self, iteration: usize) -> Result<()> {
        let (rank, workers) = (self.reduction.rank(), self.reduction.workers());
        let gradient = self.source.gradient_batch(iteration)?;
        let curvature = self.source.curvature_batch(iteration)?;
        self.gradient_shard = Shard::of(rank, workers, gradient.len())?;
        self.curvature_shard = Shard::of(rank, workers, curvature.len())?;
        self.gradient_batch = Some(self.gradient_shard.take(&gradient));
        self.curvature_batch = Some(self.curvature_shard.take(&curvature));
        Ok(())
    }

    /// `Σ_k weight_k · x_k` over the workers (`x` itself for one worker).
    fn sum_weighted(&self, x: f64, weight: f64) -> hf_core::Result<f64> {
        if !self.parallel() {
            return Ok(x);
        }
        let mut v = [weight * x];
        self.reduction.sum_scalars(&mut v)?;
        Ok(v[0])
    }

    /// `Σ_k weight_k · v_k` over the workers (`v` itself for one worker).
    fn sum_weighted_vector(&self, mut v: ParamVector<B>, weight: f64) -> hf_core::Result<ParamVector<B>> {
        if !self.parallel() {
            return Ok(v);
        }
        v.scale(weight);
        self.reduction.sum_vector(v)
    }

    /// The evaluator (objective, gradients, products).
    pub fn evaluator(&self) -> &Evaluator<B, N, L, D> {
        &self.evaluator
    }

    /// The batch source.
    pub fn source(&self) -> &dyn BatchSource<B, D> {
        self.source.as_ref()
    }

    /// The batch source, mutably.
    pub fn source_mut(&mut self) -> &mut dyn BatchSource<B, D> {
        self.source.as_mut()
    }

    /// The trainable parameters of a freshly initialized network (its own `init`).
    pub fn initial_parameters(&self, device: &B::Device) -> Result<ParamVector<B>> {
        let templates = self.evaluator.templates();
        let module = templates.network().init::<B>(device);
        templates.layout().gather(&module).map(ParamVector::new)
    }

    /// Draws the first batches if the HF loop has not started an iteration yet.
    fn ensure_batches(&mut self) -> Result<()> {
        if self.gradient_batch.is_none() || self.curvature_batch.is_none() {
            self.draw(0)?;
        }
        Ok(())
    }

    fn gradient_batch(&self) -> &DataBatch<B, D> {
        self.gradient_batch.as_ref().expect("ensure_batches runs first")
    }

    fn curvature_batch(&self) -> &DataBatch<B, D> {
        self.curvature_batch.as_ref().expect("ensure_batches runs first")
    }
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> hf_core::Problem for BurnProblem<B, N, L, D> {
    type Vector = ParamVector<B>;

    fn begin_iteration(&mut self, iteration: usize) -> hf_core::Result<()> {
        self.iteration = iteration;
        Ok(self.draw(iteration)?)
    }

    fn objective(&mut self, theta: &ParamVector<B>, batch: hf_core::Batch) -> hf_core::Result<f64> {
        self.ensure_batches()?;
        let (data, shard) = match batch {
            hf_core::Batch::Gradient => (self.gradient_batch(), self.gradient_shard),
            hf_core::Batch::Curvature => (self.curvature_batch(), self.curvature_shard),
        };
        let f = self.evaluator.objective(theta, data)?;
        self.sum_weighted(f, shard.share())
    }

    fn gradient(&mut self, theta: &ParamVector<B>) -> hf_core::Result<(f64, ParamVector<B>)> {
        self.ensure_batches()?;
        let (f, g) = self.evaluator.gradient(theta, self.gradient_batch())?;
        let share = self.gradient_shard.share();
        Ok((self.sum_weighted(f, share)?, self.sum_weighted_vector(g, share)?))
    }

    fn curvature<'a>(
        &'a mut self,
        theta: &ParamVector<B>,
        damping: f64,
    ) -> hf_core::Result<Box<dyn hf_core::CurvatureOperator<ParamVector<B>> + 'a>> {
        self.ensure_batches()?;
        let c = self.curvature_batch().clone();
        let mut op = CurvatureProduct::new(&self.evaluator, theta.clone(), c, self.config.curvature, damping)?;
        if let Some(mu) = self.config.structural_damping {
            op = op.with_structural_damping(StructuralDamping {
                mu,
                distance: self.config.structural_distance,
            });
        }
        if self.parallel() {
            let share = self.curvature_shard.share();
            return Ok(Box::new(ReducedOperator::new(
                Box::new(op),
                share,
                self.reduction.clone(),
            )));
        }
        Ok(Box::new(op))
    }

    /// Hutchinson's estimate of `tr(G)/n` on the curvature batch: `vᵀGv/n` averaged
    /// over [`CURVATURE_SCALE_PROBES`] vectors of random signs (fixed seeds, so a run
    /// is reproducible), structural damping left out.
    fn curvature_scale(&mut self, theta: &ParamVector<B>) -> hf_core::Result<Option<f64>> {
        self.ensure_batches()?;
        let c = self.curvature_batch().clone();
        let op = CurvatureProduct::new(&self.evaluator, theta.clone(), c, self.config.curvature, 0.0)?;
        let n = theta.tensor().dims()[0];
        let mut rng = hf_core::SplitMix64::new(0x5CA1_E0F0_C0DE);
        let mut sum = 0.0;
        for _ in 0..CURVATURE_SCALE_PROBES {
            let v = ParamVector::new(crate::tensor_from_f64(
                crate::shard::signs(&mut rng, n),
                [n],
                &theta.tensor().device(),
                theta.tensor().dtype(),
            ));
            sum += hf_core::Vector::dot(&v, &hf_core::CurvatureOperator::apply(&op, &v)?);
        }
        let local = sum / (CURVATURE_SCALE_PROBES * n.max(1)) as f64;
        Ok(Some(self.sum_weighted(local, self.curvature_shard.share())?))
    }

    fn curvature_diagonal(&mut self, theta: &ParamVector<B>) -> hf_core::Result<Option<ParamVector<B>>> {
        let estimator = self.config.diagonal;
        self.ensure_batches()?;
        let diagonal = self.evaluator.shard_diagonal(
            estimator,
            theta,
            self.gradient_batch(),
            self.gradient_shard,
            self.iteration as u64,
        )?;
        diagonal
            .map(|(d, weight)| self.sum_weighted_vector(d, weight))
            .transpose()
    }

    /// The Kronecker factors of the network's affine layers on the curvature batch
    /// ([`Evaluator::kronecker_factors`]), with random signs drawn afresh each
    /// iteration from a fixed seed, so a run is reproducible.
    fn kronecker_factors(&mut self, theta: &ParamVector<B>) -> hf_core::Result<Option<Vec<hf_core::KroneckerFactor>>> {
        self.ensure_batches()?;
        let seed = 0x4B_FAC0_0000 ^ self.iteration as u64;
        let shard = self.curvature_shard;
        let Some(mut factors) = self
            .evaluator
            .shard_kronecker_factors(theta, self.curvature_batch(), shard, seed)?
        else {
            return Ok(None);
        };
        if self.parallel() {
            // One collective for all factors: every worker has the same layers.
            let mut flat: Vec<f64> = factors
                .iter()
                .flat_map(|f| f.input.iter().chain(&f.output))
                .map(|x| shard.share() * x)
                .collect();
            self.reduction.sum_scalars(&mut flat)?;
            let mut rest = flat.as_slice();
            for f in &mut factors {
                for m in [&mut f.input, &mut f.output] {
                    let (mine, tail) = rest.split_at(m.len());
                    m.copy_from_slice(mine);
                    rest = tail;
                }
            }
        }
        Ok(Some(factors))
    }

    fn sampler_state(&self) -> Option<u64> {
        self.source.rng_state()
    }

    fn restore_sampler(&mut self, state: u64) -> hf_core::Result<()> {
        self.source.set_rng_state(state);
        Ok(())
    }
}
