//! The machine a benchmark ran on, and the one resource limit the benchmarks raise.
//!
//! Every result is printed under a [`Machine`] line (CPU model, CPU count, kernel,
//! rustc, date), as BENCHMARKING.md asks, so a table is never read without knowing
//! where it came from. The rustc version is the one on `PATH` when the benchmark runs
//! (`rustc -V`), which is the one cargo used to build it in the usual
//! `cargo run --release` workflow.
//!
//! [`raise_nofile`] raises `RLIMIT_NOFILE` for benchmarks that hold more fds than the
//! default limit allows (100,000 registrations against a limit of 20,000), and
//! [`pin_to_cpu`] keeps a measuring thread on one core, so that the scheduler moving
//! it is not part of what is measured.

use std::fmt;
use std::io;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the machine is, as far as a benchmark result depends on it.
#[derive(Clone, Debug)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Online CPUs (`available_parallelism`, so it respects the process's affinity).
    pub cpus: usize,
    /// `uname`: system name, release and machine.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// UTC date and time the record was made, ISO 8601.
    pub date: String,
}

impl Machine {
    /// Records the machine now. Anything that cannot be read is given as `unknown`
    /// rather than failing the benchmark.
    pub fn detect() -> Machine {
        Machine {
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_owned()),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: kernel().unwrap_or_else(|| "unknown".to_owned()),
            rustc: rustc_version().unwrap_or_else(|| "unknown".to_owned()),
            date: utc_now(),
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "date:   {}", self.date)?;
        writeln!(f, "cpu:    {} ({} CPUs)", self.cpu_model, self.cpus)?;
        writeln!(f, "kernel: {}", self.kernel)?;
        write!(f, "rustc:  {}", self.rustc)
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

fn kernel() -> Option<String> {
    // SAFETY: utsname is plain old data (arrays of c_char); all zeroes is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname for the duration of the call.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let field = |raw: &[libc::c_char]| {
        let bytes: Vec<u8> = raw
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(format!(
        "{} {} {}",
        field(&uts.sysname),
        field(&uts.release),
        field(&uts.machine)
    ))
}

fn rustc_version() -> Option<String> {
    let out = Command::new("rustc").arg("-V").output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `RLIMIT_NOFILE` was raised (or already high enough).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileRaised {
    /// Soft limit before.
    pub from: u64,
    /// Soft limit now; at least the value asked for.
    pub to: u64,
}

impl fmt::Display for NofileRaised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "RLIMIT_NOFILE is {}, enough", self.to)
        } else {
            write!(f, "RLIMIT_NOFILE raised from {} to {}", self.from, self.to)
        }
    }
}

/// `RLIMIT_NOFILE` could not reach the value asked for.
#[derive(Debug)]
pub struct NofileShortfall {
    /// The value asked for.
    pub wanted: u64,
    /// The soft limit now in effect (raised as far as was allowed).
    pub soft: u64,
    /// Why it stopped there.
    pub reason: String,
}

impl fmt::Display for NofileShortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RLIMIT_NOFILE could not be raised to {}: {}; the soft limit is now {}",
            self.wanted, self.reason, self.soft
        )
    }
}

impl std::error::Error for NofileShortfall {}

/// Raises this process's `RLIMIT_NOFILE` soft limit to at least `wanted`.
///
/// The soft limit may rise freely up to the hard limit. Past it, the hard limit is
/// raised too, which needs `CAP_SYS_RESOURCE` (root) and stops at
/// `/proc/sys/fs/nr_open`. When `wanted` cannot be reached the soft limit is still
/// raised as far as allowed, and the error says how far and why.
pub fn raise_nofile(wanted: u64) -> Result<NofileRaised, NofileShortfall> {
    let current = match get_nofile() {
        Ok(lim) => lim,
        Err(e) => {
            return Err(NofileShortfall {
                wanted,
                soft: 0,
                reason: format!("getrlimit failed: {e}"),
            });
        }
    };
    let from = current.rlim_cur;
    if from == libc::RLIM_INFINITY || from >= wanted {
        return Ok(NofileRaised { from, to: from });
    }
    let hard = current.rlim_max;
    if hard == libc::RLIM_INFINITY || hard >= wanted {
        return match set_nofile(wanted, hard) {
            Ok(()) => Ok(NofileRaised { from, to: wanted }),
            Err(e) => Err(NofileShortfall {
                wanted,
                soft: from,
                reason: format!("setrlimit failed: {e}"),
            }),
        };
    }
    // The hard limit is too low: raising it needs privilege, and the kernel refuses
    // anything above fs.nr_open.
    let nr_open = nr_open();
    let target = nr_open.map_or(wanted, |max| wanted.min(max));
    match set_nofile(target, target) {
        Ok(()) if target >= wanted => Ok(NofileRaised { from, to: target }),
        Ok(()) => Err(NofileShortfall {
            wanted,
            soft: target,
            reason: format!("/proc/sys/fs/nr_open caps it at {target}"),
        }),
        Err(e) => {
            // Unprivileged: go as far as the hard limit allows.
            let soft = if set_nofile(hard, hard).is_ok() {
                hard
            } else {
                from
            };
            let why = if e.raw_os_error() == Some(libc::EPERM) {
                "raising it needs CAP_SYS_RESOURCE (EPERM)".to_owned()
            } else {
                format!("setrlimit failed: {e}")
            };
            Err(NofileShortfall {
                wanted,
                soft,
                reason: format!("the hard limit is {hard} and {why}"),
            })
        }
    }
}

fn get_nofile() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit, read by the kernel for the duration of the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Pins the calling thread to `cpu` (`sched_setaffinity`).
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `cpu` indexes a bit inside `set` (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let res = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if res != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }
}
