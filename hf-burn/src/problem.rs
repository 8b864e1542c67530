//! Binding a burn network, a loss and data to hf-core's HF loop.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::batch::DataBatch;
use crate::curvature::{CurvatureKind, CurvatureProduct, StructuralDamping, StructuralDistance};
use crate::diagonal::DiagonalEstimator;
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::loss::MatchingLoss;
use crate::network::Network;
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
            iteration: 0,
        }
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
        if self.gradient_batch.is_none() {
            self.gradient_batch = Some(self.source.gradient_batch(0)?);
        }
        if self.curvature_batch.is_none() {
            self.curvature_batch = Some(self.source.curvature_batch(0)?);
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
        self.gradient_batch = Some(self.source.gradient_batch(iteration)?);
        self.curvature_batch = Some(self.source.curvature_batch(iteration)?);
        Ok(())
    }

    fn objective(&mut self, theta: &ParamVector<B>, batch: hf_core::Batch) -> hf_core::Result<f64> {
        self.ensure_batches()?;
        let data = match batch {
            hf_core::Batch::Gradient => self.gradient_batch(),
            hf_core::Batch::Curvature => self.curvature_batch(),
        };
        Ok(self.evaluator.objective(theta, data)?)
    }

    fn gradient(&mut self, theta: &ParamVector<B>) -> hf_core::Result<(f64, ParamVector<B>)> {
        self.ensure_batches()?;
        Ok(self.evaluator.gradient(theta, self.gradient_batch())?)
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
                crate::diagonal::signs(&mut rng, n),
                [n],
                &theta.tensor().device(),
                theta.tensor().dtype(),
            ));
            sum += hf_core::Vector::dot(&v, &hf_core::CurvatureOperator::apply(&op, &v)?);
        }
        Ok(Some(sum / (CURVATURE_SCALE_PROBES * n.max(1)) as f64))
    }

    fn curvature_diagonal(&mut self, theta: &ParamVector<B>) -> hf_core::Result<Option<ParamVector<B>>> {
        let estimator = self.config.diagonal;
        self.ensure_batches()?;
        Ok(self
            .evaluator
            .diagonal(estimator, theta, self.gradient_batch(), self.iteration as u64)?)
    }

    /// The Kronecker factors of the network's affine layers on the curvature batch
    /// ([`Evaluator::kronecker_factors`]), with random signs drawn afresh each
    /// iteration from a fixed seed, so a run is reproducible.
    fn kronecker_factors(&mut self, theta: &ParamVector<B>) -> hf_core::Result<Option<Vec<hf_core::KroneckerFactor>>> {
        self.ensure_batches()?;
        let seed = 0x4B_FAC0_0000 ^ self.iteration as u64;
        Ok(self.evaluator.kronecker_factors(theta, self.curvature_batch(), seed)?)
    }

    fn sampler_state(&self) -> Option<u64> {
        self.source.rng_state()
    }

    fn restore_sampler(&mut self, state: u64) -> hf_core::Result<()> {
        self.source.set_rng_state(state);
        Ok(())
    }
}
