//! Small symmetric tridiagonal matrices: the Lanczos projection `T_k` and its
//! trust-region subproblem. Everything here is `O(k)` per call except the
//! eigenvalue bisection (`O(k)` per bisection step).

/// A symmetric tridiagonal matrix: `diag[i]` on the diagonal, `off[i]` coupling
/// rows `i` and `i + 1`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tridiagonal {
    /// Diagonal entries (`α_j` of Lanczos).
    pub diag: Vec<f64>,
    /// Off-diagonal entries (`β_{j+1}` of Lanczos), one fewer than `diag`.
    pub off: Vec<f64>,
}

/// The minimizer of `½ hᵀTh + β₀ h₀` subject to `‖h‖ ≤ Δ`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustRegionSolution {
    /// The minimizer.
    pub h: Vec<f64>,
    /// The Lagrange multiplier `σ ≥ 0` with `(T + σI) h = −β₀ e₁`.
    pub sigma: f64,
    /// Whether `‖h‖ = Δ`.
    pub on_boundary: bool,
    /// The model value at `h`.
    pub model_value: f64,
}

impl Tridiagonal {
    /// Dimension.
    pub fn len(&self) -> usize {
        self.diag.len()
    }

    /// Whether the matrix is empty.
    pub fn is_empty(&self) -> bool {
        self.diag.is_empty()
    }

    /// `T x`.
    pub fn mul(&self, x: &[f64]) -> Vec<f64> {
        let n = self.len();
        (0..n)
            .map(|i| {
                let mut s = self.diag[i] * x[i];
                if i > 0 {
                    s += self.off[i - 1] * x[i - 1];
                }
                if i + 1 < n {
                    s += self.off[i] * x[i + 1];
                }
                s
            })
            .collect()
    }

    /// Number of eigenvalues strictly below `x` (Sturm sequence of `T − xI`).
    pub fn count_below(&self, x: f64) -> usize {
        let mut count = 0;
        let mut d = 1.0;
        for i in 0..self.len() {
            let coupling = if i > 0 { self.off[i - 1].powi(2) / d } else { 0.0 };
            d = self.diag[i] - x - coupling;
            if d == 0.0 {
                // A zero pivot: perturb it so the sequence continues; the count is unaffected
                // to within the bisection tolerance.
                d = -f64::EPSILON * (x.abs() + 1.0);
            }
            if d < 0.0 {
                count += 1;
            }
        }
        count
    }

    /// Gershgorin bounds containing every eigenvalue.
    pub fn gershgorin(&self) -> (f64, f64) {
        let n = self.len();
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for i in 0..n {
            let r = if i > 0 { self.off[i - 1].abs() } else { 0.0 } + if i + 1 < n { self.off[i].abs() } else { 0.0 };
            lo = lo.min(self.diag[i] - r);
            hi = hi.max(self.diag[i] + r);
        }
        (lo, hi)
    }

    /// The `k`-th smallest eigenvalue (0-based) by bisection, to relative accuracy ~1e-15.
    pub fn eigenvalue(&self, k: usize) -> f64 {
        assert!(k < self.len(), "eigenvalue index {k} out of range {}", self.len());
        let (mut lo, mut hi) = self.gershgorin();
        let scale = lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if hi - lo <= 4.0 * f64::EPSILON * scale || mid == lo || mid == hi {
                break;
            }
            if self.count_below(mid) > k {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        0.5 * (lo + hi)
    }

    /// Solves `(T + σI) x = rhs` by an `LDLᵀ` factorization; `None` unless `T + σI`
    /// is positive definite.
    pub fn solve_shifted(&self, sigma: f64, rhs: &[f64]) -> Option<Vec<f64>> {
        let n = self.len();
        let mut d = vec![0.0; n];
        let mut l = vec![0.0; n.saturating_sub(1)];
        for i in 0..n {
            d[i] = self.diag[i] + sigma;
            if i > 0 {
                d[i] -= l[i - 1] * l[i - 1] * d[i - 1];
            }
            if d[i] <= 0.0 || !d[i].is_finite() {
                return None;
            }
            if i + 1 < n {
                l[i] = self.off[i] / d[i];
            }
        }
        // Forward (L z = rhs), diagonal, backward (Lᵀ x = D⁻¹ z).
        let mut x = rhs.to_vec();
        for i in 1..n {
            x[i] -= l[i - 1] * x[i - 1];
        }
        for i in 0..n {
            x[i] /= d[i];
        }
        for i in (0..n.saturating_sub(1)).rev() {
            x[i] -= l[i] * x[i + 1];
        }
        Some(x)
    }

    /// `½ hᵀTh + β₀ h₀`.
    pub fn model_value(&self, beta0: f64, h: &[f64]) -> f64 {
        let th = self.mul(h);
        0.5 * dot(h, &th) + beta0 * h[0]
    }

    /// Minimizes `½ hᵀTh + β₀ h₀` subject to `‖h‖ ≤ radius` (unconstrained when
    /// `radius` is `None`), by the Moré–Sorensen iteration on the secular equation
    /// `1/‖h(σ)‖ = 1/Δ`. Returns `None` only for an unconstrained problem whose `T`
    /// is not positive definite (no minimizer exists).
    ///
    /// # References
    /// - J. J. Moré and D. C. Sorensen, "Computing a trust region step", 1983.
    /// - N. I. M. Gould, S. Lucidi, M. Roma and Ph. L. Toint, "Solving the
    ///   trust-region subproblem using the Lanczos method", SIAM J. Optim., 1999.
    pub fn trust_region(&self, beta0: f64, radius: Option<f64>) -> Option<TrustRegionSolution> {
        let n = self.len();
        let mut rhs = vec![0.0; n];
        rhs[0] = -beta0;
        let lambda_min = self.eigenvalue(0);
        let finish = |h: Vec<f64>, sigma: f64, on_boundary: bool| {
            let model_value = self.model_value(beta0, &h);
            Some(TrustRegionSolution {
                h,
                sigma,
                on_boundary,
                model_value,
            })
        };

        if lambda_min > 0.0 {
            if let Some(h) = self.solve_shifted(0.0, &rhs) {
                if radius.is_none_or(|r| norm(&h) <= r) {
                    return finish(h, 0.0, false);
                }
            }
        }
        let radius = radius?;

        // ‖h(σ)‖ decreases from ∞ (or from the hard-case value) at σ = −λ_min to 0.
        let floor = (-lambda_min).max(0.0);
        let tiny = f64::EPSILON * (lambda_min.abs() + beta0.abs() / radius + 1.0);
        let mut lo = floor;
        let mut hi = floor + beta0.abs() / radius + tiny;
        let mut sigma = floor + tiny;
        let mut best: Option<(Vec<f64>, f64)> = None;
        for _ in 0..200 {
            let Some(h) = self.solve_shifted(sigma, &rhs) else {
                lo = sigma;
                sigma = 0.5 * (lo + hi);
                continue;
            };
            let hn = norm(&h);
            if (hn - radius).abs() <= 1e-12 * radius {
                return finish(h, sigma, true);
            }
            if hn > radius {
                lo = sigma;
            } else {
                hi = sigma;
                best = Some((h.clone(), sigma));
            }
            // Newton on φ(σ) = 1/‖h‖ − 1/Δ: σ ← σ + (‖h‖/‖w‖)² (‖h‖ − Δ)/Δ, ‖w‖² = hᵀ(T+σI)⁻¹h.
            let next = self
                .solve_shifted(sigma, &h)
                .map(|z| sigma + (hn * hn / dot(&h, &z)) * (hn - radius) / radius)
                .filter(|s| *s > lo && *s < hi)
                .unwrap_or(0.5 * (lo + hi));
            if hi - lo <= 1e-15 * hi.abs().max(1.0) {
                break;
            }
            sigma = next;
        }

        // The (near-)hard case: even just above −λ_min the step is inside the region.
        // Move along the eigenvector of λ_min to the boundary.
        let (mut h, sigma) = best.unwrap_or_else(|| (vec![0.0; n], floor));
        let z = self.min_eigenvector(lambda_min);
        let hz = dot(&h, &z);
        let gap = radius * radius - dot(&h, &h);
        if gap > 0.0 {
            let tau = -hz + (hz * hz + gap).sqrt();
            let tau = if self.model_value(beta0, &axpy(&h, tau, &z))
                <= self.model_value(beta0, &axpy(&h, -hz - (hz * hz + gap).sqrt(), &z))
            {
                tau
            } else {
                -hz - (hz * hz + gap).sqrt()
            };
            h = axpy(&h, tau, &z);
        }
        finish(h, sigma, true)
    }

    /// A unit eigenvector for the eigenvalue `lambda` by inverse iteration.
    fn min_eigenvector(&self, lambda: f64) -> Vec<f64> {
        let n = self.len();
        let shift = -lambda + 1e-10 * (lambda.abs() + 1.0);
        let mut v = vec![1.0 / (n as f64).sqrt(); n];
        for _ in 0..20 {
            match self.solve_shifted(shift, &v) {
                Some(w) => {
                    let nw = norm(&w);
                    v = w.into_iter().map(|x| x / nw).collect();
                }
                None => break,
            }
        }
        v
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn axpy(x: &[f64], a: f64, y: &[f64]) -> Vec<f64> {
    x.iter().zip(y).map(|(xi, yi)| xi + a * yi).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laplacian(n: usize) -> Tridiagonal {
        Tridiagonal {
            diag: vec![2.0; n],
            off: vec![-1.0; n - 1],
        }
    }

    #[test]
    fn bisection_matches_known_spectrum() {
        // Eigenvalues of the 1-D Laplacian: 2 − 2 cos(kπ/(n+1)).
        let n = 12;
        let t = laplacian(n);
        for k in 0..n {
            let exact = 2.0 - 2.0 * ((k + 1) as f64 * std::f64::consts::PI / (n + 1) as f64).cos();
            assert!((t.eigenvalue(k) - exact).abs() < 1e-13, "k = {k}");
        }
    }

    #[test]
    fn shifted_solve_is_exact_and_detects_indefiniteness() {
        let t = laplacian(5);
        let rhs = vec![1.0, -2.0, 0.5, 3.0, 1.0];
        let x = t.solve_shifted(0.3, &rhs).unwrap();
        let back: Vec<f64> = t.mul(&x).iter().zip(&x).map(|(a, b)| a + 0.3 * b).collect();
        for (a, b) in back.iter().zip(&rhs) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!(t.solve_shifted(-1.0, &rhs).is_none());
    }

    #[test]
    fn trust_region_on_indefinite_matrix_hits_boundary() {
        let t = Tridiagonal {
            diag: vec![1.0, -2.0, 0.5],
            off: vec![0.7, 0.3],
        };
        let sol = t.trust_region(1.0, Some(0.8)).unwrap();
        assert!(sol.on_boundary);
        assert!((norm(&sol.h) - 0.8).abs() < 1e-9);
        assert!(sol.sigma >= -t.eigenvalue(0) - 1e-12);
        // Optimality: (T + σI)h = −β₀e₁.
        let r: Vec<f64> = t
            .mul(&sol.h)
            .iter()
            .zip(&sol.h)
            .map(|(a, b)| a + sol.sigma * b)
            .collect();
        assert!((r[0] + 1.0).abs() < 1e-8 && r[1].abs() < 1e-8 && r[2].abs() < 1e-8);
        // No point on a fine sample of the sphere is better.
        for i in 0..2000 {
            let (th, ph) = (i as f64 * 0.7318, i as f64 * 0.1713);
            let p = [th.sin() * ph.cos(), th.sin() * ph.sin(), th.cos()].map(|x| 0.8 * x);
            assert!(t.model_value(1.0, &p) >= sol.model_value - 1e-9);
        }
        assert!(t.trust_region(1.0, None).is_none());
    }

    #[test]
    fn interior_solution_when_radius_is_large() {
        let t = laplacian(4);
        let sol = t.trust_region(1.0, Some(100.0)).unwrap();
        assert!(!sol.on_boundary);
        assert_eq!(sol.sigma, 0.0);
    }
}
