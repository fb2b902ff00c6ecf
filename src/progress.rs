//! Progress on stderr for steps that can take more than a second (solving, simulating, loading,
//! writing): indicatif draws only on a terminal, so piped output and tests see none of it.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// Runs `f` with a spinner saying `message` (cleared when it returns).
pub fn spinner<T>(message: impl Into<String>, f: impl FnOnce() -> T) -> T {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"),
    );
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(120));
    let out = f();
    bar.finish_and_clear();
    out
}

/// A bar over `total` bytes, saying `message`.
pub fn bytes(total: u64, message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(message.into());
    bar
}
