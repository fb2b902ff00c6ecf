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
