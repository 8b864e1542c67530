//! The GPU code path: burn-wgpu (in CI, Mesa's software Vulkan). Small on purpose —
//! that device is slow. Built and run only with `--features wgpu-tests` (Cargo.toml's
//! `required-features`), which `.ci/run` turns on after installing Mesa; without a
//! Vulkan device these tests then fail with a message saying what to install, never pass.

use burn::backend::wgpu::{Wgpu, WgpuDevice};
use burn::backend::NdArray;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::nn::linear;
use hf_burn::{
    logistic, tensor_from_f64, BurnProblem, CurvatureKind, CurvatureProduct, DataBatch, Evaluator, FixedBatches, Loss,
    Network, Outputs, ParamVector, ProblemConfig,
};
use hf_core::{CurvatureOperator, HessianFree, HfConfig};

/// The parameters of [`MlpSpec`].
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    l1: Linear<B>,
    l2: Linear<B>,
}

/// 4 → 6 (logistic) → 3.
#[derive(Clone, Debug)]
pub struct MlpSpec;

impl Network<2> for MlpSpec {
    type Module<B: Backend> = Mlp<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        Mlp {
            l1: LinearConfig::new(4, 6).init(device),
            l2: LinearConfig::new(6, 3).init(device),
        }
    }
    fn forward<B: Backend>(&self, m: &Mlp<B>, x: Tensor<B, 2>) -> Outputs<B> {
        Outputs::new(linear(&m.l2, logistic(linear(&m.l1, x)).tanh()))
    }
}

/// The wgpu device, or a failure that says how to get one.
fn gpu() -> WgpuDevice {
    let device = WgpuDevice::default();
    let probe = std::panic::catch_unwind(|| {
        let t = Tensor::<Wgpu, 1>::from_floats([1.0, 2.0], &WgpuDevice::default());
        t.sum().into_scalar()
    });
    match probe {
        Ok(s) if (s - 3.0).abs() < 1e-6 => device,
        _ => panic!(
            "no working wgpu device: these tests need a Vulkan driver. On Debian: \
             apt-get install mesa-vulkan-drivers libvulkan1 (software Vulkan is enough)"
        ),
    }
}

fn signal(n: usize, seed: f64) -> Vec<f64> {
    (0..n).map(|i| ((i as f64 + 1.0) * seed).sin()).collect()
}

fn batch<B: Backend>(device: &B::Device, dtype: DType) -> DataBatch<B, 2> {
    let n = 16;
    let x = tensor_from_f64(signal(n * 4, 0.7), [n, 4], device, dtype);
    let t: Vec<f64> = signal(n * 3, 1.3).iter().map(|v| 0.5 + 0.4 * v).collect();
    DataBatch::new(x, tensor_from_f64(t, [n, 3], device, dtype)).unwrap()
}

/// `(B v)` for the given kind, on backend `B`, from host θ and v.
fn product<B: Backend>(device: &B::Device, dtype: DType, kind: CurvatureKind, theta: &[f64], v: &[f64]) -> Vec<f64> {
    let ev = Evaluator::new(MlpSpec, Loss::LogisticCrossEntropy, device).unwrap();
    let p = theta.len();
    let th = ParamVector::new(tensor_from_f64(theta.to_vec(), [p], device, dtype));
    let op = CurvatureProduct::new(&ev, th, batch::<B>(device, dtype), kind, 0.0).unwrap();
    op.apply(&ParamVector::new(tensor_from_f64(v.to_vec(), [p], device, dtype)))
        .unwrap()
        .to_vec()
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    num / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

#[test]
fn curvature_products_on_wgpu_match_ndarray_f64() {
    let device = gpu();
    let p = 4 * 6 + 6 + 6 * 3 + 3;
    let theta: Vec<f64> = signal(p, 0.37).iter().map(|x| 0.6 * x).collect();
    let v = signal(p, 0.91);
    for kind in [
        CurvatureKind::GaussNewton,
        CurvatureKind::Hessian,
        CurvatureKind::EmpiricalFisher,
    ] {
        let reference = product::<NdArray<f64>>(&Default::default(), DType::F64, kind, &theta, &v);
        let got = product::<Wgpu>(&device, DType::F32, kind, &theta, &v);
        let e = rel_err(&got, &reference);
        assert!(
            e < 1e-4,
            "{kind:?} on wgpu (f32) vs ndarray (f64): relative error {e:e}"
        );
    }
}

#[test]
fn hf_decreases_the_loss_on_wgpu() {
    let device = gpu();
    let batches = FixedBatches::split(batch::<Wgpu>(&device, DType::F32), 1);
    let mut problem = BurnProblem::new(
        MlpSpec,
        Loss::LogisticCrossEntropy,
        batches,
        ProblemConfig::default(),
        &device,
    )
    .unwrap();
    let p = problem.evaluator().num_params();
    let theta = ParamVector::new(tensor_from_f64(signal(p, 0.37), [p], &device, DType::F32));
    let mut hf = HessianFree::new(HfConfig {
        initial_damping: Some(1.0),
        max_iterations: 8,
        ..Default::default()
    })
    .unwrap();
    let mut state = hf.init(theta);
    let mut history = hf_core::History::default();
    hf.run(&mut problem, &mut state, &mut history).unwrap();
    let first = history.iterations[0].objective_before;
    let last = history.iterations.last().unwrap().objective;
    assert!(last < first - 0.01, "objective {first} → {last}");
    assert!(history.iterations.iter().all(|r| r.objective <= r.objective_before));
}
