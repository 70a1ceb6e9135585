//! epitome: an async runtime for Rust on Linux whose reactor is a user-space
//! reimplementation of the kernel's eventpoll.
//!
//! - [`eventpoll`]: the user-space eventpoll with kernel-exact epoll semantics.
//! - [`net`]: TCP, UDP and Unix sockets.

#![warn(missing_docs)]

pub use epitome_runtime::eventpoll;

/// Networking types.
pub use epitome_net as net;
