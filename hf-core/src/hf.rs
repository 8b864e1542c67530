//! The Hessian-free outer loop.

use std::time::{Duration, Instant};

use crate::cg::ConjugateGradient;
use crate::config::{HfConfig, Mode, PreconditionerKind, RhoModel};
use crate::damping::DampingStrategy;
use crate::error::{ConfigError, Error, Result};
use crate::lanczos::Lanczos;
use crate::observer::{IterationRecord, Observer, PhaseTimes, SolverReports, StepOutcome};
use crate::operator::{CurvatureOperator, L2Regularized};
use crate::preconditioner::{Diagonal, Identity, Preconditioner, PreconditionerContext};
use crate::problem::{Batch, Problem};
use crate::solver::{QuadraticModel, SolveOutcome, Solver, StoredIterate};
use crate::state::{HfState, PluginState};
use crate::stepper::{drive, Limits, RunReport, Stepper, StopReason};
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
/// The damping strategy, the preconditioner and the solver are plug-ins (see
/// [`with_damping`](Self::with_damping) and friends).
///
/// # References
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
/// - J. Martens and I. Sutskever, "Training deep and recurrent networks with
///   Hessian-free optimization", in Neural Networks: Tricks of the Trade, 2012.
/// - J. Nocedal and S. J. Wright, "Numerical Optimization", 2006, §3.1 (Armijo),
///   §4 (trust regions).
pub struct HessianFree<V> {
    config: HfConfig,
    damping: Box<dyn DampingStrategy>,
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
        config.validate()?;
        let preconditioner: Box<dyn Preconditioner<V>> = match config.preconditioner {
            PreconditionerKind::Identity => Box::new(Identity),
            PreconditionerKind::MartensDiagonal => Box::new(Diagonal::new(config.preconditioner_exponent)),
        };
        let solver: Box<dyn Solver<V>> = match config.mode {
            Mode::Damped => Box::new(ConjugateGradient::new(config.cg)?),
            Mode::TrustRegion => Box::new(Lanczos::new(config.lanczos)?),
        };
        Ok(Self {
            damping: Box::new(config.damping),
            preconditioner,
            solver,
            config,
        })
    }
}

impl<V: Vector> HessianFree<V> {
    /// Replaces the damping strategy.
    pub fn with_damping(mut self, damping: Box<dyn DampingStrategy>) -> Self {
        self.damping = damping;
        self
    }

    /// Replaces the preconditioner.
    pub fn with_preconditioner(mut self, preconditioner: Box<dyn Preconditioner<V>>) -> Self {
        self.preconditioner = preconditioner;
        self
    }

    /// Replaces the inner solver.
    ///
    /// # Errors
    /// A [`ConfigError`] on `mode` when the solver does not fit it: trust-region mode
    /// needs a solver that keeps its step within the radius
    /// ([`Solver::honours_radius`]), and damped mode gives none, so a trust-region
    /// solver there would silently ignore [`HfConfig::trust_region`].
    pub fn with_solver(mut self, solver: Box<dyn Solver<V>>) -> Result<Self, ConfigError> {
        match (self.config.mode, solver.honours_radius()) {
            (Mode::TrustRegion, false) => Err(ConfigError::new(
                "mode",
                "trust_region",
                "damped for a solver that ignores the trust-region radius (CG); use Lanczos for trust_region",
            )),
            (Mode::Damped, true) => Err(ConfigError::new(
                "mode",
                "damped",
                "trust_region for a solver that constrains its step to a radius (Lanczos): damped mode gives it none",
            )),
            _ => {
                self.solver = solver;
                Ok(self)
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HfConfig {
        &self.config
    }

    /// The initial state at `theta`.
    pub fn init(&self, theta: V) -> HfState<V> {
        HfState {
            // Unset: chosen from the curvature during the first iteration; 1 if that
            // iteration fails before the curvature could be measured.
            damping: self.config.initial_damping.unwrap_or(1.0),
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
        self.damping.load_state(&state.plugins.damping)?;
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
            radius: (self.config.mode == Mode::TrustRegion).then_some(state.radius),
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
            damping: self.damping.state(),
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
        match self.config.mode {
            Mode::Damped => state.damping = self.damping.update(state.damping, f64::NAN),
            Mode::TrustRegion => state.radius *= self.config.trust_region.shrink,
        }
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
        if state.iteration == 1 && self.config.initial_damping.is_none() {
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
        self.refresh_preconditioner(problem, &state.theta, state.damping)?;
        record.phases.preconditioner = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let fc0 = finite(
            self.objective_at(problem, &state.theta, 0.0, None, Batch::Curvature)?,
            "objective (curvature batch)",
        )?;
        record.phases.rho = clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        let outcome = self.solve(problem, state, &g, observer)?;
        record.phases.solve = clock.elapsed().as_secs_f64();
        record.solver_iterations = outcome.iterations;
        record.termination = Some(outcome.termination);
        record.curvature_products = outcome.products;
        if !outcome.step.is_finite() {
            return Err(Error::NonFinite { what: "solver step" });
        }

        match self.config.mode {
            Mode::Damped => self.damped_update(problem, state, record, outcome, &g, f0, fc0),
            Mode::TrustRegion => self.trust_region_update(problem, state, record, outcome, fc0),
        }
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

    /// Refreshes the preconditioner at `theta`. It sees `λ + w`: the L2 term is part
    /// of the curvature.
    fn refresh_preconditioner(&mut self, problem: &mut impl Problem<Vector = V>, theta: &V, lambda: f64) -> Result<()> {
        let diagonal = if self.preconditioner.wants_diagonal() {
            problem.curvature_diagonal(theta)?
        } else {
            None
        };
        self.preconditioner.update(&PreconditionerContext {
            diagonal: diagonal.as_ref(),
            damping: lambda + self.config.l2_weight,
        })
    }

    /// Minimizes the damped quadratic model at `state.theta` by the inner solver, warm
    /// started (damped mode) from the last solution times `ζ`.
    fn solve<P: Problem<Vector = V>>(
        &mut self,
        problem: &mut P,
        state: &HfState<V>,
        g: &V,
        observer: &mut dyn Observer<V>,
    ) -> Result<SolveOutcome<V>> {
        let cfg = &self.config;
        let w = cfg.l2_weight;
        let warm = state
            .warm_start
            .as_ref()
            .filter(|p| p.len() == state.theta.len() && cfg.mode == Mode::Damped)
            .map(|p| {
                let mut p = p.clone();
                p.scale(cfg.warm_start_decay);
                p
            });
        let base = problem.curvature(&state.theta, state.damping)?;
        let regularized = L2Regularized::new(base.as_ref(), w);
        let op: &dyn CurvatureOperator<V> = if w > 0.0 { &regularized } else { base.as_ref() };
        let mut model = QuadraticModel::new(op, g).preconditioned(self.preconditioner.as_ref());
        if let Some(p0) = warm.as_ref() {
            model = model.warm_start(p0);
        }
        if cfg.mode == Mode::TrustRegion {
            model = model.within(state.radius);
        }
        self.solver.solve(&model, &mut SolverReports(observer))
    }

    /// Objective at `θ + α p` (L2 included; `p = None` for `θ` itself) on `batch`;
    /// non-finite values become `+∞` so that comparisons reject them.
    fn objective_at(
        &self,
        problem: &mut impl Problem<Vector = V>,
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
        let f = problem.objective(x, batch)? + 0.5 * self.config.l2_weight * x.dot(x);
        Ok(if f.is_finite() { f } else { f64::INFINITY })
    }

    /// CG backtracking (Martens 2010, §4.6): from the last stored iterate, walks back
    /// while the objective on the gradient batch keeps falling. Returns the chosen
    /// iterate and its objective.
    fn backtrack(
        &self,
        problem: &mut impl Problem<Vector = V>,
        theta: &V,
        mut iterates: Vec<StoredIterate<V>>,
    ) -> Result<(StoredIterate<V>, f64)> {
        let Some(mut chosen) = iterates.pop() else {
            return Err(Error::InvalidArgument {
                name: "solver outcome",
                value: "no iterates".into(),
                allowed: "at least the final iterate (a Solver must return it)",
            });
        };
        let mut f_chosen = self.objective_at(problem, theta, 1.0, Some(&chosen.step), Batch::Gradient)?;
        if self.config.backtracking {
            while let Some(earlier) = iterates.pop() {
                let f_earlier = self.objective_at(problem, theta, 1.0, Some(&earlier.step), Batch::Gradient)?;
                if f_earlier >= f_chosen {
                    break;
                }
                chosen = earlier;
                f_chosen = f_earlier;
            }
        }
        Ok((chosen, f_chosen))
    }

    /// The reduction ratio `ρ = (f(θ + p) − f(θ)) / q(p)` on the curvature batch, NaN
    /// when the model predicts no decrease. `model_value` is the damped `q(p)`.
    fn reduction_ratio<P: Problem<Vector = V>>(
        &self,
        problem: &mut P,
        state: &HfState<V>,
        model_value: f64,
        p: &V,
        fc0: f64,
    ) -> Result<f64> {
        let q = self.rho_model_value(problem, &state.theta, state.damping, model_value, p)?;
        let fc1 = self.objective_at(problem, &state.theta, 1.0, Some(p), Batch::Curvature)?;
        Ok(if q < 0.0 { (fc1 - fc0) / q } else { f64::NAN })
    }

    /// The model value that `ρ` divides by: the damped `q(p)` itself, or the undamped
    /// one, `q(p) − ½ pᵀ D p` with `D` all of the operator's damping (Tikhonov and, for
    /// RNNs, structural), so that `ρ` compares the objective with its own model. The
    /// operator is rebuilt for this: it borrows the problem, which the backtracking
    /// and the line search need in between; the cost is one `J v` at most.
    fn rho_model_value<P: Problem<Vector = V>>(
        &self,
        problem: &mut P,
        theta: &V,
        lambda: f64,
        damped: f64,
        p: &V,
    ) -> Result<f64> {
        Ok(match self.config.rho_model {
            RhoModel::Damped => damped,
            RhoModel::Undamped => damped - 0.5 * problem.curvature(theta, lambda)?.damping_energy(p)?,
        })
    }

    /// Armijo line search along `p` from `θ` (objective `f0`, slope `gᵀp`), starting at
    /// `α = 1` whose value `f_full` is already known. Returns the accepted `(α, f)`,
    /// or `None` when no tried step decreases the objective enough.
    fn line_search(
        &self,
        problem: &mut impl Problem<Vector = V>,
        theta: &V,
        p: &V,
        slope: f64,
        f0: f64,
        f_full: f64,
    ) -> Result<Option<(f64, f64)>> {
        let ls = self.config.line_search;
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
            f_alpha = self.objective_at(problem, theta, alpha, Some(p), Batch::Gradient)?;
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    fn damped_update<P: Problem<Vector = V>>(
        &mut self,
        problem: &mut P,
        state: &mut HfState<V>,
        record: &mut IterationRecord,
        outcome: SolveOutcome<V>,
        g: &V,
        f0: f64,
        fc0: f64,
    ) -> Result<()> {
        state.warm_start = Some(outcome.step);

        let clock = Instant::now();
        let (chosen, f_chosen) = self.backtrack(problem, &state.theta, outcome.iterates)?;
        record.chosen_iterate = chosen.iteration;
        record.phases.backtracking = clock.elapsed().as_secs_f64();
        let p = chosen.step;

        let clock = Instant::now();
        let rho = self.reduction_ratio(problem, state, chosen.model_value, &p, fc0)?;
        record.rho = rho;
        record.phases.rho += clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        let accepted = self.line_search(problem, &state.theta, &p, g.dot(&p), f0, f_chosen)?;
        record.phases.line_search = clock.elapsed().as_secs_f64();

        state.damping = self
            .damping
            .update(state.damping, if accepted.is_some() { rho } else { f64::NAN });
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

    fn trust_region_update<P: Problem<Vector = V>>(
        &mut self,
        problem: &mut P,
        state: &mut HfState<V>,
        record: &mut IterationRecord,
        outcome: SolveOutcome<V>,
        fc0: f64,
    ) -> Result<()> {
        let tr = self.config.trust_region;
        let p = outcome.step;
        record.chosen_iterate = outcome.iterations;
        let clock = Instant::now();
        let rho = self.reduction_ratio(problem, state, outcome.model_value, &p, fc0)?;
        record.rho = rho;
        record.phases.rho += clock.elapsed().as_secs_f64();

        let on_boundary = outcome.termination == crate::solver::Termination::Boundary;
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
            let f1 = self.objective_at(problem, &state.theta, 1.0, Some(&p), Batch::Gradient)?;
            record.phases.line_search = clock.elapsed().as_secs_f64();
            if f1 < record.objective_before {
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
