//! Data-parallel runs of the `hessfree` binary: workers in one process
//! (`--devices`), processes with an orchestrator (`--nodes`), a worker killed
//! mid-run, and resume on another number of workers.
//!
//! The tiny preset on ndarray-f64 at λ₀ = 10⁴: at its default λ₀ = 1 a 20-step CG on
//! this autoencoder amplifies rounding (1 and 2 workers, whose sums differ only in
//! their order, part by 1e-10 in the objective after one iteration and 1e-5 after
//! five, measured; still 3e-13 and 2e-7 at λ₀ = 100),
//! so no summation order could agree to 1e-10; at 10⁴ they agree to 1e-16.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{command, hessfree, ok, scratch, stderr};

const ITERATIONS: &str = "5";

/// The tiny preset's arguments, writing to `out`.
fn run_args(out: &Path, iterations: &str) -> Vec<String> {
    [
        "train",
        "--preset",
        "tiny",
        "--backend",
        "ndarray-f64",
        "--quiet",
        "--iterations",
        iterations,
        "--set",
        "hf.initial_damping=10000",
        "--set",
        "trainer.checkpoint_every=1",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn theta(dir: &Path) -> Vec<f64> {
    let latest = hf_burn::train::checkpoint::latest(&dir.join("checkpoints"))
        .unwrap()
        .expect("a checkpoint");
    hf_burn::train::checkpoint::load(&latest).unwrap().state.theta
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len());
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    assert!(diff <= 1e-10 * norm, "{what}: relative difference {:e}", diff / norm);
}

/// The single-worker run every test compares with.
fn single(name: &str) -> PathBuf {
    let out = scratch(name);
    ok(&hessfree(&strs(&run_args(&out, ITERATIONS))));
    out
}

/// Ports nobody listens on now (the kernel's choice; released before use).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// A child process killed and reaped when dropped, so a failing test leaves none.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An orchestrator on a free port; its port.
fn orchestrator() -> (Reaped, u16) {
    let port = free_ports(1)[0];
    let child = command(&["orchestrator", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (Reaped(child), port)
}

/// Rank `rank` of a 2-process run, its data service on `port`.
fn node(args: &[String], rank: usize, orchestrator: u16, port: u16, extra: &[&str]) -> Reaped {
    let mut c = command(&strs(args));
    c.args([
        "--nodes",
        "2",
        "--rank",
        &rank.to_string(),
        "--orchestrator",
        &format!("ws://127.0.0.1:{orchestrator}"),
        "--node-address",
        &format!("ws://127.0.0.1:{port}"),
    ])
    .args(extra)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    Reaped(c.spawn().unwrap())
}

/// Waits for `child`, at most `limit`; its exit status and standard error.
fn finish(child: &mut Reaped, limit: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return (status.code(), err);
        }
        assert!(start.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until rank 0 (`lead`) has saved its first checkpoint in `out`.
fn first_checkpoint(out: &Path, lead: &mut Reaped) {
    let start = Instant::now();
    while hf_burn::train::checkpoint::latest(&out.join("checkpoints"))
        .ok()
        .flatten()
        .is_none()
    {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        assert!(lead.0.try_wait().unwrap().is_none(), "rank 0 ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops an orchestrator as a user would (SIGTERM) and checks that it exits.
fn stop(mut orchestrator: Reaped) {
    let pid = orchestrator.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let (code, err) = finish(&mut orchestrator, Duration::from_secs(20));
    assert_eq!(code, Some(0), "the orchestrator exits cleanly on SIGTERM:\n{err}");
}

#[test]
fn two_workers_in_one_process_match_one_and_resume_on_one() {
    let one = single("devices-1");
    let two = scratch("devices-2");
    let o = hessfree(&[strs(&run_args(&two, ITERATIONS)), vec!["--devices", "2"]].concat());
    ok(&o);
    assert_eq!(summary(&two)["iterations"], 5);
    assert_close(&theta(&two), &theta(&one), "--devices 2 against 1");

    // Three iterations on two workers, the rest on one: the shards are recomputed,
    // the state is the checkpoint's.
    let split = scratch("devices-2-then-1");
    ok(&hessfree(
        &[strs(&run_args(&split, "3")), vec!["--devices", "2"]].concat(),
    ));
    ok(&hessfree(&[
        "train",
        "--quiet",
        "--iterations",
        ITERATIONS,
        "--resume",
        split.to_str().unwrap(),
    ]));
    assert_eq!(summary(&split)["iterations"], 5);
    assert_close(&theta(&split), &theta(&one), "2 workers, then resumed on 1");

    // HF only; a batch must have a case per worker.
    let adam = scratch("devices-adam");
    let o = hessfree(
        &[
            strs(&run_args(&adam, "1")),
            vec!["--devices", "2", "--optimizer", "adam"],
        ]
        .concat(),
    );
    assert!(
        !o.status.success() && stderr(&o).contains("run HF only"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn two_processes_and_an_orchestrator_match_one_process() {
    let one = single("nodes-1");
    let (orchestrator, o_port) = orchestrator();
    let ports = free_ports(2);
    let out = scratch("nodes-2");
    let args = run_args(&out, ITERATIONS);
    let mut rank1 = node(&args, 1, o_port, ports[1], &[]);
    let mut rank0 = node(&args, 0, o_port, ports[0], &[]);
    let (c0, e0) = finish(&mut rank0, Duration::from_secs(300));
    let (c1, e1) = finish(&mut rank1, Duration::from_secs(60));
    assert_eq!((c0, c1), (Some(0), Some(0)), "rank 0:\n{e0}\nrank 1:\n{e1}");
    stop(orchestrator);
    assert_eq!(summary(&out)["iterations"], 5);
    assert_close(&theta(&out), &theta(&one), "2 processes against 1");
    assert!(
        !e0.contains("INFO") && !e1.contains("INFO"),
        "burn-communication's transfers are not logged:\n{e0}"
    );
}

#[test]
fn a_killed_process_stops_the_other_which_names_it_and_the_run_resumes() {
    let (orchestrator, o_port) = orchestrator();
    let ports = free_ports(2);
    let out = scratch("nodes-killed");
    let args = run_args(&out, "400");
    let mut rank1 = node(&args, 1, o_port, ports[1], &[]);
    let mut rank0 = node(&args, 0, o_port, ports[0], &[]);
    // Kill rank 1 once rank 0 has saved a checkpoint.
    first_checkpoint(&out, &mut rank0);
    rank1.0.kill().unwrap(); // SIGKILL
    rank1.0.wait().unwrap();
    let killed = Instant::now();
    let (code, err) = finish(&mut rank0, Duration::from_secs(60));
    assert!(killed.elapsed() < Duration::from_secs(60));
    assert_ne!(code, Some(0), "rank 0 fails:\n{err}");
    assert!(err.contains("lost worker 1"), "the lost worker is named:\n{err}");
    stop(orchestrator);

    // The checkpoint is intact: one worker completes the run from it.
    let at = theta(&out);
    assert!(!at.is_empty());
    ok(&hessfree(&[
        "train",
        "--quiet",
        "--iterations",
        "8",
        "--resume",
        out.to_str().unwrap(),
    ]));
    assert_eq!(summary(&out)["iterations"], 8);
}

#[test]
fn a_process_that_stops_answering_is_named_within_the_timeout() {
    let (orchestrator, o_port) = orchestrator();
    let ports = free_ports(2);
    let out = scratch("nodes-stopped");
    let args = run_args(&out, "400");
    let timeout = ["--collective-timeout", "5"];
    let rank1 = node(&args, 1, o_port, ports[1], &timeout);
    let mut rank0 = node(&args, 0, o_port, ports[0], &timeout);
    first_checkpoint(&out, &mut rank0);
    // Alive but silent: its connections stay open, only the timeout can tell.
    let pid = rank1.0.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let stopped = Instant::now();
    let (code, err) = finish(&mut rank0, Duration::from_secs(60));
    assert!(stopped.elapsed() < Duration::from_secs(30), "{:?}", stopped.elapsed());
    assert_ne!(code, Some(0));
    assert!(
        err.contains("lost worker 1") && err.contains("no answer in 5 s"),
        "{err}"
    );
    drop(rank1); // SIGKILL, reaped
    stop(orchestrator);
}
