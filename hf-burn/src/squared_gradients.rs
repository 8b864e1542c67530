//! Martens' squared-gradient diagonal `(1/N) Σ_i g_i ⊙ g_i` of a whole batch from one
//! forward and one backward pass, for networks that report their parameter uses
//! through [`AffineTaps`] (see the [`taps`](crate::taps) module for the algebra).

use std::collections::HashMap;

use burn::module::{ModuleVisitor, Param, ParamId};
use burn::prelude::*;

use crate::backend::{lift, Inner};
use crate::batch::DataBatch;
use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::loss::MatchingLoss;
use crate::network::Network;
use crate::taps::{AffineTaps, Site};
use crate::vector::ParamVector;

/// Entries of the `[cases, fan_in, fan_out]` per-case gradients formed at once when a
/// weight is shared over several rows per case: bounds the memory of the batched matmul.
const PER_CASE_BLOCK: usize = 1 << 22;

/// The uses of one parameter, with `δ` read back from their probes.
struct Use<B: Backend> {
    /// `a`, `[cases, k, fan_in]` (weights only).
    input: Option<Tensor<B, 3>>,
    /// `δ`, `[cases, k, fan_out]`.
    delta: Tensor<B, 3>,
}

fn by_case<B: Backend>(t: Tensor<B, 2>, cases: usize) -> Tensor<B, 3> {
    let [rows, width] = t.dims();
    t.reshape([cases, rows / cases, width])
}

/// `Σ_i (Σ_t a_{i,t}ᵀ δ_{i,t})²` over the uses of a weight, `[fan_in, fan_out]`.
fn weight_squares<B: Backend>(uses: &[Use<B>]) -> Tensor<B, 2> {
    let a = Tensor::cat(
        uses.iter()
            .map(|u| u.input.clone().expect("weight uses carry inputs"))
            .collect(),
        1,
    );
    let d = Tensor::cat(uses.iter().map(|u| u.delta.clone()).collect(), 1);
    let [cases, k, fan_in] = a.dims();
    let fan_out = d.dims()[2];
    if k == 1 {
        // One row per case: g_i = a_iᵀ δ_i, so Σ_i g_i² = (a²)ᵀ (δ²).
        let a = a.reshape([cases, fan_in]).square();
        let d = d.reshape([cases, fan_out]).square();
        return a.transpose().matmul(d);
    }
    let block = (PER_CASE_BLOCK / (fan_in * fan_out).max(1)).clamp(1, cases);
    let mut sum: Option<Tensor<B, 2>> = None;
    for start in (0..cases).step_by(block) {
        let end = (start + block).min(cases);
        let ab = a.clone().slice([start..end, 0..k, 0..fan_in]);
        let db = d.clone().slice([start..end, 0..k, 0..fan_out]);
        let g = ab.swap_dims(1, 2).matmul(db); // [cases, fan_in, fan_out]
        let part = g.square().sum_dim(0).reshape([fan_in, fan_out]);
        sum = Some(match sum {
            Some(s) => s + part,
            None => part,
        });
    }
    sum.expect("a batch has at least one case")
}

/// `Σ_i (Σ_t δ_{i,t})²` over the uses of a vector added to rows, `[fan_out]`.
fn offset_squares<B: Backend>(uses: &[Use<B>]) -> Tensor<B, 1> {
    let d = Tensor::cat(uses.iter().map(|u| u.delta.clone()).collect(), 1);
    let [cases, _, width] = d.dims();
    d.sum_dim(1)
        .reshape([cases, width])
        .square()
        .sum_dim(0)
        .reshape([width])
}

/// A tapped forward pass: the outputs on the autodiff backend and the parameter uses.
pub(crate) type TappedPass<B> = (crate::network::Outputs<Inner<B>>, Vec<Site<Inner<B>>>);

/// The module's float parameters in visiting order: id and shape.
pub(crate) fn parameter_order<B: Backend, M: burn::module::Module<B>>(module: &M) -> Vec<(ParamId, Vec<usize>)> {
    struct Order(Vec<(ParamId, Vec<usize>)>);
    impl<B: Backend> ModuleVisitor<B> for Order {
        fn visit_float<const K: usize>(&mut self, param: &Param<Tensor<B, K>>) {
            self.0.push((param.id, param.lazy_shape().to_vec()));
        }
    }
    let mut order = Order(Vec::new());
    module.visit(&mut order);
    order.0
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> Evaluator<B, N, L, D> {
    /// The forward pass at `theta` on `batch` through the network's taps: the
    /// outputs and every reported parameter use, each with its probe; `None` when the
    /// network does not report its layers. θ is not a leaf: a backward pass from the
    /// outputs computes only the probes' gradients (the δ's), not θ's.
    ///
    /// # Errors
    /// Shape mismatches, as for the gradient.
    pub(crate) fn tapped_forward(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
    ) -> Result<Option<TappedPass<B>>> {
        self.check(theta)?;
        let mut taps = AffineTaps::<Inner<B>>::recording();
        let Some(out) = self.templates().forward_inner_with_taps(
            &lift(theta.tensor().clone()),
            lift(batch.input.clone()),
            &mut taps,
        )?
        else {
            return Ok(None);
        };
        crate::templates::check_outputs(&out.z.dims(), &batch.target.dims())?;
        Ok(Some((out, taps.into_sites())))
    }

    /// Martens' diagonal `(1/N) Σ_i g_i ⊙ g_i` over all `N` cases of `batch` in one
    /// forward and one backward pass (about the cost of one gradient), or `None` when
    /// the network does not report every parameter through
    /// [`Network::forward_with_taps`].
    ///
    /// # Errors
    /// Shape mismatches, as for the gradient.
    ///
    /// # References
    /// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §4.7.
    /// - I. Goodfellow, "Efficient per-example gradient computations", arXiv:1510.01799,
    ///   2015 (the per-layer outer-product form).
    pub fn one_pass_squared_gradient_diagonal(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
    ) -> Result<Option<ParamVector<B>>> {
        let cases = batch.len();
        let Some((out, sites)) = self.tapped_forward(theta, batch)? else {
            return Ok(None);
        };
        if sites.iter().any(|s| s.cases != cases) {
            return Ok(None);
        }
        let grads = self
            .loss()
            .per_case(out.z, lift(batch.target.clone()))
            .mean()
            .backward();

        let mut weights: HashMap<ParamId, Vec<Use<B>>> = HashMap::new();
        let mut offsets: HashMap<ParamId, Vec<Use<B>>> = HashMap::new();
        for site in sites {
            let delta = site
                .probe
                .grad(&grads)
                .unwrap_or_else(|| site.probe.inner().zeros_like());
            let delta = by_case(delta, cases);
            if let Some(id) = site.offset {
                offsets.entry(id).or_default().push(Use {
                    input: None,
                    delta: delta.clone(),
                });
            }
            if let (Some(id), Some(a)) = (site.weight, site.input) {
                weights.entry(id).or_default().push(Use {
                    input: Some(by_case(a.inner(), cases)),
                    delta,
                });
            }
        }

        let mut pieces = Vec::new();
        let order = parameter_order(self.templates().inner_template());
        let trainable = self.templates().layout().trainable();
        for ((id, shape), _) in order.into_iter().zip(trainable).filter(|(_, t)| **t) {
            let piece = match (weights.get(&id), offsets.get(&id)) {
                (Some(uses), None) if shape.len() == 2 => weight_squares(uses).reshape([shape[0] * shape[1]]),
                (None, Some(uses)) if shape.len() == 1 => offset_squares(uses),
                // Not reported, or used both ways: only the per-case loop is right.
                _ => return Ok(None),
            };
            pieces.push(piece);
        }
        // δ is of the batch mean, 1/N of each case's own gradient: g_i = N c_i, so
        // (1/N) Σ_i g_i² = N Σ_i c_i².
        let sum = Tensor::cat(pieces, 0).mul_scalar(cases as f64);
        Ok(Some(ParamVector::new(sum)))
    }
}
