//! Every echo contender, server model and herd variant, served in this process, against the load
//! client: large messages come back intact (partial reads and writes on both sides),
//! and the closed- and open-loop drivers complete round trips on every contender.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use epitome_benches::client::closed::ClosedLoop;
use epitome_benches::client::open::OpenLoop;
use epitome_benches::client::{self, latency_histogram};
use epitome_benches::echo::{self, Contender, ServeOptions};
use epitome_benches::herd::{self, HerdConfig, HerdStats};
use epitome_benches::sys;

/// Serves `contender` on a thread of this process (it runs until the test process
/// exits) and returns its address.
fn serve(contender: &'static Contender) -> SocketAddr {
    let reuseport = echo::wants_reuseport(contender.name);
    let listener = sys::listen(SocketAddr::from(([127, 0, 0, 1], 0)), reuseport).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || (contender.serve)(listener, &ServeOptions::default()));
    addr
}

/// A message far larger than any socket buffer, so the server meets full sockets
/// and echoes in pieces, and the client writes in pieces.
const BIG: usize = 4 << 20;

#[test]
fn large_messages_come_back_intact() {
    for contender in echo::CONTENDERS.iter().chain(echo::MODELS) {
        let addr = serve(contender);
        let msg = echo::message(BIG);
        let streams: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let writers: Vec<_> = streams
            .iter()
            .map(|s| {
                let mut s = s.try_clone().unwrap();
                let msg = msg.clone();
                std::thread::spawn(move || s.write_all(&msg).unwrap())
            })
            .collect();
        for mut stream in &streams {
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut back = vec![0; BIG];
            stream.read_exact(&mut back).unwrap();
            assert!(back == msg, "{}: the echo differs", contender.name);
        }
        for w in writers {
            w.join().unwrap();
        }
    }
}

#[test]
fn drivers_complete_round_trips_on_every_contender() {
    for contender in echo::CONTENDERS.iter().chain(echo::MODELS) {
        let addr = serve(contender);
        for size in echo::MESSAGE_SIZES {
            let streams = client::connect(addr, 8, size).unwrap();
            let mut driver = ClosedLoop::new(streams, size).unwrap();
            let mut latency = latency_histogram();
            let window = driver
                .run_for(Duration::from_millis(100), &mut latency)
                .unwrap();
            assert!(
                window.completed > 0,
                "{} {size}: nothing completed",
                contender.name
            );
            assert_eq!(latency.len(), window.completed);
        }
        let streams = client::connect(addr, 4, 1024).unwrap();
        let mut driver = OpenLoop::new(streams, 1024).unwrap();
        let mut latency = latency_histogram();
        let window = driver
            .run(
                2_000.0,
                Duration::from_millis(20),
                Duration::from_millis(100),
                &mut latency,
            )
            .unwrap();
        assert_eq!(window.incomplete, 0, "{}", contender.name);
        assert_eq!(window.completed, window.scheduled, "{}", contender.name);
        assert_eq!(latency.len(), window.scheduled, "{}", contender.name);
        // The connections are idle again and can take another run.
        driver
            .run(
                2_000.0,
                Duration::ZERO,
                Duration::from_millis(20),
                &mut latency,
            )
            .unwrap();
    }
}

#[test]
fn herd_variants_accept_every_connection() {
    for variant in herd::VARIANTS {
        let stats = Arc::new(HerdStats::new(4));
        let (bound, address) = mpsc::channel();
        let config = HerdConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 4,
            stats: Arc::clone(&stats),
            bound,
        };
        std::thread::spawn(move || (variant.run)(config));
        let addr = address.recv().unwrap();
        let (streams, latency) = client::herd::connect_one_by_one(addr, 200, 64).unwrap();
        assert_eq!(streams.len(), 200);
        assert_eq!(latency.len(), 200);
        let counts = stats.snapshot();
        let accepted: u64 = counts.iter().map(|c| c.accepted).sum();
        assert_eq!(accepted, 200, "{}", variant.name);
        let reports: u64 = counts.iter().map(|c| c.listener_reports).sum();
        let eagain: u64 = counts.iter().map(|c| c.accept_eagain).sum();
        // A runtime's reactor hides its listener reports: such a variant leaves both
        // counters at 0.
        if reports != 0 || eagain != 0 {
            assert_eq!(reports, accepted + eagain, "{}", variant.name);
        }
    }
}
