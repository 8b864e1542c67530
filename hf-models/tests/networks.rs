//! Each network at small size: Gauss-Newton products against an explicit
//! finite-difference Jacobian with its loss (f64), and the sparse initializations.

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::{
    tensor_from_f64, CurvatureKind, CurvatureProduct, DataBatch, Evaluator, Loss, Network, ParamVector,
    StructuralDamping,
};
use hf_core::CurvatureOperator;
use hf_models::{Activation, AutoencoderOutput, AutoencoderSpec, ClassifierSpec, RnnSpec, SplitMix64};

type B = NdArray<f64>;

fn t<const D: usize>(v: Vec<f64>, shape: [usize; D]) -> Tensor<B, D> {
    tensor_from_f64(v, shape, &Default::default(), DType::F64)
}

fn pv(v: Vec<f64>) -> ParamVector<B> {
    let n = v.len();
    ParamVector::new(t(v, [n]))
}

fn host<const D: usize>(x: Tensor<B, D>) -> Vec<f64> {
    x.into_data().iter::<f64>().collect()
}

/// Output Hessian of one row, from the formulas.
fn row_hessian(loss: Loss, z: &[f64]) -> Vec<Vec<f64>> {
    let k = z.len();
    let mut h = vec![vec![0.0; k]; k];
    match loss {
        Loss::SquaredError => (0..k).for_each(|j| h[j][j] = 1.0),
        Loss::LogisticCrossEntropy => (0..k).for_each(|j| {
            let p = 1.0 / (1.0 + (-z[j]).exp());
            h[j][j] = p * (1.0 - p);
        }),
        Loss::SoftmaxCrossEntropy => {
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            for a in 0..k {
                for b in 0..k {
                    h[a][b] = if a == b { e[a] / s } else { 0.0 } - e[a] * e[b] / (s * s);
                }
            }
        }
    }
    h
}

/// `(Jᵀ H J / R + μλ J_Sᵀ J_S / R_S + λ) v` with every Jacobian by central differences.
fn explicit<N: Network<D>, const D: usize>(
    ev: &Evaluator<B, N, Loss, D>,
    theta: &[f64],
    input: &Tensor<B, D>,
    v: &[f64],
    lambda: f64,
    mu: f64,
) -> Vec<f64> {
    let p = theta.len();
    let h = 1e-6;
    let outputs = |th: &[f64]| {
        let o = ev.outputs(&pv(th.to_vec()), input.clone()).unwrap();
        let width = o.z.dims()[1];
        let hidden = o.hidden.map(|x| (x.dims()[1], host(x))).unwrap_or((1, vec![]));
        (width, host(o.z), hidden)
    };
    let (k, z, _) = outputs(theta);
    let cols: Vec<(Vec<f64>, Vec<f64>)> = (0..p)
        .map(|c| {
            let mut a = theta.to_vec();
            a[c] += h;
            let mut b = theta.to_vec();
            b[c] -= h;
            let (_, za, (_, sa)) = outputs(&a);
            let (_, zb, (_, sb)) = outputs(&b);
            let d = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(x, y)| (x - y) / (2.0 * h)).collect::<Vec<_>>();
            (d(&za, &zb), d(&sa, &sb))
        })
        .collect();
    let jv = |which: usize| -> Vec<f64> {
        let rows = if which == 0 { cols[0].0.len() } else { cols[0].1.len() };
        (0..rows)
            .map(|r| {
                (0..p)
                    .map(|c| if which == 0 { cols[c].0[r] } else { cols[c].1[r] } * v[c])
                    .sum()
            })
            .collect()
    };
    let (jzv, jsv) = (jv(0), jv(1));
    let rows = z.len() / k;
    let mut w = vec![0.0; z.len()];
    for r in 0..rows {
        let hr = row_hessian(*ev.loss(), &z[r * k..(r + 1) * k]);
        for a in 0..k {
            w[r * k + a] = (0..k).map(|b| hr[a][b] * jzv[r * k + b]).sum::<f64>() / rows as f64;
        }
    }
    // The structural term is averaged over the output rows, like the objective.
    (0..p)
        .map(|c| {
            let gn: f64 = cols[c].0.iter().zip(&w).map(|(j, w)| j * w).sum();
            let sd: f64 = cols[c].1.iter().zip(&jsv).map(|(j, s)| j * s).sum::<f64>() * mu * lambda / rows as f64;
            gn + sd + lambda * v[c]
        })
        .collect()
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    num / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}

fn check<N: Network<D>, const D: usize>(net: N, loss: Loss, batch: DataBatch<B, D>, theta: Vec<f64>, mu: f64) {
    let ev = Evaluator::new(net, loss, &Default::default()).unwrap();
    assert_eq!(theta.len(), ev.num_params());
    let lambda = 0.4;
    let mut rng = SplitMix64::new(77);
    let v: Vec<f64> = (0..theta.len()).map(|_| rng.normal()).collect();
    let mut op = CurvatureProduct::new(
        &ev,
        pv(theta.clone()),
        batch.clone(),
        CurvatureKind::GaussNewton,
        lambda,
    )
    .unwrap();
    if mu > 0.0 {
        op = op.with_structural_damping(StructuralDamping::squared_error(mu));
    }
    let got = op.apply(&pv(v.clone())).unwrap().to_vec();
    let want = explicit(&ev, &theta, &batch.input, &v, lambda, mu);
    let e = rel_err(&got, &want);
    assert!(e < 1e-6, "{loss:?}: relative error {e:e}");
}

fn noise(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| scale * rng.normal()).collect()
}

#[test]
fn autoencoder_gauss_newton_matches_explicit_jacobian() {
    for output in [AutoencoderOutput::Logistic, AutoencoderOutput::Linear] {
        let spec = AutoencoderSpec {
            encoder: vec![5, 4, 2],
            output,
        };
        assert_eq!(spec.sizes(), vec![5, 4, 2, 4, 5]);
        let x: Vec<f64> = noise(3 * 5, 1, 1.0).iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
        let batch = DataBatch::new(t(x.clone(), [3, 5]), t(x, [3, 5])).unwrap();
        let p = 5 * 4 + 4 + 4 * 2 + 2 + 2 * 4 + 4 + 4 * 5 + 5;
        check(spec.clone(), spec.loss(), batch, noise(p, 2, 0.7), 0.0);
    }
}

#[test]
fn classifier_gauss_newton_matches_explicit_jacobian() {
    for activation in [Activation::Tanh, Activation::Logistic] {
        let spec = ClassifierSpec {
            sizes: vec![4, 3, 3],
            activation,
        };
        let x = noise(5 * 4, 3, 1.0);
        let y: Vec<f64> = (0..5)
            .flat_map(|i| (0..3).map(move |j| if j == i % 3 { 1.0 } else { 0.0 }))
            .collect();
        let batch = DataBatch::new(t(x, [5, 4]), t(y, [5, 3])).unwrap();
        check(
            spec.clone(),
            spec.loss(),
            batch,
            noise(4 * 3 + 3 + 3 * 3 + 3, 4, 0.7),
            0.0,
        );
    }
}

#[test]
fn rnn_gauss_newton_with_structural_damping_matches_explicit_jacobian() {
    let spec = RnnSpec {
        inputs: 2,
        hidden: 3,
        outputs: 2,
        output_steps: 2,
    };
    let (cases, steps) = (3, 5);
    let x = noise(cases * steps * 2, 5, 1.0);
    let y = noise(cases * 2 * 2, 6, 1.0);
    let batch = DataBatch::new(t(x, [cases, steps, 2]), t(y, [cases * 2, 2])).unwrap();
    let p = 2 * 3 + 3 * 3 + 3 + 3 * 2 + 2 + 3;
    for mu in [0.0, 0.3] {
        check(spec.clone(), Loss::SquaredError, batch.clone(), noise(p, 7, 0.6), mu);
    }
    let y: Vec<f64> = (0..cases * 2)
        .flat_map(|i| if i % 2 == 0 { [1.0, 0.0] } else { [0.0, 1.0] })
        .collect();
    let batch = DataBatch::new(batch.input, t(y, [cases * 2, 2])).unwrap();
    check(spec, Loss::SoftmaxCrossEntropy, batch, noise(p, 8, 0.6), 0.03);
}

/// The one-pass squared-gradient diagonal (every parameter reported to the taps)
/// against one backward pass per case.
fn one_pass_matches_per_case<N: Network<D>, const D: usize>(
    net: N,
    loss: Loss,
    batch: DataBatch<B, D>,
    theta: Vec<f64>,
) {
    let ev = Evaluator::new(net, loss, &Default::default()).unwrap();
    let theta = pv(theta);
    let one_pass = ev
        .one_pass_squared_gradient_diagonal(&theta, &batch)
        .unwrap()
        .expect("hf-models' networks report every parameter");
    let per_case = ev.per_case_squared_gradient_diagonal(&theta, &batch).unwrap().to_vec();
    let e = rel_err(&one_pass.to_vec(), &per_case);
    assert!(e < 1e-10, "{loss:?}: relative error {e}");
}

#[test]
fn every_network_gets_the_squared_gradient_diagonal_in_one_pass() {
    let ae = AutoencoderSpec {
        encoder: vec![5, 4, 2],
        output: AutoencoderOutput::Logistic,
    };
    let x: Vec<f64> = noise(6 * 5, 11, 1.0).iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
    let batch = DataBatch::new(t(x.clone(), [6, 5]), t(x, [6, 5])).unwrap();
    let p = 5 * 4 + 4 + 4 * 2 + 2 + 2 * 4 + 4 + 4 * 5 + 5;
    one_pass_matches_per_case(ae.clone(), ae.loss(), batch, noise(p, 12, 0.7));

    let clf = ClassifierSpec {
        sizes: vec![4, 3, 3],
        activation: Activation::Tanh,
    };
    let y: Vec<f64> = (0..5)
        .flat_map(|i| (0..3).map(move |j| if j == i % 3 { 1.0 } else { 0.0 }))
        .collect();
    let batch = DataBatch::new(t(noise(5 * 4, 13, 1.0), [5, 4]), t(y, [5, 3])).unwrap();
    one_pass_matches_per_case(clf.clone(), clf.loss(), batch, noise(4 * 3 + 3 + 3 * 3 + 3, 14, 0.7));

    // The RNN: weights shared over steps, the initial state, outputs at two steps.
    let rnn = RnnSpec {
        inputs: 2,
        hidden: 3,
        outputs: 2,
        output_steps: 2,
    };
    let (cases, steps) = (4, 5);
    let x = noise(cases * steps * 2, 15, 1.0);
    let y = noise(cases * 2 * 2, 16, 1.0);
    let batch = DataBatch::new(t(x, [cases, steps, 2]), t(y, [cases * 2, 2])).unwrap();
    let p = 2 * 3 + 3 * 3 + 3 + 3 * 2 + 2 + 3;
    one_pass_matches_per_case(rnn, Loss::SquaredError, batch, noise(p, 17, 0.6));
}

#[test]
fn sparse_inits_give_fifteen_connections_per_unit() {
    let device = Default::default();
    let spec = AutoencoderSpec::curves();
    let m = spec.sparse_init::<B>(3, &device, DType::F64);
    for (w, pair) in m.weights.iter().zip(spec.sizes().windows(2)) {
        let v = host(w.val());
        let expect = pair[0].min(15);
        for unit in 0..pair[1] {
            let nz = (0..pair[0]).filter(|&r| v[r * pair[1] + unit] != 0.0).count();
            assert_eq!(nz, expect);
        }
    }
    assert!(m.biases.iter().all(|b| host(b.val()).iter().all(|&x| x == 0.0)));
    let theta = ParamVector::from_module(&m).unwrap();
    assert_eq!(
        theta.to_vec().len(),
        Evaluator::<B, _, _, 2>::new(spec, Loss::LogisticCrossEntropy, &device)
            .unwrap()
            .num_params()
    );

    let rnn = RnnSpec {
        inputs: 100,
        hidden: 100,
        outputs: 10,
        output_steps: 1,
    };
    let r = rnn.sparse_init::<B>(4, &device, DType::F64);
    let input = host(r.input.val());
    let recurrent = host(r.recurrent.val());
    let nz = |v: &[f64]| v.iter().filter(|&&x| x != 0.0).count();
    assert_eq!(nz(&input), 100 * 15);
    assert_eq!(nz(&recurrent), 100 * 15);
    let rms = |v: &[f64]| (v.iter().map(|x| x * x).sum::<f64>() / nz(v) as f64).sqrt();
    let sd = 1.0 / 15f64.sqrt();
    assert!(
        (rms(&input) - 0.25 * sd).abs() < 0.03 * sd,
        "input weights N(0, 1/15) scaled by 0.25: rms {}",
        rms(&input)
    );
    assert!((rms(&recurrent) - sd).abs() < 0.1 * sd, "rms {}", rms(&recurrent));
}

/// `lim ‖Wᵏ x‖^{1/k}`, the spectral radius of the square `n × n` matrix `w`
/// (row-major), by power iteration with renormalization: the growth rate is what
/// converges, also for the complex leading eigenvalues of a non-symmetric matrix.
fn spectral_radius(w: &[f64], n: usize) -> f64 {
    let mut x: Vec<f64> = noise(n, 99, 1.0);
    let (burn_in, measured) = (100, 400);
    let mut log_growth = 0.0;
    for k in 0..burn_in + measured {
        let y: Vec<f64> = (0..n).map(|j| (0..n).map(|i| x[i] * w[i * n + j]).sum()).collect();
        let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
        if k >= burn_in {
            log_growth += norm.ln();
        }
        x = y.iter().map(|v| v / norm).collect();
    }
    (log_growth / measured as f64).exp()
}

#[test]
fn rnn_initial_recurrent_matrix_has_spectral_radius_near_one() {
    // Sutskever's scaling (N(0, 1/15) on 15 entries per unit) puts the radius near 1
    // by the circular law; unscaled N(0, 1) weights would put it near √15 ≈ 3.9.
    let spec = RnnSpec {
        inputs: 2,
        hidden: 100,
        outputs: 1,
        output_steps: 1,
    };
    for seed in [1, 2, 3] {
        let r = spec.sparse_init::<B>(seed, &Default::default(), DType::F64);
        let radius = spectral_radius(&host(r.recurrent.val()), 100);
        assert!((0.7..1.3).contains(&radius), "seed {seed}: spectral radius {radius}");
    }
}

#[test]
fn presets_have_the_papers_shapes() {
    assert_eq!(
        AutoencoderSpec::mnist().sizes(),
        vec![784, 1000, 500, 250, 30, 250, 500, 1000, 784]
    );
    assert_eq!(
        AutoencoderSpec::curves().sizes(),
        vec![784, 400, 200, 100, 50, 25, 6, 25, 50, 100, 200, 400, 784]
    );
    assert_eq!(AutoencoderSpec::faces().sizes()[..5], [625, 2000, 1000, 500, 30]);
    assert_eq!(AutoencoderSpec::faces().loss(), Loss::SquaredError);
    assert_eq!(AutoencoderSpec::mnist().loss(), Loss::LogisticCrossEntropy);
}

#[test]
fn reconstruction_error_is_the_per_case_squared_error() {
    let y = t(vec![0.0, 1.0, 0.5, 0.5], [2, 2]);
    let target = t(vec![1.0, 1.0, 0.0, 0.0], [2, 2]);
    assert_eq!(hf_models::reconstruction_error(y, target), (1.0 + 0.25 + 0.25) / 2.0);
    let logits = t(vec![2.0, 0.0, 0.0, 3.0, 1.0, 0.0], [3, 2]);
    let onehot = t(vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0], [3, 2]);
    assert!((hf_models::classification_error(logits, onehot) - 1.0 / 3.0).abs() < 1e-12);
}
