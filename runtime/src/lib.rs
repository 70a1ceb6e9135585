//! epitome-runtime: the user-space eventpoll, reactor, executor and timers of the
//! [epitome](https://github.com/epitome-rs/epitome) async runtime.
//!
//! The heart is [`eventpoll`]: a reimplementation of the kernel's `fs/eventpoll.c`
//! (interest tree, ready list, level- and edge-triggered, oneshot and exclusive
//! items) over one raw kernel epoll instance, giving the kernel's answers errno for
//! errno.

#![warn(missing_docs)]
#![cfg(target_os = "linux")]

pub(crate) mod loom;
#[macro_use]
pub(crate) mod sys;

pub mod eventpoll;
