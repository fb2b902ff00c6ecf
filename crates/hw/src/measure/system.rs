//! Facts the OS reports about the machine: installed and available RAM, CPU model, and today's
//! date for the profile header.

/// Installed RAM and what is available to new programs right now, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub total: u64,
    pub available: u64,
}

#[cfg(target_os = "linux")]
pub fn memory() -> Option<Memory> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    };
    Some(Memory {
        total: field("MemTotal:")?,
        available: field("MemAvailable:")?,
    })
}

#[cfg(target_os = "macos")]
pub fn memory() -> Option<Memory> {
    let total = sysctl_u64(c"hw.memsize")?;
    // The pages macOS hands out readily: free, inactive (reclaimable) and purgeable.
    let page = sysctl_u64(c"hw.pagesize").unwrap_or(16384);
    let free = sysctl_u32(c"vm.page_free_count").unwrap_or(0) as u64;
    let purgeable = sysctl_u32(c"vm.page_purgeable_count").unwrap_or(0) as u64;
    Some(Memory {
        total,
        available: ((free + purgeable) * page).min(total),
    })
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn memory() -> Option<Memory> {
    None
}

#[cfg(target_os = "macos")]
fn sysctl_u64(name: &std::ffi::CStr) -> Option<u64> {
    let mut v: u64 = 0;
    let mut len = std::mem::size_of::<u64>();
    // SAFETY: sysctlbyname writes at most `len` bytes into `v`.
    let r = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            (&mut v as *mut u64).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (r == 0).then_some(v)
}

#[cfg(target_os = "macos")]
fn sysctl_u32(name: &std::ffi::CStr) -> Option<u32> {
    let mut v: u32 = 0;
    let mut len = std::mem::size_of::<u32>();
    // SAFETY: as above.
    let r = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            (&mut v as *mut u32).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (r == 0).then_some(v)
}

/// The CPU's marketing name, when the OS says.
pub fn cpu_model() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        let line = text.lines().find(|l| l.starts_with("model name"))?;
        Some(line.split_once(':')?.1.trim().to_string())
    }
    #[cfg(target_os = "macos")]
    {
        let mut buf = [0u8; 256];
        let mut len = buf.len();
        // SAFETY: sysctlbyname writes at most `len` bytes into buf.
        let r = unsafe {
            libc::sysctlbyname(
                c"machdep.cpu.brand_string".as_ptr(),
                buf.as_mut_ptr().cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        (r == 0).then(|| {
            String::from_utf8_lossy(&buf[..len])
                .trim_end_matches('\0')
                .trim()
                .to_string()
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    None
}

/// Logical CPUs this process may run on.
pub fn logical_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Physical cores (distinct package and core ids of the online CPUs; llama.cpp's default
/// thread count), at most [`logical_cpus`]; the logical count where the topology is unknown.
pub fn physical_cores() -> usize {
    let logical = logical_cpus();
    #[cfg(target_os = "linux")]
    {
        let mut cores = std::collections::BTreeSet::new();
        let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu") else {
            return logical;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name
                .strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            {
                continue;
            }
            let topo = entry.path().join("topology");
            let read = |f: &str| std::fs::read_to_string(topo.join(f)).ok();
            if let (Some(pkg), Some(core)) = (read("physical_package_id"), read("core_id")) {
                cores.insert((pkg.trim().to_string(), core.trim().to_string()));
            }
        }
        if !cores.is_empty() {
            return cores.len().min(logical);
        }
    }
    logical
}

/// Today's UTC date as YYYY-MM-DD.
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
