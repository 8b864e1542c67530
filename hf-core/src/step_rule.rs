//! How the outer loop turns a solver's step into a move of `θ`: the interface that
//! damped ([`DampedStep`](crate::DampedStep)) and trust-region
//! ([`TrustRegionStep`](crate::TrustRegionStep)) steps implement, and the trial
//! evaluations both use.

use crate::config::RhoModel;
use crate::damping::DampingStrategy;
use crate::error::{ConfigError, Result};
use crate::observer::IterationRecord;
use crate::problem::{Batch, Problem};
use crate::solver::SolveOutcome;
use crate::state::HfState;
use crate::vector::Vector;

/// One way of controlling the step of [`HessianFree`](crate::HessianFree): what the
/// solver is given (a warm start, a radius), what happens to a solved step (accepted,
/// shortened, rejected) and how `λ` or the radius follows the reduction ratio `ρ`.
///
/// The two built-in rules are [`DampedStep`](crate::DampedStep) (Martens 2010:
/// Levenberg-Marquardt damping, CG backtracking, Armijo line search) and
/// [`TrustRegionStep`](crate::TrustRegionStep) (a radius `Δ` for the Lanczos / GLTR
/// solver). [`HfConfig::mode`](crate::HfConfig::mode) picks one;
/// [`HessianFree::with_step_rule`](crate::HessianFree::with_step_rule) plugs in another.
pub trait StepRule<V> {
    /// Whether the solver must keep its step within the radius
    /// [`radius`](Self::radius) gives: only a solver that
    /// [honours a radius](crate::Solver::honours_radius) fits a rule that uses one,
    /// and only a rule that uses one may be given such a solver.
    fn uses_radius(&self) -> bool;

    /// Whether `λ₀`, when [`HfConfig::initial_damping`](crate::HfConfig::initial_damping)
    /// is unset, is chosen from the curvature's scale at the first iteration (the
    /// damped rule). A rule that answers `false` starts from `λ = 0`.
    fn scales_initial_damping(&self) -> bool;

    /// The radius the solver must keep its step within, when
    /// [`uses_radius`](Self::uses_radius).
    fn radius(&self, state: &HfState<V>) -> Option<f64>;

    /// The solver's starting point, if any (Martens' warm start).
    fn warm_start(&self, state: &HfState<V>) -> Option<V>;

    /// Takes the solved step: chooses the move, updates `θ`, `λ` or the radius and
    /// the warm start, and fills the step's fields of `record` (`ρ`, chosen iterate,
    /// step size and norm, objective, outcome, phase times, next damping).
    ///
    /// # Errors
    /// Errors from the problem; a `NonFinite` error is a failed step (see
    /// [`fail`](Self::fail)).
    fn take(
        &mut self,
        trial: &mut Trial<'_, V>,
        state: &mut HfState<V>,
        record: &mut IterationRecord,
        outcome: SolveOutcome<V>,
    ) -> Result<()>;

    /// A failed step (a non-finite value anywhere): `θ` stays; the rule makes the
    /// next step more cautious (`λ` grows, the radius shrinks).
    fn fail(&mut self, state: &mut HfState<V>);

    /// Replaces the damping strategy.
    ///
    /// # Errors
    /// A [`ConfigError`] from a rule that has none (it would be ignored).
    fn set_damping(&mut self, damping: Box<dyn DampingStrategy>) -> Result<(), ConfigError>;

    /// The rule's own state for checkpoints (its damping strategy's); empty by default.
    fn state(&self) -> Vec<f64> {
        Vec::new()
    }

    /// Restores a state returned by [`state`](Self::state).
    ///
    /// # Errors
    /// A state this rule cannot hold.
    fn load_state(&mut self, state: &[f64]) -> Result<()> {
        crate::damping::expect_stateless("step rule state", state)
    }
}

/// The objective evaluations a [`StepRule`] tries steps with: the problem, the L2
/// term, and the values at the current `θ` that every rule compares against.
pub struct Trial<'a, V> {
    /// The problem being minimized.
    pub problem: &'a mut dyn Problem<Vector = V>,
    /// The gradient at `θ` (L2 term included), on the gradient batch.
    pub gradient: &'a V,
    /// The objective at `θ` on the gradient batch.
    pub objective: f64,
    /// The objective at `θ` on the curvature batch, which `ρ` compares with.
    pub curvature_objective: f64,
    /// The L2 weight `w` of [`HfConfig::l2_weight`](crate::HfConfig::l2_weight).
    pub l2_weight: f64,
    /// Which model `ρ` divides by.
    pub rho_model: RhoModel,
}

impl<V: Vector> Trial<'_, V> {
    /// The objective at `θ + α p` (L2 included; `p = None` for `θ` itself) on
    /// `batch`; non-finite values become `+∞` so that comparisons reject them.
    ///
    /// # Errors
    /// Errors from the problem.
    pub fn objective_at(&mut self, theta: &V, alpha: f64, p: Option<&V>, batch: Batch) -> Result<f64> {
        objective_at(self.problem, self.l2_weight, theta, alpha, p, batch)
    }

    /// The reduction ratio `ρ = (f(θ + p) − f(θ)) / q(p)` on the curvature batch, NaN
    /// when the model predicts no decrease. `model_value` is the damped `q(p)`;
    /// with [`RhoModel::Undamped`] the damping energy `½ pᵀDp` of the operator at
    /// `λ` (Tikhonov and structural) is taken out of it, so that `ρ` compares the
    /// objective with its own model. (The operator is rebuilt for this, at the cost
    /// of one `J v` at most: it borrows the problem, which the trial steps need in
    /// between.)
    ///
    /// # Errors
    /// Errors from the problem.
    pub fn reduction_ratio(&mut self, theta: &V, lambda: f64, model_value: f64, p: &V) -> Result<f64> {
        let q = match self.rho_model {
            RhoModel::Damped => model_value,
            RhoModel::Undamped => model_value - 0.5 * self.problem.curvature(theta, lambda)?.damping_energy(p)?,
        };
        let f1 = self.objective_at(theta, 1.0, Some(p), Batch::Curvature)?;
        Ok(if q < 0.0 {
            (f1 - self.curvature_objective) / q
        } else {
            f64::NAN
        })
    }
}

/// The objective at `θ + α p` with the L2 term; see [`Trial::objective_at`].
pub(crate) fn objective_at<V: Vector>(
    problem: &mut dyn Problem<Vector = V>,
    l2_weight: f64,
    theta: &V,
    alpha: f64,
    p: Option<&V>,
    batch: Batch,
) -> Result<f64> {
    let moved;
    let x = match p {
        Some(p) => {
            let mut x = theta.clone();
            x.axpy(alpha, p);
            moved = x;
            &moved
        }
        None => theta,
    };
    let f = problem.objective(x, batch)? + 0.5 * l2_weight * x.dot(x);
    Ok(if f.is_finite() { f } else { f64::INFINITY })
}
