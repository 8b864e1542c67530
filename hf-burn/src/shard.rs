//! A worker's shard of a batch in a data-parallel run: which cases it holds, and
//! how its random draws line up with a single worker's.

use burn::prelude::*;
use hf_core::SplitMix64;

use crate::batch::DataBatch;
use crate::error::{Error, Result};

/// Cases `offset .. offset + len` of a batch of `total` cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// The shard's first case in the whole batch.
    pub offset: usize,
    /// Cases in the shard.
    pub len: usize,
    /// Cases in the whole batch.
    pub total: usize,
}

impl Shard {
    /// The whole batch of `total` cases (one worker).
    pub fn whole(total: usize) -> Self {
        Self {
            offset: 0,
            len: total,
            total,
        }
    }

    /// Worker `rank`'s shard of `total` cases split over `workers` as evenly as
    /// possible, by rank: cases `rank·total/workers .. (rank+1)·total/workers`.
    ///
    /// # Errors
    /// [`Error::Batch`] when a worker would get no case.
    pub fn of(rank: usize, workers: usize, total: usize) -> Result<Self> {
        let workers = workers.max(1);
        if total < workers {
            return Err(Error::Batch(format!(
                "a batch of {total} cases cannot be shared by {workers} workers: use batches of at least \
                 {workers} cases, or fewer workers"
            )));
        }
        let offset = rank * total / workers;
        Ok(Self {
            offset,
            len: (rank + 1) * total / workers - offset,
            total,
        })
    }

    /// The shard's share of the batch, `len / total`: the weight of its means in the
    /// batch's mean.
    pub fn share(&self) -> f64 {
        self.len as f64 / self.total as f64
    }

    /// This shard's cases of a whole batch.
    pub fn take<B: Backend, const D: usize>(&self, batch: &DataBatch<B, D>) -> DataBatch<B, D> {
        if self.len == batch.len() {
            batch.clone()
        } else {
            batch.slice(self.offset..self.offset + self.len)
        }
    }

    /// The cases of the sorted list `cases` (indices into the whole batch) that lie in
    /// this shard, as indices into the shard.
    pub fn local(&self, cases: &[usize]) -> Vec<usize> {
        cases
            .iter()
            .filter(|&&i| (self.offset..self.offset + self.len).contains(&i))
            .map(|&i| i - self.offset)
            .collect()
    }

    /// This shard's part of `per_case` random signs per case of the whole batch, so
    /// that every worker's draws together are one worker's draws on the whole batch.
    pub(crate) fn signs(&self, rng: &mut SplitMix64, per_case: usize) -> Vec<f64> {
        let all = signs(rng, self.total * per_case);
        all[self.offset * per_case..(self.offset + self.len) * per_case].to_vec()
    }
}

/// `n` random signs ±1 (reproducible, independent of the backend's generator), 64 per draw.
pub(crate) fn signs(rng: &mut SplitMix64, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let bits = rng.next_u64();
        out.extend((0..64.min(n - out.len())).map(|k| if bits >> k & 1 == 1 { 1.0 } else { -1.0 }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_in_rank_order() {
        let shards: Vec<_> = (0..3).map(|k| Shard::of(k, 3, 10).unwrap()).collect();
        assert_eq!(
            shards.iter().map(|s| (s.offset, s.len)).collect::<Vec<_>>(),
            [(0, 3), (3, 3), (6, 4)]
        );
        assert!((shards.iter().map(Shard::share).sum::<f64>() - 1.0).abs() < 1e-15);
        assert_eq!(shards[1].local(&[0, 2, 3, 5, 6, 9]), [0, 2]);
        assert!(matches!(Shard::of(0, 4, 3), Err(Error::Batch(_))));
        assert_eq!(Shard::of(0, 1, 7).unwrap(), Shard::whole(7));
    }

    #[test]
    fn shard_signs_are_the_whole_batch_draws() {
        let whole = Shard::whole(5).signs(&mut SplitMix64::new(9), 3);
        let parts: Vec<f64> = (0..2)
            .flat_map(|k| Shard::of(k, 2, 5).unwrap().signs(&mut SplitMix64::new(9), 3))
            .collect();
        assert_eq!(whole, parts);
    }
}
