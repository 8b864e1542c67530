//! A network, its loss and its parameter layout on the three backends it runs on:
//! objective, gradient and the raw products that curvature operators combine.

use burn::prelude::*;

use crate::backend::{lift, lift2, scalar, Inner, Outer};
use crate::batch::DataBatch;
use crate::error::{catch_double_backward, Error, Result};
use crate::jvp::{DoubleBackward, JvpStrategy};
use crate::loss::MatchingLoss;
use crate::network::{Network, Outputs};
use crate::params::{load, ParamLayout};
use crate::vector::ParamVector;

/// The network's module built once on each backend level; parameters are loaded
/// from a flat vector for every evaluation.
#[derive(Debug, Clone)]
pub struct Templates<B: Backend, N: Network<D>, const D: usize> {
    network: N,
    base: N::Module<B>,
    inner: N::Module<Inner<B>>,
    outer: N::Module<Outer<B>>,
    layout: ParamLayout,
}

impl<B: Backend, N: Network<D>, const D: usize> Templates<B, N, D> {
    /// Builds the module on `B`, `Autodiff<B>` and `Autodiff<Autodiff<B>>`.
    ///
    /// # Errors
    /// [`Error::NoParameters`] for a network without float parameters.
    pub fn new(network: N, device: &B::Device) -> Result<Self> {
        let base = network.init::<B>(device);
        let layout = ParamLayout::of(&base);
        if layout.is_empty() {
            return Err(Error::NoParameters);
        }
        Ok(Self {
            inner: network.init::<Inner<B>>(device),
            outer: network.init::<Outer<B>>(device),
            base,
            layout,
            network,
        })
    }

    /// The parameter layout.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// The architecture.
    pub fn network(&self) -> &N {
        &self.network
    }

    /// The module on `B` with parameters `theta`.
    ///
    /// # Errors
    /// [`Error::ParameterShape`] if `theta` does not fit the layout.
    pub fn module(&self, theta: &Tensor<B, 1>) -> Result<N::Module<B>> {
        load(self.base.clone(), &self.layout, theta)
    }

    /// The module on `Autodiff<B>` with parameters `theta`, each parameter its own leaf
    /// of the graph (as burn's first-order optimizers expect).
    ///
    /// # Errors
    /// [`Error::ParameterShape`] if `theta` does not fit the layout.
    pub fn leaf_module(&self, theta: &Tensor<B, 1>) -> Result<N::Module<Inner<B>>> {
        struct Leaves;
        impl<C: burn::tensor::backend::AutodiffBackend> burn::module::ModuleMapper<C> for Leaves {
            fn map_float<const K: usize>(
                &mut self,
                param: burn::module::Param<Tensor<C, K>>,
            ) -> burn::module::Param<Tensor<C, K>> {
                param.map(|t| t.detach().require_grad())
            }
        }
        let module = load(self.inner.clone(), &self.layout, &lift(theta.clone()))?;
        Ok(burn::module::Module::map(module, &mut Leaves))
    }

    /// Forward pass on `B` (no autodiff graph).
    pub fn forward(&self, theta: &Tensor<B, 1>, input: Tensor<B, D>) -> Result<Outputs<B>> {
        Ok(self.network.forward(&self.module(theta)?, input))
    }

    /// Forward pass on one level of autodiff, with `theta` as given (a leaf or not).
    pub fn forward_inner(&self, theta: &Tensor<Inner<B>, 1>, input: Tensor<Inner<B>, D>) -> Result<Outputs<Inner<B>>> {
        let module = load(self.inner.clone(), &self.layout, theta)?;
        Ok(self.network.forward(&module, input))
    }

    /// Forward pass on one level of autodiff with the network's parameter uses
    /// reported to `taps` (`None`: the network does not report them).
    pub fn forward_inner_with_taps(
        &self,
        theta: &Tensor<Inner<B>, 1>,
        input: Tensor<Inner<B>, D>,
        taps: &mut crate::AffineTaps<Inner<B>>,
    ) -> Result<Option<Outputs<Inner<B>>>> {
        let module = load(self.inner.clone(), &self.layout, theta)?;
        Ok(self.network.forward_with_taps(&module, input, taps))
    }

    /// The module on one level of autodiff as built (its parameter ids are those of
    /// every module loaded from it).
    pub(crate) fn inner_template(&self) -> &N::Module<Inner<B>> {
        &self.inner
    }

    /// Forward pass on two levels of autodiff.
    pub fn forward_outer(&self, theta: &Tensor<Outer<B>, 1>, input: Tensor<Outer<B>, D>) -> Result<Outputs<Outer<B>>> {
        let module = load(self.outer.clone(), &self.layout, theta)?;
        Ok(self.network.forward(&module, input))
    }
}

/// Objective, gradients and curvature building blocks for a network and a loss.
///
/// The objective is `(1/N) Σ_i L(z_i, t_i)` over the `N` cases of a batch.
#[derive(Debug, Clone)]
pub struct Evaluator<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize, J: JvpStrategy = DoubleBackward> {
    templates: Templates<B, N, D>,
    loss: L,
    jvp: J,
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> Evaluator<B, N, L, D> {
    /// An evaluator computing `J v` by double backward.
    pub fn new(network: N, loss: L, device: &B::Device) -> Result<Self> {
        Self::with_jvp(network, loss, DoubleBackward, device)
    }
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize, J: JvpStrategy> Evaluator<B, N, L, D, J> {
    /// An evaluator with a chosen way of computing `J v`.
    pub fn with_jvp(network: N, loss: L, jvp: J, device: &B::Device) -> Result<Self> {
        Ok(Self {
            templates: Templates::new(network, device)?,
            loss,
            jvp,
        })
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
        self.templates.layout.len()
    }

    pub(crate) fn check(&self, theta: &ParamVector<B>) -> Result<()> {
        self.templates.layout.check(theta.tensor().dims()[0])
    }

    pub(crate) fn check_outputs(z: &[usize], t: &[usize]) -> Result<()> {
        if z == t {
            Ok(())
        } else {
            Err(Error::OutputShape {
                outputs: z.to_vec(),
                targets: t.to_vec(),
            })
        }
    }

    /// Network outputs on `B`.
    pub fn outputs(&self, theta: &ParamVector<B>, input: Tensor<B, D>) -> Result<Outputs<B>> {
        self.check(theta)?;
        self.templates.forward(theta.tensor(), input)
    }

    /// The mean loss on `batch`, evaluated without autodiff.
    pub fn objective(&self, theta: &ParamVector<B>, batch: &DataBatch<B, D>) -> Result<f64> {
        let out = self.outputs(theta, batch.input.clone())?;
        Self::check_outputs(&out.z.dims(), &batch.target.dims())?;
        Ok(scalar(self.loss.per_case(out.z, batch.target.clone()).mean()))
    }

    /// The mean loss and its gradient on `batch`.
    pub fn gradient(&self, theta: &ParamVector<B>, batch: &DataBatch<B, D>) -> Result<(f64, ParamVector<B>)> {
        self.check(theta)?;
        let theta_i = lift(theta.tensor().clone()).require_grad();
        let out = self.templates.forward_inner(&theta_i, lift(batch.input.clone()))?;
        Self::check_outputs(&out.z.dims(), &batch.target.dims())?;
        let loss = self.loss.per_case(out.z, lift(batch.target.clone())).mean();
        let grads = loss.backward();
        let value = scalar(loss.inner());
        let g = theta_i.grad(&grads).unwrap_or_else(|| theta.tensor().zeros_like());
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
        catch_double_backward(|| self.jvp.jvp(&self.templates, theta.tensor(), v.tensor(), input, hidden))
    }

    /// `Jᵀ w = J_zᵀ w_z + J_hᵀ w_h` at `theta`: one backward pass.
    pub fn vjp(&self, theta: &ParamVector<B>, input: &Tensor<B, D>, w: &Outputs<B>) -> Result<ParamVector<B>> {
        self.check(theta)?;
        let theta_i = lift(theta.tensor().clone()).require_grad();
        let out = self.templates.forward_inner(&theta_i, lift(input.clone()))?;
        let mut s = (out.z * lift(w.z.clone())).sum();
        if let (Some(h), Some(wh)) = (out.hidden, &w.hidden) {
            s = s + (h * lift(wh.clone())).sum();
        }
        let g = theta_i
            .grad(&s.backward())
            .unwrap_or_else(|| theta.tensor().zeros_like());
        Ok(ParamVector::new(g))
    }

    /// The exact Hessian-vector product `H v` of the mean loss on `batch`, by double
    /// backward: `H v = ∂/∂θ ⟨∇f(θ), v⟩`.
    pub fn hvp(&self, theta: &ParamVector<B>, batch: &DataBatch<B, D>, v: &ParamVector<B>) -> Result<ParamVector<B>> {
        self.check(theta)?;
        self.check(v)?;
        catch_double_backward(|| self.hvp_unchecked(theta, batch, v))
    }

    fn hvp_unchecked(
        &self,
        theta: &ParamVector<B>,
        batch: &DataBatch<B, D>,
        v: &ParamVector<B>,
    ) -> Result<ParamVector<B>> {
        let theta_i = lift(theta.tensor().clone()).require_grad();
        let theta_o: Tensor<Outer<B>, 1> = Tensor::from_inner(theta_i.clone()).require_grad();
        let out = self.templates.forward_outer(&theta_o, lift2(batch.input.clone()))?;
        Self::check_outputs(&out.z.dims(), &batch.target.dims())?;
        let loss = self.loss.per_case(out.z, lift2(batch.target.clone())).mean();
        let zeros = || ParamVector::new(theta.tensor().zeros_like());
        let Some(g) = theta_o.grad(&loss.backward()) else {
            return Ok(zeros());
        };
        let hv = theta_i.grad(&(g * lift(v.tensor().clone())).sum().backward());
        Ok(hv.map(ParamVector::new).unwrap_or_else(zeros))
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
