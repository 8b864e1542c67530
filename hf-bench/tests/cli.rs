//! End to end: the `hessfree` binary on the tiny preset — records, resume, first-order
//! optimizers and every error path — and on the Fashion-MNIST fixture.

mod common;

use common::{hessfree, ok, scratch, snapshot, stderr};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fails_with(o: &Output, needle: &str) {
    assert!(!o.status.success(), "hessfree should have failed");
    let err = stderr(o);
    assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
}

fn tiny(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--preset",
        "tiny",
        "--backend",
        "ndarray",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    hessfree(&args)
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn metrics(dir: &Path) -> (String, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    (
        header,
        lines.map(|l| l.split(',').map(str::to_owned).collect()).collect(),
    )
}

/// The column of `name` in the metrics file's header.
fn col(header: &str, name: &str) -> usize {
    header
        .split(',')
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name} in {header}"))
}

/// The newest checkpoint's directory.
fn latest_checkpoint(dir: &Path) -> PathBuf {
    hf_burn::train::checkpoint::latest(&dir.join("checkpoints"))
        .unwrap()
        .expect("a checkpoint")
}

/// Parameters stored in the newest checkpoint (verified).
fn checkpoint_theta(dir: &Path) -> Vec<f64> {
    hf_burn::train::checkpoint::load(&latest_checkpoint(dir))
        .unwrap()
        .state
        .theta
}

#[test]
fn training_writes_metrics_plot_summary_and_checkpoint() {
    let out = scratch("records");
    ok(&tiny(&out, &["--set", "hf.max_iterations=3"]));
    let (header, rows) = metrics(&out);
    assert_eq!(
        header,
        hf_burn::train::metrics_header(Some("reconstruction error")).join(",")
    );
    assert_eq!(rows.len(), 3, "hf.max_iterations is honoured");
    // The phase profile: every phase took time, and together they fit in the iteration.
    let phases = col(&header, "gradient_s")..=col(&header, "line_search_s");
    for r in &rows {
        let times: Vec<f64> = r[phases.clone()].iter().map(|v| v.parse().unwrap()).collect();
        assert!(times.iter().all(|&t| t > 0.0), "each phase is timed: {times:?}");
        for field in ["gradient_norm", "step_size", "step_norm", "chosen_iterate"] {
            assert!(r[col(&header, field)].parse::<f64>().unwrap().is_finite(), "{field}");
        }
        assert_eq!(r[col(&header, "outcome")], "accepted");
        assert!(!r[col(&header, "termination")].is_empty());
    }
    let wall: f64 = rows[2][col(&header, "elapsed_s")].parse().unwrap();
    let profiled: f64 = rows
        .iter()
        .flat_map(|r| r[phases.clone()].iter().map(|v| v.parse::<f64>().unwrap()))
        .sum();
    assert!(
        profiled <= wall * 1.0001,
        "phases {profiled} s within the training time {wall} s"
    );
    let objective = col(&header, "objective");
    let first: f64 = rows[0][objective].parse().unwrap();
    let last: f64 = rows[2][objective].parse().unwrap();
    assert!(last < first, "the objective falls: {first} → {last}");
    let held = col(&header, "held_out_reconstruction_error");
    assert!(
        rows.iter().all(|r| r[held].parse::<f64>().unwrap().is_finite()),
        "held-out error each iteration"
    );
    let jsonl = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 3);
    let png = std::fs::read(out.join("training.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1200);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 500);
    let s = summary(&out);
    assert_eq!(s["preset"], "tiny");
    assert_eq!(s["optimizer"], "hf");
    assert_eq!(s["backend"], "ndarray");
    assert_eq!(s["iterations"], 3);
    assert_eq!(s["stop"], "max_iterations");
    assert_eq!(s["config"]["hf"]["max_iterations"], 3);
    let reported = s["final_objective"].as_f64().unwrap();
    assert!((reported - last).abs() <= 1e-8 * last.abs(), "{reported} vs {last}");
    // The tiny preset checkpoints every 2 iterations and at the end.
    let names: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(out.join("config.json").is_file());
    // No temporary files are left behind.
    for dir in [out.clone(), out.join("checkpoints")] {
        assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".tmp")));
    }
}

/// The model of a checkpoint is an ordinary burn record: burn's own `load_file`
/// reads it into the preset's network, which then computes what the run trained.
#[test]
fn the_saved_model_loads_with_burns_load_file() {
    use burn::module::Module;
    use burn::prelude::Backend;
    use hf_burn::Network;
    type B = burn::backend::NdArray<f64>;

    let out = scratch("load-file");
    let o = hessfree(&[
        "train",
        "--preset",
        "tiny",
        "--backend",
        "ndarray-f64",
        "--quiet",
        "--iterations",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    let ck = hf_burn::train::checkpoint::load(&latest_checkpoint(&out)).unwrap();
    let device = Default::default();
    let spec = hf_models::AutoencoderSpec {
        encoder: vec![784, 16, 4],
        output: hf_models::AutoencoderOutput::Logistic,
    };
    let fresh = spec.init::<B>(&device);
    let recorder = hf_burn::train::ModelRecorder::new();
    let loaded = fresh.load_file(ck.model_path(), &recorder, &device).unwrap();
    let theta = hf_burn::ParamVector::<B>::from_module(&loaded).unwrap();
    assert_eq!(
        theta.to_vec(),
        ck.state.theta,
        "burn's load_file gives the trained parameters"
    );
    let _ = <B as Backend>::name(&device);
}

/// In f64 on burn-ndarray a run is bit-for-bit reproducible, so a resumed run must
/// match an uninterrupted one exactly.
#[test]
fn a_resumed_run_follows_the_uninterrupted_trajectory() {
    let f64_tiny = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--preset", "tiny", "--backend", "ndarray-f64", "--quiet"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        hessfree(&args)
    };
    let whole = scratch("whole");
    ok(&f64_tiny(&whole, &["--iterations", "4"]));
    let parts = scratch("parts");
    ok(&f64_tiny(&parts, &["--iterations", "2"]));
    // The directory alone: preset, backend, optimizer and seed come from the run.
    ok(&hessfree(&[
        "train",
        "--quiet",
        "--iterations",
        "4",
        "--resume",
        parts.to_str().unwrap(),
    ]));
    let s = summary(&parts);
    assert_eq!(
        (s["preset"].as_str(), s["backend"].as_str()),
        (Some("tiny"), Some("ndarray-f64"))
    );
    assert_same_trajectory(&whole, &parts, 4);
}

/// Every metrics field but the timings, and the final parameters bit for bit.
fn assert_same_trajectory(a: &Path, b: &Path, iterations: usize) {
    let (header, ra) = metrics(a);
    let (header_b, rb) = metrics(b);
    assert_eq!(header, header_b);
    assert_eq!((ra.len(), rb.len()), (iterations, iterations));
    let timing = |c: &str| c == "elapsed_s" || c.ends_with("_s");
    let keep: Vec<usize> = header
        .split(',')
        .enumerate()
        .filter(|(_, c)| !timing(c))
        .map(|(i, _)| i)
        .collect();
    for (x, y) in ra.iter().zip(&rb) {
        for &k in &keep {
            assert_eq!(
                x[k],
                y[k],
                "{} at iteration {}",
                header.split(',').nth(k).unwrap(),
                x[0]
            );
        }
    }
    let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
    assert_eq!(bits(checkpoint_theta(a)), bits(checkpoint_theta(b)));
}

/// A run killed with SIGKILL at a random moment, then `hessfree train --resume DIR` alone,
/// ends bit-identical (ndarray-f64) to an uninterrupted run.
#[test]
fn a_run_killed_at_a_random_moment_resumes_bit_identically() {
    let args = |out: &Path| {
        vec![
            "train".to_string(),
            "--preset".into(),
            "tiny".into(),
            "--backend".into(),
            "ndarray-f64".into(),
            "--quiet".into(),
            "--iterations".into(),
            "12".into(),
            "--set".into(),
            "trainer.checkpoint_every=1".into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let whole = scratch("sigkill-whole");
    let clock = std::time::Instant::now();
    ok(&hessfree(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>()));
    let duration = clock.elapsed();

    // A moment drawn from the clock's nanoseconds: somewhere after the first
    // checkpoint and before the end.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut killed = None;
    for attempt in 0..4 {
        let parts = scratch(&format!("sigkill-parts-{attempt}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_hessfree"))
            .args(args(&parts))
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .spawn()
            .unwrap();
        // Wait for the first checkpoint, then a random part of the remaining time.
        let started = std::time::Instant::now();
        while hf_burn::train::checkpoint::latest(&parts.join("checkpoints"))
            .ok()
            .flatten()
            .is_none()
            && started.elapsed() < duration * 4
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let fraction = f64::from((seed >> attempt) % 1000) / 1000.0 / f64::from(attempt + 1);
        std::thread::sleep(duration.mul_f64(0.6 * fraction));
        let running = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        if running {
            killed = Some(parts);
            break;
        }
    }
    let parts = killed.expect("the run was still going when killed, in one of four tries");
    assert!(!parts.join("summary.json").exists(), "killed before the end");
    ok(&hessfree(&["train", "--quiet", "--resume", parts.to_str().unwrap()]));
    assert_eq!(summary(&parts)["iterations"], 12);
    assert_same_trajectory(&whole, &parts, 12);
}

#[test]
fn a_run_directory_is_never_replaced_by_accident() {
    let out = scratch("exists");
    ok(&tiny(&out, &["--iterations", "1"]));
    let before = snapshot(&out);
    assert!(before.iter().any(|(n, _)| n == "run.json"));
    // The same command again: refused, every file byte-identical, nothing added.
    fails_with(&tiny(&out, &["--iterations", "1"]), "already holds a run");
    assert_eq!(snapshot(&out), before);
    fails_with(
        &tiny(&out, &["--optimizer", "adam", "--iterations", "1"]),
        "--overwrite",
    );
    assert_eq!(snapshot(&out), before);
    // Asked for: replaced.
    ok(&tiny(&out, &["--iterations", "2", "--overwrite"]));
    assert_eq!(summary(&out)["iterations"], 2);
}

#[test]
fn resume_refuses_flags_that_contradict_the_run() {
    let out = scratch("conflict");
    ok(&tiny(&out, &["--iterations", "1", "--seed", "3"]));
    let dir = out.to_str().unwrap();
    let before = snapshot(&out);
    for (flag, value) in [
        ("--backend", "flex"),
        ("--seed", "4"),
        ("--optimizer", "sgd"),
        ("--preset", "curves-small"),
    ] {
        fails_with(
            &hessfree(&["train", "--quiet", flag, value, "--resume", dir]),
            "conflicts with the run",
        );
        assert_eq!(snapshot(&out), before, "{flag}");
    }
    // Flags that agree are fine.
    ok(&hessfree(&[
        "train",
        "--quiet",
        "--seed",
        "3",
        "--backend",
        "ndarray",
        "--iterations",
        "2",
        "--resume",
        dir,
    ]));
    assert_eq!(summary(&out)["seed"], 3);
}

#[test]
fn a_damaged_checkpoint_is_refused() {
    let out = scratch("damaged");
    ok(&tiny(&out, &["--iterations", "1"]));
    let path = latest_checkpoint(&out).join("state.bin");
    let good = std::fs::read(&path).unwrap();
    let len = u64::from_le_bytes(good[8..16].try_into().unwrap()) as usize;
    let params = 16 + len;
    let resume = || {
        hessfree(&[
            "train",
            "--quiet",
            "--iterations",
            "2",
            "--resume",
            out.to_str().unwrap(),
        ])
    };

    // One flipped byte inside the parameter block.
    let mut flipped = good.clone();
    flipped[params + 8 * 5 + 3] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    fails_with(&resume(), "checksum mismatch");

    // A NaN written there with a checksum that matches: the finiteness check.
    let mut nan = good[..good.len() - 8].to_vec();
    nan[params + 8 * 7..params + 8 * 8].copy_from_slice(&f64::NAN.to_le_bytes());
    let sum = hf_burn::train::checkpoint::fnv1a(&nan);
    nan.extend_from_slice(&sum.to_le_bytes());
    std::fs::write(&path, &nan).unwrap();
    fails_with(&resume(), "parameter 7 is NaN");

    // The file as written resumes.
    std::fs::write(&path, &good).unwrap();
    ok(&resume());
}

/// Writes an IDX file of unsigned bytes with dimensions `dims`.
fn idx(path: &Path, dims: &[u32], fill: impl Fn(usize) -> u8) {
    let mut bytes = vec![0u8, 0, 8, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    let n: u32 = dims.iter().product();
    bytes.extend((0..n as usize).map(fill));
    std::fs::write(path, bytes).unwrap();
}

/// The mnist preset reads the IDX files it is given (never Fashion-MNIST in their
/// place), and summary.json names the data set and hashes its files.
#[test]
fn the_mnist_preset_records_its_data_set_and_hash() {
    let data = scratch("mnist-data");
    std::fs::create_dir_all(&data).unwrap();
    for (prefix, n) in [("train", 24u32), ("t10k", 8)] {
        idx(&data.join(format!("{prefix}-images-idx3-ubyte")), &[n, 28, 28], |i| {
            (i * 37 % 251) as u8
        });
        idx(&data.join(format!("{prefix}-labels-idx1-ubyte")), &[n], |i| {
            (i % 10) as u8
        });
    }
    let out = scratch("mnist-run");
    ok(&hessfree(&[
        "train",
        "--preset",
        "mnist",
        "--data-dir",
        data.to_str().unwrap(),
        "--quiet",
        "--iterations",
        "1",
        "--set",
        "batches.curvature=8",
        "--set",
        "hf.cg.max_iterations=2",
        "--out",
        out.to_str().unwrap(),
    ]));
    let s = summary(&out);
    assert_eq!(s["data"]["name"], "mnist");
    assert_eq!(s["data"]["files"].as_array().unwrap().len(), 4);
    // The hash: FNV-1a of each file's FNV-1a hash in name order.
    let fnv = hf_burn::train::checkpoint::fnv1a;
    let mut names: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let each: Vec<u8> = names
        .iter()
        .flat_map(|n| fnv(&std::fs::read(data.join(n)).unwrap()).to_le_bytes())
        .collect();
    assert_eq!(s["data"]["hash"], format!("{:016x}", fnv(&each)));
    assert_eq!(s["iterations"], 1);

    // Resuming on changed data is refused, and changes nothing.
    idx(&data.join("t10k-labels-idx1-ubyte"), &[8], |i| (i % 3) as u8);
    let before = snapshot(&out);
    fails_with(
        &hessfree(&[
            "train",
            "--quiet",
            "--iterations",
            "2",
            "--resume",
            out.to_str().unwrap(),
        ]),
        "data files changed",
    );
    assert_eq!(snapshot(&out), before);
}

/// The first 40 training and 20 test images of Fashion-MNIST, committed with
/// hf-models' tests, so that no test needs Debian's dataset-fashion-mnist.
fn fashion_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hf-models/tests/fixtures/fashion-mnist-small")
}

/// The presets that read Fashion-MNIST (by default Debian's files) train on the files
/// `--data-dir` names, here the fixture, and record them in summary.json.
#[test]
fn the_fashion_mnist_presets_train_on_the_files_given() {
    let data = fashion_fixture();
    let files = [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ];
    for (preset, name, measure) in [
        ("fashion-mnist", "fashion-mnist", "reconstruction error"),
        ("classifier", "mnist-format idx files", "classification error"),
    ] {
        let out = scratch(&format!("fixture-{preset}"));
        ok(&hessfree(&[
            "train",
            "--preset",
            preset,
            "--data-dir",
            data.to_str().unwrap(),
            "--quiet",
            "--iterations",
            "1",
            "--set",
            "batches.curvature=8",
            "--set",
            "hf.cg.max_iterations=2",
            "--out",
            out.to_str().unwrap(),
        ]));
        let s = summary(&out);
        assert_eq!(
            (s["preset"].as_str(), s["iterations"].as_u64()),
            (Some(preset), Some(1))
        );
        assert_eq!(s["data"]["name"], name, "{preset}");
        let read: Vec<&str> = s["data"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f[0].as_str().unwrap())
            .collect();
        assert_eq!(read, files, "{preset}: the fixture's four files, nothing else");
        assert_eq!(s["held_out_measure"], measure);
        let held = s["held_out_error"].as_f64().unwrap();
        assert!(held.is_finite() && held >= 0.0, "{preset}: held-out {held}");
        if preset == "classifier" {
            assert!(held <= 1.0, "a classification error rate: {held}");
        }
    }
}

#[test]
fn adam_and_sgd_train_the_same_preset() {
    for optimizer in ["adam", "sgd"] {
        let out = scratch(optimizer);
        ok(&tiny(&out, &["--optimizer", optimizer, "--iterations", "3"]));
        let s = summary(&out);
        assert_eq!(s["optimizer"], optimizer);
        assert_eq!(s["iterations"], 3);
        assert!(s["final_objective"].as_f64().unwrap().is_finite());
        assert_eq!(metrics(&out).1.len(), 3);
    }
}

#[test]
fn a_stopped_first_order_run_resumes_bit_identically() {
    for optimizer in ["adam", "sgd"] {
        let run = |out: &Path, n: &str| {
            let out = out.to_str().unwrap();
            let args = [
                "train",
                "--preset",
                "tiny",
                "--backend",
                "ndarray-f64",
                "--quiet",
                "--out",
                out,
            ];
            hessfree(&[&args[..], &["--optimizer", optimizer, "--iterations", n]].concat())
        };
        let whole = scratch(&format!("{optimizer}-whole"));
        ok(&run(&whole, "6"));
        let part = scratch(&format!("{optimizer}-part"));
        ok(&run(&part, "3"));
        assert!(latest_checkpoint(&part).join("optimizer.mpk").is_file());
        let dir = part.to_str().unwrap();
        ok(&hessfree(&["train", "--quiet", "--resume", dir, "--iterations", "6"]));
        assert_eq!(summary(&part)["iterations"], 6);
        let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
        assert_eq!(
            bits(checkpoint_theta(&part)),
            bits(checkpoint_theta(&whole)),
            "{optimizer}"
        );
        let objectives = |d: &Path| {
            let (header, rows) = metrics(d);
            let k = header.split(',').position(|c| c == "objective").unwrap();
            rows.iter().map(|r| r[k].clone()).collect::<Vec<_>>()
        };
        assert_eq!(objectives(&part), objectives(&whole), "{optimizer}");
    }
}

#[test]
fn print_config_shows_the_effective_settings() {
    let dir = scratch("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("over.toml");
    std::fs::write(
        &file,
        "[hf]\nmax_iterations = 7\ninitial_damping = 3.5\n[hf.cg]\nmax_iterations = 11\n",
    )
    .unwrap();
    let o = hessfree(&[
        "train",
        "--preset",
        "tiny",
        "--print-config",
        "--config",
        file.to_str().unwrap(),
        "--set",
        "hf.initial_damping=2.5",
        "--set",
        "trainer.target_held_out=0.01",
    ]);
    ok(&o);
    let cfg: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cfg["hf"]["max_iterations"], 7);
    assert!(cfg.get("iterations").is_none(), "one iterations setting");
    assert_eq!(cfg["hf"]["initial_damping"], 2.5, "--set after --config");
    assert_eq!(cfg["trainer"]["target_held_out"], 0.01);
    assert_eq!(cfg["hf"]["cg"]["max_iterations"], 11);
    // Untouched fields keep Martens' defaults.
    assert_eq!(cfg["hf"]["warm_start_decay"], 0.95);
}

#[test]
fn error_paths_exit_non_zero_with_a_message_and_write_nothing() {
    fails_with(&hessfree(&["train", "--preset", "cifar"]), "invalid value 'cifar'");
    fails_with(&hessfree(&["train", "--backend", "tpu"]), "invalid value 'tpu'");

    // A backend this build does not include: said so, nothing written.
    #[cfg(not(feature = "cuda"))]
    {
        let out = scratch("no-cuda");
        fails_with(
            &hessfree(&[
                "train",
                "--preset",
                "tiny",
                "--backend",
                "cuda",
                "--out",
                out.to_str().unwrap(),
            ]),
            "built without the cuda feature",
        );
        assert!(!out.exists());
    }

    // A missing data set: said so, nothing written. MNIST is its own preset and says
    // where to get it (Fashion-MNIST is another).
    for (preset, needle) in [("classifier", "data set not found"), ("mnist", "downloads nothing")] {
        let out = scratch(&format!("missing-{preset}"));
        fails_with(
            &hessfree(&[
                "train",
                "--preset",
                preset,
                "--data-dir",
                "/nonexistent",
                "--out",
                out.to_str().unwrap(),
            ]),
            needle,
        );
        assert!(!out.exists(), "nothing written for a failed start");
    }

    let corrupt = scratch("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("t10k-images-idx3-ubyte"), [0u8, 0, 8, 3, 0, 0, 0, 9]).unwrap();
    std::fs::write(corrupt.join("t10k-labels-idx1-ubyte"), [0u8, 0, 8, 1, 0, 0, 0, 9]).unwrap();
    let out = scratch("corrupt-out");
    fails_with(
        &hessfree(&[
            "train",
            "--preset",
            "classifier",
            "--data-dir",
            corrupt.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]),
        "not a valid IDX file",
    );
    assert!(!out.exists());

    let dir = scratch("badcfg");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{ "hf": { "initial_damping": -1.0 } }"#).unwrap();
    fails_with(
        &hessfree(&["train", "--preset", "tiny", "--config", bad.to_str().unwrap()]),
        "hf.initial_damping",
    );
    std::fs::write(&bad, r#"{ "hf": { "dampign": 1.0 } }"#).unwrap();
    fails_with(
        &hessfree(&["train", "--preset", "tiny", "--config", bad.to_str().unwrap()]),
        "dampign",
    );
    for (set, needle) in [
        ("hf.dampign=1", "`hf.dampign` is not a setting"),
        ("hf.max_iterations=-3", "--set hf.max_iterations=-3"),
        ("nonsense", "expected path.to.key=value"),
        ("hf.max_iterations=0", "hf.max_iterations"),
    ] {
        fails_with(
            &hessfree(&["train", "--preset", "tiny", "--set", set, "--print-config"]),
            needle,
        );
    }
    std::fs::write(&bad, "{ not json").unwrap();
    fails_with(
        &hessfree(&["train", "--preset", "tiny", "--config", bad.to_str().unwrap()]),
        "not valid JSON",
    );

    let blocker = dir.join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    fails_with(&tiny(&blocker.join("sub"), &[]), "Not a directory");

    let run = scratch("other-preset");
    ok(&tiny(&run, &["--iterations", "1"]));
    fails_with(
        &hessfree(&[
            "train",
            "--preset",
            "curves-small",
            "--quiet",
            "--resume",
            run.to_str().unwrap(),
        ]),
        "preset",
    );
    fails_with(
        &hessfree(&["train", "--preset", "tiny", "--resume", dir.to_str().unwrap()]),
        "no checkpoint found",
    );
    std::fs::write(latest_checkpoint(&run).join("state.bin"), b"HFCKPT01garbage").unwrap();
    fails_with(
        &hessfree(&[
            "train",
            "--preset",
            "tiny",
            "--quiet",
            "--resume",
            run.to_str().unwrap(),
        ]),
        "checkpoint",
    );
}

/// Needs a Vulkan driver (Mesa's software Vulkan in CI): only with `--features wgpu-tests`.
#[cfg(feature = "wgpu-tests")]
#[test]
fn the_tiny_preset_runs_on_wgpu() {
    let out = scratch("wgpu");
    let o = hessfree(&[
        "train",
        "--preset",
        "tiny",
        "--backend",
        "wgpu",
        "--quiet",
        "--iterations",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    assert_eq!(summary(&out)["backend"], "wgpu");
}

#[test]
fn bench_writes_json_markdown_and_plots() {
    let out = scratch("bench");
    let o = hessfree(&[
        "bench",
        "--quick",
        "--skip-macro",
        "--backend",
        "ndarray",
        "--repeats",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let micro = report["micro"].as_array().unwrap();
    assert_eq!(micro.len(), 2, "CURVES autoencoder and RNN at batch 100");
    for m in micro {
        assert_eq!(m["backend"], "ndarray");
        for op in ["gradient", "gauss_newton", "hessian", "preconditioner", "cg_iteration"] {
            assert!(m[op]["median_s"].as_f64().unwrap() > 0.0, "{op}");
        }
        assert!(m["gn_over_gradient"].as_f64().unwrap() > 0.5);
    }
    assert!(report["skipped"].as_array().unwrap().is_empty());
    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(md.contains("| ndarray | curves-autoencoder |"), "{md}");

    let out = scratch("bench-macro");
    let o = hessfree(&[
        "bench",
        "--quick",
        "--skip-micro",
        "--macro-backend",
        "ndarray",
        "--budget",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let runs = report["macro_results"][0]["runs"].as_array().unwrap();
    let methods: Vec<&str> = runs.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods, ["hf", "adam", "adam", "adam", "sgd"]);
    assert!(out.join("curves-small-ndarray.png").is_file());
}

#[test]
fn a_staged_rnn_study_runs_adam_first_then_resumes_with_hf_and_reuses_adam() {
    let out = scratch("rnn-tasks-staged");
    let study = |extra: &[&str]| {
        let mut args = vec![
            "experiment",
            "rnn-tasks",
            "--tasks",
            "xor",
            "--lengths",
            "10",
            "--budget",
            "1",
            "--adam-rates",
            "1e-2",
            "--backend",
            "ndarray",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ok(&hessfree(&args));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
        v["comparisons"][0]["result"]["runs"].as_array().unwrap().clone()
    };
    let first = study(&["--start", "first-order"]);
    let methods = |runs: &[serde_json::Value]| -> Vec<String> {
        runs.iter().map(|r| r["method"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(methods(&first), ["adam"]);
    let second = study(&["--resume", "--start", "hf"]);
    assert_eq!(methods(&second), ["hf", "adam"]);
    // Adam was reused, not run again: the same record, curve included.
    assert_eq!(second[1], first[0]);
    assert_eq!(second[1]["budget_s"], 1.0);
    assert!(out.join("runs/xor-T10-hf/method.json").is_file());
}

#[test]
fn rnn_task_study_writes_its_table_results_and_plots() {
    let out = scratch("rnn-tasks");
    let o = hessfree(&[
        "experiment",
        "rnn-tasks",
        "--tasks",
        "addition,xor",
        "--lengths",
        "10",
        "--budget",
        "1",
        "--adam-rates",
        "1e-2",
        "--backend",
        "ndarray",
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(&o);
    let study: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(study["success_below"], 0.01);
    let comparisons = study["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2);
    for (c, task) in comparisons.iter().zip(["addition", "xor"]) {
        assert_eq!(c["task"], task);
        assert_eq!(c["length"], 10);
        let runs = c["result"]["runs"].as_array().unwrap();
        let methods: Vec<&str> = runs.iter().map(|r| r["method"].as_str().unwrap()).collect();
        assert_eq!(methods, ["hf", "adam"]);
        for r in runs {
            assert!(r["iterations"].as_u64().unwrap() >= 1);
            let held = r["final_held_out"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&held), "zero-one loss {held}");
        }
        assert!(out.join(format!("{task}-T10-ndarray.png")).is_file());
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| addition | 10 | hf (μ = 0.03) |"), "{md}");
    assert!(md.contains("| xor | 10 | adam (lr 1e-2) |"), "{md}");

    fails_with(
        &hessfree(&[
            "experiment",
            "rnn-tasks",
            "--tasks",
            "curves-small",
            "--out",
            out.to_str().unwrap(),
        ]),
        "not a pathological RNN task",
    );
    fails_with(
        &hessfree(&[
            "experiment",
            "rnn-tasks",
            "--lengths",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]),
        "seq_len",
    );
}
