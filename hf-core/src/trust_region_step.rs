//! The trust-region step: a radius `Δ` driven by `ρ`, for a solver that honours it.

use std::time::Instant;

use crate::config::TrustRegionConfig;
use crate::damping::DampingStrategy;
use crate::error::{ConfigError, Result};
use crate::observer::{IterationRecord, StepOutcome};
use crate::problem::Batch;
use crate::solver::{SolveOutcome, Termination};
use crate::state::HfState;
use crate::step_rule::{StepRule, Trial};
use crate::vector::Vector;

/// A trust-region step (Nocedal & Wright, §4.1): the solver (Lanczos / GLTR)
/// minimizes the model within `‖p‖_M ≤ Δ`; `ρ` on the curvature batch shrinks the
/// radius after poor steps and grows it after good ones that reached the boundary; a
/// step is taken whole when `ρ` is above [`TrustRegionConfig::accept_above`] and the
/// objective on the gradient batch falls. `λ` stays where it started (0 unless
/// [`HfConfig::initial_damping`](crate::HfConfig::initial_damping) sets it) and there
/// is no damping strategy to plug in.
///
/// # References
/// - J. Nocedal and S. J. Wright, "Numerical Optimization", 2006, §4.
/// - N. I. M. Gould, S. Lucidi, M. Roma and Ph. L. Toint, "Solving the trust-region
///   subproblem using the Lanczos method", SIAM J. Optim., 1999.
pub struct TrustRegionStep {
    config: TrustRegionConfig,
}

impl TrustRegionStep {
    /// A trust-region step with the radius rule `config`.
    pub fn new(config: TrustRegionConfig) -> Self {
        Self { config }
    }
}

impl<V: Vector> StepRule<V> for TrustRegionStep {
    fn uses_radius(&self) -> bool {
        true
    }

    fn scales_initial_damping(&self) -> bool {
        false
    }

    fn radius(&self, state: &HfState<V>) -> Option<f64> {
        Some(state.radius)
    }

    fn warm_start(&self, _state: &HfState<V>) -> Option<V> {
        None
    }

    fn take(
        &mut self,
        trial: &mut Trial<'_, V>,
        state: &mut HfState<V>,
        record: &mut IterationRecord,
        outcome: SolveOutcome<V>,
    ) -> Result<()> {
        let tr = self.config;
        let p = outcome.step;
        record.chosen_iterate = outcome.iterations;
        let clock = Instant::now();
        let rho = trial.reduction_ratio(&state.theta, state.damping, outcome.model_value, &p)?;
        record.rho = rho;
        record.phases.rho += clock.elapsed().as_secs_f64();

        let on_boundary = outcome.termination == Termination::Boundary;
        state.radius = if !rho.is_finite() || rho < tr.shrink_below {
            // Shrink relative to the radius actually used: the step's M-norm is at most Δ.
            tr.shrink * state.radius
        } else if rho > tr.grow_above && on_boundary {
            (tr.grow * state.radius).min(tr.max_radius)
        } else {
            state.radius
        };

        if rho.is_finite() && rho > tr.accept_above {
            let clock = Instant::now();
            let f1 = trial.objective_at(&state.theta, 1.0, Some(&p), Batch::Gradient)?;
            record.phases.line_search = clock.elapsed().as_secs_f64();
            if f1 < trial.objective {
                state.theta.axpy(1.0, &p);
                record.objective = f1;
                record.step_size = 1.0;
                record.step_norm = p.norm();
                record.outcome = StepOutcome::Accepted;
                return Ok(());
            }
        }
        record.outcome = StepOutcome::Rejected;
        Ok(())
    }

    fn fail(&mut self, state: &mut HfState<V>) {
        state.radius *= self.config.shrink;
    }

    fn set_damping(&mut self, _damping: Box<dyn DampingStrategy>) -> Result<(), ConfigError> {
        Err(ConfigError::new(
            "mode",
            "trust_region",
            "damped for a damping strategy: a trust-region step keeps λ fixed and would ignore it",
        ))
    }
}
