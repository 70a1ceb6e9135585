//! `epitome-benches`: one command per benchmark.
//!
//! ```text
//! cargo run --release -p epitome-benches -- <command> [options]
//! ```
//!
//! Each command lives in its own module, which provides `main(args) -> ExitCode`
//! (given the arguments after the command name) and a `USAGE` line. Adding a command
//! is one module, one entry in [`COMMANDS`] and one arm in [`main`].

mod eventpoll_bench;
mod reactor_bench;
mod report;
mod sched_bench;
mod server_cmd;
mod soak;

use std::process::ExitCode;

/// Every command: its usage line and what it does.
const COMMANDS: &[(&str, &str)] = &[
    (
        eventpoll_bench::USAGE,
        "EventPoll against raw kernel epoll: wait and ctl costs",
    ),
    (
        reactor_bench::USAGE,
        "reactor readiness path against tokio's AsyncFd; timer lateness",
    ),
    (
        report::instructions::USAGE,
        "user-space instructions per request of every echo contender (callgrind)",
    ),
    (
        report::ctxsw::PEER_USAGE,
        "the report's context-switch peer: echoes stdin to stdout byte by byte",
    ),
    (
        report::USAGE,
        "every echo and HTTP contender side by side; writes target/epitome-report/",
    ),
    (
        sched_bench::USAGE,
        "scheduler micro-benchmarks (tokio's shapes): epitome against tokio",
    ),
    (
        server_cmd::USAGE,
        "run one echo contender (prints its address)",
    ),
    (
        server_cmd::HERD_USAGE,
        "run one thundering-herd variant (prints its address)",
    ),
    (
        epitome_benches::herd::measure::USAGE,
        "herd variants, connections one at a time and in bursts: wakeups, fairness",
    ),
    (
        server_cmd::HTTP_USAGE,
        "run one HTTP contender (prints its address)",
    ),
    (
        soak::USAGE,
        "echo server under connection churn: every byte, fds and RSS checked",
    ),
];

fn usage() -> String {
    let mut text = String::from("usage: epitome-benches <command> [options]\n\ncommands:\n");
    for (line, about) in COMMANDS {
        text.push_str(&format!("  {line:<58} {about}\n"));
    }
    text
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
    match command.as_str() {
        "eventpoll" => eventpoll_bench::main(rest),
        "reactor" => reactor_bench::main(rest),
        "instructions" => report::instructions::main(rest),
        "report" => report::main(rest),
        "ctxsw-peer" => report::ctxsw::peer_main(rest),
        "sched" => sched_bench::main(rest),
        "server" => server_cmd::main(rest),
        "herd-server" => server_cmd::herd_main(rest),
        "herd" => epitome_benches::herd::measure::main(rest),
        "http-server" => server_cmd::http_main(rest),
        "soak" => soak::main(rest),
        "help" | "-h" | "--help" => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("unknown command `{other}`\n");
            eprint!("{}", usage());
            ExitCode::from(2)
        }
    }
}
