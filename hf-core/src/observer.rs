//! Observation hooks: the plug-in point for progress bars, logs and metrics.
//!
//! The library itself prints nothing; it reports every outer and inner iteration
//! to an [`Observer`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::BoxError;
pub use crate::solver::SolverIterationRecord;
use crate::solver::{SolverObserver, Termination};
use crate::state::HfState;

/// What happened to the step of an outer iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The parameters moved.
    Accepted,
    /// The line search found no decrease (or the trust-region ratio was too poor): no move.
    Rejected,
    /// The gradient norm was already within [`HfConfig::gradient_tolerance`](crate::HfConfig::gradient_tolerance): no step taken.
    Converged,
    /// A NaN or infinity appeared (objective, gradient or curvature): no move, λ grows.
    NonFinite,
}

/// Where an outer iteration's wall time went, in seconds.
///
/// Each phase ends by reading a scalar computed from all of its work (an objective
/// value, a norm or a dot product), so on asynchronous (GPU) backends queued work is
/// charged to the phase that produced it, not to the next one. Phases a step did
/// not reach are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseTimes {
    /// Drawing the batches, the gradient and its norm.
    pub gradient: f64,
    /// The curvature diagonal and the preconditioner update.
    pub preconditioner: f64,
    /// The inner solve: building the curvature operator and every CG (or Lanczos)
    /// iteration, curvature products included.
    pub solve: f64,
    /// CG-iterate backtracking: objectives on the gradient batch.
    pub backtracking: f64,
    /// The reduction ratio: objectives on the curvature batch before and after, and
    /// the undamped model value.
    pub rho: f64,
    /// The Armijo line search (in trust-region mode, the acceptance test).
    pub line_search: f64,
}

impl PhaseTimes {
    /// The sum of the phases.
    pub fn total(&self) -> f64 {
        self.gradient + self.preconditioner + self.solve + self.backtracking + self.rho + self.line_search
    }
}

/// One outer HF iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationRecord {
    /// Outer iteration, 1-based.
    pub iteration: usize,
    /// Objective (with the L2 term) on the gradient batch before the step.
    pub objective_before: f64,
    /// Objective on the gradient batch after the step (equal to before if rejected).
    pub objective: f64,
    /// Norm of the gradient before the step.
    pub gradient_norm: f64,
    /// Damping `λ` used in this iteration's solve.
    pub damping: f64,
    /// Damping for the next iteration.
    pub next_damping: f64,
    /// Trust-region radius used (trust-region mode only).
    pub radius: Option<f64>,
    /// Reduction ratio `ρ` (NaN when it could not be computed).
    pub rho: f64,
    /// Inner iterations.
    pub solver_iterations: usize,
    /// Why the inner solver stopped (absent when the step failed before solving).
    pub termination: Option<Termination>,
    /// Curvature-vector products spent in this iteration.
    pub curvature_products: usize,
    /// Inner iteration of the iterate chosen by CG backtracking.
    pub chosen_iterate: usize,
    /// Line-search step length `α` (0 when rejected).
    pub step_size: f64,
    /// `‖α p‖`, the length of the parameter update.
    pub step_norm: f64,
    /// What happened to the step.
    pub outcome: StepOutcome,
    /// Wall time since the start of the run.
    #[serde(with = "duration_secs")]
    pub elapsed: Duration,
    /// This iteration's time by phase.
    #[serde(default)]
    pub phases: PhaseTimes,
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        d.as_secs_f64().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// What an observer asks of the loop after an outer iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Control {
    /// Go on (subject to the configured stopping rules).
    #[default]
    Continue,
    /// End [`HessianFree::run`](crate::HessianFree::run) now, with
    /// [`StopReason::Requested`](crate::StopReason::Requested).
    Stop,
}

/// Receives iteration records: the plug-in point for logs, metrics, checkpoints and
/// early stopping. Both methods default to doing nothing.
///
/// `V` is the parameter vector type; [`on_iteration`](Self::on_iteration) sees the
/// whole optimizer state after the step, so an observer can evaluate held-out error
/// at `θ` or save a checkpoint, and can stop the run by returning [`Control::Stop`].
///
/// # Example
/// Stop once the objective falls below a threshold, and count the inner iterations:
/// ```
/// use hf_core::{BoxError, Control, HfState, IterationRecord, Observer, SolverIterationRecord};
///
/// #[derive(Default)]
/// struct StopBelow { threshold: f64, inner: usize }
///
/// impl<V> Observer<V> for StopBelow {
///     fn on_iteration(&mut self, record: &IterationRecord, _state: &HfState<V>) -> Result<Control, BoxError> {
///         Ok(if record.objective < self.threshold { Control::Stop } else { Control::Continue })
///     }
///     fn on_solver_iteration(&mut self, _record: &SolverIterationRecord) {
///         self.inner += 1;
///     }
/// }
/// ```
pub trait Observer<V> {
    /// Called by [`HessianFree::run`](crate::HessianFree::run) after each outer
    /// iteration, with the state the next iteration starts from. An error ends the
    /// run with [`Error::Observer`](crate::Error::Observer).
    fn on_iteration(&mut self, _record: &IterationRecord, _state: &HfState<V>) -> Result<Control, BoxError> {
        Ok(Control::Continue)
    }

    /// Called after each inner solver iteration.
    fn on_solver_iteration(&mut self, _record: &SolverIterationRecord) {}
}

/// Ignores everything.
impl<V> Observer<V> for () {}

/// Keeps the inner iterations (outer ones arrive through [`Observer`]).
impl SolverObserver for History {
    fn on_solver_iteration(&mut self, record: &SolverIterationRecord) {
        self.solver_iterations.push(*record);
    }
}

/// Hands a solver's reports to an outer-loop [`Observer`]: the solvers know only
/// [`SolverObserver`], which keeps them independent of the loop's state type.
pub(crate) struct SolverReports<'a, V>(pub(crate) &'a mut dyn Observer<V>);

impl<V> SolverObserver for SolverReports<'_, V> {
    fn on_solver_iteration(&mut self, record: &SolverIterationRecord) {
        self.0.on_solver_iteration(record);
    }
}

/// Both observers see every record; the run stops if either asks.
impl<V, A: Observer<V>, B: Observer<V>> Observer<V> for (A, B) {
    fn on_iteration(&mut self, record: &IterationRecord, state: &HfState<V>) -> Result<Control, BoxError> {
        let a = self.0.on_iteration(record, state)?;
        let b = self.1.on_iteration(record, state)?;
        Ok(if a == Control::Stop || b == Control::Stop {
            Control::Stop
        } else {
            Control::Continue
        })
    }

    fn on_solver_iteration(&mut self, record: &SolverIterationRecord) {
        self.0.on_solver_iteration(record);
        self.1.on_solver_iteration(record);
    }
}

/// Keeps every outer-iteration record, for tests and post-hoc analysis.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Outer iterations in order.
    pub iterations: Vec<IterationRecord>,
    /// Inner iterations across the whole run, in order.
    pub solver_iterations: Vec<SolverIterationRecord>,
}

impl<V> Observer<V> for History {
    fn on_iteration(&mut self, record: &IterationRecord, _state: &HfState<V>) -> Result<Control, BoxError> {
        self.iterations.push(record.clone());
        Ok(Control::Continue)
    }

    fn on_solver_iteration(&mut self, record: &SolverIterationRecord) {
        self.solver_iterations.push(*record);
    }
}
