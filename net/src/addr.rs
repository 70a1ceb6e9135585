//! `ToSocketAddrs`: what `bind`, `connect` and `send_to` accept, resolved without
//! blocking a worker.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::pin::Pin;

mod sealed {
    pub trait Sealed {}
}

/// Something that names one or more socket addresses.
///
/// Literal addresses (`SocketAddr`, `(IpAddr, u16)`, `"127.0.0.1:8080"`) resolve at
/// once. Host names (`"localhost:8080"`, `("example.com", 443)`) are looked up with the
/// system resolver on the runtime's blocking pool, so a slow DNS answer never stalls a
/// worker.
///
/// It is implemented for what tokio's is: `SocketAddr`, `SocketAddrV4`, `SocketAddrV6`,
/// `(IpAddr, u16)`, `(Ipv4Addr, u16)`, `(Ipv6Addr, u16)`, `(&str, u16)`,
/// `(String, u16)`, `str`, `String`, `[SocketAddr]` and arrays of it, and references to
/// any of them (`&[SocketAddr]`, `&String`, ...).
///
/// This trait is sealed: its methods are epitome's own business.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
///
/// use epitome_net::UdpSocket;
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let a = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     let ip: IpAddr = Ipv4Addr::LOCALHOST.into();
///     a.send_to(b"1", (ip, b.local_addr()?.port())).await?;
///     a.send_to(b"2", format!("127.0.0.1:{}", b.local_addr()?.port())).await?;
///     let addrs: &[SocketAddr] = &[b.local_addr()?];
///     a.send_to(b"3", addrs).await?;
///     let mut buf = [0; 1];
///     for want in [b"1", b"2", b"3"] {
///         b.recv(&mut buf).await?;
///         assert_eq!(&buf, want);
///     }
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub trait ToSocketAddrs: sealed::Sealed {
    #[doc(hidden)]
    fn to_socket_addrs(&self) -> Resolve;
}

/// The resolution of a [`ToSocketAddrs`] value.
#[doc(hidden)]
pub enum Resolve {
    Ready(io::Result<Vec<SocketAddr>>),
    Lookup(String),
}

impl Resolve {
    pub(crate) async fn resolve(self) -> io::Result<Vec<SocketAddr>> {
        match self {
            Resolve::Ready(r) => r,
            Resolve::Lookup(host) => {
                let res = epitome_runtime::task::spawn_blocking(move || {
                    std::net::ToSocketAddrs::to_socket_addrs(&host).map(Iterator::collect::<Vec<_>>)
                })
                .await;
                match res {
                    Ok(r) => r,
                    Err(e) => Err(io::Error::other(e.to_string())),
                }
            }
        }
    }
}

/// Resolves `host` to its socket addresses (tokio's `net::lookup_host`): literal
/// addresses at once, host names with the system resolver on the blocking pool.
///
/// ```
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let addrs: Vec<_> = epitome_net::lookup_host("127.0.0.1:80").await?.collect();
///     assert_eq!(addrs, ["127.0.0.1:80".parse().unwrap()]);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// # Errors
///
/// The resolver's error (a host name that does not resolve, say).
pub async fn lookup_host<T: ToSocketAddrs>(
    host: T,
) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(host.to_socket_addrs().resolve().await?.into_iter())
}

/// Resolves `addr` and runs `f` on each address in turn, returning the first success
/// or the last error.
pub(crate) async fn each_addr<A, T, F, Fut>(addr: A, mut f: F) -> io::Result<T>
where
    A: ToSocketAddrs,
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let addrs = addr.to_socket_addrs().resolve().await?;
    let mut last = None;
    for a in addrs {
        match f(a).await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

/// Resolves to exactly one address (the first), for `send_to`.
pub(crate) async fn first_addr<A: ToSocketAddrs>(addr: A) -> io::Result<SocketAddr> {
    let addrs = addr.to_socket_addrs().resolve().await?;
    addrs
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}

fn ready(v: Vec<SocketAddr>) -> Resolve {
    Resolve::Ready(Ok(v))
}

macro_rules! literal {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl ToSocketAddrs for $t {
            fn to_socket_addrs(&self) -> Resolve {
                ready(vec![SocketAddr::from(*self)])
            }
        }
    )*};
}

literal!(
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl sealed::Sealed for SocketAddr {}
impl ToSocketAddrs for SocketAddr {
    fn to_socket_addrs(&self) -> Resolve {
        ready(vec![*self])
    }
}

impl sealed::Sealed for [SocketAddr] {}
impl ToSocketAddrs for [SocketAddr] {
    fn to_socket_addrs(&self) -> Resolve {
        ready(self.to_vec())
    }
}

impl<const N: usize> sealed::Sealed for [SocketAddr; N] {}
impl<const N: usize> ToSocketAddrs for [SocketAddr; N] {
    fn to_socket_addrs(&self) -> Resolve {
        ready(self.to_vec())
    }
}

impl sealed::Sealed for str {}
impl ToSocketAddrs for str {
    fn to_socket_addrs(&self) -> Resolve {
        match self.parse::<SocketAddr>() {
            Ok(a) => ready(vec![a]),
            Err(_) => Resolve::Lookup(self.to_string()),
        }
    }
}

impl sealed::Sealed for String {}
impl ToSocketAddrs for String {
    fn to_socket_addrs(&self) -> Resolve {
        self.as_str().to_socket_addrs()
    }
}

impl sealed::Sealed for (&str, u16) {}
impl ToSocketAddrs for (&str, u16) {
    fn to_socket_addrs(&self) -> Resolve {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => ready(vec![SocketAddr::new(ip, self.1)]),
            Err(_) => Resolve::Lookup(format!("{}:{}", self.0, self.1)),
        }
    }
}

impl sealed::Sealed for (String, u16) {}
impl ToSocketAddrs for (String, u16) {
    fn to_socket_addrs(&self) -> Resolve {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

impl<T: ToSocketAddrs + ?Sized> sealed::Sealed for &T {}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn to_socket_addrs(&self) -> Resolve {
        (**self).to_socket_addrs()
    }
}

/// A boxed future, for the streams that keep one between polls.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
