//! Issue 20: a Unix socket path whose first byte is NUL (`"\0name"`) is the abstract
//! address `name` wherever a path is taken, as the kernel and tokio read it; it used
//! to be `InvalidInput`. Ordinary paths keep working, and bad ones get clear errors.

mod util;

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use epitome_net::{UnixDatagram, UnixListener, UnixStream};
use util::{each_flavor, err_kind, within};

/// `"\0" + name` as a path.
fn nul_path(name: &[u8]) -> PathBuf {
    let mut bytes = vec![0];
    bytes.extend_from_slice(name);
    PathBuf::from(OsStr::from_bytes(&bytes))
}

#[test]
fn listener_and_stream_take_a_leading_nul_as_abstract() {
    each_flavor(
        "listener_and_stream_take_a_leading_nul_as_abstract",
        || async {
            let name = util::abstract_name("listener");
            let path = nul_path(&name);
            let l = UnixListener::bind(&path).unwrap();
            // Abstract: nothing in the filesystem, and the address says so.
            let local = l.local_addr().unwrap();
            assert_eq!(local.as_abstract_name(), Some(&name[..]));
            assert!(local.as_pathname().is_none());
            // Connect by the same NUL path, and by a `&str` holding the NUL.
            let text = format!("\0{}", String::from_utf8(name.clone()).unwrap());
            for (what, target) in [("path", path.clone()), ("str", PathBuf::from(&text))] {
                let (c, a) =
                    futures_util::future::join(UnixStream::connect(&target), l.accept()).await;
                let c = c.unwrap_or_else(|e| panic!("connect by {what}: {e}"));
                let (a, _) = a.unwrap();
                assert_eq!(c.peer_addr().unwrap().as_abstract_name(), Some(&name[..]));
                c.write_all(what.as_bytes()).await.unwrap();
                let mut buf = vec![0; what.len()];
                a.read_exact(&mut buf).await.unwrap();
                assert_eq!(buf, what.as_bytes());
            }
            // The name is taken while the listener lives...
            assert_eq!(
                err_kind(UnixListener::bind(&path)),
                io::ErrorKind::AddrInUse
            );
            drop(l);
            // ...and nobody listens after it is gone (no file was left behind to remove).
            let res = within("connect to a gone name", UnixStream::connect(&path)).await;
            assert_eq!(err_kind(res), io::ErrorKind::ConnectionRefused);
            UnixListener::bind(&path).unwrap();
        },
    );
}

#[test]
fn datagram_takes_a_leading_nul_as_abstract() {
    each_flavor("datagram_takes_a_leading_nul_as_abstract", || async {
        let (an, bn) = (
            util::abstract_name("dgram-a"),
            util::abstract_name("dgram-b"),
        );
        let a = UnixDatagram::bind(nul_path(&an)).unwrap();
        let b = UnixDatagram::bind(nul_path(&bn)).unwrap();
        assert_eq!(b.local_addr().unwrap().as_abstract_name(), Some(&bn[..]));
        a.send_to(b"one", nul_path(&bn)).await.unwrap();
        a.try_send_to(b"two", nul_path(&bn)).unwrap();
        std::future::poll_fn(|cx| a.poll_send_to(cx, b"three", nul_path(&bn)))
            .await
            .unwrap();
        let mut buf = [0; 8];
        for want in [&b"one"[..], b"two", b"three"] {
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], want);
            assert_eq!(from.as_abstract_name(), Some(&an[..]));
        }
        b.connect(nul_path(&an)).unwrap();
        b.send(b"back").await.unwrap();
        assert_eq!(a.recv(&mut buf).await.unwrap(), 4);
    });
}

#[test]
fn ordinary_paths_and_bad_ones() {
    each_flavor("ordinary_paths_and_bad_ones", || async {
        let dir = util::TempDir::new("paths");
        let p = dir.join("sock");
        let l = UnixListener::bind(&p).unwrap();
        assert_eq!(l.local_addr().unwrap().as_pathname(), Some(p.as_path()));
        assert!(p.exists());
        let (c, a) = futures_util::future::join(UnixStream::connect(&p), l.accept()).await;
        drop((c.unwrap(), a.unwrap()));
        // A NUL after the first byte is not a path the kernel can take.
        let bad = PathBuf::from(OsStr::from_bytes(b"/tmp/a\0b"));
        assert_eq!(
            err_kind(UnixListener::bind(&bad)),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            err_kind(UnixDatagram::bind(&bad)),
            io::ErrorKind::InvalidInput
        );
        let res = within("connect to a bad path", UnixStream::connect(&bad)).await;
        assert_eq!(err_kind(res), io::ErrorKind::InvalidInput);
        // A name too long for `sun_path`, abstract or not.
        let long = nul_path(&[b'x'; 200]);
        assert_eq!(
            err_kind(UnixListener::bind(&long)),
            io::ErrorKind::InvalidInput
        );
        let long = dir.join(&"y".repeat(200));
        assert_eq!(
            err_kind(UnixDatagram::bind(&long)),
            io::ErrorKind::InvalidInput
        );
        // Nothing at a path: the kernel's answer.
        let res = within("connect to nothing", UnixStream::connect(dir.join("none"))).await;
        assert_eq!(err_kind(res), io::ErrorKind::NotFound);
    });
}
