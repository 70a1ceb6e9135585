//! `EventPoll`'s own fds are not the caller's.
//!
//! An `EventPoll` holds fds of its own: its kernel epoll instance, the eventfd that
//! hands a delivery on to another waiting thread, and the proxy instances of items
//! modified to edge-triggered on the ready list. A caller never opened them, but can
//! still name their numbers: an fd closed without a delete (against the contract)
//! whose number one of them then took, or any stray fd number. A ctl on such a
//! number must answer as for a closed fd (EBADF, forgetting a stale item there) and
//! must never reach the registration behind it: deleting the eventfd's registration
//! would leave a second waiting thread asleep, modifying it would turn its wakeups
//! into reports of a user item.
//!
//! The fds are found by listing `/proc/self/fd` before and after they appear, and
//! the kernel instance's registrations are read from `/proc/self/fdinfo`. Other tests
//! in the same process would open fds meanwhile, so this file has one test, and its
//! cases run one after another.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use epitome_runtime::eventpoll::*;

/// The open fds (without the one the listing itself used, closed by now).
fn open_fds() -> BTreeSet<RawFd> {
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    listed
        .into_iter()
        // SAFETY: F_GETFD takes no pointer; it only asks whether the fd is open.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1)
        .collect()
}

/// The fds open now that were not in `before`.
fn new_fds(before: &BTreeSet<RawFd>) -> Vec<RawFd> {
    open_fds().difference(before).copied().collect()
}

fn link(fd: RawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// The `(tfd, data)` pairs registered in the epoll instance `epfd`.
fn registrations(epfd: RawFd) -> Vec<(RawFd, u64)> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{epfd}")).expect("fdinfo");
    info.lines()
        .filter(|l| l.starts_with("tfd:"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let tfd = f[1].parse().expect("tfd");
            let data = u64::from_str_radix(f[5], 16).expect("data");
            (tfd, data)
        })
        .collect()
}

fn eventfd(initval: u32) -> OwnedFd {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::eventfd(initval, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: just created, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn errno(res: std::io::Result<()>) -> i32 {
    res.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

/// Every ctl on `fd` answers EBADF.
fn assert_not_ours(ep: &EventPoll, fd: RawFd, what: &str) {
    let ev = Event {
        events: EPOLLIN,
        data: 1,
    };
    assert_eq!(errno(ep.add(fd, ev)), libc::EBADF, "add of {what}");
    assert_eq!(errno(ep.modify(fd, ev)), libc::EBADF, "modify of {what}");
    assert_eq!(errno(ep.delete(fd)), libc::EBADF, "delete of {what}");
}

/// Two threads blocked in `wait`, then a level-triggered item becomes ready: the
/// kernel wakes one, whose delivery leaves the item on the ready list and wakes the
/// other through the eventfd. Returns how many of the two got the event.
fn both_waiters_get_a_level_event(ep: &Arc<EventPoll>) -> usize {
    let item = eventfd(0);
    ep.add(
        item.as_raw_fd(),
        Event {
            events: EPOLLIN,
            data: 42,
        },
    )
    .unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (ep, got) = (ep.clone(), got.clone());
            thread::spawn(move || {
                let mut buf = [Event::default(); 4];
                let n = ep.wait(&mut buf, Some(Duration::from_secs(3))).unwrap();
                if buf[..n].iter().any(|e| e.data == 42) {
                    got.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Let both block in the kernel wait (were one not blocked yet, it would find the
    // item on the ready list by itself, and the test would pass without the eventfd).
    thread::sleep(Duration::from_millis(200));
    // SAFETY: plain syscall on an fd this test owns.
    assert_eq!(unsafe { libc::eventfd_write(item.as_raw_fd(), 1) }, 0);
    for w in waiters {
        w.join().unwrap();
    }
    ep.delete(item.as_raw_fd()).unwrap();
    got.load(Ordering::SeqCst)
}

#[test]
fn ctl_never_reaches_eventpolls_own_fds() {
    // The kernel instance.
    let before = open_fds();
    let ep = Arc::new(EventPoll::new().unwrap());
    let created = new_fds(&before);
    assert_eq!(created.len(), 1, "EventPoll::new opened {created:?}");
    let epfd = created[0];
    assert!(link(epfd).contains("eventpoll"), "{}", link(epfd));
    assert_not_ours(&ep, epfd, "the kernel instance");
    assert!(ep.is_empty());

    // A stale item: registered, then closed without a delete. Its number is made the
    // lowest free one, so the eventfd EventPoll opens next takes it.
    let user = eventfd(0);
    let stale = user.as_raw_fd();
    ep.add(
        stale,
        Event {
            events: EPOLLIN,
            data: 7,
        },
    )
    .unwrap();
    drop(user);
    let mut fillers = Vec::new();
    loop {
        let fd = eventfd(0);
        if fd.as_raw_fd() >= stale {
            break;
        }
        fillers.push(fd);
    }
    assert_eq!(ep.len(), 1);

    // A second waiting thread makes EventPoll open its eventfd.
    let before = open_fds();
    let blocked = {
        let ep = ep.clone();
        thread::spawn(move || {
            let mut buf = [Event::default(); 1];
            ep.wait(&mut buf, Some(Duration::from_secs(1))).unwrap()
        })
    };
    let mut created = Vec::new();
    for _ in 0..50 {
        let mut buf = [Event::default(); 1];
        assert_eq!(
            ep.wait(&mut buf, Some(Duration::from_millis(20))).unwrap(),
            0
        );
        created = new_fds(&before);
        if !created.is_empty() {
            break;
        }
    }
    assert_eq!(blocked.join().unwrap(), 0);
    assert_eq!(
        created,
        [stale],
        "the eventfd should have taken the stale number"
    );
    assert!(link(stale).contains("eventfd"), "{}", link(stale));
    let notify = (stale, u64::MAX);
    assert!(registrations(epfd).contains(&notify));

    // The caller's late delete of the stale item, and any other ctl on that number,
    // answer as for the closed fd and leave the eventfd's registration alone.
    assert_not_ours(&ep, stale, "the eventfd (a stale item's number)");
    assert!(ep.is_empty(), "the stale item is forgotten");
    assert!(
        registrations(epfd).contains(&notify),
        "{:?}",
        registrations(epfd)
    );
    assert_eq!(both_waiters_get_a_level_event(&ep), 2);

    // A proxy: an item modified to edge-triggered while on the ready list and
    // delivered from it while still ready.
    let item = eventfd(1);
    let ev = |events, data| Event { events, data };
    ep.add(item.as_raw_fd(), ev(EPOLLIN, 1)).unwrap();
    let mut buf = [Event::default(); 4];
    assert_eq!(ep.wait(&mut buf, Some(Duration::ZERO)).unwrap(), 1);
    ep.modify(item.as_raw_fd(), ev(EPOLLIN | EPOLLET, 2))
        .unwrap();
    let before = open_fds();
    assert_eq!(ep.wait(&mut buf, Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(buf[0].data, 2);
    let created = new_fds(&before);
    assert_eq!(created.len(), 1, "one proxy instance: {created:?}");
    let proxy = created[0];
    assert!(link(proxy).contains("eventpoll"), "{}", link(proxy));
    assert_not_ours(&ep, proxy, "a proxy instance");
    assert!(registrations(epfd).iter().any(|&(fd, _)| fd == proxy));
    // The proxied item still reports its next edge, and only once.
    assert_eq!(ep.wait(&mut buf, Some(Duration::ZERO)).unwrap(), 0);
    // SAFETY: plain syscall on an fd this test owns.
    assert_eq!(unsafe { libc::eventfd_write(item.as_raw_fd(), 1) }, 0);
    assert_eq!(ep.wait(&mut buf, Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(buf[0], ev(EPOLLIN, 2));
    assert_eq!(ep.wait(&mut buf, Some(Duration::ZERO)).unwrap(), 0);
    ep.delete(item.as_raw_fd()).unwrap();
    assert!(ep.is_empty());
    drop(fillers);
}
