//! The `http_hello` example's HTTP/1.1 server logic, without its runtime:
//! `examples/support/http1.rs`, included here so that `hello-epitome` and
//! `hello-tokio` run exactly the example's parser and responder, each wrapped in the
//! example's connection loop with its own runtime's sockets.

#[path = "../../../examples/support/http1.rs"]
mod http1;

pub use http1::{READ_CHUNK, answer, serve};

#[cfg(test)]
mod same_body {
    #[test]
    fn the_example_answers_with_the_benchmark_body() {
        assert_eq!(super::http1::BODY, super::super::BODY.as_bytes());
    }
}
