//! epitome's benchmarks: comparison servers, the load client and the report.

pub mod client;
pub mod echo;
pub mod herd;
pub mod http;
pub mod machine;
pub mod sys;
