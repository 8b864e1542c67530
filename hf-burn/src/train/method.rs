//! [`TrainingMethod`]: what the [`Trainer`](super::Trainer) steps — Hessian-free
//! optimization or one of burn's first-order optimizers ([`FirstOrder`](super::FirstOrder)) —
//! behind one interface, so stopping, held-out evaluation, metrics, checkpoints and
//! resume are shared.

use std::path::Path;

use burn::prelude::Backend;
use hf_core::{HessianFree, HfState, Stepper};

use crate::error::Result;
use crate::loss::MatchingLoss;
use crate::network::Network;
use crate::problem::BurnProblem;
use crate::vector::ParamVector;

/// An optimizer the trainer can run, checkpoint and resume: a [`Stepper`] over a
/// [`BurnProblem`] that can also start a state, save what a checkpoint needs beyond
/// [`HfState`], and restore it.
pub trait TrainingMethod<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize>:
    Stepper<BurnProblem<B, N, L, D>>
{
    /// The method's name (`hf`, `adam`, …), stored with each checkpoint: a checkpoint
    /// is only resumed by the method that wrote it.
    fn name(&self) -> &str;

    /// Checks the method's settings; [`Trainer::new`](super::Trainer::new) calls it.
    /// Default: nothing to check (`HessianFree` validates its own on construction).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) naming the invalid setting.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// The state a run starts from at `theta`.
    fn init(&self, theta: ParamVector<B>) -> HfState<ParamVector<B>>;

    /// Writes what the method needs besides the state into the checkpoint directory
    /// `dir` (a first-order optimizer's moments, say). Default: nothing.
    ///
    /// # Errors
    /// I/O or encoding errors.
    fn save(&self, dir: &Path) -> Result<()> {
        let _ = dir;
        Ok(())
    }

    /// Prepares to continue from `state`, read from the checkpoint in `dir`: restores
    /// the method's own state and the problem's batch sampler.
    ///
    /// # Errors
    /// A checkpoint that does not hold what the method needs.
    fn resume(
        &mut self,
        problem: &mut BurnProblem<B, N, L, D>,
        state: &HfState<ParamVector<B>>,
        dir: &Path,
    ) -> Result<()>;
}

/// Hessian-free optimization: everything it carries is in [`HfState`].
impl<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize> TrainingMethod<B, N, L, D>
    for HessianFree<ParamVector<B>>
{
    fn name(&self) -> &str {
        "hf"
    }

    fn init(&self, theta: ParamVector<B>) -> HfState<ParamVector<B>> {
        HessianFree::init(self, theta)
    }

    fn resume(
        &mut self,
        problem: &mut BurnProblem<B, N, L, D>,
        state: &HfState<ParamVector<B>>,
        _dir: &Path,
    ) -> Result<()> {
        Ok(HessianFree::resume(self, problem, state)?)
    }
}
