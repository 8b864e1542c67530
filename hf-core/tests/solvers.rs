//! CG and Lanczos against problems with known answers.

mod common;

use common::*;
use hf_core::{
    CgConfig, ConjugateGradient, CurvatureOperator, DenseOperator, Diagonal, Error, History, Lanczos, LanczosConfig,
    ProgressRule, QuadraticModel, Result, Solver, StorageSchedule, Termination,
};

fn strict_cg() -> ConjugateGradient {
    ConjugateGradient::new(CgConfig {
        max_iterations: 2000,
        // Disable the truncation rule to test CG as a linear solver.
        progress: ProgressRule {
            epsilon: 0.0,
            ..Default::default()
        },
        residual_tolerance: 1e-11,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn cg_matches_direct_solve_on_random_spd_systems() {
    let mut rng = Rng::new(7);
    for &n in &[1usize, 5, 30, 120] {
        for &condition in &[1.0, 1e2, 1e5] {
            let a = symmetric_with_spectrum(&geometric_spectrum(n, condition), &mut rng);
            let op = DenseOperator::new(a.clone(), n, 0.0).unwrap();
            let g = rng.normal_vec(n);
            let out = strict_cg().solve(&QuadraticModel::new(&op, &g), &mut ()).unwrap();
            let neg_g: Vec<f64> = g.iter().map(|x| -x).collect();
            let exact = dense_solve(&a, &neg_g);
            let err = norm(&sub(&out.step, &exact)) / norm(&exact);
            assert!(
                err < 1e-6 * condition.max(10.0),
                "n={n} κ={condition}: relative error {err}"
            );
            let residual = norm(&sub(&matvec(&a, &out.step), &neg_g)) / norm(&g);
            assert!(residual < 1e-7, "n={n} κ={condition}: residual {residual}");
            // At machine precision the progress rule may fire first (rounding makes q wiggle).
            assert_ne!(out.termination, Termination::MaxIterations);
            // q(p*) = −½ gᵀA⁻¹g.
            let q_exact = 0.5 * g.iter().zip(&exact).map(|(a, b)| a * b).sum::<f64>();
            assert!((out.model_value - q_exact).abs() <= 1e-8 * q_exact.abs());
        }
    }
}

#[test]
fn damping_shifts_the_solution() {
    let mut rng = Rng::new(3);
    let n = 20;
    let a = symmetric_with_spectrum(&geometric_spectrum(n, 50.0), &mut rng);
    let lambda = 0.7;
    let op = DenseOperator::new(a.clone(), n, lambda).unwrap();
    let g = rng.normal_vec(n);
    let out = strict_cg().solve(&QuadraticModel::new(&op, &g), &mut ()).unwrap();
    let mut damped = a.clone();
    for i in 0..n {
        damped[i * n + i] += lambda;
    }
    let exact = dense_solve(&damped, &g.iter().map(|x| -x).collect::<Vec<_>>());
    assert!(norm(&sub(&out.step, &exact)) < 1e-8 * norm(&exact));
}

#[test]
fn preconditioning_reduces_iterations_on_ill_conditioned_diagonal() {
    let n = 200;
    let mut rng = Rng::new(11);
    // Diagonal entries spread over six orders of magnitude, in random order.
    let d: Vec<f64> = (0..n).map(|_| 10f64.powf(6.0 * rng.uniform())).collect();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        a[i * n + i] = d[i];
    }
    let op = DenseOperator::new(a, n, 0.0).unwrap();
    let g = rng.normal_vec(n);
    let plain = strict_cg().solve(&QuadraticModel::new(&op, &g), &mut ()).unwrap();
    let precond = Diagonal::from_diagonal(&d, 0.0, 1.0).unwrap();
    let pre = strict_cg()
        .solve(&QuadraticModel::new(&op, &g).preconditioned(&precond), &mut ())
        .unwrap();
    assert!(
        pre.iterations <= 2,
        "exact diagonal preconditioner took {}",
        pre.iterations
    );
    assert!(plain.iterations > 50, "unpreconditioned took only {}", plain.iterations);
    // Martens' α = 0.75 still helps a lot.
    let partial = Diagonal::from_diagonal(&d, 0.0, 0.75).unwrap();
    let part = strict_cg()
        .solve(&QuadraticModel::new(&op, &g).preconditioned(&partial), &mut ())
        .unwrap();
    assert!(
        part.iterations < plain.iterations / 2,
        "{} vs {}",
        part.iterations,
        plain.iterations
    );
    let exact: Vec<f64> = g.iter().zip(&d).map(|(g, d)| -g / d).collect();
    assert!(norm(&sub(&pre.step, &exact)) < 1e-12 * norm(&exact));
    assert!(norm(&sub(&plain.step, &exact)) < 1e-4 * norm(&exact));
}

#[test]
fn warm_start_at_the_solution_needs_no_iterations() {
    let mut rng = Rng::new(5);
    let n = 15;
    let a = symmetric_with_spectrum(&geometric_spectrum(n, 10.0), &mut rng);
    let op = DenseOperator::new(a.clone(), n, 0.0).unwrap();
    let g = rng.normal_vec(n);
    let exact = dense_solve(&a, &g.iter().map(|x| -x).collect::<Vec<_>>());
    let out = strict_cg()
        .solve(&QuadraticModel::new(&op, &g).warm_start(&exact), &mut ())
        .unwrap();
    assert_eq!(out.iterations, 0);
    assert_eq!(out.termination, Termination::Converged);
    assert_eq!(out.products, 1);
    // A warm start part-way there takes fewer iterations than a cold one.
    let half: Vec<f64> = exact.iter().map(|x| 0.9 * x).collect();
    let cold = strict_cg().solve(&QuadraticModel::new(&op, &g), &mut ()).unwrap();
    let warm = strict_cg()
        .solve(&QuadraticModel::new(&op, &g).warm_start(&half), &mut ())
        .unwrap();
    assert!(norm(&sub(&warm.step, &exact)) < 1e-8 * norm(&exact));
    assert!(warm.products <= cold.products + 1);
}

#[test]
fn cg_reports_non_positive_curvature() {
    let op = DenseOperator::new(vec![1.0, 0.0, 0.0, -1.0], 2, 0.0).unwrap();
    let g = vec![0.0, 1.0];
    let out = ConjugateGradient::default()
        .solve(&QuadraticModel::new(&op, &g), &mut ())
        .unwrap();
    assert_eq!(out.termination, Termination::NonPositiveCurvature);
    assert_eq!(out.iterations, 0);
    assert!(out.step.iter().all(|x| *x == 0.0));
}

struct NanOperator;

impl CurvatureOperator<Vec<f64>> for NanOperator {
    fn dim(&self) -> usize {
        2
    }
    fn damping(&self) -> f64 {
        0.0
    }
    fn apply(&self, _v: &Vec<f64>) -> Result<Vec<f64>> {
        Ok(vec![f64::NAN, 1.0])
    }
}

#[test]
fn non_finite_products_are_typed_errors() {
    let g = vec![1.0, 1.0];
    let err = ConjugateGradient::default()
        .solve(&QuadraticModel::new(&NanOperator, &g), &mut ())
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    let err = Lanczos::default()
        .solve(&QuadraticModel::new(&NanOperator, &g), &mut ())
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    let op = DenseOperator::new(vec![1.0; 4], 2, 0.0).unwrap();
    let err = ConjugateGradient::default()
        .solve(&QuadraticModel::new(&op, &vec![1.0; 3]), &mut ())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::DimensionMismatch {
            expected: 2,
            found: 3,
            ..
        }
    ));
}

#[test]
fn progress_rule_on_crafted_sequences() {
    let rule = ProgressRule::default();
    // Window: k = max(10, ⌈0.1 i⌉).
    assert_eq!(rule.window(5), 10);
    assert_eq!(rule.window(100), 10);
    assert_eq!(rule.window(101), 11);
    assert_eq!(rule.window(250), 25);
    // Never before i > k.
    let flat = vec![-1.0; 30];
    assert!(!rule.should_stop(&flat, 10));
    assert!(rule.should_stop(&flat, 11));
    // Never while q ≥ 0.
    let positive = vec![1.0; 30];
    assert!(!rule.should_stop(&positive, 20));
    // Still improving by more than kε relative over the window: go on.
    // q_i = −i: (q_20 − q_10)/q_20 = 0.5 > 10 · 5e-4.
    let linear: Vec<f64> = (0..=20).map(|i| -(i as f64)).collect();
    assert!(!rule.should_stop(&linear, 20));
    // Just below and just above the threshold kε = 0.005.
    let mut seq = vec![-1.0; 21];
    seq[20] = -1.0 / (1.0 - 0.0049);
    assert!(rule.should_stop(&seq, 20));
    seq[20] = -1.0 / (1.0 - 0.0051);
    assert!(!rule.should_stop(&seq, 20));
}

#[test]
fn storage_schedule_is_ceil_of_powers() {
    let got: Vec<usize> = StorageSchedule::new(1.3).take_while(|&i| i <= 60).collect();
    let mut want: Vec<usize> = (0..40)
        .map(|j| 1.3f64.powi(j).ceil() as usize)
        .filter(|&i| i <= 60)
        .collect();
    want.dedup();
    assert_eq!(got, want);
    assert_eq!(got, vec![1, 2, 3, 4, 5, 7, 9, 11, 14, 18, 24, 31, 40, 52]);
}

#[test]
fn cg_stores_iterates_on_the_schedule_and_the_last() {
    let mut rng = Rng::new(9);
    let n = 60;
    let a = symmetric_with_spectrum(&geometric_spectrum(n, 1e4), &mut rng);
    let op = DenseOperator::new(a, n, 0.0).unwrap();
    let g = rng.normal_vec(n);
    let mut cg = ConjugateGradient::new(CgConfig {
        max_iterations: 23,
        progress: ProgressRule {
            epsilon: 0.0,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let mut history = History::default();
    let out = cg.solve(&QuadraticModel::new(&op, &g), &mut history).unwrap();
    assert_eq!(out.termination, Termination::MaxIterations);
    let stored: Vec<usize> = out.iterates.iter().map(|it| it.iteration).collect();
    assert_eq!(stored, vec![1, 2, 3, 4, 5, 7, 9, 11, 14, 18, 23]);
    // Each stored model value is the observer's, and q decreases monotonically in CG.
    for it in &out.iterates {
        let rec = &history.solver_iterations[it.iteration - 1];
        assert_eq!(rec.model_value, it.model_value);
        let q = 0.5
            * it.step
                .iter()
                .zip(&matvec(op.matrix(), &it.step))
                .map(|(a, b)| a * b)
                .sum::<f64>()
            + it.step.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>();
        assert!((q - it.model_value).abs() < 1e-9 * q.abs());
    }
    assert!(history
        .solver_iterations
        .windows(2)
        .all(|w| w[1].model_value <= w[0].model_value));
}

#[test]
fn cg_truncates_with_the_progress_rule() {
    let mut rng = Rng::new(13);
    let n = 300;
    let a = symmetric_with_spectrum(&geometric_spectrum(n, 1e3), &mut rng);
    let op = DenseOperator::new(a, n, 0.0).unwrap();
    let g = rng.normal_vec(n);
    let mut history = History::default();
    let out = ConjugateGradient::default()
        .solve(&QuadraticModel::new(&op, &g), &mut history)
        .unwrap();
    assert_eq!(out.termination, Termination::RelativeProgress);
    let q: Vec<f64> = std::iter::once(0.0)
        .chain(history.solver_iterations.iter().map(|r| r.model_value))
        .collect();
    let rule = ProgressRule::default();
    assert!(rule.should_stop(&q, out.iterations));
    assert!((1..out.iterations).all(|i| !rule.should_stop(&q, i)));
}

#[test]
fn lanczos_estimates_extreme_eigenvalues() {
    let mut rng = Rng::new(21);
    for &(n, lo, hi) in &[(50usize, 0.5, 40.0), (200, -3.0, 7.0)] {
        // Random spectrum with known extremes.
        let mut eig: Vec<f64> = (0..n).map(|_| lo + (hi - lo) * rng.uniform()).collect();
        eig[0] = lo;
        eig[1] = hi;
        let a = symmetric_with_spectrum(&eig, &mut rng);
        let op = DenseOperator::new(a, n, 0.0).unwrap();
        let g = rng.normal_vec(n);
        let mut lanczos = Lanczos::new(LanczosConfig {
            max_iterations: 80,
            residual_tolerance: 0.0,
            reorthogonalize: true,
        })
        .unwrap();
        let out = lanczos
            .solve(&QuadraticModel::new(&op, &g).within(1.0), &mut ())
            .unwrap();
        let s = out.spectrum.unwrap();
        assert!((s.min - lo).abs() < 1e-3 * (hi - lo), "min {} vs {lo}", s.min);
        assert!((s.max - hi).abs() < 1e-3 * (hi - lo), "max {} vs {hi}", s.max);
        // Ritz values lie inside the spectrum.
        assert!(s.min >= lo - 1e-9 && s.max <= hi + 1e-9);
    }
}

#[test]
fn lanczos_estimates_the_preconditioned_spectrum() {
    // A = diag(d); with M = diag(d) the preconditioned operator is the identity.
    let d: Vec<f64> = (1..=30).map(|i| (i * i) as f64).collect();
    let mut a = vec![0.0; 900];
    for i in 0..30 {
        a[i * 30 + i] = d[i];
    }
    let op = DenseOperator::new(a, 30, 0.0).unwrap();
    let g: Vec<f64> = (0..30).map(|i| 1.0 + i as f64).collect();
    let m = Diagonal::from_diagonal(&d, 0.0, 1.0).unwrap();
    let out = Lanczos::default()
        .solve(&QuadraticModel::new(&op, &g).preconditioned(&m), &mut ())
        .unwrap();
    let s = out.spectrum.unwrap();
    assert!((s.min - 1.0).abs() < 1e-10 && (s.max - 1.0).abs() < 1e-10);
    assert_eq!(out.iterations, 1);
    for i in 0..30 {
        assert!((out.step[i] + g[i] / d[i]).abs() < 1e-10);
    }
}

#[test]
fn lanczos_without_radius_matches_cg() {
    let mut rng = Rng::new(17);
    let n = 40;
    let a = symmetric_with_spectrum(&geometric_spectrum(n, 100.0), &mut rng);
    let op = DenseOperator::new(a.clone(), n, 0.0).unwrap();
    let g = rng.normal_vec(n);
    let mut lanczos = Lanczos::new(LanczosConfig {
        residual_tolerance: 1e-10,
        reorthogonalize: true,
        ..Default::default()
    })
    .unwrap();
    let out = lanczos.solve(&QuadraticModel::new(&op, &g), &mut ()).unwrap();
    let exact = dense_solve(&a, &g.iter().map(|x| -x).collect::<Vec<_>>());
    assert_eq!(out.termination, Termination::Converged);
    assert!(norm(&sub(&out.step, &exact)) < 1e-7 * norm(&exact));
}

#[test]
fn trust_region_steps_on_indefinite_quadratics() {
    let mut rng = Rng::new(31);
    for &n in &[3usize, 25, 100] {
        let eig: Vec<f64> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    -1.0 - rng.uniform()
                } else {
                    0.1 + 5.0 * rng.uniform()
                }
            })
            .collect();
        let a = symmetric_with_spectrum(&eig, &mut rng);
        let op = DenseOperator::new(a.clone(), n, 0.0).unwrap();
        let g = rng.normal_vec(n);
        for &radius in &[0.01, 0.5, 3.0] {
            let out = Lanczos::new(LanczosConfig {
                reorthogonalize: true,
                ..Default::default()
            })
            .unwrap()
            .solve(&QuadraticModel::new(&op, &g).within(radius), &mut ())
            .unwrap();
            let pn = norm(&out.step);
            // Negative curvature: the minimizer is on the boundary.
            assert!((pn - radius).abs() < 1e-6 * radius, "n={n} Δ={radius}: ‖p‖={pn}");
            let ap = matvec(&a, &out.step);
            let q = 0.5 * out.step.iter().zip(&ap).map(|(x, y)| x * y).sum::<f64>()
                + out.step.iter().zip(&g).map(|(x, y)| x * y).sum::<f64>();
            assert!((q - out.model_value).abs() < 1e-8 * q.abs().max(1e-12));
            // Better than the Cauchy point (steepest descent to the boundary), which is
            // itself a decrease.
            let gn = norm(&g);
            let cauchy: Vec<f64> = g.iter().map(|x| -radius * x / gn).collect();
            let ac = matvec(&a, &cauchy);
            let q_cauchy = 0.5 * cauchy.iter().zip(&ac).map(|(x, y)| x * y).sum::<f64>()
                + cauchy.iter().zip(&g).map(|(x, y)| x * y).sum::<f64>();
            assert!(q < 0.0 && q <= q_cauchy + 1e-10, "q {q} vs Cauchy {q_cauchy}");
        }
    }
}

#[test]
fn invalid_solver_configs_are_rejected() {
    let e = ConjugateGradient::new(CgConfig {
        max_iterations: 0,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.field, "cg.max_iterations");
    let e = ConjugateGradient::new(CgConfig {
        storage_ratio: 1.0,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.field, "cg.storage_ratio");
    let e = Lanczos::new(LanczosConfig {
        residual_tolerance: f64::NAN,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(e.field, "lanczos.residual_tolerance");
    let op = DenseOperator::new(vec![1.0], 1, 0.0).unwrap();
    let err = Lanczos::default()
        .solve(&QuadraticModel::new(&op, &vec![1.0]).within(-1.0), &mut ())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { name: "radius", .. }));
}
