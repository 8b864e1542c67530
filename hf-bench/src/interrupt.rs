//! Ctrl-C and SIGTERM: the first asks the run to stop after the iteration in
//! progress, with a checkpoint; a second ends the process at once (every file the
//! run writes is replaced atomically, so that loses at most the iterations since the
//! last checkpoint).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The exit status of a run stopped by SIGINT (128 + 2), as shells report it.
pub const EXIT_SIGINT: u8 = 130;
/// The exit status of a run stopped by SIGTERM (128 + 15).
pub const EXIT_SIGTERM: u8 = 143;

/// Whether a stop was asked for, and by which signal.
#[derive(Debug, Clone)]
pub struct Interrupt {
    requested: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Installs the handlers of SIGINT and SIGTERM for the rest of the process.
    ///
    /// # Errors
    /// The operating system refusing a handler.
    pub fn install() -> std::io::Result<Self> {
        let requested = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicUsize::new(0));
        for (sig, status) in [(SIGINT, EXIT_SIGINT), (SIGTERM, EXIT_SIGTERM)] {
            // Registered first, so it sees the flag as the earlier signal left it:
            // the second signal exits at once.
            signal_hook::flag::register_conditional_shutdown(sig, i32::from(status), requested.clone())?;
            signal_hook::flag::register(sig, requested.clone())?;
            signal_hook::flag::register_usize(sig, signal.clone(), sig as usize)?;
        }
        // Says at once that the signal was heard (a handler itself cannot print): an
        // iteration of a large preset takes tens of seconds.
        let heard = requested.clone();
        std::thread::spawn(move || {
            while !heard.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            eprintln!("\nstopping after the iteration in progress, with a checkpoint (again to stop at once)");
        });
        Ok(Self { requested, signal })
    }

    /// No handler: the signals keep their default action (the benchmarks, whose
    /// runs are not resumed).
    pub fn inactive() -> Self {
        Self {
            requested: Arc::new(AtomicBool::new(false)),
            signal: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// The exit status for the signal that asked for the stop, if any did.
    pub fn exit_status(&self) -> Option<u8> {
        self.requested().then(|| {
            if self.signal.load(Ordering::SeqCst) == SIGTERM as usize {
                EXIT_SIGTERM
            } else {
                EXIT_SIGINT
            }
        })
    }

    /// The signal's name, for messages.
    pub fn signal_name(&self) -> &'static str {
        if self.signal.load(Ordering::SeqCst) == SIGTERM as usize {
            "SIGTERM"
        } else {
            "SIGINT"
        }
    }
}
