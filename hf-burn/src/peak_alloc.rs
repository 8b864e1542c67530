//! Peak host memory: a global allocator that counts live bytes and their high-water
//! mark, so a benchmark can report the peak of each measurement. A program opts in:
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: hf_burn::peak_alloc::PeakAlloc = hf_burn::peak_alloc::PeakAlloc;
//!
//! fn main() {
//!     let base = hf_burn::peak_alloc::reset();
//!     let work = vec![1u8; 1 << 20]; // the measured work
//!     assert!(hf_burn::peak_alloc::live() >= base + (1 << 20));
//!     drop(work);
//!     assert!(hf_burn::peak_alloc::peak_above(base) >= 1 << 20);
//! }
//! ```
//!
//! Without the `#[global_allocator]` line the counters stay at zero.
// `GlobalAlloc` can only be implemented unsafely; this one only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts allocations on top of the system allocator.
pub struct PeakAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

/// The bytes live now.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Starts a new peak window; returns the bytes live now.
pub fn reset() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// The peak since [`reset`], above `base`.
pub fn peak_above(base: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}
