//! Data parallelism on burn-collective: workers with shards of every batch take the
//! path one worker takes on the whole batches.
//!
//! burn-collective keeps one local server per backend type per process, so the runs
//! here are sequential, inside one test function.

use std::sync::Arc;

use burn::backend::NdArray;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::train::{Trainer, TrainerConfig, TrainingStop};
use hf_burn::{
    tensor_from_f64, BatchSource, BurnProblem, CollectiveReduction, DataBatch, DiagonalEstimator, Network, Outputs,
    ParamVector, ProblemConfig, SquaredError,
};
use hf_core::{HfConfig, PreconditionerKind, Reduction, SplitMix64, StopReason, Vector};

type Nd = NdArray<f64>;

#[derive(Module, Debug)]
struct Mlp<B: Backend> {
    hidden: Linear<B>,
    out: Linear<B>,
}

/// 3-10-2 with tanh, its layers reported to K-FAC through `hf_burn::nn::linear`.
#[derive(Clone, Debug)]
struct MlpNet;

impl Network<2> for MlpNet {
    type Module<B: Backend> = Mlp<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        Mlp {
            hidden: LinearConfig::new(3, 10).init(device),
            out: LinearConfig::new(10, 2).init(device),
        }
    }

    fn forward<B: Backend>(&self, m: &Mlp<B>, x: Tensor<B, 2>) -> Outputs<B> {
        Outputs::new(m.out.forward(m.hidden.forward(x).tanh()))
    }
}

/// Random minibatches (gradient 150, curvature 30 cases) of 400 fixed cases: the
/// same draws on every worker, which keeps its shard of each.
struct Minibatches {
    data: DataBatch<Nd, 2>,
    rng: SplitMix64,
}

impl Minibatches {
    fn new() -> Self {
        let mut rng = SplitMix64::new(11);
        let n = 400;
        let x: Vec<f64> = (0..3 * n).map(|_| 2.0 * rng.uniform() - 1.0).collect();
        let y: Vec<f64> = x
            .chunks(3)
            .flat_map(|p| [(2.0 * p[0]).sin() + p[1] * p[2], p[0] * p[1] - p[2]])
            .collect();
        let device = Default::default();
        let data = DataBatch::new(
            tensor_from_f64(x, [n, 3], &device, DType::F64),
            tensor_from_f64(y, [n, 2], &device, DType::F64),
        )
        .unwrap();
        Self {
            data,
            rng: SplitMix64::new(5),
        }
    }

    fn draw(&mut self, k: usize) -> DataBatch<Nd, 2> {
        self.data.select(&self.rng.choose(self.data.len(), k)).unwrap()
    }
}

impl BatchSource<Nd, 2> for Minibatches {
    fn gradient_batch(&mut self, _iteration: usize) -> hf_burn::Result<DataBatch<Nd, 2>> {
        Ok(self.draw(150))
    }

    fn curvature_batch(&mut self, _iteration: usize) -> hf_burn::Result<DataBatch<Nd, 2>> {
        Ok(self.draw(30))
    }
}

/// θ after `iterations` HF iterations of one worker of `reduction`'s group (one
/// worker alone when `None`), from a fixed start.
fn train(
    hf: &HfConfig,
    problem_config: ProblemConfig,
    reduction: Option<Arc<dyn Reduction<ParamVector<Nd>>>>,
) -> (Vec<f64>, usize) {
    let device = Default::default();
    let mut problem = BurnProblem::new(MlpNet, SquaredError, Minibatches::new(), problem_config, &device).unwrap();
    if let Some(r) = reduction {
        problem = problem.data_parallel(r);
    }
    let optimizer = hf_burn::hessian_free::<Nd>(hf.clone(), &device, DType::F64).unwrap();
    let mut trainer = Trainer::new(problem, optimizer, TrainerConfig::default()).unwrap();
    let mut state = trainer.init(&device).unwrap();
    let mut rng = SplitMix64::new(3);
    let theta: Vec<f64> = (0..state.theta.len()).map(|_| 0.5 * rng.normal()).collect();
    state.theta = ParamVector::new(tensor_from_f64(theta.clone(), [theta.len()], &device, DType::F64));
    let report = trainer.run(&mut state).unwrap();
    assert_eq!(report.stop, TrainingStop::Optimizer(StopReason::MaxIterations));
    (state.theta.to_vec(), state.curvature_products)
}

fn relative_difference(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    diff / norm
}

/// The check: θ after 5 HF iterations of 2 workers, each with half of every
/// batch, equals one worker's on the whole batches to 1e-10, on every preconditioner
/// whose statistics are linear in the batch; identical on both workers always.
///
/// λ₀ = 10: at λ₀ = 1 this small network's run amplifies rounding (θ₀ perturbed by
/// 1e-15 moves θ₅ by 2e-6 relative, measured), so no summation order could match to
/// 1e-10; at λ₀ = 10 the same perturbation moves θ₅ by 1e-15.
#[test]
fn two_workers_with_half_batches_reach_one_workers_parameters() {
    let hf = HfConfig {
        max_iterations: 5,
        initial_damping: Some(10.0),
        ..Default::default()
    };
    let cases = [
        // Martens' diagonal on a random 60 of the 150 gradient cases (the subset
        // spans both shards).
        (
            "Martens diagonal, random subset",
            true,
            hf.clone(),
            ProblemConfig {
                diagonal: DiagonalEstimator::SquaredGradients { max_cases: 60 },
                ..Default::default()
            },
        ),
        // Chapelle & Erhan's estimate squares a sum over the cases, so shards drop
        // the cross terms between them: unbiased still, but not the same numbers.
        (
            "Chapelle-Erhan diagonal",
            false,
            hf.clone(),
            ProblemConfig {
                diagonal: DiagonalEstimator::ChapelleErhan { samples: 2, seed: 7 },
                ..Default::default()
            },
        ),
        (
            "K-FAC preconditioner",
            true,
            HfConfig {
                preconditioner: PreconditionerKind::KroneckerFactored,
                ..hf.clone()
            },
            ProblemConfig::default(),
        ),
    ];
    for (name, exact, hf, problem) in cases {
        let (single, products) = train(&hf, problem, None);
        let workers: Vec<_> = (0..2)
            .map(|rank| {
                let hf = hf.clone();
                std::thread::spawn(move || {
                    let r = CollectiveReduction::<Nd>::local(rank, 2, Default::default()).unwrap();
                    train(&hf, problem, Some(Arc::new(r)))
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(
            results[0], results[1],
            "{name}: both workers hold the same θ, bit for bit"
        );
        assert!(products >= 5, "{name}: CG ran ({products} products)");
        if exact {
            assert_eq!(results[0].1, products, "{name}: the same number of curvature products");
            let d = relative_difference(&results[0].0, &single);
            eprintln!("{name}: 2 workers vs 1: relative difference {d:e}");
            assert!(d < 1e-10, "{name}: 2 workers vs 1: relative difference {d:e}");
        }
    }
}

#[test]
fn workers_that_start_from_different_parameters_are_refused() {
    // Thread workers, so this test may run beside the burn-collective one.
    let workers: Vec<_> = hf_core::ThreadReduction::<ParamVector<Nd>>::group(2)
        .into_iter()
        .map(|r| {
            std::thread::spawn(move || {
                let device = Default::default();
                let problem = BurnProblem::new(
                    MlpNet,
                    SquaredError,
                    Minibatches::new(),
                    ProblemConfig::default(),
                    &device,
                )
                .unwrap()
                .data_parallel(Arc::new(r));
                let hf = HfConfig {
                    max_iterations: 2,
                    ..Default::default()
                };
                let optimizer = hf_burn::hessian_free::<Nd>(hf, &device, DType::F64).unwrap();
                let mut trainer = Trainer::new(problem, optimizer, TrainerConfig::default()).unwrap();
                // burn's initializer: a different θ on each worker.
                let mut state = trainer.init(&device).unwrap();
                trainer.run(&mut state).map(|_| ())
            })
        })
        .collect();
    for w in workers {
        let err = w.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("workers disagree on the parameters"), "{err}");
    }
}

#[test]
fn a_worker_that_stops_answering_is_named_within_the_timeout() {
    // Flex, not the other test's NdArray<f64>: burn-collective has one local server per
    // backend type, and this test leaves a sum unfinished on its server.
    type B = burn::backend::Flex;
    let timeout = std::time::Duration::from_secs(1);
    let workers: Vec<_> = (0..2)
        .map(|rank| {
            std::thread::spawn(move || {
                let config = burn::collective::CollectiveConfig::default().with_num_devices(2);
                let r = CollectiveReduction::<B>::new(rank, 2, Default::default(), config, timeout).unwrap();
                if rank == 1 {
                    // Registered, then silent until worker 0 has given up; never leaves.
                    std::thread::sleep(timeout * 3);
                    std::mem::forget(r);
                    return None;
                }
                let v = ParamVector::new(Tensor::<B, 1>::ones([4], &Default::default()));
                let clock = std::time::Instant::now();
                let err = r.sum_vector(v.clone()).unwrap_err().to_string();
                let elapsed = clock.elapsed();
                // Once lost, always lost: no further collective is tried.
                let again = r.sum_vector(v).unwrap_err().to_string();
                Some((err, again, elapsed))
            })
        })
        .collect();
    let results: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let (err, again, elapsed) = results[0].clone().unwrap();
    assert!(
        err.contains("worker 0 lost worker 1") && err.contains("no answer in 1 s"),
        "{err}"
    );
    assert!(again.contains("lost worker 1"), "{again}");
    assert!(elapsed >= timeout && elapsed < timeout * 3, "{elapsed:?}");
}
