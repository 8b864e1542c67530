//! Gauss-Newton, Hessian and Fisher products against finite differences and explicit
//! Jacobians, in f64 (relative error ≤ 1e-6; observed errors are far smaller), on
//! burn-ndarray and on burn-flex, by forward mode (the default) and by double backward
//! (the cross-check).

#![allow(dead_code)]

/// The name of a strategy, so a shared test can expect what differs between them.
trait Named {
    fn name(&self) -> &'static str;
}

impl Named for hf_burn::ForwardMode {
    fn name(&self) -> &'static str {
        "forward"
    }
}

impl Named for hf_burn::DoubleBackward {
    fn name(&self) -> &'static str {
        "double backward"
    }
}

mod ndarray_f64 {
    pub type TestBackend = burn::backend::NdArray<f64>;
    pub type TestJvp = hf_burn::ForwardMode;
    use super::Named as _;
    include!("support/helpers.rs");
    include!("support/curvature_cases.rs");
}

mod ndarray_f64_double_backward {
    pub type TestBackend = burn::backend::NdArray<f64>;
    pub type TestJvp = hf_burn::DoubleBackward;
    use super::Named as _;
    include!("support/helpers.rs");
    include!("support/curvature_cases.rs");
}

/// `FastCpu` passes f64 tensors through to burn-flex: these check the forwarding of every
/// operation the products use (its f32 kernels: tests/fast_backend.rs).
mod fast_flex_f64 {
    pub type TestBackend = hf_burn::fast::FastFlex;
    pub type TestJvp = hf_burn::ForwardMode;
    use super::Named as _;
    include!("support/helpers.rs");
    include!("support/curvature_cases.rs");
}

/// burn-flex computes in the dtype of its tensors: every tensor here is built as f64.
mod flex_f64 {
    pub type TestBackend = burn::backend::Flex;
    pub type TestJvp = hf_burn::ForwardMode;
    use super::Named as _;
    include!("support/helpers.rs");
    include!("support/curvature_cases.rs");
}
