//! `select!`: wait on several futures, run the handler of the first to finish.
//!
//! Written here rather than re-exported: futures-util's `select!` has other syntax
//! (`complete =>`, `default =>`), needs `FusedFuture` and `Unpin` futures, and has no
//! `, if` preconditions, so a tokio program's `select!` would not compile with it. This
//! one takes tokio's syntax and follows tokio's documented semantics; it is plain
//! `macro_rules!` (no proc-macro crate to build).
//!
//! How it expands: `select!` numbers the branches (each gets an identifier and an index
//! from a fixed list of 64), then `__select_expand!` evaluates the preconditions and the
//! futures, polls them in an inner block (so they are dropped before any handler runs),
//! and matches the winner's output against its pattern outside that block, where
//! handlers can `break`, `continue`, `return` and `?` as in the surrounding code.

/// Waits on several branches at once and runs the handler of the first branch whose
/// future completes with a value matching its pattern; the other futures are dropped.
///
/// ```text
/// select! {
///     biased;                                          // optional: poll in order
///     <pattern> = <future> (, if <precondition>)? => <handler>,
///     ...
///     else => <expression>                             // optional
/// }
/// ```
///
/// The same syntax and semantics as tokio's `select!`:
///
/// 1. Every `<precondition>` is evaluated; a branch whose precondition is false is
///    disabled.
/// 2. Every `<future>` is evaluated, in order, disabled branches' too (into
///    `IntoFuture::into_future`); a disabled branch's future is never polled.
/// 3. The enabled futures are polled, on the task running `select!`, starting from a
///    branch chosen at random each time (so no branch starves), or in the order written
///    after `biased;`.
/// 4. When a future completes, its branch is disabled and its output matched against
///    `<pattern>`. If it matches, every future is dropped and `<handler>` runs with the
///    pattern's bindings: `select!` evaluates to the handler's value. If not, polling
///    goes on with the other branches.
/// 5. When every branch is disabled, `select!` evaluates to the `else` expression; with
///    no `else` it panics.
///
/// The futures need not be `Unpin` or fused: they are pinned inside `select!`. To keep
/// a future across loop iterations, pin it outside and pass `&mut fut`. At most 64
/// branches.
///
/// # Cancellation
///
/// The futures that lose are dropped: use futures that are cancel-safe (losing them
/// loses no data), or keep one across iterations with `&mut`.
///
/// # Examples
///
/// A timeout, and a loop that drains a channel until a shutdown signal:
///
/// ```
/// use std::time::Duration;
/// use epitome::sync::{mpsc, oneshot};
///
/// # let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let slow = epitome::time::sleep(Duration::from_secs(60));
/// let answer = epitome::select! {
///     _ = slow => "slept",
///     _ = epitome::time::sleep(Duration::from_millis(1)) => "timed out",
/// };
/// assert_eq!(answer, "timed out");
///
/// let (tx, rx) = mpsc::unbounded_channel();
/// let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
/// for n in 0..3 {
///     tx.try_send(n).unwrap();
/// }
/// drop(stop_tx);
/// let mut got = Vec::new();
/// loop {
///     epitome::select! {
///         biased; // take every queued message before looking at the stop signal
///         Ok(n) = rx.recv() => got.push(n),
///         _ = &mut stop_rx => break,
///     }
/// }
/// assert_eq!(got, [0, 1, 2]);
/// # });
/// ```
///
/// A precondition and `else`:
///
/// ```
/// # let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let ready = false;
/// let v = epitome::select! {
///     v = async { 1 }, if ready => v,
///     Some(v) = async { None::<i32> } => v,
///     else => 0,
/// };
/// assert_eq!(v, 0); // the first branch is disabled, the second did not match
/// # });
/// ```
#[macro_export]
macro_rules! select {
    () => {
        ::core::compile_error!("select! needs at least one branch: `<pattern> = <future> => <handler>`")
    };
    (biased;) => {
        ::core::compile_error!("select! needs at least one branch: `<pattern> = <future> => <handler>`")
    };
    (biased; $($branches:tt)*) => {
        $crate::__select_parse!(@start true $($branches)*)
    };
    ($($branches:tt)*) => {
        $crate::__select_parse!(@start false $($branches)*)
    };
}

/// Reads `select!`'s branches one at a time. Not API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // The state: (biased) [branches read] [names and indices not yet given out].
    (@start $biased:tt $($branches:tt)*) => {
        $crate::__select_parse!(@{ $biased [] [
            (_0 0) (_1 1) (_2 2) (_3 3) (_4 4) (_5 5) (_6 6) (_7 7)
            (_8 8) (_9 9) (_10 10) (_11 11) (_12 12) (_13 13) (_14 14) (_15 15)
            (_16 16) (_17 17) (_18 18) (_19 19) (_20 20) (_21 21) (_22 22) (_23 23)
            (_24 24) (_25 25) (_26 26) (_27 27) (_28 28) (_29 29) (_30 30) (_31 31)
            (_32 32) (_33 33) (_34 34) (_35 35) (_36 36) (_37 37) (_38 38) (_39 39)
            (_40 40) (_41 41) (_42 42) (_43 43) (_44 44) (_45 45) (_46 46) (_47 47)
            (_48 48) (_49 49) (_50 50) (_51 51) (_52 52) (_53 53) (_54 54) (_55 55)
            (_56 56) (_57 57) (_58 58) (_59 59) (_60 60) (_61 61) (_62 62) (_63 63)
        ] } $($branches)*)
    };
    (@{ $biased:tt [$($done:tt)*] $names:tt } else => $else:expr $(,)?) => {
        $crate::__select_expand!($biased [$($done)*] ($else))
    };
    (@{ $biased:tt [$($done:tt)*] $names:tt }) => {
        $crate::__select_expand!($biased [$($done)*] (
            ::core::panic!("select!: all branches are disabled and there is no else branch")
        ))
    };
    (@{ $biased:tt $done:tt [] } $($rest:tt)+) => {
        ::core::compile_error!("select! takes at most 64 branches")
    };
    (@{ $($state:tt)* } $($rest:tt)+) => {
        $crate::__select_pattern!(@{ $($state)* } [] $($rest)+)
    };
}

/// Collects a branch's pattern: the tokens before its `=`, a few at a time (few
/// steps, so many branches stay within the recursion limit). Not API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_pattern {
    (@$state:tt [$($p:tt)*] = $($rest:tt)*) => {
        $crate::__select_branch!(@$state ($($p)*) $($rest)*)
    };
    (@$state:tt [$($p:tt)*] $a:tt = $($rest:tt)*) => {
        $crate::__select_branch!(@$state ($($p)* $a) $($rest)*)
    };
    (@$state:tt [$($p:tt)*] $a:tt $b:tt = $($rest:tt)*) => {
        $crate::__select_branch!(@$state ($($p)* $a $b) $($rest)*)
    };
    (@$state:tt [$($p:tt)*] $a:tt $b:tt $c:tt = $($rest:tt)*) => {
        $crate::__select_branch!(@$state ($($p)* $a $b $c) $($rest)*)
    };
    (@$state:tt [$($p:tt)*] $a:tt $b:tt $c:tt $d:tt $($rest:tt)+) => {
        $crate::__select_pattern!(@$state [$($p)* $a $b $c $d] $($rest)+)
    };
    (@$state:tt [$($p:tt)*] $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "select!: expected `<pattern> = <future> => <handler>`, found `",
            ::core::stringify!($($p)* $($rest)*),
            "`"
        ))
    };
}

/// Reads a branch's future, precondition and handler, and gives the branch its name
/// and index. Not API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_branch {
    (@{ $biased:tt [$($done:tt)*] [$name:tt $($names:tt)*] } $p:tt
        $f:expr, if $c:expr => $h:block, $($rest:tt)*) => {
        $crate::__select_parse!(@{ $biased [$($done)* [$name $p ($f) ($c) ($h)]] [$($names)*] } $($rest)*)
    };
    (@{ $biased:tt [$($done:tt)*] [$name:tt $($names:tt)*] } $p:tt
        $f:expr, if $c:expr => $h:block $($rest:tt)*) => {
        $crate::__select_parse!(@{ $biased [$($done)* [$name $p ($f) ($c) ($h)]] [$($names)*] } $($rest)*)
    };
    (@{ $biased:tt [$($done:tt)*] [$name:tt $($names:tt)*] } $p:tt
        $f:expr => $h:block, $($rest:tt)*) => {
        $crate::__select_parse!(@{ $biased [$($done)* [$name $p ($f) (true) ($h)]] [$($names)*] } $($rest)*)
    };
    (@{ $biased:tt [$($done:tt)*] [$name:tt $($names:tt)*] } $p:tt
        $f:expr => $h:block $($rest:tt)*) => {
        $crate::__select_parse!(@{ $biased [$($done)* [$name $p ($f) (true) ($h)]] [$($names)*] } $($rest)*)
    };
    (@{ $biased:tt [$($done:tt)*] [$name:tt $($names:tt)*] } $p:tt
        $f:expr, if $c:expr => $h:expr $(,)?) => {
        $crate::__select_parse!(@{ $biased [$($done)* [$name $p ($f) ($c) ($h)]] [$($names)*] })
    };
    (@{ $biased:tt [$($done:tt)*] [$name:tt $($names:tt)*] } $p:tt
        $f:expr, if $c:expr => $h:expr, $($rest:tt)+) => {
        $crate::__select_parse!(@{ $biased [$($done)* [$name $p ($f) ($c) ($h)]] [$($names)*] } $($rest)+)
    };
    (@{ $biased:tt [$($done:tt)*] [$name:tt $($names:tt)*] } $p:tt
        $f:expr => $h:expr $(,)?) => {
        $crate::__select_parse!(@{ $biased [$($done)* [$name $p ($f) (true) ($h)]] [$($names)*] })
    };
    (@{ $biased:tt [$($done:tt)*] [$name:tt $($names:tt)*] } $p:tt
        $f:expr => $h:expr, $($rest:tt)+) => {
        $crate::__select_parse!(@{ $biased [$($done)* [$name $p ($f) (true) ($h)]] [$($names)*] } $($rest)+)
    };
    (@$state:tt ($($p:tt)*) $($rest:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "select!: expected `<future> => <handler>` or `<future>, if <condition> => <handler>` after `",
            ::core::stringify!($($p)*),
            " =`"
        ))
    };
}

/// The expansion of `select!` once its branches are read. Not API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_expand {
    ($biased:tt [$( [($name:ident $index:tt) ($($p:tt)*) ($($f:tt)*) ($($c:tt)*) ($($h:tt)*)] )+]
        ($($else:tt)*)) => {{
        mod __epitome_select {
            // One variant per branch, holding that branch's output.
            pub(super) enum Out<$($name,)+> {
                $($name($name),)+
                Disabled,
            }
        }
        const BRANCHES: u32 = [$($index),+].len() as u32;
        let output = {
            let mut disabled: u64 = 0;
            $(
                if !($($c)*) {
                    disabled |= 1 << $index;
                }
            )+
            $( let $name = $crate::__private::IntoFuture::into_future($($f)*); )+
            $( let mut $name = $crate::__private::pin!($name); )+
            $crate::__private::poll_fn(|cx| {
                let mut is_pending = false;
                let start = if $biased { 0 } else { $crate::__private::random_below(BRANCHES) };
                for i in 0..BRANCHES {
                    // `start + i` wrapped into the branches (no `%`: with one branch,
                    // clippy denies `x % 1` in the caller's crate).
                    let branch = if start + i >= BRANCHES { start + i - BRANCHES } else { start + i };
                    match branch {
                        $(
                            $index => {
                                let mask: u64 = 1 << $index;
                                if disabled & mask != 0 {
                                    continue;
                                }
                                let out = match ::core::future::Future::poll($name.as_mut(), cx) {
                                    $crate::__private::PollResult::Ready(out) => out,
                                    $crate::__private::PollResult::Pending => {
                                        is_pending = true;
                                        continue;
                                    }
                                };
                                disabled |= mask;
                                match &out {
                                    #[allow(unused_variables)]
                                    $crate::__select_clean_pattern!(@[] [] $($p)*) => {}
                                    #[allow(unreachable_patterns)]
                                    _ => continue,
                                }
                                return $crate::__private::PollResult::Ready(
                                    __epitome_select::Out::$name(out),
                                );
                            }
                        )+
                        _ => ::core::unreachable!("select!: branch index out of range"),
                    }
                }
                if is_pending {
                    $crate::__private::PollResult::Pending
                } else {
                    $crate::__private::PollResult::Ready(__epitome_select::Out::Disabled)
                }
            })
            .await
        };
        match output {
            $( __epitome_select::Out::$name($($p)*) => { $($h)* } )+
            __epitome_select::Out::Disabled => { $($else)* }
            #[allow(unreachable_patterns)]
            _ => ::core::unreachable!("select!: the output matched its pattern once but not twice"),
        }
    }};
}

/// A pattern with `mut` and `ref` taken out, to test whether a branch's output (behind
/// a reference) matches it without moving it. Works through the pattern's groups with
/// an explicit stack of the groups it is inside. Not API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_clean_pattern {
    (@[$($acc:tt)*] []) => { $($acc)* };
    (@[$($acc:tt)*] [(paren [$($outer:tt)*] [$($after:tt)*]) $($frames:tt)*]) => {
        $crate::__select_clean_pattern!(@[$($outer)* ($($acc)*)] [$($frames)*] $($after)*)
    };
    (@[$($acc:tt)*] [(bracket [$($outer:tt)*] [$($after:tt)*]) $($frames:tt)*]) => {
        $crate::__select_clean_pattern!(@[$($outer)* [$($acc)*]] [$($frames)*] $($after)*)
    };
    (@[$($acc:tt)*] [(brace [$($outer:tt)*] [$($after:tt)*]) $($frames:tt)*]) => {
        $crate::__select_clean_pattern!(@[$($outer)* {$($acc)*}] [$($frames)*] $($after)*)
    };
    (@$acc:tt $frames:tt mut $($rest:tt)*) => {
        $crate::__select_clean_pattern!(@$acc $frames $($rest)*)
    };
    (@$acc:tt $frames:tt ref $($rest:tt)*) => {
        $crate::__select_clean_pattern!(@$acc $frames $($rest)*)
    };
    (@[$($acc:tt)*] [$($frames:tt)*] ($($inner:tt)*) $($rest:tt)*) => {
        $crate::__select_clean_pattern!(@[] [(paren [$($acc)*] [$($rest)*]) $($frames)*] $($inner)*)
    };
    (@[$($acc:tt)*] [$($frames:tt)*] [$($inner:tt)*] $($rest:tt)*) => {
        $crate::__select_clean_pattern!(@[] [(bracket [$($acc)*] [$($rest)*]) $($frames)*] $($inner)*)
    };
    (@[$($acc:tt)*] [$($frames:tt)*] {$($inner:tt)*} $($rest:tt)*) => {
        $crate::__select_clean_pattern!(@[] [(brace [$($acc)*] [$($rest)*]) $($frames)*] $($inner)*)
    };
    (@[$($acc:tt)*] $frames:tt $t:tt $($rest:tt)*) => {
        $crate::__select_clean_pattern!(@[$($acc)* $t] $frames $($rest)*)
    };
}
