//! `eventpoll-api`: the `epoll-et` loop on epitome's [`EventPoll`] instead of the
//! kernel's epoll, with no runtime around it. Edge-triggered, read until `EAGAIN`,
//! because that is how a runtime's reactor drives it; next to `epoll-et` it shows
//! what the user-space eventpoll costs over the kernel's. It is epitome's code, but
//! not the runtime: the report shows it beside tokio for information only.

use std::io;
use std::net::TcpListener;

use epitome_runtime::eventpoll::EventPoll;

use super::event_loop::{self, Trigger};
use super::{Contender, Family, ServeOptions};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: Contender = Contender {
    name: "eventpoll-api",
    about: "epitome's EventPoll API by hand, edge-triggered, no runtime",
    family: Family::EventPollApi {
        tokio_peer: "tokio-ct",
    },
    serve,
};

fn serve(listener: TcpListener, _: &ServeOptions) -> io::Result<()> {
    event_loop::serve(listener, EventPoll::new()?, Trigger::Edge)
}
