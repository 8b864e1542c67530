//! Diagonal curvature estimates for the preconditioner `M = (d + λ)^α`
//! ([`hf_core::Diagonal`]).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::backend::tensor_from_f64;
use crate::batch::DataBatch;
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::jvp::JvpStrategy;
use crate::loss::MatchingLoss;
use crate::network::{Network, Outputs};
use crate::vector::ParamVector;

/// How to estimate the diagonal `d` that the preconditioner is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DiagonalEstimator {
    /// No diagonal: the preconditioner is the identity.
    None,
    /// Martens (2010): `d = (1/n) Σ_i g_i ⊙ g_i` over per-case gradients `g_i` of the
    /// first `max_cases` cases of the gradient batch (the empirical Fisher diagonal, on
    /// the scale of the averaged curvature). One backward pass per case.
    SquaredGradients {
        /// Cases used (the batch is assumed shuffled).
        max_cases: usize,
    },
    /// Chapelle & Erhan (2011): the unbiased estimate `d = (1/N) E_v[(Jᵀ S v)²]` of the
    /// Gauss-Newton diagonal, `S Sᵀ = H_L` per case and `v` random ±1 vectors. One
    /// backward pass per sample.
    ChapelleErhan {
        /// Random vectors averaged.
        samples: usize,
        /// Seed of the ±1 vectors.
        seed: u64,
    },
}

impl Default for DiagonalEstimator {
    fn default() -> Self {
        DiagonalEstimator::SquaredGradients { max_cases: 100 }
    }
}

/// SplitMix64, for reproducible ±1 vectors independent of the backend's generator.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn signs(&mut self, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let bits = self.next_u64();
            out.extend((0..64.min(n - out.len())).map(|k| if bits >> k & 1 == 1 { 1.0 } else { -1.0 }));
        }
        out
    }
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize, J: JvpStrategy> Evaluator<B, N, L, D, J> {
    /// Martens' diagonal: `(1/n) Σ_i g_i ⊙ g_i` over the first `n = min(max_cases, N)`
    /// cases of `batch`.
    ///
    /// # References
    /// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §4.7.
    pub fn squared_gradient_diagonal(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
        max_cases: usize,
    ) -> Result<ParamVector<B>> {
        let n = max_cases.clamp(1, batch.len());
        let mut sum = theta.tensor().zeros_like();
        for i in 0..n {
            let (_, g) = self.gradient(theta, &batch.slice(i..i + 1))?;
            sum = sum + g.into_tensor().square();
        }
        Ok(ParamVector::new(sum.div_scalar(n as f64)))
    }

    /// Chapelle & Erhan's unbiased Gauss-Newton diagonal from `samples` random ±1 vectors.
    ///
    /// # References
    /// - O. Chapelle and D. Erhan, "Improved preconditioner for Hessian free
    ///   optimization", NIPS Workshop on Deep Learning, 2011.
    pub fn chapelle_erhan_diagonal(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
        samples: usize,
        seed: u64,
    ) -> Result<ParamVector<B>> {
        let z = self.outputs(theta, batch.input.clone())?.z;
        let dims = z.dims();
        let device = z.device();
        let dtype = z.dtype();
        let mut rng = SplitMix(seed);
        let samples = samples.max(1);
        let mut sum = theta.tensor().zeros_like();
        for _ in 0..samples {
            let v = tensor_from_f64::<B, 2>(rng.signs(dims[0] * dims[1]), dims, &device, dtype);
            let w = Outputs::new(self.loss().hessian_sqrt_product(z.clone(), v));
            let y = self.vjp(theta, &batch.input, &w)?;
            sum = sum + y.into_tensor().square();
        }
        Ok(ParamVector::new(sum.div_scalar((samples * dims[0]) as f64)))
    }

    /// The diagonal chosen by `estimator` (`None` for [`DiagonalEstimator::None`]).
    pub fn diagonal(
        &self,
        estimator: DiagonalEstimator,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
    ) -> Result<Option<ParamVector<B>>> {
        Ok(match estimator {
            DiagonalEstimator::None => None,
            DiagonalEstimator::SquaredGradients { max_cases } => {
                Some(self.squared_gradient_diagonal(theta, batch, max_cases)?)
            }
            DiagonalEstimator::ChapelleErhan { samples, seed } => {
                Some(self.chapelle_erhan_diagonal(theta, batch, samples, seed)?)
            }
        })
    }
}
