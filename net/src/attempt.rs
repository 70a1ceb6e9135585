//! One non-blocking attempt on a registered socket, for the `try_*` operations.

use std::io;
use std::os::fd::AsFd;

use epitome_runtime::io::{Async, Interest};

/// Runs `f` once (again after `Interrupted`): a `WouldBlock` clears the readiness
/// `interest` names, generation-checked. Never consults or spends the task's
/// cooperative budget, and asks the socket whatever the remembered readiness says.
pub(crate) fn try_op<T: AsFd, R>(
    io: &Async<T>,
    interest: Interest,
    mut f: impl FnMut(&T) -> io::Result<R>,
) -> io::Result<R> {
    loop {
        let res = if interest.is_readable() {
            io.try_read_with(&mut f)
        } else {
            io.try_write_with(&mut f)
        };
        match res {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            res => return res,
        }
    }
}
