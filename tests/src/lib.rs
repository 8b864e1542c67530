//! Cross-crate integration tests of the hf workspace live in `tests/`. The README's
//! Rust example is compiled and run here as a doctest.

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
