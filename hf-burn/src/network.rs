//! What a network must offer to be trained with Hessian-free optimization.

use burn::module::Module;
use burn::prelude::*;

use crate::taps::AffineTaps;

/// The outputs of a network on a batch.
#[derive(Debug, Clone)]
pub struct Outputs<B: Backend> {
    /// Outputs before the output nonlinearity, `[cases, outputs]`: the `z` of the
    /// matching loss (the loss applies the nonlinearity itself).
    pub z: Tensor<B, 2>,
    /// Hidden states for structural damping, `[cases, units]` (a recurrent network
    /// flattens time into the first axis); `None` for networks without them.
    pub hidden: Option<Tensor<B, 2>>,
}

impl<B: Backend> Outputs<B> {
    /// Outputs without hidden states.
    pub fn new(z: Tensor<B, 2>) -> Self {
        Self { z, hidden: None }
    }
}

/// A network architecture, usable on every backend: the plain one (objective,
/// held-out error), one level of autodiff (gradients) and two (curvature products).
///
/// `D` is the rank of the input batch: 2 for `[cases, features]`, 3 for
/// `[cases, time, features]`. The architecture is a value (layer sizes and the
/// like); the module holds the parameters. The optimizer replaces every float
/// parameter of the module built by [`init`](Self::init), so how `init` fills them
/// does not matter beyond their shapes.
///
/// # Example
/// A user's own `#[derive(Module)]` network:
/// ```
/// use burn::nn::{Linear, LinearConfig};
/// use burn::prelude::*;
/// use hf_burn::{Network, Outputs};
///
/// #[derive(Module, Debug)]
/// pub struct TwoLayer<B: Backend> {
///     hidden: Linear<B>,
///     out: Linear<B>,
/// }
///
/// #[derive(Clone, Debug)]
/// pub struct TwoLayerSpec { pub inputs: usize, pub hidden: usize, pub outputs: usize }
///
/// impl Network<2> for TwoLayerSpec {
///     type Module<B: Backend> = TwoLayer<B>;
///
///     fn init<B: Backend>(&self, device: &B::Device) -> TwoLayer<B> {
///         TwoLayer {
///             hidden: LinearConfig::new(self.inputs, self.hidden).init(device),
///             out: LinearConfig::new(self.hidden, self.outputs).init(device),
///         }
///     }
///
///     fn forward<B: Backend>(&self, m: &TwoLayer<B>, x: Tensor<B, 2>) -> Outputs<B> {
///         // burn's own layers as they are: forward mode (the default) differentiates
///         // them. Only the DoubleBackward cross-check needs hf_burn::nn::linear.
///         Outputs::new(m.out.forward(m.hidden.forward(x).tanh()))
///     }
/// }
/// ```
pub trait Network<const D: usize>: Clone + Send + Sync + 'static {
    /// The module type on backend `B`.
    type Module<B: Backend>: Module<B>;

    /// Builds the module on `B` (parameters are overwritten by the optimizer).
    fn init<B: Backend>(&self, device: &B::Device) -> Self::Module<B>;

    /// Runs the network on a batch.
    fn forward<B: Backend>(&self, module: &Self::Module<B>, input: Tensor<B, D>) -> Outputs<B>;

    /// Optional: the same forward pass with every use of a trainable parameter
    /// computed through `taps` (see [`AffineTaps`]). A network that implements it gets
    /// Martens' squared-gradient diagonal for a whole batch in one backward pass
    /// ([`Evaluator::squared_gradient_diagonal`](crate::Evaluator::squared_gradient_diagonal));
    /// the default, `None`, falls back to one backward pass per case.
    ///
    /// Write the forward pass once, generic over the recorder, and call it from
    /// both methods: `forward` with [`AffineTaps::off`], this one with the recorder
    /// given. A parameter used outside `taps` makes the estimator fall back too.
    fn forward_with_taps<B: Backend>(
        &self,
        module: &Self::Module<B>,
        input: Tensor<B, D>,
        taps: &mut AffineTaps<B>,
    ) -> Option<Outputs<B>> {
        let _ = (module, input, taps);
        None
    }

    /// Optional: the curvature products' `Jᵀ w(J v)` computed by the network itself (a
    /// hand-derived R-operator and backward pass, as Martens & Sutskever's code has
    /// for its RNNs), used in place of the generic forward mode
    /// ([`ForwardMode`](crate::ForwardMode)) for the Gauss-Newton and Fisher products
    /// by an evaluator built
    /// [`with_network_products(true)`](crate::Evaluator::with_network_products).
    ///
    /// `module` holds `θ`; `tangent` holds `v` in the same parameters (its frozen
    /// parameters zero). Compute `J v` for the outputs, and for the hidden states
    /// when `hidden` is set (in the order [`forward`](Self::forward) returns them),
    /// pass them to `weight` once, and return `Jᵀ w` for the weighted tangents `w` it
    /// gives back, as a module of the same structure (each parameter holding its
    /// part; frozen parameters are ignored). The default, `None`, leaves the product
    /// to the generic path.
    ///
    /// [`check_curvature`](crate::check_curvature) compares an implementation with the
    /// generic forward mode ([`CurvatureCheck::network_product`](crate::CurvatureCheck::network_product))
    /// as well as with finite differences.
    fn jvp_then_vjp<B: Backend>(
        &self,
        module: &Self::Module<B>,
        tangent: &Self::Module<B>,
        input: Tensor<B, D>,
        hidden: bool,
        weight: &dyn Fn(Outputs<B>) -> Outputs<B>,
    ) -> Option<Self::Module<B>> {
        let _ = (module, tangent, input, hidden, weight);
        None
    }
}
