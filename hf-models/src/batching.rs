//! Batches in the form the HF loop needs: a gradient batch, a curvature batch drawn
//! from it, and a held-out batch, taken from a data set on the device without
//! copying the whole set for every batch.

use burn::prelude::*;
use burn::tensor::DType;

use hf_burn::{BatchSource, DataBatch};

use crate::error::{DataError, Result};
use crate::pathological::TaskSpec;
use crate::rng::SplitMix64;

/// A data set resident on the device.
#[derive(Debug, Clone)]
pub struct DeviceDataset<B: Backend, const D: usize> {
    all: DataBatch<B, D>,
}

impl<B: Backend, const D: usize> DeviceDataset<B, D> {
    /// Wraps inputs `[cases, …]` and targets `[cases · k, outputs]`.
    ///
    /// # Errors
    /// Mismatched case counts.
    pub fn new(inputs: Tensor<B, D>, targets: Tensor<B, 2>) -> Result<Self> {
        Ok(Self {
            all: DataBatch::new(inputs, targets)?,
        })
    }

    /// Number of cases.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether the set is empty (never, for a set built by [`new`](Self::new)).
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The whole set as one batch (a view).
    pub fn all(&self) -> &DataBatch<B, D> {
        &self.all
    }

    /// Cases `range` (a view, no copy).
    pub fn range(&self, range: std::ops::Range<usize>) -> DataBatch<B, D> {
        self.all.slice(range)
    }

    /// The cases at `indices`, gathered on the device (only the batch is copied).
    ///
    /// # Errors
    /// An empty list or an index beyond the set ([`hf_burn::Error::Batch`]).
    pub fn select(&self, indices: &[usize]) -> hf_burn::Result<DataBatch<B, D>> {
        self.all.select(indices)
    }
}

/// Sizes of the HF batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSizes {
    /// Cases in the gradient batch; `0` or at least the data set's size means all of it.
    pub gradient: usize,
    /// Cases in the curvature batch, a slice of the gradient batch cycled from one
    /// iteration to the next (Martens used 1/4 to 1/20 of the gradient batch).
    pub curvature: usize,
}

impl BatchSizes {
    fn check(&self) -> Result<()> {
        if self.curvature == 0 {
            return Err(DataError::invalid("curvature batch", 0, "≥ 1"));
        }
        if self.gradient != 0 && self.curvature > self.gradient {
            return Err(DataError::invalid(
                "curvature batch",
                format!("{} (gradient batch {})", self.curvature, self.gradient),
                "≤ the gradient batch",
            ));
        }
        Ok(())
    }
}

/// The `k`-th curvature slice of a gradient batch of `n` cases, cycling.
fn curvature_slice<B: Backend, const D: usize>(gradient: &DataBatch<B, D>, size: usize, k: usize) -> DataBatch<B, D> {
    let n = gradient.len();
    let size = size.min(n);
    let slots = n / size;
    let start = (k % slots) * size;
    gradient.slice(start..start + size)
}

/// Minibatches from a data set on the device: a gradient batch of random cases
/// (or the whole set), and curvature batches cycled through it.
#[derive(Debug, Clone)]
pub struct MinibatchSource<B: Backend, const D: usize> {
    data: DeviceDataset<B, D>,
    sizes: BatchSizes,
    rng: SplitMix64,
    current: Option<DataBatch<B, D>>,
}

impl<B: Backend, const D: usize> MinibatchSource<B, D> {
    /// A source over `data`.
    ///
    /// # Errors
    /// [`DataError::InvalidParameter`] for a zero or oversized curvature batch.
    pub fn new(data: DeviceDataset<B, D>, sizes: BatchSizes, seed: u64) -> Result<Self> {
        sizes.check()?;
        Ok(Self {
            data,
            sizes,
            rng: SplitMix64::new(seed),
            current: None,
        })
    }

    /// The data set.
    pub fn data(&self) -> &DeviceDataset<B, D> {
        &self.data
    }
}

impl<B: Backend, const D: usize> BatchSource<B, D> for MinibatchSource<B, D> {
    fn gradient_batch(&mut self, _iteration: usize) -> hf_burn::Result<DataBatch<B, D>> {
        let n = self.data.len();
        let batch = if self.sizes.gradient == 0 || self.sizes.gradient >= n {
            self.data.all().clone()
        } else {
            let idx = self.rng.choose(n, self.sizes.gradient);
            self.data.select(&idx)?
        };
        self.current = Some(batch.clone());
        Ok(batch)
    }

    fn curvature_batch(&mut self, iteration: usize) -> hf_burn::Result<DataBatch<B, D>> {
        let gradient = match &self.current {
            Some(g) => g.clone(),
            None => self.gradient_batch(iteration)?,
        };
        Ok(curvature_slice(&gradient, self.sizes.curvature, iteration))
    }

    fn rng_state(&self) -> Option<u64> {
        Some(self.rng.state())
    }

    fn set_rng_state(&mut self, state: u64) {
        self.rng = SplitMix64::new(state);
    }
}

/// Fresh sequences of a pathological task for every iteration (Martens & Sutskever
/// generated new batches as they trained).
#[derive(Debug, Clone)]
pub struct TaskSource<B: Backend> {
    task: TaskSpec,
    sizes: BatchSizes,
    rng: SplitMix64,
    device: B::Device,
    dtype: DType,
    current: Option<DataBatch<B, 3>>,
}

impl<B: Backend> TaskSource<B> {
    /// A source of `sizes.gradient` fresh sequences per iteration.
    ///
    /// # Errors
    /// [`DataError::InvalidParameter`] for zero batch sizes or a curvature batch larger
    /// than the gradient batch.
    pub fn new(task: TaskSpec, sizes: BatchSizes, seed: u64, device: &B::Device, dtype: DType) -> Result<Self> {
        if sizes.gradient == 0 {
            return Err(DataError::invalid("gradient batch", 0, "≥ 1 (sequences are generated)"));
        }
        sizes.check()?;
        Ok(Self {
            task,
            sizes,
            rng: SplitMix64::new(seed),
            device: device.clone(),
            dtype,
            current: None,
        })
    }

    /// A fresh batch of `cases` sequences of one length drawn from the task's range.
    pub fn fresh(&mut self, cases: usize) -> Result<DataBatch<B, 3>> {
        let b = self.task.generate(cases, &mut self.rng)?;
        self.to_device(b)
    }

    /// A test set of about `cases` fresh sequences that spans the task's lengths: one
    /// batch per length of [`TaskSpec::test_lengths`], the cases split evenly (at
    /// least one each).
    pub fn test_set(&mut self, cases: usize) -> Result<Vec<DataBatch<B, 3>>> {
        let lengths = self.task.test_lengths();
        let per_length = cases.div_ceil(lengths.len()).max(1);
        lengths
            .into_iter()
            .map(|steps| {
                let b = self.task.generate_with_length(per_length, steps, &mut self.rng)?;
                self.to_device(b)
            })
            .collect()
    }

    fn to_device(&self, b: crate::pathological::SequenceBatch) -> Result<DataBatch<B, 3>> {
        let din = self.task.input_dim();
        let dout = self.task.output_dim();
        let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
        let input = hf_burn::tensor_from_f64(f64s(&b.inputs), [b.cases, b.steps, din], &self.device, self.dtype);
        let target = hf_burn::tensor_from_f64(
            f64s(&b.targets),
            [b.cases * b.rows_per_case, dout],
            &self.device,
            self.dtype,
        );
        Ok(DataBatch::new(input, target)?)
    }

    /// The task.
    pub fn task(&self) -> &TaskSpec {
        &self.task
    }
}

impl<B: Backend> BatchSource<B, 3> for TaskSource<B> {
    fn gradient_batch(&mut self, _iteration: usize) -> hf_burn::Result<DataBatch<B, 3>> {
        let batch = self
            .fresh(self.sizes.gradient)
            .map_err(|e| hf_burn::Error::Batch(e.to_string()))?;
        self.current = Some(batch.clone());
        Ok(batch)
    }

    fn curvature_batch(&mut self, iteration: usize) -> hf_burn::Result<DataBatch<B, 3>> {
        let gradient = match &self.current {
            Some(g) => g.clone(),
            None => self.gradient_batch(iteration)?,
        };
        Ok(curvature_slice(&gradient, self.sizes.curvature, iteration))
    }

    fn rng_state(&self) -> Option<u64> {
        Some(self.rng.state())
    }

    fn set_rng_state(&mut self, state: u64) {
        self.rng = SplitMix64::new(state);
    }
}
