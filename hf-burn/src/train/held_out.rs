//! [`HeldOutMeasure`]: what the trainer evaluates on held-out data every
//! [`TrainerConfig::eval_every`](super::TrainerConfig::eval_every) iterations.

use burn::prelude::Backend;

use crate::error::Result;
use crate::evaluator::Evaluator;
use crate::loss::MatchingLoss;
use crate::network::Network;
use crate::vector::ParamVector;

/// A named measure of the parameters `θ` on data the optimizer never sees: the
/// papers' reconstruction error, a classification error, a sequence zero-one loss
/// (hf-models has each, for any network of the right shape), or one of your own.
/// Its name heads the metrics column (`held_out_<name>`,
/// [`held_out_column`](super::held_out_column)).
///
/// Evaluate on non-autodiff tensors (the evaluator's [`outputs`](Evaluator::outputs)
/// does): a forward pass on autodiff tensors that never gets a backward pass keeps
/// its graph in memory.
///
/// # Example
/// ```
/// use burn::prelude::*;
/// use hf_burn::train::HeldOutMeasure;
/// use hf_burn::{DataBatch, Evaluator, MatchingLoss, Network, ParamVector, Result};
///
/// /// The mean absolute error of the predictions.
/// struct MeanAbsoluteError<B: Backend>(DataBatch<B, 2>);
///
/// impl<B: Backend, N: Network<2>, L: MatchingLoss> HeldOutMeasure<B, N, L, 2> for MeanAbsoluteError<B> {
///     fn name(&self) -> &str {
///         "mean absolute error"
///     }
///     fn measure(&mut self, ev: &Evaluator<B, N, L, 2>, theta: &ParamVector<B>) -> Result<f64> {
///         let z = ev.outputs(theta, self.0.input.clone())?.z;
///         let error = (ev.loss().predict(z) - self.0.target.clone()).abs().mean();
///         Ok(hf_burn::scalar(error))
///     }
/// }
/// ```
pub trait HeldOutMeasure<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> {
    /// The measure's name, for metrics columns and summaries.
    fn name(&self) -> &str;

    /// The measure at `θ`.
    ///
    /// # Errors
    /// The evaluator's errors (shapes, non-finite values).
    fn measure(&mut self, evaluator: &Evaluator<B, N, L, D>, theta: &ParamVector<B>) -> Result<f64>;

    /// Worker `rank`'s part of the measure in a data-parallel run of `workers`: the
    /// measure on its shard of the held-out data and the shard's weight, so that
    /// `Σ_k weight_k · value_k` over the workers is the measure on all of it.
    ///
    /// The default measures all of the data on every worker, with weight
    /// `1/workers`: right for any measure, at the cost of every worker doing all
    /// of the work. A measure that is a mean over cases splits its data by
    /// [`Shard::of`](crate::Shard::of) instead (hf-models' measures do).
    ///
    /// # Errors
    /// As [`measure`](Self::measure).
    fn measure_shard(
        &mut self,
        evaluator: &Evaluator<B, N, L, D>,
        theta: &ParamVector<B>,
        rank: usize,
        workers: usize,
    ) -> Result<(f64, f64)> {
        let _ = rank;
        Ok((self.measure(evaluator, theta)?, 1.0 / workers.max(1) as f64))
    }
}

/// A name and a closure are a measure too.
impl<B, N, L, const D: usize, F> HeldOutMeasure<B, N, L, D> for (String, F)
where
    B: Backend,
    N: Network<D>,
    L: MatchingLoss,
    F: FnMut(&Evaluator<B, N, L, D>, &ParamVector<B>) -> Result<f64>,
{
    fn name(&self) -> &str {
        &self.0
    }

    fn measure(&mut self, evaluator: &Evaluator<B, N, L, D>, theta: &ParamVector<B>) -> Result<f64> {
        (self.1)(evaluator, theta)
    }
}

/// A boxed measure is a measure (presets pick theirs at run time).
impl<B, N, L, const D: usize, M> HeldOutMeasure<B, N, L, D> for Box<M>
where
    B: Backend,
    N: Network<D>,
    L: MatchingLoss,
    M: HeldOutMeasure<B, N, L, D> + ?Sized,
{
    fn name(&self) -> &str {
        (**self).name()
    }

    fn measure(&mut self, evaluator: &Evaluator<B, N, L, D>, theta: &ParamVector<B>) -> Result<f64> {
        (**self).measure(evaluator, theta)
    }

    fn measure_shard(
        &mut self,
        evaluator: &Evaluator<B, N, L, D>,
        theta: &ParamVector<B>,
        rank: usize,
        workers: usize,
    ) -> Result<(f64, f64)> {
        (**self).measure_shard(evaluator, theta, rank, workers)
    }
}
