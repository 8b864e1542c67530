//! hf's gradient, Gauss-Newton product and Adam step against JAX's on the same CPU,
//! the same parameters, direction and batch (issue 22).
//!
//! Backends as `hessfree` names them: `flex` (`hf_burn::fast::FastFlex`), `flex-plain`
//! (burn-flex as shipped), `ndarray`. Martens' (2010) autoencoders at batch 1000, f32: MNIST 784-1000-500-250-30 mirrored
//! (on real Fashion-MNIST pixels from Debian's `dataset-fashion-mnist`, the same
//! shape as MNIST) and CURVES 784-400-200-100-50-25-6 mirrored (generated images). For
//! each backend this program times, median of `--repeats` after a warm-up, every timed
//! region ending on a value read back (the device sync):
//! - the gradient of the mean loss, `Evaluator::gradient` (θ in, gradient out, as the
//!   optimizer calls it);
//! - one Gauss-Newton product `G v`, `CurvatureProduct::apply` (forward mode);
//! - one step of burn's Adam (forward, backward, update) on the module;
//! - the network's largest matrix multiplies alone, in GFLOP/s.
//!
//! It writes θ, v, the batch, the gradient and `G v` as `.npy` files and the timings
//! as `hf.json` into `--out`; `speed_vs_jax.py` beside this file loads them, checks
//! JAX's values against hf's and times JAX on the same arrays:
//!
//! ```sh
//! cargo run --release -p hf-models --example speed_vs_jax -- --out /tmp/vs-jax
//! python3 -m venv /tmp/V && /tmp/V/bin/pip install "jax[cpu]" optax
//! /tmp/V/bin/python hf-models/examples/speed_vs_jax.py /tmp/vs-jax
//! ```
//!
//! `--only gradient|product` runs one measurement many times (for `perf record`).

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex, NdArray};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::{
    scalar, tensor_from_f64, CurvatureKind, CurvatureProduct, DataBatch, Evaluator, MatchingLoss, Network, ParamVector,
};
use hf_core::CurvatureOperator;
use hf_models::autoencoder::AutoencoderSpec;
use hf_models::idx::{load_mnist, Split, DEBIAN_FASHION_MNIST};

mod common;

use common::{host, measure, noise, write_npy, Error};

const BATCH: usize = 1000;

struct Options {
    out: PathBuf,
    repeats: usize,
    backends: Vec<String>,
    models: Vec<String>,
    only: Option<String>,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        out: PathBuf::from("speed-vs-jax"),
        repeats: 7,
        backends: vec!["flex".into(), "flex-plain".into(), "ndarray".into()],
        models: vec!["mnist".into(), "curves".into()],
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).ok_or_else(|| format!("{} needs a value", pair[0]))?;
        match pair[0].as_str() {
            "--out" => o.out = PathBuf::from(value),
            "--repeats" => o.repeats = value.parse().map_err(|_| "--repeats takes a positive integer")?,
            "--backends" => o.backends = value.split(',').map(String::from).collect(),
            "--models" => o.models = value.split(',').map(String::from).collect(),
            "--only" => o.only = Some(value.clone()),
            other => {
                return Err(format!(
                    "unknown option {other}; usage: speed_vs_jax [--out DIR] [--repeats N] [--backends flex,flex-plain,ndarray] \
                     [--models mnist,curves] [--only gradient|product]"
                )
                .into())
            }
        }
    }
    if o.repeats == 0 {
        return Err("--repeats takes a positive integer".into());
    }
    Ok(o)
}

/// The first `BATCH` images of the model's data set, pixels in [0, 1].
fn images(model: &str) -> Result<Vec<f32>, Error> {
    match model {
        "mnist" => {
            let train = load_mnist(Path::new(DEBIAN_FASHION_MNIST), Split::Train)?;
            Ok(train.pixels[..BATCH * train.features()].to_vec())
        }
        "curves" => Ok(hf_models::curves::generate(BATCH, 1)?),
        other => Err(format!("unknown model {other} (mnist or curves)").into()),
    }
}

fn spec(model: &str) -> AutoencoderSpec {
    if model == "curves" {
        AutoencoderSpec::curves()
    } else {
        AutoencoderSpec::mnist()
    }
}

/// Times everything on backend `B` for one model; writes the arrays when `export`.
fn run<B: Backend>(backend: &str, model: &str, o: &Options, export: bool) -> Result<serde_json::Value, Error> {
    let device: B::Device = Default::default();
    let spec = spec(model);
    let sizes = spec.sizes();
    let pixels = images(model)?;
    let features = sizes[0];
    let x = tensor_from_f64::<B, 2>(
        pixels.iter().map(|&p| f64::from(p)).collect(),
        [BATCH, features],
        &device,
        DType::F32,
    );
    let data = DataBatch::new(x.clone(), x.clone())?;

    let evaluator = Evaluator::<B, AutoencoderSpec, hf_burn::Loss, 2>::new(spec.clone(), spec.loss(), &device)?;
    let theta = ParamVector::from_module(&spec.sparse_init::<B>(1, &device, DType::F32))?;
    let p = evaluator.num_params();
    let v = ParamVector::new(tensor_from_f64(noise(p, 2), [p], &device, DType::F32));

    let (objective, gradient) = evaluator.gradient(&theta, &data)?;
    let op = CurvatureProduct::new(&evaluator, theta.clone(), data.clone(), CurvatureKind::GaussNewton, 0.0)?;
    let product = op.apply(&v)?;
    if export {
        let dir = o.out.join(model);
        std::fs::create_dir_all(&dir)?;
        write_npy(&dir.join("theta.npy"), &[p], &host(theta.tensor().clone())?)?;
        write_npy(&dir.join("v.npy"), &[p], &host(v.tensor().clone())?)?;
        write_npy(&dir.join("x.npy"), &[BATCH, features], &pixels)?;
        write_npy(&dir.join("gradient.npy"), &[p], &host(gradient.tensor().clone())?)?;
        write_npy(&dir.join("gn_product.npy"), &[p], &host(product.tensor().clone())?)?;
        let layout = serde_json::json!({
            "sizes": sizes,
            "code_layer": spec.encoder.len() - 2,
            "shapes": evaluator.templates().layout().shapes(),
            "objective": objective,
        });
        std::fs::write(dir.join("layout.json"), serde_json::to_string_pretty(&layout)?)?;
    }

    let repeats = o.repeats;
    match o.only.as_deref() {
        Some("gradient") => {
            for _ in 0..repeats {
                let (_, g) = evaluator.gradient(&theta, &data)?;
                std::hint::black_box(scalar(g.into_tensor().slice(0..1)));
            }
            return Ok(serde_json::Value::Null);
        }
        Some("product") => {
            for _ in 0..repeats {
                std::hint::black_box(scalar(op.apply(&v)?.into_tensor().slice(0..1)));
            }
            return Ok(serde_json::Value::Null);
        }
        Some(other) => return Err(format!("--only {other}: gradient or product").into()),
        None => {}
    }

    // Reading one element of the result ends each timed region (the device sync).
    let grad = measure(repeats, || {
        let (_, g) = evaluator.gradient(&theta, &data)?;
        std::hint::black_box(scalar(g.into_tensor().slice(0..1)));
        Ok(())
    })?;
    let gn = measure(repeats, || {
        std::hint::black_box(scalar(op.apply(&v)?.into_tensor().slice(0..1)));
        Ok(())
    })?;

    // burn's Adam on the module, as a user of burn would write the step.
    let adam = {
        let mut module = Some(spec.sparse_init::<Autodiff<B>>(1, &device, DType::F32));
        let mut optimizer = AdamConfig::new().init::<Autodiff<B>, hf_models::autoencoder::DenseStack<Autodiff<B>>>();
        let xa = Tensor::<Autodiff<B>, 2>::from_inner(x.clone());
        measure(repeats, || {
            let m = module.take().ok_or("the module is put back after every step")?;
            let z = spec.forward(&m, xa.clone()).z;
            let loss = spec.loss().per_case(z, xa.clone()).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            let m = optimizer.step(1e-3, m, grads);
            std::hint::black_box(scalar(m.biases[0].val().inner().slice(0..1)));
            module = Some(m);
            Ok(())
        })?
    };

    // The forward pass's largest products, and the backward's weight gradient Xᵀ δ.
    let mut matmuls = Vec::new();
    for (m, k, n, transposed) in [
        (BATCH, sizes[0], sizes[1], false),
        (BATCH, sizes[1], sizes[2], false),
        (sizes[0], BATCH, sizes[1], true),
    ] {
        let a = tensor_from_f64::<B, 2>(
            noise(m * k, 5),
            [if transposed { k } else { m }, if transposed { m } else { k }],
            &device,
            DType::F32,
        );
        let b = tensor_from_f64::<B, 2>(noise(k * n, 6), [k, n], &device, DType::F32);
        let a = if transposed { a.transpose() } else { a };
        let t = measure(repeats.max(9), || {
            let c = a.clone().matmul(b.clone());
            std::hint::black_box(scalar(c.slice([0..1, 0..1])));
            Ok(())
        })?;
        let gflops = 2.0 * (m * k * n) as f64 / t[0] / 1e9;
        matmuls.push(serde_json::json!({ "m": m, "k": k, "n": n, "lhs_transposed": transposed, "median_s": t[0], "gflops": gflops }));
    }

    println!(
        "{model:<7} {backend:<8} params {p:>8}: gradient {:>7.1} ms, GN product {:>7.1} ms ({:.2}×), Adam step {:>7.1} ms, matmul {} GFLOP/s",
        1e3 * grad[0],
        1e3 * gn[0],
        gn[0] / grad[0],
        1e3 * adam[0],
        matmuls
            .iter()
            .map(|m| format!("{:.0}", m["gflops"].as_f64().unwrap_or(f64::NAN)))
            .collect::<Vec<_>>()
            .join("/")
    );
    let stats = |s: [f64; 3]| serde_json::json!({ "median_s": s[0], "min_s": s[1], "max_s": s[2] });
    Ok(serde_json::json!({
        "model": model, "backend": backend, "params": p, "batch": BATCH, "repeats": repeats,
        "gradient": stats(grad), "gn_product": stats(gn), "adam_step": stats(adam), "matmuls": matmuls,
    }))
}

fn main() -> Result<(), Error> {
    let o = options()?;
    std::fs::create_dir_all(&o.out)?;
    let mut results = Vec::new();
    for model in &o.models {
        for (i, backend) in o.backends.iter().enumerate() {
            let export = i == 0 && o.only.is_none();
            let r = match backend.as_str() {
                "flex-plain" => run::<Flex>(backend, model, &o, export)?,
                "ndarray" => run::<NdArray<f32>>(backend, model, &o, export)?,
                "flex" => run::<hf_burn::fast::FastFlex>(backend, model, &o, export)?,
                other => return Err(format!("unknown backend {other} (flex, flex-plain or ndarray)").into()),
            };
            results.push(r);
        }
    }
    if o.only.is_none() {
        let report = serde_json::json!({
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "results": results,
        });
        std::fs::write(o.out.join("hf.json"), serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", o.out.display());
    }
    Ok(())
}
