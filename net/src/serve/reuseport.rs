//! Socket-level pieces: the `ReusePort` group of listeners, its steering program, and
//! the filter a graceful shutdown puts on a listener before draining it.

use std::io;
use std::sync::Arc;

use socket2::{SockFilter, SockRef};

use super::Steering;
use crate::{TcpListener, TcpSocket};

/// The backlog of the listeners the group adds (that of `TcpListener::bind`).
const BACKLOG: u32 = 1024;

/// `SO_ATTACH_REUSEPORT_CBPF` (`include/uapi/asm-generic/socket.h`), which the libc
/// crate does not export for every Linux target.
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// One classic BPF instruction.
const fn insn(code: u32, k: u32) -> SockFilter {
    SockFilter::new(code as u16, 0, 0, k)
}

/// `first` and `workers - 1` more listeners on its address, all in one
/// `SO_REUSEPORT` group, in the order they joined it (the order a steering program
/// indexes): listener `i` is worker `i`'s.
///
/// # Errors
///
/// `InvalidInput` if `first` was bound without `SO_REUSEPORT` (another socket cannot
/// join its port then); any error of making, binding or listening on the others.
pub(super) fn group(
    first: TcpListener,
    workers: usize,
    steering: Steering,
) -> io::Result<Vec<Arc<TcpListener>>> {
    if !SockRef::from(&first).reuse_port()? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "Strategy::ReusePort needs a listener bound with SO_REUSEPORT \
             (TcpSocket::set_reuseport(true) before bind)",
        ));
    }
    let addr = first.local_addr()?;
    let v6only = if addr.is_ipv6() {
        Some(SockRef::from(&first).only_v6()?)
    } else {
        None
    };
    let mut all = vec![first];
    for _ in 1..workers {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(only) = v6only {
            SockRef::from(&socket).set_only_v6(only)?;
        }
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        all.push(socket.listen(BACKLOG)?);
    }
    if steering == Steering::IncomingCpu {
        steer_by_cpu(&all[0], workers)?;
    }
    Ok(all.into_iter().map(Arc::new).collect())
}

/// Attaches to `listener`'s group the program `return cpu % workers`: the index of
/// the listener that gets a new connection is the receiving CPU's, modulo the group's
/// size (an index past the group falls back to the hash).
fn steer_by_cpu(listener: &TcpListener, workers: usize) -> io::Result<()> {
    let workers = u32::try_from(workers)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many workers"))?;
    let program = [
        insn(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            (libc::SKF_AD_OFF + libc::SKF_AD_CPU) as u32,
        ),
        insn(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, workers),
        insn(libc::BPF_RET | libc::BPF_A, 0),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        // `SockFilter` is `repr(transparent)` over `libc::sock_filter`.
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `fprog` points at `program`, which outlives the call; the kernel copies
    // the program and checks every instruction before attaching it.
    let res = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(listener),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            (&raw const fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if res == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `listener` drop every SYN that reaches it (a socket filter), so no new
/// handshake starts, while the handshakes under way complete into its backlog (their
/// final ACKs pass) and the connections already there stay to be accepted. A client
/// whose SYN was dropped retries it a second later, and finds the port closed (or
/// served by another process).
///
/// The filter runs with the packet's data at the TCP header (`tcp_filter`, called
/// from `tcp_v4_rcv` and `tcp_v6_rcv`), whose byte 13 holds the flags.
pub(super) fn refuse_new(listener: &TcpListener) -> io::Result<()> {
    const TCP_FLAGS: u32 = 13;
    const SYN: u32 = 0x02;
    SockRef::from(listener).attach_filter(&[
        insn(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, TCP_FLAGS),
        // A SYN: on to the next instruction (drop); otherwise skip it (keep).
        SockFilter::new(
            (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16,
            0,
            1,
            SYN,
        ),
        insn(libc::BPF_RET | libc::BPF_K, 0),
        insn(libc::BPF_RET | libc::BPF_K, u32::MAX),
    ])
}
