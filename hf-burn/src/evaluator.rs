//! A network, its loss and its parameter layout on the three backends it runs on:
//! objective, gradient and the raw products that curvature operators combine.

use burn::prelude::*;

use crate::backend::{lift, scalar};
use crate::batch::DataBatch;
use crate::error::{catch_unsupported, Result};
use crate::jvp::{Jvp, JvpStrategy};
use crate::loss::MatchingLoss;
use crate::network::{Network, Outputs};
use crate::templates::{check_outputs, gather_gradient, Templates};
use crate::vector::ParamVector;

/// Objective, gradients and curvature building blocks for a network and a loss.
///
/// The objective is `(1/N) Σ_i L(z_i, t_i)` over the `N` cases of a batch.
#[derive(Debug, Clone)]
pub struct Evaluator<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> {
    templates: Templates<B, N, D>,
    loss: L,
    jvp: Jvp,
    network_products: bool,
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> Evaluator<B, N, L, D> {
    /// An evaluator computing `J v` in forward mode ([`Jvp::ForwardMode`]).
    pub fn new(network: N, loss: L, device: &B::Device) -> Result<Self> {
        Self::with_jvp(network, loss, Jvp::ForwardMode, device)
    }

    /// An evaluator with a chosen way of computing `J v` ([`Jvp`], or
    /// [`ForwardMode`](crate::ForwardMode) / [`DoubleBackward`](crate::DoubleBackward)).
    pub fn with_jvp(network: N, loss: L, jvp: impl Into<Jvp>, device: &B::Device) -> Result<Self> {
        Ok(Self {
            templates: Templates::new(network, device)?,
            loss,
            jvp: jvp.into(),
            network_products: false,
        })
    }

    /// Whether the curvature products use the network's own
    /// [`Network::jvp_then_vjp`] where it has one (`true`, in forward mode) or the
    /// generic path (`false`, the default). Opt in after measuring: the tanh RNN's
    /// hand-derived product costs about what forward mode costs (docs/BENCHMARKS.md),
    /// so the default stays with the path every network shares.
    pub fn with_network_products(mut self, enabled: bool) -> Self {
        self.network_products = enabled;
        self
    }

    /// How `J v` is computed.
    pub fn jvp_mode(&self) -> Jvp {
        self.jvp
    }

    /// The modules and layout.
    pub fn templates(&self) -> &Templates<B, N, D> {
        &self.templates
    }

    /// The loss.
    pub fn loss(&self) -> &L {
        &self.loss
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.templates.layout().len()
    }

    pub(crate) fn check(&self, theta: &ParamVector<B>) -> Result<()> {
        self.templates.layout().check(theta.tensor().dims()[0])
    }

    /// Network outputs on `B`.
    pub fn outputs(&self, theta: &ParamVector<B>, input: Tensor<B, D>) -> Result<Outputs<B>> {
        self.check(theta)?;
        self.templates.forward(theta.tensor(), input)
    }

    /// The mean loss on `batch`, evaluated without autodiff.
    pub fn objective(&self, theta: &ParamVector<B>, batch: &DataBatch<B, D>) -> Result<f64> {
        let out = self.outputs(theta, batch.input.clone())?;
        check_outputs(&out.z.dims(), &batch.target.dims())?;
        Ok(scalar(self.loss.per_case(out.z, batch.target.clone()).mean()))
    }

    /// The mean loss and its gradient on `batch`.
    pub fn gradient(&self, theta: &ParamVector<B>, batch: &DataBatch<B, D>) -> Result<(f64, ParamVector<B>)> {
        self.check(theta)?;
        let leaves = self.templates.leaves(theta.tensor())?;
        let out = self.templates.forward_leaves(&leaves, lift(batch.input.clone()))?;
        check_outputs(&out.z.dims(), &batch.target.dims())?;
        let loss = self.loss.per_case(out.z, lift(batch.target.clone())).mean();
        let grads = loss.backward();
        let value = scalar(loss.inner());
        let g = gather_gradient(&leaves, theta.tensor(), &grads);
        Ok((value, ParamVector::new(g)))
    }

    /// `J v` for the outputs at `theta`, and for the hidden states when `hidden` is set.
    pub fn jvp(
        &self,
        theta: &ParamVector<B>,
        v: &ParamVector<B>,
        input: &Tensor<B, D>,
        hidden: bool,
    ) -> Result<Outputs<B>> {
        self.check(theta)?;
        self.check(v)?;
        catch_unsupported(|| self.jvp.jvp(&self.templates, theta.tensor(), v.tensor(), input, hidden))
    }

    /// `Jᵀ w(J v)` at `theta` for a map `w` on the outputs' tangents: a Gauss-Newton
    /// product when `w` multiplies by the loss's output Hessian.
    pub fn jvp_then_vjp(
        &self,
        theta: &ParamVector<B>,
        v: &ParamVector<B>,
        input: &Tensor<B, D>,
        hidden: bool,
        weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
    ) -> Result<ParamVector<B>> {
        if self.network_products && self.jvp == Jvp::ForwardMode {
            if let Some(product) = self.network_jvp_then_vjp(theta, v, input, hidden, weight)? {
                return Ok(product);
            }
        }
        self.generic_jvp_then_vjp(theta, v, input, hidden, weight)
    }

    /// [`jvp_then_vjp`](Self::jvp_then_vjp) by the evaluator's strategy ([`Jvp`]) alone,
    /// whatever the network provides.
    pub fn generic_jvp_then_vjp(
        &self,
        theta: &ParamVector<B>,
        v: &ParamVector<B>,
        input: &Tensor<B, D>,
        hidden: bool,
        weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
    ) -> Result<ParamVector<B>> {
        self.check(theta)?;
        self.check(v)?;
        catch_unsupported(|| {
            self.jvp
                .jvp_then_vjp(&self.templates, theta.tensor(), v.tensor(), input, hidden, weight)
        })
        .map(ParamVector::new)
    }

    /// [`jvp_then_vjp`](Self::jvp_then_vjp) by the network's own
    /// [`Network::jvp_then_vjp`]; `None` for a network without one.
    pub fn network_jvp_then_vjp(
        &self,
        theta: &ParamVector<B>,
        v: &ParamVector<B>,
        input: &Tensor<B, D>,
        hidden: bool,
        weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
    ) -> Result<Option<ParamVector<B>>> {
        self.check(theta)?;
        self.check(v)?;
        Ok(self
            .templates
            .network_jvp_then_vjp(theta.tensor(), v.tensor(), input, hidden, weight)?
            .map(ParamVector::new))
    }

    /// `Jᵀ w = J_zᵀ w_z + J_hᵀ w_h` at `theta`: one forward and one backward pass.
    pub fn vjp(&self, theta: &ParamVector<B>, input: &Tensor<B, D>, w: &Outputs<B>) -> Result<ParamVector<B>> {
        self.check(theta)?;
        self.templates.vjp(theta.tensor(), input, w).map(ParamVector::new)
    }

    /// The exact Hessian-vector product `H v` of the mean loss on `batch`, by the
    /// evaluator's strategy (reverse over forward, or double backward).
    pub fn hvp(&self, theta: &ParamVector<B>, batch: &DataBatch<B, D>, v: &ParamVector<B>) -> Result<ParamVector<B>> {
        self.check(theta)?;
        self.check(v)?;
        catch_unsupported(|| {
            self.jvp
                .hvp(&self.templates, &self.loss, theta.tensor(), batch, v.tensor())
        })
        .map(ParamVector::new)
    }

    /// Per-case gradients `∂L_i/∂θ` (not divided by `N`), one backward pass each, for
    /// cases `range` of `batch`. For tests and diagonal estimates.
    pub fn per_case_gradients(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<ParamVector<B>>> {
        range
            .map(|i| {
                let (_, g) = self.gradient(theta, &batch.slice(i..i + 1))?;
                Ok(g)
            })
            .collect()
    }
}
