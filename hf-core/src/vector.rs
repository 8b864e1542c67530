//! Parameter-shaped vectors: the one abstraction over storage that every solver needs.

/// A vector in the parameter space of a model.
///
/// Solvers only ever combine vectors through these operations, so an implementation
/// can keep its data wherever it lives (host memory, a GPU buffer) and only return
/// scalars: reductions come back as `f64` whatever the storage precision.
///
/// All in-place operations take `&mut self`; implementations on immutable tensor
/// types rebuild the value internally.
pub trait Vector: Clone {
    /// Number of scalar entries.
    fn len(&self) -> usize;

    /// Whether the vector has no entries.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A vector of zeros with the same shape.
    fn zeros_like(&self) -> Self;

    /// Inner product `⟨self, other⟩`.
    fn dot(&self, other: &Self) -> f64;

    /// Euclidean norm.
    fn norm(&self) -> f64 {
        self.dot(self).max(0.0).sqrt()
    }

    /// `self ← alpha · self`.
    fn scale(&mut self, alpha: f64);

    /// `self ← self + alpha · x`.
    fn axpy(&mut self, alpha: f64, x: &Self);

    /// `self ← a · self + b · x`.
    fn lin_comb(&mut self, a: f64, b: f64, x: &Self) {
        self.scale(a);
        self.axpy(b, x);
    }

    /// `self ← self ⊙ x` (element-wise product).
    fn mul_elem(&mut self, x: &Self);

    /// `self ← self ⊘ x` (element-wise quotient).
    fn div_elem(&mut self, x: &Self);

    /// `self ← self + c` on every entry.
    fn add_scalar(&mut self, c: f64);

    /// `self ← self^p` on every entry (entries are expected non-negative).
    fn powf_elem(&mut self, p: f64);

    /// Whether every entry is finite (no NaN, no infinity).
    fn is_finite(&self) -> bool;
}

macro_rules! impl_vector_for_vec {
    ($t:ty) => {
        impl Vector for Vec<$t> {
            fn len(&self) -> usize {
                <[$t]>::len(self)
            }

            fn zeros_like(&self) -> Self {
                vec![0.0; <[$t]>::len(self)]
            }

            fn dot(&self, other: &Self) -> f64 {
                debug_assert_eq!(<[$t]>::len(self), <[$t]>::len(other));
                self.iter()
                    .zip(other)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum()
            }

            fn scale(&mut self, alpha: f64) {
                self.iter_mut().for_each(|a| *a = (f64::from(*a) * alpha) as $t);
            }

            fn axpy(&mut self, alpha: f64, x: &Self) {
                debug_assert_eq!(<[$t]>::len(self), <[$t]>::len(x));
                self.iter_mut()
                    .zip(x)
                    .for_each(|(a, &b)| *a = (f64::from(*a) + alpha * f64::from(b)) as $t);
            }

            fn lin_comb(&mut self, a: f64, b: f64, x: &Self) {
                debug_assert_eq!(<[$t]>::len(self), <[$t]>::len(x));
                self.iter_mut()
                    .zip(x)
                    .for_each(|(s, &v)| *s = (a * f64::from(*s) + b * f64::from(v)) as $t);
            }

            fn mul_elem(&mut self, x: &Self) {
                self.iter_mut().zip(x).for_each(|(a, &b)| *a *= b);
            }

            fn div_elem(&mut self, x: &Self) {
                self.iter_mut().zip(x).for_each(|(a, &b)| *a /= b);
            }

            fn add_scalar(&mut self, c: f64) {
                self.iter_mut().for_each(|a| *a = (f64::from(*a) + c) as $t);
            }

            fn powf_elem(&mut self, p: f64) {
                self.iter_mut().for_each(|a| *a = f64::from(*a).powf(p) as $t);
            }

            fn is_finite(&self) -> bool {
                self.iter().all(|a| a.is_finite())
            }
        }
    };
}

impl_vector_for_vec!(f64);
impl_vector_for_vec!(f32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_operations_match_hand_computation() {
        let mut a = vec![1.0_f64, -2.0, 3.0];
        let b = vec![0.5_f64, 4.0, -1.0];
        assert_eq!(a.dot(&b), 0.5 - 8.0 - 3.0);
        assert!((a.norm() - 14f64.sqrt()).abs() < 1e-15);
        a.axpy(2.0, &b);
        assert_eq!(a, vec![2.0, 6.0, 1.0]);
        a.lin_comb(0.5, -1.0, &b);
        assert_eq!(a, vec![0.5, -1.0, 1.5]);
        a.mul_elem(&b);
        assert_eq!(a, vec![0.25, -4.0, -1.5]);
        a.div_elem(&b);
        assert_eq!(a, vec![0.5, -1.0, 1.5]);
        let mut c = vec![3.0_f64, 8.0];
        c.add_scalar(1.0);
        c.powf_elem(0.5);
        assert_eq!(c, vec![2.0, 3.0]);
        assert!(c.is_finite());
        c[0] = f64::NAN;
        assert!(!c.is_finite());
    }

    #[test]
    fn f32_vectors_accumulate_in_f64() {
        let a = vec![1.0e-4_f32; 100_000];
        let exact = 100_000.0 * f64::from(1.0e-4_f32).powi(2);
        assert!((a.dot(&a) - exact).abs() < 1e-12 * exact.max(1.0));
    }
}
