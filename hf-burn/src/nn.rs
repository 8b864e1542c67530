//! Layers that survive double backward.
//!
//! burn 0.21 computes `nn::Linear` with a fused `linear` operation whose backward
//! pass cannot itself be differentiated ("Can't differentiate linear_x_backward"), so
//! a network that calls `Linear::forward` can produce gradients but no curvature
//! products. [`linear`] computes the same affine map from the same module with
//! `matmul` and an addition, which differentiate to any order: keep your
//! `nn::Linear` fields and records, and call `hf_burn::nn::linear(&self.layer, x)`
//! in `forward`.

use burn::nn::Linear;
use burn::prelude::*;

/// `x W + b` for a row-layout [`Linear`] layer (burn's default layout: weight
/// `[d_input, d_output]`), built from operations that differentiate twice.
///
/// ```
/// use burn::backend::NdArray;
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
///
/// let device = Default::default();
/// let layer = LinearConfig::new(3, 2).init::<NdArray<f64>>(&device);
/// let x = Tensor::<NdArray<f64>, 2>::ones([4, 3], &device);
/// let ours = hf_burn::nn::linear(&layer, x.clone());
/// let burns = layer.forward(x);
/// ours.into_data().assert_approx_eq::<f64>(&burns.into_data(), Default::default());
/// ```
pub fn linear<B: Backend>(layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    let y = x.matmul(layer.weight.val());
    match &layer.bias {
        Some(b) => y + b.val().unsqueeze_dim(0),
        None => y,
    }
}
