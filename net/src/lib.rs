//! epitome-net: sockets for the epitome runtime.
//!
//! The socket types arrive with the reactor; this crate is the place they live.

#![warn(missing_docs)]
