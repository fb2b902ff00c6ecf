//! One-time llama.cpp initialisation and its log: kept in a ring so failures can quote llama.cpp's
//! own reason; echoed to stderr only when `HYPURA_LLAMA_LOG` is set.

use hypura_sys as sys;
use std::collections::VecDeque;
use std::ffi::CStr;
use std::os::raw::{c_char, c_void};
use std::sync::{Mutex, Once};

const KEPT_LINES: usize = 64;

static INIT: Once = Once::new();
static LOG: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
static ECHO: Mutex<bool> = Mutex::new(false);

/// Initialises llama.cpp's backends and installs the log capture (idempotent).
pub fn init() {
    INIT.call_once(|| {
        *ECHO.lock().unwrap_or_else(|e| e.into_inner()) =
            std::env::var_os("HYPURA_LLAMA_LOG").is_some_and(|v| !v.is_empty() && v != "0");
        // SAFETY: plain C calls with a static callback; called once before any other llama call.
        unsafe {
            sys::llama_log_set(Some(log_line), std::ptr::null_mut());
            sys::llama_backend_init();
        }
    });
}

unsafe extern "C" fn log_line(level: sys::ggml_log_level, text: *const c_char, _ud: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for this call.
    let line = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    if *ECHO.lock().unwrap_or_else(|e| e.into_inner()) {
        eprint!("{line}");
    }
    // Keep only warnings and errors for error messages (continuation lines belong to the previous one).
    if level == sys::GGML_LOG_LEVEL_ERROR || level == sys::GGML_LOG_LEVEL_WARN {
        let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == KEPT_LINES {
            log.pop_front();
        }
        log.push_back(line.trim_end().to_string());
    }
}

/// The version of the llama-cpp-sys-2 crate whose copy of llama.cpp is built in (pinned in
/// Cargo.lock; a test keeps the two equal).
pub const LLAMA_CPP_SYS_VERSION: &str = "0.1.161";

/// The names of the compute devices llama.cpp's backends found (`CPU`, `CUDA0`, ...).
pub fn devices() -> Vec<String> {
    init();
    // SAFETY: backends are initialised; device handles and their names are static in ggml.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| {
                let name = sys::ggml_backend_dev_name(sys::ggml_backend_dev_get(i));
                if name.is_null() {
                    "?".to_string()
                } else {
                    CStr::from_ptr(name).to_string_lossy().into_owned()
                }
            })
            .collect()
    }
}

/// Clears the kept log (call before an operation whose failure should quote it).
pub fn clear_log() {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// llama.cpp's warnings and errors since [`clear_log`], as `": line; line"`, or "" if none.
pub fn log_detail() -> String {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let lines: Vec<&str> = log
        .iter()
        .map(|l| l.as_str())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join("; "))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_llama_cpp_sys_version_is_the_one_cargo_lock_pins() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .unwrap();
        let pinned = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"llama-cpp-sys-2\""))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .map(|v| v.trim_matches('"').to_string())
            .expect("llama-cpp-sys-2 in Cargo.lock");
        assert_eq!(pinned, super::LLAMA_CPP_SYS_VERSION);
        assert!(super::devices()
            .iter()
            .any(|d| d.eq_ignore_ascii_case("cpu")));
    }
}
