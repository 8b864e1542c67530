//! # hf-burn
//!
//! hf-core's traits on burn tensors: the same Hessian-free code runs on burn-flex and
//! burn-ndarray (CPU) and burn-wgpu (GPU, feature `wgpu`), the backend chosen by type
//! parameter.
//!
//! - [`ParamVector`]: any burn module's parameters as one device-resident vector.
//! - [`Network`]: an architecture usable on the plain backend and on one and two
//!   levels of autodiff; implement it for your own `#[derive(Module)]` network, and
//!   compute its `nn::Linear` layers with [`nn::linear`] (burn's fused `Linear::forward`
//!   cannot be differentiated twice).
//! - [`MatchingLoss`]: squared error, logistic and softmax cross-entropy, with their
//!   output Hessians.
//! - [`CurvatureProduct`]: Gauss-Newton, Hessian and empirical-Fisher products as
//!   [`hf_core::CurvatureOperator`]s, with [`StructuralDamping`]; `J v` through a
//!   [`JvpStrategy`] ([`DoubleBackward`] today).
//! - [`DiagonalEstimator`]: Martens' squared-gradient and Chapelle & Erhan's diagonal
//!   for [`hf_core::Diagonal`]; the squared gradients of a whole batch in one backward
//!   pass for networks that report their layers through [`AffineTaps`].
//! - [`BurnProblem`]: all of it as an [`hf_core::Problem`].
//!
//! # References
//! - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
//! - N. N. Schraudolph, "Fast curvature matrix-vector products for second-order
//!   gradient descent", Neural Computation, 2002.

pub mod backend;
pub mod batch;
pub mod curvature;
pub mod diagonal;
pub mod error;
pub mod evaluator;
pub mod jvp;
pub mod loss;
pub mod network;
pub mod nn;
pub mod params;
pub mod problem;
pub mod squared_gradients;
pub mod taps;
pub mod vector;

pub use backend::{lift, lift2, scalar, tensor_from_f64, Inner, Outer};
pub use batch::DataBatch;
pub use curvature::{CurvatureKind, CurvatureProduct, StructuralDamping};
pub use diagonal::DiagonalEstimator;
pub use error::{Error, Result};
pub use evaluator::{Evaluator, Templates};
pub use jvp::{DoubleBackward, JvpStrategy};
pub use loss::{logistic, LogisticCrossEntropy, Loss, MatchingLoss, SoftmaxCrossEntropy, SquaredError};
pub use network::{Network, Outputs};
pub use params::{flatten, load, ParamLayout};
pub use problem::{BatchSource, BurnProblem, FixedBatches, ProblemConfig};
pub use taps::AffineTaps;
pub use vector::ParamVector;
