//! Storage read-bandwidth lookup: bilinear interpolation of the read curve in log2(block size) and
//! log2(queue depth).

use super::schema::{ReadPoint, StorageProfile};

impl StorageProfile {
    /// Steady-state GB/s of `queue_depth` reader threads that each read a `block_bytes` request
    /// and then copy it (with `copy_gbps`; the curve alone without it): while one thread copies,
    /// the others keep the device busy, so per byte the copy costs `1 / (queue_depth *
    /// copy_gbps)` on top of the read.
    pub fn streamed_gbps(&self, block_bytes: u64, queue_depth: u32) -> f64 {
        let read = self.read_gbps(block_bytes, queue_depth);
        match self.copy_gbps {
            Some(copy) => 1.0 / (1.0 / read + 1.0 / (f64::from(queue_depth.max(1)) * copy)),
            None => read,
        }
    }

    /// Seconds one reader thread spends copying `bytes` after they were read (0 without
    /// `copy_gbps`).
    pub fn copy_s(&self, bytes: u64) -> f64 {
        self.copy_gbps.map_or(0.0, |g| bytes as f64 / (g * 1e9))
    }

    /// Random-read bandwidth (GB/s) for requests of `block_bytes` with `queue_depth` in flight.
    ///
    /// Inside the measured grid the value is interpolated bilinearly in log2 of both axes (storage
    /// throughput grows roughly with the log of request size until it saturates). Outside it:
    /// queue depths clamp to the measured range (0 counts as 1); blocks larger than the largest
    /// measured clamp (bandwidth has saturated); blocks smaller than the smallest scale down in
    /// proportion, i.e. the device is assumed to be IOPS-bound there. The curve is a full grid in
    /// any loaded profile; for a hand-built partial one, missing corners are left out of the mix.
    pub fn read_gbps(&self, block_bytes: u64, queue_depth: u32) -> f64 {
        let pts = &self.read_curve;
        let (Some(min_block), Some(max_block)) = (
            pts.iter().map(|p| p.block_bytes).min(),
            pts.iter().map(|p| p.block_bytes).max(),
        ) else {
            return self.seq_read_gbps;
        };
        let min_qd = pts.iter().map(|p| p.queue_depth).min().unwrap_or(1);
        let max_qd = pts.iter().map(|p| p.queue_depth).max().unwrap_or(1);
        let qd = queue_depth.max(1).clamp(min_qd, max_qd);
        if block_bytes < min_block {
            return self.read_gbps(min_block, qd) * block_bytes as f64 / min_block as f64;
        }
        let block = block_bytes.min(max_block);
        let (b_lo, b_hi) = bracket(pts.iter().map(|p| p.block_bytes), block);
        let (q_lo, q_hi) = bracket(pts.iter().map(|p| p.queue_depth as u64), qd as u64);
        let tb = log_fraction(b_lo, b_hi, block);
        let tq = log_fraction(q_lo, q_hi, qd as u64);
        let corners = [
            (b_lo, q_lo, (1.0 - tb) * (1.0 - tq)),
            (b_hi, q_lo, tb * (1.0 - tq)),
            (b_lo, q_hi, (1.0 - tb) * tq),
            (b_hi, q_hi, tb * tq),
        ];
        let (mut sum, mut weight) = (0.0, 0.0);
        for (b, q, w) in corners {
            if let Some(p) = find(pts, b, q) {
                sum += w * p.gbps;
                weight += w;
            }
        }
        if weight > 0.0 {
            sum / weight
        } else {
            nearest(pts, block, qd).map_or(self.seq_read_gbps, |p| p.gbps)
        }
    }
}

/// Largest value <= x and smallest value >= x (x lies within the values' range).
fn bracket(values: impl Iterator<Item = u64> + Clone, x: u64) -> (u64, u64) {
    let lo = values.clone().filter(|&v| v <= x).max().unwrap_or(x);
    let hi = values.filter(|&v| v >= x).min().unwrap_or(x);
    (lo, hi)
}

fn log_fraction(lo: u64, hi: u64, x: u64) -> f64 {
    if hi <= lo {
        return 0.0;
    }
    let (l, h, v) = ((lo as f64).log2(), (hi as f64).log2(), (x as f64).log2());
    ((v - l) / (h - l)).clamp(0.0, 1.0)
}

fn find(pts: &[ReadPoint], block: u64, qd: u64) -> Option<&ReadPoint> {
    pts.iter()
        .find(|p| p.block_bytes == block && p.queue_depth as u64 == qd)
}

fn nearest(pts: &[ReadPoint], block: u64, qd: u32) -> Option<&ReadPoint> {
    let dist = |p: &ReadPoint| {
        ((p.block_bytes as f64).log2() - (block as f64).log2()).abs()
            + ((p.queue_depth as f64).log2() - (qd as f64).log2()).abs()
    };
    pts.iter().min_by(|a, b| dist(a).total_cmp(&dist(b)))
}
