//! `epoll-et`: raw kernel epoll, edge-triggered, read until `EAGAIN`. See
//! [`super::event_loop`] for the loop.

use std::io;
use std::net::TcpListener;

use super::event_loop::{self, Trigger};
use super::{Contender, Family, ServeOptions};
use crate::sys::Epoll;

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: Contender = Contender {
    name: "epoll-et",
    about: "raw epoll, edge-triggered, read until EAGAIN",
    family: Family::Baseline,
    serve,
};

fn serve(listener: TcpListener, _: &ServeOptions) -> io::Result<()> {
    event_loop::serve(listener, Epoll::new()?, Trigger::Edge)
}
