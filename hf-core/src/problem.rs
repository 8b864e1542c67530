//! What the HF loop needs from a model and its data.

use crate::error::Result;
use crate::kronecker::KroneckerFactor;
use crate::operator::CurvatureOperator;
use crate::vector::Vector;

/// Which data an objective is evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Batch {
    /// The gradient batch (often large, or the whole training set). Backtracking and
    /// the line search run here.
    Gradient,
    /// The curvature batch (smaller, cycled through the data). The reduction ratio `ρ`
    /// is measured here, where the quadratic model was built.
    Curvature,
}

/// An objective `f(θ)` with gradients and curvature-vector products, seen from the
/// HF loop. The parameters `θ` are owned by the loop and passed in on every call.
///
/// # Example
/// A one-dimensional quadratic `f(θ) = (θ − 3)²`, with its exact curvature `2`:
/// ```
/// use hf_core::{Batch, CurvatureOperator, DenseOperator, Problem, Result};
///
/// struct Parabola;
///
/// impl Problem for Parabola {
///     type Vector = Vec<f64>;
///
///     fn objective(&mut self, theta: &Vec<f64>, _batch: Batch) -> Result<f64> {
///         Ok((theta[0] - 3.0).powi(2))
///     }
///
///     fn gradient(&mut self, theta: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
///         Ok(((theta[0] - 3.0).powi(2), vec![2.0 * (theta[0] - 3.0)]))
///     }
///
///     fn curvature<'a>(
///         &'a mut self,
///         _theta: &Vec<f64>,
///         damping: f64,
///     ) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
///         Ok(Box::new(DenseOperator::new(vec![2.0], 1, damping)?))
///     }
/// }
///
/// let mut hf = hf_core::HessianFree::new(hf_core::HfConfig { initial_damping: Some(1e-3), ..Default::default() }).unwrap();
/// let mut state = hf.init(vec![0.0]);
/// hf.run(&mut Parabola, &mut state, &mut ()).unwrap();
/// assert!((state.theta[0] - 3.0).abs() < 1e-6);
/// ```
pub trait Problem {
    /// The parameter vector type.
    type Vector: Vector;

    /// Called at the start of each outer iteration (1-based), before anything else;
    /// a minibatched problem draws its gradient and curvature batches here.
    fn begin_iteration(&mut self, _iteration: usize) -> Result<()> {
        Ok(())
    }

    /// The objective at `theta` on `batch`, without its gradient.
    fn objective(&mut self, theta: &Self::Vector, batch: Batch) -> Result<f64>;

    /// The objective and its gradient at `theta` on the gradient batch.
    fn gradient(&mut self, theta: &Self::Vector) -> Result<(f64, Self::Vector)>;

    /// The damped curvature `B + λI` at `theta` on the curvature batch.
    fn curvature<'a>(
        &'a mut self,
        theta: &Self::Vector,
        damping: f64,
    ) -> Result<Box<dyn CurvatureOperator<Self::Vector> + 'a>>;

    /// The curvature's scale at `theta`, its mean eigenvalue `tr(G)/n` (undamped),
    /// from which [`HessianFree`](crate::HessianFree) chooses `λ₀` when
    /// [`HfConfig::initial_damping`](crate::HfConfig::initial_damping) is unset.
    /// `None` (the default) lets the loop use the curvature along the gradient.
    fn curvature_scale(&mut self, _theta: &Self::Vector) -> Result<Option<f64>> {
        Ok(None)
    }

    /// A diagonal curvature estimate for the preconditioner (Martens: the sum of
    /// squared per-example gradients). `None` (the default) disables it.
    fn curvature_diagonal(&mut self, _theta: &Self::Vector) -> Result<Option<Self::Vector>> {
        Ok(None)
    }

    /// Kronecker factors of the curvature's affine-layer blocks at `theta`, for a
    /// K-FAC preconditioner ([`KroneckerFactor`]). `None` (the default): the problem
    /// offers none.
    fn kronecker_factors(&mut self, _theta: &Self::Vector) -> Result<Option<Vec<KroneckerFactor>>> {
        Ok(None)
    }

    /// The state of the problem's batch sampler, which [`HfState::sampler`](crate::HfState::sampler)
    /// keeps so a resumed run draws the same batches. `None` (the default) for a
    /// problem without random batches.
    fn sampler_state(&self) -> Option<u64> {
        None
    }

    /// Restores a state returned by [`sampler_state`](Self::sampler_state). The
    /// default ignores it.
    fn restore_sampler(&mut self, _state: u64) -> Result<()> {
        Ok(())
    }
}
