//! Stopping rules, observers and resuming: what `HessianFree::run` owns.

use hf_core::{
    Batch, BoxError, Control, CurvatureOperator, DampingStrategy, DenseOperator, Error, HessianFree, HfConfig, HfState,
    History, IterationRecord, Observer, Problem, Result, SplitMix64, StopReason,
};

/// Least squares `½ mean_i (aᵢᵀx − bᵢ)²` over a random minibatch of 8 of 64 rows,
/// drawn in `begin_iteration`: the batches depend on the sampler state, so a resumed
/// run is identical only if that state is restored.
struct MinibatchLeastSquares {
    rows: Vec<[f64; 3]>,
    targets: Vec<f64>,
    rng: SplitMix64,
    batch: Vec<usize>,
}

impl MinibatchLeastSquares {
    fn new() -> Self {
        let mut rng = SplitMix64::new(7);
        let rows: Vec<[f64; 3]> = (0..64).map(|_| [rng.normal(), rng.normal(), rng.normal()]).collect();
        let targets = rows
            .iter()
            .map(|r| r[0] - 2.0 * r[1] + 0.5 * r[2] + 0.1 * rng.normal())
            .collect();
        Self {
            rows,
            targets,
            rng: SplitMix64::new(11),
            batch: (0..8).collect(),
        }
    }

    fn residuals(&self, x: &[f64]) -> Vec<f64> {
        self.batch
            .iter()
            .map(|&i| self.rows[i].iter().zip(x).map(|(a, x)| a * x).sum::<f64>() - self.targets[i])
            .collect()
    }
}

impl Problem for MinibatchLeastSquares {
    type Vector = Vec<f64>;

    fn begin_iteration(&mut self, _iteration: usize) -> Result<()> {
        self.batch = self.rng.choose(64, 8);
        Ok(())
    }

    fn objective(&mut self, x: &Vec<f64>, _batch: Batch) -> Result<f64> {
        let r = self.residuals(x);
        Ok(0.5 * r.iter().map(|r| r * r).sum::<f64>() / r.len() as f64)
    }

    fn gradient(&mut self, x: &Vec<f64>) -> Result<(f64, Vec<f64>)> {
        let r = self.residuals(x);
        let mut g = vec![0.0; 3];
        let n = r.len() as f64;
        for (&i, r) in self.batch.iter().zip(&r) {
            for (gj, a) in g.iter_mut().zip(self.rows[i]) {
                *gj += a * r / n;
            }
        }
        Ok((self.objective(x, Batch::Gradient)?, g))
    }

    fn curvature<'a>(&'a mut self, _x: &Vec<f64>, damping: f64) -> Result<Box<dyn CurvatureOperator<Vec<f64>> + 'a>> {
        let mut h = vec![0.0; 9];
        for &i in &self.batch {
            for j in 0..3 {
                for k in 0..3 {
                    h[3 * j + k] += self.rows[i][j] * self.rows[i][k] / 8.0;
                }
            }
        }
        Ok(Box::new(DenseOperator::new(h, 3, damping)?))
    }

    fn sampler_state(&self) -> Option<u64> {
        Some(self.rng.state())
    }

    fn restore_sampler(&mut self, state: u64) -> Result<()> {
        self.rng = SplitMix64::new(state);
        Ok(())
    }
}

/// A damping rule with memory: after a good step λ shrinks by a factor that itself
/// halves each time (down to 0.1); a poor step doubles λ and resets the factor.
struct Adaptive {
    factor: f64,
}

impl Default for Adaptive {
    fn default() -> Self {
        Self { factor: 0.9 }
    }
}

impl DampingStrategy for Adaptive {
    fn update(&mut self, lambda: f64, rho: f64) -> f64 {
        if rho > 0.5 {
            let next = lambda * self.factor;
            self.factor = (0.5 * self.factor).max(0.1);
            next
        } else {
            self.factor = 0.9;
            2.0 * lambda
        }
    }

    fn state(&self) -> Vec<f64> {
        vec![self.factor]
    }

    fn load_state(&mut self, state: &[f64]) -> Result<()> {
        match state {
            [f] => {
                self.factor = *f;
                Ok(())
            }
            _ => Err(Error::InvalidArgument {
                name: "adaptive damping state",
                value: format!("{} values", state.len()),
                allowed: "one",
            }),
        }
    }
}

fn optimizer(max_iterations: usize) -> HessianFree<Vec<f64>> {
    HessianFree::new(HfConfig {
        max_iterations,
        initial_damping: Some(1.0),
        ..Default::default()
    })
    .unwrap()
    .with_damping(Box::new(Adaptive::default()))
    .unwrap()
}

#[test]
fn max_iterations_counts_the_whole_run() {
    let mut problem = MinibatchLeastSquares::new();
    let mut hf = optimizer(5);
    let mut state = hf.init(vec![0.0; 3]);
    let report = hf.run(&mut problem, &mut state, &mut ()).unwrap();
    assert_eq!(
        (report.stop, report.iterations, state.iteration),
        (StopReason::MaxIterations, 5, 5)
    );
    let report = hf.run(&mut problem, &mut state, &mut ()).unwrap();
    assert_eq!(
        (report.iterations, state.iteration),
        (0, 5),
        "the limit is already reached"
    );
    let report = optimizer(8).run(&mut problem, &mut state, &mut ()).unwrap();
    assert_eq!((report.iterations, state.iteration), (3, 8));
}

#[test]
fn a_resumed_state_continues_bit_identically() {
    let mut whole = optimizer(12);
    let mut problem = MinibatchLeastSquares::new();
    let mut uninterrupted = whole.init(vec![0.0; 3]);
    whole.run(&mut problem, &mut uninterrupted, &mut ()).unwrap();

    let mut first = optimizer(5);
    let mut problem = MinibatchLeastSquares::new();
    let mut state = first.init(vec![0.0; 3]);
    first.run(&mut problem, &mut state, &mut ()).unwrap();
    // The step rule's state: its λ₀ search (over: −1), then the plug-in's state.
    assert_eq!(state.plugins.step_rule.len(), 2, "the plug-in's state is in HfState");
    assert_eq!(state.plugins.step_rule[0], -1.0);
    // What a checkpoint does: serialize, then a fresh process with a fresh problem.
    let saved = serde_json::to_string(&state).unwrap();
    let mut restored: HfState<Vec<f64>> = serde_json::from_str(&saved).unwrap();
    let mut second = optimizer(12);
    let mut problem = MinibatchLeastSquares::new();
    second.resume(&mut problem, &restored).unwrap();
    second.run(&mut problem, &mut restored, &mut ()).unwrap();

    restored.elapsed = uninterrupted.elapsed;
    assert_eq!(restored, uninterrupted);

    // Without restoring the sampler, or the plug-in alone, the trajectories part.
    let mut restored: HfState<Vec<f64>> = serde_json::from_str(&saved).unwrap();
    optimizer(12)
        .run(&mut MinibatchLeastSquares::new(), &mut restored, &mut ())
        .unwrap();
    assert_ne!(restored.theta, uninterrupted.theta);
    let mut restored: HfState<Vec<f64>> = serde_json::from_str(&saved).unwrap();
    let mut problem = MinibatchLeastSquares::new();
    problem.restore_sampler(restored.sampler.unwrap()).unwrap();
    optimizer(12).run(&mut problem, &mut restored, &mut ()).unwrap();
    assert_ne!(
        restored.damping, uninterrupted.damping,
        "the damping plug-in's state matters"
    );
}

#[test]
fn a_stateless_plug_in_refuses_a_saved_state() {
    let mut hf = HessianFree::<Vec<f64>>::new(HfConfig::default()).unwrap();
    let mut state = hf.init(vec![0.0; 3]);
    state.plugins.step_rule = vec![-1.0, 1.0];
    let e = hf.resume(&mut MinibatchLeastSquares::new(), &state).unwrap_err();
    assert!(e.to_string().contains("keeps no state"), "{e}");
}

/// Stops the run after a given iteration, or fails there.
struct StopAt {
    iteration: usize,
    fail: bool,
}

impl Observer<Vec<f64>> for StopAt {
    fn on_iteration(&mut self, record: &IterationRecord, state: &HfState<Vec<f64>>) -> Result<Control, BoxError> {
        assert_eq!(
            record.iteration, state.iteration,
            "the observer sees the state after the step"
        );
        if record.iteration < self.iteration {
            Ok(Control::Continue)
        } else if self.fail {
            Err("disk full".into())
        } else {
            Ok(Control::Stop)
        }
    }
}

#[test]
fn an_observer_stops_the_run_or_fails_it() {
    let mut hf = optimizer(50);
    let mut state = hf.init(vec![0.0; 3]);
    let mut observers = (
        History::default(),
        StopAt {
            iteration: 3,
            fail: false,
        },
    );
    let report = hf
        .run(&mut MinibatchLeastSquares::new(), &mut state, &mut observers)
        .unwrap();
    assert_eq!((report.stop, report.iterations), (StopReason::Requested, 3));
    assert_eq!(observers.0.iterations.len(), 3, "both observers saw every iteration");
    assert!(!observers.0.solver_iterations.is_empty());

    let mut state = hf.init(vec![0.0; 3]);
    let e = hf
        .run(
            &mut MinibatchLeastSquares::new(),
            &mut state,
            &mut StopAt {
                iteration: 2,
                fail: true,
            },
        )
        .unwrap_err();
    assert!(matches!(e, Error::Observer(_)), "{e:?}");
    assert!(e.to_string().contains("disk full"), "{e}");
    assert_eq!(state.iteration, 2, "the iteration before the error stands");
}

#[test]
fn the_time_budget_counts_the_whole_run() {
    let mut hf = HessianFree::new(HfConfig {
        time_budget_s: Some(1e-9),
        ..Default::default()
    })
    .unwrap();
    let mut state = hf.init(vec![0.0; 3]);
    let report = hf.run(&mut MinibatchLeastSquares::new(), &mut state, &mut ()).unwrap();
    assert_eq!((report.stop, report.iterations), (StopReason::TimeBudget, 1));
    let report = hf.run(&mut MinibatchLeastSquares::new(), &mut state, &mut ()).unwrap();
    assert_eq!(report.iterations, 0, "the budget was spent before this call");

    let bad = HfConfig {
        time_budget_s: Some(f64::NAN),
        ..Default::default()
    };
    assert_eq!(bad.validate().unwrap_err().field, "time_budget_s");
}
