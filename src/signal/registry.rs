//! The process-wide half of signal delivery: for each signal number, a delivery count
//! and an eventfd, and the handler that bumps one and writes to the other.
//!
//! Who touches what: a `Slot`'s `eventfd` is written once, under `INSTALL`, before the
//! handler is registered, and never changes after (the eventfd lives as long as the
//! process, as the handler that writes to it does). `deliveries` is bumped by the
//! handler and read by listeners. Nothing else is shared.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Signal numbers are below 65 on Linux (`SIGRTMAX` is 64).
const SLOTS: usize = 65;

pub(super) struct Slot {
    /// Deliveries seen by the handler since it was installed.
    pub(super) deliveries: AtomicU64,
    /// The eventfd the handler writes to; -1 until installed.
    eventfd: AtomicI32,
}

static SLOT: [Slot; SLOTS] = [const {
    Slot {
        deliveries: AtomicU64::new(0),
        eventfd: AtomicI32::new(-1),
    }
}; SLOTS];

/// Serialises installation, so a signal gets one eventfd and one handler.
static INSTALL: Mutex<()> = Mutex::new(());

/// The handler's work, in signal context: only an atomic add and write(2), both
/// async-signal-safe (signal-hook-registry saves and restores errno around it).
fn deliver(signal: usize) {
    let slot = &SLOT[signal];
    slot.deliveries.fetch_add(1, Ordering::SeqCst);
    let fd = slot.eventfd.load(Ordering::Acquire);
    if fd >= 0 {
        let one: u64 = 1;
        // SAFETY: `one` is 8 readable bytes; a write to an fd that is not open (never
        // the case: the eventfd is never closed) would only fail. A full counter
        // (2^64 - 2 deliveries) fails with EAGAIN, harmlessly: the count above is what
        // listeners read.
        unsafe { libc::write(fd, (&raw const one).cast(), 8) };
    }
}

/// Checks that `signal` can be listened to, installs its handler on first use, and
/// returns its slot and a fresh duplicate of its eventfd for one listener.
pub(super) fn listen(signal: i32) -> io::Result<(&'static Slot, OwnedFd)> {
    check(signal)?;
    let index = signal as usize;
    let slot = &SLOT[index];
    {
        let _install = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
        if slot.eventfd.load(Ordering::Acquire) < 0 {
            install(signal, slot)?;
        }
    }
    let fd = slot.eventfd.load(Ordering::Acquire);
    Ok((slot, duplicate(fd)?))
}

fn install(signal: i32, slot: &'static Slot) -> io::Result<()> {
    // SAFETY: eventfd(2) with valid flags; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by eventfd(2) and is owned by nobody else.
    let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Stored before the handler exists, so the handler always finds it.
    slot.eventfd.store(eventfd.as_raw_fd(), Ordering::Release);
    let index = signal as usize;
    // SAFETY: `deliver` is async-signal-safe (see it) and does not panic: indexing is
    // in bounds (`check` limited `signal` to the table).
    let registered = unsafe { signal_hook_registry::register(signal, move || deliver(index)) };
    match registered {
        Ok(_) => {
            // The handler may write to it at any time from now on: never closed.
            let _ = eventfd.into_raw_fd();
            Ok(())
        }
        Err(e) => {
            slot.eventfd.store(-1, Ordering::Release);
            Err(e)
        }
    }
}

fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(2) on an open fd (the slot's eventfd is never closed); the result
    // is checked.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

fn check(signal: i32) -> io::Result<()> {
    let invalid = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    if signal < 1 || signal > libc::SIGRTMAX() || signal as usize >= SLOTS {
        return invalid(format!(
            "signal {signal} does not exist: signal numbers run from 1 to {}",
            libc::SIGRTMAX()
        ));
    }
    if signal == libc::SIGKILL || signal == libc::SIGSTOP {
        return invalid(format!(
            "{} cannot be caught: the kernel never lets a process handle it",
            name(signal)
        ));
    }
    if signal_hook_registry::FORBIDDEN.contains(&signal) {
        return invalid(format!(
            "{} cannot be listened to: it reports a fault of the thread that raised it and \
             must be handled synchronously, not through a reactor",
            name(signal)
        ));
    }
    Ok(())
}

/// `SIGINT`, `SIGRTMIN+3`, or the number.
pub(super) fn name(signal: i32) -> String {
    let known = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        _ => "",
    };
    if !known.is_empty() {
        known.to_string()
    } else if signal >= libc::SIGRTMIN() && signal <= libc::SIGRTMAX() {
        format!("SIGRTMIN+{}", signal - libc::SIGRTMIN())
    } else {
        format!("signal {signal}")
    }
}
