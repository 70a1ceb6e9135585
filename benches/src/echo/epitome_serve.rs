//! The server-model contenders (not in [`super::CONTENDERS`]: the report's "server
//! models" section runs them, [`super::MODELS`]): an epitome multi-reactor runtime
//! serving the port with `epitome::net::serve` and one accept strategy each,
//! `--threads` reactors (the report gives 8):
//!
//! - `epitome-exclusive`: `Strategy::Exclusive`, the shared listener in every reactor
//!   with `EPOLLEXCLUSIVE`;
//! - `epitome-reuseport`: `Strategy::ReusePort(Steering::Hash)`, a listener per worker
//!   (the `server` command binds this one with `SO_REUSEPORT`: [`super::wants_reuseport`]);
//! - `epitome-reuseport-cpu`: the same, steered by the CPU that received the SYN;
//! - `epitome-mainsub`: the seeds' main/sub reactors, `Strategy::MainSub(Pick::LeastLoaded)`;
//! - `epitome-balanced`: `Strategy::Balanced`, the default.
//!
//! Each connection is echoed readiness-first ([`echo_pooled`]): the task waits for
//! readable holding no buffer, then reads into its worker's buffer
//! (`serve::read_pooled`), so an idle connection costs no read buffer.

use std::io;
use std::net::TcpListener;

use epitome::net::TcpStream;
use epitome::net::serve::{self, Pick, Steering, Strategy};
use epitome::runtime::Builder;

use super::{Contender, Family, ServeOptions};

/// Reactors when `--threads` is not given.
const DEFAULT_REACTORS: usize = 8;

const fn model(name: &'static str, about: &'static str, serve: ServeFn) -> Contender {
    Contender {
        name,
        about,
        family: Family::EpitomeRuntime {
            tokio_peer: "tokio-mt",
        },
        serve,
    }
}

type ServeFn = fn(TcpListener, &ServeOptions) -> io::Result<()>;

/// `Strategy::Exclusive`.
pub const EXCLUSIVE: Contender = model(
    "epitome-exclusive",
    "serve, Strategy::Exclusive (EPOLLEXCLUSIVE listener per reactor)",
    |l, o| run(l, o, Strategy::Exclusive),
);
/// `Strategy::ReusePort(Steering::Hash)`.
pub const REUSEPORT: Contender = model(
    "epitome-reuseport",
    "serve, Strategy::ReusePort (SO_REUSEPORT listener per reactor, hash)",
    |l, o| run(l, o, Strategy::ReusePort(Steering::Hash)),
);
/// `Strategy::ReusePort(Steering::IncomingCpu)`.
pub const REUSEPORT_CPU: Contender = model(
    "epitome-reuseport-cpu",
    "serve, Strategy::ReusePort (steered by the SYN's CPU)",
    |l, o| run(l, o, Strategy::ReusePort(Steering::IncomingCpu)),
);
/// `Strategy::MainSub(Pick::LeastLoaded)`: the seeds' main/sub reactors.
pub const MAIN_SUB: Contender = model(
    "epitome-mainsub",
    "serve, Strategy::MainSub (main reactor hands to the least loaded)",
    |l, o| run(l, o, Strategy::MainSub(Pick::LeastLoaded)),
);
/// `Strategy::Balanced`, the default.
pub const BALANCED: Contender = model(
    "epitome-balanced",
    "serve, Strategy::Balanced (the default)",
    |l, o| run(l, o, Strategy::Balanced),
);

/// Serves the echo protocol on `listener` with `strategy` until the process is killed.
fn run(listener: TcpListener, options: &ServeOptions, strategy: Strategy) -> io::Result<()> {
    let reactors = options.threads.map_or(DEFAULT_REACTORS, |n| n.get());
    let rt = Builder::new_multi_reactor().reactors(reactors).build()?;
    rt.block_on(async move {
        let listener = epitome::net::TcpListener::from_std(listener)?;
        serve::serve(listener, |stream, _peer| async move {
            // A connection reset by the client has nobody left to tell.
            let _ = echo_pooled(stream).await;
        })
        .strategy(strategy)
        .await
    })
}

/// Echoes on `stream` until the peer closes: waits for readable holding no buffer,
/// answers from the worker's buffer what the socket takes at once, and copies out
/// only the rest (kept until it is written, reading nothing more meanwhile, as the
/// echo protocol asks).
pub async fn echo_pooled(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    loop {
        let rest = serve::read_pooled(&stream, |bytes| {
            if bytes.is_empty() {
                return Ok(None);
            }
            let sent = match stream.try_write(bytes) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            Ok(Some(bytes[sent..].to_vec()))
        })
        .await??;
        match rest {
            None => return Ok(()),
            Some(rest) if rest.is_empty() => {}
            Some(rest) => stream.write_all(&rest).await?,
        }
    }
}

/// Bytes of the future [`echo_pooled`] returns, as the compiler lays it out: what a
/// connection's task holds besides the runtime's own task header, while idle.
pub fn handler_future_size() -> usize {
    future_size(echo_pooled)
}

fn future_size<A, F>(_: fn(A) -> F) -> usize {
    std::mem::size_of::<F>()
}
