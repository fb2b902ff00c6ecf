//! Ctrl-C / SIGTERM during a measurement: the handler deletes the benchmark's temp file at once
//! (unlink is async-signal-safe) and raises a flag the measuring loops poll, so they stop and
//! unwind normally. A second signal gets the default action (the process dies; the file is gone).

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The temp file to unlink from the handler; a leaked `CString`, or null.
static TEMP_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// While alive, SIGINT and SIGTERM go to this module's handler; dropping it restores the
/// previous handlers (so a library caller's own handling resumes after a measurement).
pub struct HandlerGuard {
    previous: [(libc::c_int, libc::sigaction); 2],
}

/// Installs the SIGINT/SIGTERM handler until the returned guard is dropped.
pub fn install() -> HandlerGuard {
    let handler = on_signal as extern "C" fn(libc::c_int);
    // SAFETY: sigaction with zeroed, then filled structs; the handler only does
    // async-signal-safe work (atomics, unlink, signal).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        let mut previous = [
            (libc::SIGINT, std::mem::zeroed()),
            (libc::SIGTERM, std::mem::zeroed()),
        ];
        for (sig, old) in previous.iter_mut() {
            libc::sigaction(*sig, &action, old);
        }
        HandlerGuard { previous }
    }
}

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        for (sig, old) in &self.previous {
            // SAFETY: restores a disposition sigaction returned earlier.
            unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let path = TEMP_PATH.load(Ordering::SeqCst);
    if !path.is_null() {
        // SAFETY: path is a NUL-terminated string kept alive until unregistered.
        unsafe { libc::unlink(path) };
    }
    // SAFETY: restoring the default disposition is async-signal-safe.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// True once SIGINT or SIGTERM arrived (after [`install`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Registers the file the handler must delete; replaces any earlier one.
pub(crate) fn register_temp_file(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let old = TEMP_PATH.swap(c.into_raw(), Ordering::SeqCst);
    free(old);
}

pub(crate) fn unregister_temp_file() {
    let old = TEMP_PATH.swap(std::ptr::null_mut(), Ordering::SeqCst);
    free(old);
}

fn free(ptr: *mut libc::c_char) {
    if !ptr.is_null() {
        // SAFETY: ptr came from CString::into_raw in register_temp_file and was swapped out, so no
        // one else frees it. A signal handler that loaded it just before the swap may still be
        // using it, but handlers run on this process's threads only during the measurement,
        // which is over when unregistering.
        drop(unsafe { CString::from_raw(ptr) });
    }
}
