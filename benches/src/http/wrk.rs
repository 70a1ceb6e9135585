//! `wrk`, the HTTP load generator of the report's HTTP scenario: finding it (or
//! installing Debian's package), running it pinned to the client CPU, and reading
//! its output.
//!
//! wrk is a closed-loop client: each connection sends its next request when the
//! previous response is in, so a slow server is offered less load, and the latency
//! percentiles `--latency` prints are not corrected for coordinated omission (wrk2's
//! constant-rate mode is; the echo scenarios' open-loop client is too). They are
//! latencies under full closed-loop load, comparable only side by side.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// wrk threads: one, since the client has one CPU.
pub const THREADS: usize = 1;
/// Where Debian's `wrk` package puts the binary, looked at after installing it in
/// case `PATH` does not hold `/usr/bin`.
const DEBIAN_PATH: &str = "/usr/bin/wrk";

/// A wrk binary that runs.
#[derive(Clone, Debug)]
pub struct Wrk {
    /// The binary.
    pub path: PathBuf,
    /// The first line of `wrk -v`, up to the copyright (`wrk 4.1.0 [epoll]`).
    pub version: String,
}

/// How wrk was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// On `PATH`.
    OnPath,
    /// Installed now with `apt-get install -y wrk`.
    Installed,
}

impl Wrk {
    /// wrk on `PATH`, if it is there and runs.
    pub fn find() -> Option<Wrk> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join("wrk"))
            .find(|p| is_executable(p))
            .and_then(|p| Wrk::at(&p).ok())
    }

    /// wrk on `PATH`; if it is missing, Debian's package installed with `apt-get`
    /// (which needs root). The reason when neither works.
    pub fn find_or_install() -> Result<(Wrk, Found), String> {
        if let Some(wrk) = Wrk::find() {
            return Ok((wrk, Found::OnPath));
        }
        install()?;
        let wrk = match Wrk::find() {
            Some(wrk) => wrk,
            None => Wrk::at(Path::new(DEBIAN_PATH)).map_err(|e| {
                format!(
                    "apt-get installed wrk, but it is neither on PATH nor at {DEBIAN_PATH}: {e}"
                )
            })?,
        };
        Ok((wrk, Found::Installed))
    }

    /// The wrk binary at `path`, with its version.
    pub fn at(path: &Path) -> io::Result<Wrk> {
        // `wrk -v` prints its version line and usage, and exits with status 1.
        let out = Command::new(path)
            .arg("-v")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let first = text.lines().next().unwrap_or("");
        if !first.starts_with("wrk ") {
            return Err(io::Error::other(format!(
                "{} -v printed `{first}`, not a wrk version",
                path.display()
            )));
        }
        let version = first.split(" Copyright").next().unwrap_or(first).trim();
        Ok(Wrk {
            path: path.to_owned(),
            version: version.to_owned(),
        })
    }

    /// Runs `wrk -t1 -c<connections> -d<seconds>s --latency <url>` pinned to `cpu`
    /// (if given), waits for it, and reads its report. wrk is killed if this
    /// process dies first. An error if wrk fails or prints no report.
    pub fn run(
        &self,
        url: &str,
        connections: usize,
        seconds: u32,
        cpu: Option<usize>,
    ) -> io::Result<WrkReport> {
        let mut command = Command::new(&self.path);
        command
            .arg(format!("-t{THREADS}"))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{seconds}s"))
            .arg("--latency")
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure makes only async-signal-safe calls: prctl and
        // sched_setaffinity on a stack cpu_set_t, no allocation, no locks.
        unsafe {
            command.pre_exec(move || {
                // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number, no pointers.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) == -1 {
                    return Err(io::Error::last_os_error());
                }
                match cpu {
                    Some(cpu) => crate::machine::pin_to_cpu(cpu),
                    None => Ok(()),
                }
            })
        };
        let out = command.output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "wrk failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                stdout.trim()
            )));
        }
        WrkReport::parse(&stdout)
            .map_err(|why| io::Error::other(format!("wrk's output: {why}:\n{}", stdout.trim_end())))
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `apt-get install -y wrk`; if that fails (a stale package index), `apt-get update`
/// and once more.
fn install() -> Result<(), String> {
    // Err(None): apt-get itself cannot be run, so retrying is pointless.
    let apt = |args: &[&str]| -> Result<(), Option<String>> {
        let out = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|_| None)?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        Err(Some(format!(
            "apt-get {} failed ({}): {}",
            args.join(" "),
            out.status,
            last.unwrap_or("no message").trim()
        )))
    };
    let why = |e: Option<String>| {
        e.unwrap_or_else(|| "wrk is not on PATH and apt-get cannot be run to install it".into())
    };
    let install = ["install", "-y", "wrk"];
    match apt(&install) {
        Ok(()) => Ok(()),
        Err(None) => Err(why(None)),
        Err(Some(first)) => {
            apt(&["update"]).map_err(|e| format!("{first}; then {}", why(e)))?;
            apt(&install).map_err(|e| format!("{first}; after apt-get update: {}", why(e)))
        }
    }
}

/// wrk's socket error counts (`Socket errors:` line; all 0 when wrk prints none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketErrors {
    /// Failed connects.
    pub connect: u64,
    /// Failed reads, including a connection the server closed.
    pub read: u64,
    /// Failed writes.
    pub write: u64,
    /// Requests unanswered after wrk's timeout (2 s by default).
    pub timeout: u64,
}

impl SocketErrors {
    /// All kinds.
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }
}

/// What one wrk run reported.
#[derive(Clone, Debug, PartialEq)]
pub struct WrkReport {
    /// Responses completed (`N requests in T, B read`).
    pub requests: u64,
    /// The run's length as wrk measured it (`T` above).
    pub duration: Duration,
    /// `Requests/sec:`, which is `requests / duration`.
    pub requests_per_sec: f64,
    /// `Latency Distribution`: percent and latency, in wrk's order (50, 75, 90, 99).
    pub latency: Vec<(f64, Duration)>,
    /// Socket errors.
    pub socket_errors: SocketErrors,
    /// `Non-2xx or 3xx responses:` (0 when wrk prints none).
    pub non_2xx: u64,
}

impl WrkReport {
    /// Reads the report `wrk --latency` prints on stdout; the missing or unreadable
    /// part when it is not one.
    pub fn parse(text: &str) -> Result<WrkReport, String> {
        let mut requests = None;
        let mut requests_per_sec = None;
        let mut latency = Vec::new();
        let mut socket_errors = SocketErrors::default();
        let mut non_2xx = 0;
        let mut in_distribution = false;
        for line in text.lines().map(str::trim) {
            if in_distribution {
                if let Some(point) = distribution_point(line) {
                    latency.push(point?);
                    continue;
                }
                in_distribution = false;
            }
            if line == "Latency Distribution" {
                in_distribution = true;
            } else if let Some(rest) = line.strip_prefix("Requests/sec:") {
                let v = rest.trim();
                requests_per_sec = Some(
                    v.parse::<f64>()
                        .map_err(|e| format!("Requests/sec `{v}`: {e}"))?,
                );
            } else if let Some(rest) = line.strip_prefix("Socket errors:") {
                socket_errors = parse_socket_errors(rest)?;
            } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
                let v = rest.trim();
                non_2xx = v.parse().map_err(|e| format!("Non-2xx `{v}`: {e}"))?;
            } else if let Some((count, rest)) = line.split_once(" requests in ") {
                let count = count
                    .parse::<u64>()
                    .map_err(|e| format!("request count `{count}`: {e}"))?;
                let took = rest.split(',').next().unwrap_or("").trim();
                let took = parse_duration(took).ok_or_else(|| format!("run time `{took}`"))?;
                requests = Some((count, took));
            }
        }
        let (requests, duration) = requests.ok_or("no `N requests in T` line")?;
        let requests_per_sec = requests_per_sec.ok_or("no `Requests/sec:` line")?;
        if latency.is_empty() {
            return Err("no `Latency Distribution` (was --latency given?)".to_owned());
        }
        Ok(WrkReport {
            requests,
            duration,
            requests_per_sec,
            latency,
            socket_errors,
            non_2xx,
        })
    }

    /// The latency at `percent` of the distribution, if wrk printed it.
    pub fn percentile(&self, percent: f64) -> Option<Duration> {
        self.latency
            .iter()
            .find(|(p, _)| (p - percent).abs() < 1e-9)
            .map(|&(_, d)| d)
    }
}

/// One `  99%    1.23ms` line of the distribution, or `None` for another line.
fn distribution_point(line: &str) -> Option<Result<(f64, Duration), String>> {
    let (percent, value) = line.split_once('%')?;
    let percent = percent.trim().parse::<f64>().ok()?;
    let value = value.trim();
    Some(
        parse_duration(value)
            .map(|d| (percent, d))
            .ok_or_else(|| format!("latency `{value}` at {percent}%")),
    )
}

/// `connect 0, read 12, write 0, timeout 3`.
fn parse_socket_errors(text: &str) -> Result<SocketErrors, String> {
    let mut errors = SocketErrors::default();
    for part in text.split(',') {
        let mut words = part.split_whitespace();
        let (Some(kind), Some(count), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("socket errors `{}`", text.trim()));
        };
        let count: u64 = count
            .parse()
            .map_err(|e| format!("socket errors `{}`: {e}", text.trim()))?;
        match kind {
            "connect" => errors.connect = count,
            "read" => errors.read = count,
            "write" => errors.write = count,
            "timeout" => errors.timeout = count,
            other => return Err(format!("socket errors: unknown kind `{other}`")),
        }
    }
    Ok(errors)
}

/// A time as wrk prints it: a number and one of its units `us`, `ms`, `s`, `m`, `h`
/// (`452.52us`, `1.23ms`, `2.00s`, `1.50m`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(number * scale).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("452.52us"),
            Some(Duration::from_nanos(452_520))
        );
        assert_eq!(parse_duration("1.23ms"), Some(Duration::from_micros(1_230)));
        assert_eq!(parse_duration("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.50m"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("0.00us"), Some(Duration::ZERO));
        assert_eq!(parse_duration("12.0"), None);
        assert_eq!(parse_duration("1.0ns"), None);
        assert_eq!(parse_duration("-1.0s"), None);
    }

    #[test]
    fn socket_errors() {
        assert_eq!(
            parse_socket_errors(" connect 0, read 12, write 1, timeout 3"),
            Ok(SocketErrors {
                connect: 0,
                read: 12,
                write: 1,
                timeout: 3
            })
        );
        assert!(parse_socket_errors("connect x").is_err());
    }
}
