//! The papers' held-out measures as [`HeldOutMeasure`]s, for any network of the
//! right shape: the autoencoders' squared reconstruction error (Martens 2010, §5),
//! a classifier's error rate, and the pathological RNN tasks' zero-one loss over
//! whole sequences (Martens & Sutskever 2011, §5).

use burn::prelude::*;

use hf_burn::train::HeldOutMeasure;
use hf_burn::{DataBatch, Evaluator, MatchingLoss, Network, ParamVector, Shard};

use crate::autoencoder::reconstruction_error;
use crate::classifier::classification_error;
use crate::pathological::TaskSpec;

/// The squared reconstruction error `Σ_j (y_j − t_j)²` per case, averaged over the
/// cases of `data`, with `y` the network's predictions (after the loss's output
/// nonlinearity).
#[derive(Debug, Clone)]
pub struct ReconstructionError<B: Backend> {
    data: DataBatch<B, 2>,
}

impl<B: Backend> ReconstructionError<B> {
    /// The name of the measure.
    pub const NAME: &'static str = "reconstruction error";

    /// The measure on `data` (targets: the images to reconstruct).
    pub fn new(data: DataBatch<B, 2>) -> Self {
        Self { data }
    }
}

impl<B: Backend, N: Network<2>, L: MatchingLoss> HeldOutMeasure<B, N, L, 2> for ReconstructionError<B> {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn measure(&mut self, evaluator: &Evaluator<B, N, L, 2>, theta: &ParamVector<B>) -> hf_burn::Result<f64> {
        let z = evaluator.outputs(theta, self.data.input.clone())?.z;
        Ok(reconstruction_error(
            evaluator.loss().predict(z),
            self.data.target.clone(),
        ))
    }

    /// The mean over this worker's shard of the cases.
    fn measure_shard(
        &mut self,
        evaluator: &Evaluator<B, N, L, 2>,
        theta: &ParamVector<B>,
        rank: usize,
        workers: usize,
    ) -> hf_burn::Result<(f64, f64)> {
        let shard = Shard::of(rank, workers, self.data.len())?;
        let part = shard.take(&self.data);
        let z = evaluator.outputs(theta, part.input)?.z;
        Ok((
            reconstruction_error(evaluator.loss().predict(z), part.target),
            shard.share(),
        ))
    }
}

/// The fraction of cases whose largest output is not the target's largest entry
/// (targets one-hot, as [`one_hot`] makes them).
#[derive(Debug, Clone)]
pub struct ClassificationError<B: Backend, const D: usize> {
    data: DataBatch<B, D>,
}

impl<B: Backend, const D: usize> ClassificationError<B, D> {
    /// The name of the measure.
    pub const NAME: &'static str = "classification error";

    /// The measure on `data`.
    pub fn new(data: DataBatch<B, D>) -> Self {
        Self { data }
    }
}

impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> HeldOutMeasure<B, N, L, D>
    for ClassificationError<B, D>
{
    fn name(&self) -> &str {
        Self::NAME
    }

    fn measure(&mut self, evaluator: &Evaluator<B, N, L, D>, theta: &ParamVector<B>) -> hf_burn::Result<f64> {
        let z = evaluator.outputs(theta, self.data.input.clone())?.z;
        Ok(classification_error(z, self.data.target.clone()))
    }

    /// The error rate on this worker's shard of the cases.
    fn measure_shard(
        &mut self,
        evaluator: &Evaluator<B, N, L, D>,
        theta: &ParamVector<B>,
        rank: usize,
        workers: usize,
    ) -> hf_burn::Result<(f64, f64)> {
        let shard = Shard::of(rank, workers, self.data.len())?;
        let part = shard.take(&self.data);
        let z = evaluator.outputs(theta, part.input)?.z;
        Ok((classification_error(z, part.target), shard.share()))
    }
}

/// Labels `0..classes` as one-hot rows, `labels.len() × classes` values in row order.
///
/// # Example
/// ```
/// assert_eq!(hf_models::one_hot(&[2, 0], 3), [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
/// ```
pub fn one_hot(labels: &[u8], classes: usize) -> Vec<f64> {
    labels
        .iter()
        .flat_map(|&l| (0..classes).map(move |k| if k == usize::from(l) { 1.0 } else { 0.0 }))
        .collect()
}

/// A pathological task's zero-one loss: the fraction of test sequences with at least
/// one wrong scored output ([`TaskSpec::zero_one_loss`]), over batches that may
/// differ in length.
#[derive(Debug, Clone)]
pub struct SequenceZeroOneLoss<B: Backend> {
    task: TaskSpec,
    batches: Vec<(DataBatch<B, 3>, Vec<f32>)>,
}

impl<B: Backend> SequenceZeroOneLoss<B> {
    /// The name of the measure.
    pub const NAME: &'static str = "zero-one loss";

    /// The measure of `task` on `batches` (e.g. [`TaskSource::test_set`](crate::TaskSource::test_set)).
    pub fn new(task: TaskSpec, batches: Vec<DataBatch<B, 3>>) -> Self {
        let batches = batches
            .into_iter()
            .map(|b| {
                // The targets are read once, on the host, where the loss is counted.
                let host = b.target.to_data().iter::<f32>().collect();
                (b, host)
            })
            .collect();
        Self { task, batches }
    }
}

impl<B: Backend, N: Network<3>, L: MatchingLoss> HeldOutMeasure<B, N, L, 3> for SequenceZeroOneLoss<B> {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn measure(&mut self, evaluator: &Evaluator<B, N, L, 3>, theta: &ParamVector<B>) -> hf_burn::Result<f64> {
        let (mut wrong, mut cases) = (0.0, 0);
        for (batch, target_host) in &self.batches {
            let z = evaluator.outputs(theta, batch.input.clone())?.z;
            let predictions: Vec<f32> = evaluator.loss().predict(z).into_data().iter::<f32>().collect();
            wrong += self.task.zero_one_loss(&predictions, target_host, batch.len()) * batch.len() as f64;
            cases += batch.len();
        }
        Ok(if cases == 0 { f64::NAN } else { wrong / cases as f64 })
    }
}
