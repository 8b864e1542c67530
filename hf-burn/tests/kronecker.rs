//! The Kronecker-factored (K-FAC) preconditioner: its factors against a case-by-case
//! computation, one CG iteration where the Gauss-Newton matrix is exactly `A ⊗ G`, a
//! symmetric positive definite `M⁻¹`, and a bit-identical resume with its state.

use burn::backend::NdArray;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::DType;
use hf_burn::{
    tensor_from_f64, AffineTaps, BurnProblem, DataBatch, FixedBatches, KroneckerFactored, Network, Outputs,
    ParamVector, ProblemConfig, SquaredError,
};
use hf_core::{
    CgConfig, ConjugateGradient, HessianFree, HfConfig, HfState, KroneckerConfig, Preconditioner,
    PreconditionerContext, Problem, QuadraticModel, Solver, SplitMix64, Vector,
};

type B = NdArray<f64>;

#[derive(Module, Debug)]
struct Two<B: Backend> {
    l1: Linear<B>,
    l2: Linear<B>,
}

/// 3 → 4 (tanh) → `outputs`, both layers reported to the taps.
#[derive(Clone, Debug)]
struct TwoLayers {
    outputs: usize,
}

impl Network<2> for TwoLayers {
    type Module<B: Backend> = Two<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Two<B> {
        Two {
            l1: LinearConfig::new(3, 4).init(device),
            l2: LinearConfig::new(4, self.outputs).init(device),
        }
    }
    fn forward<B: Backend>(&self, m: &Two<B>, x: Tensor<B, 2>) -> Outputs<B> {
        self.forward_with_taps(m, x, &mut AffineTaps::off()).expect("reported")
    }
    fn forward_with_taps<B: Backend>(
        &self,
        m: &Two<B>,
        x: Tensor<B, 2>,
        taps: &mut AffineTaps<B>,
    ) -> Option<Outputs<B>> {
        let h = taps.linear(&m.l1, x).tanh();
        Some(Outputs::new(taps.linear(&m.l2, h)))
    }
}

/// One affine layer, 5 → 1: with squared error its Gauss-Newton matrix is `A ⊗ [1]`.
#[derive(Clone, Debug)]
struct OneLayer;

impl Network<2> for OneLayer {
    type Module<B: Backend> = Linear<B>;
    fn init<B: Backend>(&self, device: &B::Device) -> Linear<B> {
        LinearConfig::new(5, 1).init(device)
    }
    fn forward<B: Backend>(&self, m: &Linear<B>, x: Tensor<B, 2>) -> Outputs<B> {
        self.forward_with_taps(m, x, &mut AffineTaps::off()).expect("reported")
    }
    fn forward_with_taps<B: Backend>(
        &self,
        m: &Linear<B>,
        x: Tensor<B, 2>,
        taps: &mut AffineTaps<B>,
    ) -> Option<Outputs<B>> {
        Some(Outputs::new(taps.linear(m, x)))
    }
}

fn normals(n: usize, rng: &mut SplitMix64) -> Vec<f64> {
    (0..n).map(|_| rng.normal()).collect()
}

fn batch(cases: usize, inputs: usize, outputs: usize, seed: u64) -> DataBatch<B, 2> {
    let mut rng = SplitMix64::new(seed);
    let device = Default::default();
    DataBatch::new(
        tensor_from_f64(normals(cases * inputs, &mut rng), [cases, inputs], &device, DType::F64),
        tensor_from_f64(
            normals(cases * outputs, &mut rng),
            [cases, outputs],
            &device,
            DType::F64,
        ),
    )
    .unwrap()
}

fn vector(values: Vec<f64>) -> ParamVector<B> {
    let n = values.len();
    ParamVector::new(tensor_from_f64(values, [n], &Default::default(), DType::F64))
}

/// The random signs hf-burn draws from `seed` (`n` of them, 64 per draw).
fn signs(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::new();
    while out.len() < n {
        let bits = rng.next_u64();
        out.extend((0..64.min(n - out.len())).map(|k| if bits >> k & 1 == 1 { 1.0 } else { -1.0 }));
    }
    out
}

/// `(1/N) Σ_i x_i x_iᵀ`.
fn mean_outer(rows: &[Vec<f64>]) -> Vec<f64> {
    let n = rows[0].len();
    let mut m = vec![0.0; n * n];
    for r in rows {
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] += r[i] * r[j] / rows.len() as f64;
            }
        }
    }
    m
}

fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * scale.max(1.0), "{what}: {x} vs {y}");
    }
}

#[test]
fn the_factors_of_one_tapped_pass_equal_those_computed_case_by_case() {
    let (cases, outputs) = (7, 2);
    let net = TwoLayers { outputs };
    let data = batch(cases, 3, outputs, 1);
    let problem = BurnProblem::new(
        net,
        SquaredError,
        FixedBatches::split(data.clone(), 1),
        ProblemConfig::default(),
        &Default::default(),
    )
    .unwrap();
    let n = problem.evaluator().num_params();
    let theta = normals(n, &mut SplitMix64::new(2));
    let seed = 99;
    let factors = problem
        .evaluator()
        .kronecker_factors(&vector(theta.clone()), &data, seed)
        .unwrap()
        .expect("both layers are reported");
    assert_eq!(factors.len(), 2);

    // θ = [W1 (3×4), b1 (4), W2 (4×2), b2 (2)], row-major.
    let (w1, b1, w2, b2) = (&theta[0..12], &theta[12..16], &theta[16..24], &theta[24..26]);
    let x: Vec<f64> = data.input.to_data().iter::<f64>().collect();
    let v = signs(seed, cases * outputs);
    let (mut a1, mut g1, mut a2, mut g2) = (vec![], vec![], vec![], vec![]);
    for i in 0..cases {
        let xi = &x[3 * i..3 * i + 3];
        let h: Vec<f64> = (0..4)
            .map(|j| ((0..3).map(|k| xi[k] * w1[k * 4 + j]).sum::<f64>() + b1[j]).tanh())
            .collect();
        // Squared error: H_L = I, so S v = v, back-propagated.
        let u = &v[outputs * i..outputs * (i + 1)];
        let d1: Vec<f64> = (0..4)
            .map(|j| (0..outputs).map(|o| u[o] * w2[j * outputs + o]).sum::<f64>() * (1.0 - h[j] * h[j]))
            .collect();
        a1.push(xi.iter().copied().chain([1.0]).collect());
        g1.push(d1);
        a2.push(h.iter().copied().chain([1.0]).collect());
        g2.push(u.to_vec());
    }
    let _ = b2;
    let (f1, f2) = (&factors[0], &factors[1]);
    assert_eq!((f1.weight, f1.bias, f1.fan_in, f1.fan_out), (0, Some(12), 3, 4));
    assert_eq!((f2.weight, f2.bias, f2.fan_in, f2.fan_out), (16, Some(24), 4, 2));
    assert_close(&f1.input, &mean_outer(&a1), 1e-12, "A₁");
    assert_close(&f1.output, &mean_outer(&g1), 1e-12, "G₁");
    assert_close(&f2.input, &mean_outer(&a2), 1e-12, "A₂");
    assert_close(&f2.output, &mean_outer(&g2), 1e-12, "G₂");
}

/// A preconditioner updated on `problem` at `theta` with damping `lambda`.
fn kfac<P: Problem<Vector = ParamVector<B>>>(
    problem: &mut P,
    theta: &ParamVector<B>,
    lambda: f64,
) -> KroneckerFactored<B> {
    let mut m = KroneckerFactored::<B>::new(KroneckerConfig::default(), &Default::default(), DType::F64).unwrap();
    let factors = problem.kronecker_factors(theta).unwrap();
    m.update(&PreconditionerContext {
        diagonal: None,
        kronecker: factors.as_deref(),
        damping: lambda,
    })
    .unwrap();
    m
}

#[test]
fn where_the_gauss_newton_matrix_is_a_kronecker_product_cg_converges_in_one_iteration() {
    let data = batch(40, 5, 1, 3);
    let mut problem = BurnProblem::new(
        OneLayer,
        SquaredError,
        FixedBatches::split(data, 1),
        ProblemConfig::default(),
        &Default::default(),
    )
    .unwrap();
    let theta = vector(normals(6, &mut SplitMix64::new(4)));
    // M = (A + π√λ) ⊗ (1 + √λ/π) differs from A ⊗ 1 + λ by O(√λ).
    let lambda = 1e-14;
    let m = kfac(&mut problem, &theta, lambda);
    assert_eq!(m.factors().len(), 1);
    let (_, g) = problem.gradient(&theta).unwrap();
    let op = problem.curvature(&theta, lambda).unwrap();

    let one = CgConfig {
        min_iterations: 1,
        max_iterations: 1,
        ..Default::default()
    };
    let model = QuadraticModel::new(op.as_ref(), &g).preconditioned(&m);
    let step = ConjugateGradient::new(one)
        .unwrap()
        .solve(&model, &mut ())
        .unwrap()
        .step;
    // The exact minimizer, by unpreconditioned CG run to convergence.
    let exact = ConjugateGradient::new(CgConfig {
        max_iterations: 200,
        ..Default::default()
    })
    .unwrap()
    .solve(&QuadraticModel::new(op.as_ref(), &g), &mut ())
    .unwrap()
    .step;
    let mut diff = step.clone();
    diff.axpy(-1.0, &exact);
    assert!(
        diff.norm() <= 1e-6 * exact.norm(),
        "{} of {}",
        diff.norm(),
        exact.norm()
    );
    // Unpreconditioned, one iteration is far from it.
    let plain = ConjugateGradient::new(one)
        .unwrap()
        .solve(&QuadraticModel::new(op.as_ref(), &g), &mut ())
        .unwrap()
        .step;
    let mut diff = plain;
    diff.axpy(-1.0, &exact);
    assert!(diff.norm() > 1e-2 * exact.norm());
}

#[test]
fn the_inverse_is_symmetric_positive_definite() {
    let data = batch(20, 3, 2, 5);
    let mut problem = BurnProblem::new(
        TwoLayers { outputs: 2 },
        SquaredError,
        FixedBatches::split(data, 1),
        ProblemConfig::default(),
        &Default::default(),
    )
    .unwrap();
    let n = problem.evaluator().num_params();
    let theta = vector(normals(n, &mut SplitMix64::new(6)));
    // Both layers are factored: after one update with a diagonal, none is asked for.
    let mut m = KroneckerFactored::<B>::new(KroneckerConfig::default(), &Default::default(), DType::F64).unwrap();
    assert!(m.wants_diagonal() && m.wants_kronecker_factors());
    let factors = problem.kronecker_factors(&theta).unwrap();
    m.update(&PreconditionerContext {
        diagonal: Some(&vector(vec![1.0; n])),
        kronecker: factors.as_deref(),
        damping: 1.0,
    })
    .unwrap();
    assert!(!m.wants_diagonal() && m.wants_kronecker_factors());

    let mut rng = SplitMix64::new(7);
    for lambda in [1e-6, 1e-2, 10.0] {
        let m = kfac(&mut problem, &theta, lambda);
        for _ in 0..10 {
            let (u, v) = (vector(normals(n, &mut rng)), vector(normals(n, &mut rng)));
            let (mu, mv) = (m.apply(&u).unwrap(), m.apply(&v).unwrap());
            assert!(v.dot(&mv) > 0.0, "λ {lambda}");
            let (a, b) = (u.dot(&mv), v.dot(&mu));
            assert!((a - b).abs() <= 1e-10 * a.abs().max(1.0), "λ {lambda}: {a} vs {b}");
        }
    }
}

/// HF with the Kronecker-factored preconditioner, as a configuration chooses it.
fn hf(max_iterations: usize) -> HessianFree<ParamVector<B>> {
    let config = HfConfig {
        max_iterations,
        initial_damping: Some(1.0),
        preconditioner: hf_core::PreconditionerKind::KroneckerFactored,
        ..Default::default()
    };
    let e = HessianFree::<ParamVector<B>>::new(config.clone()).err().unwrap();
    assert!(e.to_string().contains("hf_burn::hessian_free"), "{e}");
    hf_burn::hessian_free::<B>(config, &Default::default(), DType::F64).unwrap()
}

fn two_layer_problem() -> BurnProblem<B, TwoLayers, SquaredError, 2> {
    BurnProblem::new(
        TwoLayers { outputs: 2 },
        SquaredError,
        FixedBatches::split(batch(60, 3, 2, 8), 3),
        ProblemConfig::default(),
        &Default::default(),
    )
    .unwrap()
}

#[test]
fn a_run_with_it_resumes_bit_identically_and_its_state_is_refused_when_damaged() {
    let n = two_layer_problem().evaluator().num_params();
    let theta0 = vector(normals(n, &mut SplitMix64::new(9)));

    let mut whole = hf(6);
    let mut state = whole.init(theta0.clone());
    whole.run(&mut two_layer_problem(), &mut state, &mut ()).unwrap();

    let mut first = hf(3);
    let mut problem = two_layer_problem();
    let mut part = first.init(theta0);
    first.run(&mut problem, &mut part, &mut ()).unwrap();
    assert!(part.plugins.preconditioner.len() > 3, "the factors are plug-in state");
    // What a checkpoint does: to the host and JSON, and back, in a fresh optimizer.
    let saved = serde_json::to_string(&part.map_vectors(ParamVector::to_vec)).unwrap();
    let host: HfState<Vec<f64>> = serde_json::from_str(&saved).unwrap();
    let mut resumed = host.map_vectors(|v| vector(v.clone()));
    let mut second = hf(6);
    let mut problem = two_layer_problem();
    second.resume(&mut problem, &resumed).unwrap();
    second.run(&mut problem, &mut resumed, &mut ()).unwrap();
    assert_eq!(resumed.theta.to_vec(), state.theta.to_vec());
    assert_eq!(resumed.plugins, state.plugins);

    let mut bad = host.clone();
    bad.plugins.preconditioner.truncate(10);
    let e = hf(6).resume(&mut two_layer_problem(), &bad.map_vectors(|v| vector(v.clone())));
    assert!(e.unwrap_err().to_string().contains("K-FAC"));
}
