//! ggml block encodings the synthesizer writes: f16 conversion, Q8_0 and Q4_0 quantize/dequantize
//! (bit-compatible with ggml's reference `quantize_row_*_ref`), and fast random blocks.

use super::rng::Rng;

/// Elements per Q8_0 / Q4_0 block.
pub const QK: usize = 32;
/// Bytes of one Q8_0 block: f16 scale + 32 int8.
pub const Q8_0_BLOCK_BYTES: usize = 2 + QK;
/// Bytes of one Q4_0 block: f16 scale + 16 bytes of nibbles.
pub const Q4_0_BLOCK_BYTES: usize = 2 + QK / 2;

/// IEEE 754 binary32 to binary16 bits, rounding to nearest even (what ggml's FP32_TO_FP16 does).
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        // Infinity stays infinity; NaN keeps a set quiet bit so it stays NaN.
        return sign
            | 0x7c00
            | if man != 0 {
                0x200 | (man >> 13) as u16
            } else {
                0
            };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let (h, rem, half) = (m >> shift, m & ((1 << shift) - 1), 1u32 << (shift - 1));
        let round_up = rem > half || (rem == half && h & 1 == 1);
        return sign | (h + round_up as u32) as u16;
    }
    let h = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    // A carry out of the mantissa bumps the exponent, which is the correct rounding (up to infinity).
    let round_up = rem > 0x1000 || (rem == 0x1000 && h & 1 == 1);
    sign | (h + round_up as u32) as u16
}

/// binary16 bits to binary32 (exact).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if man == 0 => sign,
        0 => {
            // Subnormal: shift the mantissa up until the implicit bit appears.
            let (mut e, mut m) = (113u32, man);
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((m & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Encodes 32 values as a Q8_0 block: scale d = max|x| / 127, q = round(x / d).
pub fn quantize_q8_0(x: &[f32; QK]) -> [u8; Q8_0_BLOCK_BYTES] {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut out = [0u8; Q8_0_BLOCK_BYTES];
    out[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    for (o, v) in out[2..].iter_mut().zip(x) {
        *o = ((v * id).round() as i8) as u8;
    }
    out
}

/// Decodes a Q8_0 block.
pub fn dequantize_q8_0(block: &[u8; Q8_0_BLOCK_BYTES]) -> [f32; QK] {
    let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
    std::array::from_fn(|j| block[2 + j] as i8 as f32 * d)
}

/// Encodes 32 values as a Q4_0 block: d = (the value of largest magnitude) / -8, nibble
/// q = x / d + 8 clamped to 15; byte j holds element j in its low nibble and j + 16 in its high.
pub fn quantize_q4_0(x: &[f32; QK]) -> [u8; Q4_0_BLOCK_BYTES] {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut out = [0u8; Q4_0_BLOCK_BYTES];
    out[..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
    // ggml truncates (x + 8.5) toward zero, which rounds to nearest for the in-range values.
    let nibble = |v: f32| ((v * id + 8.5) as i8).clamp(0, 15) as u8;
    for j in 0..QK / 2 {
        out[2 + j] = nibble(x[j]) | (nibble(x[j + QK / 2]) << 4);
    }
    out
}

/// Decodes a Q4_0 block.
pub fn dequantize_q4_0(block: &[u8; Q4_0_BLOCK_BYTES]) -> [f32; QK] {
    let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
    let mut y = [0f32; QK];
    for j in 0..QK / 2 {
        let b = block[2 + j];
        y[j] = ((b & 0x0f) as i32 - 8) as f32 * d;
        y[j + QK / 2] = ((b >> 4) as i32 - 8) as f32 * d;
    }
    y
}

/// 256 scales between 3/4 and 1 of `full` as f16 bytes; a random byte picks each block's, so
/// blocks are not all alike and no float conversion happens per block.
fn scale_table(full: f32) -> [[u8; 2]; 256] {
    std::array::from_fn(|i| f32_to_f16(full * (0.75 + 0.25 * i as f32 / 255.0)).to_le_bytes())
}

/// Fills `out` (whole Q8_0 blocks) with random blocks whose values lie within ±`amplitude`.
/// Codes are drawn directly, which is far faster than quantizing random floats and just as valid.
pub fn random_q8_0_blocks(rng: &mut Rng, amplitude: f32, out: &mut [u8]) {
    debug_assert_eq!(out.len() % Q8_0_BLOCK_BYTES, 0);
    let scales = scale_table(amplitude / 127.0);
    for block in out.chunks_exact_mut(Q8_0_BLOCK_BYTES) {
        block[..2].copy_from_slice(&scales[(rng.next_u64() >> 56) as usize]);
        rng.fill_bytes(&mut block[2..]);
        // -128 (0x80) is outside what ggml's quantizer produces; fold it to -127 (0x81).
        for q in &mut block[2..] {
            *q |= (*q == 0x80) as u8;
        }
    }
}

/// Fills `out` (whole Q4_0 blocks) with random blocks whose values lie within ±`amplitude`.
pub fn random_q4_0_blocks(rng: &mut Rng, amplitude: f32, out: &mut [u8]) {
    debug_assert_eq!(out.len() % Q4_0_BLOCK_BYTES, 0);
    let scales = scale_table(amplitude / 8.0);
    for block in out.chunks_exact_mut(Q4_0_BLOCK_BYTES) {
        let (a, b) = (rng.next_u64(), rng.next_u64());
        block[..2].copy_from_slice(&scales[(rng.next_u64() >> 56) as usize]);
        block[2..10].copy_from_slice(&a.to_le_bytes());
        block[10..18].copy_from_slice(&b.to_le_bytes());
    }
}

/// 65536 f16 values evenly spread over (-amplitude, amplitude): 16 random bits pick one, so
/// four values come from each 64-bit draw.
pub struct F16Table(Box<[u16]>);

impl F16Table {
    pub fn new(amplitude: f32) -> F16Table {
        let table = (0..1u32 << 16)
            .map(|i| f32_to_f16(amplitude * ((i as f32 + 0.5) / 32768.0 - 1.0)))
            .collect();
        F16Table(table)
    }

    /// Fills `out` (an even number of bytes) with random f16 values.
    pub fn fill(&self, rng: &mut Rng, out: &mut [u8]) {
        debug_assert_eq!(out.len() % 2, 0);
        let mut chunks = out.chunks_exact_mut(8);
        for c in &mut chunks {
            let r = rng.next_u64();
            for (k, pair) in c.chunks_exact_mut(2).enumerate() {
                pair.copy_from_slice(&self.0[(r >> (16 * k)) as usize & 0xffff].to_le_bytes());
            }
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let r = rng.next_u64();
            for (k, pair) in rest.chunks_exact_mut(2).enumerate() {
                pair.copy_from_slice(&self.0[(r >> (16 * k)) as usize & 0xffff].to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trips_every_finite_value() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f16_to_f32(f32_to_f16(f)).is_nan());
                continue;
            }
            assert_eq!(f32_to_f16(f), h, "f16 {h:#06x} -> {f}");
        }
    }

    #[test]
    fn f16_rounds_to_nearest_even_and_saturates() {
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
        assert_eq!(f32_to_f16(65504.0), 0x7bff);
        assert_eq!(f32_to_f16(1e6), 0x7c00);
        assert_eq!(f32_to_f16(1e-9), 0);
        // 1 + 2^-11 is halfway between 1 and the next f16: ties to the even (1.0).
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        // The smallest subnormal, 2^-24, and half of it (a tie, to even = 0).
        assert_eq!(f32_to_f16(2f32.powi(-24)), 1);
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0);
        assert_eq!(f32_to_f16(1.5 * 2f32.powi(-25)), 1);
    }

    fn sample() -> [f32; QK] {
        let mut rng = Rng::new(11);
        std::array::from_fn(|_| 0.05 * rng.next_signed_unit())
    }

    #[test]
    fn q8_0_block_decodes_to_its_values() {
        let x = sample();
        let block = quantize_q8_0(&x);
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]]));
        assert!((d - amax / 127.0).abs() <= amax / 127.0 * 1e-3, "scale {d}");
        let y = dequantize_q8_0(&block);
        for (a, b) in x.iter().zip(&y) {
            // Half a step of rounding plus the f16 error of the scale times 127.
            assert!((a - b).abs() <= 0.5 * d + 127.0 * d * 1e-3, "{a} vs {b}");
        }
        // The element of largest magnitude lands on ±127.
        let i = x
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        assert_eq!((block[2 + i] as i8).unsigned_abs(), 127);
    }

    #[test]
    fn q4_0_block_decodes_to_its_values() {
        let x = sample();
        let block = quantize_q4_0(&x);
        let d = f16_to_f32(u16::from_le_bytes([block[0], block[1]])).abs();
        let y = dequantize_q4_0(&block);
        // Half a step of rounding, except that the side opposite the largest value only reaches
        // 7 steps (ggml clamps the nibble to 15), so values there may be off by up to one step.
        let peak = *x.iter().max_by(|a, b| a.abs().total_cmp(&b.abs())).unwrap();
        for (a, b) in x.iter().zip(&y) {
            let err = (a - b).abs();
            let clamped = a.signum() != peak.signum() && a.abs() > 7.0 * d;
            let bound = if clamped { d } else { 0.5 * d };
            assert!(err <= bound + 8.0 * d * 1e-3, "{a} vs {b} (d {d})");
        }
        // Nibble layout: byte j's low nibble is element j, high nibble element j + 16.
        let mut x2 = [0f32; QK];
        x2[0] = -8.0;
        x2[16] = 7.0;
        let b2 = quantize_q4_0(&x2);
        assert_eq!(f16_to_f32(u16::from_le_bytes([b2[0], b2[1]])), 1.0);
        assert_eq!(b2[2], 15 << 4);
        assert_eq!(dequantize_q4_0(&b2)[0], -8.0);
        assert_eq!(dequantize_q4_0(&b2)[16], 7.0);
        assert!(b2[3..].iter().all(|&b| b == 0x88), "zeros encode as 8");
    }

    #[test]
    fn zero_block_has_zero_scale() {
        let z = [0f32; QK];
        assert_eq!(dequantize_q8_0(&quantize_q8_0(&z)), z);
        assert_eq!(dequantize_q4_0(&quantize_q4_0(&z)), z);
    }

    #[test]
    fn random_blocks_stay_within_amplitude() {
        let mut rng = Rng::new(5);
        let mut q8 = vec![0u8; Q8_0_BLOCK_BYTES * 64];
        random_q8_0_blocks(&mut rng, 0.05, &mut q8);
        let mut q4 = vec![0u8; Q4_0_BLOCK_BYTES * 64];
        random_q4_0_blocks(&mut rng, 0.05, &mut q4);
        let mut seen_large = false;
        for b in q8.chunks_exact(Q8_0_BLOCK_BYTES) {
            for v in dequantize_q8_0(b.try_into().unwrap()) {
                assert!(v.is_finite() && v.abs() <= 0.0501, "{v}");
                seen_large |= v.abs() > 0.03;
            }
        }
        for b in q4.chunks_exact(Q4_0_BLOCK_BYTES) {
            for v in dequantize_q4_0(b.try_into().unwrap()) {
                assert!(v.is_finite() && v.abs() <= 0.0501, "{v}");
            }
        }
        assert!(seen_large);
        let table = F16Table::new(0.05);
        let mut f16s = vec![0u8; 2 * 1001];
        table.fill(&mut rng, &mut f16s);
        let vals: Vec<f32> = f16s
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect();
        assert!(vals.iter().all(|v| v.abs() <= 0.05));
        assert!(vals.iter().any(|v| *v > 0.04) && vals.iter().any(|v| *v < -0.04));
    }
}
