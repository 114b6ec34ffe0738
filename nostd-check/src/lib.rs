//! Proof that `switchboard-protocol` builds and links without `std`: a `#![no_std]` static library with its own
//! panic handler and a fixed-arena bump allocator, exporting one function that runs the decoder and the client.
#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use switchboard_protocol::rng::Rng;
use switchboard_protocol::wire::{MessageId, decode_client};

const ARENA_BYTES: usize = 1 << 20;

/// A bump allocator over a static arena; it never frees. Enough to prove the link, not for production.
struct Bump {
    arena: UnsafeCell<[u8; ARENA_BYTES]>,
    next: AtomicUsize,
}

// SAFETY: allocation hands out disjoint ranges via an atomic cursor.
unsafe impl Sync for Bump {}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut start = 0;
        let claimed = self.next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
            start = cur.next_multiple_of(layout.align());
            let end = start.checked_add(layout.size())?;
            (end <= ARENA_BYTES).then_some(end)
        });
        match claimed {
            // SAFETY: start..start+size lies inside the arena and no other allocation overlaps it.
            Ok(_) => unsafe { (self.arena.get() as *mut u8).add(start) },
            Err(_) => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump { arena: UnsafeCell::new([0; ARENA_BYTES]), next: AtomicUsize::new(0) };

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// Decodes a native client frame of `len` bytes at `ptr`; returns 0 when it decodes, else the error code's length.
///
/// # Safety
/// `ptr` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn switchboard_nostd_check(ptr: *const u8, len: usize) -> usize {
    // SAFETY: the caller promises `len` readable bytes at `ptr`.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    let Ok(text) = core::str::from_utf8(bytes) else { return usize::MAX };
    let mut rng = Rng::from_seed(len as u64);
    let _id = MessageId::random(&mut rng);
    match decode_client(text) {
        Ok(_) => 0,
        Err(e) => e.code().as_str().len(),
    }
}
