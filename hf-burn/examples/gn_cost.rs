//! What one Gauss-Newton product costs, in gradients, by forward mode (hf-burn's
//! default) and by double backward, measured side by side in one run on burn-ndarray
//! and burn-flex (f32):
//! - Martens' (2010) MNIST deep autoencoder 784-1000-500-250-30-250-500-1000-784
//!   (logistic units, linear code layer, logistic outputs with cross-entropy), batch 1000;
//! - a 100-unit tanh RNN over 20 steps (4 inputs, 4 outputs at every step, squared
//!   error), batch 100, as in Martens & Sutskever's (2011) pathological tasks.
//!
//! Prints a table (medians, spread and peak heap per measurement) and writes it as JSON.
//!
//! ```sh
//! cargo run --release -p hf-burn --example gn_cost -- [--repeats 5] [--batch 1000] [--out gn_cost.json]
//! ```

use std::time::Instant;

use burn::backend::{Flex, NdArray};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::{
    logistic, tensor_from_f64, CurvatureKind, CurvatureProduct, DataBatch, DoubleBackward, Evaluator, ForwardMode,
    LogisticCrossEntropy, MatchingLoss, Network, Outputs, ParamVector, SquaredError,
};
use hf_core::CurvatureOperator;

/// Counts live heap bytes and their peak, so each measurement can report its own peak.
#[global_allocator]
static ALLOCATOR: hf_burn::peak_alloc::PeakAlloc = hf_burn::peak_alloc::PeakAlloc;

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
    let base = hf_burn::peak_alloc::reset();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    let peak = hf_burn::peak_alloc::peak_above(base);
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

/// A tanh RNN: `h_t = tanh(x_t W_in + h_{t−1} W_rec + b)`, outputs `h_t W_out + c` at
/// every step.
#[derive(Module, Debug)]
pub struct Rnn<B: Backend> {
    w_in: Param<Tensor<B, 2>>,
    w_rec: Param<Tensor<B, 2>>,
    b: Param<Tensor<B, 1>>,
    w_out: Param<Tensor<B, 2>>,
    c: Param<Tensor<B, 1>>,
}

/// Input, hidden and output sizes.
#[derive(Clone, Debug)]
pub struct RnnSpec {
    inputs: usize,
    units: usize,
    outputs: usize,
}

impl Network<3> for RnnSpec {
    type Module<B: Backend> = Rnn<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> Rnn<B> {
        let p2 = |a, b| Param::from_tensor(Tensor::zeros([a, b], device));
        let p1 = |a| Param::from_tensor(Tensor::zeros([a], device));
        Rnn {
            w_in: p2(self.inputs, self.units),
            w_rec: p2(self.units, self.units),
            b: p1(self.units),
            w_out: p2(self.units, self.outputs),
            c: p1(self.outputs),
        }
    }

    fn forward<B: Backend>(&self, m: &Rnn<B>, x: Tensor<B, 3>) -> Outputs<B> {
        let [n, steps, inputs] = x.dims();
        let projected = (x.reshape([n * steps, inputs]).matmul(m.w_in.val()) + m.b.val().unsqueeze_dim(0))
            .reshape([n, steps, self.units]);
        let mut h: Tensor<B, 2> = Tensor::zeros([n, self.units], &projected.device());
        let mut states = Vec::with_capacity(steps);
        for t in 0..steps {
            let input = projected.clone().slice([0..n, t..t + 1]).reshape([n, self.units]);
            h = (input + h.matmul(m.w_rec.val())).tanh();
            states.push(h.clone());
        }
        let hidden = Tensor::stack::<3>(states, 1).reshape([n * steps, self.units]);
        Outputs::new(hidden.matmul(m.w_out.val()) + m.c.val().unsqueeze_dim(0))
    }
}

fn stats_json(s: &Stats) -> serde_json::Value {
    serde_json::json!({ "median_s": s.median_s, "min_s": s.min_s, "max_s": s.max_s, "peak_bytes": s.peak_bytes })
}

fn mib(b: usize) -> f64 {
    b as f64 / 1048576.0
}

/// The gradient and one GN product per strategy, side by side.
fn bench<B: Backend, N: Network<D>, L: MatchingLoss + Clone, const D: usize>(
    backend: &str,
    model: &str,
    spec: &N,
    loss: L,
    data: &DataBatch<B, D>,
    repeats: usize,
) -> serde_json::Value {
    let device: B::Device = Default::default();
    let forward = Evaluator::<B, N, L, D>::with_jvp(spec.clone(), loss.clone(), ForwardMode, &device).unwrap();
    let double = Evaluator::<B, N, L, D>::with_jvp(spec.clone(), loss, DoubleBackward, &device).unwrap();
    let p = forward.num_params();
    let theta = ParamVector::new(tensor_from_f64(
        noise(p, 1).iter().map(|x| 0.1 * (x - 0.5)).collect(),
        [p],
        &device,
        DType::F32,
    ));
    let v = ParamVector::new(tensor_from_f64(noise(p, 2), [p], &device, DType::F32));

    // Reading a scalar of the result forces the computation to finish (device sync).
    let grad = measure(repeats, || {
        let (_, g) = forward.gradient(&theta, data).unwrap();
        std::hint::black_box(hf_burn::scalar(g.into_tensor().sum()));
    });
    fn product<B: Backend, N: Network<D>, L: MatchingLoss, const D: usize>(
        ev: &Evaluator<B, N, L, D>,
        theta: &ParamVector<B>,
        data: &DataBatch<B, D>,
        v: &ParamVector<B>,
        repeats: usize,
    ) -> Stats {
        let op = CurvatureProduct::new(ev, theta.clone(), data.clone(), CurvatureKind::GaussNewton, 0.0).unwrap();
        measure(repeats, || {
            let gv = op.apply(v).unwrap();
            std::hint::black_box(hf_burn::scalar(gv.into_tensor().sum()));
        })
    }
    let fwd = product(&forward, &theta, data, &v, repeats);
    let dbl = product(&double, &theta, data, &v, repeats);
    let (rf, rd) = (fwd.median_s / grad.median_s, dbl.median_s / grad.median_s);
    println!(
        "{model:<12} {backend:<8} {p:>8} {:>5} | grad {:>7.3} s {:>5.0} MiB | GN forward {:>7.3} s [{:.3}–{:.3}] {:>5.0} MiB {rf:>5.2}× | GN double backward {:>7.3} s [{:.3}–{:.3}] {:>5.0} MiB {rd:>5.2}× | speed-up {:>4.2}×",
        data.len(),
        grad.median_s,
        mib(grad.peak_bytes),
        fwd.median_s,
        fwd.min_s,
        fwd.max_s,
        mib(fwd.peak_bytes),
        dbl.median_s,
        dbl.min_s,
        dbl.max_s,
        mib(dbl.peak_bytes),
        dbl.median_s / fwd.median_s,
    );
    serde_json::json!({
        "model": model, "backend": backend, "params": p, "batch": data.len(), "repeats": repeats,
        "gradient": stats_json(&grad),
        "gauss_newton_forward_mode": stats_json(&fwd),
        "gauss_newton_double_backward": stats_json(&dbl),
        "forward_mode_gn_over_gradient": rf,
        "double_backward_gn_over_gradient": rd,
        "forward_mode_speedup": dbl.median_s / fwd.median_s,
    })
}

fn autoencoder_data<B: Backend>(batch: usize) -> DataBatch<B, 2> {
    let device = Default::default();
    let pixels: Vec<f64> = noise(batch * 784, 3);
    DataBatch::new(
        tensor_from_f64(pixels.clone(), [batch, 784], &device, DType::F32),
        tensor_from_f64(pixels, [batch, 784], &device, DType::F32),
    )
    .unwrap()
}

fn rnn_data<B: Backend>(spec: &RnnSpec, cases: usize, steps: usize) -> DataBatch<B, 3> {
    let device = Default::default();
    let x = noise(cases * steps * spec.inputs, 4).iter().map(|v| v - 0.5).collect();
    let t = noise(cases * steps * spec.outputs, 5);
    DataBatch::new(
        tensor_from_f64(x, [cases, steps, spec.inputs], &device, DType::F32),
        tensor_from_f64(t, [cases * steps, spec.outputs], &device, DType::F32),
    )
    .unwrap()
}

fn both<B: Backend>(backend: &str, batch: usize, repeats: usize) -> Vec<serde_json::Value> {
    let autoencoder = AutoencoderSpec {
        sizes: vec![784, 1000, 500, 250, 30, 250, 500, 1000, 784],
    };
    let rnn = RnnSpec {
        inputs: 4,
        units: 100,
        outputs: 4,
    };
    vec![
        bench(
            backend,
            "autoencoder",
            &autoencoder,
            LogisticCrossEntropy,
            &autoencoder_data::<B>(batch),
            repeats,
        ),
        bench(
            backend,
            "rnn-100x20",
            &rnn,
            SquaredError,
            &rnn_data::<B>(&rnn, 100, 20),
            repeats,
        ),
    ]
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
    println!("Gauss-Newton product vs gradient, f32, median of {repeats} (after one warm-up); [min–max], peak heap");
    let mut results = both::<NdArray<f32>>("ndarray", batch, repeats);
    results.extend(both::<Flex>("flex", batch, repeats));
    let report = serde_json::json!({
        "models": {
            "autoencoder": "784-1000-500-250-30-250-500-1000-784, logistic cross-entropy, batch --batch",
            "rnn-100x20": "tanh RNN 4-100-4, 20 steps, outputs at every step, squared error, batch 100",
        },
        "strategies": ["forward mode (Dual<Autodiff<B>>)", "double backward (Autodiff<Autodiff<B>>)"],
        "results": results,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).expect("cannot write the report");
    println!("written to {out}");
}
