//! The server: the child process's side ([`serve`]) and the parent's handle on it
//! ([`ServerChild`]), with what the parent reads of it in `/proc`.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;

use epitome::runtime::Builder;
use epitome_benches::sys;

use super::MAX_MESSAGE;
use super::clients::Shared;

/// Set (to the reactor count) in the server child's environment.
pub(super) const SERVER_ENV: &str = "EPITOME_SOAK_SERVER";

/// Serves echo on 127.0.0.1 until killed; the bound address is the first line of
/// stdout. `reactors == 0` is the current-thread runtime.
pub(super) fn serve(reactors: usize) -> io::Result<()> {
    sys::die_with_parent()?;
    // A second way out: the parent closing our stdin (or exiting).
    thread::Builder::new().name("soak-stdin".into()).spawn(|| {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        std::process::exit(0);
    })?;
    let listener = sys::listen(SocketAddr::from(([127, 0, 0, 1], 0)), false)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    if reactors == 0 {
        let rt = Builder::new_current_thread().build()?;
        return rt.block_on(async move {
            let listener = epitome::net::TcpListener::from_std(listener)?;
            accept_loop(Arc::new(listener)).await;
            Ok(())
        });
    }
    let rt = Builder::new_multi_reactor().reactors(reactors).build()?;
    let listener = {
        let _entered = rt.enter();
        Arc::new(epitome::net::TcpListener::from_std(listener)?)
    };
    // Spawned from outside the runtime, so they are spread over the workers.
    let loops: Vec<_> = (0..rt.metrics().num_workers())
        .map(|_| rt.spawn(accept_loop(Arc::clone(&listener))))
        .collect();
    rt.block_on(async move {
        for accept_loop in loops {
            accept_loop.await.map_err(io::Error::other)?;
        }
        Ok(())
    })
}

async fn accept_loop(listener: Arc<epitome::net::TcpListener>) {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                epitome::spawn(echo(socket));
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

/// Echoes until the peer closes. A reset or broken pipe is how the resetting
/// clients end; any other error is reported (and fails the run).
async fn echo(socket: epitome::net::TcpStream) {
    let expected = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        )
    };
    let mut buf = vec![0; MAX_MESSAGE];
    loop {
        let n = match socket.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if expected(&e) => return,
            Err(e) => return eprintln!("read: {e} ({:?})", e.kind()),
        };
        match socket.write_all(&buf[..n]).await {
            Ok(()) => {}
            Err(e) if expected(&e) => return,
            Err(e) => return eprintln!("write: {e} ({:?})", e.kind()),
        }
    }
}

/// The server process; killed and reaped when dropped.
pub(super) struct ServerChild {
    child: Child,
}

impl ServerChild {
    /// Starts the server and reads its address. Its stderr lines are echoed with a
    /// `server:` prefix and counted as errors in `shared`.
    pub(super) fn start(
        reactors: usize,
        shared: &Arc<Shared>,
    ) -> Result<(ServerChild, SocketAddr), String> {
        let child = Command::new("/proc/self/exe")
            .arg("soak")
            .env(SERVER_ENV, reactors.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let mut server = ServerChild { child };
        let stderr = server.child.stderr.take();
        let shared_for_stderr = Arc::clone(shared);
        thread::spawn(move || {
            for line in BufReader::new(stderr?).lines() {
                shared_for_stderr.error(format!("server: {}", line.ok()?));
            }
            Some(())
        });
        let mut first = String::new();
        let stdout = server
            .child
            .stdout
            .take()
            .ok_or("the server has no stdout")?;
        BufReader::new(stdout)
            .read_line(&mut first)
            .map_err(|e| format!("reading the server's address: {e}"))?;
        let addr = first
            .trim()
            .parse()
            .map_err(|e| format!("the server's first line {first:?}: {e}"))?;
        Ok((server, addr))
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Why the server is not running, if it is not.
    pub(super) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!("the server exited: {status}")),
            Err(e) => Some(format!("waiting for the server: {e}")),
        }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's open fds.
pub(super) fn fd_count(pid: u32) -> Result<usize, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))
}

/// The server's fds by kind (`socket`, `pipe`, `anon_inode:[eventfd]`, ...): each
/// fd's link target with any inode number dropped.
pub(super) fn fd_kinds(pid: u32) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return kinds;
    };
    for entry in dir.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.display().to_string();
        let kind = match target.split_once(":[") {
            Some((kind, inode)) if inode.trim_end_matches(']').parse::<u64>().is_ok() => {
                kind.to_owned()
            }
            _ => target,
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

/// The server's resident set, in KiB.
pub(super) fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}
