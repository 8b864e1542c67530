//! [`FastCpu`]: a backend decorator that replaces the slowest of a CPU backend's
//! elementwise operations with vectorized, multi-threaded ones.
//!
//! burn-flex, the fastest CPU backend here, evaluates `tanh`, `exp`, `ln`, `ln(1 + x)`,
//! the logistic function and its logarithm one element at a time through the C
//! library, on one thread. In the gradient of Martens' MNIST autoencoder those calls
//! were a quarter of the CPU time (docs/BENCHMARKS.md, "Where a gradient's time goes").
//! `FastCpu<B>` passes every operation through to `B` unchanged — same tensors, same
//! kernels — except these six on `f32` tensors in host memory, which it computes with
//! branch-free polynomial versions (within 2–4 ulp of the correctly rounded value,
//! tested over millions of arguments) that the compiler vectorizes, split over the
//! cores with rayon. On any other tensor (`f64`, a strided view, a GPU tensor) the
//! operation is `B`'s own.
//!
//! It composes like any backend: `Autodiff<FastCpu<Flex>>` for gradients,
//! `Dual<Autodiff<FastCpu<Flex>>>` for Gauss-Newton products; [`FastFlex`] names the
//! usual choice.
//!
//! ```
//! use burn::prelude::*;
//! use hf_burn::fast::FastFlex;
//!
//! let device = Default::default();
//! let x = Tensor::<FastFlex, 1>::from_floats([0.0, 0.5, -3.0], &device);
//! let y: Vec<f32> = x.tanh().into_data().to_vec().unwrap();
//! assert!((y[1] - 0.5f32.tanh()).abs() < 1e-7);
//! ```
//!
//! The trait implementations in `forward.rs` are generated from burn's trait
//! definitions by `hf-burn/tools/gen_forwarding.py`.

mod backend;
mod forward;
mod kernels;
pub mod math;

use core::marker::PhantomData;

/// A backend decorator: `B` with faster elementwise transcendental functions on `f32`
/// host tensors (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default)]
pub struct FastCpu<B> {
    _b: PhantomData<B>,
}

/// burn-flex with [`FastCpu`]'s elementwise functions: hf's fastest CPU backend.
pub type FastFlex = FastCpu<burn::backend::Flex>;
