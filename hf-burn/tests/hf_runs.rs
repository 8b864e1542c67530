//! Whole HF runs through hf-core's loop on a small regression problem, on every CPU
//! backend and precision: the loss must fall a long way, and a user-defined module
//! must train the same way.

use burn::backend::{Flex, NdArray};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::{tensor_from_f64, BurnProblem, DataBatch, FixedBatches, Network, Outputs, ProblemConfig, SquaredError};
use hf_core::{HessianFree, HfConfig, History, StepOutcome};

/// A user-defined module built from raw parameters rather than burn layers.
#[derive(Module, Debug)]
pub struct Tiny<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    b1: Param<Tensor<B, 1>>,
    w2: Param<Tensor<B, 2>>,
}

/// The architecture of [`Tiny`]: 2 → 8 tanh → 1.
#[derive(Clone, Debug)]
pub struct TinySpec;

impl Network<2> for TinySpec {
    type Module<B: Backend> = Tiny<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> Tiny<B> {
        let normal = burn::tensor::Distribution::Normal(0.0, 0.5);
        Tiny {
            w1: Param::from_tensor(Tensor::random([2, 8], normal, device)),
            b1: Param::from_tensor(Tensor::zeros([8], device)),
            w2: Param::from_tensor(Tensor::random([8, 1], normal, device)),
        }
    }

    fn forward<B: Backend>(&self, m: &Tiny<B>, x: Tensor<B, 2>) -> Outputs<B> {
        let h = (x.matmul(m.w1.val()) + m.b1.val().unsqueeze_dim(0)).tanh();
        Outputs::new(h.matmul(m.w2.val()))
    }
}

/// y = sin(x₀) · cos(x₁) on a grid: smooth, nonlinear, learnable by 8 tanh units.
fn data<B: Backend>(device: &B::Device, dtype: DType) -> DataBatch<B, 2> {
    let n = 64;
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..n {
        let (a, b) = ((i % 8) as f64 / 4.0 - 1.0, (i / 8) as f64 / 4.0 - 1.0);
        xs.extend([a, b]);
        ys.push((2.0 * a).sin() * (1.5 * b).cos());
    }
    DataBatch::new(
        tensor_from_f64(xs, [n, 2], device, dtype),
        tensor_from_f64(ys, [n, 1], device, dtype),
    )
    .unwrap()
}

/// Runs 30 HF iterations from a fixed start; returns the objective before the first
/// iteration and after each.
fn train<B: Backend>(dtype: DType) -> Vec<f64> {
    let device = Default::default();
    let batches = FixedBatches::split(data::<B>(&device, dtype), 1);
    let mut problem = BurnProblem::new(TinySpec, SquaredError, batches, ProblemConfig::default(), &device).unwrap();
    // The same start on every backend: 0.4·sin(k) for parameter k.
    let n = problem.evaluator().num_params();
    let start: Vec<f64> = (0..n).map(|k| 0.4 * (k as f64 + 1.0).sin()).collect();
    let theta = hf_burn::ParamVector::new(tensor_from_f64(start, [n], &device, dtype));
    let mut hf = HessianFree::new(HfConfig {
        initial_damping: Some(1.0),
        max_iterations: 30,
        ..Default::default()
    })
    .unwrap();
    let mut state = hf.init(theta);
    let mut history = History::default();
    hf.run(&mut problem, &mut state, &mut history).unwrap();
    assert!(history.iterations.iter().all(|r| r.objective <= r.objective_before));
    assert!(
        history
            .iterations
            .iter()
            .filter(|r| r.outcome == StepOutcome::Accepted)
            .count()
            >= 20
    );
    std::iter::once(history.iterations[0].objective_before)
        .chain(history.iterations.iter().map(|r| r.objective))
        .collect()
}

fn assert_learns(name: &str, objectives: Vec<f64>) {
    let (initial, last) = (objectives[0], *objectives.last().unwrap());
    assert!(last < 1e-3 * initial, "{name}: objective {initial:.4e} → {last:.4e}");
}

#[test]
fn hf_trains_a_user_module_on_ndarray_f64() {
    assert_learns("ndarray f64", train::<NdArray<f64>>(DType::F64));
}

#[test]
fn hf_trains_a_user_module_on_ndarray_f32() {
    assert_learns("ndarray f32", train::<NdArray<f32>>(DType::F32));
}

#[test]
fn hf_trains_a_user_module_on_flex_f32() {
    assert_learns("flex f32", train::<Flex>(DType::F32));
}

#[test]
fn backends_follow_the_same_trajectory() {
    // In f64 the two CPU backends agree step for step; rounding differences (summation
    // order) only grow visible after many nonlinear steps.
    let a = train::<NdArray<f64>>(DType::F64);
    let b = train::<Flex>(DType::F64);
    for (i, (x, y)) in a.iter().zip(&b).take(10).enumerate() {
        assert!(
            (x - y).abs() <= 1e-9 * x.abs(),
            "iteration {i}: ndarray {x} vs flex {y}"
        );
    }
    let (x, y) = (a[30], b[30]);
    assert!(
        (x - y).abs() <= 0.05 * x,
        "after 30 iterations: ndarray {x} vs flex {y}"
    );
}
