//! The `worker_pool` example's server (the single reactor + worker pool model), run
//! in-process: every request is answered right, bad input gets an error line, the
//! computations run on the blocking pool (not the reactor thread), a slow request does
//! not hold up another connection's quick one, and a graceful shutdown completes.

#[path = "../examples/support/worker_pool_server.rs"]
mod worker_pool_server;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use epitome::runtime::Builder;

const HANG: Duration = Duration::from_secs(30);

fn ask(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, line: &str) -> String {
    stream.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    answer
}

#[test]
fn answers_on_the_pool_and_shuts_down() {
    assert_eq!(worker_pool_server::count_primes(0), 0);
    assert_eq!(worker_pool_server::count_primes(2), 1);
    assert_eq!(worker_pool_server::count_primes(100), 25);

    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (blocking_tx, blocking_rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = Builder::new_current_thread()
            .max_blocking_threads(2)
            .build()
            .unwrap();
        let metrics = rt.metrics();
        let res = rt.block_on(async move {
            let listener = epitome::net::TcpListener::bind("127.0.0.1:0").await?;
            addr_tx.send(listener.local_addr()?).unwrap();
            let signal = async move {
                while stop_rx.try_recv().is_err() {
                    epitome::time::sleep(Duration::from_millis(5)).await;
                }
            };
            worker_pool_server::run(listener, signal).await
        });
        blocking_tx.send(metrics.num_blocking_threads()).unwrap();
        res
    });
    let addr = addr_rx.recv_timeout(HANG).unwrap();

    let mut a = TcpStream::connect(addr).unwrap();
    a.set_read_timeout(Some(HANG)).unwrap();
    let mut a_reader = BufReader::new(a.try_clone().unwrap());
    assert_eq!(ask(&mut a, &mut a_reader, "100\n"), "100: 25\n");
    assert_eq!(ask(&mut a, &mut a_reader, "1000000\n"), "1000000: 78498\n");
    assert_eq!(
        ask(&mut a, &mut a_reader, "ten\n"),
        "error: `ten` is not a number\n"
    );
    assert_eq!(
        ask(&mut a, &mut a_reader, "99999999999\n"),
        "error: at most 50000000\n"
    );
    // Two lines in one write, and a line in two writes.
    a.write_all(b"10\n20\n3").unwrap();
    a.write_all(b"0\n").unwrap();
    for expected in ["10: 4\n", "20: 8\n", "30: 10\n"] {
        let mut answer = String::new();
        a_reader.read_line(&mut answer).unwrap();
        assert_eq!(answer, expected);
    }

    // A slow request on one connection, a quick one on another: the quick answer comes
    // while the slow one is computed (the reactor is not the one computing).
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(HANG)).unwrap();
    slow.write_all(b"50000000\n").unwrap();
    assert_eq!(ask(&mut a, &mut a_reader, "7\n"), "7: 4\n");
    let mut slow_reader = BufReader::new(slow.try_clone().unwrap());
    let mut answer = String::new();
    slow_reader.read_line(&mut answer).unwrap();
    assert_eq!(answer, "50000000: 3001134\n");

    drop((a, a_reader, slow, slow_reader));
    stop_tx.send(()).unwrap();
    server.join().unwrap().unwrap();
    let blocking = blocking_rx.recv().unwrap();
    assert!(blocking >= 1, "the work ran on the blocking pool");
}
