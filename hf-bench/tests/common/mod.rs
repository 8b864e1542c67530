//! What the `hessfree` binary's test files share: running it, scratch directories,
//! its output, and snapshots of run directories.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary with `args`, not yet run.
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hessfree"));
    c.args(args).env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

/// Runs the binary with `args` to its end.
pub fn hessfree(args: &[&str]) -> Output {
    command(args).output().expect("the hessfree binary runs")
}

/// A path under the temporary directory, unique to this test process and `name`,
/// with nothing at it.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hf-{}-{}-{name}", env!("CARGO_CRATE_NAME"), std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The run's standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the run succeeded.
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "hessfree failed ({:?}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

/// Every file under a directory, by relative path, with its bytes.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            files.extend(snapshot(&e.path()).into_iter().map(|(n, b)| (format!("{name}/{n}"), b)));
        } else {
            files.push((name, std::fs::read(e.path()).unwrap()));
        }
    }
    files.sort();
    files
}
