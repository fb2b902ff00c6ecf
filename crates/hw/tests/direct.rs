//! `hw::direct`: a file opened around the page cache reads back its bytes into aligned buffers.

use hw::direct::{open_uncached, AlignedBuf, ALIGN};
use std::os::unix::fs::FileExt;

#[cfg(target_os = "linux")]
#[test]
fn direct_reads_of_aligned_ranges_return_the_file() {
    // On the build's disk: /tmp may be tmpfs, which can refuse O_DIRECT.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("f");
    let data: Vec<u8> = (0..3 * ALIGN).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let f = open_uncached(&path).unwrap();
    let mut b = AlignedBuf::new(ALIGN).unwrap();
    f.read_exact_at(b.as_mut_slice(), ALIGN as u64).unwrap();
    assert_eq!(b.as_mut_slice(), &data[ALIGN..2 * ALIGN]);
    // An unaligned offset is refused by the kernel, not silently served from the cache.
    let mut one = AlignedBuf::new(ALIGN).unwrap();
    assert!(f.read_exact_at(one.as_mut_slice(), 1).is_err());
}

/// The read rate of an existing file: a rate from real reads of its blocks, and errors that
/// name the file or say why no rate could be measured.
#[cfg(target_os = "linux")]
#[test]
fn a_files_read_rate_reads_it_and_names_it_when_it_cannot() {
    use hw::measure::{file_read_rate, MeasureError};
    use std::time::Duration;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("model.gguf");
    let data: Vec<u8> = (0..(1 << 20) + 100).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    for block in [256 << 10, 4 << 20] {
        // 4 MiB is more than the file: read in 4 KiB blocks instead.
        let r = file_read_rate(&path, block, 2, Duration::from_millis(20)).unwrap();
        assert!(r.is_finite() && r > 0.0, "{block}: {r}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), data, "only read");

    let missing = dir.path().join("missing.gguf");
    let e = file_read_rate(&missing, 1 << 20, 1, Duration::from_millis(1)).unwrap_err();
    assert!(e.to_string().contains("missing.gguf"), "{e}");
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let e = file_read_rate(&empty, 1 << 20, 1, Duration::from_millis(1)).unwrap_err();
    assert!(matches!(e, MeasureError::EndedEarly { .. }), "{e}");

    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        let d = tempfile::tempdir_in(shm).unwrap();
        let p = d.path().join("m.gguf");
        std::fs::write(&p, &data).unwrap();
        let e = file_read_rate(&p, 1 << 20, 1, Duration::from_millis(1)).unwrap_err();
        assert!(matches!(e, MeasureError::MemoryFs { .. }), "{e}");
    } else {
        testkit::cannot_run("no /dev/shm (the tmpfs the refusal is checked on)");
    }
}
