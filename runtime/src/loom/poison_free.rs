//! Locks that ignore poisoning, over std's or loom's primitives.
//!
//! A panic while one of the runtime's locks is held would be a bug in the runtime, and
//! each structure is consistent between the statements that could panic, so a poisoned
//! lock carries no information: every lock here just keeps going. One wrapper does that
//! for every lock, instead of an `unwrap_or_else` at each `lock()` and `wait()`.

/// Defines `Mutex`, `MutexGuard` and `Condvar` over the module `$inner` (std's or
/// loom's `sync`), with the same methods minus the `LockResult`.
macro_rules! poison_free {
    ($($inner:ident)::+) => {
        pub(crate) use $($inner)::+::MutexGuard;

        /// A mutex whose `lock` ignores poisoning (see the module docs).
        #[derive(Debug, Default)]
        pub(crate) struct Mutex<T>($($inner)::+::Mutex<T>);

        impl<T> Mutex<T> {
            pub(crate) fn new(value: T) -> Mutex<T> {
                Mutex($($inner)::+::Mutex::new(value))
            }

            #[inline]
            pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
                self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
            }
        }

        /// A condition variable whose waits ignore poisoning.
        #[derive(Debug, Default)]
        pub(crate) struct Condvar($($inner)::+::Condvar);

        impl Condvar {
            pub(crate) fn new() -> Condvar {
                Condvar($($inner)::+::Condvar::new())
            }

            pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
                self.0
                    .wait(guard)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            }

            pub(crate) fn wait_timeout<'a, T>(
                &self,
                guard: MutexGuard<'a, T>,
                timeout: std::time::Duration,
            ) -> (MutexGuard<'a, T>, bool) {
                let (guard, res) = self
                    .0
                    .wait_timeout(guard, timeout)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                (guard, res.timed_out())
            }

            pub(crate) fn notify_one(&self) {
                self.0.notify_one();
            }

            pub(crate) fn notify_all(&self) {
                self.0.notify_all();
            }
        }
    };
}

pub(crate) use poison_free;
