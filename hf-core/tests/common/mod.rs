//! Test support: a seeded generator, random SPD matrices with a chosen spectrum,
//! and a dense direct solver to check against.
#![allow(dead_code)]

/// SplitMix64: small, seeded, good enough for test matrices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub fn normal_vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }
}

/// `Q diag(eigenvalues) Qᵀ` with `Q` a product of three random Householder reflections.
pub fn symmetric_with_spectrum(eigenvalues: &[f64], rng: &mut Rng) -> Vec<f64> {
    let n = eigenvalues.len();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        a[i * n + i] = eigenvalues[i];
    }
    for _ in 0..3 {
        let u = rng.normal_vec(n);
        let uu: f64 = u.iter().map(|x| x * x).sum();
        // A ← H A H with H = I − 2uuᵀ/uᵀu.
        for pass in 0..2 {
            for col in 0..n {
                let dot: f64 = (0..n).map(|k| u[k] * idx(&a, n, k, col, pass)).sum();
                for k in 0..n {
                    let v = idx(&a, n, k, col, pass) - 2.0 * u[k] * dot / uu;
                    set(&mut a, n, k, col, pass, v);
                }
            }
        }
    }
    // Symmetrize away rounding.
    for i in 0..n {
        for j in 0..i {
            let m = 0.5 * (a[i * n + j] + a[j * n + i]);
            a[i * n + j] = m;
            a[j * n + i] = m;
        }
    }
    a
}

fn idx(a: &[f64], n: usize, k: usize, col: usize, transposed: usize) -> f64 {
    if transposed == 0 {
        a[k * n + col]
    } else {
        a[col * n + k]
    }
}

fn set(a: &mut [f64], n: usize, k: usize, col: usize, transposed: usize, v: f64) {
    if transposed == 0 {
        a[k * n + col] = v
    } else {
        a[col * n + k] = v
    }
}

/// Eigenvalues spread geometrically over `[1, condition]`.
pub fn geometric_spectrum(n: usize, condition: f64) -> Vec<f64> {
    (0..n)
        .map(|i| condition.powf(i as f64 / (n.max(2) - 1) as f64))
        .collect()
}

/// Solves `A x = b` by Gaussian elimination with partial pivoting.
pub fn dense_solve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut m = a.to_vec();
    let mut x = b.to_vec();
    for c in 0..n {
        let piv = (c..n)
            .max_by(|&i, &j| m[i * n + c].abs().total_cmp(&m[j * n + c].abs()))
            .unwrap();
        for k in 0..n {
            m.swap(c * n + k, piv * n + k);
        }
        x.swap(c, piv);
        for r in c + 1..n {
            let f = m[r * n + c] / m[c * n + c];
            for k in c..n {
                m[r * n + k] -= f * m[c * n + k];
            }
            x[r] -= f * x[c];
        }
    }
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| m[r * n + k] * x[k]).sum();
        x[r] = (x[r] - s) / m[r * n + r];
    }
    x
}

pub fn matvec(a: &[f64], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum()).collect()
}

pub fn norm(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

pub fn sub(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}
