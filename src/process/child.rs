//! `Child`: a running child process, its exit watched through its pidfd; and the
//! orphans, children dropped before they were waited for, which are still reaped.
//!
//! Reaping without a SIGCHLD handler or a reaper thread: a `Child` dropped while its
//! process runs hands the process to a task that waits on its pidfd and reaps it (with
//! a fresh pidfd on the task's own reactor if the `Child`'s runtime is gone). If
//! that task cannot run (no runtime on this thread, or the runtime shuts down first),
//! the process goes on a list that every later `spawn` and `Child` drop sweeps with a
//! non-blocking waitpid. Exited children therefore never pile up as zombies; one left
//! on the list when the program stops spawning is reaped by init after the program
//! exits.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::process::{ExitStatus, Output};
use std::sync::Mutex;
use std::task::Poll;

use super::pipe::{ChildStderr, ChildStdin, ChildStdout};
use crate::io::Async;

/// A child process started by [`Command::spawn`](super::Command::spawn).
///
/// Wait for it with [`wait`](Self::wait) (or [`wait_with_output`](Self::wait_with_output)).
/// Dropping it does not stop the process (unless
/// [`kill_on_drop`](super::Command::kill_on_drop) was set), but the process is still
/// reaped when it exits: no zombie is left behind.
pub struct Child {
    /// The child's stdin, if piped. Taken by `wait`, which closes it first.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
    state: State,
    kill_on_drop: bool,
}

enum State {
    Running(Running),
    Exited(ExitStatus),
}

/// A process not yet reaped, and its pidfd on the reactor.
struct Running {
    std: std::process::Child,
    exit: Async<OwnedFd>,
}

impl Running {
    /// A non-blocking waitpid: `WouldBlock` while the process runs, so it can be the
    /// operation of `Async::read_with`.
    fn try_reap(&mut self) -> io::Result<ExitStatus> {
        match self.std.try_wait()? {
            Some(status) => Ok(status),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Child {
    pub(super) fn new(
        std: std::process::Child,
        exit: Async<OwnedFd>,
        pipes: (Option<ChildStdin>, Option<ChildStdout>, Option<ChildStderr>),
        kill_on_drop: bool,
    ) -> Child {
        Child {
            stdin: pipes.0,
            stdout: pipes.1,
            stderr: pipes.2,
            state: State::Running(Running { std, exit }),
            kill_on_drop,
        }
    }

    /// The process id, while the process has not been reaped (`None` after `wait`
    /// returned: the id may belong to another process by then).
    pub fn id(&self) -> Option<u32> {
        match &self.state {
            State::Running(r) => Some(r.std.id()),
            State::Exited(_) => None,
        }
    }

    /// Waits for the process to exit and returns its status. Closes the child's stdin
    /// first (if piped), so a child reading it to the end is not left waiting.
    /// Cancel-safe: waiting again later is fine.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let running = match &mut self.state {
            State::Exited(status) => return Ok(*status),
            State::Running(running) => running,
        };
        let Running { std, exit } = running;
        let status = exit
            .read_with(|_| {
                match std.try_wait()? {
                    Some(status) => Ok(status),
                    // Not exited: the pidfd's readiness was from before (or spurious).
                    None => Err(io::ErrorKind::WouldBlock.into()),
                }
            })
            .await?;
        self.state = State::Exited(status);
        Ok(status)
    }

    /// The exit status if the process has exited (reaping it), `None` if it runs.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match &mut self.state {
            State::Exited(status) => Ok(Some(*status)),
            State::Running(running) => match running.try_reap() {
                Ok(status) => {
                    self.state = State::Exited(status);
                    Ok(Some(status))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Sends SIGKILL without waiting for the process to die (it stays unreaped until
    /// [`wait`](Self::wait) or [`try_wait`](Self::try_wait)). `InvalidInput` if the
    /// process was already reaped, as tokio's.
    pub fn start_kill(&mut self) -> io::Result<()> {
        match &mut self.state {
            // The pid is ours until reaped, so it cannot name another process.
            State::Running(running) => running.std.kill(),
            State::Exited(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the process has exited and been waited for: there is nothing to kill",
            )),
        }
    }

    /// Sends SIGKILL and waits for the process to exit.
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await?;
        Ok(())
    }

    /// Waits for the process to exit, reading all of its piped stdout and stderr
    /// meanwhile (both at once, so a child that fills one pipe while the other is read
    /// cannot deadlock). Closes its stdin first. Output that was not piped is empty.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (mut stdout, mut stderr) = (self.stdout.take(), self.stderr.take());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        poll_fn(|cx| {
            if let Some(pipe) = &stdout {
                match pipe.poll_read_to_end(cx, &mut out) {
                    Poll::Ready(Ok(())) => stdout = None,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if let Some(pipe) = &stderr {
                match pipe.poll_read_to_end(cx, &mut err) {
                    Poll::Ready(Ok(())) => stderr = None,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if stdout.is_none() && stderr.is_none() {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
        .await?;
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout: out,
            stderr: err,
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // The replacement is never read: the `Child` is going away.
        let State::Running(running) =
            std::mem::replace(&mut self.state, State::Exited(ExitStatus::default()))
        else {
            return;
        };
        let mut running = running;
        if self.kill_on_drop {
            let _ = running.std.kill();
        }
        adopt(running);
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Child");
        match &self.state {
            State::Running(r) => d.field("pid", &r.std.id()),
            State::Exited(status) => d.field("status", status),
        };
        d.field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

/// Children whose reaping task could not run, swept by [`reap_orphans`].
static ORPHANS: Mutex<Vec<std::process::Child>> = Mutex::new(Vec::new());

/// Reaps every orphan that has exited (non-blocking).
pub(super) fn reap_orphans() {
    let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    // Kept: those still running. An error (ECHILD: someone else reaped it) drops it.
    orphans.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
}

/// Takes over a dropped `Child`'s process so it is reaped when it exits.
fn adopt(mut running: Running) {
    reap_orphans();
    match running.try_reap() {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        // Exited and reaped now, or cannot be waited for at all.
        _ => return,
    }
    let Ok(handle) = crate::runtime::Handle::try_current() else {
        push_orphan(running.std);
        return;
    };
    let mut orphan = Orphan(Some(running.std));
    let exit = running.exit;
    // The task owns the orphan: if it is cancelled (the runtime shuts down), dropping
    // it puts the process on the list.
    handle.spawn(async move {
        let watched = reap_when_exited(&exit, &mut orphan).await;
        drop(exit);
        let Some(pid) = orphan.0.as_ref().map(|child| child.id()) else {
            return;
        };
        if watched.is_err() {
            // The reactor the `Child` was registered with is gone (its runtime shut
            // down): watch the process from this one, through a pidfd of its own. The
            // pid is still this process's: it is not reaped yet.
            if let Ok(fresh) = super::pidfd::open(pid).and_then(Async::new) {
                let _ = reap_when_exited(&fresh, &mut orphan).await;
            }
        }
    });
}

/// Waits for the pidfd to report the exit, then reaps the process.
async fn reap_when_exited(exit: &Async<OwnedFd>, orphan: &mut Orphan) -> io::Result<()> {
    exit.read_with(|_| {
        let Some(child) = &mut orphan.0 else {
            return Ok(());
        };
        match child.try_wait() {
            Ok(None) => Err(io::ErrorKind::WouldBlock.into()),
            // Reaped (or not ours to wait for any more): done.
            Ok(Some(_)) | Err(_) => {
                orphan.0 = None;
                Ok(())
            }
        }
    })
    .await
}

fn push_orphan(child: std::process::Child) {
    ORPHANS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child);
}

/// A process handed to a reaping task; back to the list if the task is dropped first.
struct Orphan(Option<std::process::Child>);

impl Drop for Orphan {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            if matches!(child.try_wait(), Ok(None)) {
                push_orphan(child);
            }
        }
    }
}
