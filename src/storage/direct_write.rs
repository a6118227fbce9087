//! One direct write of an append, issued as a synchronous `pwrite` on the shard's own
//! blocking thread (pinned to the shard's CPU) rather than through the ring.
//!
//! Why: ext4 completes an asynchronous direct write (io_uring's) in a kernel worker on the
//! CPU that took the disk's interrupt, and a write's completion waits until that worker gets
//! the CPU. A busy process there delayed it by 0.3 s and more after bursts (perf/README.md,
//! S8). A synchronous direct write is completed by the thread that issued it, so only the
//! shard's own CPU is needed. The buffer is Sluice's own ([`AlignedBuffer`]): glommio's
//! `DmaBuffer` may not leave its thread.

use std::alloc::Layout;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use crate::constants::IO_ALIGNMENT_BYTES;

/// An I/O-aligned buffer holding one write, owned, so a blocking thread can write it.
pub struct AlignedBuffer {
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer owns its memory alone (no aliasing pointer is kept elsewhere), so moving
// it to another thread moves sole access with it.
unsafe impl Send for AlignedBuffer {}

impl AlignedBuffer {
    /// `len` bytes (a non-zero multiple of the I/O alignment): `pieces` in order, then zeroes.
    pub fn from_pieces<'a>(len: usize, pieces: impl IntoIterator<Item = &'a [u8]>) -> AlignedBuffer {
        assert!(
            len > 0 && len as u64 % IO_ALIGNMENT_BYTES == 0,
            "a direct write of {len} bytes"
        );
        let layout = layout(len);
        // SAFETY: the layout has a non-zero size.
        let start = NonNull::new(unsafe { std::alloc::alloc(layout) })
            .unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        let mut at = 0usize;
        for piece in pieces {
            assert!(at + piece.len() <= len, "pieces overrun a {len}-byte write");
            // SAFETY: `at + piece.len() <= len`, inside the allocation; the piece is another
            // allocation's bytes, so the two do not overlap.
            unsafe {
                start
                    .as_ptr()
                    .add(at)
                    .copy_from_nonoverlapping(piece.as_ptr(), piece.len())
            };
            at += piece.len();
        }
        // SAFETY: `at <= len`: the rest of the allocation.
        unsafe { start.as_ptr().add(at).write_bytes(0, len - at) };
        AlignedBuffer { start, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: every byte was written in `from_pieces`, and the allocation lives as long
        // as `self`.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }

    /// Writes the buffer at `position` of `file` (opened with O_DIRECT) on this shard's
    /// blocking thread; the bytes written. The write holds its own duplicate of the
    /// descriptor, so it can never land in another file even if the awaiting append is
    /// dropped and the file closed while the thread still writes.
    pub async fn write_at(self, file: BorrowedFd<'_>, position: u64) -> std::io::Result<usize> {
        let offset = libc::off_t::try_from(position).map_err(std::io::Error::other)?;
        let fd = file.try_clone_to_owned()?;
        glommio::executor()
            .spawn_blocking(move || loop {
                let bytes = self.as_slice();
                // SAFETY: the pointer and length describe `bytes`, valid for the call; `fd` is
                // owned by this closure, so it is open for the call.
                let written = unsafe { libc::pwrite(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), offset) };
                if written >= 0 {
                    return Ok(written as usize);
                }
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            })
            .await
    }
}

impl Drop for AlignedBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `from_pieces` with this very layout.
        unsafe { std::alloc::dealloc(self.start.as_ptr(), layout(self.len)) };
    }
}

fn layout(len: usize) -> Layout {
    Layout::from_size_align(len, IO_ALIGNMENT_BYTES as usize).expect("an aligned write's layout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_laid_out_in_order_and_padded_with_zeroes() {
        let buffer = AlignedBuffer::from_pieces(8192, [&b"tail"[..], &[7u8; 5000][..]]);
        let bytes = buffer.as_slice();
        assert_eq!(bytes.as_ptr() as usize % IO_ALIGNMENT_BYTES as usize, 0, "aligned");
        assert_eq!(&bytes[..4], b"tail");
        assert!(bytes[4..5004].iter().all(|&b| b == 7));
        assert!(bytes[5004..].iter().all(|&b| b == 0), "padding is zeroes");
    }

    #[test]
    #[should_panic(expected = "overrun")]
    fn pieces_longer_than_the_write_are_refused() {
        AlignedBuffer::from_pieces(4096, [&[1u8; 4097][..]]);
    }
}
