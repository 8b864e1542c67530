//! The operations [`FastCpu`](super::FastCpu) replaces: on `f32` tensors in host memory
//! (burn-flex's), the vectorized, multi-threaded functions of [`super::math`]; on
//! anything else, `B`'s own operation.

use std::any::Any;

use burn_backend::tensor::FloatTensor;
use burn_backend::Backend;
use burn_flex::{FlexTensor, Layout};
use burn_std::{Bytes, DType};

use super::math;

/// `value` as a `U` when `T` is `U` (no allocation, no copy), else `value` back.
fn cast<T: 'static, U: 'static>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<U>>() {
        Some(u) => Ok(u.take().expect("the slot was just filled")),
        None => Err(slot.expect("the slot is untouched")),
    }
}

/// `U` elementwise on `tensor` when it is a contiguous `f32` burn-flex tensor (in place
/// when no other handle shares its buffer), else `fallback`.
fn unary<B: Backend, U: math::Unary>(
    tensor: FloatTensor<B>,
    fallback: fn(FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<B> {
    let mut flex: FlexTensor = match cast(tensor) {
        Ok(flex) => flex,
        Err(tensor) => return fallback(tensor),
    };
    let layout = flex.layout().clone();
    if flex.dtype() != DType::F32 || !layout.is_contiguous() || layout.start_offset() != 0 {
        return fallback(back::<B>(flex));
    }
    let n = layout.num_elements();
    if flex.is_unique() {
        math::map_in_place::<U>(&mut flex.storage_mut::<f32>()[..n]);
        return back::<B>(flex);
    }
    let out = math::map::<U>(&flex.storage::<f32>()[..n]);
    back::<B>(FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(layout.shape().clone()),
        DType::F32,
    ))
}

/// A burn-flex tensor as `B`'s again (`B`'s tensor is burn-flex's: it was cast from it).
fn back<B: Backend>(flex: FlexTensor) -> FloatTensor<B> {
    cast(flex).unwrap_or_else(|_| unreachable!("only called with a tensor cast from B's"))
}

/// `tanh`.
pub fn float_tanh<B: Backend>(tensor: FloatTensor<B>) -> FloatTensor<B> {
    unary::<B, math::Tanh>(tensor, B::float_tanh)
}

/// `eˣ`.
pub fn float_exp<B: Backend>(tensor: FloatTensor<B>) -> FloatTensor<B> {
    unary::<B, math::Exp>(tensor, B::float_exp)
}

/// `ln x`.
pub fn float_log<B: Backend>(tensor: FloatTensor<B>) -> FloatTensor<B> {
    unary::<B, math::Ln>(tensor, B::float_log)
}

/// `ln(1 + x)`.
pub fn float_log1p<B: Backend>(tensor: FloatTensor<B>) -> FloatTensor<B> {
    unary::<B, math::Ln1p>(tensor, B::float_log1p)
}

/// The logistic function.
pub fn sigmoid<B: Backend>(tensor: FloatTensor<B>) -> FloatTensor<B> {
    unary::<B, math::Sigmoid>(tensor, B::sigmoid)
}

/// `ln σ(x)`.
pub fn log_sigmoid<B: Backend>(tensor: FloatTensor<B>) -> FloatTensor<B> {
    unary::<B, math::LogSigmoid>(tensor, B::log_sigmoid)
}
