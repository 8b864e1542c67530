//! Training as a library: [`Trainer`] runs any [`TrainingMethod`] — Hessian-free
//! optimization or one of burn's first-order optimizers ([`FirstOrder`]) — on any
//! [`Network`](crate::Network) with a [`HeldOutMeasure`], reporting every iteration
//! to observers — a [`MetricsWriter`] (CSV and JSON lines, one [`MetricsRow`] each),
//! checkpoints in burn's record format ([`checkpoint`]), a progress bar or early
//! stopping of your own ([`TrainingObserver`]) — and resumes from the newest
//! checkpoint bit for bit.
//!
//! Stopping belongs to the method's [`Stepper`](hf_core::Stepper) side: its limits
//! ([`hf_core::HfConfig::max_iterations`] and [`hf_core::HfConfig::time_budget_s`],
//! or [`FirstOrderConfig`]'s) count the whole run across resumes, the trainer adds
//! [`TrainerConfig::target_held_out`], and any observer can return
//! [`hf_core::Control::Stop`].

pub mod checkpoint;
mod first_order;
mod held_out;
mod method;
pub mod metrics;
mod trainer;

pub use checkpoint::{Checkpoint, ModelRecorder};
pub use first_order::{FirstOrder, FirstOrderConfig, OPTIMIZER_FILE};
pub use held_out::HeldOutMeasure;
pub use method::TrainingMethod;
pub use metrics::{
    held_out_column, metrics_header, read_metrics, replace_atomically, resumable_rows, MetricsRow, MetricsWriter,
    METRICS_CSV, METRICS_JSONL,
};
pub use trainer::{Trainer, TrainerConfig, TrainingObserver, TrainingRecord, TrainingReport, TrainingStop};
