//! # hf-core
//!
//! Backend-agnostic Hessian-free (truncated-Newton) optimization: the traits a
//! backend implements ([`Vector`], [`CurvatureOperator`], [`Preconditioner`]), the
//! plug-in points a user implements ([`DampingStrategy`], [`Preconditioner`],
//! [`Solver`], [`Observer`]), the solvers ([`ConjugateGradient`] with Martens'
//! truncation rules, [`Lanczos`] with the GLTR trust-region step) and the outer loop
//! [`HessianFree`] over a [`Problem`].
//!
//! This crate never depends on a tensor library; `hf-burn` implements the traits on
//! burn tensors.
//!
//! # Example
//! Minimizing `f(x) = ½ xᵀAx − bᵀx` in one HF step with the exact Hessian:
//! ```
//! use hf_core::{Batch, CurvatureOperator, DenseOperator, HessianFree, HfConfig, Problem, Result};
//!
//! struct Quadratic { a: Vec<f64>, b: Vec<f64> }
//!
//! impl Quadratic {
//!     fn grad(&self, x: &[f64]) -> Vec<f64> {
//!         (0..2).map(|i| self.a[2 * i] * x[0] + self.a[2 * i + 1] * x[1] - self.b[i]).collect()
//!     }
//! }
//!
//! impl Problem for Quadratic {
//!     type Vector = Vec<f64>;
//!     fn objective(&mut self, x: &Vec<f64>, _: Batch) -> Result<f64> {
//!         let g = self.grad(x);
//!         Ok(0.5 * (x[0] * (g[0] - self.b[0]) + x[1] * (g[1] - self.b[1])))
//!     }
//!     fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
//!         Ok((self.objective(x, Batch::Gradient)?, self.grad(x)))
//!     }
//!     fn curvature<'a>(&'a mut self, _: &Vec<f64>, damping: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
//!         Ok(Box::new(DenseOperator::new(self.a.clone(), 2, damping)?))
//!     }
//! }
//!
//! let mut problem = Quadratic { a: vec![3.0, 1.0, 1.0, 2.0], b: vec![1.0, 1.0] };
//! let config = HfConfig { initial_damping: Some(0.0), max_iterations: 1, ..Default::default() };
//! let mut hf = HessianFree::new(config).unwrap();
//! let mut state = hf.init(vec![0.0, 0.0]);
//! hf.run(&mut problem, &mut state, &mut ()).unwrap();
//! assert!((state.theta[0] - 0.2).abs() < 1e-9 && (state.theta[1] - 0.4).abs() < 1e-9);
//! ```

pub mod cg;
pub mod config;
pub mod damped_step;
pub mod damping;
pub mod error;
pub mod hf;
pub mod kronecker;
pub mod lanczos;
pub mod observer;
pub mod operator;
pub mod preconditioner;
pub mod problem;
pub mod reduction;
pub mod rng;
pub mod solver;
pub mod state;
pub mod step_rule;
pub mod stepper;
pub mod tridiagonal;
pub mod trust_region_step;
pub mod vector;

pub use cg::{CgConfig, ConjugateGradient, ProgressRule, StorageSchedule};
pub use config::{HfConfig, LineSearchConfig, Mode, PreconditionerKind, RhoModel, TrustRegionConfig};
pub use damped_step::DampedStep;
pub use damping::{DampingStrategy, FixedDamping, LevenbergMarquardt};
pub use error::{BoxError, ConfigError, Error, Result};
pub use hf::{HessianFree, INITIAL_DAMPING_TRIES};
pub use kronecker::{spd_inverse, KroneckerConfig, KroneckerFactor};
pub use lanczos::{Lanczos, LanczosConfig};
pub use observer::{Control, History, IterationRecord, Observer, PhaseTimes, StepOutcome};
pub use operator::{check_dim, CurvatureOperator, DenseOperator, L2Regularized};
pub use preconditioner::{Diagonal, Identity, Preconditioner, PreconditionerContext};
pub use problem::{Batch, Problem};
pub use reduction::{ReducedOperator, Reduction, SingleWorker, ThreadReduction};
pub use rng::SplitMix64;
pub use solver::{
    QuadraticModel, SolveOutcome, Solver, SolverIterationRecord, SolverObserver, Spectrum, StoredIterate, Termination,
};
pub use state::{HfState, PluginState};
pub use step_rule::{StepRule, Trial};
pub use stepper::{drive, Limits, RunReport, Stepper, StopReason};
pub use trust_region_step::TrustRegionStep;
pub use vector::Vector;
