//! The process allocator: the system allocator, except that very large allocations are
//! served from `MAP_NORESERVE` mappings.
//!
//! Why: decoders trust array counts from the wire when they size vectors. A frame of a
//! few bytes can claim 2^31 elements, and the default allocator then refuses a request
//! larger than memory, which aborts the process. A no-reserve mapping only reserves
//! address space: pages are touched only as elements are actually decoded, and decoding
//! stops at the end of the (bounded) frame, so the hostile request fails as malformed and
//! closes only its own connection. Legitimate large buffers (big batches, segment reads)
//! behave exactly as before.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are mapped without reserving memory.
const NORESERVE_BYTES_MIN: usize = 1 << 30;
/// The system allocator maps allocations at least this large on their own (fixed, where
/// glibc would move its threshold up to the largest block freed so far).
const SYSTEM_MMAP_BYTES_MIN: i32 = 4 << 20;
/// Free memory at the top of an allocator heap is returned to the kernel past this much.
const SYSTEM_TRIM_BYTES: i32 = 32 << 20;
const PAGE_BYTES: usize = 4096;

pub struct SluiceAllocator;

/// Fixes the system allocator's thresholds; called once at start, before other threads.
///
/// Why: request frames grow as they arrive, and a produced batch is cached as a slice of its
/// frame, so frames of a few hundred KiB are freed in the order the batch cache evicts them.
/// With glibc's moving thresholds, that pattern had freed memory trimmed back to the kernel
/// and every new frame fault its pages in afresh (one fault per 4 KiB received); with fixed
/// ones, frames reuse freed memory. What the heaps may keep beyond live data is
/// [`SYSTEM_TRIM_BYTES`] each.
pub fn tune_system_allocator() {
    // SAFETY: mallopt only sets allocator parameters; called before other threads allocate.
    let applied = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, SYSTEM_MMAP_BYTES_MIN) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, SYSTEM_TRIM_BYTES) == 1
    };
    if !applied {
        tracing::debug!("the system allocator's thresholds could not be set; its defaults stay");
    }
}

fn mapped(layout: Layout) -> bool {
    layout.size() >= NORESERVE_BYTES_MIN && layout.align() <= PAGE_BYTES
}

// SAFETY: every pointer returned is either the system allocator's (and freed by it) or a
// fresh anonymous mapping of at least `layout.size()` bytes, page-aligned (which satisfies
// any alignment up to a page, the only ones routed to mmap), and freed by munmap with the
// same size, because `mapped` depends only on the layout, which dealloc receives unchanged.
unsafe impl GlobalAlloc for SluiceAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !mapped(layout) {
            // SAFETY: forwarded with the caller's layout, which meets alloc's contract.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: an anonymous private mapping with no address hint has no preconditions.
        let pointer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if pointer == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            pointer.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !mapped(layout) {
            // SAFETY: forwarded with the caller's layout, which meets alloc_zeroed's contract.
            // The system allocator knows which memory is zero already (fresh mappings), so a
            // large zeroed buffer costs no page until it is written.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: as alloc; a fresh anonymous mapping reads as zeroes.
        unsafe { self.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if !mapped(layout) {
            // SAFETY: this pointer came from System.alloc with this layout (see alloc).
            unsafe { System.dealloc(pointer, layout) };
            return;
        }
        // SAFETY: this pointer is a mapping of layout.size() bytes made by alloc.
        unsafe {
            libc::munmap(pointer.cast(), layout.size());
        }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees new_size and layout.align() form a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (mapped(layout), mapped(new_layout)) {
            (false, false) => {
                // SAFETY: both sides belong to the system allocator.
                return unsafe { System.realloc(pointer, layout, new_size) };
            }
            (true, true) => {
                // SAFETY: the pointer is a mapping of layout.size() bytes made by alloc;
                // mremap moves page tables, never the bytes, so untouched pages stay free.
                let moved = unsafe { libc::mremap(pointer.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE) };
                return if moved == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    moved.cast()
                };
            }
            _ => {}
        }
        // Crossing the threshold: the copied part is below it on one side, so at most 1 GiB.
        // SAFETY: a fresh allocation, a copy of the bytes both blocks hold, and the release
        // of the old block with its own layout.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(pointer, moved, layout.size().min(new_size));
                self.dealloc(pointer, layout);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_reservations_succeed_and_small_ones_use_the_system() {
        let huge = Layout::from_size_align(64 << 30, 8).unwrap();
        // SAFETY: the layout has a non-zero size; the block is freed with the same layout.
        unsafe {
            let pointer = SluiceAllocator.alloc(huge);
            assert!(!pointer.is_null(), "a 64 GiB no-reserve mapping succeeds");
            pointer.write(7);
            assert_eq!(pointer.read(), 7);
            let grown = SluiceAllocator.realloc(pointer, huge, (64 << 30) + 4096);
            assert_eq!(grown.read(), 7, "realloc keeps the contents");
            SluiceAllocator.dealloc(grown, Layout::from_size_align((64 << 30) + 4096, 8).unwrap());
        }
        let small = Layout::from_size_align(64, 8).unwrap();
        assert!(!mapped(small));
    }
}
