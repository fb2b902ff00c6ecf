//! RAM bandwidth: a multi-threaded memory copy, counted the STREAM "copy" way (bytes read plus
//! bytes written per second).

use super::{interrupt, MeasureError};
use std::time::Instant;

/// Best of `reps` timed copies of a `bytes`-sized buffer, split across `threads`, in GB/s.
pub fn copy_gbps(bytes: usize, threads: usize, reps: usize) -> Result<f64, MeasureError> {
    let threads = threads.max(1);
    let per_thread = (bytes / threads).max(4096);
    let mut src = vec![0x5au8; per_thread * threads];
    let mut dst = vec![0u8; per_thread * threads];
    // The first pass faults the destination pages in; it is not timed.
    copy_parallel(&src, &mut dst, per_thread);
    let mut best = f64::INFINITY;
    for rep in 0..reps.max(1) {
        if interrupt::interrupted() {
            return Err(MeasureError::Interrupted);
        }
        let len = src.len();
        src[rep % len] ^= 1;
        let t = Instant::now();
        copy_parallel(&src, &mut dst, per_thread);
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&dst);
    Ok(2.0 * src.len() as f64 / best / 1e9)
}

fn copy_parallel(src: &[u8], dst: &mut [u8], per_thread: usize) {
    std::thread::scope(|s| {
        for (d, c) in dst.chunks_mut(per_thread).zip(src.chunks(per_thread)) {
            s.spawn(move || d.copy_from_slice(c));
        }
    });
}
