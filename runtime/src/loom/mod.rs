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
