//! Data parallelism: the batch quantities of the HF loop summed across workers.
//!
//! Every worker holds a shard of each batch and the same parameters `θ`. A worker's
//! problem computes each batch quantity (objective, gradient, curvature product,
//! preconditioner statistics) on its shard as a mean over its cases, weights it by
//! its share of the batch (`n_k / N`) and sums it over the workers through a
//! [`Reduction`]. The loop then reads only reduced values, so every worker takes
//! the same decisions (CG's stopping rule, backtracking, `ρ`, `λ`, the line search,
//! stopping) and `θ` stays identical on every worker without ever being broadcast.
//!
//! [`SingleWorker`] is the default and does nothing; [`ThreadReduction`] sums between
//! threads of one process for any [`Vector`]; hf-burn implements the trait on
//! burn-collective for devices and machines.

use std::sync::{Arc, Barrier, Mutex, PoisonError};

use crate::error::{Error, Result};
use crate::operator::CurvatureOperator;
use crate::vector::Vector;

/// Sums vectors and scalars across the workers of a data-parallel run.
///
/// Every worker must issue the same sequence of calls with vectors of the same
/// length: a collective is matched by its position in that sequence, not by a tag.
/// Object safe, so problems hold an `Arc<dyn Reduction<V>>`.
pub trait Reduction<V>: Send + Sync {
    /// This worker's rank, `0..workers()`.
    fn rank(&self) -> usize;

    /// The number of workers.
    fn workers(&self) -> usize;

    /// `Σ_k v_k` over the workers; every worker receives the same value.
    ///
    /// # Errors
    /// A worker is lost or unreachable, or the transport failed.
    fn sum_vector(&self, v: V) -> Result<V>;

    /// `values[i] ← Σ_k values_k[i]` over the workers, in `f64`.
    ///
    /// # Errors
    /// As [`sum_vector`](Self::sum_vector).
    fn sum_scalars(&self, values: &mut [f64]) -> Result<()>;

    /// Checks that every worker holds the same `fingerprint` (a hash of its initial
    /// parameters, say): for three bytes `h` of it, sums `h` and `h²`, which equal
    /// `W·h` and `W·h²` only when every worker's `h` is equal. The sums are exact even
    /// when a reduction adds in `f32` (up to 258 workers).
    ///
    /// # Errors
    /// [`Error::WorkersDisagree`] naming `what`, or the reduction's own errors.
    fn check_same(&self, fingerprint: u64, what: &'static str) -> Result<()> {
        let bytes: Vec<f64> = (0..3).map(|k| ((fingerprint >> (8 * k)) & 0xFF) as f64).collect();
        let mut v: Vec<f64> = bytes.iter().flat_map(|&h| [h, h * h]).collect();
        self.sum_scalars(&mut v)?;
        let w = self.workers() as f64;
        let same = bytes
            .iter()
            .zip(v.chunks_exact(2))
            .all(|(&h, s)| s[0] == w * h && s[1] == w * h * h);
        if same {
            Ok(())
        } else {
            Err(Error::WorkersDisagree { what })
        }
    }
}

/// One worker: every sum is the worker's own value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleWorker;

impl<V> Reduction<V> for SingleWorker {
    fn rank(&self) -> usize {
        0
    }

    fn workers(&self) -> usize {
        1
    }

    fn sum_vector(&self, v: V) -> Result<V> {
        Ok(v)
    }

    fn sum_scalars(&self, _values: &mut [f64]) -> Result<()> {
        Ok(())
    }
}

/// `Σ_k w_k A_k` over the workers, from this worker's damped operator `A_k = B_k + λI`
/// on its shard and its share `w_k` of the batch.
///
/// The shares sum to one, so the damping comes out once: `Σ_k w_k (B_k + λI) = B + λI`
/// with `B = Σ_k w_k B_k` the curvature of the whole batch. The same holds for
/// [`damping_energy`](CurvatureOperator::damping_energy), so `ρ` is measured against
/// the model of the whole batch.
pub struct ReducedOperator<'a, V> {
    inner: Box<dyn CurvatureOperator<V> + 'a>,
    share: f64,
    reduction: Arc<dyn Reduction<V>>,
}

impl<'a, V> ReducedOperator<'a, V> {
    /// This worker's operator `inner`, its share of the batch `share` and the reduction.
    pub fn new(inner: Box<dyn CurvatureOperator<V> + 'a>, share: f64, reduction: Arc<dyn Reduction<V>>) -> Self {
        Self {
            inner,
            share,
            reduction,
        }
    }
}

impl<V: Vector> CurvatureOperator<V> for ReducedOperator<'_, V> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn damping(&self) -> f64 {
        self.inner.damping()
    }

    fn apply(&self, v: &V) -> Result<V> {
        let mut y = self.inner.apply(v)?;
        y.scale(self.share);
        self.reduction.sum_vector(y)
    }

    fn damping_energy(&self, v: &V) -> Result<f64> {
        let mut e = [self.share * self.inner.damping_energy(v)?];
        self.reduction.sum_scalars(&mut e)?;
        Ok(e[0])
    }
}

/// What the workers of a [`ThreadReduction`] exchange.
struct Slots<V> {
    vectors: Vec<Option<V>>,
    scalars: Vec<Vec<f64>>,
}

/// Workers as threads of one process: each call waits for every worker, then each
/// adds the contributions **in rank order**, so the result is the same bits on every
/// worker and in every run.
///
/// Build one per worker with [`ThreadReduction::group`] and move each into its thread.
/// A worker that stops calling leaves the others waiting: end all workers' loops by
/// the same reduced decisions.
///
/// # Example
/// ```
/// use hf_core::{Reduction, ThreadReduction};
/// let handles: Vec<_> = ThreadReduction::<Vec<f64>>::group(2)
///     .into_iter()
///     .map(|r| std::thread::spawn(move || r.sum_vector(vec![r.rank() as f64 + 1.0, 10.0]).unwrap()))
///     .collect();
/// for h in handles {
///     assert_eq!(h.join().unwrap(), vec![3.0, 20.0]);
/// }
/// ```
pub struct ThreadReduction<V> {
    rank: usize,
    workers: usize,
    slots: Arc<Mutex<Slots<V>>>,
    barrier: Arc<Barrier>,
}

impl<V> ThreadReduction<V> {
    /// One reduction per worker of a group of `workers` (at least one).
    pub fn group(workers: usize) -> Vec<Self> {
        let workers = workers.max(1);
        let slots = Arc::new(Mutex::new(Slots {
            vectors: (0..workers).map(|_| None).collect(),
            scalars: vec![Vec::new(); workers],
        }));
        let barrier = Arc::new(Barrier::new(workers));
        (0..workers)
            .map(|rank| Self {
                rank,
                workers,
                slots: Arc::clone(&slots),
                barrier: Arc::clone(&barrier),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots<V>> {
        // A worker that panicked while holding the lock left complete slots behind
        // (each write is one assignment), so the data is still usable.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<V: Vector + Send> Reduction<V> for ThreadReduction<V> {
    fn rank(&self) -> usize {
        self.rank
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn sum_vector(&self, v: V) -> Result<V> {
        self.lock().vectors[self.rank] = Some(v);
        self.barrier.wait();
        let sum = {
            let slots = self.lock();
            let mut parts = slots
                .vectors
                .iter()
                .map(|s| s.as_ref().expect("every worker deposited"));
            let mut sum = parts.next().expect("at least one worker").clone();
            for p in parts {
                sum.axpy(1.0, p);
            }
            sum
        };
        // Nobody deposits the next call's vector before every worker has read this one.
        self.barrier.wait();
        Ok(sum)
    }

    fn sum_scalars(&self, values: &mut [f64]) -> Result<()> {
        self.lock().scalars[self.rank] = values.to_vec();
        self.barrier.wait();
        {
            let slots = self.lock();
            for (i, x) in values.iter_mut().enumerate() {
                *x = slots.scalars.iter().map(|s| s.get(i).copied().unwrap_or(0.0)).sum();
            }
        }
        self.barrier.wait();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::DenseOperator;

    fn on_threads<T: Send + 'static>(
        workers: usize,
        f: impl Fn(ThreadReduction<Vec<f64>>) -> T + Send + Sync + 'static,
    ) -> Vec<T> {
        let f = Arc::new(f);
        let handles: Vec<_> = ThreadReduction::group(workers)
            .into_iter()
            .map(|r| {
                let f = Arc::clone(&f);
                std::thread::spawn(move || f(r))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn single_worker_returns_its_own_values() {
        let r = SingleWorker;
        assert_eq!(
            Reduction::<Vec<f64>>::sum_vector(&r, vec![1.0, 2.0]).unwrap(),
            vec![1.0, 2.0]
        );
        let mut s = [3.0];
        Reduction::<Vec<f64>>::sum_scalars(&r, &mut s).unwrap();
        assert_eq!(s, [3.0]);
        Reduction::<Vec<f64>>::check_same(&r, 12345, "θ").unwrap();
    }

    #[test]
    fn thread_workers_sum_in_rank_order_and_agree() {
        let out = on_threads(3, |r| {
            let k = r.rank() as f64;
            let v = r.sum_vector(vec![k, 1.0]).unwrap();
            let mut s = [k * 10.0, 1.0];
            r.sum_scalars(&mut s).unwrap();
            (v, s)
        });
        for (v, s) in out {
            assert_eq!(v, vec![3.0, 3.0]);
            assert_eq!(s, [30.0, 3.0]);
        }
    }

    #[test]
    fn check_same_tells_equal_from_different_fingerprints() {
        assert!(on_threads(2, |r| r.check_same(0xABCDEF, "θ").is_ok())
            .into_iter()
            .all(|ok| ok));
        let out = on_threads(2, |r| r.check_same(r.rank() as u64 + 5, "θ"));
        for o in out {
            assert!(matches!(o, Err(Error::WorkersDisagree { what: "θ" })));
        }
    }

    /// Two workers whose curvatures are the halves of `B` give `(B + λI) v` and its
    /// damping energy exactly once.
    #[test]
    fn reduced_operator_weights_shards_and_counts_damping_once() {
        let out = on_threads(2, |r| {
            // Worker k's shard curvature: B_0 = diag(2, 4), B_1 = diag(4, 0); shares ½ each.
            let b = if r.rank() == 0 {
                vec![2.0, 0.0, 0.0, 4.0]
            } else {
                vec![4.0, 0.0, 0.0, 0.0]
            };
            let inner = Box::new(DenseOperator::new(b, 2, 0.5).unwrap());
            let op = ReducedOperator::new(inner, 0.5, Arc::new(r));
            (
                op.apply(&vec![1.0, 1.0]).unwrap(),
                op.damping_energy(&vec![1.0, 2.0]).unwrap(),
            )
        });
        for (y, e) in out {
            // B = diag(3, 2), λ = ½.
            assert_eq!(y, vec![3.5, 2.5]);
            assert_eq!(e, 0.5 * 5.0);
        }
    }
}
