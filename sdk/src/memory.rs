//! Guest memory handed to the host: `proxy_on_memory_allocate` / `malloc`, and taking back
//! ownership of what the host returns through `return_data` / `return_size` out-parameters.

use std::alloc::{alloc, Layout};
use std::ptr::NonNull;

/// Allocates `size` bytes for the host (the body of the `proxy_on_memory_allocate` and `malloc`
/// exports). Returns null on failure, which the ABI reads as "allocation failed".
///
/// Every block is allocated with `Layout::from_size_align(size, 1)`, exactly the layout of a
/// `Vec<u8>` with capacity `size`, so [`take`] can adopt it as one. A zero-size request returns
/// a dangling, non-null pointer that must not be written to and is never freed.
pub(crate) fn allocate(size: usize) -> *mut u8 {
    if size == 0 {
        return NonNull::<u8>::dangling().as_ptr();
    }
    match Layout::from_size_align(size, 1) {
        // SAFETY: the layout has a non-zero size (checked above), as `alloc` requires.
        Ok(layout) => unsafe { alloc(layout) },
        Err(_) => std::ptr::null_mut(),
    }
}

/// Takes ownership of `size` bytes at `data`, returned by the host through out-parameters.
///
/// # Safety
///
/// `data` must be null, or a block that [`allocate`] returned for exactly `size` bytes (that is
/// how the host obtains memory to return), not yet freed, and not used by anyone afterwards.
pub(crate) unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        // Nothing was allocated (null), or the zero-size dangling pointer of `allocate`.
        return Vec::new();
    }
    // SAFETY: per this function's contract, `data` came from `allocate(size)`, i.e. from the
    // global allocator with `Layout::from_size_align(size, 1)` — the layout of a `Vec<u8>` with
    // capacity `size` — and the host initialised all `size` bytes before returning it.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_and_take_round_trip() {
        let p = allocate(5);
        assert!(!p.is_null());
        // SAFETY: `p` is a fresh 5-byte block from `allocate`.
        unsafe { std::ptr::copy_nonoverlapping(b"hello".as_ptr(), p, 5) };
        // SAFETY: `p` came from `allocate(5)` and is not used afterwards.
        let v = unsafe { take(p, 5) };
        assert_eq!(v, b"hello");
    }

    #[test]
    fn zero_size_and_null() {
        let p = allocate(0);
        assert!(!p.is_null());
        // SAFETY: the zero-size pointer and null are both allowed and free nothing.
        assert!(unsafe { take(p, 0) }.is_empty());
        // SAFETY: as above.
        assert!(unsafe { take(std::ptr::null_mut(), 7) }.is_empty());
    }
}
