//! The Hessian-free outer loop.

use std::time::{Duration, Instant};

use crate::cg::ConjugateGradient;
use crate::config::{HfConfig, Mode, PreconditionerKind};
use crate::damped_step::{backtrack, DampedStep};
use crate::damping::DampingStrategy;
use crate::error::{ConfigError, Error, Result};
use crate::lanczos::Lanczos;
use crate::observer::{IterationRecord, Observer, PhaseTimes, SolverReports, StepOutcome};
use crate::operator::{CurvatureOperator, L2Regularized};
use crate::preconditioner::{Diagonal, Identity, Preconditioner, PreconditionerContext};
use crate::problem::{Batch, Problem};
use crate::solver::{QuadraticModel, SolveOutcome, Solver};
use crate::state::{HfState, PluginState};
use crate::step_rule::{objective_at, StepRule, Trial};
use crate::stepper::{drive, Limits, RunReport, Stepper, StopReason};
use crate::trust_region_step::TrustRegionStep;
use crate::vector::Vector;

/// Hessian-free optimization (truncated Newton with Gauss-Newton curvature).
///
/// Each [`step`](Self::step): gradient on the gradient batch; preconditioner
/// refresh; CG on the damped model over the curvature batch, warm-started from the
/// last solution times `ζ`; backtracking over the stored CG iterates; the reduction
/// ratio `ρ` on the curvature batch; the damping update; an Armijo line search; the
/// parameter update. A NaN or infinity anywhere is a failed step: the parameters
/// stay, `λ` grows, and the run goes on. In [`Mode::TrustRegion`] the Lanczos solver
/// takes CG's place and `ρ` drives the radius instead.
///
/// What happens to a solved step is a [`StepRule`]: [`DampedStep`] or
/// [`TrustRegionStep`], chosen by [`HfConfig::mode`]. The step rule, its damping
/// strategy, the preconditioner and the solver are plug-ins (see
/// [`with_damping`](Self::with_damping) and friends); a combination in which one
/// would ignore a setting of another is refused.
///
/// # References
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
/// - J. Martens and I. Sutskever, "Training deep and recurrent networks with
///   Hessian-free optimization", in Neural Networks: Tricks of the Trade, 2012.
/// - J. Nocedal and S. J. Wright, "Numerical Optimization", 2006, §3.1 (Armijo),
///   §4 (trust regions).
pub struct HessianFree<V> {
    config: HfConfig,
    rule: Box<dyn StepRule<V>>,
    preconditioner: Box<dyn Preconditioner<V>>,
    solver: Box<dyn Solver<V>>,
}

impl<V: Vector + 'static> HessianFree<V> {
    /// An optimizer with the configured defaults: Levenberg-Marquardt damping, Martens'
    /// diagonal preconditioner (or the identity), CG (or Lanczos in trust-region mode).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid field.
    pub fn new(config: HfConfig) -> Result<Self, ConfigError> {
        let preconditioner: Box<dyn Preconditioner<V>> = match config.preconditioner {
            PreconditionerKind::Identity => Box::new(Identity),
            PreconditionerKind::MartensDiagonal => Box::new(Diagonal::new(config.preconditioner_exponent)),
            PreconditionerKind::KroneckerFactored => {
                return Err(ConfigError::new(
                    "preconditioner",
                    "kronecker_factored",
                    "identity or martens_diagonal here: the Kronecker-factored preconditioner works on a \
                     backend's tensors; build the optimizer with hf_burn::hessian_free",
                ))
            }
        };
        Self::with_built_preconditioner(config, preconditioner)
    }

    /// An optimizer with `preconditioner` in place of the one
    /// [`HfConfig::preconditioner`] names, which a backend builds (hf-burn's
    /// `hessian_free` builds the Kronecker-factored one this way); otherwise as
    /// [`new`](Self::new).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid field.
    pub fn with_built_preconditioner(
        config: HfConfig,
        preconditioner: Box<dyn Preconditioner<V>>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (solver, rule): (Box<dyn Solver<V>>, Box<dyn StepRule<V>>) = match config.mode {
            Mode::Damped => (
                Box::new(ConjugateGradient::new(config.cg)?),
                Box::new(DampedStep::new(
                    Box::new(config.damping),
                    config.line_search,
                    config.backtracking,
                    config.warm_start_decay,
                )),
            ),
            Mode::TrustRegion => (
                Box::new(Lanczos::new(config.lanczos)?),
                Box::new(TrustRegionStep::new(config.trust_region)),
            ),
        };
        Ok(Self {
            rule,
            preconditioner,
            solver,
            config,
        })
    }
}

impl<V: Vector> HessianFree<V> {
    /// Replaces the step rule's damping strategy.
    ///
    /// # Errors
    /// A [`ConfigError`] on `mode` when the step rule has no damping to drive (the
    /// trust-region step keeps `λ` fixed), rather than ignore the strategy.
    pub fn with_damping(mut self, damping: Box<dyn DampingStrategy>) -> Result<Self, ConfigError> {
        self.rule.set_damping(damping)?;
        Ok(self)
    }

    /// Replaces the step rule (and with it the damping strategy).
    ///
    /// # Errors
    /// A [`ConfigError`] on `mode` when the rule and the solver do not fit: a rule
    /// that bounds the step by a radius needs a solver that honours one, and a solver
    /// that honours one needs a rule that gives it.
    pub fn with_step_rule(mut self, rule: Box<dyn StepRule<V>>) -> Result<Self, ConfigError> {
        fits(rule.as_ref(), self.solver.as_ref())?;
        self.rule = rule;
        Ok(self)
    }

    /// Replaces the preconditioner.
    pub fn with_preconditioner(mut self, preconditioner: Box<dyn Preconditioner<V>>) -> Self {
        self.preconditioner = preconditioner;
        self
    }

    /// Replaces the inner solver.
    ///
    /// # Errors
    /// A [`ConfigError`] on `mode` when the solver does not fit the step rule:
    /// trust-region mode needs a solver that keeps its step within the radius
    /// ([`Solver::honours_radius`]), and damped mode gives none, so a trust-region
    /// solver there would silently ignore [`HfConfig::trust_region`].
    pub fn with_solver(mut self, solver: Box<dyn Solver<V>>) -> Result<Self, ConfigError> {
        fits(self.rule.as_ref(), solver.as_ref())?;
        self.solver = solver;
        Ok(self)
    }

    /// The configuration.
    pub fn config(&self) -> &HfConfig {
        &self.config
    }

    /// The initial state at `theta`.
    pub fn init(&self, theta: V) -> HfState<V> {
        HfState {
            // Unset: chosen from the curvature during the first iteration (1 if that
            // iteration fails before measuring it), or 0 for a rule that keeps λ fixed.
            damping: self
                .config
                .initial_damping
                .unwrap_or(if self.rule.scales_initial_damping() { 1.0 } else { 0.0 }),
            radius: self.config.trust_region.initial_radius,
            ..HfState::starting_at(theta)
        }
    }

    /// Prepares to continue from a saved `state`: restores the plug-ins' own state
    /// and the problem's batch sampler, so the run goes on as if never interrupted.
    ///
    /// # Errors
    /// A plug-in or the problem refusing its saved state.
    pub fn resume<P: Problem<Vector = V>>(&mut self, problem: &mut P, state: &HfState<V>) -> Result<()> {
        self.rule.load_state(&state.plugins.step_rule)?;
        self.preconditioner.load_state(&state.plugins.preconditioner)?;
        if let Some(s) = state.sampler {
            problem.restore_sampler(s)?;
        }
        Ok(())
    }

    /// Runs outer iterations until a stopping rule fires: [`HfConfig::max_iterations`]
    /// and [`HfConfig::time_budget_s`] count the whole run (a resumed state's
    /// iterations and time included), the gradient tolerance, the target objective,
    /// too many failed steps in a row, or an observer's [`Control::Stop`](crate::Control::Stop). Every
    /// outer iteration is shown to `observer` with the state after it.
    ///
    /// # Errors
    /// Errors from the problem or backend other than non-finite values (which are
    /// failed steps), an observer's error, and a non-finite starting point.
    pub fn run<P: Problem<Vector = V>>(
        &mut self,
        problem: &mut P,
        state: &mut HfState<V>,
        observer: &mut dyn Observer<V>,
    ) -> Result<RunReport> {
        drive(self, problem, state, observer)
    }

    /// One outer iteration; returns its record. Inner iterations go to `observer`;
    /// the record itself is shown to observers by [`run`](Self::run).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn step<P: Problem<Vector = V>>(
        &mut self,
        problem: &mut P,
        state: &mut HfState<V>,
        observer: &mut dyn Observer<V>,
    ) -> Result<IterationRecord> {
        if !state.theta.is_finite() {
            return Err(Error::NonFinite { what: "parameters θ" });
        }
        let clock = Instant::now();
        state.iteration += 1;
        let mut record = IterationRecord {
            iteration: state.iteration,
            objective_before: f64::NAN,
            objective: f64::NAN,
            gradient_norm: f64::NAN,
            damping: state.damping,
            next_damping: state.damping,
            radius: self.rule.radius(state),
            rho: f64::NAN,
            solver_iterations: 0,
            termination: None,
            curvature_products: 0,
            chosen_iterate: 0,
            step_size: 0.0,
            step_norm: 0.0,
            outcome: StepOutcome::NonFinite,
            elapsed: state.elapsed,
            phases: PhaseTimes::default(),
        };
        match self.try_step(problem, state, &mut record, observer) {
            Ok(()) => state.consecutive_failures = 0,
            Err(e) if e.is_non_finite() => self.fail(state, &mut record),
            Err(e) => return Err(e),
        }
        if record.outcome == StepOutcome::Rejected {
            state.consecutive_failures += 1;
        }
        state.curvature_products += record.curvature_products;
        state.elapsed += clock.elapsed();
        state.sampler = problem.sampler_state();
        state.plugins = PluginState {
            step_rule: self.rule.state(),
            preconditioner: self.preconditioner.state(),
        };
        record.elapsed = state.elapsed;
        Ok(record)
    }

    /// A failed step: nothing moves but λ (or the radius), and the warm start, which
    /// may hold the poison, is dropped.
    fn fail(&mut self, state: &mut HfState<V>, record: &mut IterationRecord) {
        record.outcome = StepOutcome::NonFinite;
        record.objective = record.objective_before;
        record.step_size = 0.0;
        record.step_norm = 0.0;
        state.warm_start = None;
        state.consecutive_failures += 1;
        self.rule.fail(state);
        record.next_damping = state.damping;
    }

    /// The body of [`step`](Self::step); a `NonFinite` error here is a failed step.
    /// Each phase is a function returning its values; this one records them.
    fn try_step<P: Problem<Vector = V>>(
        &mut self,
        problem: &mut P,
        state: &mut HfState<V>,
        record: &mut IterationRecord,
        observer: &mut dyn Observer<V>,
    ) -> Result<()> {
        let clock = Instant::now();
        problem.begin_iteration(state.iteration)?;
        let (f0, g) = self.regularized_gradient(problem, &state.theta)?;
        record.objective_before = f0;
        record.objective = f0;
        record.gradient_norm = g.norm();
        let search =
            state.iteration == 1 && self.config.initial_damping.is_none() && self.rule.scales_initial_damping();
        if search {
            state.damping = self.initial_damping(problem, &state.theta, &g)?;
            record.damping = state.damping;
            record.next_damping = state.damping;
        }
        record.phases.gradient = clock.elapsed().as_secs_f64();
        if record.gradient_norm <= self.config.gradient_tolerance {
            record.outcome = StepOutcome::Converged;
            return Ok(());
        }

        let clock = Instant::now();
        let statistics = self.curvature_statistics(problem, &state.theta)?;
        self.update_preconditioner(&statistics, state.damping)?;
        record.phases.preconditioner = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let fc0 = finite(
            objective_at(
                problem,
                self.config.l2_weight,
                &state.theta,
                0.0,
                None,
                Batch::Curvature,
            )?,
            "objective (curvature batch)",
        )?;
        record.phases.rho = clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        let outcome = if search {
            let at_theta = TrialValues {
                gradient: &g,
                objective: f0,
                curvature_objective: fc0,
            };
            self.search_initial_damping(problem, state, at_theta, &statistics, record, observer)?
        } else {
            self.solve(problem, state, &g, observer)?
        };
        record.phases.solve = clock.elapsed().as_secs_f64();
        record.solver_iterations = outcome.iterations;
        record.termination = Some(outcome.termination);
        record.curvature_products += outcome.products;
        if !outcome.step.is_finite() {
            return Err(Error::NonFinite { what: "solver step" });
        }

        let mut trial = Trial {
            problem,
            gradient: &g,
            objective: f0,
            curvature_objective: fc0,
            l2_weight: self.config.l2_weight,
            rho_model: self.config.rho_model,
        };
        self.rule.take(&mut trial, state, record, outcome)
    }

    /// `λ₀` from the curvature's scale ([`HfConfig::initial_damping`]): the problem's
    /// mean eigenvalue, or the curvature along the gradient `gᵀGg/gᵀg`; 1 when the
    /// curvature is zero there.
    fn initial_damping(&self, problem: &mut impl Problem<Vector = V>, theta: &V, g: &V) -> Result<f64> {
        let scale = match problem.curvature_scale(theta)? {
            Some(s) => s,
            None => {
                let op = problem.curvature(theta, 0.0)?;
                g.dot(&op.apply(g)?) / g.dot(g)
            }
        };
        let scale = finite(scale, "curvature scale")?;
        Ok(if scale > 0.0 { scale } else { 1.0 })
    }

    /// The objective and gradient at `theta` with the L2 term, both checked finite.
    fn regularized_gradient(&self, problem: &mut impl Problem<Vector = V>, theta: &V) -> Result<(f64, V)> {
        let w = self.config.l2_weight;
        let (f, mut g) = problem.gradient(theta)?;
        let f0 = finite(f + 0.5 * w * theta.dot(theta), "objective")?;
        if w > 0.0 {
            g.axpy(w, theta);
        }
        if !g.is_finite() {
            return Err(Error::NonFinite { what: "gradient" });
        }
        Ok((f0, g))
    }

    /// The curvature statistics the preconditioner asks for at `theta`.
    fn curvature_statistics(
        &self,
        problem: &mut impl Problem<Vector = V>,
        theta: &V,
    ) -> Result<CurvatureStatistics<V>> {
        Ok(CurvatureStatistics {
            diagonal: if self.preconditioner.wants_diagonal() {
                problem.curvature_diagonal(theta)?
            } else {
                None
            },
            kronecker: if self.preconditioner.wants_kronecker_factors() {
                problem.kronecker_factors(theta)?
            } else {
                None
            },
        })
    }

    /// Refreshes the preconditioner from `statistics` at damping `lambda`. It sees
    /// `λ + w`: the L2 term is part of the curvature.
    fn update_preconditioner(&mut self, statistics: &CurvatureStatistics<V>, lambda: f64) -> Result<()> {
        self.preconditioner.update(&PreconditionerContext {
            diagonal: statistics.diagonal.as_ref(),
            kronecker: statistics.kronecker.as_deref(),
            damping: lambda + self.config.l2_weight,
        })
    }

    /// The first iteration's search for `λ₀`, from the curvature's scale `λ_s` in
    /// `state.damping`. Each try solves the model at one `λ` (cold-started) and takes
    /// the solution as the step rule would (CG backtracking on the gradient batch);
    /// a try is trusted when its reduction ratio is at least
    /// [`LevenbergMarquardt::low`](crate::LevenbergMarquardt::low) of the configured
    /// rule (the damping would not have to grow). When `λ_s` is trusted, the search
    /// goes down, `λ_s/10, λ_s/100, …`, while the tries stay trusted and their
    /// objective keeps falling, and keeps the last of those; when it is not, up,
    /// `10 λ_s, 100 λ_s, …`, to the first trusted one. At most
    /// [`INITIAL_DAMPING_TRIES`] solves in all; the kept `λ` and its solution go on
    /// as the iteration's. The best `λ` can lie orders of magnitude from the
    /// curvature's mean eigenvalue (300× below on the README's MLP; far above on the
    /// curves autoencoder, whose curvature is very uneven), where the
    /// Levenberg-Marquardt rule's `×⅔` or `×3/2` per iteration would take a dozen
    /// iterations to arrive; this costs a few extra solves, once. (Choosing a trust
    /// region's initial radius by trial steps is the same idea: Sartenaer, "Automatic
    /// determination of an initial trust region in nonlinear programming", SIAM J.
    /// Sci. Comput. 18, 1997.) The preconditioner's statistics are gathered once and
    /// re-damped for each try through [`Preconditioner::update`]; one that refreshes
    /// only every few updates (K-FAC with `refresh_every > 1`) keeps `λ_s`'s damping
    /// for the later tries, which changes CG's speed, not its answer.
    fn search_initial_damping<P: Problem<Vector = V>>(
        &mut self,
        problem: &mut P,
        state: &mut HfState<V>,
        at_theta: TrialValues<'_, V>,
        statistics: &CurvatureStatistics<V>,
        record: &mut IterationRecord,
        observer: &mut dyn Observer<V>,
    ) -> Result<SolveOutcome<V>> {
        // The first try, at the curvature's scale, decides the direction.
        let mut kept = self.try_damping(problem, state, &at_theta, statistics, state.damping, observer)?;
        let downwards = kept.trusted;
        let mut lambda = kept.lambda;
        // The tries not kept; the kept one's products are counted by the caller.
        let mut discarded = 0;
        for _ in 1..INITIAL_DAMPING_TRIES {
            lambda *= if downwards { 0.1 } else { 10.0 };
            let next = self.try_damping(problem, state, &at_theta, statistics, lambda, observer)?;
            // Downwards while trusted and better than the last; upwards until trusted.
            if downwards && !(next.trusted && next.objective < kept.objective) {
                discarded += next.outcome.products;
                break;
            }
            discarded += kept.outcome.products;
            kept = next;
            if !downwards && kept.trusted {
                break;
            }
        }
        record.curvature_products += discarded;
        if kept.lambda != state.damping {
            state.damping = kept.lambda;
            self.update_preconditioner(statistics, kept.lambda)?;
        }
        record.damping = kept.lambda;
        record.next_damping = kept.lambda;
        Ok(kept.outcome)
    }

    /// One try of the search for `λ₀`: the model solved at `lambda` (cold), its
    /// solution taken as the step rule would (CG backtracking), with its objective
    /// and whether its reduction ratio reaches the damping rule's `low`.
    fn try_damping<P: Problem<Vector = V>>(
        &mut self,
        problem: &mut P,
        state: &mut HfState<V>,
        at_theta: &TrialValues<'_, V>,
        statistics: &CurvatureStatistics<V>,
        lambda: f64,
        observer: &mut dyn Observer<V>,
    ) -> Result<DampingTry<V>> {
        if lambda != state.damping {
            state.damping = lambda;
            self.update_preconditioner(statistics, lambda)?;
        }
        let outcome = self.solve(problem, state, at_theta.gradient, observer)?;
        let (rho, objective) = if outcome.step.is_finite() {
            let mut trial = Trial {
                problem,
                gradient: at_theta.gradient,
                objective: at_theta.objective,
                curvature_objective: at_theta.curvature_objective,
                l2_weight: self.config.l2_weight,
                rho_model: self.config.rho_model,
            };
            let (chosen, f) = backtrack(
                &mut trial,
                &state.theta,
                outcome.iterates.clone(),
                self.config.backtracking,
            )?;
            let rho = trial.reduction_ratio(&state.theta, lambda, chosen.model_value, &chosen.step)?;
            (rho, f)
        } else {
            (f64::NAN, f64::INFINITY)
        };
        Ok(DampingTry {
            lambda,
            objective,
            trusted: rho >= self.config.damping.low,
            outcome,
        })
    }

    /// Minimizes the damped quadratic model at `state.theta` by the inner solver, from
    /// the step rule's warm start and within its radius.
    fn solve<P: Problem<Vector = V>>(
        &mut self,
        problem: &mut P,
        state: &HfState<V>,
        g: &V,
        observer: &mut dyn Observer<V>,
    ) -> Result<SolveOutcome<V>> {
        let w = self.config.l2_weight;
        let warm = self.rule.warm_start(state);
        let base = problem.curvature(&state.theta, state.damping)?;
        let regularized = L2Regularized::new(base.as_ref(), w);
        let op: &dyn CurvatureOperator<V> = if w > 0.0 { &regularized } else { base.as_ref() };
        let mut model = QuadraticModel::new(op, g).preconditioned(self.preconditioner.as_ref());
        if let Some(p0) = warm.as_ref() {
            model = model.warm_start(p0);
        }
        if let Some(radius) = self.rule.radius(state) {
            model = model.within(radius);
        }
        self.solver.solve(&model, &mut SolverReports(observer))
    }
}

/// How many values of `λ` the first iteration's search for `λ₀` solves at, from the
/// curvature's scale down or up by factors of 10 (see
/// [`HfConfig::initial_damping`](crate::HfConfig::initial_damping)).
pub const INITIAL_DAMPING_TRIES: usize = 6;

/// The values at the current `θ` that the search for `λ₀` compares its tries with.
struct TrialValues<'a, V> {
    gradient: &'a V,
    objective: f64,
    curvature_objective: f64,
}

/// One try of the search for `λ₀`.
struct DampingTry<V> {
    lambda: f64,
    /// The objective on the gradient batch after the backtracked step (`+∞` for a
    /// non-finite one).
    objective: f64,
    /// Whether `ρ` reached the damping rule's `low` (the damping need not grow).
    trusted: bool,
    outcome: SolveOutcome<V>,
}

/// What a preconditioner is refreshed from: computed once per iteration, reused for
/// every `λ` the iteration solves at.
struct CurvatureStatistics<V> {
    diagonal: Option<V>,
    kronecker: Option<Vec<crate::KroneckerFactor>>,
}

/// Refuses a step rule and a solver that would ignore each other's setting.
fn fits<V>(rule: &dyn StepRule<V>, solver: &dyn Solver<V>) -> Result<(), ConfigError> {
    match (rule.uses_radius(), solver.honours_radius()) {
        (true, false) => Err(ConfigError::new(
            "mode",
            "trust_region",
            "damped for a solver that ignores the trust-region radius (CG); use Lanczos for trust_region",
        )),
        (false, true) => Err(ConfigError::new(
            "mode",
            "damped",
            "trust_region for a solver that constrains its step to a radius (Lanczos): damped mode gives it none",
        )),
        _ => Ok(()),
    }
}

/// `Ok(x)` when finite, else a [`Error::NonFinite`] naming `what` (a failed step).
fn finite(x: f64, what: &'static str) -> Result<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Error::NonFinite { what })
    }
}

/// The loop's view of HF: [`HessianFree::step`], the configured limits, and the
/// rules a step's record can fire.
impl<V: Vector, P: Problem<Vector = V>> Stepper<P> for HessianFree<V> {
    fn step(
        &mut self,
        problem: &mut P,
        state: &mut HfState<V>,
        observer: &mut dyn Observer<V>,
    ) -> Result<IterationRecord> {
        HessianFree::step(self, problem, state, observer)
    }

    fn limits(&self) -> Limits {
        Limits {
            max_iterations: self.config.max_iterations,
            time_budget: self.config.time_budget_s.map(Duration::from_secs_f64),
        }
    }

    fn stop_after(&self, record: &IterationRecord, state: &HfState<V>) -> Option<StopReason> {
        if record.outcome != StepOutcome::NonFinite {
            if record.gradient_norm <= self.config.gradient_tolerance {
                return Some(StopReason::GradientTolerance);
            }
            if self.config.target_objective.is_some_and(|t| record.objective <= t) {
                return Some(StopReason::TargetObjective);
            }
        }
        (state.consecutive_failures >= self.config.max_consecutive_failures).then_some(StopReason::TooManyFailures)
    }
}
