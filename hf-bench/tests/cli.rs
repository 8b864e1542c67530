//! End to end: the `hf` binary on the tiny preset — records, resume, first-order
//! optimizers and every error path.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hf"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the hf binary runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hf-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "hf failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

fn fails_with(o: &Output, needle: &str) {
    assert!(!o.status.success(), "hf should have failed");
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
    hf(&args)
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

/// Parameters stored in a checkpoint.
fn checkpoint_theta(dir: &Path) -> Vec<f64> {
    let bytes = std::fs::read(dir.join("checkpoint.bin")).unwrap();
    assert_eq!(&bytes[..8], b"HFCKPT02");
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let meta: serde_json::Value = serde_json::from_slice(&bytes[16..16 + len]).unwrap();
    let n = meta["parameters"].as_u64().unwrap() as usize;
    bytes[16 + len..16 + len + 8 * n]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn training_writes_metrics_plot_summary_and_checkpoint() {
    let out = scratch("records");
    ok(&tiny(&out, &[]));
    let (header, rows) = metrics(&out);
    assert_eq!(
        header,
        "iteration,wall_time_s,train_objective,held_out_error,damping,rho,cg_iterations,curvature_products,\
         gradient_s,preconditioner_s,solve_s,backtracking_s,rho_s,line_search_s"
    );
    assert_eq!(rows.len(), 4);
    // The phase profile: every phase took time, and together they fit in the iteration.
    for r in &rows {
        let phases: Vec<f64> = r[8..14].iter().map(|v| v.parse().unwrap()).collect();
        assert!(phases.iter().all(|&t| t > 0.0), "each phase is timed: {phases:?}");
    }
    let wall: f64 = rows[3][1].parse().unwrap();
    let profiled: f64 = rows
        .iter()
        .flat_map(|r| r[8..14].iter().map(|v| v.parse::<f64>().unwrap()))
        .sum();
    assert!(
        profiled <= wall * 1.0001,
        "phases {profiled} s within the training time {wall} s"
    );
    let first: f64 = rows[0][2].parse().unwrap();
    let last: f64 = rows[3][2].parse().unwrap();
    assert!(last < first, "the objective falls: {first} → {last}");
    assert!(
        rows.iter().all(|r| r[3].parse::<f64>().unwrap().is_finite()),
        "held-out error each iteration"
    );
    let png = std::fs::read(out.join("training.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1200);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 500);
    let s = summary(&out);
    assert_eq!(s["preset"], "tiny");
    assert_eq!(s["optimizer"], "hf");
    assert_eq!(s["backend"], "ndarray");
    assert_eq!(s["iterations"], 4);
    let reported = s["final_objective"].as_f64().unwrap();
    assert!((reported - last).abs() <= 1e-8 * last.abs(), "{reported} vs {last}");
    assert!(out.join("checkpoint.bin").is_file() && out.join("config.json").is_file());
    // No temporary files are left behind.
    assert!(std::fs::read_dir(&out)
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".tmp")));
}

/// In f64 on burn-ndarray a run is bit-for-bit reproducible, so a resumed run must
/// match an uninterrupted one exactly. (In f32, burn-ndarray's double-backward
/// products differ in the last bits from one process to the next, so f32 runs agree
/// only up to rounding drift.)
#[test]
fn a_resumed_run_follows_the_uninterrupted_trajectory() {
    let f64_tiny = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--preset", "tiny", "--backend", "ndarray-f64", "--quiet"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        hf(&args)
    };
    let whole = scratch("whole");
    ok(&f64_tiny(&whole, &["--iterations", "4"]));
    let parts = scratch("parts");
    ok(&f64_tiny(&parts, &["--iterations", "2"]));
    // The directory alone: preset, backend, optimizer and seed come from the run.
    ok(&hf(&[
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
    let (_, a) = metrics(&whole);
    let (_, b) = metrics(&parts);
    assert_eq!(a.len(), 4);
    assert_eq!(b.len(), 4);
    for (ra, rb) in a.iter().zip(&b) {
        assert_eq!(ra[2], rb[2], "train objective at iteration {}", ra[0]);
        assert_eq!(ra[4], rb[4], "damping at iteration {}", ra[0]);
    }
    assert_eq!(checkpoint_theta(&whole), checkpoint_theta(&parts));
}

/// Every file of a directory, by name, with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
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
            &hf(&["train", "--quiet", flag, value, "--resume", dir]),
            "conflicts with the run",
        );
        assert_eq!(snapshot(&out), before, "{flag}");
    }
    // Flags that agree are fine.
    ok(&hf(&[
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

/// 64-bit FNV-1a, the checkpoint's checksum.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn a_damaged_checkpoint_is_refused() {
    let out = scratch("damaged");
    ok(&tiny(&out, &["--iterations", "1"]));
    let path = out.join("checkpoint.bin");
    let good = std::fs::read(&path).unwrap();
    let len = u64::from_le_bytes(good[8..16].try_into().unwrap()) as usize;
    let params = 16 + len;
    let resume = || {
        hf(&[
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
    let sum = fnv1a(&nan);
    nan.extend_from_slice(&sum.to_le_bytes());
    std::fs::write(&path, &nan).unwrap();
    fails_with(&resume(), "parameter 7 is NaN");

    // The file as written resumes.
    std::fs::write(&path, &good).unwrap();
    ok(&resume());
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
fn print_config_shows_the_effective_settings() {
    let dir = scratch("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("over.toml");
    std::fs::write(
        &file,
        "iterations = 7\n[hf]\ninitial_damping = 3.5\n[hf.cg]\nmax_iterations = 11\n",
    )
    .unwrap();
    let o = hf(&[
        "train",
        "--preset",
        "tiny",
        "--print-config",
        "--config",
        file.to_str().unwrap(),
    ]);
    ok(&o);
    let cfg: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cfg["iterations"], 7);
    assert_eq!(cfg["hf"]["initial_damping"], 3.5);
    assert_eq!(cfg["hf"]["cg"]["max_iterations"], 11);
    // Untouched fields keep Martens' defaults.
    assert_eq!(cfg["hf"]["warm_start_decay"], 0.95);
}

#[test]
fn error_paths_exit_non_zero_with_a_message_and_write_nothing() {
    fails_with(&hf(&["train", "--preset", "cifar"]), "invalid value 'cifar'");
    fails_with(&hf(&["train", "--backend", "tpu"]), "invalid value 'tpu'");

    // A backend this build does not include: said so, nothing written.
    #[cfg(not(feature = "cuda"))]
    {
        let out = scratch("no-cuda");
        fails_with(
            &hf(&[
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

    let out = scratch("missing");
    fails_with(
        &hf(&[
            "train",
            "--preset",
            "classifier",
            "--data-dir",
            "/nonexistent",
            "--out",
            out.to_str().unwrap(),
        ]),
        "data set not found",
    );
    assert!(!out.exists(), "nothing written for a failed start");

    let corrupt = scratch("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("t10k-images-idx3-ubyte"), [0u8, 0, 8, 3, 0, 0, 0, 9]).unwrap();
    std::fs::write(corrupt.join("t10k-labels-idx1-ubyte"), [0u8, 0, 8, 1, 0, 0, 0, 9]).unwrap();
    let out = scratch("corrupt-out");
    fails_with(
        &hf(&[
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
        &hf(&["train", "--preset", "tiny", "--config", bad.to_str().unwrap()]),
        "hf.initial_damping",
    );
    std::fs::write(&bad, r#"{ "hf": { "dampign": 1.0 } }"#).unwrap();
    fails_with(
        &hf(&["train", "--preset", "tiny", "--config", bad.to_str().unwrap()]),
        "dampign",
    );
    std::fs::write(&bad, "{ not json").unwrap();
    fails_with(
        &hf(&["train", "--preset", "tiny", "--config", bad.to_str().unwrap()]),
        "not valid JSON",
    );

    let blocker = dir.join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    fails_with(&tiny(&blocker.join("sub"), &[]), "cannot write to the output directory");

    let run = scratch("other-preset");
    ok(&tiny(&run, &["--iterations", "1"]));
    fails_with(
        &hf(&[
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
        &hf(&["train", "--preset", "tiny", "--resume", dir.to_str().unwrap()]),
        "not found",
    );
    std::fs::write(run.join("checkpoint.bin"), b"HFCKPT01garbage").unwrap();
    fails_with(
        &hf(&[
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

#[cfg(feature = "wgpu")]
#[test]
fn the_tiny_preset_runs_on_wgpu() {
    let out = scratch("wgpu");
    let o = hf(&[
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
    let o = hf(&[
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
    let o = hf(&[
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
fn rnn_task_study_writes_its_table_results_and_plots() {
    let out = scratch("rnn-tasks");
    let o = hf(&[
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
        &hf(&[
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
        &hf(&[
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
