//! Curvature operators: `v ↦ (B + λI) v` without ever forming `B`.

use crate::error::{Error, Result};
use crate::vector::Vector;

/// A damped curvature matrix `A = B + λI` seen only through products `A v`.
///
/// `B` is the curvature of the objective at the current point (Gauss-Newton,
/// Hessian or Fisher) and `λ ≥ 0` the Tikhonov damping. The trait is object safe,
/// so solvers take `&dyn CurvatureOperator<V>` and users can supply their own.
///
/// # Example
/// ```
/// use hf_core::{CurvatureOperator, DenseOperator};
/// // B = diag(1, 2), damped by λ = 0.5.
/// let op = DenseOperator::new(vec![1.0, 0.0, 0.0, 2.0], 2, 0.5).unwrap();
/// let y = op.apply(&vec![1.0, 1.0]).unwrap();
/// assert_eq!(y, vec![1.5, 2.5]);
/// ```
pub trait CurvatureOperator<V> {
    /// Number of parameters (the operator is `dim × dim`).
    fn dim(&self) -> usize;

    /// The damping `λ` included in [`apply`](Self::apply).
    fn damping(&self) -> f64;

    /// Computes `(B + λI) v`.
    fn apply(&self, v: &V) -> Result<V>;

    /// `vᵀ D v` for the damping part `D` of [`apply`](Self::apply): what the undamped
    /// model leaves out when the reduction ratio `ρ` is measured against it.
    ///
    /// The default is Tikhonov damping alone, `λ‖v‖²`. An operator that adds more
    /// damping, such as structural damping's `μλ J_Sᵀ D_S J_S` (Martens & Sutskever
    /// 2011), overrides this so that `ρ` compares the objective with the model of the
    /// objective, not of the damped objective.
    fn damping_energy(&self, v: &V) -> Result<f64>
    where
        V: Vector,
    {
        Ok(self.damping() * v.dot(v))
    }
}

/// A dense symmetric matrix as a curvature operator, for tests and small problems.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseOperator {
    matrix: Vec<f64>,
    n: usize,
    damping: f64,
}

impl DenseOperator {
    /// Wraps a row-major `n × n` matrix `B` with damping `λ`.
    ///
    /// # Errors
    /// [`Error::DimensionMismatch`] if `matrix.len() != n²`.
    pub fn new(matrix: Vec<f64>, n: usize, damping: f64) -> Result<Self> {
        if matrix.len() != n * n {
            return Err(Error::DimensionMismatch {
                context: "DenseOperator::new (matrix entries vs n²)",
                expected: n * n,
                found: matrix.len(),
            });
        }
        Ok(Self { matrix, n, damping })
    }

    /// The undamped matrix `B`, row-major.
    pub fn matrix(&self) -> &[f64] {
        &self.matrix
    }

    /// Returns the same matrix with another damping.
    pub fn with_damping(mut self, damping: f64) -> Self {
        self.damping = damping;
        self
    }
}

impl CurvatureOperator<Vec<f64>> for DenseOperator {
    fn dim(&self) -> usize {
        self.n
    }

    fn damping(&self) -> f64 {
        self.damping
    }

    fn apply(&self, v: &Vec<f64>) -> Result<Vec<f64>> {
        check_dim("DenseOperator::apply", self.n, v.len())?;
        Ok(self
            .matrix
            .chunks_exact(self.n)
            .zip(v)
            .map(|(row, &vi)| row.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() + self.damping * vi)
            .collect())
    }
}

/// Adds an L2 weight-cost term `w·I` to another operator's curvature.
///
/// The HF loop wraps the problem's operator in this when
/// [`HfConfig::l2_weight`](crate::HfConfig::l2_weight) is positive, so the quadratic
/// model matches the regularized objective `f(θ) + ½ w ‖θ‖²`.
pub struct L2Regularized<'a, V> {
    inner: &'a dyn CurvatureOperator<V>,
    weight: f64,
}

impl<'a, V> L2Regularized<'a, V> {
    /// Wraps `inner`, adding `weight · v` to every product.
    pub fn new(inner: &'a dyn CurvatureOperator<V>, weight: f64) -> Self {
        Self { inner, weight }
    }
}

impl<V: Vector> CurvatureOperator<V> for L2Regularized<'_, V> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn damping(&self) -> f64 {
        self.inner.damping()
    }

    fn apply(&self, v: &V) -> Result<V> {
        let mut out = self.inner.apply(v)?;
        out.axpy(self.weight, v);
        Ok(out)
    }

    /// The inner operator's: the L2 term is part of the objective, not damping.
    fn damping_energy(&self, v: &V) -> Result<f64> {
        self.inner.damping_energy(v)
    }
}

/// Returns [`Error::DimensionMismatch`] unless `expected == found`; for operator
/// implementations that check their argument.
pub fn check_dim(context: &'static str, expected: usize, found: usize) -> Result<()> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::DimensionMismatch {
            context,
            expected,
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_operator_rejects_wrong_shapes() {
        assert!(matches!(
            DenseOperator::new(vec![1.0; 5], 2, 0.0),
            Err(Error::DimensionMismatch {
                expected: 4,
                found: 5,
                ..
            })
        ));
        let op = DenseOperator::new(vec![1.0; 4], 2, 0.0).unwrap();
        assert!(matches!(
            op.apply(&vec![1.0; 3]),
            Err(Error::DimensionMismatch {
                expected: 2,
                found: 3,
                ..
            })
        ));
    }

    #[test]
    fn l2_term_adds_weight_times_v() {
        let op = DenseOperator::new(vec![2.0, 1.0, 1.0, 3.0], 2, 0.25).unwrap();
        let reg = L2Regularized::new(&op, 0.5);
        let y = reg.apply(&vec![1.0, -1.0]).unwrap();
        assert_eq!(y, vec![1.0 + 0.25 + 0.5, -2.0 - 0.25 - 0.5]);
    }
}
