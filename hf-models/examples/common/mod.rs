//! What the JAX comparisons (`speed_vs_jax`, `rnn_vs_jax`) share: timing, deterministic
//! inputs and the `.npy` export their Python halves read.

use std::path::Path;
use std::time::Instant;

use burn::prelude::*;

/// The examples' error type.
pub type Error = Box<dyn std::error::Error>;

/// Median, minimum and maximum seconds of `repeats` runs after one warm-up.
pub fn measure(repeats: usize, mut f: impl FnMut() -> Result<(), Error>) -> Result<[f64; 3], Error> {
    f()?;
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok([times[times.len() / 2], times[0], times[times.len() - 1]])
}

/// Deterministic values in [−½, ½) (no RNG dependency, reproducible in the export).
pub fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

/// Writes a little-endian f32 array in NumPy's `.npy` format (version 1.0).
pub fn write_npy(path: &Path, shape: &[usize], values: &[f32]) -> Result<(), Error> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded to 64 with a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&u16::try_from(header.len())?.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes)?;
    Ok(())
}

/// A tensor's values on the host, as f32.
pub fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>, Error> {
    Ok(t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?)
}
