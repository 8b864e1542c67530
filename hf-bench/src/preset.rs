//! The papers' experiments as named presets, with their default settings.

use std::path::PathBuf;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use hf_burn::train::TrainerConfig;
use hf_burn::{CurvatureKind, DiagonalEstimator, ProblemConfig, StructuralDistance};
use hf_core::{CgConfig, HfConfig, PreconditionerKind};
use hf_models::{AutoencoderSpec, BatchSizes, ClassifierSpec, Task, TaskSpec};

use crate::settings::{AdamSettings, RunConfig, SgdSettings};

/// A named experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// A small CURVES autoencoder (784-200-50-10, mirrored) on 5000 generated images: a few minutes on 2 CPU cores.
    CurvesSmall,
    /// A tiny CURVES autoencoder for smoke tests (seconds).
    Tiny,
    /// Martens' CURVES autoencoder, 784-400-200-100-50-25-6 mirrored, 20 000 generated images.
    Curves,
    /// Martens' MNIST autoencoder, 784-1000-500-250-30 mirrored, on MNIST: its IDX files in --data-dir (default data/mnist); hessfree downloads nothing.
    Mnist,
    /// The MNIST autoencoder on Fashion-MNIST (default: Debian's dataset-fashion-mnist files).
    FashionMnist,
    /// Martens' FACES autoencoder, 625-2000-1000-500-30 mirrored (needs faces IDX files in --data-dir).
    Faces,
    /// `curves` in the minibatch regime: fresh gradient minibatches, short CG runs.
    CurvesMinibatch,
    /// `mnist` in the minibatch regime.
    MnistMinibatch,
    /// `fashion-mnist` in the minibatch regime.
    FashionMnistMinibatch,
    /// `faces` in the minibatch regime.
    FacesMinibatch,
    /// A 784-500-10 softmax classifier on MNIST-format data (default: Debian's Fashion-MNIST).
    Classifier,
    /// RNN: sum of two marked values.
    Addition,
    /// RNN: product of two marked values.
    Multiplication,
    /// RNN: XOR of two marked bits.
    Xor,
    /// RNN: order of two marked symbols.
    TemporalOrder2,
    /// RNN: order of three marked symbols.
    TemporalOrder3,
    /// RNN: recall the first of 100 symbols.
    RandomPermutation,
    /// RNN: recall 5 bits.
    Memorization5,
    /// RNN: recall 10 characters of 5 symbols.
    Memorization20,
}

/// The data of an autoencoder experiment.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Generated CURVES-like images: training count, held-out count.
    Curves {
        /// Training images.
        train: usize,
        /// Held-out images.
        held_out: usize,
    },
    /// MNIST-format IDX files in a directory.
    Mnist(PathBuf),
    /// `faces-images-idx3-ubyte` (25 × 25) in a directory.
    Faces(PathBuf),
}

/// What a preset trains.
#[derive(Debug, Clone, PartialEq)]
pub enum Experiment {
    /// A deep autoencoder on images.
    Autoencoder(AutoencoderSpec, ImageSource),
    /// A classifier on MNIST-format data.
    Classifier(ClassifierSpec, PathBuf),
    /// A recurrent network on a pathological task.
    Rnn(TaskSpec),
}

/// Where the `mnist` preset looks for MNIST without `--data-dir`.
pub const DEFAULT_MNIST_DIR: &str = "data/mnist";

/// How to get MNIST, for the error when its files are missing.
pub const MNIST_HINT: &str = "the mnist preset trains on MNIST itself: put train-images-idx3-ubyte.gz, \
     train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (from \
     https://yann.lecun.com/exdb/mnist/ or a mirror; hessfree downloads nothing) in data/mnist or pass their directory \
     with --data-dir; for Fashion-MNIST (Debian's dataset-fashion-mnist) use --preset fashion-mnist";

/// Default sequence length `T` of the RNN tasks (the papers' smallest).
pub const DEFAULT_SEQ_LEN: usize = 100;

/// What a preset's experiment is built from besides the preset itself.
pub struct Inputs {
    /// `--data-dir`, if given.
    pub data_dir: Option<PathBuf>,
    /// The RNN tasks' minimum length `T`.
    pub seq_len: usize,
}

/// One row of the preset table: the default settings and how to build the experiment.
struct Row {
    defaults: RunConfig,
    experiment: fn(&Inputs) -> Result<Experiment, hf_models::DataError>,
}

/// Settings shared by the presets, overridden per row.
fn base(
    max_iterations: usize,
    batches: BatchSizes,
    initial_damping: f64,
    cg_max: usize,
    problem: ProblemConfig,
) -> RunConfig {
    RunConfig {
        trainer: TrainerConfig {
            checkpoint_every: 10,
            ..Default::default()
        },
        batches,
        hf: HfConfig {
            max_iterations,
            initial_damping: Some(initial_damping),
            cg: CgConfig {
                max_iterations: cg_max,
                ..Default::default()
            },
            ..Default::default()
        },
        problem,
        adam: AdamSettings::default(),
        sgd: SgdSettings::default(),
    }
}

/// Feed-forward networks: Gauss-Newton with Martens' squared-gradient diagonal of a
/// fresh random 1000 cases of the gradient batch each iteration (the whole batch when
/// it is smaller), in one pass: about 5% of a full-batch gradient on CURVES' 20000 cases.
const FEED_FORWARD: ProblemConfig = ProblemConfig {
    curvature: CurvatureKind::GaussNewton,
    structural_damping: None,
    structural_distance: StructuralDistance::TanhMatching,
    diagonal: DiagonalEstimator::SquaredGradients { max_cases: 1000 },
};

/// RNNs: structural damping on, its distance the tanh units' matching loss (the
/// paper's), Martens' diagonal preconditioner off (the papers found it does not help
/// RNNs, and it costs a through-time backward pass per case).
const RECURRENT: ProblemConfig = ProblemConfig {
    curvature: CurvatureKind::GaussNewton,
    structural_damping: Some(0.03),
    structural_distance: StructuralDistance::TanhMatching,
    diagonal: DiagonalEstimator::None,
};

fn sizes(gradient: usize, curvature: usize) -> BatchSizes {
    BatchSizes { gradient, curvature }
}

/// Cases in the minibatch regime's gradient batch, drawn afresh every iteration.
pub const MINIBATCH_GRADIENT: usize = 2000;
/// The minibatch regime's curvature batch, a slice of the gradient batch.
pub const MINIBATCH_CURVATURE: usize = 500;
/// The minibatch regime's cap on CG iterations.
pub const MINIBATCH_CG_MAX: usize = 25;

/// `full_batch` in the minibatch regime of stochastic HF (Kiros, "Training neural
/// networks with stochastic Hessian-free optimization", ICLR 2013; Martens &
/// Sutskever 2012, §"mini-batches"): a fresh random gradient batch of
/// [`MINIBATCH_GRADIENT`] cases each iteration, a curvature batch of a quarter of it
/// ([`MINIBATCH_CURVATURE`]), CG capped at [`MINIBATCH_CG_MAX`] iterations, so that
/// an iteration costs a few full-batch gradients instead of dozens, and many
/// iterations see the data; everything else, `λ₀` included, as `full_batch`.
/// (Martens' `λ₀ = 45` rather than the search of an unset `λ₀`: with CG capped this
/// short, the truncation itself damps the first iteration's trial steps, whose `ρ`
/// then stays good down to tiny `λ`; on `curves` the search ended at `2·10⁻⁵` and
/// the following iterations had `ρ` from −276 to −0.03 while `λ` climbed back.)
pub fn minibatch_regime(mut full_batch: RunConfig) -> RunConfig {
    full_batch.batches = sizes(MINIBATCH_GRADIENT, MINIBATCH_CURVATURE);
    full_batch.hf.cg.max_iterations = MINIBATCH_CG_MAX;
    full_batch
}

/// The RNN tasks' settings. λ₀ = 1: with the objective and the curvature averaged over
/// output rows, Sutskever's 0.01 × outputs left ρ < 0 for the first eight iterations on
/// addition at T = 50 (λ then needs many ×3/2 rises to become useful), while λ₀ = 1
/// gave ρ ≈ 1 from the first iteration (docs/RESULTS.md). 1000 fresh sequences per
/// iteration for the gradient, a tenth of them for the curvature.
fn rnn_task() -> RunConfig {
    let mut cfg = base(200, sizes(1000, 100), 1.0, 300, RECURRENT);
    cfg.hf.preconditioner = PreconditionerKind::Identity;
    cfg
}

fn autoencoder(encoder: &[usize], source: ImageSource) -> Experiment {
    Experiment::Autoencoder(
        AutoencoderSpec {
            encoder: encoder.to_vec(),
            output: hf_models::AutoencoderOutput::Logistic,
        },
        source,
    )
}

fn fashion_dir(inputs: &Inputs) -> PathBuf {
    inputs
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(hf_models::idx::DEBIAN_FASHION_MNIST))
}

fn task(t: Task, inputs: &Inputs) -> Result<Experiment, hf_models::DataError> {
    TaskSpec::new(t, inputs.seq_len).map(Experiment::Rnn)
}

impl Preset {
    /// The preset table: each preset's network, data and settings in one place (a new
    /// preset is a variant above and a row here).
    fn row(self) -> Row {
        let row = |defaults, experiment| Row { defaults, experiment };
        let martens = || base(200, sizes(0, 5000), 45.0, 250, FEED_FORWARD);
        match self {
            Preset::CurvesSmall => row(base(30, sizes(0, 1000), 1.0, 60, FEED_FORWARD), |_| {
                let source = ImageSource::Curves {
                    train: 5000,
                    held_out: 1000,
                };
                Ok(autoencoder(&[784, 200, 50, 10], source))
            }),
            Preset::Tiny => {
                let mut cfg = base(4, sizes(0, 32), 1.0, 20, FEED_FORWARD);
                cfg.trainer.checkpoint_every = 2;
                cfg.problem.diagonal = DiagonalEstimator::SquaredGradients { max_cases: 8 };
                row(cfg, |_| {
                    Ok(autoencoder(
                        &[784, 16, 4],
                        ImageSource::Curves {
                            train: 96,
                            held_out: 32,
                        },
                    ))
                })
            }
            Preset::Curves => row(martens(), |_| {
                let source = ImageSource::Curves {
                    train: 20_000,
                    held_out: 10_000,
                };
                Ok(Experiment::Autoencoder(AutoencoderSpec::curves(), source))
            }),
            Preset::Mnist => row(martens(), |inputs| {
                let dir = inputs
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_MNIST_DIR));
                Ok(Experiment::Autoencoder(
                    AutoencoderSpec::mnist(),
                    ImageSource::Mnist(dir),
                ))
            }),
            Preset::FashionMnist => row(martens(), |inputs| {
                let source = ImageSource::Mnist(fashion_dir(inputs));
                Ok(Experiment::Autoencoder(AutoencoderSpec::mnist(), source))
            }),
            Preset::Faces => row(martens(), |inputs| {
                let dir = inputs.data_dir.clone().unwrap_or_else(|| PathBuf::from("data/faces"));
                Ok(Experiment::Autoencoder(
                    AutoencoderSpec::faces(),
                    ImageSource::Faces(dir),
                ))
            }),
            Preset::CurvesMinibatch
            | Preset::MnistMinibatch
            | Preset::FashionMnistMinibatch
            | Preset::FacesMinibatch => {
                let full = self.full_batch().row();
                row(minibatch_regime(full.defaults), full.experiment)
            }
            Preset::Classifier => row(base(100, sizes(0, 5000), 1.0, 100, FEED_FORWARD), |inputs| {
                Ok(Experiment::Classifier(ClassifierSpec::mnist(), fashion_dir(inputs)))
            }),
            Preset::Addition => row(rnn_task(), |i| task(Task::Addition, i)),
            Preset::Multiplication => row(rnn_task(), |i| task(Task::Multiplication, i)),
            Preset::Xor => row(rnn_task(), |i| task(Task::Xor, i)),
            Preset::TemporalOrder2 => row(rnn_task(), |i| task(Task::TemporalOrder2, i)),
            Preset::TemporalOrder3 => row(rnn_task(), |i| task(Task::TemporalOrder3, i)),
            Preset::RandomPermutation => row(rnn_task(), |i| task(Task::RandomPermutation, i)),
            Preset::Memorization5 => row(rnn_task(), |i| task(Task::Memorization5Bit, i)),
            Preset::Memorization20 => row(rnn_task(), |i| task(Task::Memorization20Bit, i)),
        }
    }

    /// The full-batch preset a minibatch preset is the minibatch regime of (itself
    /// for every other preset): the same network and data.
    pub fn full_batch(self) -> Preset {
        match self {
            Preset::CurvesMinibatch => Preset::Curves,
            Preset::MnistMinibatch => Preset::Mnist,
            Preset::FashionMnistMinibatch => Preset::FashionMnist,
            Preset::FacesMinibatch => Preset::Faces,
            p => p,
        }
    }

    /// The experiment, with data read from `data_dir` where it needs files.
    pub fn experiment(self, data_dir: Option<PathBuf>, seq_len: usize) -> Result<Experiment, hf_models::DataError> {
        (self.row().experiment)(&Inputs { data_dir, seq_len })
    }

    /// The preset's default settings.
    pub fn defaults(self) -> RunConfig {
        self.row().defaults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overrides_one_setting_by_its_path() {
        let cfg = Preset::Tiny.defaults();
        let set = cfg
            .clone()
            .with_assignment("hf.cg.max_iterations=50")
            .unwrap()
            .with_assignment("hf.time_budget_s=12.5")
            .unwrap()
            .with_assignment("problem.curvature=empirical_fisher")
            .unwrap();
        assert_eq!(set.hf.cg.max_iterations, 50);
        assert_eq!(set.hf.time_budget_s, Some(12.5));
        assert_eq!(set.problem.curvature, hf_burn::CurvatureKind::EmpiricalFisher);
        assert_eq!(set.hf.initial_damping, cfg.hf.initial_damping, "nothing else changes");

        for (bad, needle) in [
            ("hf.cg.max_iteration=5", "`hf.cg.max_iteration` is not a setting"),
            ("hf.max_iterations=many", "--set hf.max_iterations=many"),
            ("hf", "expected path.to.key=value"),
        ] {
            let e = cfg.clone().with_assignment(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    const RNN_TASKS: [Preset; 8] = [
        Preset::Addition,
        Preset::Multiplication,
        Preset::Xor,
        Preset::TemporalOrder2,
        Preset::TemporalOrder3,
        Preset::RandomPermutation,
        Preset::Memorization5,
        Preset::Memorization20,
    ];

    #[test]
    fn every_row_of_the_table_builds_and_validates() {
        for &p in Preset::value_variants() {
            p.defaults().validate().unwrap();
            p.experiment(None, DEFAULT_SEQ_LEN).unwrap();
        }
        assert_eq!(Preset::Tiny.defaults().trainer.checkpoint_every, 2);
        assert_eq!(Preset::Mnist.defaults(), Preset::FashionMnist.defaults());
        match Preset::Mnist.experiment(None, DEFAULT_SEQ_LEN).unwrap() {
            Experiment::Autoencoder(_, ImageSource::Mnist(dir)) => assert_eq!(dir, PathBuf::from(DEFAULT_MNIST_DIR)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn minibatch_presets_are_their_autoencoders_with_fresh_minibatches_and_short_cg() {
        for (mini, full) in [
            (Preset::CurvesMinibatch, Preset::Curves),
            (Preset::MnistMinibatch, Preset::Mnist),
            (Preset::FashionMnistMinibatch, Preset::FashionMnist),
            (Preset::FacesMinibatch, Preset::Faces),
        ] {
            assert_eq!(mini.full_batch(), full);
            assert_eq!(full.full_batch(), full);
            assert_eq!(
                mini.experiment(None, DEFAULT_SEQ_LEN).unwrap(),
                full.experiment(None, DEFAULT_SEQ_LEN).unwrap()
            );
            let (m, f) = (mini.defaults(), full.defaults());
            assert_eq!(
                (m.batches.gradient, m.batches.curvature),
                (MINIBATCH_GRADIENT, MINIBATCH_CURVATURE)
            );
            assert_eq!(m.hf.cg.max_iterations, MINIBATCH_CG_MAX);
            assert_eq!((m.hf.initial_damping, f.hf.initial_damping), (Some(45.0), Some(45.0)));
            assert_eq!(f.batches.gradient, 0);
            assert_eq!((m.problem, m.hf.preconditioner), (f.problem, f.hf.preconditioner));
        }
    }

    #[test]
    fn rnn_presets_use_structural_damping_without_the_diagonal_preconditioner() {
        for p in RNN_TASKS {
            let cfg = p.defaults();
            assert_eq!(cfg.problem.structural_damping, Some(0.03), "{p:?}");
            assert_eq!(
                cfg.problem.structural_distance,
                StructuralDistance::TanhMatching,
                "{p:?}: the paper's distance"
            );
            assert_eq!(cfg.problem.diagonal, DiagonalEstimator::None, "{p:?}");
            assert_eq!(cfg.hf.preconditioner, PreconditionerKind::Identity, "{p:?}");
            assert_eq!((cfg.batches.gradient, cfg.batches.curvature), (1000, 100), "{p:?}");
            cfg.validate().unwrap();
        }
        // The feed-forward presets keep Martens' preconditioner.
        let ae = Preset::Curves.defaults();
        assert_eq!(ae.hf.preconditioner, PreconditionerKind::MartensDiagonal);
        assert!(matches!(
            ae.problem.diagonal,
            DiagonalEstimator::SquaredGradients { .. }
        ));
    }
}
