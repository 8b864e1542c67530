//! [`Stepper`]: an optimizer advanced one outer iteration at a time, and [`drive`],
//! the one loop that runs any of them under the same stopping rules: HF here, the
//! first-order methods of hf-burn's trainer there.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::observer::{Control, IterationRecord, Observer};
use crate::problem::Problem;
use crate::state::HfState;

/// Why [`drive`] (and so [`HessianFree::run`](crate::HessianFree::run)) returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// the iteration limit ([`HfConfig::max_iterations`](crate::HfConfig::max_iterations)) outer iterations were done in all.
    MaxIterations,
    /// the time budget ([`HfConfig::time_budget_s`](crate::HfConfig::time_budget_s)) seconds were spent in all.
    TimeBudget,
    /// The gradient norm reached [`HfConfig::gradient_tolerance`](crate::HfConfig::gradient_tolerance).
    GradientTolerance,
    /// The objective reached [`HfConfig::target_objective`](crate::HfConfig::target_objective).
    TargetObjective,
    /// [`HfConfig::max_consecutive_failures`](crate::HfConfig::max_consecutive_failures) steps in a row failed.
    TooManyFailures,
    /// An observer returned [`Control::Stop`].
    Requested,
    /// The objective became non-finite and the method cannot recover from it (a
    /// first-order step that diverged; HF instead retries with more damping).
    Diverged,
}

impl StopReason {
    /// The reason's name as it is serialized (`max_iterations`, `time_budget`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::MaxIterations => "max_iterations",
            StopReason::TimeBudget => "time_budget",
            StopReason::GradientTolerance => "gradient_tolerance",
            StopReason::TargetObjective => "target_objective",
            StopReason::TooManyFailures => "too_many_failures",
            StopReason::Requested => "requested",
            StopReason::Diverged => "diverged",
        }
    }
}

/// The summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Why the run stopped.
    pub stop: StopReason,
    /// Outer iterations done in this call.
    pub iterations: usize,
    /// The objective at the final parameters (gradient batch, L2 included); NaN when
    /// no iteration was done in this call.
    pub objective: f64,
}

/// The limits of a whole run, resumes included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Outer iterations (steps) in all.
    pub max_iterations: usize,
    /// Time spent stepping in all ([`HfState::elapsed`]).
    pub time_budget: Option<Duration>,
}

impl Limits {
    /// The limit `state` has reached, if any: checked before each step.
    pub fn reached<V>(&self, state: &HfState<V>) -> Option<StopReason> {
        if state.iteration >= self.max_iterations {
            Some(StopReason::MaxIterations)
        } else if self.time_budget.is_some_and(|b| state.elapsed >= b) {
            Some(StopReason::TimeBudget)
        } else {
            None
        }
    }
}

/// An optimizer that advances an [`HfState`] by one outer iteration: what [`drive`]
/// needs to run it. [`HessianFree`](crate::HessianFree) is one; hf-burn's trainer
/// wraps burn's first-order optimizers as others, so every method shares one loop.
pub trait Stepper<P: Problem> {
    /// One outer iteration from `state`, which it updates (`iteration`, `elapsed`,
    /// `θ`, …); returns its record. Inner iterations, if any, go to `observer`.
    ///
    /// # Errors
    /// Whatever ends the run (a failed step it can recover from is a record).
    fn step(
        &mut self,
        problem: &mut P,
        state: &mut HfState<P::Vector>,
        observer: &mut dyn Observer<P::Vector>,
    ) -> Result<IterationRecord>;

    /// The iteration and time limits, checked before each step.
    fn limits(&self) -> Limits;

    /// The stopping rule that a step's record fires, if any.
    fn stop_after(&self, record: &IterationRecord, state: &HfState<P::Vector>) -> Option<StopReason>;
}

/// Runs `stepper` until a stopping rule fires: its [`Limits`] (counted over the whole
/// run, a resumed state's iterations and time included), a rule of its own
/// ([`Stepper::stop_after`]), or an observer's [`Control::Stop`]. Every outer
/// iteration is shown to `observer` with the state after it.
///
/// # Errors
/// The stepper's errors and an observer's ([`Error::Observer`]).
pub fn drive<P: Problem>(
    stepper: &mut (impl Stepper<P> + ?Sized),
    problem: &mut P,
    state: &mut HfState<P::Vector>,
    observer: &mut dyn Observer<P::Vector>,
) -> Result<RunReport> {
    let start_iteration = state.iteration;
    let limits = stepper.limits();
    let mut last_objective = f64::NAN;
    let stop = loop {
        if let Some(reason) = limits.reached(state) {
            break reason;
        }
        let record = stepper.step(problem, state, observer)?;
        last_objective = record.objective;
        let control = observer.on_iteration(&record, state).map_err(Error::Observer)?;
        if let Some(reason) = stepper.stop_after(&record, state) {
            break reason;
        }
        if control == Control::Stop {
            break StopReason::Requested;
        }
    };
    Ok(RunReport {
        stop,
        iterations: state.iteration - start_iteration,
        objective: last_objective,
    })
}
