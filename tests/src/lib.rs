//! Cross-crate integration tests of the hf workspace live in `tests/`; this library
//! is empty.
