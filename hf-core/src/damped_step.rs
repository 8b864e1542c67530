//! Martens' damped step: Levenberg-Marquardt `λ`, CG backtracking, Armijo line search.

use std::time::Instant;

use crate::config::LineSearchConfig;
use crate::damping::DampingStrategy;
use crate::error::{ConfigError, Error, Result};
use crate::observer::{IterationRecord, StepOutcome};
use crate::problem::Batch;
use crate::solver::{SolveOutcome, StoredIterate};
use crate::state::HfState;
use crate::step_rule::{StepRule, Trial};
use crate::vector::Vector;

/// The damped step of Martens (2010): CG on `B + λI` warm-started from the last
/// solution times `ζ`; backtracking over the stored CG iterates on the gradient batch
/// (§4.6); `ρ` on the curvature batch driving `λ` through a [`DampingStrategy`]
/// (§4.1); an Armijo line search on the chosen iterate. A step the line search
/// rejects leaves `θ` and counts as `ρ = NaN` for the damping.
///
/// # References
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
/// - J. Nocedal and S. J. Wright, "Numerical Optimization", 2006, §3.1 (Armijo).
pub struct DampedStep {
    damping: Box<dyn DampingStrategy>,
    line_search: LineSearchConfig,
    backtracking: bool,
    warm_start_decay: f64,
    /// While searching for `λ₀`: how many good steps in a row the search has seen.
    search: Option<u32>,
}

impl DampedStep {
    /// A damped step with `damping`, the line search, backtracking on or off, and
    /// the warm-start decay `ζ` (see [`HfConfig`](crate::HfConfig) for each).
    pub fn new(
        damping: Box<dyn DampingStrategy>,
        line_search: LineSearchConfig,
        backtracking: bool,
        warm_start_decay: f64,
    ) -> Self {
        Self {
            damping,
            line_search,
            backtracking,
            warm_start_decay,
            search: None,
        }
    }

    /// Searches for `λ₀` during the first steps, for a run that starts from a guess
    /// too large by an unknown factor: while every step so far has been good enough for the damping strategy
    /// to lower `λ`, the `k`-th such step (0-based) applies the strategy `2^k` times
    /// (at most `2^16`; it stops early at the strategy's floor), so a `λ₀` that is too large by a factor `F` costs about `log₂ log F`
    /// extra iterations instead of `log F / log(3/2)`. The first step after which the
    /// strategy does not lower `λ` ends the search for good; from then on the strategy
    /// alone decides. (With [`HfConfig::initial_damping`](crate::HfConfig::initial_damping)
    /// unset, [`HessianFree`](crate::HessianFree) searches within its first iteration
    /// instead, by trial solves; this rule suits a step rule assembled by hand.)
    pub fn searching_initial_damping(mut self) -> Self {
        self.search = Some(0);
        self
    }

    /// The damping after a step with ratio `rho` (NaN for a rejected step).
    fn next_damping(&mut self, lambda: f64, rho: f64) -> f64 {
        let mut next = self.damping.update(lambda, rho);
        match self.search {
            Some(k) if next < lambda => {
                self.search = Some(k + 1);
                // The strategy itself, applied again, so that its bounds hold; until
                // it stops lowering λ (its floor), and at most 2^16 times.
                for _ in 1..1u32 << k.min(16) {
                    let further = self.damping.update(next, rho);
                    if further >= next {
                        break;
                    }
                    next = further;
                }
                next
            }
            _ => {
                self.search = None;
                next
            }
        }
    }

    /// Armijo line search along `p` from `θ`, starting at `α = 1` whose value
    /// `f_full` is already known. Returns the accepted `(α, f)`, or `None` when no
    /// tried step decreases the objective enough.
    fn line_search<V: Vector>(
        &self,
        trial: &mut Trial<'_, V>,
        theta: &V,
        p: &V,
        f_full: f64,
    ) -> Result<Option<(f64, f64)>> {
        let ls = self.line_search;
        let (f0, slope) = (trial.objective, trial.gradient.dot(p));
        if slope >= 0.0 {
            return Ok(None);
        }
        let mut alpha = 1.0;
        let mut f_alpha = f_full;
        for _ in 0..ls.max_tries {
            if f_alpha <= f0 + ls.armijo_c * alpha * slope {
                return Ok(Some((alpha, f_alpha)));
            }
            alpha *= ls.shrink;
            f_alpha = trial.objective_at(theta, alpha, Some(p), Batch::Gradient)?;
        }
        Ok(None)
    }
}

impl<V: Vector> StepRule<V> for DampedStep {
    fn uses_radius(&self) -> bool {
        false
    }

    fn scales_initial_damping(&self) -> bool {
        true
    }

    fn radius(&self, _state: &HfState<V>) -> Option<f64> {
        None
    }

    fn warm_start(&self, state: &HfState<V>) -> Option<V> {
        state
            .warm_start
            .as_ref()
            .filter(|p| p.len() == state.theta.len())
            .map(|p| {
                let mut p = p.clone();
                p.scale(self.warm_start_decay);
                p
            })
    }

    fn take(
        &mut self,
        trial: &mut Trial<'_, V>,
        state: &mut HfState<V>,
        record: &mut IterationRecord,
        outcome: SolveOutcome<V>,
    ) -> Result<()> {
        state.warm_start = Some(outcome.step);

        let clock = Instant::now();
        let (chosen, f_chosen) = backtrack(trial, &state.theta, outcome.iterates, self.backtracking)?;
        record.chosen_iterate = chosen.iteration;
        record.phases.backtracking = clock.elapsed().as_secs_f64();
        let p = chosen.step;

        let clock = Instant::now();
        let rho = trial.reduction_ratio(&state.theta, state.damping, chosen.model_value, &p)?;
        record.rho = rho;
        record.phases.rho += clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        let accepted = self.line_search(trial, &state.theta, &p, f_chosen)?;
        record.phases.line_search = clock.elapsed().as_secs_f64();

        state.damping = self.next_damping(state.damping, if accepted.is_some() { rho } else { f64::NAN });
        record.next_damping = state.damping;
        match accepted {
            Some((alpha, f_alpha)) => {
                state.theta.axpy(alpha, &p);
                record.step_size = alpha;
                record.step_norm = alpha * p.norm();
                record.objective = f_alpha;
                record.outcome = StepOutcome::Accepted;
            }
            None => record.outcome = StepOutcome::Rejected,
        }
        Ok(())
    }

    fn fail(&mut self, state: &mut HfState<V>) {
        state.damping = self.next_damping(state.damping, f64::NAN);
    }

    fn set_damping(&mut self, damping: Box<dyn DampingStrategy>) -> Result<(), ConfigError> {
        self.damping = damping;
        Ok(())
    }

    /// The search for `λ₀` (the good steps seen, or −1 once over), then the damping
    /// strategy's own state.
    fn state(&self) -> Vec<f64> {
        let mut state = vec![self.search.map_or(-1.0, f64::from)];
        state.extend(self.damping.state());
        state
    }

    fn load_state(&mut self, state: &[f64]) -> Result<()> {
        // Empty: a state saved before the λ₀ search existed (its strategy stateless).
        let Some((&search, rest)) = state.split_first() else {
            self.search = None;
            return self.damping.load_state(state);
        };
        self.search = match search {
            -1.0 => None,
            s if s >= 0.0 && s.fract() == 0.0 && s <= f64::from(u32::MAX) => Some(s as u32),
            s => {
                return Err(Error::InvalidArgument {
                    name: "damped step state",
                    value: format!("λ₀ search progress {s}"),
                    allowed: "-1 (over) or a count of good steps",
                })
            }
        };
        self.damping.load_state(rest)
    }
}

/// CG backtracking (Martens 2010, §4.6): from the last stored iterate, walks back
/// while the objective on the gradient batch keeps falling (when `enabled`; else
/// the last iterate). Returns the chosen iterate and its objective.
pub(crate) fn backtrack<V: Vector>(
    trial: &mut Trial<'_, V>,
    theta: &V,
    mut iterates: Vec<StoredIterate<V>>,
    enabled: bool,
) -> Result<(StoredIterate<V>, f64)> {
    let Some(mut chosen) = iterates.pop() else {
        return Err(Error::InvalidArgument {
            name: "solver outcome",
            value: "no iterates".into(),
            allowed: "at least the final iterate (a Solver must return it)",
        });
    };
    let mut f_chosen = trial.objective_at(theta, 1.0, Some(&chosen.step), Batch::Gradient)?;
    if enabled {
        while let Some(earlier) = iterates.pop() {
            let f_earlier = trial.objective_at(theta, 1.0, Some(&earlier.step), Batch::Gradient)?;
            if f_earlier >= f_chosen {
                break;
            }
            chosen = earlier;
            f_chosen = f_earlier;
        }
    }
    Ok((chosen, f_chosen))
}
