//! Diagonal curvature estimates for the preconditioner `M = (d + λ)^α`
//! ([`hf_core::Diagonal`]).

use burn::prelude::*;
use hf_core::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::backend::tensor_from_f64;
use crate::batch::DataBatch;
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::loss::MatchingLoss;
use crate::network::{Network, Outputs};
use crate::shard::Shard;
use crate::vector::ParamVector;

/// How to estimate the diagonal `d` that the preconditioner is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum DiagonalEstimator {
    /// No diagonal: the preconditioner is the identity.
    None,
    /// Martens (2010): `d = (1/n) Σ_i g_i ⊙ g_i` over per-case gradients `g_i` of the
    /// gradient batch (the empirical Fisher diagonal, on the scale of the averaged
    /// curvature): the whole batch, or a fresh random subset of `max_cases` cases each
    /// iteration when the batch is larger. One backward pass in all for networks that
    /// implement [`Network::forward_with_taps`] (hf-models' networks do), one per case
    /// otherwise.
    SquaredGradients {
        /// At most this many cases of the gradient batch, drawn at random.
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

/// `max_cases` distinct cases of `n`, sorted, drawn by a partial Fisher-Yates shuffle
/// seeded with `draw`; `None` when `max_cases` covers all of them.
fn random_subset(n: usize, max_cases: usize, draw: u64) -> Option<Vec<usize>> {
    let m = max_cases.max(1);
    if m >= n {
        return None;
    }
    let mut subset = SplitMix64::new(draw ^ 0x5EED_D1A6_0000_0000).choose(n, m);
    subset.sort_unstable();
    Some(subset)
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> Evaluator<B, N, L, D> {
    /// Martens' diagonal `(1/N) Σ_i g_i ⊙ g_i` over all `N` cases of `batch`: in one
    /// backward pass when the network reports its layers
    /// ([`one_pass_squared_gradient_diagonal`](Self::one_pass_squared_gradient_diagonal)),
    /// else one backward pass per case
    /// ([`per_case_squared_gradient_diagonal`](Self::per_case_squared_gradient_diagonal)).
    ///
    /// # References
    /// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §4.7.
    pub fn squared_gradient_diagonal(&self, theta: &ParamVector<B>, batch: &DataBatch<B, D>) -> Result<ParamVector<B>> {
        match self.one_pass_squared_gradient_diagonal(theta, batch)? {
            Some(d) => Ok(d),
            None => self.per_case_squared_gradient_diagonal(theta, batch),
        }
    }

    /// Martens' diagonal by one backward pass per case of `batch`: the generic
    /// fallback, right for every network.
    pub fn per_case_squared_gradient_diagonal(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
    ) -> Result<ParamVector<B>> {
        let n = batch.len();
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
        self.shard_chapelle_erhan_diagonal(theta, batch, Shard::whole(batch.len()), samples, seed)
    }

    /// [`chapelle_erhan_diagonal`](Self::chapelle_erhan_diagonal) on `batch`, the
    /// `shard` of a larger batch: the signs are that batch's draws for these cases.
    fn shard_chapelle_erhan_diagonal(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
        shard: Shard,
        samples: usize,
        seed: u64,
    ) -> Result<ParamVector<B>> {
        let z = self.outputs(theta, batch.input.clone())?.z;
        let dims = z.dims();
        let device = z.device();
        let dtype = z.dtype();
        let mut rng = SplitMix64::new(seed);
        let samples = samples.max(1);
        let per_case = dims[0] * dims[1] / batch.len();
        let mut sum = theta.tensor().zeros_like();
        for _ in 0..samples {
            let v = tensor_from_f64::<B, 2>(shard.signs(&mut rng, per_case), dims, &device, dtype);
            let w = Outputs::new(self.loss().hessian_sqrt_product(z.clone(), v));
            let y = self.vjp(theta, &batch.input, &w)?;
            sum = sum + y.into_tensor().square();
        }
        Ok(ParamVector::new(sum.div_scalar((samples * dims[0]) as f64)))
    }

    /// The diagonal chosen by `estimator` (`None` for [`DiagonalEstimator::None`]).
    /// `draw` seeds the random subset of cases of
    /// [`DiagonalEstimator::SquaredGradients`] (the HF problem passes the iteration,
    /// so every iteration sees other cases and a resumed run the same ones).
    pub fn diagonal(
        &self,
        estimator: DiagonalEstimator,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
        draw: u64,
    ) -> Result<Option<ParamVector<B>>> {
        Ok(self
            .shard_diagonal(estimator, theta, batch, Shard::whole(batch.len()), draw)?
            .map(|(d, _)| d))
    }

    /// [`diagonal`](Self::diagonal) on `batch`, the `shard` of a larger batch held by
    /// one worker of a data-parallel run, with its weight in the whole batch's
    /// estimate: the whole estimate is `Σ_k weight_k · d_k` over the workers, with
    /// the same random subset and signs as one worker's on the whole batch.
    pub fn shard_diagonal(
        &self,
        estimator: DiagonalEstimator,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
        shard: Shard,
        draw: u64,
    ) -> Result<Option<(ParamVector<B>, f64)>> {
        Ok(match estimator {
            DiagonalEstimator::None => None,
            DiagonalEstimator::SquaredGradients { max_cases } => match random_subset(shard.total, max_cases, draw) {
                None => Some((self.squared_gradient_diagonal(theta, batch)?, shard.share())),
                Some(cases) => {
                    let mine = shard.local(&cases);
                    if mine.is_empty() {
                        Some((ParamVector::new(theta.tensor().zeros_like()), 0.0))
                    } else {
                        let weight = mine.len() as f64 / cases.len() as f64;
                        Some((self.squared_gradient_diagonal(theta, &batch.select(&mine)?)?, weight))
                    }
                }
            },
            DiagonalEstimator::ChapelleErhan { samples, seed } => Some((
                self.shard_chapelle_erhan_diagonal(theta, batch, shard, samples, seed)?,
                shard.share(),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::random_subset;

    #[test]
    fn random_subsets_are_distinct_sorted_and_change_with_the_draw() {
        assert_eq!(random_subset(10, 10, 1), None);
        assert_eq!(random_subset(10, 50, 1), None);
        let a = random_subset(1000, 100, 1).unwrap();
        let b = random_subset(1000, 100, 2).unwrap();
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && *a.last().unwrap() < 1000);
        assert_ne!(a, b);
        assert_eq!(a, random_subset(1000, 100, 1).unwrap());
        // Not the first cases: the whole batch is reached.
        assert!(*a.last().unwrap() > 500);
    }
}
