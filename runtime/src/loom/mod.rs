//! The one place that chooses between std and loom concurrency primitives.
//!
//! Every atomic, lock, cell and thread in epitome-runtime comes from here. Under
//! `--cfg epitome_loom` the loom versions are used, so the loom models in
//! `loom-tests/` explore every interleaving of the real code. The std build exposes the
//! same surface (notably [`UnsafeCell::with`] / [`UnsafeCell::with_mut`]), so code
//! reads the same either way.

#[cfg(not(epitome_loom))]
mod std_impl;
#[cfg(not(epitome_loom))]
pub(crate) use std_impl::*;

#[cfg(epitome_loom)]
mod loom_impl;
#[cfg(epitome_loom)]
pub(crate) use loom_impl::*;

/// Plain reads and writes of a `Copy` value in a shim `UnsafeCell`, for the link and
/// flag fields whose ownership rules make one `unsafe` block cover several accesses.
pub(crate) trait CellExt<T: Copy> {
    /// # Safety
    /// No other thread writes the cell concurrently (the field's ownership rule).
    unsafe fn read(&self) -> T;
    /// # Safety
    /// No other thread accesses the cell concurrently.
    unsafe fn write(&self, value: T);
}

impl<T: Copy> CellExt<T> for cell::UnsafeCell<T> {
    unsafe fn read(&self) -> T {
        // SAFETY: per the caller, nobody writes concurrently.
        self.with(|p| unsafe { *p })
    }
    unsafe fn write(&self, value: T) {
        // SAFETY: per the caller, nobody else accesses the cell.
        self.with_mut(|p| unsafe { *p = value })
    }
}
