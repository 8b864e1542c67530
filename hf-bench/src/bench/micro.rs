//! Micro-benchmarks: the gradient, the Gauss-Newton and Hessian products, building the
//! preconditioner and one CG iteration, per model, batch size and backend.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::DType;
use serde::{Deserialize, Serialize};

use hf_burn::{
    scalar, tensor_from_f64, CurvatureKind, CurvatureProduct, DataBatch, Evaluator, Loss, Network, ParamVector,
};
use hf_core::{CgConfig, ConjugateGradient, CurvatureOperator, ProgressRule, QuadraticModel, Solver};
use hf_models::{AutoencoderSpec, SplitMix64, Task, TaskSpec};

use crate::error::Result;

/// The models measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MicroModel {
    /// Martens' CURVES autoencoder.
    CurvesAutoencoder,
    /// Martens' MNIST autoencoder.
    MnistAutoencoder,
    /// A 100-unit tanh RNN on the addition task.
    RnnAddition,
}

/// Timing statistics of one operation, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Median.
    pub median_s: f64,
    /// Fastest repeat.
    pub min_s: f64,
    /// Slowest repeat.
    pub max_s: f64,
    /// Cases per second at the median.
    pub examples_per_s: f64,
    /// Growth of live host memory during the repeats (the counting allocator; on wgpu
    /// the device memory is not included).
    pub peak_host_bytes: usize,
}

/// All figures for one model, batch size and backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicroResult {
    /// The backend.
    pub backend: String,
    /// The model.
    pub model: MicroModel,
    /// Trainable parameters.
    pub parameters: usize,
    /// Cases per batch.
    pub batch: usize,
    /// Repeats after one warm-up.
    pub repeats: usize,
    /// One gradient.
    pub gradient: Timing,
    /// One Gauss-Newton product.
    pub gauss_newton: Timing,
    /// One Hessian-vector product.
    pub hessian: Timing,
    /// Martens' squared-gradient diagonal over the whole batch, in one pass (the
    /// preconditioner of the feed-forward presets).
    pub preconditioner: Timing,
    /// The same diagonal from 32 cases by one backward pass per case (the generic
    /// fallback, and what the presets did before the one-pass estimate).
    #[serde(default)]
    pub per_case_preconditioner: Option<Timing>,
    /// One CG iteration (the mean over 5 iterations of a solve).
    pub cg_iteration: Timing,
    /// Gauss-Newton product / gradient, medians measured side by side.
    pub gn_over_gradient: f64,
    /// Preconditioner (whole batch) / gradient, medians measured side by side.
    #[serde(default)]
    pub preconditioner_over_gradient: f64,
}

fn measure(repeats: usize, batch: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    f()?; // warm-up (and shader compilation on GPU backends)
    let base = hf_burn::peak_alloc::reset();
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    let peak = hf_burn::peak_alloc::peak_above(base);
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    };
    Ok(Timing {
        median_s: median,
        min_s: times[0],
        max_s: times[times.len() - 1],
        examples_per_s: batch as f64 / median,
        peak_host_bytes: peak,
    })
}

/// Reading one scalar that depends on every entry waits for the device: this is the
/// synchronization inside each timed region.
fn sync<B: Backend>(v: &ParamVector<B>) {
    std::hint::black_box(scalar(v.tensor().clone().sum()));
}

fn noise(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| scale * rng.normal()).collect()
}

/// Cases of the measured per-case preconditioner build.
const PER_CASE_CASES: usize = 32;

fn measure_model<B: Backend, N: Network<D>, const D: usize>(
    backend: &str,
    model: MicroModel,
    ev: &Evaluator<B, N, Loss, D>,
    theta: ParamVector<B>,
    batch: DataBatch<B, D>,
    repeats: usize,
) -> Result<MicroResult> {
    let p = ev.num_params();
    let cases = batch.len();
    let device = theta.tensor().device();
    let dtype = theta.tensor().dtype();
    let v = ParamVector::new(tensor_from_f64(noise(p, 9, 1.0), [p], &device, dtype));
    let gn = CurvatureProduct::new(ev, theta.clone(), batch.clone(), CurvatureKind::GaussNewton, 1.0)?;
    let hess = CurvatureProduct::new(ev, theta.clone(), batch.clone(), CurvatureKind::Hessian, 1.0)?;

    let gradient = measure(repeats, cases, || {
        sync(&ev.gradient(&theta, &batch)?.1);
        Ok(())
    })?;
    let gauss_newton = measure(repeats, cases, || {
        sync(&gn.apply(&v)?);
        Ok(())
    })?;
    let hessian = measure(repeats, cases, || {
        sync(&hess.apply(&v)?);
        Ok(())
    })?;
    let preconditioner = measure(repeats, cases, || {
        sync(&ev.squared_gradient_diagonal(&theta, &batch)?);
        Ok(())
    })?;
    let few = batch.slice(0..PER_CASE_CASES.min(cases));
    let per_case_preconditioner = Some(measure(repeats, few.len(), || {
        sync(&ev.per_case_squared_gradient_diagonal(&theta, &few)?);
        Ok(())
    })?);
    const CG_ITERATIONS: usize = 5;
    let mut cg = ConjugateGradient::new(CgConfig {
        min_iterations: CG_ITERATIONS,
        max_iterations: CG_ITERATIONS,
        progress: ProgressRule {
            epsilon: 0.0,
            ..Default::default()
        },
        residual_tolerance: 0.0,
        ..Default::default()
    })?;
    let mut cg_iteration = measure(repeats, cases, || {
        let out = cg.solve(&QuadraticModel::new(&gn, &v), &mut ())?;
        sync(&out.step);
        Ok(())
    })?;
    for t in [
        &mut cg_iteration.median_s,
        &mut cg_iteration.min_s,
        &mut cg_iteration.max_s,
    ] {
        *t /= CG_ITERATIONS as f64;
    }
    cg_iteration.examples_per_s = cases as f64 / cg_iteration.median_s;
    Ok(MicroResult {
        backend: backend.to_string(),
        model,
        parameters: p,
        batch: cases,
        repeats,
        gn_over_gradient: gauss_newton.median_s / gradient.median_s,
        preconditioner_over_gradient: preconditioner.median_s / gradient.median_s,
        per_case_preconditioner,
        gradient,
        gauss_newton,
        hessian,
        preconditioner,
        cg_iteration,
    })
}

/// Runs every (model, batch) case on backend `B`.
pub fn run<B: Backend>(
    backend: &str,
    device: &B::Device,
    dtype: DType,
    models: &[MicroModel],
    batches: &[usize],
    seq_len: usize,
    repeats: usize,
    mut report: impl FnMut(&MicroResult),
) -> Result<Vec<MicroResult>> {
    let mut out = Vec::new();
    for &model in models {
        for &n in batches {
            let r = match model {
                MicroModel::CurvesAutoencoder | MicroModel::MnistAutoencoder => {
                    let spec = if model == MicroModel::CurvesAutoencoder {
                        AutoencoderSpec::curves()
                    } else {
                        AutoencoderSpec::mnist()
                    };
                    let ev = Evaluator::new(spec.clone(), spec.loss(), device)?;
                    let theta = ParamVector::from_module(&spec.sparse_init::<B>(1, device, dtype))?;
                    let px: Vec<f64> = hf_models::curves::generate(n, 2)?
                        .iter()
                        .map(|&p| f64::from(p))
                        .collect();
                    let x = tensor_from_f64(px, [n, 784], device, dtype);
                    let batch = DataBatch::new(x.clone(), x)?;
                    measure_model(backend, model, &ev, theta, batch, repeats)?
                }
                MicroModel::RnnAddition => {
                    let task = TaskSpec::new(Task::Addition, seq_len)?;
                    let spec = crate::setup::rnn_spec(&task);
                    let ev = Evaluator::new(spec.clone(), task.loss(), device)?;
                    let theta = ParamVector::from_module(&spec.sparse_init::<B>(1, device, dtype))?;
                    let sizes = hf_models::BatchSizes {
                        gradient: n,
                        curvature: n,
                    };
                    let batch = hf_models::TaskSource::<B>::new(task, sizes, 3, device, dtype)?.fresh(n)?;
                    measure_model(backend, model, &ev, theta, batch, repeats)?
                }
            };
            report(&r);
            out.push(r);
        }
    }
    Ok(out)
}
