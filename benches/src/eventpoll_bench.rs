//! `eventpoll`: [`EventPoll`] against the kernel's own epoll, side by side in one run.
//!
//! # What is measured
//!
//! - **wait, freshly reported**: N eventfds (1, 64, 1024) registered
//!   `EPOLLIN | EPOLLET`. Before each wait every fd is written once (for an
//!   edge-triggered item each write is a new wakeup, even when the counter is already
//!   non-zero), untimed; then one non-blocking wait is timed and must return exactly N.
//!   This is a runtime's steady state: every event reported was just produced.
//! - **wait, level-triggered, carried over** (for information): N eventfds registered
//!   `EPOLLIN`, made readable once and never read, so every wait reports the same N
//!   again. The kernel re-polls each item inside `epoll_wait`; `EventPoll` re-polls
//!   carried-over items itself (with `poll(2)`), so it takes a different path, whose
//!   cost is shown rather than judged. At N = 1024 the buffer is exactly full, which
//!   is a path of its own in `EventPoll`.
//! - **ctl**: `add`, `modify` and `delete` with 10, 1,000 and 100,000 fds already
//!   registered (eventfds). A cycle adds M extra fds with `EPOLLIN | EPOLLET`,
//!   modifies each to another mask (`EPOLLIN | EPOLLRDHUP | EPOLLET`, new data:
//!   `modify (mask)`) and deletes each; M is 1,000, or 10 for the smallest size so the
//!   set stays that size, with cycles repeated to reach the same number of operations.
//!   As many cycles again add the fds, modify each three times keeping the mask and
//!   changing only the data, and delete them, timing only the third modify (`modify
//!   (data)`: the steady state of an item whose data changes). Every case runs twice:
//!   with eventfds as the extra fds (the cheapest file for the kernel to poll and
//!   register, so the hardest comparison) and with unbound UDP sockets (what a
//!   runtime registers). `EventPoll` answers a steady-state data-only modify of either
//!   without the kernel (an item's first one reaches the kernel and its second looks
//!   the file up: their polls change nothing, so the kernel modify can be left out).
//!   (Timed in the main cycle, a pass after modifies that skipped the kernel would
//!   find only raw epoll's kernel items warm.) The fds are never ready (an unbound UDP
//!   socket is only writable), so nothing is queued. The extra fds are spread evenly
//!   among the registered ones and visited in a shuffled order, so neither interest
//!   tree sees only appends at one end.
//!
//! # Method
//!
//! - The thread is pinned to CPU 0 and `RLIMIT_NOFILE` is raised for the 100,000 case.
//!   If it cannot be raised that size is skipped, with a note; the largest size that
//!   fits under the limit is run instead, labelled, and the scaling target is
//!   reported as SKIP with that size's growth for information.
//! - The raw contender is what a careful user writes: `epoll_ctl` / `epoll_wait`
//!   through `libc`, errors turned into `io::Error`, nothing else. Both contenders use
//!   a 1024-event buffer (tokio's), or N if larger.
//! - Each case sets up both contenders (separate fds for the waits; for ctl one shared
//!   set, registered in both, which never becomes ready), runs one unrecorded warm-up
//!   round of each, then the recorded rounds. Contenders are interleaved round by
//!   round, alternating which goes first (A B, B A, A B, ...), so drift in the
//!   machine reaches both equally and neither always inherits the caches the other
//!   warmed.
//! - Timing uses [`Instant`] (the vDSO clock): around each single wait for fresh
//!   events (the writes before it must stay outside), around a whole round of waits
//!   for level-triggered ones, and around each batch of M ctl operations. The cost of
//!   an empty timed region, measured at start (median of 10,001), is subtracted from
//!   every region; it is printed with the results.
//! - A round's figure is total time ÷ operations. The table gives the median of the
//!   rounds for each contender, the ratio of the medians, and the range of the
//!   per-round ratios (raw and EventPoll of the same round paired).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use epitome_benches::machine::{self, Machine};
use epitome_runtime::eventpoll::{EPOLLET, EPOLLIN, EPOLLRDHUP, Event, EventPoll};

/// The usage line for this command.
pub const USAGE: &str = "eventpoll [--quick]";

/// Ready fds per wait.
const WAIT_SIZES: [usize; 3] = [1, 64, 1024];
/// Registrations already present around the ctl operations, then [`CTL_LARGEST`].
const CTL_SIZES: [usize; 2] = [10, 1_000];
/// The largest registered set, which the scaling target compares with 1,000.
const CTL_LARGEST: usize = 100_000;
/// Extra fds added, modified and deleted per ctl cycle.
const CTL_BATCH: usize = 1_000;
/// The event buffer both contenders wait with (at least N).
const EVENT_BUFFER: usize = 1024;
/// fds beyond a ctl case's own: the two epoll instances, stdio and the rest of the
/// process.
const NOFILE_HEADROOM: usize = 1_000;
/// fds the largest ctl case holds.
const NOFILE_WANTED: u64 = (CTL_LARGEST + CTL_BATCH + NOFILE_HEADROOM) as u64;

/// `wait` on fresh events may cost at most this many times the kernel's.
const WAIT_TARGET: f64 = 1.10;
/// Each ctl operation may cost at most this many times the kernel's.
const CTL_TARGET: f64 = 1.30;
/// EventPoll's ctl at 100,000 registrations may cost at most this many times its cost
/// at 1,000.
const SCALING_TARGET: f64 = 2.0;

/// How much work a run does.
#[derive(Clone, Copy, Debug)]
struct Budget {
    /// Recorded rounds per contender per case (the median is reported).
    rounds: usize,
    /// Events reported per contender per round in a wait case.
    events_per_round: usize,
    /// Fewest and most waits per round.
    min_waits: usize,
    max_waits: usize,
    /// ctl operations of each kind per contender per round.
    ctl_ops_per_round: usize,
}

const FULL: Budget = Budget {
    rounds: 51,
    events_per_round: 40_000,
    min_waits: 40,
    max_waits: 10_000,
    ctl_ops_per_round: 4_000,
};

const QUICK: Budget = Budget {
    rounds: 15,
    events_per_round: 20_000,
    min_waits: 20,
    max_waits: 5_000,
    ctl_ops_per_round: 2_000,
};

impl Budget {
    fn waits(&self, n: usize) -> usize {
        (self.events_per_round / n).clamp(self.min_waits, self.max_waits)
    }
}

/// Runs the benchmark; `args` are the arguments after `eventpoll`.
pub fn main(args: &[String]) -> ExitCode {
    let mut quick = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            other => {
                eprintln!("eventpoll: unknown option `{other}`\nusage: epitome-benches {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(if quick { QUICK } else { FULL }, quick) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eventpoll: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(budget: Budget, quick: bool) -> io::Result<()> {
    println!(
        "eventpoll micro-benchmark: EventPoll against raw kernel epoll{}",
        if quick { " (--quick)" } else { "" }
    );
    println!("{}", Machine::detect());
    match machine::pin_to_cpu(0) {
        Ok(()) => println!("pinned:  CPU 0"),
        Err(e) => println!("pinned:  no, sched_setaffinity failed: {e}"),
    }
    let largest = match machine::raise_nofile(NOFILE_WANTED) {
        Ok(raised) => {
            println!("limits:  {raised}");
            CTL_LARGEST
        }
        Err(short) => {
            // Run what fits instead, so the table still shows how the costs grow; it
            // is labelled, and the scaling target is not judged on it.
            let fits = usize::try_from(short.soft)
                .unwrap_or(usize::MAX)
                .saturating_sub(CTL_BATCH + NOFILE_HEADROOM)
                / 1_000
                * 1_000;
            println!("limits:  {short}");
            println!("         the {CTL_LARGEST}-registration size is skipped");
            if fits > 1_000 {
                println!(
                    "         and {fits} registrations (what fits) are run instead, for information"
                );
            }
            fits
        }
    };
    let timer = Timer::calibrate();
    println!(
        "method:  median of {} rounds per contender, interleaved; {:.1} ns timer overhead subtracted per timed region",
        budget.rounds, timer.overhead_ns
    );
    println!();

    let mut fresh = Vec::new();
    let mut level = Vec::new();
    for n in WAIT_SIZES {
        fresh.push(wait_case(n, Trigger::Edge, budget, timer)?);
        level.push(wait_case(n, Trigger::Level, budget, timer)?);
    }
    let mut ctl = Vec::new();
    let sizes = CTL_SIZES
        .into_iter()
        .chain((largest > 1_000).then_some(largest));
    for size in sizes {
        for extra in [Extra::EventFd, Extra::Udp] {
            ctl.extend(ctl_case(size, extra, budget, timer)?);
        }
    }

    println!(
        "wait on freshly reported events (EPOLLIN|EPOLLET, every fd written before each wait) and ctl:"
    );
    print_table(fresh.iter().chain(&ctl));
    println!();
    println!(
        "for information, level-triggered wait, the same N fds carried over from wait to wait:"
    );
    print_table(&level);
    println!();
    print_targets(&fresh, &ctl, largest);
    Ok(())
}

// ---------------------------------------------------------------------------
// The two contenders.

/// The operations both contenders provide, monomorphised so neither pays for dispatch.
trait Contender: Sized {
    /// The event buffer a wait fills.
    type Buf;
    fn create() -> io::Result<Self>;
    fn buffer(len: usize) -> Self::Buf;
    fn add(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()>;
    fn modify(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()>;
    fn delete(&self, fd: RawFd) -> io::Result<()>;
    /// A wait that never blocks; returns how many events it wrote.
    fn wait_now(&self, buf: &mut Self::Buf) -> io::Result<usize>;
}

/// The kernel's epoll, called directly.
struct RawEpoll {
    epfd: OwnedFd,
}

impl RawEpoll {
    #[inline]
    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: data };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let res = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) };
        if res == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl Contender for RawEpoll {
    type Buf = Vec<libc::epoll_event>;

    fn create() -> io::Result<RawEpoll> {
        // SAFETY: epoll_create1 takes no pointers.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: epoll_create1 just returned this fd and nothing else owns it.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RawEpoll { epfd })
    }

    fn buffer(len: usize) -> Self::Buf {
        vec![libc::epoll_event { events: 0, u64: 0 }; len]
    }

    #[inline]
    fn add(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, data)
    }

    #[inline]
    fn modify(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, data)
    }

    #[inline]
    fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    #[inline]
    fn wait_now(&self, buf: &mut Self::Buf) -> io::Result<usize> {
        let len = buf.len().min(libc::c_int::MAX as usize) as libc::c_int;
        // SAFETY: `buf` is valid for writes of `len` epoll_events, and `len` >= 1.
        let n = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), buf.as_mut_ptr(), len, 0) };
        if n == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

impl Contender for EventPoll {
    type Buf = Vec<Event>;

    fn create() -> io::Result<EventPoll> {
        EventPoll::new()
    }

    fn buffer(len: usize) -> Self::Buf {
        vec![Event::default(); len]
    }

    #[inline]
    fn add(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        EventPoll::add(self, fd, Event::new(events, data))
    }

    #[inline]
    fn modify(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        EventPoll::modify(self, fd, Event::new(events, data))
    }

    #[inline]
    fn delete(&self, fd: RawFd) -> io::Result<()> {
        EventPoll::delete(self, fd)
    }

    #[inline]
    fn wait_now(&self, buf: &mut Self::Buf) -> io::Result<usize> {
        self.wait(buf, Some(Duration::ZERO))
    }
}

/// `count` non-blocking, close-on-exec eventfds with counter 0.
fn eventfds(count: usize) -> io::Result<Vec<OwnedFd>> {
    (0..count).map(|_| eventfd()).collect()
}

/// A non-blocking, close-on-exec eventfd with counter 0.
fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: eventfd just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A non-blocking, close-on-exec, unbound UDP socket: never readable, no hang-up.
fn udp_socket() -> io::Result<OwnedFd> {
    let ty = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_INET, ty, 0) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd's counter: a wakeup for everything polling it.
fn signal(fd: &OwnedFd) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: the pointer is to 8 readable bytes, the size an eventfd write takes.
    let res = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    if res == 8 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---------------------------------------------------------------------------
// Timing and rounds.

#[derive(Clone, Copy, Debug)]
struct Timer {
    /// What an empty timed region measures, in ns.
    overhead_ns: f64,
}

impl Timer {
    fn calibrate() -> Timer {
        let mut samples: Vec<u128> = (0..10_001)
            .map(|_| {
                let start = Instant::now();
                start.elapsed().as_nanos()
            })
            .collect();
        samples.sort_unstable();
        Timer {
            overhead_ns: samples[samples.len() / 2] as f64,
        }
    }

    /// ns per operation for `ops` operations timed in `regions` regions totalling
    /// `total`.
    fn per_op(&self, total: Duration, regions: usize, ops: usize) -> f64 {
        let ns = total.as_nanos() as f64 - self.overhead_ns * regions as f64;
        ns.max(0.0) / ops as f64
    }
}

/// Per-round figures (ns per operation) of both contenders, `K` figures per round.
struct Samples<const K: usize> {
    raw: Vec<[f64; K]>,
    ep: Vec<[f64; K]>,
}

/// Runs one warm-up round of each contender, then `rounds` recorded rounds of each,
/// interleaved, alternating which goes first.
fn interleave<const K: usize>(
    rounds: usize,
    mut raw: impl FnMut() -> io::Result<[f64; K]>,
    mut ep: impl FnMut() -> io::Result<[f64; K]>,
) -> io::Result<Samples<K>> {
    raw()?;
    ep()?;
    let mut samples = Samples {
        raw: Vec::with_capacity(rounds),
        ep: Vec::with_capacity(rounds),
    };
    for round in 0..rounds {
        if round % 2 == 0 {
            samples.raw.push(raw()?);
            samples.ep.push(ep()?);
        } else {
            samples.ep.push(ep()?);
            samples.raw.push(raw()?);
        }
    }
    Ok(samples)
}

/// One line of a result table.
#[derive(Clone, Debug)]
struct Row {
    op: &'static str,
    size: usize,
    /// Median ns per operation.
    raw: f64,
    ep: f64,
    /// Lowest and highest per-round ratio.
    ratio_range: (f64, f64),
    /// Events each operation reports (waits only), for ns per event.
    events: Option<usize>,
}

impl Row {
    fn from_samples<const K: usize>(
        op: &'static str,
        size: usize,
        events: Option<usize>,
        s: &Samples<K>,
        k: usize,
    ) -> Row {
        let raw: Vec<f64> = s.raw.iter().map(|r| r[k]).collect();
        let ep: Vec<f64> = s.ep.iter().map(|r| r[k]).collect();
        let ratios: Vec<f64> = raw.iter().zip(&ep).map(|(r, e)| e / r).collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Row {
            op,
            size,
            raw: median(raw),
            ep: median(ep),
            ratio_range: (lo, hi),
            events,
        }
    }

    fn ratio(&self) -> f64 {
        self.ep / self.raw
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

// ---------------------------------------------------------------------------
// wait.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    /// `EPOLLIN | EPOLLET`, every fd written before each wait.
    Edge,
    /// `EPOLLIN`, every fd readable throughout, never written again.
    Level,
}

/// One contender's side of a wait case. Field order is drop order: the poller goes
/// before the fds it watches.
struct WaitSet<C: Contender> {
    poller: C,
    fds: Vec<OwnedFd>,
    buf: C::Buf,
}

impl<C: Contender> WaitSet<C> {
    fn new(n: usize, trigger: Trigger) -> io::Result<WaitSet<C>> {
        let poller = C::create()?;
        let fds = eventfds(n)?;
        let events = match trigger {
            Trigger::Edge => EPOLLIN | EPOLLET,
            Trigger::Level => EPOLLIN,
        };
        for (i, fd) in fds.iter().enumerate() {
            poller.add(fd.as_raw_fd(), events, i as u64)?;
        }
        if trigger == Trigger::Level {
            for fd in &fds {
                signal(fd)?;
            }
        }
        Ok(WaitSet {
            poller,
            fds,
            buf: C::buffer(n.max(EVENT_BUFFER)),
        })
    }

    fn check(&self, got: usize) -> io::Result<()> {
        if got == self.fds.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "{}: a wait returned {got} events, expected {}",
                std::any::type_name::<C>(),
                self.fds.len()
            )))
        }
    }

    /// `waits` waits, each after making every fd ready again; only the waits are
    /// timed.
    fn fresh_round(&mut self, waits: usize, timer: Timer) -> io::Result<[f64; 1]> {
        let mut total = Duration::ZERO;
        for _ in 0..waits {
            for fd in &self.fds {
                signal(fd)?;
            }
            let start = Instant::now();
            let got = self.poller.wait_now(&mut self.buf);
            total += start.elapsed();
            self.check(got?)?;
        }
        Ok([timer.per_op(total, waits, waits)])
    }

    /// `waits` back-to-back waits, each reporting the same ready fds, timed together.
    fn level_round(&mut self, waits: usize, timer: Timer) -> io::Result<[f64; 1]> {
        let mut wrong = None;
        let start = Instant::now();
        for _ in 0..waits {
            let got = self.poller.wait_now(&mut self.buf)?;
            if got != self.fds.len() {
                wrong = Some(got);
            }
        }
        let total = start.elapsed();
        if let Some(got) = wrong {
            self.check(got)?;
        }
        Ok([timer.per_op(total, 1, waits)])
    }
}

fn wait_case(n: usize, trigger: Trigger, budget: Budget, timer: Timer) -> io::Result<Row> {
    let mut raw = WaitSet::<RawEpoll>::new(n, trigger)?;
    let mut ep = WaitSet::<EventPoll>::new(n, trigger)?;
    let waits = budget.waits(n);
    let samples = match trigger {
        Trigger::Edge => interleave(
            budget.rounds,
            || raw.fresh_round(waits, timer),
            || ep.fresh_round(waits, timer),
        )?,
        Trigger::Level => interleave(
            budget.rounds,
            || raw.level_round(waits, timer),
            || ep.level_round(waits, timer),
        )?,
    };
    let op = match trigger {
        Trigger::Edge => "wait (fresh, ET)",
        Trigger::Level => "wait (carried, LT)",
    };
    Ok(Row::from_samples(op, n, Some(n), &samples, 0))
}

// ---------------------------------------------------------------------------
// ctl.

/// One contender's ctl rounds over the shared fds. Returns ns per add, modify of the
/// data, modify of the mask, delete.
///
/// The main cycles time add, modify of the mask and delete. The modify of the data is
/// timed in cycles of its own (add, delete and the first two modifies untimed): where
/// `EventPoll` answers one without the kernel, a pass timed after it would find only
/// raw epoll's kernel items warm.
fn ctl_round<C: Contender>(
    poller: &C,
    extras: &[RawFd],
    cycles: usize,
    timer: Timer,
) -> io::Result<[f64; 4]> {
    let mut totals = [Duration::ZERO; 4];
    let timed = |total: &mut Duration, pass: &mut dyn FnMut() -> io::Result<()>| {
        let start = Instant::now();
        pass()?;
        *total += start.elapsed();
        io::Result::Ok(())
    };
    let add = |data: u64| -> io::Result<()> {
        for (i, &fd) in extras.iter().enumerate() {
            poller.add(fd, EPOLLIN | EPOLLET, data | i as u64)?;
        }
        Ok(())
    };
    let delete = || -> io::Result<()> {
        for &fd in extras {
            poller.delete(fd)?;
        }
        Ok(())
    };
    for cycle in 0..cycles {
        let data = (cycle as u64) << 32;
        timed(&mut totals[0], &mut || add(data))?;
        timed(&mut totals[2], &mut || {
            for (i, &fd) in extras.iter().enumerate() {
                poller.modify(fd, EPOLLIN | EPOLLRDHUP | EPOLLET, !(data | i as u64))?;
            }
            Ok(())
        })?;
        timed(&mut totals[3], &mut || delete())?;
    }
    let modify_data = |data: u64| -> io::Result<()> {
        for (i, &fd) in extras.iter().enumerate() {
            poller.modify(fd, EPOLLIN | EPOLLET, data | i as u64)?;
        }
        Ok(())
    };
    for cycle in 0..cycles {
        let data = (cycle as u64) << 32;
        add(data)?;
        // The first two data-only modifies of an item are not the steady state (see
        // the module docs); the third is.
        modify_data(data | 1 << 20)?;
        modify_data(data | 2 << 20)?;
        timed(&mut totals[1], &mut || modify_data(data | 3 << 20))?;
        delete()?;
    }
    let ops = cycles * extras.len();
    Ok(totals.map(|t| timer.per_op(t, cycles, ops)))
}

/// The kind of the extra fds a ctl case adds, modifies and deletes.
#[derive(Clone, Copy, Debug)]
enum Extra {
    /// An eventfd: the cheapest file for the kernel to poll and register.
    EventFd,
    /// An unbound UDP socket: what a runtime registers.
    Udp,
}

impl Extra {
    /// The row names: add, modify (data), modify (mask), delete.
    fn ops(self) -> [&'static str; 4] {
        match self {
            Extra::EventFd => [
                "add, eventfd",
                "modify (data), eventfd",
                "modify (mask), eventfd",
                "delete, eventfd",
            ],
            Extra::Udp => [
                "add, UDP",
                "modify (data), UDP",
                "modify (mask), UDP",
                "delete, UDP",
            ],
        }
    }
}

fn ctl_case(size: usize, extra: Extra, budget: Budget, timer: Timer) -> io::Result<[Row; 4]> {
    let batch = CTL_BATCH.min(size);
    let cycles = budget.ctl_ops_per_round.div_ceil(batch);
    // The fds first: locals drop in reverse, so the pollers go before the fds they
    // hold (EventPoll's contract is delete, or drop the EventPoll, before close).
    // Every `stride`-th fd is an extra, the rest are the registered set (eventfds), so
    // the extras' numbers are spread among the registered ones.
    let total = size + batch;
    let stride = total / batch;
    let is_extra = |i: usize| i % stride == 0 && i / stride < batch;
    let fds = (0..total)
        .map(|i| match (is_extra(i), extra) {
            (true, Extra::Udp) => udp_socket(),
            _ => eventfd(),
        })
        .collect::<io::Result<Vec<OwnedFd>>>()?;
    let raw = RawEpoll::create()?;
    let ep = EventPoll::new()?;

    let mut extras = Vec::with_capacity(batch);
    for (i, fd) in fds.iter().enumerate() {
        let fd = fd.as_raw_fd();
        if is_extra(i) {
            extras.push(fd);
        } else {
            raw.add(fd, EPOLLIN | EPOLLET, i as u64)?;
            Contender::add(&ep, fd, EPOLLIN | EPOLLET, i as u64)?;
        }
    }
    shuffle(&mut extras, 0x9e37_79b9_7f4a_7c15);
    debug_assert_eq!(ep.len(), size);

    let samples = interleave(
        budget.rounds,
        || ctl_round(&raw, &extras, cycles, timer),
        || ctl_round(&ep, &extras, cycles, timer),
    )?;
    let ops = extra.ops();
    Ok([0, 1, 2, 3].map(|k| Row::from_samples(ops[k], size, None, &samples, k)))
}

/// Fisher-Yates with xorshift64*: the same order on every run.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let r = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

// ---------------------------------------------------------------------------
// Output.

fn print_table<'a>(rows: impl IntoIterator<Item = &'a Row>) {
    println!(
        "{:<24} {:>7} {:>12} {:>12} {:>7} {:>13} {:>11} {:>11}",
        "operation",
        "size",
        "raw ns/op",
        "EP ns/op",
        "ratio",
        "round range",
        "raw ns/ev",
        "EP ns/ev"
    );
    for row in rows {
        let (lo, hi) = row.ratio_range;
        let per_event = |ns: f64| {
            row.events
                .map_or(String::new(), |n| format!("{:.1}", ns / n as f64))
        };
        println!(
            "{:<24} {:>7} {:>12.1} {:>12.1} {:>6.2}x {:>13} {:>11} {:>11}",
            row.op,
            row.size,
            row.raw,
            row.ep,
            row.ratio(),
            format!("{lo:.2}-{hi:.2}"),
            per_event(row.raw),
            per_event(row.ep),
        );
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn print_targets(fresh: &[Row], ctl: &[Row], largest: usize) {
    println!("targets:");
    for row in fresh {
        let r = row.ratio();
        println!(
            "  {}  {} n={}: {r:.2}x raw epoll_wait (target <= {WAIT_TARGET:.2}x)",
            verdict(r <= WAIT_TARGET),
            row.op,
            row.size
        );
    }
    for row in ctl {
        let r = row.ratio();
        println!(
            "  {}  {} at {}: {r:.2}x raw epoll_ctl (target <= {CTL_TARGET:.2}x)",
            verdict(r <= CTL_TARGET),
            row.op,
            row.size
        );
    }
    for op in [Extra::EventFd, Extra::Udp]
        .into_iter()
        .flat_map(Extra::ops)
    {
        let at = |size| ctl.iter().find(|r| r.op == op && r.size == size);
        let (Some(small), Some(large)) = (at(1_000), at(largest).filter(|_| largest > 1_000))
        else {
            println!(
                "  SKIP  EventPoll {op} at {CTL_LARGEST} vs 1000: {CTL_LARGEST} registrations not run"
            );
            continue;
        };
        let (growth, raw_growth) = (large.ep / small.ep, large.raw / small.raw);
        if largest == CTL_LARGEST {
            println!(
                "  {}  EventPoll {op} at {largest} vs 1000: {growth:.2}x (target <= {SCALING_TARGET:.2}x; raw epoll: {raw_growth:.2}x)",
                verdict(growth <= SCALING_TARGET),
            );
        } else {
            println!(
                "  SKIP  EventPoll {op} at {CTL_LARGEST} vs 1000: not run; for information at {largest} vs 1000: {growth:.2}x (raw epoll: {raw_growth:.2}x)"
            );
        }
    }
}
