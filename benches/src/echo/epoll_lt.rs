//! `epoll-lt`: raw kernel epoll, level-triggered, one read per wakeup; the reference
//! point BENCHMARKING.md quotes. See [`super::event_loop`] for the loop.

use std::io;
use std::net::TcpListener;

use super::event_loop::{self, Trigger};
use super::{Contender, Family, ServeOptions};
use crate::sys::Epoll;

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: Contender = Contender {
    name: "epoll-lt",
    about: "raw epoll, level-triggered, one read per wakeup",
    family: Family::Baseline,
    serve,
};

fn serve(listener: TcpListener, _: &ServeOptions) -> io::Result<()> {
    event_loop::serve(listener, Epoll::new()?, Trigger::Level)
}
