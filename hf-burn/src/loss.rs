//! Losses with their matching output nonlinearities (Schraudolph 2002; Martens 2010).
//!
//! Each loss takes the network's pre-nonlinearity outputs `z` and gives, per case,
//! its value, its gradient `∂L/∂z`, the product of its Hessian `H_L = ∂²L/∂z²` with a
//! vector (positive semidefinite for these matching pairs) and of a square-root factor
//! `S` (`S Sᵀ = H_L`) with a vector. Every formula is built from operations whose
//! second derivatives burn 0.21 gets right under nested autodiff (in particular the
//! logistic function is `(1 + e^{−z})⁻¹`, not `activation::sigmoid`).
//!
//! # References
//! - N. N. Schraudolph, "Fast curvature matrix-vector products for second-order
//!   gradient descent", Neural Computation 14(7), 2002.
//! - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §4.2.

use burn::prelude::*;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use serde::{Deserialize, Serialize};

/// A loss `L(z, t)` with its matching output nonlinearity, evaluated per case.
///
/// A "case" here is one row of the network's outputs. The objective is the mean over
/// rows of the per-row loss; the Gauss-Newton matrix is `G = (1/R) Σ_r J_rᵀ H_r J_r`.
pub trait MatchingLoss: Clone + Send + Sync + 'static {
    /// Per-case losses, `[cases]`.
    fn per_case<B: Backend>(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 1>;

    /// The network's prediction: the output nonlinearity applied to `z`.
    fn predict<B: Backend>(&self, z: Tensor<B, 2>) -> Tensor<B, 2>;

    /// `∂L_i/∂z_i` per case, `[cases, outputs]`.
    fn output_gradient<B: Backend>(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        self.predict(z) - t
    }

    /// `H_i u_i` per case.
    fn hessian_product<B: Backend>(&self, z: Tensor<B, 2>, u: Tensor<B, 2>) -> Tensor<B, 2>;

    /// `S_i v_i` per case, with `S_i S_iᵀ = H_i`.
    fn hessian_sqrt_product<B: Backend>(&self, z: Tensor<B, 2>, v: Tensor<B, 2>) -> Tensor<B, 2>;
}

/// The logistic function `σ(z) = (1 + e^{−z})⁻¹`, exact under nested autodiff and
/// finite for every `z`.
///
/// Computed as `½ tanh(z/2) + ½`: burn 0.21's `activation::sigmoid` has a wrong second
/// derivative under nested autodiff, and the direct `(1 + e^{−z})⁻¹` has a NaN
/// derivative once `e^{−z}` overflows (`z < −88` in f32: `∞/∞` in the chain rule), which
/// saturated hidden units of a real f32 run reach.
pub fn logistic<B: Backend, const D: usize>(z: Tensor<B, D>) -> Tensor<B, D> {
    z.mul_scalar(0.5).tanh().mul_scalar(0.5).add_scalar(0.5)
}

/// Linear outputs with squared error `½‖z − t‖²`: `H_L = I`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SquaredError;

impl MatchingLoss for SquaredError {
    fn per_case<B: Backend>(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 1> {
        (z - t).square().sum_dim(1).squeeze_dim(1).mul_scalar(0.5)
    }

    fn predict<B: Backend>(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        z
    }

    fn hessian_product<B: Backend>(&self, _z: Tensor<B, 2>, u: Tensor<B, 2>) -> Tensor<B, 2> {
        u
    }

    fn hessian_sqrt_product<B: Backend>(&self, _z: Tensor<B, 2>, v: Tensor<B, 2>) -> Tensor<B, 2> {
        v
    }
}

/// Logistic outputs `p = σ(z)` with cross-entropy `−Σ t log p + (1 − t) log(1 − p)`:
/// `H_L = diag(p ⊙ (1 − p))`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogisticCrossEntropy;

impl MatchingLoss for LogisticCrossEntropy {
    fn per_case<B: Backend>(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 1> {
        // −t log σ(z) − (1 − t) log σ(−z), stable for large |z|.
        let pos = log_sigmoid(z.clone()) * t.clone();
        let neg = log_sigmoid(z.neg()) * t.neg().add_scalar(1.0);
        (pos + neg).sum_dim(1).squeeze_dim(1).neg()
    }

    fn predict<B: Backend>(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        logistic(z)
    }

    fn hessian_product<B: Backend>(&self, z: Tensor<B, 2>, u: Tensor<B, 2>) -> Tensor<B, 2> {
        let p = logistic(z);
        p.clone() * p.neg().add_scalar(1.0) * u
    }

    fn hessian_sqrt_product<B: Backend>(&self, z: Tensor<B, 2>, v: Tensor<B, 2>) -> Tensor<B, 2> {
        let p = logistic(z);
        (p.clone() * p.neg().add_scalar(1.0)).sqrt() * v
    }
}

/// Softmax outputs `p = softmax(z)` with cross-entropy `−Σ t log p`:
/// `H_L u = p ⊙ u − p (pᵀu)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftmaxCrossEntropy;

impl MatchingLoss for SoftmaxCrossEntropy {
    fn per_case<B: Backend>(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 1> {
        (log_softmax(z, 1) * t).sum_dim(1).squeeze_dim(1).neg()
    }

    fn predict<B: Backend>(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        log_softmax(z, 1).exp()
    }

    fn hessian_product<B: Backend>(&self, z: Tensor<B, 2>, u: Tensor<B, 2>) -> Tensor<B, 2> {
        let p = self.predict(z);
        let pu = (p.clone() * u.clone()).sum_dim(1);
        p.clone() * u - p * pu
    }

    fn hessian_sqrt_product<B: Backend>(&self, z: Tensor<B, 2>, v: Tensor<B, 2>) -> Tensor<B, 2> {
        // S = diag(√p) − p √pᵀ satisfies S Sᵀ = diag(p) − ppᵀ because Σ p = 1.
        let p = self.predict(z);
        let sp = p.clone().sqrt();
        let spv = (sp.clone() * v.clone()).sum_dim(1);
        sp * v - p * spv
    }
}

/// The three matching losses, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// [`SquaredError`].
    SquaredError,
    /// [`LogisticCrossEntropy`].
    LogisticCrossEntropy,
    /// [`SoftmaxCrossEntropy`].
    SoftmaxCrossEntropy,
}

macro_rules! dispatch {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {
        match $self {
            Loss::SquaredError => SquaredError.$method($($arg),*),
            Loss::LogisticCrossEntropy => LogisticCrossEntropy.$method($($arg),*),
            Loss::SoftmaxCrossEntropy => SoftmaxCrossEntropy.$method($($arg),*),
        }
    };
}

impl MatchingLoss for Loss {
    fn per_case<B: Backend>(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 1> {
        dispatch!(self, per_case(z, t))
    }

    fn predict<B: Backend>(&self, z: Tensor<B, 2>) -> Tensor<B, 2> {
        dispatch!(self, predict(z))
    }

    fn output_gradient<B: Backend>(&self, z: Tensor<B, 2>, t: Tensor<B, 2>) -> Tensor<B, 2> {
        dispatch!(self, output_gradient(z, t))
    }

    fn hessian_product<B: Backend>(&self, z: Tensor<B, 2>, u: Tensor<B, 2>) -> Tensor<B, 2> {
        dispatch!(self, hessian_product(z, u))
    }

    fn hessian_sqrt_product<B: Backend>(&self, z: Tensor<B, 2>, v: Tensor<B, 2>) -> Tensor<B, 2> {
        dispatch!(self, hessian_sqrt_product(z, v))
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};
    use burn::prelude::*;

    use super::logistic;

    #[test]
    fn logistic_has_finite_derivatives_in_f32_far_into_saturation() {
        type B = Autodiff<NdArray<f32>>;
        let device = Default::default();
        let z = Tensor::<B, 1>::from_floats([-1000.0, -100.0, -88.8, 0.0, 3.0, 100.0, 1000.0], &device).require_grad();
        let y = logistic(z.clone());
        let values: Vec<f32> = y.clone().inner().into_data().iter::<f32>().collect();
        let grads = y.sum().backward();
        let dy: Vec<f32> = z.grad(&grads).unwrap().into_data().iter::<f32>().collect();
        assert!(
            dy.iter().all(|d| d.is_finite() && *d >= 0.0),
            "σ' finite everywhere: {dy:?}"
        );
        let want = |z: f32| 1.0 / (1.0 + (-z).exp());
        for (k, z) in [-1000.0f32, -100.0, -88.8, 0.0, 3.0, 100.0, 1000.0]
            .into_iter()
            .enumerate()
        {
            assert!((values[k] - want(z)).abs() < 1e-6, "σ({z}) = {}", values[k]);
            assert!((dy[k] - want(z) * (1.0 - want(z))).abs() < 1e-6, "σ'({z}) = {}", dy[k]);
        }
    }
}
