//! epitome's benchmarks: comparison servers, the load client and the report.

pub mod machine;
