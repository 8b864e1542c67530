//! `FastCpu<Flex>` against burn-flex itself: its f32 kernels agree within a few ulp on
//! every layout a tensor can have, f64 goes to burn-flex unchanged, autodiff and the
//! curvature products run through it.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::fast::FastFlex;
use hf_burn::{
    logistic, tensor_from_f64, CurvatureKind, CurvatureProduct, DataBatch, Evaluator, LogisticCrossEntropy, Network,
    Outputs, ParamVector,
};
use hf_core::CurvatureOperator;

/// Arguments over the range networks see, and beyond: ±0, tiny, saturating, huge.
fn arguments(n: usize) -> Vec<f64> {
    let mut s = 7u64;
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            (u - 0.5) * 60.0
        })
        .collect();
    v.extend([0.0, -0.0, 1e-30, -1e-30, 90.0, -90.0, 1e6, -1e6, 0.625, -0.625]);
    v
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 data")
}

/// `a` within `ulps` units in the last place of `b` (or both NaN).
fn close(a: f32, b: f32, ulps: f32) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let spacing = (b.abs().next_up() - b.abs()).max(f32::MIN_POSITIVE);
    (a - b).abs() <= ulps * spacing
}

type Op<B> = fn(Tensor<B, 2>) -> Tensor<B, 2>;

fn ops<B: Backend>() -> Vec<(&'static str, Op<B>, f32)> {
    vec![
        ("tanh", |t| t.tanh(), 3.0),
        ("exp", |t| t.exp(), 2.0),
        ("log", |t| t.abs().log(), 2.0),
        ("log1p", |t| t.abs().log1p(), 3.0),
        ("sigmoid", burn::tensor::activation::sigmoid, 4.0),
        ("log_sigmoid", burn::tensor::activation::log_sigmoid, 4.0),
    ]
}

#[test]
fn f32_kernels_agree_with_flex_on_every_layout() {
    let values = arguments(40_000 * 3);
    let n = values.len();
    let shape = [n / 10, 10];
    let fast_in = tensor_from_f64::<FastFlex, 2>(values.clone(), shape, &Default::default(), DType::F32);
    let flex_in = tensor_from_f64::<Flex, 2>(values, shape, &Default::default(), DType::F32);
    let layouts: Vec<(&str, Op<FastFlex>, Op<Flex>)> = vec![
        ("contiguous", |t| t, |t| t),
        ("transposed", |t| t.transpose(), |t| t.transpose()),
        ("sliced", |t| t.slice([1..40_001, 2..9]), |t| t.slice([1..40_001, 2..9])),
    ];
    for ((name, fast_op, ulps), (_, flex_op, _)) in ops::<FastFlex>().into_iter().zip(ops::<Flex>()) {
        for (layout, fast_view, flex_view) in &layouts {
            let want = host(flex_op(flex_view(flex_in.clone())));
            // A second handle keeps the input shared (the copying path); without it the
            // kernel writes in place.
            let shared = fast_view(fast_in.clone());
            let kept = shared.clone();
            for (path, got) in [
                ("shared", host(fast_op(shared))),
                ("unique", host(fast_op(fast_view(fast_in.clone()).mul_scalar(1.0)))),
            ] {
                assert_eq!(got.len(), want.len());
                let bad: Vec<_> = got
                    .iter()
                    .zip(&want)
                    .filter(|(a, b)| !close(**a, **b, ulps))
                    .take(3)
                    .collect();
                assert!(bad.is_empty(), "{name} ({layout}, {path}): {bad:?}");
            }
            assert_eq!(
                host(kept),
                host(fast_view(fast_in.clone())),
                "{name} ({layout}) changed a shared input"
            );
        }
    }
}

#[test]
fn f64_tensors_take_flex_own_operations_bit_for_bit() {
    let values = arguments(5000);
    let n = values.len();
    let fast = tensor_from_f64::<FastFlex, 1>(values.clone(), [n], &Default::default(), DType::F64);
    let flex = tensor_from_f64::<Flex, 1>(values, [n], &Default::default(), DType::F64);
    let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
    let f64s = |d: burn::tensor::TensorData| d.to_vec::<f64>().expect("f64 data");
    assert_eq!(
        bits(f64s(fast.clone().tanh().into_data())),
        bits(f64s(flex.clone().tanh().into_data()))
    );
    assert_eq!(bits(f64s(fast.exp().into_data())), bits(f64s(flex.exp().into_data())));
}

#[test]
fn autodiff_differentiates_through_the_fast_kernels() {
    let values: Vec<f64> = (0..1000).map(|i| f64::from(i) * 0.01 - 5.0).collect();
    let x = tensor_from_f64::<Autodiff<FastFlex>, 1>(values.clone(), [1000], &Default::default(), DType::F32)
        .require_grad();
    let grads = x.clone().tanh().sum().backward();
    let g = host(x.grad(&grads).expect("x takes part"));
    for (g, v) in g.iter().zip(&values) {
        let want = 1.0 - v.tanh().powi(2);
        assert!((f64::from(*g) - want).abs() < 1e-6, "d tanh({v}) = {g}, want {want}");
    }
}

/// A small logistic autoencoder-like network (tanh and logistic units).
#[derive(Module, Debug)]
struct Net<B: Backend> {
    w1: burn::module::Param<Tensor<B, 2>>,
    b1: burn::module::Param<Tensor<B, 1>>,
    w2: burn::module::Param<Tensor<B, 2>>,
    b2: burn::module::Param<Tensor<B, 1>>,
}

#[derive(Clone, Debug)]
struct NetSpec;

impl Network<2> for NetSpec {
    type Module<B: Backend> = Net<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> Net<B> {
        let p2 = |a, b| burn::module::Param::from_tensor(Tensor::zeros([a, b], device));
        let p1 = |a| burn::module::Param::from_tensor(Tensor::zeros([a], device));
        Net {
            w1: p2(20, 64),
            b1: p1(64),
            w2: p2(64, 20),
            b2: p1(20),
        }
    }

    fn forward<B: Backend>(&self, m: &Net<B>, x: Tensor<B, 2>) -> Outputs<B> {
        let h = logistic((x.matmul(m.w1.val()) + m.b1.val().unsqueeze_dim(0)).tanh());
        Outputs::new(h.matmul(m.w2.val()) + m.b2.val().unsqueeze_dim(0))
    }
}

fn gradient_and_product<B: Backend>() -> (Vec<f32>, Vec<f32>) {
    let device = Default::default();
    let ev = Evaluator::<B, NetSpec, LogisticCrossEntropy, 2>::new(NetSpec, LogisticCrossEntropy, &device)
        .expect("evaluator");
    let p = ev.num_params();
    let theta = ParamVector::new(tensor_from_f64(
        arguments(p).iter().map(|v| v * 0.02).take(p).collect(),
        [p],
        &device,
        DType::F32,
    ));
    let v = ParamVector::new(tensor_from_f64(
        arguments(p).iter().rev().map(|v| v * 0.03).take(p).collect(),
        [p],
        &device,
        DType::F32,
    ));
    let x: Vec<f64> = arguments(300 * 20)
        .iter()
        .map(|v| (v / 60.0 + 0.5).clamp(0.0, 1.0))
        .take(300 * 20)
        .collect();
    let x = tensor_from_f64::<B, 2>(x, [300, 20], &device, DType::F32);
    let batch = DataBatch::new(x.clone(), x).expect("batch");
    let (_, g) = ev.gradient(&theta, &batch).expect("gradient");
    let op = CurvatureProduct::new(&ev, theta, batch, CurvatureKind::GaussNewton, 0.0).expect("operator");
    let gv = op.apply(&v).expect("product");
    (host(g.into_tensor()), host(gv.into_tensor()))
}

#[test]
fn gradients_and_gauss_newton_products_match_flex_in_f32() {
    let (g_fast, gv_fast) = gradient_and_product::<FastFlex>();
    let (g_flex, gv_flex) = gradient_and_product::<Flex>();
    let rel = |a: &[f32], b: &[f32]| {
        let d: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
        let n: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
        (d / n).sqrt()
    };
    assert!(
        rel(&g_fast, &g_flex) < 1e-5,
        "gradient off by {:e}",
        rel(&g_fast, &g_flex)
    );
    assert!(
        rel(&gv_fast, &gv_flex) < 1e-5,
        "GN product off by {:e}",
        rel(&gv_fast, &gv_flex)
    );
}
