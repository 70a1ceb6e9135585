//! loom models of epitome's wakeup paths. The models live in `tests/`; they run with
//! `RUSTFLAGS="--cfg epitome_loom" cargo test -p epitome-loom-tests --release`.
