//! The Kronecker factors `A ⊗ G` of each affine layer's curvature block (K-FAC) from
//! one tapped forward pass and one backward pass, for networks that report their
//! layers through [`AffineTaps`](crate::taps::AffineTaps) (see [`hf_core::kronecker`] for the algebra).

use std::collections::HashMap;

use burn::module::ParamId;
use burn::prelude::*;
use hf_core::{KroneckerFactor, SplitMix64};

use crate::backend::{lift, tensor_from_f64};
use crate::batch::DataBatch;
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::loss::MatchingLoss;
use crate::network::Network;
use crate::shard::Shard;
use crate::squared_gradients::parameter_order;
use crate::vector::ParamVector;

/// A `[rows, cols]` tensor on the host, row-major.
fn host<B: Backend>(t: Tensor<B, 2>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> Evaluator<B, N, L, D> {
    /// The Kronecker factors of every affine layer of the network on `batch`: `A`
    /// from the layer's inputs (with a column of ones for its bias) and `G` from
    /// vectors `δ = J_yᵀ S v` back-propagated to its outputs, `S Sᵀ = H_L` per case
    /// and `v` random signs drawn from `seed`, so that `E[δ δᵀ]` is the Gauss-Newton
    /// block's output factor (one sample per case, as K-FAC draws one target). One
    /// forward pass through [`Network::forward_with_taps`] and one backward pass.
    ///
    /// Only layers whose weight is used once, on one row per case, get factors; a
    /// weight shared over time steps (an RNN's) or used twice does not (a
    /// preconditioner falls back to another rule there). `None` when the network does
    /// not report its layers.
    ///
    /// # Errors
    /// Shape mismatches, as for the gradient.
    ///
    /// # References
    /// - J. Martens and R. Grosse, "Optimizing neural networks with Kronecker-factored
    ///   approximate curvature", ICML 2015, §3 and §5.
    pub fn kronecker_factors(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
        seed: u64,
    ) -> Result<Option<Vec<KroneckerFactor>>> {
        self.shard_kronecker_factors(theta, batch, Shard::whole(batch.len()), seed)
    }

    /// [`kronecker_factors`](Self::kronecker_factors) on `batch`, the `shard` of a
    /// larger batch held by one worker of a data-parallel run: means over the shard,
    /// with the signs the whole batch draws for these cases, so that the shares'
    /// weighted sum over the workers is one worker's factors on the whole batch.
    pub fn shard_kronecker_factors(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
        shard: Shard,
        seed: u64,
    ) -> Result<Option<Vec<KroneckerFactor>>> {
        let cases = batch.len();
        let Some((out, sites)) = self.tapped_forward(theta, batch)? else {
            return Ok(None);
        };
        let z = out.z;
        let dims = z.dims();
        let plain = z.clone().inner();
        let v = tensor_from_f64::<B, 2>(
            shard.signs(&mut SplitMix64::new(seed), dims[0] * dims[1] / cases),
            dims,
            &plain.device(),
            plain.dtype(),
        );
        let u = self.loss().hessian_sqrt_product(plain, v);
        // Σ_i ⟨z_i, u_i⟩: the probes' gradients are the δ_i themselves (no scalar in
        // the backward pass, which burn may round through f32).
        let grads = (z * lift(u)).sum().backward();

        let mut uses: HashMap<ParamId, usize> = HashMap::new();
        for s in &sites {
            for id in s.weight.iter().chain(s.offset.iter()) {
                *uses.entry(*id).or_default() += 1;
            }
        }
        // Offsets of the trainable parameters in θ.
        let mut offsets: HashMap<ParamId, (usize, Vec<usize>)> = HashMap::new();
        let mut at = 0;
        let order = parameter_order(self.templates().inner_template());
        for ((id, shape), _) in order
            .into_iter()
            .zip(self.templates().layout().trainable())
            .filter(|(_, t)| **t)
        {
            let len = shape.iter().product::<usize>();
            offsets.insert(id, (at, shape));
            at += len;
        }

        let mut factors = Vec::new();
        for site in sites {
            let (Some(w), Some(a)) = (site.weight, site.input.as_ref()) else {
                continue;
            };
            let once = |id: &ParamId| uses.get(id) == Some(&1);
            let [rows, fan_in] = a.dims();
            if rows != cases || site.cases != cases || !once(&w) {
                continue;
            }
            let Some((weight, shape)) = offsets.get(&w) else {
                continue;
            };
            let fan_out = shape.get(1).copied().unwrap_or(0);
            if shape.len() != 2 || shape[0] != fan_in {
                continue;
            }
            let bias = site
                .offset
                .filter(once)
                .and_then(|b| offsets.get(&b))
                .filter(|(_, s)| s.as_slice() == [fan_out])
                .map(|(o, _)| *o);
            let a = a.clone().inner();
            let a = match bias {
                Some(_) => Tensor::cat(vec![a.clone(), a.ones_like().slice([0..cases, 0..1])], 1),
                None => a,
            };
            let delta = site
                .probe
                .grad(&grads)
                .unwrap_or_else(|| site.probe.inner().zeros_like());
            let n = cases as f64;
            let input = a.clone().transpose().matmul(a).div_scalar(n);
            let output = delta.clone().transpose().matmul(delta).div_scalar(n);
            factors.push(KroneckerFactor {
                weight: *weight,
                bias,
                fan_in,
                fan_out,
                input: host(input),
                output: host(output),
            });
        }
        Ok(Some(factors))
    }
}
