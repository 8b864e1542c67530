//! Preconditioned Lanczos: extreme eigenvalue estimates and the trust-region
//! subproblem inside the Krylov subspace (GLTR).

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error, Result};
use crate::operator::check_dim;
use crate::solver::{
    QuadraticModel, SolveOutcome, Solver, SolverIterationRecord, SolverObserver, Spectrum, StoredIterate, Termination,
};
use crate::tridiagonal::{Tridiagonal, TrustRegionSolution};
use crate::vector::Vector;

/// Settings of [`Lanczos`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanczosConfig {
    /// Hard iteration limit (and the number of basis vectors kept). Default `100`.
    pub max_iterations: usize,
    /// Stop when the model's gradient, in the `M⁻¹` norm, is below `tol · ‖g‖_{M⁻¹}`.
    /// Default `1e-6`.
    pub residual_tolerance: f64,
    /// Re-orthogonalize each new vector against the whole basis (doubles the memory:
    /// the basis is kept in both the `M` and the `M⁻¹` representation). Default `false`.
    pub reorthogonalize: bool,
}

impl Default for LanczosConfig {
    fn default() -> Self {
        Self {
            max_iterations: 100,
            residual_tolerance: 1e-6,
            reorthogonalize: false,
        }
    }
}

impl LanczosConfig {
    /// Checks every field, naming the first bad one (prefixed by `prefix`).
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.max_iterations == 0 {
            return Err(ConfigError::new(format!("{prefix}max_iterations"), 0, "≥ 1"));
        }
        if !(self.residual_tolerance.is_finite() && self.residual_tolerance >= 0.0) {
            return Err(ConfigError::new(
                format!("{prefix}residual_tolerance"),
                self.residual_tolerance,
                "finite and ≥ 0",
            ));
        }
        Ok(())
    }
}

/// Preconditioned Lanczos on `A = B + λI`.
///
/// It builds an `M`-orthonormal basis `U_k` of the Krylov space
/// `K_k(M⁻¹A, M⁻¹g)` and the tridiagonal `T_k = U_kᵀ A U_k`, whose extreme
/// eigenvalues (returned in [`SolveOutcome::spectrum`]) estimate those of the
/// preconditioned operator `M^{-1/2} A M^{-1/2}`. The step minimizes the model
/// over the subspace, subject to `‖p‖_M ≤ Δ` when the model has a radius (the
/// Euclidean norm with the identity preconditioner); along negative curvature it
/// goes to the boundary. Without a radius, an indefinite `T_k` ends the solve with
/// [`Termination::NonPositiveCurvature`] and the last definite solution.
///
/// The basis is stored (`k` vectors), so memory grows with the iteration count.
///
/// # Example
/// ```
/// use hf_core::{DenseOperator, Lanczos, QuadraticModel, Solver};
/// // An indefinite model: diag(1, −1). Its trust-region step of radius 2 goes
/// // to the boundary along the negative-curvature direction.
/// let a = DenseOperator::new(vec![1.0, 0.0, 0.0, -1.0], 2, 0.0).unwrap();
/// let g = vec![1.0, 1.0];
/// let out = Lanczos::default().solve(&QuadraticModel::new(&a, &g).within(2.0), &mut ()).unwrap();
/// let norm = (out.step[0].powi(2) + out.step[1].powi(2)).sqrt();
/// assert!((norm - 2.0).abs() < 1e-9 && out.model_value < 0.0);
/// assert!((out.spectrum.unwrap().min + 1.0).abs() < 1e-9);
/// ```
///
/// # References
/// - C. Lanczos, "An iteration method for the solution of the eigenvalue problem of
///   linear differential and integral operators", 1950.
/// - N. I. M. Gould, S. Lucidi, M. Roma and Ph. L. Toint, "Solving the trust-region
///   subproblem using the Lanczos method", SIAM J. Optim. 9(2), 1999.
#[derive(Debug, Clone, Default)]
pub struct Lanczos {
    /// Settings.
    pub config: LanczosConfig,
}

impl Lanczos {
    /// A solver with the given settings.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid field.
    pub fn new(config: LanczosConfig) -> Result<Self, ConfigError> {
        config.validate("lanczos.")?;
        Ok(Self { config })
    }
}

impl<V: Vector> Solver<V> for Lanczos {
    fn honours_radius(&self) -> bool {
        true
    }

    fn solve(&mut self, model: &QuadraticModel<'_, V>, observer: &mut dyn SolverObserver) -> Result<SolveOutcome<V>> {
        let cfg = self.config;
        let op = model.operator;
        let g = model.gradient;
        check_dim("Lanczos: gradient vs operator", op.dim(), g.len())?;
        if !g.is_finite() {
            return Err(Error::NonFinite {
                what: "Lanczos start vector (gradient)",
            });
        }
        if let Some(r) = model.radius {
            if !(r > 0.0 && r.is_finite()) {
                return Err(Error::InvalidArgument {
                    name: "radius",
                    value: r.to_string(),
                    allowed: "finite and > 0",
                });
            }
        }

        // w_j: basis in the "M" representation (r / β); u_j = M⁻¹ w_j: the basis of steps.
        let mut r = g.clone();
        let mut y = model.preconditioner.apply(&r)?;
        let beta0 = r.dot(&y).max(0.0).sqrt();
        if !beta0.is_finite() {
            return Err(Error::NonFinite {
                what: "preconditioned gradient",
            });
        }
        let mut t = Tridiagonal::default();
        let mut basis_u: Vec<V> = Vec::new();
        let mut basis_w: Vec<V> = Vec::new();
        let mut w_prev: Option<V> = None;
        let mut beta = beta0;
        let mut best: Option<TrustRegionSolution> = None;
        let mut termination = if beta0 == 0.0 {
            Termination::Converged
        } else {
            Termination::MaxIterations
        };
        let mut products = 0;

        while beta > 0.0 && t.len() < cfg.max_iterations {
            let j = t.len();
            let mut u = y;
            u.scale(1.0 / beta);
            let mut w = r;
            w.scale(1.0 / beta);
            let z = op.apply(&u)?;
            products += 1;
            if !z.is_finite() {
                return Err(Error::NonFinite {
                    what: "curvature product",
                });
            }
            let alpha = u.dot(&z);
            r = z;
            r.axpy(-alpha, &w);
            if let Some(wp) = &w_prev {
                r.axpy(-beta, wp);
            }
            if cfg.reorthogonalize {
                for (ui, wi) in basis_u.iter().zip(&basis_w).chain(std::iter::once((&u, &w))) {
                    let c = ui.dot(&r);
                    r.axpy(-c, wi);
                }
            }
            y = model.preconditioner.apply(&r)?;
            let beta_next = r.dot(&y).max(0.0).sqrt();
            if !beta_next.is_finite() {
                return Err(Error::NonFinite {
                    what: "Lanczos recurrence",
                });
            }

            if j > 0 {
                t.off.push(beta);
            }
            t.diag.push(alpha);
            basis_u.push(u);
            if cfg.reorthogonalize {
                basis_w.push(w.clone());
            }
            w_prev = Some(w);
            beta = beta_next;

            let Some(sol) = t.trust_region(beta0, model.radius) else {
                termination = Termination::NonPositiveCurvature;
                break;
            };
            // ‖A p + g‖_{M⁻¹} = β_{k} |h_{k−1}| (Paige's identity for the Lanczos residual).
            let residual = beta * sol.h[j].abs();
            observer.on_solver_iteration(&SolverIterationRecord {
                iteration: j + 1,
                model_value: sol.model_value,
                residual_norm: residual,
            });
            let on_boundary = sol.on_boundary;
            best = Some(sol);
            let exhausted = beta <= f64::EPSILON * beta0;
            if exhausted || residual <= cfg.residual_tolerance * beta0 {
                termination = if on_boundary {
                    Termination::Boundary
                } else {
                    Termination::Converged
                };
                break;
            }
            if on_boundary {
                termination = Termination::Boundary;
            }
        }

        let mut step = g.zeros_like();
        let (model_value, iterations) = match &best {
            Some(sol) => {
                for (hj, uj) in sol.h.iter().zip(&basis_u) {
                    step.axpy(*hj, uj);
                }
                (sol.model_value, sol.h.len())
            }
            None => (0.0, 0),
        };
        let spectrum = (!t.is_empty()).then(|| Spectrum {
            min: t.eigenvalue(0),
            max: t.eigenvalue(t.len() - 1),
        });
        Ok(SolveOutcome {
            iterates: vec![StoredIterate {
                iteration: iterations,
                step: step.clone(),
                model_value,
            }],
            step,
            model_value,
            iterations,
            termination,
            products,
            spectrum,
        })
    }
}
