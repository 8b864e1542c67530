//! Holding a run directory: an exclusive lock for the run's lifetime, so that of two
//! simultaneous starts (or resumes) exactly one proceeds, and the removal of a new
//! run's files when it ends before its first checkpoint, so that a failed start
//! never leaves a stub that blocks the same command.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{CliError, Result};
use crate::run_dir::run_files;

/// The lock file in a run directory. It holds nothing; a process holds an exclusive
/// lock on it (`flock`) while it runs there, which the operating system drops when
/// the process ends, however it ends.
pub const LOCK_FILE: &str = ".hessfree.lock";

/// A run directory held by this process until it is dropped.
#[derive(Debug)]
pub struct ClaimedDir {
    dir: PathBuf,
    lock: Option<File>,
    /// A new run, whose files go if it ends without a checkpoint.
    new_run: bool,
    /// This claim created the directory itself.
    created: bool,
}

impl ClaimedDir {
    /// Claims `dir` for a new run: creates it, takes its lock, and, under the lock,
    /// refuses a directory that holds a run ([`CliError::RunExists`]) unless
    /// `overwrite`, which removes that run's files first. A start that loses the race
    /// for the lock changes nothing.
    ///
    /// # Errors
    /// [`CliError::Output`] when the directory cannot be created or written,
    /// [`CliError::Busy`] when another process holds it, [`CliError::RunExists`].
    pub fn new_run(dir: &Path, overwrite: bool) -> Result<Self> {
        let created = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|source| CliError::Output {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut claim = Self {
            dir: dir.to_path_buf(),
            lock: None,
            new_run: true,
            created,
        };
        claim.lock = Some(lock(dir)?);
        let present = run_files(dir);
        if !present.is_empty() {
            if !overwrite {
                // Not ours: nothing of it may go when this claim is dropped.
                claim.new_run = false;
                return Err(CliError::RunExists {
                    dir: dir.to_path_buf(),
                    files: present.join(", "),
                });
            }
            for f in present {
                let path = dir.join(f);
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.map_err(|source| CliError::Output { path, source })?;
            }
        }
        Ok(claim)
    }

    /// Claims the run in `dir` for a resume: takes its lock. Nothing is removed when
    /// the claim is dropped.
    ///
    /// # Errors
    /// [`CliError::Busy`] when another process holds it; [`CliError::Resume`] when
    /// the lock file cannot be opened.
    pub fn resumed(dir: &Path) -> Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            lock: Some(lock(dir)?),
            new_run: false,
            created: false,
        })
    }
}

/// Opens `dir`'s lock file and takes its lock without waiting.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| CliError::Output {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(CliError::Busy { dir: dir.to_path_buf() }),
        Err(TryLockError::Error(source)) => Err(CliError::Output { path, source }),
    }
}

impl Drop for ClaimedDir {
    /// A new run that ends without a checkpoint (an error, an interruption before the
    /// first one) cannot be resumed: its files go, and the directory too if this
    /// claim created it, so that the same command can start it again.
    fn drop(&mut self) {
        let checkpoints = self.dir.join(hf_burn::train::checkpoint::CHECKPOINTS_DIR);
        let resumable = matches!(hf_burn::train::checkpoint::latest(&checkpoints), Ok(Some(_)));
        if self.new_run && self.lock.is_some() && !resumable {
            for f in run_files(&self.dir) {
                let path = self.dir.join(f);
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
            if self.created {
                // Unlinked while still locked: a start that opened it meanwhile
                // finds it busy; one that comes later creates a new one.
                let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
                let _ = std::fs::remove_dir(&self.dir);
            }
        }
        // The lock goes with the file handle.
        self.lock.take();
    }
}
