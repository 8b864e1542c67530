//! [`HfState`]: everything the outer loop carries between iterations.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the loop carries from one iteration to the next: one value that a
/// checkpoint saves and a resumed run starts from. Kept outside the optimizer so it
/// can be inspected, checkpointed and restored ([`HessianFree::resume`](crate::HessianFree::resume)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HfState<V> {
    /// The parameters `θ`.
    pub theta: V,
    /// The damping `λ` for the next iteration.
    pub damping: f64,
    /// The trust-region radius for the next iteration (trust-region mode).
    pub radius: f64,
    /// The last CG solution, the next solve's warm start (before decay).
    pub warm_start: Option<V>,
    /// Outer iterations completed.
    pub iteration: usize,
    /// Failed steps in a row.
    pub consecutive_failures: usize,
    /// Curvature-vector products spent so far.
    pub curvature_products: usize,
    /// Wall time spent in [`HessianFree::step`](crate::HessianFree::step) so far.
    pub elapsed: Duration,
    /// The problem's batch-sampler state after the last step
    /// ([`Problem::sampler_state`](crate::Problem::sampler_state)), so a resumed run draws the same batches.
    #[serde(default)]
    pub sampler: Option<u64>,
    /// The damping strategy's and preconditioner's own state after the last step.
    #[serde(default)]
    pub plugins: PluginState,
}

/// The state of the plug-ins (see [`StepRule::state`](crate::StepRule::state) and
/// [`Preconditioner::state`](crate::Preconditioner::state)).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginState {
    /// The step rule's state: for [`DampedStep`](crate::DampedStep), its search for
    /// `λ₀` and then its damping strategy's state
    /// ([`DampingStrategy::state`](crate::DampingStrategy::state)). (Named `damping`
    /// in checkpoints written before step rules, which are still read.)
    #[serde(alias = "damping")]
    pub step_rule: Vec<f64>,
    /// The preconditioner's state.
    pub preconditioner: Vec<f64>,
}

impl<V> HfState<V> {
    /// A state at `theta` before any iteration: no damping, radius or warm start,
    /// nothing spent. [`HessianFree::init`](crate::HessianFree::init) sets its own
    /// damping and radius; a first-order method starts from this as it is.
    pub fn starting_at(theta: V) -> Self {
        Self {
            theta,
            damping: 0.0,
            radius: 0.0,
            warm_start: None,
            iteration: 0,
            consecutive_failures: 0,
            curvature_products: 0,
            elapsed: Duration::ZERO,
            sampler: None,
            plugins: PluginState::default(),
        }
    }

    /// The same state with every vector (`θ` and the warm start) mapped by `f`, in
    /// that order: to move a state between devices or precisions, or to write its
    /// scalars with the vectors replaced by their lengths. Every other field is
    /// carried over, so a field added to the state travels with it.
    ///
    /// # Example
    /// ```
    /// use hf_core::{HessianFree, HfConfig};
    ///
    /// let state = HessianFree::<Vec<f64>>::new(HfConfig::default()).unwrap().init(vec![1.0, 2.0]);
    /// let lengths = state.map_vectors(|v| v.len());
    /// assert_eq!((lengths.theta, lengths.warm_start), (2, None));
    /// ```
    pub fn map_vectors<W>(&self, mut f: impl FnMut(&V) -> W) -> HfState<W> {
        HfState {
            theta: f(&self.theta),
            damping: self.damping,
            radius: self.radius,
            warm_start: self.warm_start.as_ref().map(&mut f),
            iteration: self.iteration,
            consecutive_failures: self.consecutive_failures,
            curvature_products: self.curvature_products,
            elapsed: self.elapsed,
            sampler: self.sampler,
            plugins: self.plugins.clone(),
        }
    }
}
