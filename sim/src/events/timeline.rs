//! A decode timeline over (token, layer) steps: attention and router, then the layer's expert
//! reads on one storage channel, then expert compute once every read has landed.
//!
//! The caller gives each step's compute times and missed bytes (from a cache replay and, later,
//! the solver's cost model); the storage channel serves reads first come, first served, each
//! taking `latency + bytes / bandwidth` (queue depth 1; bandwidth curves and concurrent requests
//! come with the hardware profile). Reads are issued when the router has chosen, i.e. when the
//! step's attention finishes; there is no prefetch yet.

use super::queue::{EventQueue, Nanos};
use crate::error::SimError;

/// One (token, layer) step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Attention, router and everything else before the experts run.
    pub attention_ns: Nanos,
    /// The selected experts' (and shared experts') compute.
    pub experts_ns: Nanos,
    /// Sizes of the reads this step's misses issue, in issue order.
    pub reads: Vec<u64>,
}

/// A storage device as the timeline sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Storage {
    pub bandwidth_bytes_per_s: f64,
    /// Fixed cost of every request before its bytes flow.
    pub latency_ns: Nanos,
}

impl Storage {
    /// Time one read of `bytes` occupies the channel, rounded up to whole nanoseconds.
    pub fn read_ns(&self, bytes: u64) -> Nanos {
        self.latency_ns + (bytes as f64 * 1e9 / self.bandwidth_bytes_per_s).ceil() as Nanos
    }
}

/// When each phase of a step happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepRecord {
    pub start: Nanos,
    /// Attention and router done; reads issued.
    pub routed: Nanos,
    /// Last read of the step landed (`routed` when it had none).
    pub loaded: Nanos,
    pub end: Nanos,
    pub bytes_read: u64,
}

impl StepRecord {
    /// Time the step waited for storage with nothing to compute.
    pub fn io_wait_ns(&self) -> Nanos {
        self.loaded - self.routed
    }
}

/// A simulated run: one record per step, in step order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub steps: Vec<StepRecord>,
}

impl Timeline {
    pub fn end_ns(&self) -> Nanos {
        self.steps.last().map_or(0, |s| s.end)
    }

    pub fn io_wait_ns(&self) -> Nanos {
        self.steps.iter().map(StepRecord::io_wait_ns).sum()
    }
}

#[derive(Debug)]
enum Event {
    Routed(usize),
    ReadDone(usize),
    ExpertsDone(usize),
}

/// Runs `steps` one after another from time 0.
pub fn simulate(steps: &[Step], storage: Storage) -> Result<Timeline, SimError> {
    if !(storage.bandwidth_bytes_per_s.is_finite() && storage.bandwidth_bytes_per_s > 0.0) {
        return Err(SimError::new(format!(
            "storage bandwidth is {} bytes/s; give a positive, finite bandwidth",
            storage.bandwidth_bytes_per_s
        )));
    }
    let mut records = vec![StepRecord::default(); steps.len()];
    let mut outstanding = vec![0usize; steps.len()];
    let mut channel_free: Nanos = 0;
    let mut queue = EventQueue::new();
    if let Some(first) = steps.first() {
        queue.push(first.attention_ns, Event::Routed(0));
    }
    while let Some((now, event)) = queue.pop() {
        match event {
            Event::Routed(i) => {
                records[i].routed = now;
                records[i].loaded = now;
                for &bytes in &steps[i].reads {
                    let done = now.max(channel_free) + storage.read_ns(bytes);
                    channel_free = done;
                    records[i].bytes_read += bytes;
                    queue.push(done, Event::ReadDone(i));
                }
                outstanding[i] = steps[i].reads.len();
                if outstanding[i] == 0 {
                    queue.push(now + steps[i].experts_ns, Event::ExpertsDone(i));
                }
            }
            Event::ReadDone(i) => {
                outstanding[i] -= 1;
                if outstanding[i] == 0 {
                    records[i].loaded = now;
                    queue.push(now + steps[i].experts_ns, Event::ExpertsDone(i));
                }
            }
            Event::ExpertsDone(i) => {
                records[i].end = now;
                if let Some(next) = steps.get(i + 1) {
                    records[i + 1].start = now;
                    queue.push(now + next.attention_ns, Event::Routed(i + 1));
                }
            }
        }
    }
    Ok(Timeline { steps: records })
}
