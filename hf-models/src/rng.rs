//! The seeded generator behind data sets and initializations: hf-core's
//! [`SplitMix64`], re-exported under its old path.

pub use hf_core::rng::SplitMix64;
