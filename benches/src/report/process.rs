//! The processes the report runs and what it reads about them: a server child
//! ([`ServerProcess`], killed on drop), its figures from `/proc`, the kernel's slab
//! total, and `perf stat` counting one server's syscalls over a window ([`Perf`]).
//!
//! # Where each figure comes from
//!
//! - CPU time: `utime` and `stime` of `/proc/PID/stat`, which cover every thread
//!   the process ever had, in clock ticks ([`sys::clock_ticks_per_second`]). The
//!   kernel samples user against system time at each scheduler tick, so a small
//!   user share is only as exact as the number of ticks the window spans.
//! - Context switches: `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches`
//!   of `/proc/PID/task/*/status`, summed over the threads alive when read.
//! - Memory: `VmRSS` of `/proc/PID/status`; the kernel's slab from the `Slab:` line
//!   of `/proc/meminfo` (machine-wide).
//! - Syscalls: `perf stat -e raw_syscalls:sys_enter -p PID` (with the threads the
//!   process creates later), started with its counters disabled and switched on and
//!   off through its control FIFO (`--control`), so the counted window is exactly
//!   the one the client measures, without perf's start-up inside it.
//! - User time, sampled: `perf record -e cpu-clock:u -c PERIOD -p PID` the same
//!   way ([`PerfKind::UserSamples`]); a finer measure of the same quantity as
//!   `utime`, for windows too short for the tick to resolve it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use epitome_benches::sys;

/// How long perf may take to start and acknowledge a command.
const PERF_ACK_TIMEOUT_MS: i32 = 10_000;

/// A server child process: this executable's `server` or `herd-server` command.
/// Dropping it kills it (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its process id.
    pub pid: u32,
}

impl ServerProcess {
    /// Starts `epitome-benches <args>` and reads the bound address it prints.
    ///
    /// The child executes `/proc/self/exe`, the very file this process runs, not
    /// its path: a `cargo build` elsewhere may replace the binary in `target/`
    /// while a report runs, and every server must be the code the report started
    /// with.
    pub fn spawn(args: &[String]) -> io::Result<ServerProcess> {
        Self::spawn_under(&[], args)
    }

    /// [`spawn`](Self::spawn), with the server run by `launcher` (a program and its
    /// options, such as `valgrind --tool=callgrind`), which is given this
    /// executable's path and then `args`. `/proc/self/exe` would name the launcher
    /// once it runs, so the launcher gets `/proc/<this pid>/exe`, which names this
    /// file as long as this process lives (and the server dies with it).
    pub fn spawn_under(launcher: &[String], args: &[String]) -> io::Result<ServerProcess> {
        let mut command = match launcher.split_first() {
            None => Command::new("/proc/self/exe"),
            Some((program, options)) => {
                let mut command = Command::new(program);
                command
                    .args(options)
                    .arg(format!("/proc/{}/exe", std::process::id()));
                command
            }
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("no pipes to the server"));
        };
        let mut server = ServerProcess {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
        };
        let line = server.read_line()?;
        server.addr = line
            .trim()
            .parse()
            .map_err(|e| io::Error::other(format!("the server printed `{}`: {e}", line.trim())))?;
        Ok(server)
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            return Err(io::Error::other(format!("the server exited ({status})")));
        }
        Ok(line)
    }

    /// Sends one line on the server's stdin and returns its one-line answer.
    pub fn request(&mut self, line: &str) -> io::Result<String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        self.read_line()
    }

    /// An error if the server has exited.
    pub fn check_alive(&mut self) -> io::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(io::Error::other(format!("the server exited ({status})"))),
        }
    }

    fn proc_path(&self, rest: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{rest}", self.pid))
    }

    /// User and system CPU time of the whole process, in clock ticks.
    pub fn cpu_ticks(&self) -> io::Result<CpuTicks> {
        let stat = fs::read_to_string(self.proc_path("stat"))?;
        parse_stat(&stat).ok_or_else(|| io::Error::other("unreadable /proc/PID/stat"))
    }

    /// Context switches summed over the threads alive now; only the threads whose
    /// name starts with `prefix`, if given.
    pub fn context_switches(&self, prefix: Option<&str>) -> io::Result<ContextSwitches> {
        let mut total = ContextSwitches::default();
        for entry in fs::read_dir(self.proc_path("task"))? {
            let dir = entry?.path();
            if let Some(prefix) = prefix {
                match fs::read_to_string(dir.join("comm")) {
                    Ok(comm) if comm.starts_with(prefix) => {}
                    _ => continue,
                }
            }
            // A thread may exit between the listing and the read.
            let Ok(status) = fs::read_to_string(dir.join("status")) else {
                continue;
            };
            total.voluntary += status_field(&status, "voluntary_ctxt_switches:").unwrap_or(0);
            total.nonvoluntary += status_field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
        }
        Ok(total)
    }

    /// `VmRSS`, in KiB.
    pub fn rss_kib(&self) -> io::Result<u64> {
        let status = fs::read_to_string(self.proc_path("status"))?;
        status_field(&status, "VmRSS:").ok_or_else(|| io::Error::other("no VmRSS"))
    }

    /// Threads alive now.
    pub fn threads(&self) -> io::Result<usize> {
        Ok(fs::read_dir(self.proc_path("task"))?.count())
    }

    /// `Cpus_allowed_list` of the main thread.
    pub fn cpus_allowed(&self) -> io::Result<String> {
        let status = fs::read_to_string(self.proc_path("status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| io::Error::other("no Cpus_allowed_list"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// `utime`.
    pub user: u64,
    /// `stime`.
    pub system: u64,
}

/// Context switch counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextSwitches {
    /// The thread blocked.
    pub voluntary: u64,
    /// The thread was preempted.
    pub nonvoluntary: u64,
}

impl ContextSwitches {
    /// Both kinds.
    pub fn total(self) -> u64 {
        self.voluntary + self.nonvoluntary
    }
}

/// `utime` and `stime` (fields 14 and 15) from a `/proc/PID/stat` line. The command
/// name (field 2) may contain spaces and parentheses, so fields are counted from
/// the last `)`.
fn parse_stat(stat: &str) -> Option<CpuTicks> {
    stat_pair(stat, 11)
}

/// `cutime` and `cstime` (fields 16 and 17) from a `/proc/PID/stat` line: the CPU
/// time of the children the process has waited for.
fn parse_stat_children(stat: &str) -> Option<CpuTicks> {
    stat_pair(stat, 13)
}

/// The two fields after the first `skip` fields that follow the command name.
fn stat_pair(stat: &str, skip: usize) -> Option<CpuTicks> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(skip);
    Some(CpuTicks {
        user: fields.next()?.parse().ok()?,
        system: fields.next()?.parse().ok()?,
    })
}

/// The first number after `key` in a `/proc/.../status`-style text.
fn status_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One CPU's time from `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user + nice + system + irq + softirq.
    pub busy: u64,
    /// Time the hypervisor ran something else while this CPU wanted to run.
    pub steal: u64,
}

/// Every CPU's times (`cpuN` lines of `/proc/stat`), indexed by CPU number.
pub fn cpu_times() -> io::Result<Vec<CpuTimes>> {
    Ok(parse_cpu_lines(&fs::read_to_string("/proc/stat")?).0)
}

/// Every CPU's idle + iowait time (`/proc/stat`), indexed by CPU number.
pub fn cpu_idle() -> io::Result<Vec<u64>> {
    Ok(parse_cpu_lines(&fs::read_to_string("/proc/stat")?).1)
}

/// The `cpuN` lines of `/proc/stat` (not the `cpu` line, which sums them): busy
/// and steal times, and idle + iowait times, indexed by CPU number.
fn parse_cpu_lines(stat: &str) -> (Vec<CpuTimes>, Vec<u64>) {
    let mut times = Vec::new();
    let mut idle = Vec::new();
    for line in stat.lines() {
        let Some(rest) = line
            .strip_prefix("cpu")
            .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let Some(Ok(index)) = fields.next().map(str::parse::<usize>) else {
            continue;
        };
        let v: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        if times.len() <= index {
            times.resize(index + 1, CpuTimes::default());
            idle.resize(index + 1, 0);
        }
        times[index] = CpuTimes {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            steal: at(7),
        };
        idle[index] = at(3) + at(4);
    }
    (times, idle)
}

/// This process's user + system CPU time, and that of the children it has waited
/// for, in clock ticks. A client that runs as a child (`wrk`) is counted once it
/// has exited and been waited for; servers and perf are waited for only after the
/// windows that read this.
pub fn own_ticks() -> io::Result<u64> {
    let stat = fs::read_to_string("/proc/self/stat")?;
    let unreadable = || io::Error::other("unreadable /proc/self/stat");
    let own = parse_stat(&stat).ok_or_else(unreadable)?;
    let children = parse_stat_children(&stat).ok_or_else(unreadable)?;
    Ok(own.user + own.system + children.user + children.system)
}

/// The `Slab:` line of `/proc/meminfo`, in KiB.
pub fn slab_kib() -> io::Result<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo")?;
    status_field(&meminfo, "Slab:").ok_or_else(|| io::Error::other("no Slab in /proc/meminfo"))
}

/// Checks that `perf stat` can count `raw_syscalls:sys_enter`; the reason if not.
pub fn perf_check() -> Result<(), String> {
    let out = Command::new("perf")
        .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run perf: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    match parse_perf_count(&stderr) {
        Some(Ok(_)) if out.status.success() => Ok(()),
        Some(Err(why)) => Err(why),
        _ => Err(format!(
            "perf stat -e raw_syscalls:sys_enter failed ({}): {}",
            out.status,
            stderr.trim()
        )),
    }
}

/// The `raw_syscalls:sys_enter` count in `perf stat -x,` output. `<not counted>`
/// means the event never ran: no thread of the target was on a CPU while it was
/// enabled, so it made no syscalls.
fn parse_perf_count(stderr: &str) -> Option<Result<u64, String>> {
    let line = stderr
        .lines()
        .find(|l| l.split(',').nth(2) == Some("raw_syscalls:sys_enter"))?;
    let value = line.split(',').next()?;
    Some(match value {
        "<not counted>" => Ok(0),
        "<not supported>" => Err("perf: raw_syscalls:sys_enter is not supported".to_owned()),
        v => v
            .parse()
            .map_err(|e| format!("perf printed `{v}` as the count: {e}")),
    })
}

/// What a [`Perf`] child measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerfKind {
    /// `perf stat -e raw_syscalls:sys_enter`: syscalls entered.
    Syscalls,
    /// `perf record -e cpu-clock:u -c PERIOD`: a sample every `period_ns` of CPU
    /// time the process runs, kept only when it lands in user mode; so samples ×
    /// period estimates user time, with the kernel's split done at 1/period Hz
    /// instead of the scheduler tick's 250 Hz.
    UserSamples {
        /// Sampling period, ns of CPU time.
        period_ns: u64,
    },
}

/// A perf child measuring one process while enabled. Dropping it kills perf and
/// removes its FIFOs and data file.
#[derive(Debug)]
pub struct Perf {
    kind: PerfKind,
    child: Child,
    ctl: File,
    ack: File,
    dir: PathBuf,
}

static PERF_DIRS: AtomicU64 = AtomicU64::new(0);

impl Perf {
    /// Starts perf on `pid` with its counters disabled.
    pub fn attach(pid: u32, kind: PerfKind) -> io::Result<Perf> {
        let dir = std::env::temp_dir().join(format!(
            "epitome-report-{}-{}",
            std::process::id(),
            PERF_DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir)?;
        match Perf::start(pid, kind, &dir) {
            Ok(perf) => Ok(perf),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn start(pid: u32, kind: PerfKind, dir: &Path) -> io::Result<Perf> {
        let (ctl_path, ack_path) = (dir.join("ctl"), dir.join("ack"));
        sys::mkfifo(&ctl_path)?;
        sys::mkfifo(&ack_path)?;
        // Read-write opens of a FIFO do not wait for the other end.
        let open = |p: &Path| OpenOptions::new().read(true).write(true).open(p);
        let (ctl, ack) = (open(&ctl_path)?, open(&ack_path)?);
        let mut command = Command::new("perf");
        match kind {
            PerfKind::Syscalls => {
                command.args(["stat", "-x,", "-e", "raw_syscalls:sys_enter"]);
            }
            PerfKind::UserSamples { period_ns } => {
                command
                    .args([
                        "record",
                        "-e",
                        "cpu-clock:u",
                        "-c",
                        &period_ns.to_string(),
                        "-o",
                    ])
                    .arg(dir.join("perf.data"));
            }
        }
        command
            .args(["-D", "-1", "--control"])
            .arg(format!(
                "fifo:{},{}",
                ctl_path.display(),
                ack_path.display()
            ))
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: the closure only makes one async-signal-safe syscall (prctl).
        unsafe {
            command.pre_exec(|| {
                // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number, no pointers.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let child = command.spawn()?;
        Ok(Perf {
            kind,
            child,
            ctl,
            ack,
            dir: dir.to_owned(),
        })
    }

    /// Starts counting; returns once perf has acknowledged.
    pub fn enable(&mut self) -> io::Result<()> {
        self.command("enable")
    }

    /// Stops counting; returns once perf has acknowledged.
    pub fn disable(&mut self) -> io::Result<()> {
        self.command("disable")
    }

    fn command(&mut self, what: &str) -> io::Result<()> {
        self.ctl.write_all(format!("{what}\n").as_bytes())?;
        if !sys::wait_readable(self.ack.as_raw_fd(), PERF_ACK_TIMEOUT_MS)? {
            let why = self.failure_text();
            return Err(io::Error::other(format!(
                "perf did not acknowledge `{what}`: {why}"
            )));
        }
        let mut buf = [0; 64];
        let n = self.ack.read(&mut buf)?;
        if !buf[..n].starts_with(b"ack") {
            return Err(io::Error::other(format!(
                "perf answered `{}` to `{what}`",
                String::from_utf8_lossy(&buf[..n]).trim_end_matches(['\0', '\n'])
            )));
        }
        Ok(())
    }

    /// perf's stderr if it has exited, for an error message.
    fn failure_text(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let mut text = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = stderr.read_to_string(&mut text);
                }
                format!("perf exited ({status}): {}", text.trim())
            }
            _ => "perf is still running".to_owned(),
        }
    }

    /// Stops perf (SIGINT, which makes it print its result) and returns what it
    /// counted while enabled: syscalls, or user-mode samples.
    pub fn finish(mut self) -> io::Result<u64> {
        sys::kill(self.child.id(), libc::SIGINT)?;
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut text)?;
        }
        let status = self.child.wait()?;
        let parsed = match self.kind {
            PerfKind::Syscalls => parse_perf_count(&text),
            PerfKind::UserSamples { .. } => parse_record_samples(&text).map(Ok),
        };
        match parsed {
            Some(Ok(count)) => Ok(count),
            Some(Err(why)) => Err(io::Error::other(why)),
            None => Err(io::Error::other(format!(
                "no result from perf ({status}): {}",
                text.trim()
            ))),
        }
    }
}

/// The sample count in `perf record`'s closing line
/// (`[ perf record: Captured and wrote 0.1 MB perf.data (3638 samples) ]`).
fn parse_record_samples(stderr: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("perf record: Captured"))?;
    let open = line.rfind('(')?;
    line[open + 1..].split_whitespace().next()?.parse().ok()
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    57 31 0 0 20 0 3 0 100 1000 200";
        assert_eq!(
            parse_stat(stat),
            Some(CpuTicks {
                user: 57,
                system: 31
            })
        );
        assert_eq!(
            parse_stat_children(stat),
            Some(CpuTicks { user: 0, system: 0 })
        );
        let waited = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 5 6 7 8 20 0";
        assert_eq!(
            parse_stat_children(waited),
            Some(CpuTicks { user: 7, system: 8 })
        );
    }

    #[test]
    fn perf_output() {
        let text = "Events disabled\nEvents enabled\n123456,,raw_syscalls:sys_enter,500,100.00,,\n";
        assert_eq!(parse_perf_count(text), Some(Ok(123_456)));
        let none = "<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n";
        assert_eq!(parse_perf_count(none), Some(Ok(0)));
        assert_eq!(parse_perf_count("nothing"), None);
        let record = "Events enabled\n[ perf record: Woken up 2 times to write data ]\n\
                      [ perf record: Captured and wrote 0.143 MB /tmp/x/perf.data (3638 samples) ]\n";
        assert_eq!(parse_record_samples(record), Some(3638));
        assert_eq!(parse_record_samples("Events enabled\n"), None);
    }

    #[test]
    fn cpu_lines() {
        let stat = "cpu  100 0 50 1000 5 0 7 3 0 0\n\
                    cpu0 40 0 20 500 2 0 3 1 0 0\n\
                    cpu1 60 0 30 500 3 0 4 2 0 0\n\
                    intr 12345 0 0\n";
        let (times, idle) = parse_cpu_lines(stat);
        assert_eq!(
            times,
            vec![
                CpuTimes { busy: 63, steal: 1 },
                CpuTimes { busy: 94, steal: 2 }
            ]
        );
        assert_eq!(idle, vec![502, 503]);
    }

    #[test]
    fn status_fields() {
        let status = "Name:\tx\nVmRSS:\t  1234 kB\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t2\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(1234));
        assert_eq!(status_field(status, "voluntary_ctxt_switches:"), Some(7));
        assert_eq!(status_field(status, "nonvoluntary_ctxt_switches:"), Some(2));
    }
}
