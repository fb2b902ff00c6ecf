//! The I/O thread pool: reads byte ranges of [`DirectFile`]s into caller memory on worker
//! threads, at most `queue_depth` requests in flight; each submitted request is a handle to wait
//! on for its bytes transferred or its error.
//!
//! One worker per request in flight doing blocking direct reads ([`DirectFile::read`]): the queue
//! depth the device sees is the number of workers busy. Bounce buffers (one request each) are
//! made when a request finds none free and reused last-in first-out, so the memory they take is
//! that of the most requests ever in flight, not of every worker.
//! A request that never runs (the pool shut down, or its worker panicked) completes with an
//! error, so no waiter hangs. Dropping the pool lets running requests finish, cancels the
//! queued ones and joins the workers.

use crate::direct_io::{Bounce, DirectFile, PAGE};
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

/// The most reader threads (requests in flight) a pool starts.
pub const MAX_QUEUE_DEPTH: u32 = 256;

/// What the pool has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IoStats {
    /// Requests that ran (successfully or not).
    pub requests: u64,
    /// Most requests in flight at once.
    pub max_in_flight: u32,
    /// Seconds with at least one request in flight.
    pub busy_s: f64,
    /// Seconds of the requests that ran, summed: over `busy_s`, the mean depth while busy.
    pub request_s: f64,
}

/// Memory a read writes into. The submitter keeps it valid and untouched until the request's
/// handle has been waited for (or the pool dropped).
struct Dst {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the submitter hands the range to exactly one worker until the request completes.
unsafe impl Send for Dst {}

enum Task {
    Read {
        file: Arc<DirectFile>,
        tensor: Arc<str>,
        offset: u64,
        dst: Dst,
    },
    /// Any work (tests: blocking, failing or panicking requests).
    #[cfg(test)]
    Run(Box<dyn Fn() -> Result<u64> + Send>),
}

struct Job {
    task: Task,
    done: Arc<Completion>,
}

impl Job {
    /// Runs the task; the caller completes the waiter with [`Job::complete`] once the pool's
    /// counters include this request, so a waiter that then reads [`IoPool::stats`] sees it.
    fn run(&self, bounce: &mut Bounce) -> Result<u64> {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &self.task {
            Task::Read {
                file,
                tensor,
                offset,
                dst,
            } => {
                // SAFETY: see `Dst`.
                let dst = unsafe { std::slice::from_raw_parts_mut(dst.ptr, dst.len) };
                file.read(bounce, tensor, *offset, dst)
            }
            #[cfg(test)]
            Task::Run(f) => f(),
        }));
        r.unwrap_or_else(|_| Err(self.failure("the I/O worker panicked")))
    }

    fn complete(&self, result: Result<u64>) {
        self.done.set(result);
    }

    fn failure(&self, why: &str) -> Error {
        match &self.task {
            Task::Read {
                file,
                tensor,
                offset,
                dst,
            } => Error::Read {
                path: file.path().to_path_buf(),
                tensor: tensor.to_string(),
                offset: *offset,
                len: dst.len as u64,
                source: std::io::Error::other(why.to_string()),
            },
            #[cfg(test)]
            Task::Run(_) => Error::Open {
                path: "test task".into(),
                source: std::io::Error::other(why.to_string()),
            },
        }
    }
}

impl Drop for Job {
    /// A job dropped before it completed (queued at shutdown) fails its waiter.
    fn drop(&mut self) {
        if !self.done.is_set() {
            self.done.set(Err(
                self.failure("the I/O pool shut down before this read ran")
            ));
        }
    }
}

/// The result slot of one request.
struct Completion {
    result: Mutex<Option<Result<u64>>>,
    ready: Condvar,
    set: AtomicBool,
}

impl Completion {
    /// Records the first result only.
    fn set(&self, r: Result<u64>) {
        let mut g = lock(&self.result);
        if !self.is_set() {
            *g = Some(r);
            self.set.store(true, Ordering::Release);
            self.ready.notify_all();
        }
    }

    fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }
}

/// A submitted request.
pub struct ReadHandle(Arc<Completion>);

impl ReadHandle {
    /// Blocks until the request completes: the bytes transferred from the device, or its error.
    pub fn wait(self) -> Result<u64> {
        let mut g = lock(&self.0.result);
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = self.0.ready.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Whether waiting would return at once.
    pub fn is_done(&self) -> bool {
        self.0.is_set()
    }
}

struct State {
    queue: VecDeque<Job>,
    /// Free bounce buffers.
    bounces: Vec<Bounce>,
    in_flight: u32,
    busy_since: Option<Instant>,
    stats: IoStats,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
}

pub struct IoPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    queue_depth: u32,
    request_bytes: usize,
}

impl IoPool {
    /// `queue_depth` workers (at least one, at most [`MAX_QUEUE_DEPTH`]) reading requests of at
    /// most `request_bytes` (the size large reads are split into, see
    /// [`IoPool::submit_read`]; rounded up to whole pages).
    pub fn new(queue_depth: u32, request_bytes: u64) -> Result<IoPool> {
        if queue_depth > MAX_QUEUE_DEPTH {
            return Err(Error::QueueDepth {
                depth: queue_depth,
                max: MAX_QUEUE_DEPTH,
            });
        }
        let queue_depth = queue_depth.max(1);
        let request_bytes = hw::direct::request_size(request_bytes) as usize;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bounces: Vec::new(),
                in_flight: 0,
                busy_since: None,
                stats: IoStats::default(),
                shutdown: false,
            }),
            work: Condvar::new(),
        });
        let mut pool = IoPool {
            shared,
            workers: Vec::with_capacity(queue_depth as usize),
            queue_depth,
            request_bytes,
        };
        for i in 0..queue_depth {
            let shared = Arc::clone(&pool.shared);
            let w = std::thread::Builder::new()
                .name(format!("hypura-io-{i}"))
                .spawn(move || worker(&shared, request_bytes))
                .map_err(Error::ThreadSpawn)?;
            pool.workers.push(w);
        }
        Ok(pool)
    }

    pub fn queue_depth(&self) -> u32 {
        self.queue_depth
    }

    /// The size reads are split into.
    pub fn request_bytes(&self) -> u64 {
        self.request_bytes as u64
    }

    /// Bytes of the bounce buffers the pool holds (one per request it ever had in flight at
    /// once).
    pub fn overhead_bytes(&self) -> u64 {
        let peak = lock(&self.shared.state).stats.max_in_flight as u64;
        peak * (self.request_bytes + PAGE) as u64
    }

    /// Reads `len` bytes of `file` at `offset` into `dst` as requests of at most the pool's
    /// request size, split at page-aligned file offsets (no page is read twice); `tensor` names
    /// the data in errors. Returns one handle per request, in file order.
    ///
    /// # Safety
    /// `dst..dst+len` must stay valid, and be neither read nor written by anyone else, until
    /// every returned handle has been waited for or the pool has been dropped.
    pub unsafe fn submit_read(
        &self,
        file: &Arc<DirectFile>,
        tensor: &str,
        offset: u64,
        dst: *mut u8,
        len: usize,
    ) -> Vec<ReadHandle> {
        let tensor: Arc<str> = Arc::from(tensor);
        hw::direct::split(offset, len, self.request_bytes as u64)
            .into_iter()
            .map(|r| {
                self.submit(Task::Read {
                    file: Arc::clone(file),
                    tensor: Arc::clone(&tensor),
                    offset: r.offset,
                    // SAFETY: `start + len <= len` of the whole read (split's contract).
                    dst: Dst {
                        ptr: unsafe { dst.add(r.start) },
                        len: r.len,
                    },
                })
            })
            .collect()
    }

    fn submit(&self, task: Task) -> ReadHandle {
        let done = Arc::new(Completion {
            result: Mutex::new(None),
            ready: Condvar::new(),
            set: AtomicBool::new(false),
        });
        let job = Job {
            task,
            done: Arc::clone(&done),
        };
        let mut st = lock(&self.shared.state);
        if st.shutdown {
            drop(st);
            drop(job); // fails the handle
        } else {
            st.queue.push_back(job);
            drop(st);
            self.shared.work.notify_one();
        }
        ReadHandle(done)
    }

    pub fn stats(&self) -> IoStats {
        let st = lock(&self.shared.state);
        let mut s = st.stats;
        if let Some(t) = st.busy_since {
            s.busy_s += t.elapsed().as_secs_f64();
        }
        s
    }
}

impl Drop for IoPool {
    fn drop(&mut self) {
        let queued: Vec<Job> = {
            let mut st = lock(&self.shared.state);
            st.shutdown = true;
            st.queue.drain(..).collect()
        };
        drop(queued); // their waiters get errors
        self.shared.work.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(shared: &Shared, request_bytes: usize) {
    loop {
        let (job, bounce) = {
            let mut st = lock(&shared.state);
            let job = loop {
                if let Some(j) = st.queue.pop_front() {
                    break j;
                }
                if st.shutdown {
                    return;
                }
                st = shared.work.wait(st).unwrap_or_else(|e| e.into_inner());
            };
            st.in_flight += 1;
            st.stats.max_in_flight = st.stats.max_in_flight.max(st.in_flight);
            if st.in_flight == 1 {
                st.busy_since = Some(Instant::now());
            }
            (job, st.bounces.pop())
        };
        let started = Instant::now();
        // An unaligned request of `request_bytes` spans at most one page more.
        let (bounce, result) = match bounce.map_or_else(|| Bounce::new(request_bytes + PAGE), Ok) {
            Ok(mut b) => {
                let r = job.run(&mut b);
                (Some(b), r)
            }
            Err(e) => (None, Err(e)),
        };
        let mut st = lock(&shared.state);
        st.bounces.extend(bounce);
        st.in_flight -= 1;
        st.stats.requests += 1;
        st.stats.request_s += started.elapsed().as_secs_f64();
        if st.in_flight == 0 {
            if let Some(t) = st.busy_since.take() {
                st.stats.busy_s += t.elapsed().as_secs_f64();
            }
        }
        drop(st);
        job.complete(result);
    }
}

/// Poisoning only means another thread panicked while holding the lock; the data stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
