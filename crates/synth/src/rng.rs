//! The synthesizer's PRNG: xoshiro256** seeded through splitmix64 (from `seeded`), so output is
//! reproducible from a seed.

pub use seeded::splitmix64;

/// FNV-1a of a string, to give each tensor its own stream independent of write order.
pub fn hash_name(name: &str) -> u64 {
    seeded::fnv1a(name.as_bytes())
}

/// xoshiro256** ([`seeded::Xoshiro256`]) with the synthesizer's streams and fills.
#[derive(Debug, Clone)]
pub struct Rng(seeded::Xoshiro256);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seeded::Xoshiro256::new(seed))
    }

    /// A stream for one tensor: depends on the file seed and the tensor name only.
    pub fn for_tensor(seed: u64, name: &str) -> Rng {
        let mut mix = seed ^ hash_name(name).rotate_left(17);
        Rng::new(splitmix64(&mut mix))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [-1, 1).
    #[inline]
    pub fn next_signed_unit(&mut self) -> f32 {
        // 24 high bits give every representable step of an f32 in [0, 1).
        let u = (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32);
        2.0 * u - 1.0
    }

    /// Fills `buf` with random bytes.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let v = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&v[..rest.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_streams_differ_by_seed_and_name() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(8);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(
            Rng::for_tensor(1, "a").next_u64(),
            Rng::for_tensor(1, "b").next_u64()
        );
        assert_ne!(
            Rng::for_tensor(1, "a").next_u64(),
            Rng::for_tensor(2, "a").next_u64()
        );
    }

    #[test]
    fn signed_unit_stays_in_range_and_spreads() {
        let mut r = Rng::new(3);
        let v: Vec<f32> = (0..10_000).map(|_| r.next_signed_unit()).collect();
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!(v.iter().any(|&x| x > 0.9) && v.iter().any(|&x| x < -0.9));
    }

    #[test]
    fn fill_bytes_handles_a_ragged_tail() {
        let mut a = [0u8; 13];
        Rng::new(1).fill_bytes(&mut a);
        let mut b = [0u8; 16];
        Rng::new(1).fill_bytes(&mut b);
        assert_eq!(&a[..8], &b[..8]);
        assert_eq!(&a[8..13], &b[8..13]);
    }
}
