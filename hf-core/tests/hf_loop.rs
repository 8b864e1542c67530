//! The whole HF loop on problems with known minima.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::Rng;
use hf_core::{
    Batch, CurvatureOperator, DampingStrategy, DenseOperator, Error, HessianFree, HfConfig, History, Mode,
    Preconditioner, PreconditionerContext, PreconditionerKind, Problem, Result, StepOutcome, StopReason,
};

/// The extended Rosenbrock function `Σ (1 − x_{2i})² + 100 (x_{2i+1} − x_{2i}²)²`
/// with its exact Hessian. Minimum 0 at (1, …, 1).
struct Rosenbrock {
    n: usize,
}

impl Rosenbrock {
    fn value(&self, x: &[f64]) -> f64 {
        (0..self.n / 2)
            .map(|i| (1.0 - x[2 * i]).powi(2) + 100.0 * (x[2 * i + 1] - x[2 * i].powi(2)).powi(2))
            .sum()
    }

    fn grad(&self, x: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; self.n];
        for i in 0..self.n / 2 {
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            g[2 * i] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[2 * i + 1] = 200.0 * (b - a * a);
        }
        g
    }

    fn hessian(&self, x: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut h = vec![0.0; n * n];
        for i in 0..n / 2 {
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            let (j, k) = (2 * i, 2 * i + 1);
            h[j * n + j] = 2.0 - 400.0 * (b - a * a) + 800.0 * a * a;
            h[j * n + k] = -400.0 * a;
            h[k * n + j] = -400.0 * a;
            h[k * n + k] = 200.0;
        }
        h
    }
}

impl Problem for Rosenbrock {
    type Vector = Vec<f64>;

    fn objective(&mut self, x: &Vec<f64>, _batch: Batch) -> Result<f64> {
        Ok(self.value(x))
    }

    fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
        Ok((self.value(x), self.grad(x)))
    }

    fn curvature<'a>(&'a mut self, x: &Vec<f64>, damping: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
        Ok(Box::new(DenseOperator::new(self.hessian(x), self.n, damping)?))
    }
}

fn rosenbrock_start(n: usize) -> Vec<f64> {
    (0..n).map(|i| if i % 2 == 0 { -1.2 } else { 1.0 }).collect()
}

fn assert_close_to_ones(x: &[f64], tol: f64) {
    for (i, v) in x.iter().enumerate() {
        assert!((v - 1.0).abs() < tol, "x[{i}] = {v}");
    }
}

#[test]
fn rosenbrock_with_exact_hessian_reaches_the_minimum() {
    for n in [2, 10] {
        let config = HfConfig {
            initial_damping: Some(1.0),
            preconditioner: PreconditionerKind::Identity,
            max_iterations: 300,
            gradient_tolerance: 1e-9,
            ..Default::default()
        };
        let mut hf = HessianFree::new(config).unwrap();
        let mut state = hf.init(rosenbrock_start(n));
        let mut history = History::default();
        let report = hf.run(&mut Rosenbrock { n }, &mut state, &mut history).unwrap();
        assert_eq!(report.stop, StopReason::GradientTolerance, "n={n}: {report:?}");
        assert_close_to_ones(&state.theta, 1e-6);
        // Accepted steps never increase the objective.
        for r in &history.iterations {
            assert!(r.objective <= r.objective_before, "{r:?}");
        }
        // The Hessian is indefinite at the start: the damping must have handled it.
        assert!(report.iterations < 300);
    }
}

#[test]
fn rosenbrock_in_trust_region_mode() {
    let config = HfConfig {
        mode: Mode::TrustRegion,
        initial_damping: Some(0.0),
        preconditioner: PreconditionerKind::Identity,
        max_iterations: 500,
        gradient_tolerance: 1e-8,
        ..Default::default()
    };
    let mut hf = HessianFree::new(config).unwrap();
    let mut state = hf.init(rosenbrock_start(2));
    let mut history = History::default();
    let report = hf.run(&mut Rosenbrock { n: 2 }, &mut state, &mut history).unwrap();
    assert_eq!(report.stop, StopReason::GradientTolerance, "{report:?}");
    assert_close_to_ones(&state.theta, 1e-6);
    // Every step respected the radius in force.
    for r in history.iterations.iter().filter(|r| r.outcome == StepOutcome::Accepted) {
        assert!(r.step_norm <= r.radius.unwrap() * (1.0 + 1e-9), "{r:?}");
    }
}

/// Fits `y = a·exp(b·t) + c` to noiseless data from known parameters: a zero-residual
/// nonlinear least-squares problem, with Gauss-Newton curvature on a curvature batch
/// (every third sample, cycled) smaller than the gradient batch (all samples).
struct ExpFit {
    t: Vec<f64>,
    y: Vec<f64>,
    curvature_offset: usize,
    curvature_calls: usize,
}

impl ExpFit {
    fn new(truth: [f64; 3], m: usize) -> Self {
        let t: Vec<f64> = (0..m).map(|i| i as f64 / m as f64 * 2.0).collect();
        let y = t.iter().map(|t| truth[0] * (truth[1] * t).exp() + truth[2]).collect();
        Self {
            t,
            y,
            curvature_offset: 0,
            curvature_calls: 0,
        }
    }

    fn indices(&self, batch: Batch) -> Vec<usize> {
        match batch {
            Batch::Gradient => (0..self.t.len()).collect(),
            Batch::Curvature => (self.curvature_offset..self.t.len()).step_by(3).collect(),
        }
    }

    fn residual(&self, x: &[f64], i: usize) -> f64 {
        x[0] * (x[1] * self.t[i]).exp() + x[2] - self.y[i]
    }

    fn jacobian_row(&self, x: &[f64], i: usize) -> [f64; 3] {
        let e = (x[1] * self.t[i]).exp();
        [e, x[0] * self.t[i] * e, 1.0]
    }
}

impl Problem for ExpFit {
    type Vector = Vec<f64>;

    fn begin_iteration(&mut self, iteration: usize) -> Result<()> {
        self.curvature_offset = iteration % 3;
        Ok(())
    }

    fn objective(&mut self, x: &Vec<f64>, batch: Batch) -> Result<f64> {
        let idx = self.indices(batch);
        Ok(idx.iter().map(|&i| 0.5 * self.residual(x, i).powi(2)).sum::<f64>() / idx.len() as f64)
    }

    fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
        let idx = self.indices(Batch::Gradient);
        let mut g = vec![0.0; 3];
        for &i in &idx {
            let r = self.residual(x, i);
            for (gk, jk) in g.iter_mut().zip(self.jacobian_row(x, i)) {
                *gk += r * jk / idx.len() as f64;
            }
        }
        Ok((self.objective(x, Batch::Gradient)?, g))
    }

    fn curvature<'a>(&'a mut self, x: &Vec<f64>, damping: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
        // G = JᵀJ / m on the curvature batch, formed densely: the problem is tiny.
        self.curvature_calls += 1;
        let idx = self.indices(Batch::Curvature);
        let mut gn = vec![0.0; 9];
        for &i in &idx {
            let j = self.jacobian_row(x, i);
            for a in 0..3 {
                for b in 0..3 {
                    gn[a * 3 + b] += j[a] * j[b] / idx.len() as f64;
                }
            }
        }
        Ok(Box::new(DenseOperator::new(gn, 3, damping)?))
    }

    fn curvature_diagonal(&mut self, x: &Vec<f64>) -> Result<Option<Vec<f64>>> {
        // Martens: the sum of squared per-example gradients (normalized like the objective).
        let idx = self.indices(Batch::Gradient);
        let mut d = vec![0.0; 3];
        for &i in &idx {
            let r = self.residual(x, i);
            for (dk, jk) in d.iter_mut().zip(self.jacobian_row(x, i)) {
                *dk += (r * jk).powi(2) / idx.len() as f64;
            }
        }
        Ok(Some(d))
    }
}

#[test]
fn gauss_newton_least_squares_reaches_the_known_parameters() {
    let truth = [2.0, -1.3, 0.5];
    let mut problem = ExpFit::new(truth, 60);
    let config = HfConfig {
        initial_damping: Some(1.0),
        max_iterations: 200,
        gradient_tolerance: 1e-12,
        ..Default::default()
    };
    let mut hf = HessianFree::new(config).unwrap();
    let mut state = hf.init(vec![1.0, 0.0, 0.0]);
    let report = hf.run(&mut problem, &mut state, &mut ()).unwrap();
    assert_eq!(report.stop, StopReason::GradientTolerance, "{report:?}");
    for (got, want) in state.theta.iter().zip(truth) {
        assert!((got - want).abs() < 1e-5, "{:?} vs {truth:?}", state.theta);
    }
    // Twice an iteration: for CG, and for ρ's undamped model (the damping energy of
    // the chosen step). The last iteration stops at the gradient check, before either.
    assert_eq!(problem.curvature_calls, 2 * (report.iterations - 1));
}

#[test]
fn l2_weight_shifts_the_minimum() {
    // f = ½‖x − c‖² (exact curvature I); with weight w the minimum is c / (1 + w).
    struct Shifted(Vec<f64>);
    impl Problem for Shifted {
        type Vector = Vec<f64>;
        fn objective(&mut self, x: &Vec<f64>, _: Batch) -> Result<f64> {
            Ok(0.5 * x.iter().zip(&self.0).map(|(a, c)| (a - c).powi(2)).sum::<f64>())
        }
        fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
            let f = self.objective(x, Batch::Gradient)?;
            Ok((f, x.iter().zip(&self.0).map(|(a, c)| a - c).collect()))
        }
        fn curvature<'a>(
            &'a mut self,
            x: &Vec<f64>,
            damping: f64,
        ) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
            let n = x.len();
            let eye = (0..n * n).map(|k| if k % (n + 1) == 0 { 1.0 } else { 0.0 }).collect();
            Ok(Box::new(DenseOperator::new(eye, n, damping)?))
        }
    }
    let c = vec![3.0, -1.0, 0.5];
    let w = 0.25;
    let config = HfConfig {
        initial_damping: Some(1e-3),
        l2_weight: w,
        gradient_tolerance: 1e-12,
        ..Default::default()
    };
    let mut hf = HessianFree::new(config).unwrap();
    let mut state = hf.init(vec![0.0; 3]);
    hf.run(&mut Shifted(c.clone()), &mut state, &mut ()).unwrap();
    for (x, c) in state.theta.iter().zip(&c) {
        assert!((x - c / (1.0 + w)).abs() < 1e-9);
    }
}

/// Rosenbrock that poisons itself: the objective is NaN for x₀ > 1.1 (a region the
/// early full steps overshoot into), and every fifth curvature product is NaN.
struct Poisoned {
    inner: Rosenbrock,
    products: Rc<Cell<usize>>,
}

struct PoisonedOperator {
    inner: DenseOperator,
    products: Rc<Cell<usize>>,
}

impl CurvatureOperator<Vec<f64>> for PoisonedOperator {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn damping(&self) -> f64 {
        self.inner.damping()
    }
    fn apply(&self, v: &Vec<f64>) -> Result<Vec<f64>> {
        self.products.set(self.products.get() + 1);
        let mut out = self.inner.apply(v)?;
        if self.products.get().is_multiple_of(5) {
            out[0] = f64::NAN;
        }
        Ok(out)
    }
}

impl Problem for Poisoned {
    type Vector = Vec<f64>;
    fn objective(&mut self, x: &Vec<f64>, batch: Batch) -> Result<f64> {
        if x[0] > 1.1 {
            return Ok(f64::NAN);
        }
        self.inner.objective(x, batch)
    }
    fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
        Ok((self.objective(x, Batch::Gradient)?, self.inner.grad(x)))
    }
    fn curvature<'a>(&'a mut self, x: &Vec<f64>, damping: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
        Ok(Box::new(PoisonedOperator {
            inner: DenseOperator::new(self.inner.hessian(x), self.inner.n, damping)?,
            products: self.products.clone(),
        }))
    }
}

#[test]
fn the_loop_survives_nan_objectives_and_products() {
    let products = Rc::new(Cell::new(0));
    let mut problem = Poisoned {
        inner: Rosenbrock { n: 2 },
        products: products.clone(),
    };
    let config = HfConfig {
        initial_damping: Some(1e-2),
        preconditioner: PreconditionerKind::Identity,
        max_iterations: 400,
        gradient_tolerance: 1e-8,
        ..Default::default()
    };
    let mut hf = HessianFree::new(config).unwrap();
    let mut state = hf.init(vec![-1.2, 1.0]);
    let mut history = History::default();
    let report = hf.run(&mut problem, &mut state, &mut history).unwrap();
    let failures = history
        .iterations
        .iter()
        .filter(|r| r.outcome == StepOutcome::NonFinite)
        .count();
    assert!(failures > 0, "the poison never triggered");
    assert!(products.get() > 5);
    for r in &history.iterations {
        assert!(r.objective.is_finite(), "{r:?}");
        if r.outcome == StepOutcome::NonFinite {
            assert!(r.next_damping > r.damping, "a failure must grow λ: {r:?}");
            assert_eq!(r.step_norm, 0.0);
        }
    }
    assert!(state.theta.iter().all(|x| x.is_finite()));
    assert_eq!(report.stop, StopReason::GradientTolerance, "{report:?}");
    assert_close_to_ones(&state.theta, 1e-5);
}

#[test]
fn a_nan_everywhere_problem_stops_after_too_many_failures() {
    struct AlwaysNan;
    impl Problem for AlwaysNan {
        type Vector = Vec<f64>;
        fn objective(&mut self, _: &Vec<f64>, _: Batch) -> Result<f64> {
            Ok(f64::NAN)
        }
        fn gradient(&mut self, _: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
            Ok((1.0, vec![f64::INFINITY]))
        }
        fn curvature<'a>(&'a mut self, _: &Vec<f64>, d: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
            Ok(Box::new(DenseOperator::new(vec![1.0], 1, d)?))
        }
    }
    // λ₀ unset: the first iteration fails before the curvature is measured, so λ
    // grows from 1.
    let mut unset = HessianFree::new(HfConfig {
        max_consecutive_failures: 4,
        ..Default::default()
    })
    .unwrap();
    let mut state = unset.init(vec![0.5]);
    unset.run(&mut AlwaysNan, &mut state, &mut ()).unwrap();
    assert!((state.damping - 1.5f64.powi(4)).abs() < 1e-9, "{}", state.damping);

    let mut hf = HessianFree::new(HfConfig {
        max_consecutive_failures: 4,
        initial_damping: Some(45.0),
        ..Default::default()
    })
    .unwrap();
    let mut state = hf.init(vec![0.5]);
    let report = hf.run(&mut AlwaysNan, &mut state, &mut ()).unwrap();
    assert_eq!(report.stop, StopReason::TooManyFailures);
    assert_eq!(report.iterations, 4);
    assert_eq!(state.theta, vec![0.5]);
    assert!((state.damping - 45.0 * 1.5f64.powi(4)).abs() < 1e-9);
    // A non-finite starting point is an error, not a silent no-op.
    let mut bad = hf.init(vec![f64::NAN]);
    assert!(matches!(
        hf.run(&mut AlwaysNan, &mut bad, &mut ()),
        Err(Error::NonFinite { .. })
    ));
}

/// A damping rule defined outside hf-core: multiplies by 4 or divides by 4.
struct Aggressive {
    calls: Rc<Cell<usize>>,
}

impl DampingStrategy for Aggressive {
    fn update(&mut self, lambda: f64, rho: f64) -> f64 {
        self.calls.set(self.calls.get() + 1);
        if rho.is_finite() && rho > 0.5 {
            lambda / 4.0
        } else {
            lambda * 4.0
        }
    }
}

/// A preconditioner defined outside hf-core: `M = diag(d + λ)` (exponent 1), counting its uses.
struct FullDiagonal {
    inverse: Vec<f64>,
    applies: Rc<Cell<usize>>,
}

impl Preconditioner<Vec<f64>> for FullDiagonal {
    fn apply(&self, r: &Vec<f64>) -> Result<Vec<f64>> {
        self.applies.set(self.applies.get() + 1);
        Ok(if self.inverse.is_empty() {
            r.clone()
        } else {
            r.iter().zip(&self.inverse).map(|(a, b)| a * b).collect()
        })
    }

    fn wants_diagonal(&self) -> bool {
        true
    }

    fn update(&mut self, context: &PreconditionerContext<'_, Vec<f64>>) -> Result<()> {
        if let Some(d) = context.diagonal {
            self.inverse = d.iter().map(|x| 1.0 / (x + context.damping)).collect();
        }
        Ok(())
    }
}

#[test]
fn user_defined_damping_and_preconditioner_plug_in() {
    let calls = Rc::new(Cell::new(0));
    let applies = Rc::new(Cell::new(0));
    let mut hf = HessianFree::new(HfConfig {
        initial_damping: Some(1.0),
        max_iterations: 200,
        gradient_tolerance: 1e-12,
        ..Default::default()
    })
    .unwrap()
    .with_damping(Box::new(Aggressive { calls: calls.clone() }))
    .unwrap()
    .with_preconditioner(Box::new(FullDiagonal {
        inverse: vec![],
        applies: applies.clone(),
    }));
    let mut state = hf.init(vec![1.0, 0.0, 0.0]);
    let report = hf
        .run(&mut ExpFit::new([2.0, -1.3, 0.5], 60), &mut state, &mut ())
        .unwrap();
    assert_eq!(report.stop, StopReason::GradientTolerance);
    assert_eq!(
        calls.get(),
        report.iterations - 1,
        "damping is updated on every iteration but the converged one"
    );
    assert!(applies.get() >= report.iterations);
    assert!((state.theta[1] + 1.3).abs() < 1e-5);
}

#[test]
fn random_start_points_all_converge_on_rosenbrock() {
    let mut rng = Rng::new(99);
    let mut hf = HessianFree::new(HfConfig {
        initial_damping: Some(1.0),
        preconditioner: PreconditionerKind::Identity,
        max_iterations: 500,
        gradient_tolerance: 1e-9,
        ..Default::default()
    })
    .unwrap();
    for _ in 0..10 {
        let x0 = vec![-2.0 + 4.0 * rng.uniform(), -1.0 + 3.0 * rng.uniform()];
        let mut state = hf.init(x0.clone());
        let report = hf.run(&mut Rosenbrock { n: 2 }, &mut state, &mut ()).unwrap();
        assert_eq!(report.stop, StopReason::GradientTolerance, "from {x0:?}: {report:?}");
        assert_close_to_ones(&state.theta, 1e-6);
    }
}

#[test]
fn invalid_configs_are_rejected_with_the_field() {
    let cases: Vec<(HfConfig, &str)> = vec![
        (
            HfConfig {
                initial_damping: Some(-1.0),
                ..Default::default()
            },
            "initial_damping",
        ),
        (
            HfConfig {
                initial_damping: Some(f64::NAN),
                ..Default::default()
            },
            "initial_damping",
        ),
        (
            HfConfig {
                max_iterations: 0,
                ..Default::default()
            },
            "max_iterations",
        ),
        (
            HfConfig {
                preconditioner_exponent: 0.0,
                ..Default::default()
            },
            "preconditioner_exponent",
        ),
        (
            HfConfig {
                preconditioner_exponent: 1.5,
                ..Default::default()
            },
            "preconditioner_exponent",
        ),
        (
            HfConfig {
                warm_start_decay: -0.1,
                ..Default::default()
            },
            "warm_start_decay",
        ),
        (
            HfConfig {
                warm_start_decay: 1.01,
                ..Default::default()
            },
            "warm_start_decay",
        ),
        (
            HfConfig {
                l2_weight: -1e-3,
                ..Default::default()
            },
            "l2_weight",
        ),
        (
            HfConfig {
                cg: hf_core::CgConfig {
                    max_iterations: 0,
                    ..Default::default()
                },
                ..Default::default()
            },
            "cg.max_iterations",
        ),
        (
            HfConfig {
                cg: hf_core::CgConfig {
                    min_iterations: 300,
                    ..Default::default()
                },
                ..Default::default()
            },
            "cg.min_iterations",
        ),
        (
            HfConfig {
                line_search: hf_core::LineSearchConfig {
                    shrink: 1.0,
                    ..Default::default()
                },
                ..Default::default()
            },
            "line_search.shrink",
        ),
        (
            HfConfig {
                damping: hf_core::LevenbergMarquardt {
                    boost: 0.9,
                    ..Default::default()
                },
                ..Default::default()
            },
            "damping.boost",
        ),
        (
            HfConfig {
                trust_region: hf_core::TrustRegionConfig {
                    initial_radius: 0.0,
                    ..Default::default()
                },
                ..Default::default()
            },
            "trust_region.initial_radius",
        ),
    ];
    for (config, field) in cases {
        let err = HessianFree::<Vec<f64>>::new(config).err().expect(field);
        assert_eq!(err.field, field);
        let msg = err.to_string();
        assert!(msg.contains(field) && msg.contains("allowed"), "{msg}");
    }
    assert!(HfConfig::default().validate().is_ok());
}

#[test]
fn config_round_trips_through_json_and_rejects_unknown_fields() {
    let cfg = HfConfig {
        mode: Mode::TrustRegion,
        l2_weight: 1e-5,
        target_objective: Some(0.1),
        ..Default::default()
    };
    let text = serde_json::to_string(&cfg).unwrap();
    let back: HfConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back, cfg);
    assert!(serde_json::from_str::<HfConfig>(r#"{ "initial_dampign": 1.0 }"#).is_err());
}

/// A quadratic `f(x) = ½ xᵀ A x − bᵀ x` whose operator carries, besides `λI`, an extra
/// damping term `μλ S` (the shape of structural damping: PSD, growing with `λ`).
struct ExtraDamped {
    a: Vec<f64>,
    b: Vec<f64>,
    s: Vec<f64>,
    mu: f64,
}

struct ExtraDampedOperator<'a> {
    problem: &'a ExtraDamped,
    damping: f64,
}

impl CurvatureOperator<Vec<f64>> for ExtraDampedOperator<'_> {
    fn dim(&self) -> usize {
        self.problem.b.len()
    }
    fn damping(&self) -> f64 {
        self.damping
    }
    fn apply(&self, v: &Vec<f64>) -> Result<Vec<f64>> {
        let (n, p) = (v.len(), self.problem);
        Ok((0..n)
            .map(|i| {
                let av: f64 = (0..n).map(|j| p.a[i * n + j] * v[j]).sum();
                av + self.damping * v[i] + p.mu * self.damping * p.s[i] * v[i]
            })
            .collect())
    }
    fn damping_energy(&self, v: &Vec<f64>) -> Result<f64> {
        let p = self.problem;
        Ok(v.iter()
            .zip(&p.s)
            .map(|(x, s)| self.damping * x * x * (1.0 + p.mu * s))
            .sum())
    }
}

impl Problem for ExtraDamped {
    type Vector = Vec<f64>;
    fn objective(&mut self, x: &Vec<f64>, _: Batch) -> Result<f64> {
        let n = x.len();
        let quad: f64 = (0..n)
            .map(|i| x[i] * (0..n).map(|j| self.a[i * n + j] * x[j]).sum::<f64>())
            .sum();
        Ok(0.5 * quad - x.iter().zip(&self.b).map(|(x, b)| x * b).sum::<f64>())
    }
    fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
        let n = x.len();
        let g = (0..n)
            .map(|i| (0..n).map(|j| self.a[i * n + j] * x[j]).sum::<f64>() - self.b[i])
            .collect();
        Ok((self.objective(x, Batch::Gradient)?, g))
    }
    fn curvature<'a>(&'a mut self, _: &Vec<f64>, damping: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
        Ok(Box::new(ExtraDampedOperator { problem: self, damping }))
    }
}

#[test]
fn rho_against_the_undamped_model_leaves_out_every_damping_term() {
    // On a quadratic objective the undamped model is exact: f(x + p) − f(x) = q₀(p)
    // for every p, so ρ must be 1 whatever damping shaped the step. Leaving the extra
    // term in the model (subtracting only ½λ‖p‖²) makes ρ > 1 and λ fall too fast.
    let mut rng = Rng::new(41);
    let n = 6;
    let a = common::symmetric_with_spectrum(&[0.5, 1.0, 2.0, 3.0, 5.0, 8.0], &mut rng);
    let mut problem = ExtraDamped {
        a,
        b: rng.normal_vec(n),
        s: (0..n).map(|i| 1.0 + i as f64).collect(),
        mu: 3.0,
    };
    let mut hf = HessianFree::new(HfConfig {
        initial_damping: Some(2.0),
        preconditioner: PreconditionerKind::Identity,
        ..Default::default()
    })
    .unwrap();
    let mut state = hf.init(rng.normal_vec(n));
    for _ in 0..3 {
        let record = hf.step(&mut problem, &mut state, &mut ()).unwrap();
        assert_eq!(record.outcome, StepOutcome::Accepted);
        assert!((record.rho - 1.0).abs() < 1e-9, "ρ = {}", record.rho);
    }
}

#[test]
fn a_solver_that_does_not_fit_the_mode_is_refused() {
    use hf_core::{ConjugateGradient, Lanczos};
    let damped = HfConfig::default();
    let trust = HfConfig {
        mode: Mode::TrustRegion,
        ..HfConfig::default()
    };
    let hf = |c: &HfConfig| HessianFree::<Vec<f64>>::new(c.clone()).unwrap();

    let e = hf(&damped).with_solver(Box::new(Lanczos::default())).err().unwrap();
    assert_eq!(e.field, "mode", "{e}");
    assert!(e.to_string().contains("Lanczos"), "{e}");
    let e = hf(&trust)
        .with_solver(Box::new(ConjugateGradient::default()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("trust_region"), "{e}");

    assert!(hf(&damped).with_solver(Box::new(ConjugateGradient::default())).is_ok());
    assert!(hf(&trust).with_solver(Box::new(Lanczos::default())).is_ok());
}

#[test]
fn a_damping_strategy_in_trust_region_mode_is_refused() {
    let trust = HfConfig {
        mode: Mode::TrustRegion,
        ..HfConfig::default()
    };
    let e = HessianFree::<Vec<f64>>::new(trust)
        .unwrap()
        .with_damping(Box::new(hf_core::FixedDamping))
        .err()
        .unwrap();
    assert_eq!(e.field, "mode", "{e}");
    assert!(e.to_string().contains("ignore"), "{e}");
}

#[test]
fn trust_region_mode_without_initial_damping_keeps_lambda_at_zero() {
    let config = HfConfig {
        mode: Mode::TrustRegion,
        max_iterations: 3,
        ..HfConfig::default()
    };
    let mut hf = HessianFree::new(config).unwrap();
    let mut state = hf.init(rosenbrock_start(2));
    let mut history = History::default();
    hf.run(&mut Rosenbrock { n: 2 }, &mut state, &mut history).unwrap();
    assert!(history
        .iterations
        .iter()
        .all(|r| r.damping == 0.0 && r.next_damping == 0.0));
    assert!(history.iterations.iter().all(|r| r.radius.is_some()));
}

/// A user's step rule: the damped one, counting the steps it takes and fails.
struct Counting {
    inner: hf_core::DampedStep,
    taken: Rc<Cell<usize>>,
}

impl hf_core::StepRule<Vec<f64>> for Counting {
    fn uses_radius(&self) -> bool {
        false
    }
    fn scales_initial_damping(&self) -> bool {
        true
    }
    fn radius(&self, _state: &hf_core::HfState<Vec<f64>>) -> Option<f64> {
        None
    }
    fn warm_start(&self, state: &hf_core::HfState<Vec<f64>>) -> Option<Vec<f64>> {
        hf_core::StepRule::warm_start(&self.inner, state)
    }
    fn take(
        &mut self,
        trial: &mut hf_core::Trial<'_, Vec<f64>>,
        state: &mut hf_core::HfState<Vec<f64>>,
        record: &mut hf_core::IterationRecord,
        outcome: hf_core::SolveOutcome<Vec<f64>>,
    ) -> Result<()> {
        self.taken.set(self.taken.get() + 1);
        self.inner.take(trial, state, record, outcome)
    }
    fn fail(&mut self, state: &mut hf_core::HfState<Vec<f64>>) {
        hf_core::StepRule::fail(&mut self.inner, state)
    }
    fn set_damping(&mut self, damping: Box<dyn DampingStrategy>) -> std::result::Result<(), hf_core::ConfigError> {
        hf_core::StepRule::<Vec<f64>>::set_damping(&mut self.inner, damping)
    }
}

#[test]
fn a_user_step_rule_takes_every_step_and_must_fit_the_solver() {
    let config = HfConfig {
        preconditioner: PreconditionerKind::Identity,
        max_iterations: 200,
        gradient_tolerance: 1e-8,
        ..HfConfig::default()
    };
    let taken = Rc::new(Cell::new(0));
    let damped = || hf_core::DampedStep::new(Box::new(config.damping), config.line_search, true, 0.95);
    let rule = Counting {
        inner: damped(),
        taken: taken.clone(),
    };
    let mut hf = HessianFree::new(config.clone())
        .unwrap()
        .with_step_rule(Box::new(rule))
        .unwrap();
    let mut state = hf.init(rosenbrock_start(2));
    let report = hf.run(&mut Rosenbrock { n: 2 }, &mut state, &mut ()).unwrap();
    assert_eq!(report.stop, StopReason::GradientTolerance, "{report:?}");
    assert_close_to_ones(&state.theta, 1e-6);
    // The last iteration met the tolerance before solving: every other one was taken.
    assert_eq!(taken.get(), state.iteration - 1);

    // A rule without a radius cannot drive Lanczos, nor a radius rule CG.
    let trust = HfConfig {
        mode: Mode::TrustRegion,
        ..HfConfig::default()
    };
    let e = HessianFree::<Vec<f64>>::new(trust)
        .unwrap()
        .with_step_rule(Box::new(damped()))
        .err()
        .unwrap();
    assert_eq!(e.field, "mode", "{e}");
    let e = HessianFree::<Vec<f64>>::new(config)
        .unwrap()
        .with_step_rule(Box::new(hf_core::TrustRegionStep::new(Default::default())))
        .err()
        .unwrap();
    assert_eq!(e.field, "mode", "{e}");
}

/// `½ xᵀ diag(1..=n) x − 1ᵀx`, exact curvature: `ρ = 1` on every step. The gradient
/// is NaN at iteration `poison`.
struct DiagonalQuadratic {
    n: usize,
    iteration: usize,
    poison: usize,
}

impl Problem for DiagonalQuadratic {
    type Vector = Vec<f64>;

    fn begin_iteration(&mut self, iteration: usize) -> Result<()> {
        self.iteration = iteration;
        Ok(())
    }

    fn objective(&mut self, x: &Vec<f64>, _batch: Batch) -> Result<f64> {
        Ok(x.iter()
            .enumerate()
            .map(|(i, v)| 0.5 * (i + 1) as f64 * v * v - v)
            .sum())
    }

    fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
        let f = self.objective(x, Batch::Gradient)?;
        let mut g: Vec<f64> = x.iter().enumerate().map(|(i, v)| (i + 1) as f64 * v - 1.0).collect();
        if self.iteration == self.poison {
            g[0] = f64::NAN;
        }
        Ok((f, g))
    }

    fn curvature<'a>(&'a mut self, _: &Vec<f64>, damping: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
        let n = self.n;
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            a[i * n + i] = (i + 1) as f64;
        }
        Ok(Box::new(DenseOperator::new(a, n, damping)?))
    }
}

/// Runs `hf` on the 50-dimensional [`DiagonalQuadratic`] poisoned at `poison`.
fn run_on_diagonal_quadratic(mut hf: HessianFree<Vec<f64>>, poison: usize) -> (History, hf_core::HfState<Vec<f64>>) {
    let mut state = hf.init(vec![0.0; 50]);
    let mut history = History::default();
    let mut problem = DiagonalQuadratic {
        n: 50,
        iteration: 0,
        poison,
    };
    hf.run(&mut problem, &mut state, &mut history).unwrap();
    (history, state)
}

/// Runs `config` on the 50-dimensional [`DiagonalQuadratic`] poisoned at `poison`.
fn run_diagonal_quadratic(config: &HfConfig, poison: usize) -> (History, hf_core::HfState<Vec<f64>>) {
    run_on_diagonal_quadratic(HessianFree::new(config.clone()).unwrap(), poison)
}

/// Runs `config` with a hand-assembled damped step that searches for `λ₀` over its
/// first steps (`DampedStep::searching_initial_damping`).
fn run_searching_step(config: &HfConfig, poison: usize) -> (History, hf_core::HfState<Vec<f64>>) {
    let rule =
        hf_core::DampedStep::new(Box::new(config.damping), config.line_search, true, 0.95).searching_initial_damping();
    let hf = HessianFree::new(config.clone())
        .unwrap()
        .with_step_rule(Box::new(rule))
        .unwrap();
    run_on_diagonal_quadratic(hf, poison)
}

#[test]
fn a_searching_damped_step_lowers_lambda_ever_faster_until_a_step_does_not_lower_it() {
    let config = HfConfig {
        preconditioner: PreconditionerKind::Identity,
        // λ₀ large enough that 63 drops of 2/3 stay above LM's floor 1e-10.
        initial_damping: Some(25.5),
        max_iterations: 6,
        ..HfConfig::default()
    };
    let drops = |poison: usize| {
        let (history, state) = run_searching_step(&config, poison);
        let ratios: Vec<f64> = history.iterations.iter().map(|r| r.next_damping / r.damping).collect();
        (ratios, state)
    };
    let third: f64 = 2.0 / 3.0;
    let close = |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);

    // LM's 2/3 applied 1, 2, 4, 8, … times while ρ > 3/4.
    let (ratios, state) = drops(usize::MAX);
    let expected: Vec<f64> = (0..6).map(|k| third.powi(1 << k)).collect();
    assert!(close(&ratios, &expected), "{ratios:?}");
    assert_eq!(
        state.plugins.step_rule,
        vec![6.0],
        "the search's progress is checkpointed"
    );

    // A failed step at iteration 3 (λ × 3/2) ends the search: LM's 2/3 from then on.
    let (ratios, state) = drops(3);
    let expected = [third, third.powi(2), 1.5, third, third, third];
    assert!(close(&ratios, &expected), "{ratios:?}");
    assert_eq!(state.plugins.step_rule, vec![-1.0]);
}

#[test]
fn a_searching_damped_step_stops_at_the_strategys_floor() {
    let config = HfConfig {
        preconditioner: PreconditionerKind::Identity,
        initial_damping: Some(1.0),
        max_iterations: 6,
        damping: hf_core::LevenbergMarquardt {
            min_damping: 1e-3,
            ..Default::default()
        },
        ..HfConfig::default()
    };
    let (history, state) = run_searching_step(&config, usize::MAX);
    assert!(history.iterations.iter().all(|r| r.next_damping >= 1e-3), "{history:?}");
    assert_eq!(state.damping, 1e-3);
}

#[test]
fn an_unset_initial_damping_is_searched_for_in_the_first_iteration() {
    let config = HfConfig {
        preconditioner: PreconditionerKind::Identity,
        max_iterations: 3,
        ..HfConfig::default()
    };
    // On a quadratic with its exact curvature every λ is trusted and a smaller one
    // always gains: the search goes all the way, from gᵀAg/gᵀg = mean(1..=50) = 25.5.
    let (history, _) = run_diagonal_quadratic(&config, usize::MAX);
    let first = &history.iterations[0];
    let lowest = 25.5 * 10f64.powi(1 - hf_core::INITIAL_DAMPING_TRIES as i32);
    assert!((first.damping / lowest - 1.0).abs() < 1e-12, "{history:?}");
    // From then on LM alone: ρ = 1, so × 2/3.
    for r in &history.iterations[1..] {
        assert!((r.next_damping / r.damping - 2.0 / 3.0).abs() < 1e-12, "{history:?}");
    }
    // Every trial solve's products are counted.
    let given = HfConfig {
        initial_damping: Some(lowest),
        max_iterations: 1,
        ..config.clone()
    };
    let (fixed, _) = run_diagonal_quadratic(&given, usize::MAX);
    assert!(
        first.curvature_products > fixed.iterations[0].curvature_products,
        "{history:?}"
    );
    assert_eq!(first.objective, fixed.iterations[0].objective);

    // A given λ₀ is not searched.
    let given = HfConfig {
        initial_damping: Some(1.0),
        ..config
    };
    let (history, _) = run_diagonal_quadratic(&given, usize::MAX);
    assert_eq!(history.iterations[0].damping, 1.0);
}

/// `Σ √(1 + (x_i − 1)²)` from 0 with a constant curvature model `c I`: the model
/// overshoots more the smaller `λ`, so the search for `λ₀` stops partway.
struct Overshoot {
    c: f64,
}

impl Problem for Overshoot {
    type Vector = Vec<f64>;

    fn objective(&mut self, x: &Vec<f64>, _batch: Batch) -> Result<f64> {
        Ok(x.iter().map(|v| (1.0 + (v - 1.0).powi(2)).sqrt()).sum())
    }

    fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
        let f = self.objective(x, Batch::Gradient)?;
        Ok((
            f,
            x.iter().map(|v| (v - 1.0) / (1.0 + (v - 1.0).powi(2)).sqrt()).collect(),
        ))
    }

    fn curvature<'a>(&'a mut self, x: &Vec<f64>, damping: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
        let n = x.len();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            a[i * n + i] = self.c;
        }
        Ok(Box::new(DenseOperator::new(a, n, damping)?))
    }
}

#[test]
fn the_first_iterations_search_keeps_the_best_trusted_damping_below_or_the_first_above() {
    // Worked out by hand in one coordinate (g = −1/√2, step 1/(√2 (c + λ))):
    // c = 0.5: λ = 0.5 gives f = 1.0420/coordinate, ρ = 0.99; λ = 0.05 gives 1.0399,
    //   ρ = 0.75; λ = 0.005 gives 1.0771 (worse): λ₀ = 0.05.
    // c = 0.3: λ = 0.3 gives ρ = 0.64; λ = 0.03 gives ρ = −0.13 (< ¼): λ₀ = 0.3.
    // c = 0.1: λ = 0.1 gives ρ = −0.70, so upwards: λ = 1 gives ρ = 0.81: λ₀ = 1.
    for (c, expected) in [(0.5, 0.05), (0.3, 0.3), (0.1, 1.0)] {
        let mut hf = HessianFree::new(HfConfig {
            preconditioner: PreconditionerKind::Identity,
            max_iterations: 1,
            ..HfConfig::default()
        })
        .unwrap();
        let mut state = hf.init(vec![0.0; 3]);
        let mut history = History::default();
        hf.run(&mut Overshoot { c }, &mut state, &mut history).unwrap();
        let first = &history.iterations[0];
        assert!((first.damping / expected - 1.0).abs() < 1e-9, "c = {c}: {first:?}");
    }
}
