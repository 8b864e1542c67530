//! CURVES-like images: smooth curves through random control points, 28 × 28.
//!
//! Hinton & Salakhutdinov (2006) built CURVES from images of curves generated from
//! three random points; the original files need a download, so this generator makes
//! a data set of the same kind, deterministically from a seed: a quadratic Bézier
//! curve through three random control points, drawn with a soft Gaussian stroke so
//! that intensities are smooth and lie in `[0, 1]`.
//!
//! # References
//! - G. E. Hinton and R. R. Salakhutdinov, "Reducing the dimensionality of data with
//!   neural networks", Science 313, 2006.

use crate::error::{DataError, Result};
use crate::rng::SplitMix64;

/// Image side length.
pub const SIDE: usize = 28;

/// Width `σ` of the stroke, in pixels.
const STROKE_SIGMA: f64 = 0.8;

/// `count` images of `SIDE × SIDE` pixels in `[0, 1]`, row-major, one image after
/// another. The same seed gives the same images.
///
/// # Errors
/// [`DataError::InvalidParameter`] for `count = 0`.
pub fn generate(count: usize, seed: u64) -> Result<Vec<f32>> {
    if count == 0 {
        return Err(DataError::invalid("count", 0, "≥ 1"));
    }
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(count * SIDE * SIDE);
    for _ in 0..count {
        out.extend(image(&mut rng));
    }
    Ok(out)
}

fn image(rng: &mut SplitMix64) -> Vec<f32> {
    // Control points inside a margin, so curves stay on the canvas.
    let margin = 3.0;
    let span = SIDE as f64 - 1.0 - 2.0 * margin;
    let pts: Vec<(f64, f64)> = (0..3)
        .map(|_| (margin + span * rng.uniform(), margin + span * rng.uniform()))
        .collect();
    let samples = 64;
    let curve: Vec<(f64, f64)> = (0..=samples)
        .map(|k| {
            let t = k as f64 / samples as f64;
            let (a, b, c) = ((1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t), t * t);
            (
                a * pts[0].0 + b * pts[1].0 + c * pts[2].0,
                a * pts[0].1 + b * pts[1].1 + c * pts[2].1,
            )
        })
        .collect();
    let mut img = vec![0.0f32; SIDE * SIDE];
    for r in 0..SIDE {
        for c in 0..SIDE {
            let d2 = curve
                .iter()
                .map(|&(x, y)| (x - c as f64).powi(2) + (y - r as f64).powi(2))
                .fold(f64::INFINITY, f64::min);
            img[r * SIDE + c] = (-d2 / (2.0 * STROKE_SIGMA * STROKE_SIGMA)).exp() as f32;
        }
    }
    img
}
