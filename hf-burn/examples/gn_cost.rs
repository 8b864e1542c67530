//! What one Gauss-Newton product costs, in gradients, on Martens' (2010) MNIST deep
//! autoencoder 784-1000-500-250-30-250-500-1000-784 (logistic units, linear code
//! layer, logistic outputs with cross-entropy), batch 1000, f32, on burn-ndarray and
//! burn-flex, measured side by side in one run. Prints a table and writes it as JSON.
//!
//! ```sh
//! cargo run --release -p hf-burn --example gn_cost -- [--repeats 5] [--batch 1000] [--out gn_cost.json]
//! ```

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::backend::{Flex, NdArray};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::{
    logistic, tensor_from_f64, CurvatureKind, CurvatureProduct, DataBatch, Evaluator, LogisticCrossEntropy, Network,
    Outputs, ParamVector,
};
use hf_core::CurvatureOperator;

/// Counts live heap bytes and their peak, so each measurement can report its own peak.
struct PeakAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// Dense layers as raw parameters (matmul + bias: differentiable twice).
#[derive(Module, Debug)]
pub struct Autoencoder<B: Backend> {
    weights: Vec<Param<Tensor<B, 2>>>,
    biases: Vec<Param<Tensor<B, 1>>>,
}

/// Layer sizes, mirrored; the middle layer is the linear code layer.
#[derive(Clone, Debug)]
pub struct AutoencoderSpec {
    sizes: Vec<usize>,
}

impl Network<2> for AutoencoderSpec {
    type Module<B: Backend> = Autoencoder<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> Autoencoder<B> {
        let pairs = self.sizes.windows(2);
        Autoencoder {
            weights: pairs
                .clone()
                .map(|w| Param::from_tensor(Tensor::zeros([w[0], w[1]], device)))
                .collect(),
            biases: pairs
                .map(|w| Param::from_tensor(Tensor::zeros([w[1]], device)))
                .collect(),
        }
    }

    fn forward<B: Backend>(&self, m: &Autoencoder<B>, x: Tensor<B, 2>) -> Outputs<B> {
        let code = self.sizes.len() / 2 - 1;
        let last = m.weights.len() - 1;
        let mut h = x;
        for (i, (w, b)) in m.weights.iter().zip(&m.biases).enumerate() {
            let z = h.matmul(w.val()) + b.val().unsqueeze_dim(0);
            h = if i == code || i == last { z } else { logistic(z) };
        }
        Outputs::new(h)
    }
}

struct Stats {
    median_s: f64,
    min_s: f64,
    max_s: f64,
    peak_bytes: usize,
}

fn measure(repeats: usize, mut f: impl FnMut()) -> Stats {
    f(); // warm-up
    let base = reset_peak();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    times.sort_by(f64::total_cmp);
    Stats {
        median_s: times[times.len() / 2],
        min_s: times[0],
        max_s: times[times.len() - 1],
        peak_bytes: peak,
    }
}

/// Deterministic pseudo-random values in [0, 1) (no RNG dependency).
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

fn bench<B: Backend>(name: &str, spec: &AutoencoderSpec, batch: usize, repeats: usize) -> serde_json::Value {
    let device: B::Device = Default::default();
    let ev = Evaluator::<B, _, _, 2>::new(spec.clone(), LogisticCrossEntropy, &device).unwrap();
    let p = ev.num_params();
    let theta = ParamVector::new(tensor_from_f64(
        noise(p, 1).iter().map(|x| 0.1 * (x - 0.5)).collect(),
        [p],
        &device,
        DType::F32,
    ));
    let v = ParamVector::new(tensor_from_f64(noise(p, 2), [p], &device, DType::F32));
    let pixels: Vec<f64> = noise(batch * 784, 3);
    let data = DataBatch::new(
        tensor_from_f64(pixels.clone(), [batch, 784], &device, DType::F32),
        tensor_from_f64(pixels, [batch, 784], &device, DType::F32),
    )
    .unwrap();
    let op = CurvatureProduct::new(&ev, theta.clone(), data.clone(), CurvatureKind::GaussNewton, 0.0).unwrap();

    // Reading a scalar of the result forces the computation to finish (device sync).
    let grad = measure(repeats, || {
        let (_, g) = ev.gradient(&theta, &data).unwrap();
        std::hint::black_box(hf_burn::scalar(g.into_tensor().sum()));
    });
    let gn = measure(repeats, || {
        let gv = op.apply(&v).unwrap();
        std::hint::black_box(hf_burn::scalar(gv.into_tensor().sum()));
    });
    let ratio = gn.median_s / grad.median_s;
    println!(
        "{name:<8} {p:>9} {batch:>6} | grad {:>8.3} s [{:.3}–{:.3}] {:>7.0} MiB | GN {:>8.3} s [{:.3}–{:.3}] {:>7.0} MiB | GN/grad {ratio:>5.2}",
        grad.median_s,
        grad.min_s,
        grad.max_s,
        grad.peak_bytes as f64 / 1048576.0,
        gn.median_s,
        gn.min_s,
        gn.max_s,
        gn.peak_bytes as f64 / 1048576.0,
    );
    serde_json::json!({
        "backend": name, "params": p, "batch": batch, "repeats": repeats,
        "gradient": { "median_s": grad.median_s, "min_s": grad.min_s, "max_s": grad.max_s, "peak_bytes": grad.peak_bytes },
        "gauss_newton": { "median_s": gn.median_s, "min_s": gn.min_s, "max_s": gn.max_s, "peak_bytes": gn.peak_bytes },
        "gn_over_gradient": ratio,
    })
}

fn main() {
    let mut repeats = 5;
    let mut batch = 1000;
    let mut out = String::from("gn_cost.json");
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--repeats", Some(v)) => repeats = v.parse().expect("--repeats takes a positive integer"),
            ("--batch", Some(v)) => batch = v.parse().expect("--batch takes a positive integer"),
            ("--out", Some(v)) => out = v.clone(),
            _ => {
                eprintln!("usage: gn_cost [--repeats N] [--batch N] [--out FILE]");
                std::process::exit(2);
            }
        }
    }
    let spec = AutoencoderSpec {
        sizes: vec![784, 1000, 500, 250, 30, 250, 500, 1000, 784],
    };
    println!("Gauss-Newton product vs gradient, MNIST autoencoder, f32, median of {repeats} (after one warm-up)");
    let results = vec![
        bench::<NdArray<f32>>("ndarray", &spec, batch, repeats),
        bench::<Flex>("flex", &spec, batch, repeats),
    ];
    let report = serde_json::json!({
        "model": "784-1000-500-250-30-250-500-1000-784 autoencoder, logistic cross-entropy",
        "jvp": "double backward",
        "results": results,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).expect("cannot write the report");
    println!("written to {out}");
}
