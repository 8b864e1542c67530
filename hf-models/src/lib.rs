//! # hf-models
//!
//! The networks and data sets of the Hessian-free papers, generic over the burn
//! backend and ready for hf-burn's curvature operators:
//!
//! - [`AutoencoderSpec`]: Martens' (2010) deep autoencoders (CURVES, MNIST, FACES
//!   presets), logistic units, linear code layer, sparse initialization.
//! - [`RnnSpec`]: a tanh RNN with outputs at chosen steps and hidden states exposed for
//!   structural damping, with Martens & Sutskever's (2011) sparse initialization.
//! - [`ClassifierSpec`]: a softmax classifier for MNIST-style data.
//! - [`idx`]: the IDX reader for MNIST and Fashion-MNIST, gzipped or raw, with every
//!   header field checked.
//! - [`curves`]: a seeded generator of CURVES-like images (no download).
//! - [`pathological`]: the long-term-dependency tasks with their success criteria.
//! - [`batching`]: gradient, curvature and held-out batches on the device.

pub mod autoencoder;
pub mod batching;
pub mod classifier;
pub mod curves;
pub mod error;
pub mod idx;
pub mod init;
pub mod measures;
pub mod pathological;
pub mod rng;
pub mod rnn;

pub use autoencoder::{reconstruction_error, AutoencoderOutput, AutoencoderSpec, DenseStack};
pub use batching::{BatchSizes, DeviceDataset, MinibatchSource, TaskSource};
pub use classifier::{classification_error, Activation, ClassifierSpec};
pub use error::{DataError, Result};
pub use idx::{load_mnist, parse_idx, read_idx, IdxArray, LabeledImages, Split};
pub use init::sparse_weights;
pub use measures::{one_hot, ClassificationError, ReconstructionError, SequenceZeroOneLoss};
pub use pathological::{OutputKind, SequenceBatch, Task, TaskSpec};
pub use rng::SplitMix64;
pub use rnn::{RnnSpec, TanhRnn};
