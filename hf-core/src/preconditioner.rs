//! Preconditioners for the CG and Lanczos solvers.

use crate::error::{Error, Result};
use crate::kronecker::KroneckerFactor;
use crate::vector::Vector;

/// What the HF loop knows when it refreshes a preconditioner at a new point.
#[derive(Debug, Clone, Copy)]
pub struct PreconditionerContext<'a, V> {
    /// A curvature-diagonal estimate from the problem, if it offers one
    /// (for Martens' preconditioner: the sum of squared per-example gradients).
    pub diagonal: Option<&'a V>,
    /// Kronecker factors of the curvature's layer blocks from the problem, if it
    /// offers them and [`Preconditioner::wants_kronecker_factors`].
    pub kronecker: Option<&'a [KroneckerFactor]>,
    /// The damping `λ` of the operator about to be solved.
    pub damping: f64,
}

/// Applies `M⁻¹ r` for a symmetric positive definite `M`.
///
/// Implement this trait to plug a preconditioner of your own into the solvers and
/// the HF loop; nothing in hf-core needs to change. The loop calls
/// [`update`](Self::update) once per outer iteration before solving.
///
/// # Example
/// ```
/// use hf_core::{Preconditioner, PreconditionerContext, Result};
///
/// /// Jacobi scaling by a fixed vector.
/// struct FixedScale(Vec<f64>);
///
/// impl Preconditioner<Vec<f64>> for FixedScale {
///     fn apply(&self, r: &Vec<f64>) -> Result<Vec<f64>> {
///         Ok(r.iter().zip(&self.0).map(|(a, s)| a / s).collect())
///     }
/// }
///
/// let p = FixedScale(vec![2.0, 4.0]);
/// assert_eq!(p.apply(&vec![1.0, 1.0]).unwrap(), vec![0.5, 0.25]);
/// ```
pub trait Preconditioner<V> {
    /// Computes `M⁻¹ r`.
    fn apply(&self, r: &V) -> Result<V>;

    /// Whether [`update`](Self::update) uses [`PreconditionerContext::diagonal`]. The HF
    /// loop only asks the problem for the (possibly costly) diagonal estimate when this
    /// is `true`. The default is `false`.
    fn wants_diagonal(&self) -> bool {
        false
    }

    /// Whether the next [`update`](Self::update) uses
    /// [`PreconditionerContext::kronecker`]: the HF loop only asks the problem for
    /// them (a forward and a backward pass) when this is `true`. The default is
    /// `false`.
    fn wants_kronecker_factors(&self) -> bool {
        false
    }

    /// Refreshes the preconditioner for a new point and damping. The default does nothing.
    fn update(&mut self, _context: &PreconditionerContext<'_, V>) -> Result<()> {
        Ok(())
    }

    /// State that must outlive an iteration, for checkpoints (a running average of
    /// diagonals, say). The default, for preconditioners rebuilt by every
    /// [`update`](Self::update), is empty.
    fn state(&self) -> Vec<f64> {
        Vec::new()
    }

    /// Restores a state returned by [`state`](Self::state). The default accepts only
    /// the empty state.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `state` is not one this preconditioner can hold.
    fn load_state(&mut self, state: &[f64]) -> Result<()> {
        crate::damping::expect_stateless("preconditioner state", state)
    }
}

/// The identity preconditioner `M = I`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Identity;

impl<V: Clone> Preconditioner<V> for Identity {
    fn apply(&self, r: &V) -> Result<V> {
        Ok(r.clone())
    }
}

/// Martens' diagonal preconditioner `M = (d + λ)^α`.
///
/// `d` is a diagonal curvature estimate, in Martens (2010) the sum over the batch of
/// the squared per-example gradients; `α = 0.75` by default. Until it has seen a
/// diagonal (or when the problem offers none) it acts as the identity.
///
/// # References
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §4.7.
#[derive(Debug, Clone)]
pub struct Diagonal<V> {
    exponent: f64,
    inverse: Option<V>,
}

impl<V: Vector> Diagonal<V> {
    /// The default exponent `α` (Martens 2010).
    pub const DEFAULT_EXPONENT: f64 = 0.75;

    /// An empty diagonal preconditioner with exponent `α`, filled by [`Preconditioner::update`].
    pub fn new(exponent: f64) -> Self {
        Self {
            exponent,
            inverse: None,
        }
    }

    /// Builds `M = (d + λ)^α` directly.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if some `d_i + λ` is negative or not finite.
    pub fn from_diagonal(diagonal: &V, damping: f64, exponent: f64) -> Result<Self> {
        let mut p = Self::new(exponent);
        p.set(diagonal, damping)?;
        Ok(p)
    }

    /// The exponent `α`.
    pub fn exponent(&self) -> f64 {
        self.exponent
    }

    /// `M⁻¹` as a vector, once a diagonal has been set.
    pub fn inverse(&self) -> Option<&V> {
        self.inverse.as_ref()
    }

    fn set(&mut self, diagonal: &V, damping: f64) -> Result<()> {
        let mut m = diagonal.clone();
        m.add_scalar(damping);
        m.powf_elem(self.exponent);
        let mut inv = m.zeros_like();
        inv.add_scalar(1.0);
        inv.div_elem(&m);
        if !inv.is_finite() {
            return Err(Error::NonFinite {
                what: "diagonal preconditioner (d + λ)^α: some entry is negative, zero or not finite",
            });
        }
        self.inverse = Some(inv);
        Ok(())
    }
}

impl<V: Vector> Preconditioner<V> for Diagonal<V> {
    fn apply(&self, r: &V) -> Result<V> {
        let mut out = r.clone();
        if let Some(inv) = &self.inverse {
            crate::operator::check_dim("Diagonal::apply", inv.len(), r.len())?;
            out.mul_elem(inv);
        }
        Ok(out)
    }

    fn wants_diagonal(&self) -> bool {
        true
    }

    fn update(&mut self, context: &PreconditionerContext<'_, V>) -> Result<()> {
        match context.diagonal {
            Some(d) => self.set(d, context.damping),
            None => {
                self.inverse = None;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_is_damped_power_of_estimate() {
        let p = Diagonal::from_diagonal(&vec![3.0_f64, 15.0], 1.0, 0.5).unwrap();
        let y = p.apply(&vec![2.0, 4.0]).unwrap();
        assert!((y[0] - 1.0).abs() < 1e-15 && (y[1] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn diagonal_without_estimate_is_identity_and_rejects_bad_entries() {
        let mut p = Diagonal::<Vec<f64>>::new(0.75);
        assert_eq!(p.apply(&vec![1.0, 2.0]).unwrap(), vec![1.0, 2.0]);
        let bad = vec![-2.0, 1.0];
        let err = p
            .update(&PreconditionerContext {
                diagonal: Some(&bad),
                kronecker: None,
                damping: 1.0,
            })
            .unwrap_err();
        assert!(err.is_non_finite());
    }
}
