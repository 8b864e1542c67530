//! Layers that survive double backward, for the [`DoubleBackward`](crate::DoubleBackward)
//! cross-check only.
//!
//! burn 0.21 computes `nn::Linear` with a fused `linear` operation whose backward
//! pass cannot itself be differentiated ("Can't differentiate linear_x_backward").
//! Forward mode, the default, differentiates it (and every burn operation), so
//! `Linear::forward` is right for training; only curvature products by double
//! backward need [`linear`], which computes the same affine map from the same module
//! with `matmul` and an addition, differentiable to any order.

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
