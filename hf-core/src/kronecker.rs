//! Kronecker-factored curvature blocks (K-FAC): one affine layer's block of the
//! Gauss-Newton (or Fisher) matrix approximated as `A ⊗ G`, and the damped inverse
//! that makes it a preconditioner.
//!
//! A layer `y = ā W̄` (`ā = [a, 1]` when it has a bias, `W̄ = [W; b]`) has the
//! per-case Jacobian `ā_iᵀ ⊗ J_y` and the curvature block
//! `(1/N) Σ_i (ā_i ā_iᵀ) ⊗ (J_yᵀ H_L J_y)_i`; K-FAC approximates it by the product of the
//! averages, `A = (1/N) Σ_i ā_i ā_iᵀ` and `G = (1/N) Σ_i δ_i δ_iᵀ`, where `δ_i` is a
//! vector back-propagated to `y` whose outer product has expectation
//! `(J_yᵀ H_L J_y)_i` (for example `J_yᵀ S v` with `S Sᵀ = H_L` and random signs
//! `v`). With `θ` holding `W` row-major, `(A ⊗ G) vec(R) = vec(A R G)`.
//!
//! # References
//! - J. Martens and R. Grosse, "Optimizing neural networks with Kronecker-factored
//!   approximate curvature", ICML 2015 (§3 the factors, §6.3 the factored damping
//!   with `π`).

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, Error, Result};

/// One affine layer's Kronecker factors, on the host in `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct KroneckerFactor {
    /// Offset in `θ` of the weight `W`, `[fan_in, fan_out]` row-major.
    pub weight: usize,
    /// Offset in `θ` of the bias `b`, `[fan_out]`, when the layer has one (it is the
    /// last row of `W̄`, with an input of ones).
    pub bias: Option<usize>,
    /// Inputs per case.
    pub fan_in: usize,
    /// Outputs per case.
    pub fan_out: usize,
    /// `A = (1/N) Σ ā āᵀ`, `[rows, rows]` row-major with `rows = fan_in (+ 1 with a
    /// bias)`.
    pub input: Vec<f64>,
    /// `G = (1/N) Σ δ δᵀ`, `[fan_out, fan_out]` row-major.
    pub output: Vec<f64>,
}

impl KroneckerFactor {
    /// Rows of `W̄` (and of `A`): `fan_in`, plus one for the bias.
    pub fn rows(&self) -> usize {
        self.fan_in + usize::from(self.bias.is_some())
    }

    /// Checks the factors' sizes, their finiteness, and that the layer's parameters
    /// lie within `parameters`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming what does not fit; [`Error::NonFinite`].
    pub fn validate(&self, parameters: usize) -> Result<()> {
        let (r, m) = (self.rows(), self.fan_out);
        let fits = |offset: usize, len: usize| offset.checked_add(len).is_some_and(|end| end <= parameters);
        let ok = self.input.len() == r * r
            && self.output.len() == m * m
            && fits(self.weight, self.fan_in * m)
            && self.bias.is_none_or(|b| fits(b, m));
        if !ok {
            return Err(Error::InvalidArgument {
                name: "Kronecker factor",
                value: format!(
                    "A of {} entries, G of {}, for a {}×{} layer at {} (bias {:?}) of {parameters} parameters",
                    self.input.len(),
                    self.output.len(),
                    self.fan_in,
                    m,
                    self.weight,
                    self.bias
                ),
                allowed: "A of rows², G of fan_out², the layer's parameters within θ",
            });
        }
        if self.input.iter().chain(&self.output).any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "Kronecker factor",
            });
        }
        Ok(())
    }

    /// Whether `other` describes the same layer (offsets and sizes).
    pub fn same_layer(&self, other: &Self) -> bool {
        (self.weight, self.bias, self.fan_in, self.fan_out) == (other.weight, other.bias, other.fan_in, other.fan_out)
    }

    /// The running average `self ← decay · self + (1 − decay) · new`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `new` is another layer.
    pub fn blend(&mut self, new: &Self, decay: f64) -> Result<()> {
        if !self.same_layer(new) {
            return Err(Error::InvalidArgument {
                name: "Kronecker factor",
                value: format!("layer at {} blended with the layer at {}", self.weight, new.weight),
                allowed: "the same layer (did the network change?)",
            });
        }
        for (s, n) in self.input.iter_mut().zip(&new.input) {
            *s = decay * *s + (1.0 - decay) * n;
        }
        for (s, n) in self.output.iter_mut().zip(&new.output) {
            *s = decay * *s + (1.0 - decay) * n;
        }
        Ok(())
    }

    /// The inverses of the damped factors, `(A + π√λ I)⁻¹` and `(G + √λ/π I)⁻¹`, with
    /// `π = √((tr A / rows) / (tr G / fan_out))` (Martens & Grosse §6.3), so that
    /// their product's damping is `λ` and split between the factors by their scales.
    /// A factor that is zero (a layer no case reached) is taken as the identity's
    /// scale. `λ = 0` is floored at `10⁻¹²` of the factors' scales, so singular
    /// factors still invert.
    ///
    /// # Errors
    /// [`Error::NonFinite`] when a damped factor is not positive definite.
    pub fn damped_inverses(&self, damping: f64) -> Result<(Vec<f64>, Vec<f64>)> {
        let (r, m) = (self.rows(), self.fan_out);
        let scale = |f: &[f64], n: usize| {
            let t = (0..n).map(|i| f[i * n + i]).sum::<f64>() / n.max(1) as f64;
            if t > 0.0 && t.is_finite() {
                t
            } else {
                1.0
            }
        };
        let (sa, sg) = (scale(&self.input, r), scale(&self.output, m));
        let pi = (sa / sg).sqrt();
        let lambda = damping.max(1e-12 * sa * sg);
        let damped = |f: &[f64], n: usize, add: f64| {
            let mut d = f.to_vec();
            for i in 0..n {
                d[i * n + i] += add;
            }
            d
        };
        let a = spd_inverse(&damped(&self.input, r, pi * lambda.sqrt()), r)?;
        let g = spd_inverse(&damped(&self.output, m, lambda.sqrt() / pi), m)?;
        Ok((a, g))
    }
}

/// The inverse of the symmetric positive definite `n × n` matrix `m` (row-major),
/// by Cholesky factorization.
///
/// # Errors
/// [`Error::NonFinite`] when `m` is not positive definite (or not finite).
pub fn spd_inverse(m: &[f64], n: usize) -> Result<Vec<f64>> {
    // L with m = L Lᵀ, lower triangle row-major.
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            let v = m[i * n + j] - dot;
            if i == j {
                if !(v > 0.0 && v.is_finite()) {
                    return Err(Error::NonFinite {
                        what: "Cholesky pivot of a Kronecker factor (not positive definite)",
                    });
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = v / l[j * n + j];
            }
        }
    }
    // L⁻¹ by forward substitution, column by column (stored row-major, lower).
    let mut li = vec![0.0; n * n];
    for c in 0..n {
        li[c * n + c] = 1.0 / l[c * n + c];
        for i in c + 1..n {
            let s: f64 = (c..i).map(|k| l[i * n + k] * li[k * n + c]).sum();
            li[i * n + c] = -s / l[i * n + i];
        }
    }
    // m⁻¹ = L⁻ᵀ L⁻¹.
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (i..n).map(|k| li[k * n + i] * li[k * n + j]).sum();
            inv[i * n + j] = s;
            inv[j * n + i] = s;
        }
    }
    Ok(inv)
}

/// Settings of a Kronecker-factored preconditioner (hf-burn's `KroneckerFactored`),
/// chosen by [`PreconditionerKind::KroneckerFactored`](crate::PreconditionerKind::KroneckerFactored).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KroneckerConfig {
    /// Weight of the old factors in their running averages,
    /// `F ← decay · F + (1 − decay) · F_new`. Default `0.5`: each HF iteration sees
    /// a large batch, so the average spans a few iterations (K-FAC, with one
    /// minibatch per step, uses `0.95`).
    pub decay: f64,
    /// New factors and inverses every this many updates (outer iterations); in
    /// between, the inverses of the last refresh are kept. Default `1`.
    pub refresh_every: usize,
    /// Exponent `α` of Martens' diagonal rule `(d + λ)^α` for the parameters outside
    /// every factored layer (biases used alone, shared weights), when the problem
    /// offers a diagonal; without one they are left as they are. Default `0.75`.
    pub fallback_exponent: f64,
}

impl Default for KroneckerConfig {
    fn default() -> Self {
        Self {
            decay: 0.5,
            refresh_every: 1,
            fallback_exponent: 0.75,
        }
    }
}

impl KroneckerConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad one.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        let f = |name: &str| format!("{prefix}{name}");
        if !(0.0..1.0).contains(&self.decay) {
            return Err(ConfigError::new(f("decay"), self.decay, "[0, 1)"));
        }
        if self.refresh_every == 0 {
            return Err(ConfigError::new(f("refresh_every"), 0, "≥ 1"));
        }
        if !(self.fallback_exponent > 0.0 && self.fallback_exponent <= 1.0) {
            return Err(ConfigError::new(
                f("fallback_exponent"),
                self.fallback_exponent,
                "(0, 1]",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn random_spd(n: usize, rng: &mut SplitMix64) -> Vec<f64> {
        let b: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
        let mut m = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] =
                    (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>() + if i == j { 0.1 } else { 0.0 };
            }
        }
        m
    }

    #[test]
    fn the_inverse_of_a_random_spd_matrix_times_it_is_the_identity() {
        let mut rng = SplitMix64::new(3);
        for n in [1, 2, 7, 30] {
            let m = random_spd(n, &mut rng);
            let inv = spd_inverse(&m, n).unwrap();
            for i in 0..n {
                for j in 0..n {
                    let p: f64 = (0..n).map(|k| m[i * n + k] * inv[k * n + j]).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((p - want).abs() < 1e-8, "n {n}: ({i},{j}) = {p}");
                }
            }
        }
        assert!(spd_inverse(&[1.0, 2.0, 2.0, 1.0], 2).is_err(), "indefinite");
        assert!(spd_inverse(&[f64::NAN], 1).is_err());
    }

    #[test]
    fn the_damping_is_split_by_the_factors_scales() {
        // A = 4 I (2×2, with bias), G = I (3×3): π = 2, A + 2√λ, G + √λ/2.
        let f = KroneckerFactor {
            weight: 0,
            bias: Some(3),
            fan_in: 1,
            fan_out: 3,
            input: vec![4.0, 0.0, 0.0, 4.0],
            output: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        };
        f.validate(6).unwrap();
        assert!(f.validate(5).is_err(), "the bias runs past θ");
        let (a, g) = f.damped_inverses(0.25).unwrap();
        assert!((a[0] - 1.0 / 5.0).abs() < 1e-15 && a[1] == 0.0);
        assert!((g[0] - 1.0 / 1.25).abs() < 1e-15);

        let mut avg = f.clone();
        let mut new = f.clone();
        new.input = vec![0.0; 4];
        avg.blend(&new, 0.75).unwrap();
        assert_eq!(avg.input, vec![3.0, 0.0, 0.0, 3.0]);
        new.weight = 1;
        assert!(avg.blend(&new, 0.5).is_err());
    }
}
