//! Preconditioned conjugate gradient with Martens' truncation rules.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error, Result};
use crate::operator::check_dim;
use crate::solver::{
    QuadraticModel, SolveOutcome, Solver, SolverIterationRecord, SolverObserver, StoredIterate, Termination,
};
use crate::vector::Vector;

/// Martens' relative-progress stopping rule: at iteration `i`, with window
/// `k = max(k_min, ⌈fraction · i⌉)`, stop when `i > k`, `q_i < 0` and
/// `(q_i − q_{i−k}) / q_i < k·ε`.
///
/// # References
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §4.4.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressRule {
    /// `ε`. Default `5e-4`.
    pub epsilon: f64,
    /// Smallest window `k_min`. Default `10`.
    pub window_min: usize,
    /// The window grows as `⌈fraction · i⌉`. Default `0.1`.
    pub window_fraction: f64,
}

impl Default for ProgressRule {
    fn default() -> Self {
        Self {
            epsilon: 5e-4,
            window_min: 10,
            window_fraction: 0.1,
        }
    }
}

impl ProgressRule {
    /// Checks every field, naming the first bad one (prefixed by `prefix`).
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(ConfigError::new(
                format!("{prefix}epsilon"),
                self.epsilon,
                "finite and ≥ 0",
            ));
        }
        if self.window_min == 0 {
            return Err(ConfigError::new(format!("{prefix}window_min"), 0, "≥ 1"));
        }
        if !(self.window_fraction.is_finite() && self.window_fraction >= 0.0) {
            return Err(ConfigError::new(
                format!("{prefix}window_fraction"),
                self.window_fraction,
                "finite and ≥ 0",
            ));
        }
        Ok(())
    }

    /// The window `k` at iteration `i`.
    pub fn window(&self, i: usize) -> usize {
        let grown = (self.window_fraction * i as f64).ceil() as usize;
        self.window_min.max(grown)
    }

    /// Whether to stop at iteration `i`, given the model values `history[j] = q(p_j)`
    /// for `j = 0..=i` (`history[0]` at the start point).
    ///
    /// ```
    /// let rule = hf_core::cg::ProgressRule::default();
    /// // A model that has stalled at −1 for the last 10 iterations: stop.
    /// let mut q: Vec<f64> = (0..=10).map(|i| -(i as f64) / 10.0).collect();
    /// q.extend(std::iter::repeat(-1.0).take(10));
    /// assert!(rule.should_stop(&q, 20));
    /// ```
    pub fn should_stop(&self, history: &[f64], i: usize) -> bool {
        let k = self.window(i);
        if i <= k || i >= history.len() {
            return false;
        }
        let (qi, qk) = (history[i], history[i - k]);
        qi < 0.0 && (qi - qk) / qi < k as f64 * self.epsilon
    }
}

/// Settings of [`ConjugateGradient`], with Martens' (2010) defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CgConfig {
    /// Iterations always performed before any stopping rule applies. Default `1`.
    pub min_iterations: usize,
    /// Hard iteration limit. Default `250`.
    pub max_iterations: usize,
    /// The relative-progress stop.
    pub progress: ProgressRule,
    /// Iterates are stored at iterations `⌈γ^j⌉`. Default `γ = 1.3`.
    pub storage_ratio: f64,
    /// Stop when `‖A p + g‖ ≤ tol · ‖g‖` (the model is solved). Default `1e-10`.
    pub residual_tolerance: f64,
}

impl Default for CgConfig {
    fn default() -> Self {
        Self {
            min_iterations: 1,
            max_iterations: 250,
            progress: ProgressRule::default(),
            storage_ratio: 1.3,
            residual_tolerance: 1e-10,
        }
    }
}

impl CgConfig {
    /// Checks every field, naming the first bad one (prefixed by `prefix`).
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let f = |name: &str| format!("{prefix}{name}");
        if self.max_iterations == 0 {
            return Err(ConfigError::new(f("max_iterations"), 0, "≥ 1"));
        }
        if self.min_iterations > self.max_iterations {
            return Err(ConfigError::new(
                f("min_iterations"),
                self.min_iterations,
                format!("≤ max_iterations ({})", self.max_iterations),
            ));
        }
        self.progress.validate(&f("progress."))?;
        if !(self.storage_ratio.is_finite() && self.storage_ratio > 1.0) {
            return Err(ConfigError::new(
                f("storage_ratio"),
                self.storage_ratio,
                "finite and > 1",
            ));
        }
        if !(self.residual_tolerance.is_finite() && self.residual_tolerance >= 0.0) {
            return Err(ConfigError::new(
                f("residual_tolerance"),
                self.residual_tolerance,
                "finite and ≥ 0",
            ));
        }
        Ok(())
    }
}

/// The iterations `⌈γ^j⌉, j = 0, 1, …` (duplicates removed) at which CG keeps its
/// iterate for backtracking.
///
/// ```
/// let s: Vec<usize> = hf_core::cg::StorageSchedule::new(1.3).take(8).collect();
/// assert_eq!(s, vec![1, 2, 3, 4, 5, 7, 9, 11]);
/// ```
#[derive(Debug, Clone)]
pub struct StorageSchedule {
    ratio: f64,
    power: f64,
    last: usize,
}

impl StorageSchedule {
    /// The schedule for ratio `γ > 1`.
    pub fn new(ratio: f64) -> Self {
        Self {
            ratio,
            power: 1.0,
            last: 0,
        }
    }
}

impl Iterator for StorageSchedule {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        loop {
            let i = self.power.ceil() as usize;
            self.power *= self.ratio;
            if i > self.last {
                self.last = i;
                return Some(i);
            }
        }
    }
}

/// Preconditioned conjugate gradient on `q(p) = ½ pᵀAp + gᵀp`, truncated as in
/// Martens (2010): warm start, the relative-progress stop, minimum and maximum
/// iteration counts, and iterates kept at geometrically spaced iterations for
/// backtracking. Non-positive curvature ends the solve with
/// [`Termination::NonPositiveCurvature`]; a non-finite product is an
/// [`Error::NonFinite`].
///
/// # Example
/// ```
/// use hf_core::{ConjugateGradient, DenseOperator, QuadraticModel, Solver};
/// // Minimize ½ pᵀ diag(1, 4) p + (−1, −8)ᵀ p; the answer is (1, 2).
/// let a = DenseOperator::new(vec![1.0, 0.0, 0.0, 4.0], 2, 0.0).unwrap();
/// let g = vec![-1.0, -8.0];
/// let out = ConjugateGradient::default().solve(&QuadraticModel::new(&a, &g), &mut ()).unwrap();
/// assert!((out.step[0] - 1.0).abs() < 1e-12 && (out.step[1] - 2.0).abs() < 1e-12);
/// ```
///
/// # References
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §4.4–4.6.
/// - M. R. Hestenes and E. Stiefel, "Methods of conjugate gradients for solving linear
///   systems", 1952.
#[derive(Debug, Clone, Default)]
pub struct ConjugateGradient {
    /// Settings.
    pub config: CgConfig,
}

impl ConjugateGradient {
    /// A solver with the given settings.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid field.
    pub fn new(config: CgConfig) -> Result<Self, ConfigError> {
        config.validate("cg.")?;
        Ok(Self { config })
    }
}

/// `q(p) = ½ pᵀ(r + g)` where `r = Ap + g`: the model value without another product.
fn model_value<V: Vector>(p: &V, r: &V, g: &V) -> f64 {
    0.5 * (p.dot(r) + p.dot(g))
}

impl<V: Vector> Solver<V> for ConjugateGradient {
    fn solve(&mut self, model: &QuadraticModel<'_, V>, observer: &mut dyn SolverObserver) -> Result<SolveOutcome<V>> {
        let cfg = &self.config;
        let g = model.gradient;
        let op = model.operator;
        check_dim("CG: gradient vs operator", op.dim(), g.len())?;
        if !g.is_finite() {
            return Err(Error::NonFinite {
                what: "CG right-hand side (gradient)",
            });
        }
        let g_norm = g.norm();

        // Residual convention: r = ∇q(p) = Ap + g, so q(p) = ½ pᵀ(r + g).
        let mut products = 0;
        let (mut p, mut r) = match model.start {
            Some(p0) => {
                check_dim("CG: warm start vs operator", op.dim(), p0.len())?;
                let mut r = op.apply(p0)?;
                products += 1;
                r.axpy(1.0, g);
                (p0.clone(), r)
            }
            None => (g.zeros_like(), g.clone()),
        };
        if !r.is_finite() {
            return Err(Error::NonFinite {
                what: "curvature product",
            });
        }
        let mut y = model.preconditioner.apply(&r)?;
        let mut ry = r.dot(&y);
        let mut d = y.clone();
        d.scale(-1.0);

        let mut history = vec![model_value(&p, &r, g)];
        let mut schedule = StorageSchedule::new(cfg.storage_ratio).peekable();
        let mut iterates = Vec::new();
        let mut termination = Termination::MaxIterations;
        let mut iterations = 0;

        if r.norm() <= cfg.residual_tolerance * g_norm {
            termination = Termination::Converged;
        } else {
            for i in 1..=cfg.max_iterations {
                let ad = op.apply(&d)?;
                products += 1;
                let dad = d.dot(&ad);
                if !dad.is_finite() || !ad.is_finite() {
                    return Err(Error::NonFinite {
                        what: "curvature product",
                    });
                }
                if dad <= 0.0 {
                    termination = Termination::NonPositiveCurvature;
                    break;
                }
                let alpha = ry / dad;
                p.axpy(alpha, &d);
                r.axpy(alpha, &ad);
                y = model.preconditioner.apply(&r)?;
                let ry_next = r.dot(&y);
                if !ry_next.is_finite() {
                    return Err(Error::NonFinite {
                        what: "preconditioned residual",
                    });
                }
                d.lin_comb(ry_next / ry, -1.0, &y);
                ry = ry_next;
                iterations = i;

                let q = model_value(&p, &r, g);
                history.push(q);
                let residual_norm = r.norm();
                observer.on_solver_iteration(&SolverIterationRecord {
                    iteration: i,
                    model_value: q,
                    residual_norm,
                });

                if schedule.peek() == Some(&i) {
                    schedule.next();
                    iterates.push(StoredIterate {
                        iteration: i,
                        step: p.clone(),
                        model_value: q,
                    });
                }
                if i < cfg.min_iterations {
                    continue;
                }
                if residual_norm <= cfg.residual_tolerance * g_norm || ry <= 0.0 {
                    termination = Termination::Converged;
                    break;
                }
                if cfg.progress.should_stop(&history, i) {
                    termination = Termination::RelativeProgress;
                    break;
                }
            }
        }

        let model_value = *history.last().expect("history holds the start value");
        if iterates.last().map(|it| it.iteration) != Some(iterations) {
            iterates.push(StoredIterate {
                iteration: iterations,
                step: p.clone(),
                model_value,
            });
        }
        Ok(SolveOutcome {
            step: p,
            model_value,
            iterations,
            termination,
            iterates,
            products,
            spectrum: None,
        })
    }
}
