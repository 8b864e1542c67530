//! Forward-mode differentiation for burn: the [`Dual`] backend decorator.
//!
//! # Design
//! `Dual<B>` is a burn 0.21 backend whose float tensor ([`DualTensor`]) carries a primal
//! value and an optional tangent, both tensors of `B`. Every float operation computes
//! its primal with `B` and pushes the tangent through its derivative rule, so running
//! any burn code on `Dual<B>` with the parameters' tangent set to `v` yields, next to
//! the outputs `z`, the directional derivative `J v` — in one pass, at about the cost
//! of a second forward pass. A missing tangent means zero and costs nothing, which is
//! what keeps the inputs, the targets and every constant free.
//!
//! Two compositions give the curvature products of Hessian-free optimization:
//! - `Dual<Autodiff<B>>`, forward mode on top of reverse mode: the primal is an
//!   autodiff tensor whose graph is recorded as usual, while the tangent arithmetic
//!   runs on detached primals (`float_detach`), so the graph holds the forward pass
//!   once. One pass gives `z` with its graph and `J v`; one backward pass from `z`
//!   gives `Jᵀ(H_L J v)`: a Gauss-Newton product is a dual forward plus a backward.
//! - `Autodiff<Dual<B>>`: reverse over forward. burn-autodiff's backward pass runs on
//!   dual tensors, so the gradient's tangent is `H v` (Pearlmutter's R-operator), for
//!   every operation that has a tangent rule, fused module operations included.
//!
//! Integer and bool tensors pass through to `B` unchanged (they carry no derivative);
//! quantized tensors are refused with a message (no network here is quantized).
//! burn's fused module operations (`linear`, convolutions, pooling, embedding,
//! interpolation) get rules of their own, so `burn::nn` layers run on `B`'s kernels;
//! composite operations with a default implementation in burn (layer norm, softmax,
//! GELU, attention) are differentiated through the operations they are built from.
//!
//! # Example
//! `J v` of `x ↦ tanh(x W)` with respect to `W`, in direction `V`:
//! ```
//! use burn::backend::NdArray;
//! use burn::prelude::*;
//! use hf_burn::dual::{self, Dual};
//!
//! type B = NdArray<f64>;
//! let device = Default::default();
//! let x = Tensor::<B, 2>::from_floats([[1.0, 2.0]], &device);
//! let w = Tensor::<B, 2>::from_floats([[0.1], [0.2]], &device);
//! let v = Tensor::<B, 2>::from_floats([[1.0], [0.0]], &device);
//!
//! let y = dual::constant(x).matmul(dual::with_tangent(w, v)).tanh();
//! let jv = dual::tangent(&y).expect("y depends on w");
//! // d/dW tanh(x W) · V = (1 − tanh²(0.5)) · 1.0
//! let expected = 1.0 - 0.5f64.tanh().powi(2);
//! assert!((jv.into_scalar() - expected).abs() < 1e-6);
//! ```
//!
//! # References
//! - R. E. Wengert, "A simple automatic derivative evaluation program", CACM, 1964.
//! - B. A. Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation, 1994.
//! - N. N. Schraudolph, "Fast curvature matrix-vector products for second-order
//!   gradient descent", Neural Computation, 2002.

mod activation;
mod backend;
mod bool_tensor;
mod float;
mod int_tensor;
mod module;
mod qtensor;
mod rules;

pub(crate) use rules::NO_TANGENT_RULE;

use core::marker::PhantomData;

use burn::prelude::*;
use burn::tensor::{DType, Shape, TensorMetadata, TensorPrimitive};

/// Forward-mode differentiation over any burn backend `B` (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default)]
pub struct Dual<B> {
    _b: PhantomData<B>,
}

/// A float tensor of [`Dual<B>`]: a primal value and an optional tangent of the same
/// shape and dtype (`None` means a zero tangent).
#[derive(Debug, Clone)]
pub struct DualTensor<B: Backend> {
    /// The value.
    pub primal: B::FloatTensorPrimitive,
    /// The directional derivative of the value; `None` is zero.
    pub tangent: Option<B::FloatTensorPrimitive>,
}

impl<B: Backend> DualTensor<B> {
    /// A tensor with a zero tangent.
    pub fn constant(primal: B::FloatTensorPrimitive) -> Self {
        Self { primal, tangent: None }
    }

    /// A tensor with the given tangent.
    pub fn new(primal: B::FloatTensorPrimitive, tangent: Option<B::FloatTensorPrimitive>) -> Self {
        Self { primal, tangent }
    }
}

impl<B: Backend> TensorMetadata for DualTensor<B> {
    fn dtype(&self) -> DType {
        self.primal.dtype()
    }

    fn shape(&self) -> Shape {
        self.primal.shape()
    }

    fn rank(&self) -> usize {
        self.primal.rank()
    }
}

fn into_dual<B: Backend, const D: usize>(t: Tensor<Dual<B>, D>) -> DualTensor<B> {
    match t.into_primitive() {
        TensorPrimitive::Float(t) => t,
        TensorPrimitive::QFloat(_) => rules::refuse("quantized tensors; dequantize the model first"),
    }
}

fn from_dual<B: Backend, const D: usize>(t: DualTensor<B>) -> Tensor<Dual<B>, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn wrap<B: Backend, const D: usize>(t: B::FloatTensorPrimitive) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn unwrap<B: Backend, const D: usize>(t: Tensor<B, D>) -> B::FloatTensorPrimitive {
    t.into_primitive().tensor()
}

/// `primal` as a dual tensor whose tangent is `tangent`.
///
/// # Panics
/// If the shapes differ (a programming error, not user input).
pub fn with_tangent<B: Backend, const D: usize>(primal: Tensor<B, D>, tangent: Tensor<B, D>) -> Tensor<Dual<B>, D> {
    assert_eq!(primal.dims(), tangent.dims(), "a tangent has the shape of its primal");
    from_dual(DualTensor::new(unwrap(primal), Some(unwrap(tangent))))
}

/// `primal` as a dual tensor with a zero tangent.
pub fn constant<B: Backend, const D: usize>(primal: Tensor<B, D>) -> Tensor<Dual<B>, D> {
    from_dual(DualTensor::constant(unwrap(primal)))
}

/// The primal value of a dual tensor.
pub fn primal<B: Backend, const D: usize>(t: Tensor<Dual<B>, D>) -> Tensor<B, D> {
    wrap(into_dual(t).primal)
}

/// The tangent of a dual tensor; `None` when it is zero (the value does not depend on
/// anything that had a tangent).
pub fn tangent<B: Backend, const D: usize>(t: &Tensor<Dual<B>, D>) -> Option<Tensor<B, D>> {
    into_dual(t.clone()).tangent.map(wrap)
}

/// The primal and the tangent (zeros where there is none) of a dual tensor.
pub fn split<B: Backend, const D: usize>(t: Tensor<Dual<B>, D>) -> (Tensor<B, D>, Tensor<B, D>) {
    let d = into_dual(t);
    let p: Tensor<B, D> = wrap(d.primal);
    let t = d.tangent.map(wrap).unwrap_or_else(|| p.zeros_like());
    (p, t)
}
