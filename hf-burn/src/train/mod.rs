//! Training as a library: [`Trainer`] runs Hessian-free optimization of any
//! [`Network`](crate::Network) with a held-out measure, reporting every iteration to
//! observers — a [`MetricsWriter`] (CSV and JSON lines), checkpoints in burn's record
//! format ([`checkpoint`]), a progress bar or early stopping of your own
//! ([`TrainingObserver`]) — and resumes from the newest checkpoint bit for bit.
//!
//! Stopping belongs to the optimizer: [`hf_core::HfConfig::max_iterations`] and
//! [`hf_core::HfConfig::time_budget_s`] count the whole run across resumes, the
//! trainer adds [`TrainerConfig::target_held_out`], and any observer can return
//! [`hf_core::Control::Stop`].

pub mod checkpoint;
pub mod metrics;
mod trainer;

pub use checkpoint::{Checkpoint, ModelRecorder};
pub use metrics::{
    held_out_column, metrics_header, read_metrics, replace_atomically, MetricsWriter, METRICS_CSV, METRICS_JSONL,
};
pub use trainer::{Trainer, TrainerConfig, TrainingObserver, TrainingRecord, TrainingReport, TrainingStop};
