//! Every HTTP contender answers keep-alive `GET /` correctly, served in this process
//! and through the `http-server` command; and wrk's output, captured from real runs
//! (`tests/fixtures/wrk/`), is read right in every unit it prints.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use epitome_benches::http::client::Connection;
use epitome_benches::http::wrk::{SocketErrors, Wrk, WrkReport};
use epitome_benches::http::{self, HttpContender, Runtime, Stack};
use epitome_benches::sys;

/// Serves `contender` on a thread of this process (it runs until the test process
/// exits) and returns its address.
fn serve(contender: &'static HttpContender) -> SocketAddr {
    let listener = sys::listen(SocketAddr::from(([127, 0, 0, 1], 0)), false).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || (contender.serve)(listener));
    addr
}

/// Several requests one after another, then several pipelined, all on one
/// connection, each answered `200 Hello, World!` with the connection kept open.
fn check_keep_alive(name: &str, addr: SocketAddr) {
    let mut conn = Connection::open(addr).unwrap();
    for i in 0..5 {
        let response = conn.get().unwrap();
        assert_eq!(response.status, 200, "{name}, request {i}");
        assert_eq!(response.body, b"Hello, World!", "{name}, request {i}");
        response
            .check()
            .unwrap_or_else(|e| panic!("{name}, request {i}: {e}"));
    }
    for _ in 0..3 {
        conn.send().unwrap();
    }
    for i in 0..3 {
        let response = conn.receive().unwrap();
        response
            .check()
            .unwrap_or_else(|e| panic!("{name}, pipelined request {i}: {e}"));
    }
    conn.close();
}

#[test]
fn every_contender_answers_keep_alive_gets() {
    for contender in http::CONTENDERS {
        check_keep_alive(contender.name, serve(contender));
    }
}

#[test]
fn every_stack_runs_on_both_runtimes() {
    assert_eq!(http::CONTENDERS.len(), 6);
    for stack in Stack::ALL {
        for runtime in [Runtime::Epitome, Runtime::Tokio] {
            let c = http::contender(stack, runtime).unwrap();
            assert_eq!(http::find(c.name).map(|f| f.name), Some(c.name));
        }
    }
}

#[test]
fn warm_up_checks_every_answer() {
    let addr = serve(http::find("hello-tokio").unwrap());
    let answered = http::client::warm_up(addr, 8, Duration::from_millis(50)).unwrap();
    assert!(answered >= 8);
}

/// The `http-server` child; killed when dropped.
struct ServerChild(Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn http_server_command_serves_every_contender() {
    for contender in http::CONTENDERS {
        let mut child = ServerChild(
            Command::new(env!("CARGO_BIN_EXE_epitome-benches"))
                .args(["http-server", contender.name, "--addr", "127.0.0.1:0"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr: SocketAddr = line
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: printed `{line}`: {e}", contender.name));
        check_keep_alive(contender.name, addr);
    }
}

#[test]
fn http_server_command_rejects_unknown_contenders() {
    let out = Command::new(env!("CARGO_BIN_EXE_epitome-benches"))
        .args(["http-server", "no-such-server"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hello-epitome"));
}

fn fixture(name: &str) -> WrkReport {
    let path = format!("{}/tests/fixtures/wrk/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    WrkReport::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn us(v: f64) -> Duration {
    Duration::from_secs_f64(v * 1e-6)
}

/// Durations parsed from two decimals may be a nanosecond off.
fn close(a: Option<Duration>, b: Duration) -> bool {
    a.is_some_and(|a| a.abs_diff(b) <= Duration::from_nanos(1))
}

#[test]
fn wrk_output_in_microseconds() {
    let r = fixture("us_50conns.txt");
    assert_eq!(r.requests, 46_661);
    assert_eq!(r.duration, Duration::from_millis(1_010));
    assert_eq!(r.requests_per_sec, 46_146.70);
    let percents: Vec<f64> = r.latency.iter().map(|&(p, _)| p).collect();
    assert_eq!(percents, [50.0, 75.0, 90.0, 99.0]);
    assert!(close(r.percentile(50.0), us(418.0)));
    assert!(close(r.percentile(75.0), us(2_550.0)));
    assert!(close(r.percentile(99.0), us(10_780.0)));
    assert_eq!(r.percentile(99.9), None);
    assert_eq!(r.socket_errors, SocketErrors::default());
    assert_eq!(r.non_2xx, 0);
}

#[test]
fn wrk_output_in_milliseconds() {
    let r = fixture("ms_1000conns.txt");
    assert_eq!(r.requests, 29_131);
    assert_eq!(r.duration, Duration::from_millis(1_050));
    assert_eq!(r.requests_per_sec, 27_751.71);
    assert!(close(r.percentile(50.0), us(26_060.0)));
    assert!(close(r.percentile(99.0), us(65_290.0)));
}

#[test]
fn wrk_output_in_seconds() {
    // A server that takes 1.2 s per response: wrk prints seconds, with a trailing
    // space, and a fractional Requests/sec.
    let r = fixture("s_slow_server.txt");
    assert_eq!(r.requests, 12);
    assert_eq!(r.duration, Duration::from_millis(4_060));
    assert_eq!(r.requests_per_sec, 2.95);
    assert!(close(r.percentile(50.0), Duration::from_millis(1_260)));
    assert!(close(r.percentile(99.0), Duration::from_millis(1_300)));
}

#[test]
fn wrk_output_with_errors() {
    let r = fixture("non2xx_404.txt");
    assert_eq!(r.requests, 47_016);
    assert_eq!(r.non_2xx, 47_016);
    assert!(close(r.percentile(50.0), us(84.0)));
    assert!(close(r.percentile(75.0), us(1_810.0)));
    // The server was killed mid-run.
    let r = fixture("socket_errors.txt");
    assert_eq!(r.requests, 32_186);
    assert_eq!(
        r.socket_errors,
        SocketErrors {
            connect: 0,
            read: 20,
            write: 51_063,
            timeout: 0
        }
    );
    assert_eq!(r.socket_errors.total(), 51_083);
}

#[test]
fn wrk_output_without_a_report_is_refused() {
    assert!(WrkReport::parse("").is_err());
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/wrk/us_50conns.txt",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // Without --latency there is no distribution.
    let without: String = text
        .lines()
        .filter(|l| !l.contains('%') || l.contains("Stdev"))
        .filter(|l| !l.contains("Latency Distribution"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(WrkReport::parse(&without).is_err());
}

/// A real wrk run against a contender, when wrk is installed (the report installs
/// it; this test does not).
#[test]
fn wrk_drives_a_contender() {
    let Some(wrk) = Wrk::find() else {
        eprintln!("wrk is not on PATH: wrk_drives_a_contender checks nothing");
        return;
    };
    assert!(wrk.version.starts_with("wrk "), "{}", wrk.version);
    let addr = serve(http::find("hyper-tokio").unwrap());
    let report = wrk.run(&format!("http://{addr}/"), 4, 1, None).unwrap();
    assert!(report.requests > 0);
    assert_eq!(report.non_2xx, 0);
    assert!(report.percentile(99.0).is_some());
}
