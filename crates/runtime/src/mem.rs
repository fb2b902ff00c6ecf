//! The process's memory and storage reads as the kernel counts them (Linux /proc): peak and current
//! resident set, bytes read from storage.

/// Peak resident set size (VmHWM), bytes; None where /proc is unavailable.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Current resident set size (VmRSS), bytes.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

fn status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Resets the peak (VmHWM) to the current resident set (Linux >= 4.0: `5` to clear_refs), so a
/// later [`peak_rss_bytes`] covers only what follows. False where unsupported.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Bytes this process (all threads) caused to be read from storage: /proc/self/io `read_bytes`,
/// which counts O_DIRECT reads and mmap page faults alike, not page-cache hits. None without /proc.
pub fn storage_read_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/io").ok()?;
    let line = s.lines().find(|l| l.starts_with("read_bytes:"))?;
    line["read_bytes:".len()..].trim().parse().ok()
}
