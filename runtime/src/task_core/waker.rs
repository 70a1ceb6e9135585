//! The waker vtable: a waker is a counted reference to the task header.
//!
//! Cloning takes a reference, dropping gives one back, waking schedules the task
//! through the state word. None of them allocates.

use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::header::{self, Header};

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// A waker for the task; owns one reference the caller already took (or, when wrapped
/// in `ManuallyDrop`, borrows one the caller holds).
///
/// # Safety
/// `ptr` is a live task header and the caller accounts for one reference.
pub(crate) unsafe fn from_header(ptr: NonNull<Header>) -> Waker {
    // SAFETY: the vtable functions uphold the RawWaker contract for task headers.
    unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr() as *const (), &VTABLE)) }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: a waker's data is a live header pointer (the waker holds a reference).
    let header = unsafe { &*(data as *const Header) };
    header.state.ref_inc();
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: the waker's reference is given up to the schedule.
    unsafe { header::schedule_by_val(NonNull::new_unchecked(data as *mut Header)) }
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: the waker holds a reference for the duration of the call.
    unsafe { header::schedule_by_ref(NonNull::new_unchecked(data as *mut Header)) }
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: the waker's reference is dropped.
    unsafe { header::drop_reference(NonNull::new_unchecked(data as *mut Header)) }
}
