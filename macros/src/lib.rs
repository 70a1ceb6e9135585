//! `#[epitome::main]` and `#[epitome::test]`: run an `async fn` on an epitome runtime.
//!
//! Use them through the `epitome` crate (feature `macros`), which re-exports them and
//! documents them with examples. The arguments are epitome's names, and tokio's
//! spellings are accepted too, so a tokio program's attributes compile after the crate
//! is renamed:
//!
//! | argument | values | tokio's spelling |
//! | --- | --- | --- |
//! | `flavor` | `"multi_reactor"`, `"current_thread"` | `"multi_thread"` |
//! | `reactors` | a positive integer (multi-reactor only) | `worker_threads` |
//! | `crate` | the path of the `epitome` crate, as a string | same |

mod entry;

use proc_macro::TokenStream;

/// Runs an `async fn main` on an epitome runtime: multi-reactor (one reactor per core)
/// unless `flavor = "current_thread"`. See `epitome::main` for the arguments.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Main, args.into(), item.into()).into()
}

/// Runs an `async fn` test on an epitome runtime: current-thread unless
/// `flavor = "multi_reactor"`. See `epitome::test` for the arguments.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(entry::Kind::Test, args.into(), item.into()).into()
}
