//! Backend plumbing: the nested autodiff backends and moving tensors between levels.

use burn::backend::Autodiff;
use burn::prelude::*;

/// One level of autodiff over `B`: gradients.
pub type Inner<B> = Autodiff<B>;

/// Two levels of autodiff over `B`: gradients that are themselves differentiable,
/// for Jacobian-vector and Hessian-vector products by double backward.
pub type Outer<B> = Autodiff<Autodiff<B>>;

/// Wraps a plain tensor as a constant of the autodiff backend.
pub fn lift<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<Inner<B>, D> {
    Tensor::from_inner(t)
}

/// Wraps a plain tensor as a constant of the doubly differentiated backend.
pub fn lift2<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<Outer<B>, D> {
    Tensor::from_inner(Tensor::from_inner(t))
}

/// Reads a one-element tensor as `f64`, in its own precision (an `f64` tensor on a
/// backend whose default element is `f32` keeps its digits). This is the only
/// device-to-host transfer in a CG iteration.
pub fn scalar<B: Backend, const D: usize>(t: Tensor<B, D>) -> f64 {
    t.into_data().iter::<f64>().next().unwrap_or(f64::NAN)
}

/// Builds a tensor from `f64` values in the given float dtype.
pub fn tensor_from_f64<B: Backend, const D: usize>(
    values: Vec<f64>,
    shape: [usize; D],
    device: &B::Device,
    dtype: burn::tensor::DType,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape).convert_dtype(dtype), (device, dtype))
}
