//! Storage benchmark: uncached random reads over a grid of block sizes and queue depths (one
//! thread per request in flight, each with its own aligned buffer), a sequential pass, and 4 KiB
//! queue-depth-1 latency, all on a scratch file written first and always removed; and the rate
//! of the copy that follows each read in the runtime (bounce buffer into streamed memory given
//! back and taken again: [`crate::pages`]).
//!
//! The copy is measured apart from the reads because it is paid apart: a layer's reads are a
//! burst that ends together, and then every copy runs with the disk idle. A curve measured with
//! the copy inside each thread's loop hides that (in steady state the other threads keep the
//! disk busy), so the simulator gets both and puts the copy after each transfer.

use super::tempfile::{is_memory_fs, no_direct_io, TempFile};
use super::{interrupt, IoOp, MeasureError, Progress};
use crate::direct::{AlignedBuf, ALIGN};
use crate::pages::{PagePool, Reservation, Slot};
use crate::ReadPoint;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sizes and time budgets of one storage run.
#[derive(Debug, Clone)]
pub struct DiskSchedule {
    pub file_bytes: u64,
    pub blocks: Vec<u64>,
    pub depths: Vec<u32>,
    /// Time spent on each (block, depth) point.
    pub point_time: Duration,
    /// The sequential pass reads the whole file at least once and keeps going until this long.
    pub seq_min_time: Duration,
    pub latency_samples: usize,
}

pub const SEQ_BLOCK: u64 = 4 << 20;
pub const SEQ_DEPTH: u32 = 8;
const WRITE_CHUNK: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct DiskResult {
    pub seq_read_gbps: f64,
    pub latency_4k_qd1_s: f64,
    pub curve: Vec<ReadPoint>,
    /// One thread's copy rate into streamed memory, GB/s, and the block it was measured with.
    pub copy_gbps: f64,
    pub copy_block: u64,
}

pub fn measure(
    dir: &Path,
    plan: &DiskSchedule,
    progress: &mut dyn Progress,
) -> Result<DiskResult, MeasureError> {
    let (guard, mut file) = TempFile::create(dir, plan.file_bytes)?;
    // Refuse before writing anything big if the filesystem cannot bypass the page cache.
    drop(guard.open_uncached()?);
    write_file(&mut file, plan.file_bytes, progress)?;
    drop(file);
    let reader = guard.open_uncached()?;
    probe_direct_read(&reader, guard.path())?;

    progress.phase("storage: sequential read", 1);
    let seq_read_gbps = sequential(&reader, plan)?;
    progress.step();

    progress.phase("storage: 4 KiB QD1 latency", 1);
    let latency_4k_qd1_s = latency(&reader, plan)?;
    progress.step();

    progress.phase(
        "storage: random reads",
        (plan.blocks.len() * plan.depths.len()) as u64,
    );
    let mut curve = Vec::new();
    for &block in &plan.blocks {
        for &depth in &plan.depths {
            let gbps = random_reads(&reader, plan.file_bytes, block, depth, plan.point_time)?;
            curve.push(ReadPoint {
                block_bytes: block,
                queue_depth: depth,
                gbps,
            });
            progress.step();
        }
    }
    drop(reader);
    drop(guard);

    progress.phase("storage: copy into streamed memory", 1);
    let copy_block = plan
        .blocks
        .iter()
        .copied()
        .max()
        .unwrap_or(1 << 20)
        .max(4096);
    let copy_gbps = copy_into_streamed(copy_block, plan.point_time)?;
    progress.step();
    Ok(DiskResult {
        seq_read_gbps,
        latency_4k_qd1_s,
        curve,
        copy_gbps,
        copy_block,
    })
}

/// Fills the file with incompressible data (so compressing or deduplicating storage cannot
/// shortcut the reads), then fsyncs it and drops it from the page cache.
fn write_file(
    file: &mut File,
    bytes: u64,
    progress: &mut dyn Progress,
) -> Result<(), MeasureError> {
    let chunks = bytes.div_ceil(WRITE_CHUNK as u64);
    progress.phase("storage: writing test file", chunks);
    let mut rng = Offsets::new(0x9E37_79B9_7F4A_7C15);
    let mut chunk = vec![0u8; WRITE_CHUNK];
    for word in chunk.chunks_exact_mut(8) {
        word.copy_from_slice(&rng.next().to_le_bytes());
    }
    let mut written = 0u64;
    for index in 0..chunks {
        interrupt_check()?;
        // Make every 4 KiB page unique across chunks.
        for (page, bytes) in chunk.chunks_exact_mut(4096).enumerate() {
            bytes[..8].copy_from_slice(&(index << 32 | page as u64).to_le_bytes());
        }
        let len = (bytes - written).min(WRITE_CHUNK as u64) as usize;
        file.write_all(&chunk[..len])
            .map_err(|e| MeasureError::io(IoOp::Write, e))?;
        written += len as u64;
        progress.step();
    }
    file.sync_all()
        .map_err(|e| MeasureError::io(IoOp::Fsync, e))?;
    drop_cached_pages(file);
    Ok(())
}

#[cfg(target_os = "linux")]
fn drop_cached_pages(file: &File) {
    use std::os::unix::io::AsRawFd;
    // SAFETY: advisory call on a valid descriptor; O_DIRECT reads are what guarantee bypassing.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

#[cfg(not(target_os = "linux"))]
fn drop_cached_pages(_file: &File) {}

/// Some filesystems accept O_DIRECT at open and refuse the read itself.
fn probe_direct_read(file: &File, path: &Path) -> Result<(), MeasureError> {
    let mut buf = AlignedBuf::new(4096).ok_or(MeasureError::NoBuffer {
        count: 1,
        bytes: 4096,
    })?;
    match file.read_at(buf.as_mut_slice(), 0) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(no_direct_io(path)),
        Err(e) => Err(MeasureError::io(IoOp::Read, e)),
    }
}

fn sequential(file: &File, plan: &DiskSchedule) -> Result<f64, MeasureError> {
    let block = SEQ_BLOCK.min(plan.file_bytes);
    let chunks_per_pass = plan.file_bytes / block;
    let cursor = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let min_time = plan.seq_min_time;
    let elapsed = run_threads(SEQ_DEPTH, block, |buf, start| loop {
        let n = cursor.fetch_add(1, Ordering::Relaxed);
        if n >= chunks_per_pass && start.elapsed() >= min_time {
            return Ok(());
        }
        let offset = (n % chunks_per_pass) * block;
        read_exact_at(file, &mut buf.as_mut_slice()[..block as usize], offset)?;
        bytes.fetch_add(block, Ordering::Relaxed);
    })?;
    Ok(bytes.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64() / 1e9)
}

/// Median time of single 4 KiB reads at random aligned offsets.
fn latency(file: &File, plan: &DiskSchedule) -> Result<f64, MeasureError> {
    let mut buf = AlignedBuf::new(4096).ok_or(MeasureError::NoBuffer {
        count: 1,
        bytes: 4096,
    })?;
    buf.touch();
    // As the runtime reads: into a reused buffer, copied into streamed memory.
    let mut dst = Streamed::new(4096)?;
    let mut rng = Offsets::new(0xD1B5_4A32_D192_ED03);
    let pages = plan.file_bytes / 4096;
    let mut times = Vec::with_capacity(plan.latency_samples);
    for _ in 0..plan.latency_samples.max(1) {
        interrupt_check()?;
        let offset = rng.below(pages) * 4096;
        let t = Instant::now();
        read_exact_at(file, buf.as_mut_slice(), offset)?;
        dst.refill()?.copy_from_slice(buf.as_mut_slice());
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// GB/s of `depth` threads each issuing `block`-sized reads at random block-aligned offsets for
/// `time` into the thread's reused aligned buffer, as the runtime's readers do (their copy out
/// of it is [`copy_into_streamed`]).
fn random_reads(
    file: &File,
    file_bytes: u64,
    block: u64,
    depth: u32,
    time: Duration,
) -> Result<f64, MeasureError> {
    let slots = (file_bytes / block).max(1);
    let bytes = AtomicU64::new(0);
    let seeds = AtomicU64::new(block ^ (depth as u64) << 40);
    let elapsed = run_threads(depth, block, |buf, start| {
        let mut rng = Offsets::new(seeds.fetch_add(0x2545_F491_4F6C_DD1D, Ordering::Relaxed) | 1);
        loop {
            let offset = rng.below(slots) * block;
            read_exact_at(file, buf.as_mut_slice(), offset)?;
            bytes.fetch_add(block, Ordering::Relaxed);
            if start.elapsed() >= time {
                return Ok(());
            }
        }
    })?;
    Ok(bytes.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64() / 1e9)
}

/// GB/s of uncached random reads of `block` bytes with `depth` in flight over the existing
/// file at `path` for `time` (the disk's speed now, where a benchmark's runs are about to
/// read: a shared disk drifts within minutes). The file is only read; a file shorter than
/// `block` is read in 4 KiB blocks.
pub fn file_read_rate(
    path: &Path,
    block: u64,
    depth: u32,
    time: Duration,
) -> Result<f64, MeasureError> {
    let unusable = |source| MeasureError::DirUnusable {
        dir: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(unusable)?.len();
    let dir = path.parent().unwrap_or(path);
    if is_memory_fs(dir) {
        return Err(MeasureError::MemoryFs {
            dir: dir.to_path_buf(),
        });
    }
    let block = if len >= block { block } else { ALIGN as u64 };
    let usable = len / block * block;
    if usable == 0 {
        return Err(MeasureError::EndedEarly { offset: 0 });
    }
    let file = crate::direct::open_uncached(path).map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) => no_direct_io(path),
        _ => unusable(e),
    })?;
    random_reads(&file, usable, block, depth.max(1), time)
}

/// GB/s of one thread copying `block` bytes out of a reused aligned buffer into streamed memory
/// given back and taken again before each copy, for `time`: what the runtime's reader does after
/// each read (a tensor's or expert's memory is given back when it is evicted and taken again by
/// the next fill).
fn copy_into_streamed(block: u64, time: Duration) -> Result<f64, MeasureError> {
    let mut src = AlignedBuf::new(block as usize).ok_or(MeasureError::NoBuffer {
        count: 1,
        bytes: block,
    })?;
    src.touch();
    let mut dst = Streamed::new(block as usize)?;
    let (start, mut copied) = (Instant::now(), 0u64);
    while copied == 0 || start.elapsed() < time {
        let d = dst.refill()?;
        d.copy_from_slice(src.as_mut_slice());
        std::hint::black_box(d);
        copied += block;
    }
    Ok(copied as f64 / start.elapsed().as_secs_f64() / 1e9)
}

/// Destination memory that behaves as the runtime's streamed memory does between two fills:
/// where the platform has a [`PagePool`], the pages of the range released last move to the
/// range filled next (two ranges, alternating); else pages are released to the kernel and the
/// next copy faults fresh zeroed pages in.
struct Streamed {
    mem: Reservation,
    len: usize,
    pool: Option<PagePool>,
    /// The range attached now (0 or 1) and its pages.
    held: Option<(usize, Slot)>,
}

impl Streamed {
    /// Two ranges of `len` bytes (whole pages).
    fn new(len: usize) -> Result<Streamed, MeasureError> {
        let no_buffer = || MeasureError::NoBuffer {
            count: 2,
            bytes: len as u64,
        };
        let len = len.checked_next_multiple_of(ALIGN).ok_or_else(no_buffer)?;
        let mem = Reservation::new(2 * len).ok_or_else(no_buffer)?;
        Ok(Streamed {
            mem,
            len,
            pool: PagePool::new().ok(),
            held: None,
        })
    }

    /// Gives the memory back and takes the other range, as an eviction and the next fill do;
    /// the bytes to copy into.
    fn refill(&mut self) -> Result<&mut [u8], MeasureError> {
        let len = self.len;
        let range = |i: usize| self.mem.as_ptr().wrapping_add(i * len);
        let next = self.held.as_ref().map_or(0, |h| 1 - h.0);
        match self.pool.as_mut() {
            Some(pool) => {
                // SAFETY: our own reservation; no reference into it is alive (the last refill's
                // borrow ended) and no I/O writes into it.
                unsafe {
                    if let Some((i, s)) = self.held.take() {
                        pool.detach(range(i), s);
                    }
                    let slot = pool
                        .attach(range(next), len)
                        .map_err(|e| MeasureError::io(IoOp::Recycle, e))?;
                    self.held = Some((next, slot));
                }
            }
            None => {
                #[cfg(unix)]
                // SAFETY: whole pages of our own reservation, not in use.
                unsafe {
                    libc::madvise(range(next).cast(), len, libc::MADV_DONTNEED);
                }
                self.held = Some((next, Slot::default()));
            }
        }
        // SAFETY: one range of the reservation, borrowed for as long as `self` is.
        Ok(unsafe { std::slice::from_raw_parts_mut(range(next), len) })
    }
}

/// Runs `threads` copies of `body`, each with its own aligned `buf_bytes` buffer (allocated and
/// touched before timing starts), all handed the same start instant. Returns the time from that
/// instant until the last thread finished; the first error wins.
fn run_threads<F>(threads: u32, buf_bytes: u64, body: F) -> Result<Duration, MeasureError>
where
    F: Fn(&mut AlignedBuf, Instant) -> Result<(), MeasureError> + Sync,
{
    let mut bufs = Vec::with_capacity(threads as usize);
    for _ in 0..threads {
        let mut buf = AlignedBuf::new(buf_bytes as usize).ok_or(MeasureError::NoBuffer {
            count: threads,
            bytes: buf_bytes,
        })?;
        buf.touch();
        bufs.push(buf);
    }
    // No start barrier: spawning takes microseconds per thread against a budget of tens of
    // milliseconds, and a barrier could hang if a spawn failed.
    let start = Instant::now();
    let results: Vec<Result<(), MeasureError>> = std::thread::scope(|s| {
        let handles: Vec<_> = bufs
            .iter_mut()
            .map(|buf| {
                let body = &body;
                s.spawn(move || body(buf, start))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(MeasureError::ThreadPanicked)))
            .collect()
    });
    let elapsed = start.elapsed();
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(elapsed)
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> Result<(), MeasureError> {
    interrupt_check()?;
    let mut done = 0;
    while done < buf.len() {
        // Direct I/O needs aligned sizes, so a short read is retried from the aligned start.
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => return Err(MeasureError::EndedEarly { offset }),
            Ok(n) if n % 4096 == 0 || done + n == buf.len() => done += n,
            Ok(_) => return Err(MeasureError::UnalignedRead),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => interrupt_check()?,
            Err(e) => return Err(MeasureError::io(IoOp::Read, e)),
        }
    }
    Ok(())
}

fn interrupt_check() -> Result<(), MeasureError> {
    if interrupt::interrupted() {
        Err(MeasureError::Interrupted)
    } else {
        Ok(())
    }
}

/// Random offsets for the read benchmark: xoshiro256** from `seeded`.
struct Offsets(seeded::Xoshiro256);

impl Offsets {
    fn new(seed: u64) -> Offsets {
        Offsets(seeded::Xoshiro256::new(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
