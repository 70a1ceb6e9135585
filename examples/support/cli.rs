//! Command-line flags for the examples, parsed by hand (`--name value`), and the runtime
//! their `--reactors` flag asks for.

use std::fmt;
use std::io;
use std::str::FromStr;

use epitome::runtime::{Builder, Runtime};

/// The `--name value` pairs of the command line.
pub struct Flags {
    usage: &'static str,
    pairs: Vec<(String, String)>,
}

impl Flags {
    /// Reads the command line. `--help` prints `usage` and exits; a flag not in
    /// `known`, or one without a value, prints the usage and exits with status 2.
    pub fn parse(usage: &'static str, known: &[&str]) -> Flags {
        let mut pairs = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(name) = args.next() {
            if name == "--help" || name == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            if !known.contains(&name.as_str()) {
                fail(usage, format_args!("unknown argument `{name}`"));
            }
            match args.next() {
                Some(value) => pairs.push((name, value)),
                None => fail(usage, format_args!("`{name}` needs a value")),
            }
        }
        Flags { usage, pairs }
    }

    /// The value of `--name` (the last one given), or `default`.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        match self.pairs.iter().rev().find(|(n, _)| n == name) {
            None => default,
            Some((_, v)) => match v.parse() {
                Ok(v) => v,
                Err(e) => fail(self.usage, format_args!("`{name} {v}`: {e}")),
            },
        }
    }
}

fn fail(usage: &str, msg: fmt::Arguments<'_>) -> ! {
    eprintln!("error: {msg}\n\n{usage}");
    std::process::exit(2);
}

/// `--reactors 0` (the default): a current-thread runtime, driven by the main thread.
/// `--reactors N`: a multi-reactor runtime with N workers, each on its own thread with
/// its own reactor.
pub fn runtime(reactors: usize) -> io::Result<Runtime> {
    if reactors == 0 {
        Builder::new_current_thread().build()
    } else {
        Builder::new_multi_reactor().reactors(reactors).build()
    }
}

/// What [`runtime`] built, for the examples' first line of output.
pub fn describe(reactors: usize) -> String {
    match reactors {
        0 => "current-thread runtime".to_string(),
        1 => "multi-reactor runtime, 1 worker".to_string(),
        n => format!("multi-reactor runtime, {n} workers"),
    }
}
