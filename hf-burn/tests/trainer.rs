//! The library trainer on an ordinary burn model: metrics, checkpoints that burn
//! itself loads, bit-identical resume, and refusal of damaged files.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::DType;
use hf_burn::train::{
    checkpoint, MetricsRow, ModelRecorder, Trainer, TrainerConfig, TrainingObserver, TrainingRecord, TrainingStop,
};
use hf_burn::{
    tensor_from_f64, BatchSource, BurnProblem, DataBatch, Error, Network, Outputs, ParamVector, ProblemConfig,
    SquaredError,
};
use hf_core::{BoxError, Control, HessianFree, HfConfig, HfState, SplitMix64, StopReason};

type Nd = NdArray<f64>;

#[derive(Module, Debug)]
struct Mlp<B: Backend> {
    hidden: Linear<B>,
    out: Linear<B>,
}

/// 2-8-1 with tanh, built from burn's `Linear` and its own `forward`.
#[derive(Clone, Debug)]
struct MlpNet;

impl Network<2> for MlpNet {
    type Module<B: Backend> = Mlp<B>;

    fn init<B: Backend>(&self, device: &B::Device) -> Mlp<B> {
        Mlp {
            hidden: LinearConfig::new(2, 8).init(device),
            out: LinearConfig::new(8, 1).init(device),
        }
    }

    fn forward<B: Backend>(&self, m: &Mlp<B>, x: Tensor<B, 2>) -> Outputs<B> {
        Outputs::new(m.out.forward(m.hidden.forward(x).tanh()))
    }
}

fn data(n: usize, seed: u64) -> DataBatch<Nd, 2> {
    let mut rng = SplitMix64::new(seed);
    let x: Vec<f64> = (0..2 * n).map(|_| 2.0 * rng.uniform() - 1.0).collect();
    let y: Vec<f64> = x.chunks(2).map(|p| (2.0 * p[0]).sin() + p[1] * p[1]).collect();
    let device = Default::default();
    DataBatch::new(
        tensor_from_f64(x, [n, 2], &device, DType::F64),
        tensor_from_f64(y, [n, 1], &device, DType::F64),
    )
    .unwrap()
}

/// Random gradient and curvature minibatches of a fixed data set, drawn from a
/// seeded generator whose state checkpoints keep.
struct Minibatches {
    data: DataBatch<Nd, 2>,
    rng: SplitMix64,
}

impl Minibatches {
    fn new() -> Self {
        Self {
            data: data(128, 1),
            rng: SplitMix64::new(5),
        }
    }

    fn draw(&mut self, k: usize) -> DataBatch<Nd, 2> {
        let rows: Vec<i64> = self.rng.choose(128, k).into_iter().map(|i| i as i64).collect();
        let idx = Tensor::<Nd, 1, Int>::from_data(rows.as_slice(), &Default::default());
        DataBatch::new(
            self.data.input.clone().select(0, idx.clone()),
            self.data.target.clone().select(0, idx),
        )
        .unwrap()
    }
}

impl BatchSource<Nd, 2> for Minibatches {
    fn gradient_batch(&mut self, _iteration: usize) -> hf_burn::Result<DataBatch<Nd, 2>> {
        Ok(self.draw(64))
    }

    fn curvature_batch(&mut self, _iteration: usize) -> hf_burn::Result<DataBatch<Nd, 2>> {
        Ok(self.draw(16))
    }

    fn rng_state(&self) -> Option<u64> {
        Some(self.rng.state())
    }

    fn set_rng_state(&mut self, state: u64) {
        self.rng = SplitMix64::new(state);
    }
}

type MlpTrainer = Trainer<Nd, MlpNet, SquaredError, 2>;

/// The MLP on random minibatches.
fn problem() -> BurnProblem<Nd, MlpNet, SquaredError, 2> {
    let device = Default::default();
    BurnProblem::new(
        MlpNet,
        SquaredError,
        Minibatches::new(),
        ProblemConfig::default(),
        &device,
    )
    .unwrap()
}

fn trainer(max_iterations: usize, config: TrainerConfig) -> MlpTrainer {
    let problem = problem();
    let hf = HessianFree::new(HfConfig {
        max_iterations,
        initial_damping: Some(1.0),
        ..Default::default()
    })
    .unwrap();
    let held_out = data(64, 2);
    Trainer::new(problem, hf, config)
        .unwrap()
        .held_out("mse", move |evaluator, theta| evaluator.objective(theta, &held_out))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hf-trainer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The starting state at a fixed θ (burn's initializers draw from a global generator
/// that tests running in parallel share).
fn start(t: &MlpTrainer) -> HfState<ParamVector<Nd>> {
    let mut state = t.init(&Default::default()).unwrap();
    let mut rng = SplitMix64::new(3);
    let theta: Vec<f64> = (0..hf_core::Vector::len(&state.theta))
        .map(|_| 0.5 * rng.normal())
        .collect();
    state.theta = ParamVector::new(tensor_from_f64(
        theta.clone(),
        [theta.len()],
        &Default::default(),
        DType::F64,
    ));
    state
}

fn checkpoint_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_burn_model_trains_with_metrics_and_a_checkpoint_that_burn_loads() {
    let dir = scratch("train");
    let config = TrainerConfig {
        checkpoint_every: 5,
        eval_every: 2,
        ..Default::default()
    };
    let mut t = trainer(15, config)
        .metrics(&dir, 0)
        .unwrap()
        .checkpoints(&dir, serde_json::json!({"run": "test"}));
    let mut state = start(&t);
    let before = t.problem().evaluator().objective(&state.theta, &data(64, 2)).unwrap();
    let report = t.run(&mut state).unwrap();
    assert_eq!(report.stop, TrainingStop::Optimizer(StopReason::MaxIterations));
    assert_eq!(
        (report.iterations, state.iteration),
        (15, 15),
        "hf.max_iterations is honoured"
    );
    let after = report.held_out.unwrap();
    assert!(after < before / 4.0, "held-out mse {before} → {after}");

    // Metrics: every field, the held-out column named after its measure.
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 16);
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header, hf_burn::train::metrics_header(Some("mse")));
    for col in [
        "gradient_norm",
        "step_size",
        "step_norm",
        "outcome",
        "termination",
        "chosen_iterate",
        "held_out_mse",
    ] {
        assert!(header.contains(&col), "{col} missing from {header:?}");
    }
    let row: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(row.len(), header.len());
    let held = header.iter().position(|c| *c == "held_out_mse").unwrap();
    assert!(row[held].parse::<f64>().unwrap() > 0.0, "evaluated at iteration 2");
    assert_eq!(lines[1].split(',').nth(held), Some(""), "not evaluated at iteration 1");
    let jsonl = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
    assert_eq!(last["iteration"], 15);
    assert_eq!(last["held_out_measure"], "mse");
    assert_eq!(t.metrics_rows().len(), 15);

    // Checkpoints: the newest two, the model readable by burn alone.
    assert_eq!(checkpoint_names(&dir), ["000000010", "000000015"]);
    let ck = checkpoint::load(&dir.join("checkpoints/000000015")).unwrap();
    assert_eq!(ck.state.theta, state.theta.to_vec());
    assert_eq!(ck.run["run"], "test");
    let device = Default::default();
    let fresh: Mlp<Nd> = MlpNet.init::<Nd>(&device);
    let loaded = <Mlp<Nd> as Module<Nd>>::load_file(fresh, ck.model_path(), &ModelRecorder::new(), &device).unwrap();
    let x = data(16, 9).input;
    let ours = t
        .problem()
        .evaluator()
        .templates()
        .module(state.theta.tensor())
        .unwrap();
    let a: Vec<f64> = MlpNet.forward(&loaded, x.clone()).z.into_data().iter::<f64>().collect();
    let b: Vec<f64> = MlpNet.forward(&ours, x).z.into_data().iter::<f64>().collect();
    assert_eq!(a, b, "the model burn loads computes what was trained");
    // burn's everyday recorder reads it too (converting to f32).
    let full = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let f32_model =
        <Mlp<Nd> as Module<Nd>>::load_file(MlpNet.init::<Nd>(&device), ck.model_path(), &full, &device).unwrap();
    let c: Vec<f64> = MlpNet
        .forward(&f32_model, data(16, 9).input)
        .z
        .into_data()
        .iter::<f64>()
        .collect();
    assert!(c.iter().zip(&a).all(|(c, a)| (c - a).abs() < 1e-5));

    // Resumed at the end and run again (no iteration left): the checkpoint of the same
    // iteration is replaced safely, and stale half-written or set-aside ones are cleared.
    std::fs::create_dir_all(dir.join("checkpoints/.tmp-000000016")).unwrap();
    std::fs::create_dir_all(dir.join("checkpoints/.old-000000010")).unwrap();
    let mut again = trainer(15, TrainerConfig::default()).checkpoints(&dir, serde_json::json!({"run": "test"}));
    let (mut resumed, _) = again.resume(&dir, &device).unwrap();
    assert_eq!(again.run(&mut resumed).unwrap().iterations, 0);
    assert_eq!(checkpoint_names(&dir), ["000000010", "000000015"]);
    assert_eq!(
        checkpoint::load(&dir.join("checkpoints/000000015"))
            .unwrap()
            .state
            .theta,
        state.theta.to_vec()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Fails the run at one iteration, after the metrics row was written: an
/// interruption between two checkpoints.
struct CrashAt(usize);

impl TrainingObserver<Nd> for CrashAt {
    fn on_iteration(&mut self, r: &TrainingRecord, _s: &HfState<ParamVector<Nd>>) -> Result<Control, BoxError> {
        if r.iteration.iteration == self.0 {
            Err("simulated crash".into())
        } else {
            Ok(Control::Continue)
        }
    }
}

/// Everything in a metrics row but the timings.
fn deterministic(rows: &[MetricsRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r.elapsed_s = 0.0;
            (r.gradient_s, r.preconditioner_s, r.solve_s) = (0.0, 0.0, 0.0);
            (r.backtracking_s, r.rho_s, r.line_search_s) = (0.0, 0.0, 0.0);
            format!("{r:?}")
        })
        .collect()
}

#[test]
fn an_interrupted_run_resumes_bit_identically() {
    let whole_dir = scratch("whole");
    let mut whole = trainer(12, TrainerConfig::default()).metrics(&whole_dir, 0).unwrap();
    let mut uninterrupted = start(&whole);
    let theta0 = uninterrupted.theta.clone();
    whole.run(&mut uninterrupted).unwrap();

    let dir = scratch("resumed");
    let config = TrainerConfig {
        checkpoint_every: 3,
        ..Default::default()
    };
    let mut first = trainer(12, config.clone())
        .metrics(&dir, 0)
        .unwrap()
        .checkpoints(&dir, serde_json::json!({}))
        .observe(CrashAt(5));
    let mut state = start(&first);
    assert_eq!(state.theta.to_vec(), theta0.to_vec());
    let e = first.run(&mut state).unwrap_err();
    assert!(e.to_string().contains("simulated crash"), "{e}");
    drop(first);
    assert_eq!(checkpoint_names(&dir), ["000000003"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        6
    );

    let mut second = trainer(12, config);
    let (mut state, _) = second.resume(&dir, &Default::default()).unwrap();
    assert_eq!(state.iteration, 3);
    let mut second = second
        .metrics(&dir, state.iteration)
        .unwrap()
        .checkpoints(&dir, serde_json::json!({}));
    second.run(&mut state).unwrap();

    let bits = |v: &ParamVector<Nd>| v.to_vec().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&state.theta), bits(&uninterrupted.theta));
    assert_eq!(state.damping, uninterrupted.damping);
    assert_eq!(
        deterministic(second.metrics_rows()),
        deterministic(whole.metrics_rows())
    );
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        13,
        "rows after the checkpoint were replaced, not duplicated"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&whole_dir).unwrap();
}

fn refused(dir: &Path, needle: &str) {
    match checkpoint::load(dir) {
        Err(Error::Checkpoint { reason, .. }) => assert!(reason.contains(needle), "{reason}"),
        other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn a_damaged_checkpoint_is_refused() {
    let dir = scratch("damaged");
    let mut t = trainer(2, TrainerConfig::default()).checkpoints(&dir, serde_json::json!({}));
    let mut state = start(&t);
    t.run(&mut state).unwrap();
    let ck = dir.join("checkpoints/000000002");
    let state_file = ck.join("state.bin");
    let model_file = ck.join("model.mpk");
    let good_state = std::fs::read(&state_file).unwrap();
    let good_model = std::fs::read(&model_file).unwrap();
    assert!(checkpoint::load(&ck).is_ok());

    let mut bad = good_state.clone();
    let k = bad.len() - 40;
    bad[k] ^= 0x10;
    std::fs::write(&state_file, &bad).unwrap();
    refused(&ck, "checksum mismatch");

    // A NaN in θ with a checksum recomputed over it: the finiteness check catches it.
    let mut bad = good_state.clone();
    let n = bad.len();
    let len = u64::from_le_bytes(bad[8..16].try_into().unwrap()) as usize;
    bad[16 + len..16 + len + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    let sum = checkpoint::fnv1a(&bad[..n - 8]);
    bad[n - 8..].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&state_file, &bad).unwrap();
    refused(&ck, "parameter 0 is NaN");

    std::fs::write(&state_file, &good_state).unwrap();
    let mut bad = good_model.clone();
    let k = bad.len() / 2;
    bad[k] ^= 0x01;
    std::fs::write(&model_file, &bad).unwrap();
    refused(&ck, "model.mpk: checksum mismatch");

    std::fs::write(&model_file, &good_model).unwrap();
    let mut t = trainer(4, TrainerConfig::default());
    let (state, _) = t.resume(&dir, &Default::default()).unwrap();
    assert_eq!(state.iteration, 2, "the repaired checkpoint loads");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn metrics_files_are_never_silently_rewritten() {
    let dir = scratch("metrics");
    let mut t = trainer(2, TrainerConfig::default()).metrics(&dir, 0).unwrap();
    let mut state = start(&t);
    t.run(&mut state).unwrap();
    let before = std::fs::read(dir.join("metrics.csv")).unwrap();

    let fresh = trainer(2, TrainerConfig::default()).metrics(&dir, 0);
    assert!(matches!(fresh, Err(Error::Metrics { ref reason, .. }) if reason.contains("exists already")));
    let other_measure = trainer(2, TrainerConfig::default())
        .held_out("accuracy", |_, _| Ok(0.0))
        .metrics(&dir, 2);
    match other_measure {
        Err(Error::Metrics { reason, .. }) => assert!(reason.contains("held_out_accuracy"), "{reason}"),
        _ => panic!("a different header must be refused"),
    }
    assert_eq!(
        std::fs::read(dir.join("metrics.csv")).unwrap(),
        before,
        "nothing was lost"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_held_out_target_stops_the_run() {
    let config = TrainerConfig {
        target_held_out: Some(0.05),
        ..Default::default()
    };
    let mut t = trainer(200, config);
    let mut state = start(&t);
    let report = t.run(&mut state).unwrap();
    assert_eq!(report.stop, TrainingStop::TargetHeldOut, "{report:?}");
    assert!(report.held_out.unwrap() < 0.05);
    assert!(report.iterations < 200);
}

/// The same problem trained by a burn optimizer through the same trainer.
fn first_order_trainer(kind: &str, max_iterations: usize, config: TrainerConfig) -> MlpTrainer {
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{AdamConfig, SgdConfig};
    use hf_burn::train::{FirstOrder, FirstOrderConfig};
    let problem = problem();
    let settings = FirstOrderConfig {
        learning_rate: 0.02,
        max_iterations,
        time_budget_s: None,
    };
    let held_out = data(64, 2);
    let measure = move |evaluator: &hf_burn::Evaluator<Nd, MlpNet, SquaredError, 2>, theta: &ParamVector<Nd>| {
        evaluator.objective(theta, &held_out)
    };
    let trainer = match kind {
        "adam" => Trainer::new(problem, FirstOrder::adam(AdamConfig::new(), settings), config),
        _ => Trainer::new(
            problem,
            FirstOrder::sgd(
                SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_momentum(0.9))),
                settings,
            ),
            config,
        ),
    };
    trainer.unwrap().held_out("mse", measure)
}

#[test]
fn a_first_order_run_trains_and_resumes_bit_identically() {
    for kind in ["adam", "sgd"] {
        let whole_dir = scratch(&format!("{kind}-whole"));
        let mut whole = first_order_trainer(kind, 40, TrainerConfig::default())
            .metrics(&whole_dir, 0)
            .unwrap();
        let mut uninterrupted = start(&whole);
        let before = whole
            .problem()
            .evaluator()
            .objective(&uninterrupted.theta, &data(64, 2))
            .unwrap();
        let report = whole.run(&mut uninterrupted).unwrap();
        assert_eq!(report.stop, TrainingStop::Optimizer(StopReason::MaxIterations));
        assert_eq!(uninterrupted.iteration, 40);
        let after = report.held_out.unwrap();
        assert!(after < before / 2.0, "{kind}: held-out mse {before} → {after}");

        let dir = scratch(&format!("{kind}-resumed"));
        let config = TrainerConfig {
            checkpoint_every: 7,
            ..Default::default()
        };
        let mut first = first_order_trainer(kind, 40, config.clone())
            .metrics(&dir, 0)
            .unwrap()
            .checkpoints(&dir, serde_json::json!({}))
            .observe(CrashAt(17));
        let mut state = start(&first);
        assert!(first.run(&mut state).is_err());
        drop(first);
        assert_eq!(checkpoint_names(&dir), ["000000007", "000000014"]);
        let newest = dir.join("checkpoints/000000014");
        assert!(
            newest.join("optimizer.mpk").is_file(),
            "{kind}: the optimizer's state is saved"
        );

        let mut second = first_order_trainer(kind, 40, config);
        let (mut state, _) = second.resume(&dir, &Default::default()).unwrap();
        assert_eq!(state.iteration, 14);
        let mut second = second
            .metrics(&dir, state.iteration)
            .unwrap()
            .checkpoints(&dir, serde_json::json!({}));
        second.run(&mut state).unwrap();

        let bits = |v: &ParamVector<Nd>| v.to_vec().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&state.theta), bits(&uninterrupted.theta), "{kind}");
        assert_eq!(
            deterministic(second.metrics_rows()),
            deterministic(whole.metrics_rows()),
            "{kind}"
        );

        // A checkpoint is resumed only by the method that wrote it.
        let e = trainer(50, TrainerConfig::default())
            .resume(&dir, &Default::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains(&format!("written by the {kind} method")), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&whole_dir).unwrap();
    }
}

#[test]
fn a_damaged_optimizer_state_is_refused() {
    let dir = scratch("adam-damaged");
    let config = TrainerConfig {
        checkpoint_every: 5,
        ..Default::default()
    };
    let mut t = first_order_trainer("adam", 5, config.clone()).checkpoints(&dir, serde_json::json!({}));
    let mut state = start(&t);
    t.run(&mut state).unwrap();
    let file = dir.join("checkpoints/000000005/optimizer.mpk");
    let mut bytes = std::fs::read(&file).unwrap();
    let k = bytes.len() - 3;
    bytes[k] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
    let e = first_order_trainer("adam", 10, config)
        .resume(&dir, &Default::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("optimizer.mpk: checksum mismatch"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_invalid_first_order_setting_is_refused_by_the_trainer() {
    use burn::optim::AdamConfig;
    use hf_burn::train::{FirstOrder, FirstOrderConfig};
    let adam = FirstOrder::adam(
        AdamConfig::new(),
        FirstOrderConfig {
            learning_rate: f64::NAN,
            ..Default::default()
        },
    );
    match Trainer::new(problem(), adam, TrainerConfig::default()) {
        Err(Error::Config(e)) => assert_eq!(e.field, "learning_rate", "{e}"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}

/// The checkpoint loader on random and mutated `state.bin` files — with the checksum
/// left as it was and recomputed over the damage, so that the parser behind it is
/// reached — and on random bytes: a typed error or a loaded state, never a panic.
#[test]
fn random_and_mutated_checkpoints_never_panic() {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let dir = scratch("fuzz");
    let mut t = trainer(2, TrainerConfig::default()).checkpoints(&dir, serde_json::json!({}));
    let mut state = start(&t);
    t.run(&mut state).unwrap();
    let ck = dir.join("checkpoints/000000002");
    let state_file = ck.join("state.bin");
    let good = std::fs::read(&state_file).unwrap();

    let load = |bytes: &[u8]| -> Result<(), TestCaseError> {
        std::fs::write(&state_file, bytes).unwrap();
        match checkpoint::load(&ck) {
            Ok(c) => prop_assert!(c.state.theta.iter().all(|v| v.is_finite())),
            Err(e) => prop_assert!(matches!(e, Error::Checkpoint { .. }), "{e}"),
        }
        Ok(())
    };
    let mut runner = TestRunner::new(Config::with_cases(256));
    let mutated = (vec((any::<usize>(), any::<u8>()), 1..6), any::<bool>(), any::<usize>());
    runner
        .run(&mutated, |(mutations, fix_checksum, cut)| {
            let mut bytes = good.clone();
            let n = bytes.len();
            for (i, b) in mutations {
                bytes[i % n] = b;
            }
            bytes.truncate(n - cut % (n / 4));
            let m = bytes.len();
            if fix_checksum && m >= 8 {
                let sum = checkpoint::fnv1a(&bytes[..m - 8]);
                bytes[m - 8..].copy_from_slice(&sum.to_le_bytes());
            }
            load(&bytes)
        })
        .unwrap();
    let mut runner = TestRunner::new(Config::with_cases(128));
    runner.run(&vec(any::<u8>(), 0..128), |bytes| load(&bytes)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
