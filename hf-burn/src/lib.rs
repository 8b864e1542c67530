//! # hf-burn
//!
//! hf-core's traits on burn tensors: the same Hessian-free code runs on burn-flex and
//! burn-ndarray (CPU) and burn-wgpu (GPU, feature `wgpu`), the backend chosen by type
//! parameter.
//!
//! - [`ParamVector`]: any burn module's parameters as one device-resident vector.
//! - [`Network`]: an architecture usable on every backend level it runs on (plain,
//!   autodiff, dual numbers); implement it for your own `#[derive(Module)]` network,
//!   built from ordinary `burn::nn` modules.
//! - [`dual`]: forward-mode differentiation for burn, the [`Dual`] backend decorator.
//! - [`fast`]: the [`FastCpu`](fast::FastCpu) backend decorator, burn-flex with
//!   vectorized, multi-threaded `tanh`, `exp`, `ln` and logistic functions
//!   ([`fast::FastFlex`], hf's fastest CPU backend).
//! - [`MatchingLoss`]: squared error, logistic and softmax cross-entropy, with their
//!   output Hessians.
//! - [`CurvatureProduct`]: Gauss-Newton, Hessian and empirical-Fisher products as
//!   [`hf_core::CurvatureOperator`]s, with [`StructuralDamping`]; `J v` through a
//!   [`JvpStrategy`]: [`ForwardMode`] (the default: one dual forward pass and one
//!   backward pass per Gauss-Newton product) or [`DoubleBackward`] (the cross-check).
//! - [`DiagonalEstimator`]: Martens' squared-gradient and Chapelle & Erhan's diagonal
//!   for [`hf_core::Diagonal`]; the squared gradients of a whole batch in one backward
//!   pass for networks that report their layers through [`AffineTaps`].
//! - [`check_curvature`]: a new architecture's products against central differences.
//! - [`BurnProblem`]: all of it as an [`hf_core::Problem`].
//!
//! # References
//! - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
//! - N. N. Schraudolph, "Fast curvature matrix-vector products for second-order
//!   gradient descent", Neural Computation, 2002.

pub mod backend;
pub mod batch;
pub mod check;
pub mod collective;
pub mod curvature;
mod decorator;
pub mod diagonal;
pub mod dual;
pub mod error;
pub mod evaluator;
pub mod fast;
pub mod jvp;
pub mod kronecker_factors;
pub mod kronecker_preconditioner;
pub mod loss;
pub mod network;
pub mod nn;
pub mod params;
pub mod peak_alloc;
pub mod problem;
pub mod shard;
pub mod squared_gradients;
pub mod taps;
pub mod templates;
pub mod train;
pub mod vector;

pub use backend::{lift, lift2, scalar, tensor_from_f64, Inner, Outer};
pub use batch::DataBatch;
pub use check::{check_curvature, CurvatureCheck};
pub use collective::{worker_device, CollectiveReduction, DEFAULT_COLLECTIVE_TIMEOUT};
pub use curvature::{CurvatureKind, CurvatureProduct, StructuralDamping, StructuralDistance};
pub use diagonal::DiagonalEstimator;
pub use dual::Dual;
pub use error::{Error, Result};
pub use evaluator::Evaluator;
pub use jvp::{DoubleBackward, ForwardMode, Jvp, JvpStrategy};
pub use kronecker_preconditioner::{hessian_free, KroneckerFactored};
pub use loss::{logistic, LogisticCrossEntropy, Loss, MatchingLoss, SoftmaxCrossEntropy, SquaredError};
pub use network::{Network, Outputs};
pub use params::{cut, flatten, load, load_pieces, ParamLayout};
pub use problem::{BatchSource, BurnProblem, FixedBatches, ProblemConfig};
pub use shard::Shard;
pub use taps::AffineTaps;
pub use templates::Templates;
pub use train::{Trainer, TrainerConfig, TrainingObserver};
pub use vector::ParamVector;
