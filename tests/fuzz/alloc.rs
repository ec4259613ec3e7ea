//! A counting global allocator: how many bytes the current thread holds, and its peak, so that a
//! test can say how much memory one call needed whatever other tests run beside it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // Const-initialised cells without destructors: reading them never allocates, which an
    // allocator must not do.
    static HELD: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with` rather than `with`: allocations may happen while the thread is being torn down.
    let _ = HELD.try_with(|held| {
        let now = held.get() + delta;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call goes unchanged to the system allocator, which upholds GlobalAlloc's contract;
// the wrapper only adds and subtracts sizes in thread-local cells. `realloc` and `alloc_zeroed`
// keep their default definitions, which are built on these two.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Runs `f` and returns its result with the most bytes this thread held at once during the call,
/// above what it held before (what `f` allocated on other threads is not seen).
pub fn peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = HELD.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let top = PEAK.with(Cell::get);
    (out, (top - start).max(0) as usize)
}

pub const MIB: usize = 1 << 20;
