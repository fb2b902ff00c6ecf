//! CPU throughput: an f32 fused-multiply-add loop on independent accumulators (enough to hide FMA
//! latency), on every logical CPU at once, using the widest vector FMA the CPU has.

use super::{interrupt, MeasureError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Iterations of the inner loop per timing check.
const BATCH: u64 = 1 << 16;

/// Total GFLOP/s of `threads` threads each running the kernel for about `time`, and a word
/// naming the kernel used (for the profile's comment).
pub fn fma_gflops(threads: usize, time: Duration) -> Result<(f64, &'static str), MeasureError> {
    let kernel = pick_kernel();
    let flops = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads.max(1) {
            let flops = &flops;
            s.spawn(move || {
                let begin = Instant::now();
                let mut seed = 1.0 + t as f32 * 1e-3;
                while begin.elapsed() < time && !interrupt::interrupted() {
                    let (done, out) = (kernel.run)(BATCH, std::hint::black_box(seed));
                    seed = std::hint::black_box(out).fract() + 1.0;
                    flops.fetch_add(done, Ordering::Relaxed);
                }
            });
        }
    });
    if interrupt::interrupted() {
        return Err(MeasureError::Interrupted);
    }
    Ok((
        flops.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64() / 1e9,
        kernel.name,
    ))
}

struct Kernel {
    name: &'static str,
    /// Runs `iters` iterations; returns (flops done, a value depending on all of them).
    run: fn(u64, f32) -> (u64, f32),
}

fn pick_kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return Kernel {
            name: "AVX2 FMA",
            run: x86::run_fma,
        };
    }
    #[cfg(target_arch = "aarch64")]
    return Kernel {
        name: "NEON FMA",
        run: arm::run_neon,
    };
    #[allow(unreachable_code)]
    Kernel {
        name: "portable multiply-add",
        run: run_portable,
    }
}

/// Accumulators chosen to cover FMA latency x issue width on current cores (4 cycles x 2-4 pipes).
const ACC: usize = 12;

fn run_portable(iters: u64, seed: f32) -> (u64, f32) {
    let mut acc = [seed; 16];
    let (m, a) = (
        std::hint::black_box(0.999_999f32),
        std::hint::black_box(1e-7f32),
    );
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = *x * m + a;
        }
    }
    (iters * 16 * 2, acc.iter().sum())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::ACC;
    use std::arch::x86_64::*;

    pub fn run_fma(iters: u64, seed: f32) -> (u64, f32) {
        // SAFETY: only chosen after is_x86_feature_detected!("avx2") and ("fma").
        unsafe { fma_loop(iters, seed) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn fma_loop(iters: u64, seed: f32) -> (u64, f32) {
        let m = _mm256_set1_ps(0.999_999);
        let a = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(seed); ACC];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, m, a);
            }
        }
        let mut lanes = [0f32; 8];
        let mut sum = 0.0;
        for x in acc {
            _mm256_storeu_ps(lanes.as_mut_ptr(), x);
            sum += lanes.iter().sum::<f32>();
        }
        (iters * ACC as u64 * 8 * 2, sum)
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::ACC;
    use std::arch::aarch64::*;

    pub fn run_neon(iters: u64, seed: f32) -> (u64, f32) {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe {
            let m = vdupq_n_f32(0.999_999);
            let a = vdupq_n_f32(1e-7);
            let mut acc = [vdupq_n_f32(seed); ACC];
            for _ in 0..iters {
                for x in acc.iter_mut() {
                    *x = vfmaq_f32(a, *x, m);
                }
            }
            let sum = acc.iter().map(|x| vaddvq_f32(*x)).sum();
            (iters * ACC as u64 * 4 * 2, sum)
        }
    }
}
