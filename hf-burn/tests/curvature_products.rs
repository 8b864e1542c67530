//! Gauss-Newton, Hessian and Fisher products against finite differences and explicit
//! Jacobians, in f64 (relative error ≤ 1e-4 as required; observed errors are far
//! smaller), on burn-ndarray and on burn-flex.

#![allow(dead_code)]

mod ndarray_f64 {
    pub type TestBackend = burn::backend::NdArray<f64>;
    include!("support/helpers.rs");
    include!("support/curvature_cases.rs");
}

/// burn-flex computes in the dtype of its tensors: every tensor here is built as f64.
mod flex_f64 {
    pub type TestBackend = burn::backend::Flex;
    include!("support/helpers.rs");
    include!("support/curvature_cases.rs");
}
