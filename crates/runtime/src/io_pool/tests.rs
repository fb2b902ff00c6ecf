use super::*;
use std::io::Write;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n as u32).map(|i| (i * 13 + i / 509) as u8).collect()
}

/// A latch the test opens; tasks block on it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut g = lock(&self.open);
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
    }
    fn open(&self) {
        *lock(&self.open) = true;
        self.cv.notify_all();
    }
}

fn run(pool: &IoPool, f: impl Fn() -> Result<u64> + Send + 'static) -> ReadHandle {
    pool.submit(Task::Run(Box::new(f)))
}

fn until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_split_read_lands_exactly_and_reads_each_page_once() {
    let data = pattern(200_000);
    let f = file_with(&data);
    let file = Arc::new(DirectFile::open(f.path()).unwrap());
    let pool = IoPool::new(4, 3 * 4096).unwrap();
    let (off, len) = (5_000usize, 150_001usize);
    let mut dst = vec![0u8; len];
    // SAFETY: dst outlives the waits below and is not touched meanwhile.
    let handles = unsafe { pool.submit_read(&file, "t", off as u64, dst.as_mut_ptr(), len) };
    assert_eq!(
        handles.len(),
        hw::direct::split(off as u64, len, 3 * 4096).len()
    );
    assert!(handles.len() > 10);
    let transferred: u64 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
    assert_eq!(&dst[..], &data[off..off + len]);
    let first = off as u64 / 4096 * 4096;
    let last = ((off + len) as u64).div_ceil(4096) * 4096;
    assert_eq!(transferred, last - first);
}

#[test]
fn requests_start_in_submission_order() {
    let pool = IoPool::new(1, 4096).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<ReadHandle> = (0..20u64)
        .map(|i| {
            let order = Arc::clone(&order);
            run(&pool, move || {
                lock(&order).push(i);
                Ok(i)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.wait().unwrap(), i as u64);
    }
    assert_eq!(*lock(&order), (0..20).collect::<Vec<_>>());
}

#[test]
fn no_more_than_queue_depth_requests_run_at_once() {
    let pool = IoPool::new(3, 4096).unwrap();
    let gate = Arc::new(Gate::default());
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let handles: Vec<ReadHandle> = (0..8)
        .map(|_| {
            let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
            run(&pool, move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gate.wait();
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(1)
            })
        })
        .collect();
    until("3 requests running", || running.load(Ordering::SeqCst) == 3);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(running.load(Ordering::SeqCst), 3, "a 4th request started");
    assert!(!handles[3].is_done());
    gate.open();
    let total: u64 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
    assert_eq!(total, 8);
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    let s = pool.stats();
    assert_eq!((s.requests, s.max_in_flight), (8, 3));
    assert!(s.busy_s >= 0.05, "{s:?}");
}

#[test]
fn errors_reach_the_waiter_naming_file_and_offset() {
    let data = pattern(10_000);
    let f = file_with(&data);
    let file = Arc::new(DirectFile::open(f.path()).unwrap());
    let pool = IoPool::new(2, 4096).unwrap();
    let mut dst = vec![0u8; 6_000];
    // SAFETY: as above.
    let handles =
        unsafe { pool.submit_read(&file, "blk.7.ffn_up.weight", 8_000, dst.as_mut_ptr(), 6_000) };
    let errors: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.wait().err().map(|e| e.to_string()))
        .collect();
    assert!(!errors.is_empty());
    let path = f.path().display().to_string();
    for e in &errors {
        assert!(
            e.contains(&path) && e.contains("blk.7.ffn_up.weight"),
            "{e}"
        );
    }
    assert!(
        errors.iter().any(|e| e.contains("offset 8192")),
        "{errors:?}"
    );

    let failed = run(&pool, || {
        Err(Error::Open {
            path: "/dev/on-fire".into(),
            source: std::io::Error::other("device on fire"),
        })
    });
    assert!(failed
        .wait()
        .unwrap_err()
        .to_string()
        .contains("device on fire"));
    let panicked = run(&pool, || panic!("worker bug"));
    assert!(panicked
        .wait()
        .unwrap_err()
        .to_string()
        .contains("panicked"));
    // The pool still serves requests after a failed and a panicking one.
    let ok = run(&pool, || Ok(42));
    assert_eq!(ok.wait().unwrap(), 42);
}

#[test]
fn dropping_the_pool_finishes_running_requests_and_fails_queued_ones() {
    let pool = IoPool::new(1, 4096).unwrap();
    let gate = Arc::new(Gate::default());
    let started = Arc::new(AtomicU32::new(0));
    let running = {
        let (gate, started) = (gate.clone(), started.clone());
        run(&pool, move || {
            started.store(1, Ordering::SeqCst);
            gate.wait();
            Ok(7)
        })
    };
    let queued: Vec<ReadHandle> = (0..3).map(|_| run(&pool, || Ok(1))).collect();
    until("the first request running", || {
        started.load(Ordering::SeqCst) == 1
    });
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            gate.open();
        })
    };
    drop(pool);
    opener.join().unwrap();
    assert_eq!(running.wait().unwrap(), 7);
    for h in queued {
        let e = h.wait().unwrap_err().to_string();
        assert!(e.contains("shut down"), "{e}");
    }
}
