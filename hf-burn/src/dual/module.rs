//! burn's fused module operations on dual tensors, each on `B`'s own kernel.
//!
//! The affine operations (linear, the convolutions) are bilinear in input and weight
//! plus a bias: their tangent is `f(t_x, W) + f(x, t_W) + t_b`. Pooling, interpolation,
//! embedding and every backward operation are linear in the tensor that moves, so the
//! tangent goes through the same kernel. Max pooling reads its tangent at the indices
//! of the maxima. Attention is differentiated through burn's composite fallback.

use burn::tensor::backend::Backend;
use burn::tensor::ops::attention::attention_fallback;
use burn::tensor::ops::{
    AttentionModuleOptions, BoolTensor, ConvOptions, ConvTransposeOptions, DeformConv2dBackward, DeformConvOptions,
    FloatTensor, IntTensor, InterpolateOptions, MaxPool2dBackward, MaxPool2dWithIndices, ModuleOps,
};
use burn::tensor::{Shape, TensorMetadata};

use super::rules::{det, linear, sum, tangent_or_zeros, zeros_like};
use super::{Dual, DualTensor};

type T<B> = FloatTensor<B>;

/// `y = f(x, w, b)`, bilinear in `(x, w)` plus the bias.
fn affine<B: Backend>(
    x: DualTensor<B>,
    w: DualTensor<B>,
    bias: Option<DualTensor<B>>,
    f: impl Fn(T<B>, T<B>, Option<T<B>>) -> T<B>,
) -> DualTensor<B> {
    let mut t_bias = bias.as_ref().and_then(|b| b.tangent.clone());
    let b = bias.map(|b| b.primal);
    if x.tangent.is_none() && w.tangent.is_none() && t_bias.is_none() {
        return DualTensor::constant(f(x.primal, w.primal, b));
    }
    let (xd, wd) = (det::<B>(&x.primal), det::<B>(&w.primal));
    // The bias tangent rides along with the first term that is computed.
    let mut tangent = None;
    if let Some(tx) = x.tangent {
        tangent = sum::<B>(tangent, Some(f(tx, wd.clone(), t_bias.take())));
    }
    if let Some(tw) = w.tangent {
        tangent = sum::<B>(tangent, Some(f(xd.clone(), tw, t_bias.take())));
    }
    if let Some(tb) = t_bias {
        tangent = Some(f(zeros_like::<B>(&xd), wd, Some(tb)));
    }
    DualTensor::new(f(x.primal, w.primal, b), tangent)
}

/// The tangent of a max pooling: `t` read at the flat (`h · W + w`) indices of the maxima.
fn pooled_tangent<B: Backend>(t: T<B>, indices: &IntTensor<B>) -> T<B> {
    let [n, c, h, w] = t.shape().dims();
    let [_, _, oh, ow] = indices.shape().dims();
    let flat = B::float_reshape(t, Shape::new([n, c, h * w]));
    let idx = B::int_reshape(indices.clone(), Shape::new([n, c, oh * ow]));
    B::float_reshape(B::float_gather(2, flat, idx), Shape::new([n, c, oh, ow]))
}

/// Refuses to differentiate `op` when any of its inputs moves (it runs on constants).
fn refuse<B: Backend>(op: &str, inputs: &[&DualTensor<B>]) {
    if inputs.iter().any(|x| x.tangent.is_some()) {
        super::rules::refuse(op);
    }
}

impl<B: Backend> ModuleOps<Self> for Dual<B> {
    fn embedding(weights: T<Self>, indices: IntTensor<Self>) -> T<Self> {
        linear(weights, |w| B::embedding(w, indices.clone()))
    }

    fn embedding_backward(weights: T<Self>, output_grad: T<Self>, indices: IntTensor<Self>) -> T<Self> {
        let wd = det::<B>(&weights.primal);
        let tangent = output_grad
            .tangent
            .map(|g| B::embedding_backward(wd.clone(), g, indices.clone()));
        DualTensor::new(
            B::embedding_backward(weights.primal, output_grad.primal, indices),
            tangent,
        )
    }

    fn linear(x: T<Self>, weight: T<Self>, bias: Option<T<Self>>) -> T<Self> {
        affine(x, weight, bias, B::linear)
    }

    fn linear_x_backward(weight: T<Self>, output_grad: T<Self>) -> T<Self> {
        super::rules::bilinear(weight, output_grad, B::linear_x_backward)
    }

    fn linear_weight_backward(x: T<Self>, output_grad: T<Self>) -> T<Self> {
        super::rules::bilinear(x, output_grad, B::linear_weight_backward)
    }

    fn linear_bias_backward(output_grad: T<Self>) -> T<Self> {
        linear(output_grad, B::linear_bias_backward)
    }

    fn conv2d(x: T<Self>, weight: T<Self>, bias: Option<T<Self>>, options: ConvOptions<2>) -> T<Self> {
        affine(x, weight, bias, |x, w, b| B::conv2d(x, w, b, options.clone()))
    }

    fn deform_conv2d(
        x: T<Self>,
        offset: T<Self>,
        weight: T<Self>,
        mask: Option<T<Self>>,
        bias: Option<T<Self>>,
        options: DeformConvOptions<2>,
    ) -> T<Self> {
        refuse("deform_conv2d", &[&x, &offset, &weight]);
        mask.iter()
            .chain(bias.iter())
            .for_each(|t| refuse("deform_conv2d", &[t]));
        DualTensor::constant(B::deform_conv2d(
            x.primal,
            offset.primal,
            weight.primal,
            mask.map(|m| m.primal),
            bias.map(|b| b.primal),
            options,
        ))
    }

    fn deform_conv2d_backward(
        x: T<Self>,
        offset: T<Self>,
        weight: T<Self>,
        mask: Option<T<Self>>,
        bias: Option<T<Self>>,
        output_grad: T<Self>,
        options: DeformConvOptions<2>,
    ) -> DeformConv2dBackward<Self> {
        refuse("deform_conv2d_backward", &[&x, &offset, &weight, &output_grad]);
        mask.iter()
            .chain(bias.iter())
            .for_each(|t| refuse("deform_conv2d_backward", &[t]));
        let g = B::deform_conv2d_backward(
            x.primal,
            offset.primal,
            weight.primal,
            mask.map(|m| m.primal),
            bias.map(|b| b.primal),
            output_grad.primal,
            options,
        );
        DeformConv2dBackward::new(
            DualTensor::constant(g.x_grad),
            DualTensor::constant(g.offset_grad),
            DualTensor::constant(g.weight_grad),
            g.mask_grad.map(DualTensor::constant),
            g.bias_grad.map(DualTensor::constant),
        )
    }

    fn conv3d(x: T<Self>, weight: T<Self>, bias: Option<T<Self>>, options: ConvOptions<3>) -> T<Self> {
        affine(x, weight, bias, |x, w, b| B::conv3d(x, w, b, options.clone()))
    }

    fn conv_transpose2d(
        x: T<Self>,
        weight: T<Self>,
        bias: Option<T<Self>>,
        options: ConvTransposeOptions<2>,
    ) -> T<Self> {
        affine(x, weight, bias, |x, w, b| B::conv_transpose2d(x, w, b, options.clone()))
    }

    fn conv_transpose3d(
        x: T<Self>,
        weight: T<Self>,
        bias: Option<T<Self>>,
        options: ConvTransposeOptions<3>,
    ) -> T<Self> {
        affine(x, weight, bias, |x, w, b| B::conv_transpose3d(x, w, b, options.clone()))
    }

    fn avg_pool2d(
        x: T<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
        ceil_mode: bool,
    ) -> T<Self> {
        linear(x, |x| {
            B::avg_pool2d(x, kernel_size, stride, padding, count_include_pad, ceil_mode)
        })
    }

    fn avg_pool2d_backward(
        x: T<Self>,
        grad: T<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
        ceil_mode: bool,
    ) -> T<Self> {
        let x = x.primal;
        linear(grad, |g| {
            B::avg_pool2d_backward(x.clone(), g, kernel_size, stride, padding, count_include_pad, ceil_mode)
        })
    }

    fn adaptive_avg_pool2d(x: T<Self>, output_size: [usize; 2]) -> T<Self> {
        linear(x, |x| B::adaptive_avg_pool2d(x, output_size))
    }

    fn adaptive_avg_pool2d_backward(x: T<Self>, grad: T<Self>) -> T<Self> {
        let x = x.primal;
        linear(grad, |g| B::adaptive_avg_pool2d_backward(x.clone(), g))
    }

    fn max_pool2d(
        x: T<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> T<Self> {
        if x.tangent.is_none() {
            return DualTensor::constant(B::max_pool2d(
                x.primal,
                kernel_size,
                stride,
                padding,
                dilation,
                ceil_mode,
            ));
        }
        Self::max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode).output
    }

    fn max_pool2d_with_indices(
        x: T<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> MaxPool2dWithIndices<Self> {
        let pooled = B::max_pool2d_with_indices(x.primal, kernel_size, stride, padding, dilation, ceil_mode);
        let tangent = x.tangent.map(|t| pooled_tangent::<B>(t, &pooled.indices));
        MaxPool2dWithIndices::new(DualTensor::new(pooled.output, tangent), pooled.indices)
    }

    fn max_pool2d_with_indices_backward(
        x: T<Self>,
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
        output_grad: T<Self>,
        indices: IntTensor<Self>,
    ) -> MaxPool2dBackward<Self> {
        let x = x.primal;
        let backward = |g| {
            B::max_pool2d_with_indices_backward(
                x.clone(),
                kernel_size,
                stride,
                padding,
                dilation,
                ceil_mode,
                g,
                indices.clone(),
            )
            .x_grad
        };
        MaxPool2dBackward::new(linear(output_grad, backward))
    }

    fn interpolate(x: T<Self>, output_size: [usize; 2], options: InterpolateOptions) -> T<Self> {
        linear(x, |x| B::interpolate(x, output_size, options.clone()))
    }

    fn interpolate_backward(
        x: T<Self>,
        grad: T<Self>,
        output_size: [usize; 2],
        options: InterpolateOptions,
    ) -> T<Self> {
        let x = x.primal;
        linear(grad, |g| {
            B::interpolate_backward(x.clone(), g, output_size, options.clone())
        })
    }

    fn attention(
        query: T<Self>,
        key: T<Self>,
        value: T<Self>,
        mask: Option<BoolTensor<Self>>,
        attn_bias: Option<T<Self>>,
        options: AttentionModuleOptions,
    ) -> T<Self> {
        attention_fallback::<Self>(query, key, value, mask, attn_bias, options)
    }

    fn rfft(signal: T<Self>, dim: usize, n: Option<usize>) -> (T<Self>, T<Self>) {
        let (re, im) = B::rfft(signal.primal, dim, n);
        match signal.tangent.map(|t| B::rfft(t, dim, n)) {
            Some((t_re, t_im)) => (DualTensor::new(re, Some(t_re)), DualTensor::new(im, Some(t_im))),
            None => (DualTensor::constant(re), DualTensor::constant(im)),
        }
    }

    fn irfft(spectrum_re: T<Self>, spectrum_im: T<Self>, dim: usize, n: Option<usize>) -> T<Self> {
        let tangent = (spectrum_re.tangent.is_some() || spectrum_im.tangent.is_some())
            .then(|| B::irfft(tangent_or_zeros(&spectrum_re), tangent_or_zeros(&spectrum_im), dim, n));
        DualTensor::new(B::irfft(spectrum_re.primal, spectrum_im.primal, dim, n), tangent)
    }
}
