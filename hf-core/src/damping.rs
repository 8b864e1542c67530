//! Damping strategies: how `λ` follows the reduction ratio `ρ`.

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error, Result};

/// Updates the damping `λ` from the reduction ratio
/// `ρ = (f(θ + p) − f(θ)) / q(p)` of the last step.
///
/// A failed step (a non-finite objective or curvature, or a rejected line search)
/// is reported as `ρ = NaN`; a strategy must treat it as a bad step.
/// Implement this trait to plug in your own rule; the HF loop takes it as a
/// `Box<dyn DampingStrategy>`.
///
/// # Example
/// ```
/// use hf_core::DampingStrategy;
///
/// /// Halves λ after good steps and doubles it after bad ones.
/// struct Halving;
///
/// impl DampingStrategy for Halving {
///     fn update(&mut self, lambda: f64, rho: f64) -> f64 {
///         if rho > 0.5 { lambda / 2.0 } else { lambda * 2.0 }
///     }
/// }
///
/// let mut s = Halving;
/// assert_eq!(s.update(1.0, 0.9), 0.5);
/// assert_eq!(s.update(1.0, f64::NAN), 2.0);
/// ```
pub trait DampingStrategy {
    /// Returns the damping for the next iteration.
    fn update(&mut self, lambda: f64, rho: f64) -> f64;

    /// The strategy's own state beyond `λ` (which the loop keeps), for checkpoints.
    /// The default, for stateless rules, is empty.
    fn state(&self) -> Vec<f64> {
        Vec::new()
    }

    /// Restores a state returned by [`state`](Self::state). The default accepts only
    /// the empty state.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `state` is not one this strategy can hold.
    fn load_state(&mut self, state: &[f64]) -> Result<()> {
        expect_stateless("damping strategy state", state)
    }
}

/// The default `load_state` of a stateless plug-in: only the empty state is valid.
pub(crate) fn expect_stateless(name: &'static str, state: &[f64]) -> Result<()> {
    if state.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name,
            value: format!("{} values", state.len()),
            allowed: "none: this plug-in keeps no state (was the checkpoint written with another one?)",
        })
    }
}

/// Martens' Levenberg-Marquardt rule: `λ ← λ·boost` if `ρ < low`, `λ ← λ·drop` if
/// `ρ > high`, clamped to `[min_damping, max_damping]`.
///
/// # References
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §4.1.
/// - J. J. Moré, "The Levenberg-Marquardt algorithm: implementation and theory", 1978.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LevenbergMarquardt {
    /// Below this `ρ` the step was poor and `λ` grows. Default `0.25`.
    pub low: f64,
    /// Above this `ρ` the model was trustworthy and `λ` shrinks. Default `0.75`.
    pub high: f64,
    /// Factor applied when `ρ < low` or the step failed. Default `3/2`.
    pub boost: f64,
    /// Factor applied when `ρ > high`. Default `2/3`.
    pub drop: f64,
    /// Lower clamp on `λ`. Default `1e-10`.
    pub min_damping: f64,
    /// Upper clamp on `λ`. Default `1e10`.
    pub max_damping: f64,
}

impl Default for LevenbergMarquardt {
    fn default() -> Self {
        Self {
            low: 0.25,
            high: 0.75,
            boost: 1.5,
            drop: 2.0 / 3.0,
            min_damping: 1e-10,
            max_damping: 1e10,
        }
    }
}

impl LevenbergMarquardt {
    /// Checks every constant, naming the first bad field (prefixed by `prefix`).
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let f = |name: &str| format!("{prefix}{name}");
        if !(self.low.is_finite() && self.high.is_finite() && self.low < self.high) {
            return Err(ConfigError::new(
                f("low"),
                format!("{} (high = {})", self.low, self.high),
                "finite, with low < high",
            ));
        }
        if !(self.boost.is_finite() && self.boost > 1.0) {
            return Err(ConfigError::new(f("boost"), self.boost, "finite and > 1"));
        }
        if !(self.drop > 0.0 && self.drop < 1.0) {
            return Err(ConfigError::new(f("drop"), self.drop, "(0, 1)"));
        }
        if !(self.min_damping >= 0.0 && self.min_damping <= self.max_damping) {
            return Err(ConfigError::new(
                f("min_damping"),
                format!("{} (max_damping = {})", self.min_damping, self.max_damping),
                "0 ≤ min_damping ≤ max_damping",
            ));
        }
        Ok(())
    }
}

impl DampingStrategy for LevenbergMarquardt {
    fn update(&mut self, lambda: f64, rho: f64) -> f64 {
        let next = if !rho.is_finite() || rho < self.low {
            lambda * self.boost
        } else if rho > self.high {
            lambda * self.drop
        } else {
            lambda
        };
        next.clamp(self.min_damping, self.max_damping)
    }
}

/// Keeps `λ` where it is, whatever `ρ` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedDamping;

impl DampingStrategy for FixedDamping {
    fn update(&mut self, lambda: f64, _rho: f64) -> f64 {
        lambda
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_at_the_thresholds() {
        let mut lm = LevenbergMarquardt::default();
        assert_eq!(lm.update(1.0, 0.2499), 1.5);
        // ρ exactly at a threshold leaves λ unchanged (strict inequalities, as in Martens' code).
        assert_eq!(lm.update(1.0, 0.25), 1.0);
        assert_eq!(lm.update(1.0, 0.5), 1.0);
        assert_eq!(lm.update(1.0, 0.75), 1.0);
        assert!((lm.update(1.0, 0.7501) - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(lm.update(1.0, -3.0), 1.5);
    }

    #[test]
    fn failures_grow_lambda() {
        let mut lm = LevenbergMarquardt::default();
        assert_eq!(lm.update(2.0, f64::NAN), 3.0);
        assert_eq!(lm.update(2.0, f64::INFINITY), 3.0);
        assert_eq!(lm.update(2.0, f64::NEG_INFINITY), 3.0);
    }

    #[test]
    fn clamps_to_bounds() {
        let mut lm = LevenbergMarquardt {
            min_damping: 0.5,
            max_damping: 2.0,
            ..Default::default()
        };
        assert_eq!(lm.update(1.9, f64::NAN), 2.0);
        assert_eq!(lm.update(0.6, 1.0), 0.5);
    }

    #[test]
    fn fixed_damping_never_moves() {
        assert_eq!(FixedDamping.update(0.3, f64::NAN), 0.3);
        assert_eq!(FixedDamping.update(0.3, 1.0), 0.3);
    }

    #[test]
    fn validation_names_the_field() {
        let bad = LevenbergMarquardt {
            drop: 1.5,
            ..Default::default()
        };
        assert_eq!(bad.validate("damping.").unwrap_err().field, "damping.drop");
    }
}
