//! hf-core's plug-in points driving a burn problem: the trust-region mode with the
//! Lanczos solver, a user-defined damping strategy and a user-defined preconditioner,
//! all outside both crates.

use std::cell::Cell;
use std::rc::Rc;

use burn::backend::NdArray;
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::{
    tensor_from_f64, BurnProblem, DataBatch, DiagonalEstimator, FixedBatches, Network, Outputs, ParamVector,
    ProblemConfig, SoftmaxCrossEntropy,
};
use hf_core::{
    DampingStrategy, HessianFree, HfConfig, History, Mode, Preconditioner, PreconditionerContext, StepOutcome, Vector,
};

type B = NdArray<f64>;

/// Softmax regression with a tanh hidden layer: 2 → 6 → 3 classes.
#[derive(Module, Debug)]
pub struct Classifier<B: Backend> {
    w1: Param<Tensor<B, 2>>,
    w2: Param<Tensor<B, 2>>,
}

/// The architecture of [`Classifier`].
#[derive(Clone, Debug)]
pub struct ClassifierSpec;

impl Network<2> for ClassifierSpec {
    type Module<B: Backend> = Classifier<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Classifier<B> {
        Classifier {
            w1: Param::from_tensor(Tensor::zeros([2, 6], device)),
            w2: Param::from_tensor(Tensor::zeros([6, 3], device)),
        }
    }
    fn forward<B: Backend>(&self, m: &Classifier<B>, x: Tensor<B, 2>) -> Outputs<B> {
        Outputs::new(x.matmul(m.w1.val()).tanh().matmul(m.w2.val()))
    }
}

/// Three well-separated clusters, one-hot targets.
fn clusters() -> DataBatch<B, 2> {
    let device = Default::default();
    let centers = [(-1.0, 0.0), (1.0, 0.5), (0.0, -1.2)];
    let mut x = Vec::new();
    let mut t = Vec::new();
    for i in 0..60 {
        let c = i % 3;
        let (a, b) = centers[c];
        x.extend([a + 0.2 * (i as f64 * 1.7).sin(), b + 0.2 * (i as f64 * 2.3).cos()]);
        t.extend((0..3).map(|k| if k == c { 1.0 } else { 0.0 }));
    }
    DataBatch::new(
        tensor_from_f64(x, [60, 2], &device, DType::F64),
        tensor_from_f64(t, [60, 3], &device, DType::F64),
    )
    .unwrap()
}

fn problem(diagonal: DiagonalEstimator) -> BurnProblem<B, ClassifierSpec, SoftmaxCrossEntropy, 2> {
    let config = ProblemConfig {
        diagonal,
        ..Default::default()
    };
    BurnProblem::new(
        ClassifierSpec,
        SoftmaxCrossEntropy,
        FixedBatches::split(clusters(), 1),
        config,
        &Default::default(),
    )
    .unwrap()
}

fn start(n: usize) -> ParamVector<B> {
    let values: Vec<f64> = (0..n).map(|k| 0.3 * ((k as f64) * 0.77 + 0.1).sin()).collect();
    ParamVector::new(tensor_from_f64(values, [n], &Default::default(), DType::F64))
}

#[test]
fn trust_region_mode_trains_a_burn_classifier() {
    let mut problem = problem(DiagonalEstimator::None);
    let mut hf = HessianFree::new(HfConfig {
        mode: Mode::TrustRegion,
        initial_damping: Some(0.0),
        max_iterations: 25,
        ..Default::default()
    })
    .unwrap();
    let mut state = hf.init(start(problem.evaluator().num_params()));
    let mut history = History::default();
    hf.run(&mut problem, &mut state, &mut history).unwrap();
    let first = history.iterations[0].objective_before;
    let last = history.iterations.last().unwrap().objective;
    assert!(last < 0.05 * first, "cross-entropy {first} → {last}");
    // The step respects the radius up to Lanczos' loss of orthogonality (no
    // reorthogonalization by default): ‖U h‖ = ‖h‖ only approximately.
    for r in history.iterations.iter().filter(|r| r.outcome == StepOutcome::Accepted) {
        assert!(r.step_norm <= r.radius.unwrap() * (1.0 + 1e-4), "{r:?}");
    }
}

/// Doubles λ after poor steps, thirds it after good ones.
struct Steep(Rc<Cell<usize>>);

impl DampingStrategy for Steep {
    fn update(&mut self, lambda: f64, rho: f64) -> f64 {
        self.0.set(self.0.get() + 1);
        if rho.is_finite() && rho > 0.5 {
            lambda / 3.0
        } else {
            lambda * 2.0
        }
    }
}

/// Jacobi preconditioning from the problem's diagonal, `M = d + λ`, counting uses.
struct Jacobi {
    inverse: Option<ParamVector<B>>,
    applies: Rc<Cell<usize>>,
}

impl Preconditioner<ParamVector<B>> for Jacobi {
    fn apply(&self, r: &ParamVector<B>) -> hf_core::Result<ParamVector<B>> {
        self.applies.set(self.applies.get() + 1);
        let mut out = r.clone();
        if let Some(inv) = &self.inverse {
            out.mul_elem(inv);
        }
        Ok(out)
    }

    fn wants_diagonal(&self) -> bool {
        true
    }

    fn update(&mut self, ctx: &PreconditionerContext<'_, ParamVector<B>>) -> hf_core::Result<()> {
        self.inverse = ctx.diagonal.map(|d| {
            let mut m = d.clone();
            m.add_scalar(ctx.damping);
            m.powf_elem(-1.0);
            m
        });
        Ok(())
    }
}

#[test]
fn user_damping_and_preconditioner_drive_a_burn_problem() {
    let updates = Rc::new(Cell::new(0));
    let applies = Rc::new(Cell::new(0));
    let mut problem = problem(DiagonalEstimator::ChapelleErhan { samples: 8, seed: 7 });
    let mut hf = HessianFree::new(HfConfig {
        initial_damping: Some(1.0),
        max_iterations: 15,
        ..Default::default()
    })
    .unwrap()
    .with_damping(Box::new(Steep(updates.clone())))
    .unwrap()
    .with_preconditioner(Box::new(Jacobi {
        inverse: None,
        applies: applies.clone(),
    }));
    let mut state = hf.init(start(problem.evaluator().num_params()));
    let mut history = History::default();
    hf.run(&mut problem, &mut state, &mut history).unwrap();
    assert_eq!(updates.get(), 15);
    assert!(applies.get() > 15);
    let first = history.iterations[0].objective_before;
    let last = history.iterations.last().unwrap().objective;
    assert!(last < 0.05 * first, "cross-entropy {first} → {last}");
}
