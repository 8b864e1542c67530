//! Martens' sparse initialization.

use crate::rng::SplitMix64;

/// Number of non-zero incoming weights per unit in Martens' sparse initialization.
pub const SPARSE_CONNECTIONS: usize = 15;

/// A `[fan_in, fan_out]` weight matrix (row-major) in which every unit (column) gets
/// `min(connections, fan_in)` non-zero incoming weights drawn from `N(0, 1)` times
/// `scale`, at distinct random rows; the rest are zero.
///
/// Sparse initialization lets units differ from one another without saturating, and
/// keeps the scale of the total input independent of the layer width.
///
/// # References
/// - J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, §5.
/// - I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the importance of
///   initialization and momentum in deep learning", ICML 2013.
pub fn sparse_weights(fan_in: usize, fan_out: usize, connections: usize, scale: f64, rng: &mut SplitMix64) -> Vec<f64> {
    let mut w = vec![0.0; fan_in * fan_out];
    for unit in 0..fan_out {
        for row in rng.choose(fan_in, connections) {
            w[row * fan_out + unit] = scale * rng.normal();
        }
    }
    w
}
