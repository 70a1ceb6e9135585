//! `join!` and `try_join!`: run several futures concurrently on the current task.
//!
//! Written here (beside `select!`, sharing its way of naming branches) rather than
//! taken from futures-util, whose versions are proc macros (a second syn to build) and
//! have neither tokio's `biased;` nor its rotating start.

/// Runs several futures concurrently on the current task and waits for all of them,
/// returning their outputs as a tuple (in the order written).
///
/// The futures run on the task that awaits `join!`, not on tasks of their own (use
/// [`spawn`](crate::spawn) for parallelism across workers). Each wakeup polls every
/// unfinished future, starting one further along each time so none is always polled
/// last; after `biased;` they are polled in the order written. As tokio's `join!`. At
/// most 64 futures.
///
/// ```
/// use std::time::Duration;
///
/// # let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let (a, b, c) = epitome::join!(
///     async { 1 },
///     async {
///         epitome::time::sleep(Duration::from_millis(1)).await;
///         "two"
///     },
///     async { 3.0 },
/// );
/// assert_eq!((a, b, c), (1, "two", 3.0));
/// # });
/// ```
#[macro_export]
macro_rules! join {
    () => { async {}.await };
    (biased; $($futures:expr),+ $(,)?) => {
        $crate::__join_zip!(@start join true $($futures,)+)
    };
    ($($futures:expr),+ $(,)?) => {
        $crate::__join_zip!(@start join false $($futures,)+)
    };
}

/// Runs several futures returning `Result<_, E>` concurrently on the current task;
/// returns `Ok` with a tuple of their values when all succeed, or the first error as
/// soon as one fails (the other futures are dropped then).
///
/// The futures must share the error type `E`. Polling order as [`join!`], and
/// `biased;` too. As tokio's `try_join!`.
///
/// ```
/// use std::io;
///
/// async fn parse(s: &str) -> io::Result<u32> {
///     s.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("not a number: {s}")))
/// }
///
/// # let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let (a, b) = epitome::try_join!(parse("1"), parse("2")).unwrap();
/// assert_eq!(a + b, 3);
///
/// let err = epitome::try_join!(parse("1"), parse("two")).unwrap_err();
/// assert_eq!(err.kind(), io::ErrorKind::InvalidData);
/// # });
/// ```
#[macro_export]
macro_rules! try_join {
    () => { async { ::core::result::Result::<(), ()>::Ok(()) }.await };
    (biased; $($futures:expr),+ $(,)?) => {
        $crate::__join_zip!(@start try_join true $($futures,)+)
    };
    ($($futures:expr),+ $(,)?) => {
        $crate::__join_zip!(@start try_join false $($futures,)+)
    };
}

/// Gives each future of `join!` / `try_join!` a name and an index. Not API.
#[doc(hidden)]
#[macro_export]
macro_rules! __join_zip {
    (@start $kind:ident $biased:tt $($futures:tt)*) => {
        $crate::__join_zip!(@$kind $biased [] [
            (_0 0) (_1 1) (_2 2) (_3 3) (_4 4) (_5 5) (_6 6) (_7 7)
            (_8 8) (_9 9) (_10 10) (_11 11) (_12 12) (_13 13) (_14 14) (_15 15)
            (_16 16) (_17 17) (_18 18) (_19 19) (_20 20) (_21 21) (_22 22) (_23 23)
            (_24 24) (_25 25) (_26 26) (_27 27) (_28 28) (_29 29) (_30 30) (_31 31)
            (_32 32) (_33 33) (_34 34) (_35 35) (_36 36) (_37 37) (_38 38) (_39 39)
            (_40 40) (_41 41) (_42 42) (_43 43) (_44 44) (_45 45) (_46 46) (_47 47)
            (_48 48) (_49 49) (_50 50) (_51 51) (_52 52) (_53 53) (_54 54) (_55 55)
            (_56 56) (_57 57) (_58 58) (_59 59) (_60 60) (_61 61) (_62 62) (_63 63)
        ] $($futures)*)
    };
    (@$kind:ident $biased:tt [$($done:tt)*] $names:tt) => {
        $crate::__join_expand!(@$kind $biased [$($done)*])
    };
    (@$kind:ident $biased:tt $done:tt [] $($rest:tt)+) => {
        ::core::compile_error!("join! and try_join! take at most 64 futures")
    };
    (@$kind:ident $biased:tt [$($done:tt)*] [$name:tt $($names:tt)*] $f:expr, $($rest:tt)*) => {
        $crate::__join_zip!(@$kind $biased [$($done)* [$name ($f)]] [$($names)*] $($rest)*)
    };
}

/// The expansion of `join!` / `try_join!`. Not API.
#[doc(hidden)]
#[macro_export]
macro_rules! __join_expand {
    (@join $biased:tt [$( [($name:ident $index:tt) ($($f:tt)*)] )+]) => {{
        $(
            let $name = $crate::__private::MaybeDone::new(
                $crate::__private::IntoFuture::into_future($($f)*),
            );
        )+
        $( let mut $name = $crate::__private::pin!($name); )+
        const COUNT: u32 = [$($index),+].len() as u32;
        let mut next_start: u32 = 0;
        $crate::__private::poll_fn(move |cx| {
            let start = if $biased {
                0
            } else {
                let start = next_start;
                next_start = if start + 1 == COUNT { 0 } else { start + 1 };
                start
            };
            let mut is_pending = false;
            for i in 0..COUNT {
                // No `%`: with one future, clippy denies `x % 1` in the caller's crate.
                let index = if start + i >= COUNT { start + i - COUNT } else { start + i };
                match index {
                    $(
                        $index => {
                            if ::core::future::Future::poll($name.as_mut(), cx).is_pending() {
                                is_pending = true;
                            }
                        }
                    )+
                    _ => ::core::unreachable!("join!: future index out of range"),
                }
            }
            if is_pending {
                return $crate::__private::PollResult::Pending;
            }
            $crate::__private::PollResult::Ready(($(
                match $name.as_mut().take_output() {
                    ::core::option::Option::Some(out) => out,
                    ::core::option::Option::None => {
                        ::core::unreachable!("join!: a finished future has no output")
                    }
                },
            )+))
        })
        .await
    }};
    (@try_join $biased:tt [$( [($name:ident $index:tt) ($($f:tt)*)] )+]) => {{
        $(
            let $name = $crate::__private::MaybeDone::new(
                $crate::__private::IntoFuture::into_future($($f)*),
            );
        )+
        $( let mut $name = $crate::__private::pin!($name); )+
        const COUNT: u32 = [$($index),+].len() as u32;
        let mut next_start: u32 = 0;
        $crate::__private::poll_fn(move |cx| {
            let start = if $biased {
                0
            } else {
                let start = next_start;
                next_start = if start + 1 == COUNT { 0 } else { start + 1 };
                start
            };
            let mut is_pending = false;
            for i in 0..COUNT {
                // No `%`: with one future, clippy denies `x % 1` in the caller's crate.
                let index = if start + i >= COUNT { start + i - COUNT } else { start + i };
                match index {
                    $(
                        $index => {
                            if ::core::future::Future::poll($name.as_mut(), cx).is_pending() {
                                is_pending = true;
                            } else if let ::core::option::Option::Some(e) =
                                $crate::__private::take_err($name.as_mut())
                            {
                                return $crate::__private::PollResult::Ready(
                                    ::core::result::Result::Err(e),
                                );
                            }
                        }
                    )+
                    _ => ::core::unreachable!("try_join!: future index out of range"),
                }
            }
            if is_pending {
                return $crate::__private::PollResult::Pending;
            }
            $crate::__private::PollResult::Ready(::core::result::Result::Ok(($(
                match $name.as_mut().take_output() {
                    ::core::option::Option::Some(::core::result::Result::Ok(out)) => out,
                    _ => ::core::unreachable!("try_join!: a finished future has no value"),
                },
            )+)))
        })
        .await
    }};
}
