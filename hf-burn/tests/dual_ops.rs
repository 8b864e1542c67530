//! Every tangent rule of the `Dual` backend, checked on its own in f64 on burn-ndarray
//! and burn-flex:
//! - forward mode: the tangent of `op(x)` in direction `v` on `Dual<B>` against central
//!   differences `(op(x + hv) − op(x − hv)) / 2h`;
//! - reverse over forward: `H v` of `s(x) = Σ w ⊙ op(x)` on `Autodiff<Dual<B>>` (the
//!   tangent of the gradient, which runs every operation's backward pass on dual
//!   numbers) against central differences of the gradient;
//! - forward over reverse's first half: on `Dual<Autodiff<B>>` the primal's gradient is
//!   the plain gradient and the tangent is the same `J v`.
//!
//! Relative error ≤ 1e-7 for each. The ops covered are the variants of [`Op`].

use burn::backend::{Autodiff, Flex, NdArray};
use burn::prelude::*;
use burn::tensor::activation::{gelu, leaky_relu, log_sigmoid, log_softmax, relu, sigmoid, softmax};
use burn::tensor::module::{
    adaptive_avg_pool2d, avg_pool2d, conv1d, conv2d, conv_transpose2d, embedding, interpolate, linear, max_pool2d,
};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{DType, Distribution};
use hf_burn::dual::{self, Dual};
use hf_burn::tensor_from_f64;

#[derive(Debug, Clone, Copy)]
enum Op {
    Tanh,
    Exp,
    Log,
    Log1p,
    Sqrt,
    Recip,
    Abs,
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Asin,
    Acos,
    Atan,
    Asinh,
    Acosh,
    Atanh,
    Erf,
    PowfScalar,
    PowiScalar,
    Square,
    PowfTensor,
    Atan2,
    Clamp,
    MaskWhereFill,
    Sigmoid,
    Relu,
    LeakyRelu,
    Gelu,
    LogSigmoid,
    Softmax,
    LogSoftmax,
    AddSubBroadcast,
    MulDivBroadcast,
    Matmul,
    Cross,
    ReshapeTransposePermute,
    Flip,
    SliceAssignCat,
    StackRepeatExpand,
    GatherSelect,
    ScatterSelectAdd,
    SumMean,
    Prod,
    MaxMin,
    SortTopk,
    Cumsum,
    Cumprod,
    CummaxCummin,
    Unfold,
    Linear,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    AvgPool2d,
    MaxPool2d,
    AdaptiveAvgPool2d,
    Interpolate,
    Embedding,
    LayerNorm,
    Attention,
}

const ALL: [Op; 62] = [
    Op::Tanh,
    Op::Exp,
    Op::Log,
    Op::Log1p,
    Op::Sqrt,
    Op::Recip,
    Op::Abs,
    Op::Sin,
    Op::Cos,
    Op::Tan,
    Op::Sinh,
    Op::Cosh,
    Op::Asin,
    Op::Acos,
    Op::Atan,
    Op::Asinh,
    Op::Acosh,
    Op::Atanh,
    Op::Erf,
    Op::PowfScalar,
    Op::PowiScalar,
    Op::Square,
    Op::PowfTensor,
    Op::Atan2,
    Op::Clamp,
    Op::MaskWhereFill,
    Op::Sigmoid,
    Op::Relu,
    Op::LeakyRelu,
    Op::Gelu,
    Op::LogSigmoid,
    Op::Softmax,
    Op::LogSoftmax,
    Op::AddSubBroadcast,
    Op::MulDivBroadcast,
    Op::Matmul,
    Op::Cross,
    Op::ReshapeTransposePermute,
    Op::Flip,
    Op::SliceAssignCat,
    Op::StackRepeatExpand,
    Op::GatherSelect,
    Op::ScatterSelectAdd,
    Op::SumMean,
    Op::Prod,
    Op::MaxMin,
    Op::SortTopk,
    Op::Cumsum,
    Op::Cumprod,
    Op::CummaxCummin,
    Op::Unfold,
    Op::Linear,
    Op::Conv1d,
    Op::Conv2d,
    Op::ConvTranspose2d,
    Op::AvgPool2d,
    Op::MaxPool2d,
    Op::AdaptiveAvgPool2d,
    Op::Interpolate,
    Op::Embedding,
    Op::LayerNorm,
    Op::Attention,
];

/// A constant of `x`'s backend, device and dtype.
fn c<B: Backend, const D: usize>(x: &Tensor<B, 2>, values: Vec<f64>, shape: [usize; D]) -> Tensor<B, D> {
    tensor_from_f64(values, shape, &x.device(), x.dtype())
}

fn ints<B: Backend, const D: usize>(x: &Tensor<B, 2>, values: Vec<i64>, shape: [usize; D]) -> Tensor<B, D, Int> {
    Tensor::from_data(TensorData::new(values, shape), &x.device())
}

fn flat<B: Backend, const D: usize>(y: Tensor<B, D>) -> Tensor<B, 2> {
    let n = y.shape().num_elements();
    y.reshape([1, n])
}

impl Op {
    /// The op as the reference computes it on `B` and `Autodiff<B>`: burn's own, except
    /// where burn 0.21 is inexact — burn-ndarray's sigmoid rounds through f32, and the
    /// backends' `gelu_backward` is not the derivative of their erf GELU — where the
    /// exact formula stands in (the dual backend computes both exactly).
    fn reference<B: Backend>(self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Op::Sigmoid => x.sub_scalar(1.0).neg().exp().add_scalar(1.0).recip(),
            Op::Gelu => {
                let z = x.sub_scalar(1.0);
                z.clone()
                    * z.div_scalar(std::f64::consts::SQRT_2)
                        .erf()
                        .add_scalar(1.0)
                        .mul_scalar(0.5)
            }
            _ => self.apply(x),
        }
    }

    /// `x: [3, 4]` with entries in (0.5, 2), away from every kink of the ops.
    fn apply<B: Backend>(self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let fixed =
            |n: usize, shift: f64| -> Vec<f64> { (0..n).map(|i| ((i as f64 + shift) * 1.3).sin() * 0.7).collect() };
        match self {
            Op::Tanh => x.tanh(),
            Op::Exp => x.exp(),
            Op::Log => x.log(),
            Op::Log1p => x.log1p(),
            Op::Sqrt => x.sqrt(),
            Op::Recip => x.recip(),
            Op::Abs => (x.sub_scalar(1.23)).abs(),
            Op::Sin => x.sin(),
            Op::Cos => x.cos(),
            Op::Tan => x.mul_scalar(0.5).tan(),
            Op::Sinh => x.sinh(),
            Op::Cosh => x.cosh(),
            Op::Asin => x.mul_scalar(0.4).asin(),
            Op::Acos => x.mul_scalar(0.4).acos(),
            Op::Atan => x.atan(),
            Op::Asinh => x.asinh(),
            Op::Acosh => x.add_scalar(1.0).acosh(),
            Op::Atanh => x.mul_scalar(0.4).atanh(),
            Op::Erf => x.sub_scalar(1.0).erf(),
            Op::PowfScalar => x.powf_scalar(2.5),
            Op::PowiScalar => x.clone().powi_scalar(3) + x.powi_scalar(-2),
            Op::Square => x.square(),
            Op::PowfTensor => x.clone().powf(x.flip([1]).mul_scalar(0.5)),
            Op::Atan2 => x.clone().sub_scalar(1.0).atan2(x.flip([0])),
            Op::Clamp => x.clamp(0.8, 1.6),
            Op::MaskWhereFill => {
                let mask = x.clone().greater_elem(1.21);
                x.clone()
                    .mask_where(mask.clone(), x.clone().exp())
                    .mask_fill(mask.bool_not(), 0.3)
                    * x
            }
            Op::Sigmoid => sigmoid(x.sub_scalar(1.0)),
            Op::Relu => relu(x.sub_scalar(1.21)),
            Op::LeakyRelu => leaky_relu(x.sub_scalar(1.21), 0.1),
            Op::Gelu => gelu(x.sub_scalar(1.0)),
            Op::LogSigmoid => log_sigmoid(x),
            Op::Softmax => softmax(x, 1),
            Op::LogSoftmax => log_softmax(x, 1),
            Op::AddSubBroadcast => {
                let row = x.clone().slice([1..2, 0..4]).exp();
                let col = x.clone().slice([0..3, 2..3]).tanh();
                (x.clone() + row) - col + x.add_scalar(2.0).sub_scalar(0.5)
            }
            Op::MulDivBroadcast => {
                let row = x.clone().slice([1..2, 0..4]);
                let col = x.clone().slice([0..3, 2..3]);
                (x.clone() * row) / col + x.clone().mul_scalar(3.0).div_scalar(2.0) / x
            }
            Op::Matmul => x.clone().matmul(x.transpose()),
            Op::Cross => x.clone().slice([0..3, 0..3]).cross(x.slice([0..3, 1..4]).exp(), 0),
            Op::ReshapeTransposePermute => {
                let y = x.clone().reshape([2, 3, 2]).permute([2, 0, 1]).swap_dims(0, 1);
                flat(y.exp()) + flat(x.transpose().tanh()).slice([0..1, 0..12])
            }
            Op::Flip => x.clone().flip([0, 1]) * x,
            Op::SliceAssignCat => {
                let y = x
                    .clone()
                    .slice_assign([1..3, 1..3], x.clone().slice([0..2, 2..4]).exp());
                Tensor::cat(vec![y, x.clone().slice([0..3, 0..1]).square(), x], 1)
            }
            Op::StackRepeatExpand => {
                let s = Tensor::stack::<3>(vec![x.clone(), x.clone().tanh()], 0);
                let r = x.clone().slice([0..1, 0..4]).repeat_dim(0, 3);
                let e = x.clone().slice([0..3, 1..2]).expand([3, 4]);
                flat(s) + flat(r * e * x).repeat_dim(1, 2)
            }
            Op::GatherSelect => {
                let idx = ints(&x, vec![3, 0, 1, 2, 2, 1, 0, 0, 1, 1, 3, 2], [3, 4]);
                let rows = ints(&x, vec![2, 0, 2], [3]);
                x.clone().gather(1, idx).exp() + x.select(0, rows)
            }
            Op::ScatterSelectAdd => {
                let idx = ints(&x, vec![3, 0, 1, 2, 2, 1, 0, 0, 1, 1, 3, 2], [3, 4]);
                let rows = ints(&x, vec![2, 0, 2], [3]);
                let base = x.clone().square();
                let y = base
                    .clone()
                    .scatter(1, idx, x.clone().exp(), burn::tensor::IndexingUpdateOp::Add);
                y + base.select_assign(0, rows, x.tanh(), burn::tensor::IndexingUpdateOp::Add)
            }
            Op::SumMean => {
                let a = x.clone().square().sum_dim(1) * x.clone().mean_dim(0).tanh();
                a + x.clone().sum().unsqueeze() * x.clone().mean().unsqueeze() * x
            }
            Op::Prod => x.clone().prod_dim(1) * x.clone().prod().unsqueeze() + x.prod_dim(0),
            Op::MaxMin => {
                let m = x.clone().max_dim(1) + x.clone().min_dim(0).exp();
                let (mx, _) = x.clone().max_dim_with_indices(0);
                m + x.clone().max().unsqueeze() * x.clone().min().unsqueeze() + mx.sum_dim(1) * x
            }
            Op::SortTopk => {
                let s = x.clone().sort(1) * x.clone().sort_descending(0).exp();
                s + x.clone().sort_descending(1).slice([0..3, 0..2]).sum_dim(1)
            }
            Op::Cumsum => x.clone().cumsum(1).exp() + x.cumsum(0),
            Op::Cumprod => x.clone().cumprod(1) + x.cumprod(0),
            Op::CummaxCummin => {
                let y = x.clone().mul(x.flip([1]));
                y.clone().cummax(1) * y.clone().cummin(0).exp()
            }
            Op::Unfold => flat(x.unfold::<3, _>(1, 2, 1).exp()),
            Op::Linear => {
                let w = x.clone().slice([0..3, 0..3]).reshape([3, 3]).tanh();
                let b = x.clone().slice([2..3, 1..4]).reshape([3]);
                linear(x.clone().slice([0..3, 0..3]), w, Some(b))
                    + linear(x.clone().slice([0..3, 1..4]), c(&x, fixed(9, 0.0), [3, 3]), None)
            }
            Op::Conv1d => {
                let input = x.clone().reshape([1, 3, 4]);
                let w = x.clone().slice([0..2, 0..3]).reshape([2, 3, 1]).exp();
                let w = Tensor::cat(vec![w.clone(), w.mul_scalar(0.5)], 2);
                let b = x.clone().slice([0..1, 0..2]).reshape([2]);
                flat(conv1d(input, w, Some(b), ConvOptions::new([1], [1], [1], 1)))
            }
            Op::Conv2d => {
                let input = x.clone().reshape([1, 1, 3, 4]);
                let w = x.clone().slice([0..2, 0..2]).reshape([1, 1, 2, 2]);
                let w2 = c(&x, fixed(8, 1.0), [2, 1, 2, 2]) + w.repeat_dim(0, 2).mul_scalar(0.3);
                let b = x.clone().slice([2..3, 0..2]).reshape([2]);
                flat(conv2d(input, w2, Some(b), ConvOptions::new([1, 1], [1, 0], [1, 1], 1)).tanh())
            }
            Op::ConvTranspose2d => {
                let input = x.clone().reshape([1, 2, 2, 3]);
                let w = x.clone().slice([0..2, 0..2]).reshape([2, 1, 1, 2]).repeat_dim(2, 2);
                flat(conv_transpose2d(
                    input,
                    w,
                    None,
                    ConvTransposeOptions::new([1, 1], [0, 0], [0, 0], [1, 1], 1),
                ))
            }
            Op::AvgPool2d => flat(avg_pool2d(
                x.clone().exp().reshape([1, 1, 3, 4]),
                [2, 2],
                [1, 1],
                [0, 0],
                true,
                false,
            )),
            Op::MaxPool2d => {
                let y = (x.clone() * x.clone().flip([1]).exp()).reshape([1, 1, 3, 4]);
                flat(max_pool2d(y, [2, 2], [1, 2], [0, 0], [1, 1], false))
            }
            Op::AdaptiveAvgPool2d => flat(adaptive_avg_pool2d(x.clone().square().reshape([1, 1, 3, 4]), [2, 3])),
            Op::Interpolate => {
                let options = InterpolateOptions::new(InterpolateMode::Nearest);
                flat(interpolate(x.clone().exp().reshape([1, 1, 3, 4]), [5, 6], options))
            }
            Op::Embedding => {
                let idx = ints(&x, vec![2, 0, 1, 2], [2, 2]);
                flat(embedding(x.clone().exp(), idx))
            }
            Op::LayerNorm => {
                let gamma = x.clone().slice([0..1, 0..4]).reshape([4]);
                let beta = x.clone().slice([1..2, 0..4]).reshape([4]).tanh();
                {
                    use burn::tensor::TensorPrimitive;
                    let prim = |t: Tensor<B, 1>| t.into_primitive().tensor();
                    let y = B::layer_norm(
                        x.clone().exp().into_primitive().tensor(),
                        prim(gamma),
                        Some(prim(beta)),
                        1e-5,
                    );
                    Tensor::from_primitive(TensorPrimitive::Float(y))
                }
            }
            Op::Attention => {
                let q = x.clone().reshape([1, 1, 3, 4]);
                let k = x.clone().flip([0]).tanh().reshape([1, 1, 3, 4]);
                let v = x.clone().exp().reshape([1, 1, 3, 4]);
                let options = burn::tensor::ops::AttentionModuleOptions {
                    scale: None,
                    softcap: None,
                    is_causal: false,
                };
                flat(burn::tensor::module::attention(q, k, v, None, None, options))
            }
        }
    }
}

fn input<B: Backend>(values: &[f64]) -> Tensor<B, 2> {
    tensor_from_f64(values.to_vec(), [3, 4], &Default::default(), DType::F64)
}

fn host<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f64> {
    x.into_data().iter::<f64>().collect()
}

fn relative(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    let den: f64 = want.iter().map(|b| b * b).sum::<f64>().sqrt();
    num / den.max(1e-300)
}

struct Case {
    x: Vec<f64>,
    v: Vec<f64>,
    h: f64,
}

impl Case {
    fn new() -> Self {
        Self {
            x: (0..12).map(|i| 0.5 + 1.5 * ((i * 7 % 12) as f64 / 11.0)).collect(),
            v: (0..12).map(|i| ((i * 11 % 12) as f64 - 6.0) / 4.0).collect(),
            h: 1e-5,
        }
    }

    fn shifted(&self, s: f64) -> Vec<f64> {
        self.x.iter().zip(&self.v).map(|(a, b)| a + s * self.h * b).collect()
    }

    fn central(&self, f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
        let (p, m) = (f(&self.shifted(1.0)), f(&self.shifted(-1.0)));
        p.iter().zip(&m).map(|(a, b)| (a - b) / (2.0 * self.h)).collect()
    }

    fn weights(n: usize) -> Vec<f64> {
        (0..n).map(|i| (1.0 + i as f64).sin() + 0.3).collect()
    }
}

/// Tangent of `op` on `Dual<B>` against central differences of `op` on `B`.
fn forward_error<B: Backend>(op: Op) -> f64 {
    let case = Case::new();
    let y = op.apply(dual::with_tangent(input::<B>(&case.x), input::<B>(&case.v)));
    let got = host(dual::split(y).1);
    let want = case.central(|x| host(op.reference(input::<B>(x))));
    relative(&got, &want)
}

fn gradient<B: Backend>(op: Op, x: &[f64]) -> Vec<f64> {
    let xi = input::<Autodiff<B>>(x).require_grad();
    let y = op.reference(xi.clone());
    let w = Case::weights(y.shape().num_elements());
    let s = (y.clone() * c(&y, w, y.dims())).sum();
    host(xi.grad(&s.backward()).unwrap())
}

/// `H v` on `Autodiff<Dual<B>>` against central differences of the gradient.
fn reverse_over_forward_error<B: Backend>(op: Op) -> f64 {
    let case = Case::new();
    let xr: Tensor<Autodiff<Dual<B>>, 2> =
        Tensor::from_inner(dual::with_tangent(input::<B>(&case.x), input::<B>(&case.v))).require_grad();
    let y = op.apply(xr.clone());
    let w = Case::weights(y.shape().num_elements());
    let s = (y.clone() * c(&y, w, y.dims())).sum();
    let g = xr.grad(&s.backward()).unwrap();
    let got = host(dual::split(g).1);
    let want = case.central(|x| gradient::<B>(op, x));
    relative(&got, &want)
}

/// On `Dual<Autodiff<B>>`: the primal's gradient equals the plain gradient, the
/// tangent equals `J v` on `Dual<B>`, and nothing of the tangent enters the graph.
fn dual_over_autodiff_error<B: Backend>(op: Op) -> f64 {
    let case = Case::new();
    let xi = input::<Autodiff<B>>(&case.x).require_grad();
    let y = op.apply(dual::with_tangent(xi.clone(), input::<Autodiff<B>>(&case.v)));
    let (p, t) = dual::split(y);
    let w = Case::weights(p.shape().num_elements());
    let s = (p.clone() * c(&p, w, p.dims())).sum();
    let g = host(xi.grad(&s.backward()).unwrap());
    let jv = host(dual::split(op.apply(dual::with_tangent(input::<B>(&case.x), input::<B>(&case.v)))).1);
    assert!(!t.is_require_grad(), "{op:?}: the tangent must not be tracked");
    relative(&g, &gradient::<B>(op, &case.x)).max(relative(&host(t.inner()), &jv))
}

fn check_all<B: Backend>(name: &str) {
    let mut failures = Vec::new();
    for op in ALL {
        type Check = fn(Op) -> f64;
        let checks: [(&str, Check); 3] = [
            ("forward", forward_error::<B>),
            ("reverse over forward", reverse_over_forward_error::<B>),
            ("dual over autodiff", dual_over_autodiff_error::<B>),
        ];
        for (what, check) in checks {
            match std::panic::catch_unwind(|| check(op)) {
                Ok(e) if e <= 1e-7 => {}
                Ok(e) => failures.push(format!("{op:?} {what}: {e:e}")),
                Err(p) => failures.push(format!(
                    "{op:?} {what}: panicked: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{name}: tangent rules off: {failures:#?}");
}

#[test]
fn tangent_rules_match_central_differences_on_ndarray() {
    check_all::<NdArray<f64>>("ndarray");
}

#[test]
fn tangent_rules_match_central_differences_on_flex() {
    check_all::<Flex>("flex");
}

/// Why [`Op::reference`] exists: burn 0.21's own sigmoid on burn-ndarray and gelu
/// gradient are inexact in f64. If this starts failing, burn fixed them.
#[test]
fn burn_sigmoid_and_gelu_gradient_are_inexact_in_f64() {
    type B = NdArray<f64>;
    let case = Case::new();
    let sig = relative(
        &host(Op::Sigmoid.apply(input::<B>(&case.x))),
        &host(Op::Sigmoid.reference(input::<B>(&case.x))),
    );
    assert!(sig > 1e-9, "burn-ndarray's sigmoid is now exact in f64 ({sig:e})");
    let xi = input::<Autodiff<B>>(&case.x).require_grad();
    let g = |y: Tensor<Autodiff<B>, 2>| host(xi.grad(&y.sum().backward()).unwrap());
    let (burns, exact) = (g(Op::Gelu.apply(xi.clone())), g(Op::Gelu.reference(xi.clone())));
    let e = relative(&burns, &exact);
    assert!(e > 1e-6, "burn's gelu gradient is now exact ({e:e})");
}

#[test]
fn constants_carry_no_tangent_and_detach_drops_it() {
    type B = NdArray<f64>;
    let case = Case::new();
    let x = dual::with_tangent(input::<B>(&case.x), input::<B>(&case.v));
    let k = dual::constant(input::<B>(&case.v));
    assert!(dual::tangent(&(k.clone().exp() * 2.0)).is_none());
    assert!(dual::tangent(&x.clone().detach()).is_none());
    assert!(dual::tangent(&(x.clone().greater_elem(1.0).float() * k.clone())).is_none());
    let random = Tensor::<Dual<B>, 2>::random([2, 2], Distribution::Default, &Default::default());
    assert!(dual::tangent(&random).is_none());
    assert!(dual::tangent(&(x * k)).is_some());
}

#[test]
fn a_module_runs_on_dual_numbers() {
    // burn's own Linear (the fused `linear` op) on Dual<B>: J v of W ↦ x W + b is x V.
    type B = NdArray<f64>;
    let device = Default::default();
    let mut layer = burn::nn::LinearConfig::new(3, 2).init::<Dual<B>>(&device);
    let x = dual::constant(input::<B>(&Case::new().x).slice([0..3, 0..3]));
    assert!(
        dual::tangent(&layer.forward(x.clone())).is_none(),
        "parameters without tangents give none"
    );
    let v = input::<B>(&Case::new().v).slice([0..3, 0..2]);
    let w = dual::primal(layer.weight.val());
    layer.weight = burn::module::Param::from_tensor(dual::with_tangent(w, v.clone()));
    let got = host(dual::split(layer.forward(x.clone())).1);
    let want = host(dual::primal(x).matmul(v));
    assert!(relative(&got, &want) < 1e-14);
}
