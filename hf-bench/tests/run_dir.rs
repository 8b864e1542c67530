//! A run directory that no failure leaves half-made (issue 20): settings refused at
//! every depth before anything is written, one winner among simultaneous starts, no
//! stub after a failed start, resumes that change nothing until everything checks
//! out, Ctrl-C with a checkpoint, full disks, and exit codes that say how a run ended.

mod common;

use common::{command, hessfree, ok, scratch, snapshot, stderr};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Asserts the exit code and a part of the message.
fn exits_with(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "expected exit {code}:\n{err}");
    assert!(err.contains(needle), "expected {needle:?} in:\n{err}");
}

/// `train --preset tiny` on ndarray-f64 into `out`.
fn tiny_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--preset",
        "tiny",
        "--backend",
        "ndarray-f64",
        "--quiet",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(out.to_str().unwrap().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn tiny(out: &Path, extra: &[&str]) -> Output {
    let args = tiny_args(out, extra);
    hessfree(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn resume(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--quiet", "--resume", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    hessfree(&args)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The newest checkpoint, verified.
fn latest(dir: &Path) -> Option<hf_burn::train::Checkpoint> {
    hf_burn::train::checkpoint::latest(&dir.join("checkpoints"))
        .unwrap()
        .map(|p| hf_burn::train::checkpoint::load(&p).unwrap())
}

/// The metrics rows' iterations and objectives, as written.
fn trajectory(dir: &Path) -> Vec<(usize, String)> {
    let (_, rows) = hf_burn::train::read_metrics(&dir.join("metrics.csv")).unwrap();
    rows.iter()
        .map(|r| (r.iteration, format!("{:e}", r.objective)))
        .collect()
}

#[test]
fn typos_at_any_depth_and_non_finite_numbers_are_refused_before_anything_is_written() {
    let root = scratch("typos");
    std::fs::create_dir_all(&root).unwrap();
    let cases = [
        (
            "a.json",
            r#"{"hf":{"cg":{"max_iteration":5}}}"#,
            "unknown field `max_iteration`",
        ),
        (
            "b.toml",
            "[problem]\ncurvatur = \"fisher\"\n",
            "unknown field `curvatur`",
        ),
        ("c.toml", "[hf.line_search]\nmax_trys = 3\n", "unknown field `max_trys`"),
        ("d.toml", "[hf.damping]\nboots = 2.0\n", "unknown field `boots`"),
        (
            "e.toml",
            "[trainer]\ntarget_held_out = nan\n",
            "`trainer.target_held_out` is not a finite number",
        ),
        (
            "f.toml",
            "[hf]\ntime_budget_s = inf\n",
            "`hf.time_budget_s` is not a finite number",
        ),
    ];
    for (name, text, needle) in cases {
        let file = root.join(name);
        std::fs::write(&file, text).unwrap();
        let out = root.join(format!("out-{name}"));
        let o = tiny(&out, &["--config", file.to_str().unwrap()]);
        exits_with(&o, 1, needle);
        assert!(!out.exists(), "{name}: nothing is written");
    }
    let out = root.join("out-set");
    let o = tiny(&out, &["--set", r#"hf.cg={"max_iterations":5,"bogus":1}"#]);
    exits_with(&o, 1, "unknown field `bogus`");
    assert!(!out.exists());
    std::fs::remove_dir_all(&root).unwrap();
}

/// Starts a tiny run with `seed` into `out`.
fn start(out: &Path, seed: &str) -> Child {
    let args = tiny_args(out, &["--iterations", "1", "--seed", seed]);
    command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn of_two_simultaneous_starts_exactly_one_proceeds_and_owns_the_directory() {
    for trial in 0..32u64 {
        let out = scratch(&format!("race-{trial}"));
        let first = start(&out, "1");
        // 0 to 15 ms apart: the second start lands at every stage of the first's.
        std::thread::sleep(Duration::from_micros(trial * 500));
        let second = start(&out, "2");
        let (a, b) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
        let winners: Vec<(&Output, u64)> = [(&a, 1), (&b, 2)]
            .into_iter()
            .filter(|(o, _)| o.status.success())
            .collect();
        assert_eq!(winners.len(), 1, "trial {trial}: {}\n---\n{}", stderr(&a), stderr(&b));
        let (loser, seed) = if a.status.success() { (&b, 1) } else { (&a, 2) };
        let err = stderr(loser);
        assert!(
            err.contains("another hessfree process is running") || err.contains("already holds a run"),
            "trial {trial}: {err}"
        );
        // Everything in the directory is the winner's.
        assert_eq!(json(&out.join("run.json"))["seed"], seed, "trial {trial}");
        assert_eq!(json(&out.join("summary.json"))["seed"], seed, "trial {trial}");
        assert_eq!(latest(&out).unwrap().run["seed"], seed, "trial {trial}");
        ok(&resume(&out, &["--iterations", "2"]));
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn a_start_that_fails_on_its_data_writes_nothing() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hf-models/tests/fixtures/fashion-mnist-small");
    let data = scratch("cut-data");
    std::fs::create_dir_all(&data).unwrap();
    for e in std::fs::read_dir(&fixture).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), data.join(e.file_name())).unwrap();
    }
    // The training images cut in half: read only by the training itself.
    let train = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("train-images"))
        .unwrap();
    let bytes = std::fs::read(&train).unwrap();
    std::fs::write(&train, &bytes[..bytes.len() / 2]).unwrap();
    let out = scratch("cut-data-out");
    let o = hessfree(&[
        "train",
        "--preset",
        "fashion-mnist",
        "--data-dir",
        data.to_str().unwrap(),
        "--backend",
        "ndarray",
        "--quiet",
        "--iterations",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    exits_with(&o, 1, "train-images");
    assert!(
        !out.exists(),
        "no stub: {:?}",
        std::fs::read_dir(&out).map(|d| d.count())
    );
    std::fs::remove_dir_all(&data).unwrap();
}

#[test]
fn a_failed_resume_changes_nothing() {
    let out = scratch("failed-resume");
    ok(&tiny(&out, &["--iterations", "6"]));
    let before = snapshot(&out);

    // A damaged checkpoint: refused, config.json not rewritten to 20 iterations.
    let state = hf_burn::train::checkpoint::latest(&out.join("checkpoints"))
        .unwrap()
        .unwrap()
        .join("state.bin");
    let good = std::fs::read(&state).unwrap();
    let mut bad = good.clone();
    let k = bad.len() / 2;
    bad[k] ^= 0x40;
    std::fs::write(&state, &bad).unwrap();
    let damaged = snapshot(&out);
    exits_with(&resume(&out, &["--iterations", "20"]), 1, "checksum mismatch");
    assert_eq!(snapshot(&out), damaged);
    std::fs::write(&state, &good).unwrap();

    // run.json missing: refused, nothing written in its place.
    let run = std::fs::read(out.join("run.json")).unwrap();
    std::fs::remove_file(out.join("run.json")).unwrap();
    let without = snapshot(&out);
    exits_with(&resume(&out, &[]), 1, "run.json is missing");
    assert_eq!(snapshot(&out), without);
    std::fs::write(out.join("run.json"), run).unwrap();

    // Fewer iterations than the run has done (item 10): refused, config.json unchanged.
    exits_with(&resume(&out, &["--iterations", "4"]), 1, "has done 6 iterations");
    assert_eq!(snapshot(&out), before);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_resume_with_a_lost_or_damaged_history_is_refused() {
    let out = scratch("history");
    ok(&tiny(&out, &["--iterations", "3"]));
    let before = snapshot(&out);
    for (file, damage, needle) in [
        ("metrics.csv", None, "metrics.csv: is missing"),
        ("metrics.jsonl", None, "metrics.jsonl: is missing"),
        (
            "metrics.csv",
            Some(2usize),
            "holds iterations 1..=2 where the checkpoint needs 1..=3",
        ),
        ("metrics.jsonl", Some(2), "disagrees with metrics.csv"),
    ] {
        let path = out.join(file);
        let good = std::fs::read(&path).unwrap();
        match damage {
            None => std::fs::remove_file(&path).unwrap(),
            Some(rows) => {
                // Keep the header (CSV) and `rows` rows.
                let keep = if file.ends_with("csv") { rows + 1 } else { rows };
                let text: String = String::from_utf8(good.clone())
                    .unwrap()
                    .lines()
                    .take(keep)
                    .map(|l| format!("{l}\n"))
                    .collect();
                std::fs::write(&path, text).unwrap();
            }
        }
        let damaged = snapshot(&out);
        exits_with(&resume(&out, &["--iterations", "5"]), 1, needle);
        assert_eq!(snapshot(&out), damaged, "{file}: nothing changed");
        std::fs::write(&path, good).unwrap();
    }
    assert_eq!(snapshot(&out), before);
    ok(&resume(&out, &["--iterations", "5"]));
    assert_eq!(trajectory(&out).len(), 5);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn runs_that_go_nowhere_do_not_exit_zero() {
    // λ that can never grow: refused before anything is written.
    let out = scratch("nowhere");
    let o = tiny(
        &out,
        &["--set", "hf.initial_damping=0", "--set", "hf.damping.min_damping=0"],
    );
    exits_with(&o, 1, "damping.min_damping");
    assert!(!out.exists());
    // SGD diverging to NaN: exit status 3, and the run is recorded as diverged.
    let o = tiny(
        &out,
        &[
            "--optimizer",
            "sgd",
            "--set",
            "sgd.learning_rate=1e300",
            "--iterations",
            "50",
        ],
    );
    exits_with(&o, 3, "diverged");
    assert_eq!(json(&out.join("summary.json"))["stop"], "diverged");
    std::fs::remove_dir_all(&out).unwrap();
}

/// Waits until the run in `dir` has written `rows` metrics rows.
fn wait_for_rows(dir: &Path, rows: usize, child: &mut Child) {
    let started = Instant::now();
    while std::fs::read_to_string(dir.join("metrics.csv")).map_or(0, |t| t.lines().count().saturating_sub(1)) < rows {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(started.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_checkpoints_the_interrupted_iteration_and_the_run_resumes_bit_identically() {
    let whole = scratch("sigint-whole");
    ok(&tiny(&whole, &["--iterations", "12"]));

    let parts = scratch("sigint-parts");
    let args = tiny_args(&parts, &["--iterations", "12"]);
    let mut child = command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&parts, 3, &mut child);
    signal(&child, "INT");
    let o = child.wait_with_output().unwrap();
    exits_with(&o, 130, "--resume");
    let done = trajectory(&parts).len();
    assert!((3..12).contains(&done), "stopped after {done} iterations");
    assert_eq!(
        latest(&parts).unwrap().state.iteration,
        done,
        "the checkpoint is at the interrupted iteration"
    );

    ok(&resume(&parts, &[]));
    assert_eq!(trajectory(&parts), trajectory(&whole));
    assert_eq!(latest(&parts).unwrap().state.theta, latest(&whole).unwrap().state.theta);

    // SIGTERM: the same, with 143.
    let term = scratch("sigterm");
    let args = tiny_args(&term, &["--iterations", "12"]);
    let mut child = command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&term, 2, &mut child);
    signal(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    exits_with(&o, 143, "SIGTERM");
    ok(&resume(&term, &[]));
    assert_eq!(trajectory(&term), trajectory(&whole));
    for d in [whole, parts, term] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_corrupts_nothing() {
    let out = scratch("sigint-twice");
    let args = tiny_args(&out, &["--iterations", "200", "--set", "trainer.checkpoint_every=1"]);
    let mut child = command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&out, 2, &mut child);
    signal(&child, "INT");
    signal(&child, "INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    // Whatever the moment: the newest checkpoint loads, and the run continues from it.
    let at = latest(&out).expect("a checkpoint").state.iteration;
    ok(&resume(&out, &["--iterations", &(at + 1).to_string()]));
    std::fs::remove_dir_all(&out).unwrap();
}

/// A small tmpfs at `dir`, or `None` where mounting is not allowed (then the test
/// says so; `.ci/run` runs as root and sets `HF_REQUIRE_MOUNT`, so CI never skips).
fn small_filesystem(dir: &Path, size: &str) -> Option<()> {
    std::fs::create_dir_all(dir).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            dir.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("HF_REQUIRE_MOUNT").is_none(),
            "HF_REQUIRE_MOUNT is set but a tmpfs cannot be mounted"
        );
        eprintln!("skipped: cannot mount a tmpfs here (run as root to test a full disk)");
    }
    mounted.then_some(())
}

fn unmount(dir: &Path) {
    let _ = Command::new("umount").arg(dir).status();
    let _ = std::fs::remove_dir_all(dir);
}

/// Fills the file system under `dir` but for `leave` bytes.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    use std::io::Write;
    while f.write_all(&chunk).is_ok() {}
    drop(f);
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len.saturating_sub(leave))
        .unwrap();
    filler
}

fn no_temporaries(dir: &Path) {
    let names: Vec<String> = snapshot(dir).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.iter().all(|n| !n.contains(".tmp-") && !n.contains(".old-")),
        "{names:?}"
    );
}

#[test]
fn a_full_disk_is_named_leaves_no_temporaries_and_the_run_resumes_once_there_is_room() {
    let mnt = scratch("full-disk");
    if small_filesystem(&mnt, "8m").is_none() {
        return;
    }
    let whole = scratch("full-disk-whole");
    ok(&tiny(
        &whole,
        &["--iterations", "6", "--set", "trainer.checkpoint_every=2"],
    ));

    // A full disk at the first checkpoint of a new run: named, and no stub left.
    let out = mnt.join("run");
    let filler = fill(&mnt, 0);
    let o = tiny(&out, &["--iterations", "6", "--set", "trainer.checkpoint_every=2"]);
    exits_with(&o, 1, "No space left on device");
    assert!(!out.exists(), "no stub after a start that failed");
    std::fs::remove_file(&filler).unwrap();

    // Room for the start and a checkpoint, then full: the earlier checkpoint stays.
    ok(&tiny(
        &out,
        &["--iterations", "2", "--set", "trainer.checkpoint_every=2"],
    ));
    let filler = fill(&mnt, 0);
    let before = latest(&out).unwrap().state.iteration;
    let o = resume(&out, &["--iterations", "6"]);
    exits_with(&o, 1, "No space left on device");
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    no_temporaries(&out);
    assert_eq!(latest(&out).unwrap().state.iteration, before);
    // Space back: the run continues to the same end as one never interrupted.
    std::fs::remove_file(&filler).unwrap();
    ok(&resume(&out, &["--iterations", "6"]));
    assert_eq!(trajectory(&out), trajectory(&whole));
    assert_eq!(latest(&out).unwrap().state.theta, latest(&whole).unwrap().state.theta);
    unmount(&mnt);
    std::fs::remove_dir_all(&whole).unwrap();
}

#[test]
fn ctrl_c_at_the_start_leaves_nothing_that_blocks_the_same_command() {
    for delay_ms in [0u64, 30, 100, 300] {
        let out = scratch(&format!("sigint-early-{delay_ms}"));
        let args = tiny_args(&out, &["--iterations", "3"]);
        let child = command(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(&child, "INT");
        let o = child.wait_with_output().unwrap();
        // Killed by the signal's default action before the handler was installed (the
        // process was still starting): it had written nothing.
        if std::os::unix::process::ExitStatusExt::signal(&o.status) == Some(2) {
            assert!(!out.exists(), "{delay_ms} ms: killed while starting, yet wrote");
            ok(&tiny(&out, &["--iterations", "3"]));
        }
        // Otherwise finished before the signal, or stopped by it: never a stub.
        assert!(
            matches!(o.status.code(), Some(0 | 130) | None),
            "{:?}: {}",
            o.status,
            stderr(&o)
        );
        if o.status.code() == Some(130) {
            if latest(&out).is_some() {
                ok(&resume(&out, &[]));
            } else {
                assert!(!out.exists(), "{delay_ms} ms: a stub without a checkpoint");
                ok(&tiny(&out, &["--iterations", "3"]));
            }
        }
        assert_eq!(json(&out.join("summary.json"))["iterations"], 3);
        std::fs::remove_dir_all(&out).unwrap();
    }
}
