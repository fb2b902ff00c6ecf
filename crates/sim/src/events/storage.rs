//! The storage device: read requests served concurrently up to a queue depth, sharing the
//! bandwidth the profile's read curve gives at the number in flight, never faster than the base
//! latency.
//!
//! Model. With `n` requests in flight, request `i` (of block size `b_i`) transfers at
//! `read_gbps(b_i, n) / n`: for `n` equal requests the device delivers exactly the curve's
//! bandwidth at depth `n` (processor sharing). The curve is measured end to end, so it already
//! contains the per-request latency; the base latency is therefore a floor, not an addition: a
//! request completes no sooner than `latency` after it entered service. Requests beyond the
//! queue depth wait in issue order (first come, first served) and hold no bandwidth. The device
//! counts its busy time (any request in service) and the bytes it has delivered, which the
//! engine uses for utilisation and for unified-memory bus sharing.
//!
//! With the profile's `copy_gbps`, a request whose transfer has ended then holds its place in
//! the queue for `bytes / copy_gbps` more, taking no bandwidth: the runtime's reader thread
//! copies the read out of its bounce buffer before it takes the next request. A burst of reads
//! that end together thus pays its copies after the disk is done, as the runtime does.

use super::queue::Nanos;
use crate::error::SimError;
use hw::StorageProfile;
use rustc_hash::FxHashMap;
use std::cell::Cell;
use std::collections::VecDeque;

/// A request in service.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    tag: u32,
    /// Start of its class's rates in [`StorageDevice::rates`].
    rates: u32,
    remaining: f64,
    /// Earliest completion: service start + base latency, then, once the transfer ends, its
    /// end + the copy.
    floor: Nanos,
    /// Copy time after the transfer.
    copy_ns: Nanos,
}

#[derive(Debug, Clone, Copy)]
struct Waiting {
    tag: u32,
    class: u32,
}

/// One storage device; requests are identified by a caller's `tag`.
#[derive(Debug, Clone)]
pub struct StorageDevice {
    profile: StorageProfile,
    /// Per class, then per depth `0..=queue_depth`: the per-request transfer rate in bytes per
    /// nanosecond (depth 0 is read as depth 1).
    rates: Vec<f64>,
    sizes: Vec<u64>,
    /// Per class, the copy after each transfer.
    copies: Vec<Nanos>,
    /// Class of each request size.
    classes: FxHashMap<u64, u32>,
    queue_depth: usize,
    latency_ns: Nanos,
    in_flight: Vec<InFlight>,
    /// In-flight requests still transferring (`remaining > 0`).
    active: usize,
    waiting: VecDeque<Waiting>,
    /// Time the in-flight remainders were last brought up to date.
    now: Nanos,
    /// Set while nothing in flight completes at or before `now` (after an advance, and kept by
    /// requests that start transferring): issuing at `now` then needs no advance.
    settled: bool,
    /// [`StorageDevice::next_completion`] of the current state, once computed.
    next: Cell<Option<Option<Nanos>>>,
    busy_ns: Nanos,
    delivered: f64,
}

/// Bytes per nanosecond from GB/s.
fn per_ns(gbps: f64) -> f64 {
    gbps
}

impl StorageDevice {
    /// A device reading with `profile`'s curve at up to `queue_depth` requests in flight and a
    /// base latency of `latency_ns`; `sizes` become the first request classes (more are added
    /// by [`StorageDevice::class`]). Every point of the curve must be a positive bandwidth, so
    /// that every block size gets one.
    pub fn new(
        profile: &StorageProfile,
        queue_depth: u32,
        latency_ns: Nanos,
        sizes: &[u64],
    ) -> Result<StorageDevice, SimError> {
        if queue_depth == 0 {
            return Err(SimError::QueueDepthZero);
        }
        let bad = |bytes, queue_depth, gbps: f64| {
            (!(gbps.is_finite() && gbps > 0.0)).then_some(SimError::ReadBandwidth {
                bytes,
                queue_depth,
                gbps,
            })
        };
        if let Some(e) = profile
            .read_curve
            .iter()
            .find_map(|p| bad(p.block_bytes, p.queue_depth, p.gbps))
            .or_else(|| bad(0, 0, profile.seq_read_gbps))
        {
            return Err(e);
        }
        let mut dev = StorageDevice {
            profile: profile.clone(),
            rates: Vec::new(),
            sizes: Vec::new(),
            copies: Vec::new(),
            classes: FxHashMap::default(),
            queue_depth: queue_depth as usize,
            latency_ns,
            in_flight: Vec::with_capacity(queue_depth as usize),
            active: 0,
            waiting: VecDeque::new(),
            now: 0,
            settled: true,
            next: Cell::new(Some(None)),
            busy_ns: 0,
            delivered: 0.0,
        };
        for &b in sizes {
            dev.class(b);
        }
        Ok(dev)
    }

    /// The class of requests of `bytes` (at least one), added when new.
    pub fn class(&mut self, bytes: u64) -> u32 {
        let bytes = bytes.max(1);
        if let Some(&c) = self.classes.get(&bytes) {
            return c;
        }
        let class = self.sizes.len() as u32;
        let first = self.rates.len();
        self.rates.push(0.0);
        for n in 1..=self.queue_depth as u32 {
            // Positive: a blend of the curve's positive points, scaled by size below them.
            let g = self.profile.read_gbps(bytes, n);
            self.rates.push(per_ns(g) / n as f64);
        }
        self.rates[first] = self.rates[first + 1];
        self.copies
            .push((self.profile.copy_s(bytes) * 1e9).ceil() as Nanos);
        self.sizes.push(bytes);
        self.classes.insert(bytes, class);
        class
    }

    /// Bytes of requests of `class`.
    pub fn class_bytes(&self, class: u32) -> u64 {
        self.sizes[class as usize]
    }

    /// Issues a request of size class `class` at time `at` (>= every earlier call's time).
    pub fn issue(&mut self, at: Nanos, tag: u32, class: u32, done: &mut impl FnMut(Nanos, u32)) {
        if !(self.settled && at == self.now) {
            self.advance_to(at, done);
        }
        if self.in_flight.len() < self.queue_depth {
            self.start(at, tag, class);
        } else {
            self.waiting.push_back(Waiting { tag, class });
        }
    }

    fn start(&mut self, at: Nanos, tag: u32, class: u32) {
        let bytes = self.sizes[class as usize];
        let remaining = bytes as f64;
        if remaining > 0.0 {
            self.active += 1;
        } else if self.latency_ns == 0 {
            // Completes at `at` itself.
            self.settled = false;
        }
        // A request that transfers bytes ends at least a nanosecond after it starts (its end
        // rounds up), and one that has none waits out the latency floor; neither changes
        // whether anything completes at `at`.
        self.in_flight.push(InFlight {
            tag,
            rates: class * (self.queue_depth as u32 + 1),
            remaining,
            floor: at + self.latency_ns,
            copy_ns: self.copies[class as usize],
        });
        self.next.set(None);
    }

    /// The per-request rate of requests whose class rates start at `rates`, with `active`
    /// requests transferring.
    #[inline]
    fn rate(&self, rates: u32, active: usize) -> f64 {
        self.rates[rates as usize + active]
    }

    /// The next time the device's state changes: a transfer ends (the others then share more
    /// bandwidth) or a finished transfer reaches its latency floor and completes. None when idle.
    pub fn next_completion(&self) -> Option<Nanos> {
        if let Some(next) = self.next.get() {
            return next;
        }
        let active = self.active;
        // The earliest transfer end is the smallest time left, rounded up once (rounding up
        // keeps the order); finished transfers wait for their floors.
        let mut transfer = f64::INFINITY;
        let mut floor: Option<Nanos> = None;
        for r in &self.in_flight {
            if r.remaining > 0.0 {
                transfer = transfer.min(r.remaining / self.rate(r.rates, active));
            } else {
                let at = r.floor.max(self.now);
                floor = Some(floor.map_or(at, |n| n.min(at)));
            }
        }
        let ends = (transfer < f64::INFINITY).then(|| self.now + transfer.ceil() as Nanos);
        let next = match (ends, floor) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.next.set(Some(next));
        next
    }

    /// Runs the device to time `t`, reporting each completion as `done(time, tag)` in time order.
    pub fn advance_to(&mut self, t: Nanos, done: &mut impl FnMut(Nanos, u32)) {
        while let Some(next) = self.next_completion() {
            if next > t {
                break;
            }
            let active = self.active;
            self.progress(next);
            // Rounding a transfer's end up to whole nanoseconds leaves at most a nanosecond's
            // worth of bytes: such a transfer is over.
            for r in &mut self.in_flight {
                let rate = self.rates[r.rates as usize + active];
                if r.remaining > 0.0 && r.remaining <= rate + 1e-9 {
                    self.delivered += r.remaining;
                    r.remaining = 0.0;
                    self.active -= 1;
                    r.floor = r.floor.max(next + r.copy_ns);
                }
            }
            self.in_flight.retain(|r| {
                let over = r.remaining <= 0.0 && r.floor <= next;
                if over {
                    done(next, r.tag);
                }
                !over
            });
            while self.in_flight.len() < self.queue_depth {
                let Some(w) = self.waiting.pop_front() else {
                    break;
                };
                self.start(next, w.tag, w.class);
            }
            self.next.set(None);
        }
        // A transfer that ends exactly at `t` (its rounded-up end said later) completes at
        // its floor, which may be `t` itself: only the next advance can tell.
        let ended = self.progress(t.max(self.now));
        self.settled = self.now == t && !ended;
    }

    /// Moves every in-flight transfer forward to `t` at the current sharing; whether a transfer
    /// ended.
    fn progress(&mut self, t: Nanos) -> bool {
        if t <= self.now {
            return false;
        }
        let mut ended = false;
        let dt = (t - self.now) as f64;
        if !self.in_flight.is_empty() {
            self.busy_ns += t - self.now;
            let n = self.active;
            for r in &mut self.in_flight {
                if r.remaining > 0.0 {
                    let rate = self.rates[r.rates as usize + n];
                    let moved = (dt * rate).min(r.remaining);
                    let left = r.remaining - moved;
                    if left <= 0.0 {
                        // The transfer's end, rounded up as next_completion rounds it.
                        let end = self.now + (r.remaining / rate).ceil() as Nanos;
                        self.active -= 1;
                        ended = true;
                        r.floor = r.floor.max(end.min(t) + r.copy_ns);
                    }
                    r.remaining = left;
                    self.delivered += moved;
                }
            }
        }
        if !self.in_flight.is_empty() {
            self.next.set(None);
        }
        self.now = t;
        ended
    }

    /// Nanoseconds with at least one request in service, up to the last advance.
    pub fn busy_ns(&self) -> Nanos {
        self.busy_ns
    }

    /// Bytes delivered into memory, up to the last advance.
    pub fn delivered_bytes(&self) -> f64 {
        self.delivered
    }

    /// Requests in service or waiting.
    pub fn pending(&self) -> usize {
        self.in_flight.len() + self.waiting.len()
    }
}
