//! The quadratic subproblem and what solvers return.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::operator::CurvatureOperator;
use crate::preconditioner::Preconditioner;

/// The damped quadratic model `q(p) = ½ pᵀ A p + gᵀ p` with `A = B + λI`,
/// plus how to solve it: a preconditioner, an optional warm start and an optional
/// trust-region radius.
pub struct QuadraticModel<'a, V> {
    /// `A = B + λI`.
    pub operator: &'a dyn CurvatureOperator<V>,
    /// `g`, the gradient of the objective.
    pub gradient: &'a V,
    /// `M⁻¹`.
    pub preconditioner: &'a dyn Preconditioner<V>,
    /// Initial iterate `p₀` (Martens' warm start); `None` starts from zero.
    pub start: Option<&'a V>,
    /// Trust-region radius `Δ` (in the preconditioner's norm); `None` for an
    /// unconstrained solve. Only solvers that support it ([`Lanczos`](crate::Lanczos)) read it.
    pub radius: Option<f64>,
}

impl<'a, V: Clone> QuadraticModel<'a, V> {
    /// An unconstrained, unpreconditioned model started from zero.
    pub fn new(operator: &'a dyn CurvatureOperator<V>, gradient: &'a V) -> Self {
        Self {
            operator,
            gradient,
            preconditioner: &crate::preconditioner::Identity,
            start: None,
            radius: None,
        }
    }

    /// Uses `preconditioner` for `M⁻¹`.
    pub fn preconditioned(mut self, preconditioner: &'a dyn Preconditioner<V>) -> Self {
        self.preconditioner = preconditioner;
        self
    }

    /// Starts the iteration from `start`.
    pub fn warm_start(mut self, start: &'a V) -> Self {
        self.start = Some(start);
        self
    }

    /// Constrains the step to `‖p‖_M ≤ radius`.
    pub fn within(mut self, radius: f64) -> Self {
        self.radius = Some(radius);
        self
    }
}

/// Minimizes a [`QuadraticModel`].
///
/// Solvers hold only their configuration and scratch state; everything about the
/// problem comes in through the model, and everything learned goes out through the
/// [`SolveOutcome`] and the observer.
pub trait Solver<V> {
    /// Solves the model, reporting each iteration to `observer`.
    fn solve(&mut self, model: &QuadraticModel<'_, V>, observer: &mut dyn SolverObserver) -> Result<SolveOutcome<V>>;

    /// Whether the solver keeps its step within [`QuadraticModel::radius`]. A solver
    /// that does not (CG) cannot serve trust-region mode, and one that does (Lanczos)
    /// is only given a radius there: [`HessianFree::with_solver`](crate::HessianFree::with_solver)
    /// refuses either mismatch rather than ignore a setting. Default `false`.
    fn honours_radius(&self) -> bool {
        false
    }
}

/// One inner (CG or Lanczos) iteration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SolverIterationRecord {
    /// Inner iteration, 1-based.
    pub iteration: usize,
    /// The damped model value `q(p_i)`.
    pub model_value: f64,
    /// Norm of the model's gradient `A p_i + g` (the CG residual).
    pub residual_norm: f64,
}

/// Receives a solver's inner iterations. Defined beside the solvers, so they report
/// without knowing the outer loop; every [`Observer`](crate::Observer) is handed
/// these reports by [`HessianFree`](crate::HessianFree).
pub trait SolverObserver {
    /// Called after each inner iteration.
    fn on_solver_iteration(&mut self, _record: &SolverIterationRecord) {}
}

/// Ignores every report.
impl SolverObserver for () {}

/// Why a solver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// Martens' relative-progress rule: the model stopped improving fast enough.
    RelativeProgress,
    /// The preconditioned residual fell below the tolerance: the model is solved.
    Converged,
    /// The iteration budget ran out.
    MaxIterations,
    /// A direction with `dᵀAd ≤ 0` was met. CG returns the last iterate; the
    /// trust-region solver follows the direction to the boundary instead.
    NonPositiveCurvature,
    /// The trust-region constraint is active: the step lies on the boundary.
    Boundary,
}

/// An iterate kept for CG backtracking.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredIterate<V> {
    /// The solver iteration that produced it (1-based; 0 is the start point).
    pub iteration: usize,
    /// The step `p_i`.
    pub step: V,
    /// The damped model value `q(p_i)`.
    pub model_value: f64,
}

/// Extreme eigenvalue estimates of the (preconditioned) operator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    /// Smallest Ritz value.
    pub min: f64,
    /// Largest Ritz value.
    pub max: f64,
}

/// What a solve produced.
#[derive(Debug, Clone)]
pub struct SolveOutcome<V> {
    /// The final iterate (for CG, the warm start of the next solve).
    pub step: V,
    /// The damped model value `q(step)`.
    pub model_value: f64,
    /// Iterations performed.
    pub iterations: usize,
    /// Why the solver stopped.
    pub termination: Termination,
    /// Iterates kept for backtracking, in increasing iteration order; the final
    /// iterate is always the last entry.
    pub iterates: Vec<StoredIterate<V>>,
    /// Curvature-vector products spent.
    pub products: usize,
    /// Extreme eigenvalue estimates, from solvers that compute them.
    pub spectrum: Option<Spectrum>,
}
