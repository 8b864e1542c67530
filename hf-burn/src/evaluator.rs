//! A network, its loss and its parameter layout on the three backends it runs on:
//! objective, gradient and the raw products that curvature operators combine.

use burn::prelude::*;

use std::sync::OnceLock;

use burn::module::{Module, ModuleMapper, Param};

use crate::backend::{lift, scalar, Inner, Outer};
use crate::batch::DataBatch;
use crate::dual::Dual;
use crate::error::{catch_unsupported, Error, Result};
use crate::jvp::{ForwardMode, JvpStrategy};
use crate::loss::MatchingLoss;
use crate::network::{Network, Outputs};
use crate::params::{load, ParamLayout};
use crate::vector::ParamVector;

/// The network's module on each backend an evaluation runs on, built on first use
/// (and its parameters materialized once, so that loading `θ` into a clone does not
/// run the initializer again); parameters are loaded from a flat vector for every
/// evaluation.
#[derive(Debug, Clone)]
pub struct Templates<B: Backend, N: Network<D>, const D: usize> {
    network: N,
    device: B::Device,
    base: N::Module<B>,
    inner: N::Module<Inner<B>>,
    outer: OnceLock<N::Module<Outer<B>>>,
    dual: OnceLock<N::Module<Dual<B>>>,
    dual_inner: OnceLock<N::Module<Dual<Inner<B>>>>,
    inner_dual: OnceLock<N::Module<Inner<Dual<B>>>>,
    layout: ParamLayout,
    /// The frozen tensors' values, the same in every backend's copy.
    frozen: Vec<TensorData>,
}

/// Initializes every lazy parameter of `module` now, once.
fn materialized<C: Backend, M: Module<C>>(module: M) -> M {
    struct Touch;
    impl<C: Backend> ModuleMapper<C> for Touch {
        fn map_float<const K: usize>(&mut self, param: Param<Tensor<C, K>>) -> Param<Tensor<C, K>> {
            param.map(|t| t)
        }
    }
    module.map(&mut Touch)
}

impl<B: Backend, N: Network<D>, const D: usize> Templates<B, N, D> {
    /// Builds the module on `B` and `Autodiff<B>` (the other levels on first use).
    ///
    /// # Errors
    /// [`Error::NoParameters`] for a network without float parameters.
    ///
    /// The trainable parameters are those that require a gradient on `Autodiff<B>`;
    /// the others (BatchNorm's running statistics, parameters marked not to require a
    /// gradient) keep the values `init` gave them on `Autodiff<B>`, on every backend.
    pub fn new(network: N, device: &B::Device) -> Result<Self> {
        let inner = materialized(network.init::<Inner<B>>(device));
        let layout = ParamLayout::of_trainable(&inner);
        if layout.is_empty() {
            return Err(Error::NoParameters);
        }
        let frozen = layout.frozen_values(&inner);
        let base = layout.with_frozen(materialized(network.init::<B>(device)), &frozen);
        Ok(Self {
            inner,
            frozen,
            outer: OnceLock::new(),
            dual: OnceLock::new(),
            dual_inner: OnceLock::new(),
            inner_dual: OnceLock::new(),
            device: device.clone(),
            base,
            layout,
            network,
        })
    }

    fn built<'a, C: Backend<Device = B::Device>>(&self, cell: &'a OnceLock<N::Module<C>>) -> &'a N::Module<C> {
        cell.get_or_init(|| {
            let module = materialized(self.network.init::<C>(&self.device));
            self.layout.with_frozen(module, &self.frozen)
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

    /// Forward pass on two levels of autodiff (double backward).
    pub fn forward_outer(&self, theta: &Tensor<Outer<B>, 1>, input: Tensor<Outer<B>, D>) -> Result<Outputs<Outer<B>>> {
        let module = load(self.built(&self.outer).clone(), &self.layout, theta)?;
        Ok(self.network.forward(&module, input))
    }

    /// Forward pass on dual numbers over `B`: outputs and their tangents, no graph.
    pub fn forward_dual(&self, theta: &Tensor<Dual<B>, 1>, input: Tensor<Dual<B>, D>) -> Result<Outputs<Dual<B>>> {
        let module = load(self.built(&self.dual).clone(), &self.layout, theta)?;
        Ok(self.network.forward(&module, input))
    }

    /// Forward pass on dual numbers over autodiff: the primal records its graph, the
    /// tangent does not (forward-mode Gauss-Newton products).
    pub fn forward_dual_inner(
        &self,
        theta: &Tensor<Dual<Inner<B>>, 1>,
        input: Tensor<Dual<Inner<B>>, D>,
    ) -> Result<Outputs<Dual<Inner<B>>>> {
        let module = load(self.built(&self.dual_inner).clone(), &self.layout, theta)?;
        Ok(self.network.forward(&module, input))
    }

    /// Forward pass on autodiff over dual numbers (Hessian products, reverse over forward).
    pub fn forward_inner_dual(
        &self,
        theta: &Tensor<Inner<Dual<B>>, 1>,
        input: Tensor<Inner<Dual<B>>, D>,
    ) -> Result<Outputs<Inner<Dual<B>>>> {
        let module = load(self.built(&self.inner_dual).clone(), &self.layout, theta)?;
        Ok(self.network.forward(&module, input))
    }

    /// `Jᵀ w = J_zᵀ w_z + J_hᵀ w_h` at `theta`: a forward and a backward pass.
    pub fn vjp(&self, theta: &Tensor<B, 1>, input: &Tensor<B, D>, w: &Outputs<B>) -> Result<Tensor<B, 1>> {
        let theta_i = lift(theta.clone()).require_grad();
        let out = self.forward_inner(&theta_i, lift(input.clone()))?;
        Ok(backward_onto(&theta_i, out, w))
    }
}

/// Outputs and targets must have the same shape.
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

/// `∂/∂θ (⟨z, w_z⟩ + ⟨h, w_h⟩)`: one backward pass from outputs that hold their graph.
pub(crate) fn backward_onto<B: Backend>(
    theta: &Tensor<Inner<B>, 1>,
    out: Outputs<Inner<B>>,
    w: &Outputs<B>,
) -> Tensor<B, 1> {
    let mut s = (out.z * lift(w.z.clone())).sum();
    if let (Some(h), Some(wh)) = (out.hidden, &w.hidden) {
        s = s + (h * lift(wh.clone())).sum();
    }
    theta
        .grad(&s.backward())
        .unwrap_or_else(|| theta.clone().inner().zeros_like())
}

/// Objective, gradients and curvature building blocks for a network and a loss.
///
/// The objective is `(1/N) Σ_i L(z_i, t_i)` over the `N` cases of a batch.
#[derive(Debug, Clone)]
pub struct Evaluator<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize, J: JvpStrategy = ForwardMode> {
    templates: Templates<B, N, D>,
    loss: L,
    jvp: J,
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> Evaluator<B, N, L, D> {
    /// An evaluator computing `J v` in forward mode ([`ForwardMode`]).
    pub fn new(network: N, loss: L, device: &B::Device) -> Result<Self> {
        Self::with_jvp(network, loss, ForwardMode, device)
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
        let theta_i = lift(theta.tensor().clone()).require_grad();
        let out = self.templates.forward_inner(&theta_i, lift(batch.input.clone()))?;
        check_outputs(&out.z.dims(), &batch.target.dims())?;
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
        self.check(theta)?;
        self.check(v)?;
        catch_unsupported(|| {
            self.jvp
                .jvp_then_vjp(&self.templates, theta.tensor(), v.tensor(), input, hidden, weight)
        })
        .map(ParamVector::new)
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
