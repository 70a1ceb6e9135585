//! Child processes: [`Command`] starts them, [`Child`] waits for them, kills them and
//! holds their piped stdin, stdout and stderr as async streams.
//!
//! A child's exit is an event on the reactor: each child has a pidfd (Linux 5.3+)
//! registered like a socket, readable once the child exits. There is no SIGCHLD handler
//! and no thread blocked in waitpid, and a child dropped without being waited for is
//! still reaped (see [`Child`]). On a kernel without pidfd_open, `spawn` fails with
//! `Unsupported` before starting anything.
//!
//! Errors are std's: a program that does not exist is `NotFound` from `spawn`, writing
//! to a child that closed its stdin is `BrokenPipe`.
//!
//! ```
//! use std::process::Stdio;
//! use epitome::process::Command;
//!
//! # let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! let output = Command::new("echo").arg("hello").output().await?;
//! assert!(output.status.success());
//! assert_eq!(output.stdout, b"hello\n");
//!
//! // Talk to a child through its pipes.
//! let mut child = Command::new("tr")
//!     .arg("a-z")
//!     .arg("A-Z")
//!     .stdin(Stdio::piped())
//!     .stdout(Stdio::piped())
//!     .spawn()?;
//! let mut stdin = child.stdin.take().unwrap();
//! stdin.write_all(b"shout\n").await?;
//! drop(stdin); // end of input
//! let mut answer = String::new();
//! child.stdout.take().unwrap().read_to_string(&mut answer).await?;
//! assert_eq!(answer, "SHOUT\n");
//! assert!(child.wait().await?.success());
//!
//! let missing = Command::new("/no/such/program").spawn().unwrap_err();
//! assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```

mod child;
mod pidfd;
mod pipe;

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;

pub use child::Child;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};

use crate::io::Async;

/// A process to start: std's `Command` builder, with async [`spawn`](Self::spawn),
/// [`output`](Self::output) and [`status`](Self::status). By default the child
/// inherits stdin, stdout and stderr (for `output`, stdout and stderr are piped).
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
}

impl Command {
    /// A command running `program` (found on `PATH` if it has no `/`).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin: [`Stdio::piped`] makes [`Child::stdin`] a [`ChildStdin`].
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg);
        self
    }

    /// The child's stdout: [`Stdio::piped`] makes [`Child::stdout`] a [`ChildStdout`].
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg);
        self
    }

    /// The child's stderr: [`Stdio::piped`] makes [`Child::stderr`] a [`ChildStderr`].
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg);
        self
    }

    /// Whether dropping the [`Child`] before it was waited for kills the process
    /// (SIGKILL). Off by default: the process runs on (and is reaped when it exits).
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// Whether `kill_on_drop` is set.
    pub fn get_kill_on_drop(&self) -> bool {
        self.kill_on_drop
    }

    /// The child's user id (setuid before exec).
    pub fn uid(&mut self, id: u32) -> &mut Command {
        self.std.uid(id);
        self
    }

    /// The child's group id (setgid before exec).
    pub fn gid(&mut self, id: u32) -> &mut Command {
        self.std.gid(id);
        self
    }

    /// Puts the child in process group `pgroup` (0: a new group led by the child).
    pub fn process_group(&mut self, pgroup: i32) -> &mut Command {
        self.std.process_group(pgroup);
        self
    }

    /// The child's `argv[0]`, if it should differ from the program.
    pub fn arg0(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg0(arg);
        self
    }

    /// Runs `f` in the child between fork and exec.
    ///
    /// # Safety
    ///
    /// As [`std::os::unix::process::CommandExt::pre_exec`]: `f` runs in a forked copy
    /// of a multi-threaded process and may only do async-signal-safe things.
    pub unsafe fn pre_exec<F>(&mut self, f: F) -> &mut Command
    where
        F: FnMut() -> io::Result<()> + Send + Sync + 'static,
    {
        // SAFETY: the caller upholds `pre_exec`'s contract (see above).
        unsafe { self.std.pre_exec(f) };
        self
    }

    /// The std `Command` inside.
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// The std `Command` inside, mutably (for options not wrapped here).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// The std `Command` inside.
    pub fn into_std(self) -> std::process::Command {
        self.std
    }

    /// Starts the child, registering its pidfd and piped stdio with the current
    /// reactor.
    ///
    /// # Errors
    ///
    /// std's spawn errors (`NotFound` for a program that does not exist,
    /// `PermissionDenied` for one that is not executable, ...); `Unsupported` if the
    /// kernel has no pidfd_open (before Linux 5.3), in which case nothing is started; a
    /// pidfd or registration error (out of fds), in which case the child is killed and
    /// reaped before returning.
    ///
    /// # Panics
    ///
    /// If called outside an epitome runtime.
    #[track_caller]
    pub fn spawn(&mut self) -> io::Result<Child> {
        pidfd::check_available()?;
        child::reap_orphans();
        let mut std = self.std.spawn()?;
        let pipes = (std.stdin.take(), std.stdout.take(), std.stderr.take());
        let registered = pidfd::open(std.id()).and_then(Async::new).and_then(|exit| {
            let stdin = pipes.0.map(ChildStdin::from_std).transpose()?;
            let stdout = pipes.1.map(ChildStdout::from_std).transpose()?;
            let stderr = pipes.2.map(ChildStderr::from_std).transpose()?;
            Ok((exit, (stdin, stdout, stderr)))
        });
        match registered {
            Ok((exit, pipes)) => Ok(Child::new(std, exit, pipes, self.kill_on_drop)),
            Err(e) => {
                // A child we could not watch would be a zombie or a hang later: stop
                // it now. It dies at once from SIGKILL, so the wait is short.
                let _ = std.kill();
                let _ = std.wait();
                Err(e)
            }
        }
    }

    /// Starts the child and waits for it to exit; stdin, stdout and stderr are
    /// inherited unless set otherwise (a piped stdin is closed at once).
    ///
    /// The child starts when this is called, not when the future is first polled.
    #[track_caller]
    pub fn status(&mut self) -> impl Future<Output = io::Result<ExitStatus>> + use<> {
        let child = self.spawn();
        async move { child?.wait().await }
    }

    /// Starts the child with stdout and stderr piped, waits for it to exit, and
    /// returns its status and everything it wrote.
    ///
    /// The child starts when this is called, not when the future is first polled.
    #[track_caller]
    pub fn output(&mut self) -> impl Future<Output = io::Result<Output>> + use<> {
        self.std.stdout(Stdio::piped());
        self.std.stderr(Stdio::piped());
        let child = self.spawn();
        async move { child?.wait_with_output().await }
    }
}

impl From<std::process::Command> for Command {
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.std.fmt(f)
    }
}
