//! The recurrent Gauss-Newton product against JAX's on the same CPU (issue 23): the
//! 100-unit tanh RNN of Martens & Sutskever (2011) on the addition task's shapes (2
//! inputs, one linear output read at the last step, squared error), batch 100, 50
//! steps, f32.
//!
//! For each backend it times, median of `--repeats` after a warm-up, the timed region
//! ending on a value read back:
//! - `G v`, `CurvatureProduct::curvature_product`, the plain product;
//! - the same product with structural damping (`μ = 0.03`, `λ = 1`, the hidden
//!   states' tangents weighted by the tanh units' matching loss), as HF runs it on
//!   these tasks;
//! - both by the RNN's own R-operator (`RnnSpec`'s `Network::jvp_then_vjp`,
//!   `Evaluator::with_network_products(true)`) and by the generic forward mode (the
//!   default);
//! - the gradient of the mean loss, for scale.
//!
//! It writes θ, v, the inputs and both products as `.npy` files and the timings as
//! `hf.json` into `--out`; `rnn_vs_jax.py` beside this file checks JAX's products
//! (`jax.jvp` then `jax.vjp` of a `lax.scan` RNN, jit-compiled) against hf's and
//! times them on the same arrays:
//!
//! ```sh
//! cargo run --release -p hf-models --example rnn_vs_jax -- --out /tmp/rnn-vs-jax
//! python3 -m venv /tmp/V && /tmp/V/bin/pip install "jax[cpu]"
//! /tmp/V/bin/python hf-models/examples/rnn_vs_jax.py /tmp/rnn-vs-jax
//! ```
//!
//! `--only product|gradient` runs the structurally damped product or the gradient many
//! times (for `perf record`).

use std::path::PathBuf;

use burn::backend::{Flex, NdArray};
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::{
    scalar, tensor_from_f64, CurvatureKind, CurvatureProduct, DataBatch, Evaluator, Loss, ParamVector,
    StructuralDamping,
};
use hf_models::rnn::RnnSpec;

mod common;

use common::{host, measure, noise, write_npy, Error};

const CASES: usize = 100;
const STEPS: usize = 50;
const HIDDEN: usize = 100;
const INPUTS: usize = 2;
const MU: f64 = 0.03;
const LAMBDA: f64 = 1.0;

struct Options {
    out: PathBuf,
    repeats: usize,
    backends: Vec<String>,
    only: Option<String>,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        out: PathBuf::from("rnn-vs-jax"),
        repeats: 21,
        backends: vec!["flex".into(), "flex-plain".into(), "ndarray".into()],
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).ok_or_else(|| format!("{} needs a value", pair[0]))?;
        match pair[0].as_str() {
            "--out" => o.out = PathBuf::from(value),
            "--repeats" => o.repeats = value.parse().map_err(|_| "--repeats takes a positive integer")?,
            "--backends" => o.backends = value.split(',').map(String::from).collect(),
            "--only" => o.only = Some(value.clone()),
            other => {
                return Err(format!(
                    "unknown option {other}; usage: rnn_vs_jax [--out DIR] [--repeats N] \
                     [--backends flex,flex-plain,ndarray] [--only product|gradient]"
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

fn spec() -> RnnSpec {
    RnnSpec {
        inputs: INPUTS,
        hidden: HIDDEN,
        outputs: 1,
        output_steps: 1,
    }
}

fn run<B: Backend>(backend: &str, o: &Options, export: bool) -> Result<serde_json::Value, Error> {
    let device: B::Device = Default::default();
    let spec = spec();
    let inputs = noise(CASES * STEPS * INPUTS, 3);
    let x = tensor_from_f64::<B, 3>(inputs.clone(), [CASES, STEPS, INPUTS], &device, DType::F32);
    let t = tensor_from_f64::<B, 2>(noise(CASES, 4), [CASES, 1], &device, DType::F32);
    let data = DataBatch::new(x, t)?;
    let evaluator =
        Evaluator::<B, RnnSpec, Loss, 3>::new(spec.clone(), Loss::SquaredError, &device)?.with_network_products(true);
    let theta = ParamVector::from_module(&spec.sparse_init::<B>(1, &device, DType::F32))?;
    let p = evaluator.num_params();
    let v = ParamVector::new(tensor_from_f64(noise(p, 2), [p], &device, DType::F32));
    let generic_evaluator = evaluator.clone().with_network_products(false);
    let plain = CurvatureProduct::new(
        &evaluator,
        theta.clone(),
        data.clone(),
        CurvatureKind::GaussNewton,
        LAMBDA,
    )?;
    let damped = CurvatureProduct::new(
        &evaluator,
        theta.clone(),
        data.clone(),
        CurvatureKind::GaussNewton,
        LAMBDA,
    )?
    .with_structural_damping(StructuralDamping::tanh_matching(MU));
    let generic_plain = CurvatureProduct::new(
        &generic_evaluator,
        theta.clone(),
        data.clone(),
        CurvatureKind::GaussNewton,
        LAMBDA,
    )?;
    let generic_damped = CurvatureProduct::new(
        &generic_evaluator,
        theta.clone(),
        data.clone(),
        CurvatureKind::GaussNewton,
        LAMBDA,
    )?
    .with_structural_damping(StructuralDamping::tanh_matching(MU));
    let gv = plain.curvature_product(&v)?;
    let gv_damped = damped.curvature_product(&v)?;
    if export {
        std::fs::create_dir_all(&o.out)?;
        write_npy(&o.out.join("theta.npy"), &[p], &host(theta.tensor().clone())?)?;
        write_npy(&o.out.join("v.npy"), &[p], &host(v.tensor().clone())?)?;
        let x: Vec<f32> = inputs.iter().map(|&a| a as f32).collect();
        write_npy(&o.out.join("x.npy"), &[CASES, STEPS, INPUTS], &x)?;
        write_npy(&o.out.join("gn_product.npy"), &[p], &host(gv.tensor().clone())?)?;
        write_npy(
            &o.out.join("gn_product_structural.npy"),
            &[p],
            &host(gv_damped.tensor().clone())?,
        )?;
        let layout = serde_json::json!({
            "shapes": evaluator.templates().layout().shapes(),
            "mu": MU, "lambda": LAMBDA, "cases": CASES, "steps": STEPS,
        });
        std::fs::write(o.out.join("layout.json"), serde_json::to_string_pretty(&layout)?)?;
    }
    let product = |op: &CurvatureProduct<'_, B, RnnSpec, Loss, 3>| -> Result<(), Error> {
        std::hint::black_box(scalar(op.curvature_product(&v)?.into_tensor().slice(0..1)));
        Ok(())
    };
    match o.only.as_deref() {
        Some("product") => {
            for _ in 0..o.repeats {
                product(&damped)?;
            }
            return Ok(serde_json::Value::Null);
        }
        Some("gradient") => {
            for _ in 0..o.repeats {
                let (_, g) = evaluator.gradient(&theta, &data)?;
                std::hint::black_box(scalar(g.into_tensor().slice(0..1)));
            }
            return Ok(serde_json::Value::Null);
        }
        Some(other) => return Err(format!("--only {other}: product or gradient").into()),
        None => {}
    }
    let gn = measure(o.repeats, || product(&plain))?;
    let gn_damped = measure(o.repeats, || product(&damped))?;
    let generic = measure(o.repeats, || product(&generic_plain))?;
    let generic_structural = measure(o.repeats, || product(&generic_damped))?;
    // The two paths compute the same product.
    let difference = |a: &CurvatureProduct<'_, B, RnnSpec, Loss, 3>, b: &CurvatureProduct<'_, B, RnnSpec, Loss, 3>| {
        let (x, y) = (
            a.curvature_product(&v)?.into_tensor(),
            b.curvature_product(&v)?.into_tensor(),
        );
        let norm = |t: Tensor<B, 1>| scalar(t.powi_scalar(2).sum()).sqrt();
        Ok::<f64, Error>(norm(x - y.clone()) / norm(y))
    };
    let paths_differ = difference(&plain, &generic_plain)?.max(difference(&damped, &generic_damped)?);
    let grad = measure(o.repeats, || {
        let (_, g) = evaluator.gradient(&theta, &data)?;
        std::hint::black_box(scalar(g.into_tensor().slice(0..1)));
        Ok(())
    })?;
    println!(
        "rnn {backend:<10} params {p}: GN product {:>6.2} ms, with structural damping {:>6.2} ms \
         (generic forward mode {:>6.2} and {:>6.2} ms, relative difference {paths_differ:.1e}), gradient {:>6.2} ms",
        1e3 * gn[0],
        1e3 * gn_damped[0],
        1e3 * generic[0],
        1e3 * generic_structural[0],
        1e3 * grad[0]
    );
    let stats = |s: [f64; 3]| serde_json::json!({ "median_s": s[0], "min_s": s[1], "max_s": s[2] });
    Ok(serde_json::json!({
        "backend": backend, "params": p, "cases": CASES, "steps": STEPS, "hidden": HIDDEN, "repeats": o.repeats,
        "gn_product": stats(gn), "gn_product_structural": stats(gn_damped), "gradient": stats(grad),
        "generic_gn_product": stats(generic), "generic_gn_product_structural": stats(generic_structural),
        "relative_difference_of_the_paths": paths_differ,
    }))
}

fn main() -> Result<(), Error> {
    let o = options()?;
    let mut results = Vec::new();
    for (i, backend) in o.backends.iter().enumerate() {
        let export = i == 0 && o.only.is_none();
        let r = match backend.as_str() {
            "flex-plain" => run::<Flex>(backend, &o, export)?,
            "ndarray" => run::<NdArray<f32>>(backend, &o, export)?,
            "flex" => run::<hf_burn::fast::FastFlex>(backend, &o, export)?,
            other => return Err(format!("unknown backend {other} (flex, flex-plain or ndarray)").into()),
        };
        results.push(r);
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
