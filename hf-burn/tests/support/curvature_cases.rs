// The curvature-product checks, included once per backend module.

use hf_burn::{CurvatureKind, CurvatureProduct, Loss, StructuralDamping};
use hf_core::{CurvatureOperator, Vector};

const LOSSES: [(&str, Loss); 3] = [
    ("squared", Loss::SquaredError),
    ("logistic", Loss::LogisticCrossEntropy),
    ("softmax", Loss::SoftmaxCrossEntropy),
];

fn gn_check<N: Network<D>, const D: usize>(net: N, batch: impl Fn(&str, &mut Rng) -> DataBatch<TestBackend, D>) {
    let mut rng = Rng(42);
    for (kind, loss) in LOSSES {
        let ev = Evaluator::with_jvp(net.clone(), loss, TestJvp::default(), &device()).unwrap();
        let b = batch(kind, &mut rng);
        let theta = random_theta(&ev, &mut rng);
        let p = theta.len();
        let (rz, _, jz, _) = fd_jacobian(&ev, &theta, &b.input);
        let z = host(ev.outputs(&vector(theta.clone()), b.input.clone()).unwrap().z);
        let op = CurvatureProduct::new(&ev, vector(theta.clone()), b.clone(), CurvatureKind::GaussNewton, 0.0).unwrap();
        for _ in 0..3 {
            let v = rng.normals(p, 1.0);
            let got = op.apply(&vector(v.clone())).unwrap().to_vec();
            let want = explicit_gn_product(kind, &z, &jz, 2, p, b.target.dims()[0], &v);
            let e = rel_err(&got, &want);
            assert!(e < 1e-6, "{kind}: G v relative error {e}");
        }
        assert_eq!(rz, b.target.dims()[0] * 2);
        assert_eq!(b.target.dims()[0], b.len() * b.rows_per_case());
    }
}

#[test]
fn gauss_newton_matches_explicit_jacobian_on_mlp() {
    gn_check(MlpSpec, |k, r| mlp_batch(5, k, r));
}

#[test]
fn gauss_newton_matches_explicit_jacobian_on_rnn() {
    // The objective averages over the 2·N output rows of the RNN (two outputs per sequence).
    gn_check(RnnSpec, |k, r| rnn_batch(3, 4, k, r));
}

fn hv_check<N: Network<D>, const D: usize>(net: N, batch: impl Fn(&str, &mut Rng) -> DataBatch<TestBackend, D>) {
    let mut rng = Rng(7);
    for (kind, loss) in LOSSES {
        let ev = Evaluator::with_jvp(net.clone(), loss, TestJvp::default(), &device()).unwrap();
        let b = batch(kind, &mut rng);
        let theta = random_theta(&ev, &mut rng);
        let v = rng.normals(theta.len(), 1.0);
        let op = CurvatureProduct::new(&ev, vector(theta.clone()), b.clone(), CurvatureKind::Hessian, 0.0).unwrap();
        let got = op.apply(&vector(v.clone())).unwrap().to_vec();
        // Central differences of the gradient along v.
        let h = 1e-5;
        let grad_at = |s: f64| {
            let th: Vec<f64> = theta.iter().zip(&v).map(|(t, d)| t + s * d).collect();
            ev.gradient(&vector(th), &b).unwrap().1.to_vec()
        };
        let (gp, gm) = (grad_at(h), grad_at(-h));
        let want: Vec<f64> = gp.iter().zip(&gm).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        let e = rel_err(&got, &want);
        assert!(e < 1e-6, "{kind}: H v relative error {e}");
    }
}

#[test]
fn hessian_matches_finite_differences_of_gradients_on_mlp() {
    hv_check(MlpSpec, |k, r| mlp_batch(5, k, r));
}

#[test]
fn hessian_matches_finite_differences_of_gradients_on_rnn() {
    hv_check(RnnSpec, |k, r| rnn_batch(3, 4, k, r));
}

#[test]
fn gradient_matches_finite_differences() {
    let mut rng = Rng(3);
    for (kind, loss) in LOSSES {
        let ev = Evaluator::with_jvp(MlpSpec, loss, TestJvp::default(), &device()).unwrap();
        let b = mlp_batch(4, kind, &mut rng);
        let theta = random_theta(&ev, &mut rng);
        let (f, g) = ev.gradient(&vector(theta.clone()), &b).unwrap();
        assert!((f - ev.objective(&vector(theta.clone()), &b).unwrap()).abs() < 1e-14);
        let h = 1e-6;
        let fd: Vec<f64> = (0..theta.len())
            .map(|k| {
                let mut p = theta.clone();
                p[k] += h;
                let mut m = theta.clone();
                m[k] -= h;
                (ev.objective(&vector(p), &b).unwrap() - ev.objective(&vector(m), &b).unwrap()) / (2.0 * h)
            })
            .collect();
        assert!(rel_err(&g.to_vec(), &fd) < 1e-7, "{kind}");
    }
}

#[test]
fn gauss_newton_is_symmetric_psd_and_damped() {
    let mut rng = Rng(11);
    for (kind, loss) in LOSSES {
        let ev = Evaluator::with_jvp(RnnSpec, loss, TestJvp::default(), &device()).unwrap();
        let b = rnn_batch(4, 5, kind, &mut rng);
        let theta = random_theta(&ev, &mut rng);
        let lambda = 0.3;
        let op = CurvatureProduct::new(&ev, vector(theta.clone()), b, CurvatureKind::GaussNewton, lambda).unwrap();
        for _ in 0..4 {
            let u = vector(rng.normals(theta.len(), 1.0));
            let v = vector(rng.normals(theta.len(), 1.0));
            let gu = op.apply(&u).unwrap();
            let gv = op.apply(&v).unwrap();
            let (ugv, vgu) = (u.dot(&gv), v.dot(&gu));
            assert!((ugv - vgu).abs() < 1e-12 * ugv.abs().max(1.0), "{kind}: {ugv} vs {vgu}");
            let vgv = v.dot(&gv);
            let vv = v.dot(&v);
            assert!(vgv >= lambda * vv * (1.0 - 1e-12), "{kind}: vᵀ(G+λI)v = {vgv} < λ‖v‖² = {}", lambda * vv);
            let undamped = op.curvature_product(&v).unwrap().dot(&v);
            assert!(undamped >= -1e-12, "{kind}: vᵀGv = {undamped}");
        }
    }
}

#[test]
fn empirical_fisher_matches_per_case_gradient_outer_products() {
    let mut rng = Rng(5);
    for (kind, loss) in LOSSES {
        let ev = Evaluator::with_jvp(MlpSpec, loss, TestJvp::default(), &device()).unwrap();
        let b = mlp_batch(6, kind, &mut rng);
        let theta = random_theta(&ev, &mut rng);
        let th = vector(theta.clone());
        let per_case = ev.per_case_gradients(&th, &b, 0..b.len()).unwrap();
        let v = rng.normals(theta.len(), 1.0);
        let mut want = vec![0.0; theta.len()];
        for g in &per_case {
            let g = g.to_vec();
            let gv = dot(&g, &v);
            for (w, gi) in want.iter_mut().zip(&g) {
                *w += gi * gv / b.len() as f64;
            }
        }
        let op = CurvatureProduct::new(&ev, th, b, CurvatureKind::EmpiricalFisher, 0.0).unwrap();
        let got = op.apply(&vector(v)).unwrap().to_vec();
        assert!(rel_err(&got, &want) < 1e-10, "{kind}: {}", rel_err(&got, &want));
    }
}

#[test]
fn structural_damping_adds_the_hidden_state_term() {
    let mut rng = Rng(13);
    let ev = Evaluator::with_jvp(RnnSpec, Loss::SquaredError, TestJvp::default(), &device()).unwrap();
    let b = rnn_batch(3, 4, "squared", &mut rng);
    let theta = random_theta(&ev, &mut rng);
    let p = theta.len();
    let (_, rh, jz, jh) = fd_jacobian(&ev, &theta, &b.input);
    let at_theta = ev.outputs(&vector(theta.clone()), b.input.clone()).unwrap();
    let z = host(at_theta.z);
    let states = host(at_theta.hidden.expect("the RNN exposes its hidden states"));
    assert_eq!(states.len(), rh);
    let (lambda, mu) = (0.7, 0.03);
    let v = rng.normals(p, 1.0);
    let gn = explicit_gn_product("squared", &z, &jz, 2, p, b.target.dims()[0], &v);
    let jsv: Vec<f64> = (0..rh).map(|r| (0..p).map(|c| jh[r * p + c] * v[c]).sum()).collect();
    // μλ J_Sᵀ D_S J_S v / R over the R output rows, the count the objective is averaged
    // over (not the cases × steps hidden rows): μ then means the same at every length.
    let output_rows = b.target.dims()[0];
    assert_ne!(output_rows, rh / 3, "the test must tell the two counts apart");
    let weight = mu * lambda / output_rows as f64;
    // D_S: the identity for squared error; for the tanh units' matching loss
    // diag(1 − h²) on the units' inputs, which is diag(1/(1 − h²)) on the states.
    let matching: Vec<f64> = states.iter().map(|h| 1.0 / (1.0 - h * h)).collect();
    assert!(matching.iter().any(|d| *d > 1.2), "some units must be off their linear range");
    for (sd, metric) in [
        (StructuralDamping::squared_error(mu), vec![1.0; rh]),
        (StructuralDamping::tanh_matching(mu), matching),
    ] {
        let op = CurvatureProduct::new(&ev, vector(theta.clone()), b.clone(), CurvatureKind::GaussNewton, lambda)
            .unwrap()
            .with_structural_damping(sd);
        let got = op.apply(&vector(v.clone())).unwrap().to_vec();
        let want: Vec<f64> = (0..p)
            .map(|c| {
                let term = (0..rh).map(|r| jh[r * p + c] * metric[r] * jsv[r]).sum::<f64>() * weight;
                gn[c] + term + lambda * v[c]
            })
            .collect();
        assert!(rel_err(&got, &want) < 1e-6, "{sd:?}: {}", rel_err(&got, &want));

        // What ρ's undamped model leaves out: λ‖v‖² + μλ ⟨J_S v, D_S J_S v⟩ / R.
        let energy = hf_core::CurvatureOperator::damping_energy(&op, &vector(v.clone())).unwrap();
        let want_energy = lambda * v.iter().map(|x| x * x).sum::<f64>()
            + weight * jsv.iter().zip(&metric).map(|(x, d)| d * x * x).sum::<f64>();
        assert!(
            (energy - want_energy).abs() < 1e-6 * want_energy,
            "{sd:?}: {energy} vs {want_energy}"
        );
    }
}

#[test]
fn loss_hessians_match_finite_differences_of_output_gradients() {
    let mut rng = Rng(17);
    for (kind, loss) in LOSSES {
        let (n, k) = (4, 3);
        let z = rng.normals(n * k, 1.5);
        let t = targets(kind, n, k, &mut rng);
        let u = rng.normals(n * k, 1.0);
        let got = host(loss.hessian_product(tensor(z.clone(), [n, k]), tensor(u.clone(), [n, k])));
        let h = 1e-6;
        let grad = |s: f64| {
            let zs: Vec<f64> = z.iter().zip(&u).map(|(a, b)| a + s * b).collect();
            host(loss.output_gradient(tensor(zs, [n, k]), tensor(t.clone(), [n, k])))
        };
        let (gp, gm) = (grad(h), grad(-h));
        let want: Vec<f64> = gp.iter().zip(&gm).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        assert!(rel_err(&got, &want) < 1e-7, "{kind}");
        // The square-root factor: S Sᵀ = H, column by column from S applied to unit vectors.
        for j in 0..k {
            let e: Vec<f64> = (0..n * k).map(|q| if q % k == j { 1.0 } else { 0.0 }).collect();
            let he = host(loss.hessian_product(tensor(z.clone(), [n, k]), tensor(e.clone(), [n, k])));
            let mut sst = vec![0.0; n * k];
            for a in 0..k {
                let ea: Vec<f64> = (0..n * k).map(|q| if q % k == a { 1.0 } else { 0.0 }).collect();
                let sa = host(loss.hessian_sqrt_product(tensor(z.clone(), [n, k]), tensor(ea, [n, k])));
                // Column a of S is sa; (S Sᵀ)_{·j} = Σ_a S_{·a} S_{ja}.
                for i in 0..n {
                    for r in 0..k {
                        sst[i * k + r] += sa[i * k + r] * sa[i * k + j];
                    }
                }
            }
            assert!(rel_err(&sst, &he) < 1e-12, "{kind}: S Sᵀ ≠ H");
        }
    }
}

#[test]
fn loss_values_match_their_definitions() {
    let z = tensor(vec![0.3, -1.2, 2.0, 0.1], [2, 2]);
    let t = tensor(vec![1.0, 0.0, 0.25, 0.75], [2, 2]);
    let sq = host(Loss::SquaredError.per_case(z.clone(), t.clone()));
    assert!((sq[0] - 0.5 * (0.7f64.powi(2) + 1.2f64.powi(2))).abs() < 1e-15);
    let ce = host(Loss::LogisticCrossEntropy.per_case(z.clone(), t.clone()));
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    let want = -(0.25 * s(2.0).ln() + 0.75 * (1.0 - s(2.0)).ln() + 0.75 * s(0.1).ln() + 0.25 * (1.0 - s(0.1)).ln());
    assert!((ce[1] - want).abs() < 1e-14);
    let sm = host(Loss::SoftmaxCrossEntropy.per_case(z, t));
    let lse = (0.3f64.exp() + (-1.2f64).exp()).ln();
    assert!((sm[0] - (lse - 0.3)).abs() < 1e-14);
}

#[test]
fn parameter_vectors_round_trip_and_report_shape_mismatches() {
    let ev = Evaluator::with_jvp(MlpSpec, Loss::SquaredError, TestJvp::default(), &device()).unwrap();
    let module = MlpSpec.init::<TestBackend>(&device());
    // Through the host, so that the vector is f64 on every backend.
    let theta = vector(ParamVector::from_module(&module).unwrap().to_vec());
    assert_eq!(theta.len(), ev.num_params());
    assert_eq!(ev.num_params(), 3 * 4 + 4 + 4 * 3 + 3 + 3 * 2 + 2);
    let doubled = vector(theta.to_vec().iter().map(|x| 2.0 * x).collect());
    let back = doubled.to_module(module).unwrap();
    assert_eq!(ParamVector::from_module(&back).unwrap().to_vec(), doubled.to_vec());
    assert_eq!(ev.num_params(), 39);
    let err = vector(vec![0.0; 5]).to_module(MlpSpec.init::<TestBackend>(&device())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("5 entries") && msg.contains("39") && msg.contains("[3, 4]"), "{msg}");
    let b = mlp_batch(2, "squared", &mut Rng(1));
    assert!(ev.objective(&vector(vec![0.0; 5]), &b).is_err());
    let op = CurvatureProduct::new(&ev, theta.clone(), b, CurvatureKind::GaussNewton, 0.0).unwrap();
    assert!(matches!(
        op.apply(&vector(vec![0.0; 3])),
        Err(hf_core::Error::DimensionMismatch { expected: 39, found: 3, .. })
    ));
}

#[test]
fn mismatched_targets_are_typed_errors() {
    let ev = Evaluator::with_jvp(MlpSpec, Loss::SquaredError, TestJvp::default(), &device()).unwrap();
    let theta = vector(random_theta(&ev, &mut Rng(2)));
    let x = tensor(vec![0.0; 6], [2, 3]);
    let bad = DataBatch::new(x.clone(), tensor(vec![0.0; 6], [2, 3])).unwrap();
    let err = ev.objective(&theta, &bad).unwrap_err();
    assert!(err.to_string().contains("[2, 2]") && err.to_string().contains("[2, 3]"), "{err}");
    assert!(DataBatch::new(x.clone(), tensor(vec![0.0; 6], [3, 2])).is_err());
    assert!(DataBatch::new(x, tensor(vec![0.0; 8], [4, 2])).is_ok());
}


#[test]
fn squared_gradient_diagonal_matches_finite_difference_per_case_gradients() {
    let mut rng = Rng(23);
    for (kind, loss) in LOSSES {
        let ev = Evaluator::with_jvp(MlpSpec, loss, TestJvp::default(), &device()).unwrap();
        let b = mlp_batch(5, kind, &mut rng);
        let theta = random_theta(&ev, &mut rng);
        // MlpSpec reports its layers: this is the one-pass diagonal.
        let got = ev.squared_gradient_diagonal(&vector(theta.clone()), &b.slice(0..4)).unwrap().to_vec();
        // Reference: each of the first 4 cases alone, its gradient by central differences.
        let h = 1e-6;
        let mut want = vec![0.0; theta.len()];
        for i in 0..4 {
            let one = b.slice(i..i + 1);
            for k in 0..theta.len() {
                let mut p = theta.clone();
                p[k] += h;
                let mut m = theta.clone();
                m[k] -= h;
                let g = (ev.objective(&vector(p), &one).unwrap() - ev.objective(&vector(m), &one).unwrap()) / (2.0 * h);
                want[k] += g * g / 4.0;
            }
        }
        assert!(rel_err(&got, &want) < 1e-6, "{kind}: {}", rel_err(&got, &want));
    }
}

fn one_pass_check<N: Network<D>, const D: usize>(net: N, batch: impl Fn(&str, &mut Rng) -> DataBatch<TestBackend, D>) {
    let mut rng = Rng(31);
    for (kind, loss) in LOSSES {
        let ev = Evaluator::with_jvp(net.clone(), loss, TestJvp::default(), &device()).unwrap();
        let b = batch(kind, &mut rng);
        let theta = vector(random_theta(&ev, &mut rng));
        let one_pass = ev.one_pass_squared_gradient_diagonal(&theta, &b).unwrap().expect("the network reports its layers");
        let per_case = ev.per_case_squared_gradient_diagonal(&theta, &b).unwrap().to_vec();
        let e = rel_err(&one_pass.to_vec(), &per_case);
        assert!(e < 1e-10, "{kind}: one pass against the per-case loop, relative error {e}");
    }
}

#[test]
fn one_pass_squared_gradients_match_the_per_case_loop_on_mlp() {
    one_pass_check(MlpSpec, |k, r| mlp_batch(6, k, r));
}

#[test]
fn one_pass_squared_gradients_match_the_per_case_loop_on_rnn() {
    // Weights shared over 4 steps and outputs at 2 of them: per-case sums before squaring.
    one_pass_check(RnnSpec, |k, r| rnn_batch(5, 4, k, r));
}

#[test]
fn one_pass_squared_gradients_refuse_a_network_with_an_unreported_parameter() {
    let mut rng = Rng(37);
    let ev = Evaluator::with_jvp(HalfTappedMlpSpec, Loss::SquaredError, TestJvp::default(), &device()).unwrap();
    let b = mlp_batch(4, "squared", &mut rng);
    let theta = vector(random_theta(&ev, &mut rng));
    assert!(ev.one_pass_squared_gradient_diagonal(&theta, &b).unwrap().is_none());
    // The estimator falls back to the per-case loop and still gets it right.
    let got = ev.squared_gradient_diagonal(&theta, &b).unwrap().to_vec();
    let want = ev.per_case_squared_gradient_diagonal(&theta, &b).unwrap().to_vec();
    assert!(rel_err(&got, &want) < 1e-12);
}

#[test]
fn squared_gradient_estimator_draws_a_fresh_subset_each_iteration() {
    let mut rng = Rng(41);
    let ev = Evaluator::with_jvp(MlpSpec, Loss::SquaredError, TestJvp::default(), &device()).unwrap();
    let b = mlp_batch(12, "squared", &mut rng);
    let theta = vector(random_theta(&ev, &mut rng));
    let est = hf_burn::DiagonalEstimator::SquaredGradients { max_cases: 4 };
    let draw = |d: u64| ev.diagonal(est, &theta, &b, d).unwrap().unwrap().to_vec();
    assert_eq!(draw(1), draw(1), "the same draw gives the same subset");
    assert!(rel_err(&draw(1), &draw(2)) > 1e-6, "another draw gives other cases");
    // Covering the batch: all cases, whatever the draw.
    let all = hf_burn::DiagonalEstimator::SquaredGradients { max_cases: 12 };
    let whole = ev.per_case_squared_gradient_diagonal(&theta, &b).unwrap().to_vec();
    assert!(rel_err(&ev.diagonal(all, &theta, &b, 5).unwrap().unwrap().to_vec(), &whole) < 1e-10);
}

/// diag(G) from the explicit Jacobian.
fn explicit_gn_diagonal(kind: &str, z: &[f64], jz: &[f64], p: usize) -> Vec<f64> {
    let rows = z.len() / 2;
    (0..p)
        .map(|c| {
            let mut e = vec![0.0; p];
            e[c] = 1.0;
            explicit_gn_product(kind, z, jz, 2, p, rows, &e)[c]
        })
        .collect()
}

#[test]
fn chapelle_erhan_diagonal_is_exact_for_one_output_row_and_unbiased_otherwise() {
    let mut rng = Rng(29);
    for (kind, loss) in LOSSES {
        let ev = Evaluator::with_jvp(MlpSpec, loss, TestJvp::default(), &device()).unwrap();
        let theta = random_theta(&ev, &mut rng);
        let p = theta.len();
        // One case with two outputs: (Jᵀ S v)² still has a cross term between the outputs,
        // zero in expectation over the signs; 400 samples estimate within 10%.
        let b = mlp_batch(1, kind, &mut rng);
        let (_, _, jz, _) = fd_jacobian(&ev, &theta, &b.input);
        let z = host(ev.outputs(&vector(theta.clone()), b.input.clone()).unwrap().z);
        let want = explicit_gn_diagonal(kind, &z, &jz, p);
        let got = ev.chapelle_erhan_diagonal(&vector(theta.clone()), &b, 400, 1).unwrap().to_vec();
        assert!(rel_err(&got, &want) < 0.1, "{kind}: {}", rel_err(&got, &want));
        // Many cases: the estimate converges to diag(G) as samples grow.
        let b = mlp_batch(8, kind, &mut rng);
        let (_, _, jz, _) = fd_jacobian(&ev, &theta, &b.input);
        let z = host(ev.outputs(&vector(theta.clone()), b.input.clone()).unwrap().z);
        let want = explicit_gn_diagonal(kind, &z, &jz, p);
        let few = rel_err(&ev.chapelle_erhan_diagonal(&vector(theta.clone()), &b, 20, 2).unwrap().to_vec(), &want);
        let many = rel_err(&ev.chapelle_erhan_diagonal(&vector(theta.clone()), &b, 2000, 3).unwrap().to_vec(), &want);
        assert!(many < 0.1 && many < few, "{kind}: error {many} with 2000 samples vs {few} with 20");
    }
}

#[test]
fn chapelle_erhan_is_exact_for_a_single_output() {
    // One case, one output: (J S v)² = J² H for v = ±1, exactly.
    #[derive(Clone, Debug)]
    struct OneOut;
    impl Network<2> for OneOut {
        type Module<B: Backend> = Mlp<B>;
        fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
            MlpSpec.init(device)
        }
        fn forward<B: Backend>(&self, m: &Mlp<B>, x: Tensor<B, 2>) -> hf_burn::Outputs<B> {
            let z = MlpSpec.forward(m, x).z;
            hf_burn::Outputs::new(z.slice([0..1, 0..1]))
        }
    }
    let mut rng = Rng(31);
    let ev = Evaluator::with_jvp(OneOut, Loss::LogisticCrossEntropy, TestJvp::default(), &device()).unwrap();
    let theta = random_theta(&ev, &mut rng);
    let x = tensor(rng.normals(3, 1.0), [1, 3]);
    let b = DataBatch::new(x, tensor(vec![0.3], [1, 1])).unwrap();
    let (_, _, jz, _) = fd_jacobian(&ev, &theta, &b.input);
    let z = host(ev.outputs(&vector(theta.clone()), b.input.clone()).unwrap().z);
    let hz = output_hessian("logistic", &z)[0];
    let want: Vec<f64> = jz.iter().map(|j| j * j * hz).collect();
    let got = ev.chapelle_erhan_diagonal(&vector(theta), &b, 1, 5).unwrap().to_vec();
    assert!(rel_err(&got, &want) < 1e-8, "{}", rel_err(&got, &want));
}

#[test]
fn burn_linear_forward_works_forward_and_is_a_typed_error_by_double_backward() {
    #[derive(Clone, Debug)]
    struct FusedLinear;
    impl Network<2> for FusedLinear {
        type Module<B: Backend> = burn::nn::Linear<B>;
        fn init<B: Backend>(&self, device: &B::Device) -> burn::nn::Linear<B> {
            burn::nn::LinearConfig::new(3, 2).init(device)
        }
        fn forward<B: Backend>(&self, m: &burn::nn::Linear<B>, x: Tensor<B, 2>) -> hf_burn::Outputs<B> {
            hf_burn::Outputs::new(m.forward(x))
        }
    }
    let ev = Evaluator::with_jvp(FusedLinear, Loss::SquaredError, TestJvp::default(), &device()).unwrap();
    let b = mlp_batch(2, "squared", &mut Rng(3));
    let theta = vector(vec![0.1; 8]);
    // First-order work is fine…
    assert!(ev.gradient(&theta, &b).is_ok());
    // …and curvature products work in forward mode, while double backward reports
    // what to do instead of crashing.
    let op = CurvatureProduct::new(&ev, theta.clone(), b, CurvatureKind::GaussNewton, 0.0).unwrap();
    match TestJvp::default().name() {
        "forward" => assert!(op.apply(&theta).is_ok()),
        _ => {
            let err = op.apply(&theta).unwrap_err().to_string();
            assert!(err.contains("hf_burn::nn::linear"), "{err}");
        }
    }
}
