//! [`Templates`]: a network's module on each backend level an evaluation runs on
//! (plain, autodiff, dual, autodiff over dual), with `θ` loaded into a clone per
//! evaluation; and the two passes every way of differentiating shares.

use burn::prelude::*;

use std::sync::OnceLock;

use burn::module::{Module, ModuleMapper, Param};

use crate::backend::{lift, Inner, Outer};
use crate::dual::Dual;
use crate::error::{Error, Result};
use crate::network::{Network, Outputs};
use crate::params::{cut, load, load_pieces, ParamLayout};

/// The network's module on each backend an evaluation runs on, built on first use
/// (and its parameters materialized once, so that loading `θ` into a clone does not
/// run the initializer again); parameters are loaded from a flat vector for every
/// evaluation.
#[derive(Debug, Clone)]
pub struct Templates<B: Backend, N: Network<D>, const D: usize> {
    network: N,
    device: B::Device,
    base: N::Module<B>,
    /// `base` with its frozen parameters zero: tangents load into it.
    tangent_base: OnceLock<N::Module<B>>,
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
            tangent_base: OnceLock::new(),
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

    /// Forward pass on autodiff over dual numbers (Hessian products, reverse over forward).
    pub fn forward_inner_dual(
        &self,
        theta: &Tensor<Inner<Dual<B>>, 1>,
        input: Tensor<Inner<Dual<B>>, D>,
    ) -> Result<Outputs<Inner<Dual<B>>>> {
        let module = load(self.built(&self.inner_dual).clone(), &self.layout, theta)?;
        Ok(self.network.forward(&module, input))
    }

    /// `θ` as one autodiff leaf per trainable parameter (pieces of `theta`, no copies):
    /// a backward pass then writes one gradient per parameter, where differentiating
    /// with respect to `θ` itself would write a `θ`-sized, zero-padded one per
    /// parameter (burn's slice backward) and sum them.
    pub fn leaves(&self, theta: &Tensor<B, 1>) -> Result<Vec<Tensor<Inner<B>, 1>>> {
        Ok(cut(&self.layout, theta)?
            .into_iter()
            .map(|piece| lift(piece).require_grad())
            .collect())
    }

    /// Forward pass on one level of autodiff with the parameters given as [`leaves`](Self::leaves).
    pub fn forward_leaves(
        &self,
        leaves: &[Tensor<Inner<B>, 1>],
        input: Tensor<Inner<B>, D>,
    ) -> Result<Outputs<Inner<B>>> {
        let module = load_pieces(self.inner.clone(), &self.layout, leaves.to_vec())?;
        Ok(self.network.forward(&module, input))
    }

    /// Forward pass on dual numbers over autodiff, the parameters given as leaves with
    /// their tangents (forward-mode Gauss-Newton products).
    pub fn forward_dual_leaves(
        &self,
        pieces: Vec<Tensor<Dual<Inner<B>>, 1>>,
        input: Tensor<Dual<Inner<B>>, D>,
    ) -> Result<Outputs<Dual<Inner<B>>>> {
        let module = load_pieces(self.built(&self.dual_inner).clone(), &self.layout, pieces)?;
        Ok(self.network.forward(&module, input))
    }

    /// `Jᵀ w(J v)` at `theta` by the network's own [`Network::jvp_then_vjp`], or `None`
    /// when the network leaves it to the generic path.
    ///
    /// # Errors
    /// [`Error::ParameterShape`] if `theta`, `v` or the module returned do not fit the layout.
    pub fn network_jvp_then_vjp(
        &self,
        theta: &Tensor<B, 1>,
        v: &Tensor<B, 1>,
        input: &Tensor<B, D>,
        hidden: bool,
        weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
    ) -> Result<Option<Tensor<B, 1>>> {
        let module = self.module(theta)?;
        let zero = self
            .tangent_base
            .get_or_init(|| self.layout.with_frozen_zero(self.base.clone()));
        let tangent = load(zero.clone(), &self.layout, v)?;
        match self
            .network
            .jvp_then_vjp(&module, &tangent, input.clone(), hidden, weight)
        {
            Some(product) => self.layout.gather(&product).map(Some),
            None => Ok(None),
        }
    }

    /// `Jᵀ w = J_zᵀ w_z + J_hᵀ w_h` at `theta`: a forward and a backward pass.
    pub fn vjp(&self, theta: &Tensor<B, 1>, input: &Tensor<B, D>, w: &Outputs<B>) -> Result<Tensor<B, 1>> {
        let leaves = self.leaves(theta)?;
        let out = self.forward_leaves(&leaves, lift(input.clone()))?;
        Ok(backward_onto(&leaves, theta, out, w))
    }
}

/// The flat gradient: every leaf's gradient in `grads` (zeros where a parameter did
/// not take part), joined in one copy; `theta` gives the shape when there are none.
pub(crate) fn gather_gradient<B: Backend>(
    leaves: &[Tensor<Inner<B>, 1>],
    theta: &Tensor<B, 1>,
    grads: &<Inner<B> as burn::tensor::backend::AutodiffBackend>::Gradients,
) -> Tensor<B, 1> {
    if leaves.is_empty() {
        return theta.zeros_like();
    }
    Tensor::cat(
        leaves
            .iter()
            .map(|leaf| leaf.grad(grads).unwrap_or_else(|| leaf.clone().inner().zeros_like()))
            .collect(),
        0,
    )
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

/// `∂/∂θ (⟨z, w_z⟩ + ⟨h, w_h⟩)`: one backward pass from outputs that hold their graph,
/// onto `θ`'s [leaves](Templates::leaves).
pub(crate) fn backward_onto<B: Backend>(
    leaves: &[Tensor<Inner<B>, 1>],
    theta: &Tensor<B, 1>,
    out: Outputs<Inner<B>>,
    w: &Outputs<B>,
) -> Tensor<B, 1> {
    let mut s = (out.z * lift(w.z.clone())).sum();
    if let (Some(h), Some(wh)) = (out.hidden, &w.hidden) {
        s = s + (h * lift(wh.clone())).sum();
    }
    gather_gradient(leaves, theta, &s.backward())
}
