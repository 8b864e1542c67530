//! Data batches on the device.

use burn::prelude::*;

use crate::error::{Error, Result};

/// Inputs and targets of a batch of cases, on the device.
#[derive(Debug, Clone)]
pub struct DataBatch<B: Backend, const D: usize> {
    /// Inputs, with cases along the first axis.
    pub input: Tensor<B, D>,
    /// Targets, `[cases · k, outputs]` (one-hot rows for classification): `k ≥ 1`
    /// rows per case, case-major (rows `i·k .. (i+1)·k` belong to case `i`), matching
    /// the network's outputs. `k = 1` for feed-forward networks; a recurrent network
    /// with outputs at `k` time steps has `k`.
    pub target: Tensor<B, 2>,
}

impl<B: Backend, const D: usize> DataBatch<B, D> {
    /// A batch, checked: at least one case, and a whole number `k ≥ 1` of target rows
    /// per input case.
    ///
    /// # Errors
    /// [`Error::Batch`] naming both shapes.
    pub fn new(input: Tensor<B, D>, target: Tensor<B, 2>) -> Result<Self> {
        let (n_in, n_t) = (input.dims()[0], target.dims()[0]);
        if n_in == 0 || n_t == 0 || n_t % n_in != 0 {
            return Err(Error::Batch(format!(
                "inputs {:?} and targets {:?}: need at least one case and a whole number of target rows per \
                 case (first axes)",
                input.dims(),
                target.dims()
            )));
        }
        Ok(Self { input, target })
    }

    /// Target rows per case.
    pub fn rows_per_case(&self) -> usize {
        self.target.dims()[0] / self.input.dims()[0]
    }

    /// Number of cases.
    pub fn len(&self) -> usize {
        self.input.dims()[0]
    }

    /// Whether the batch is empty (never, for a batch built by [`new`](Self::new)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cases `range` of the batch (a view on the device).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        let mut ranges: [std::ops::Range<usize>; D] = std::array::from_fn(|i| 0..self.input.dims()[i]);
        ranges[0] = range.clone();
        let t = self.target.dims();
        let k = self.rows_per_case();
        Self {
            input: self.input.clone().slice(ranges),
            target: self.target.clone().slice([range.start * k..range.end * k, 0..t[1]]),
        }
    }

    /// The cases listed in `cases`, in that order (a gather on the device).
    ///
    /// # Errors
    /// [`Error::Batch`] for an empty list or a case beyond the batch.
    pub fn select(&self, cases: &[usize]) -> Result<Self> {
        let n = self.len();
        if cases.is_empty() || cases.iter().any(|&i| i >= n) {
            return Err(Error::Batch(format!(
                "cannot select cases {cases:?} from a batch of {n}: need at least one case, each below {n}"
            )));
        }
        let k = self.rows_per_case();
        let device = self.input.device();
        let index =
            |rows: Vec<i64>| Tensor::<B, 1, Int>::from_data(TensorData::new(rows.clone(), [rows.len()]), &device);
        let input_rows = index(cases.iter().map(|&i| i as i64).collect());
        let target_rows = index(
            cases
                .iter()
                .flat_map(|&i| (i * k..(i + 1) * k).map(|r| r as i64))
                .collect(),
        );
        Ok(Self {
            input: self.input.clone().select(0, input_rows),
            target: self.target.clone().select(0, target_rows),
        })
    }
}
