//! `select!`, `join!` and `try_join!` (exported at the crate root), and the support
//! their expansions use.

mod join;
mod select;
pub(crate) mod support;
