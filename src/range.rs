//! Value parsers that check a numeric flag's range while clap parses it: before any work or
//! allocation, with clap's message naming the flag, the value and the range. Each flag's doc
//! comment states its range; the bounds below are what the libraries can honour (llama.cpp's
//! limits, the trace formats' u16 ids) or what fits a machine's memory, never a wish.

use clap::builder::{RangedU64ValueParser, TypedValueParser};
use std::ops::RangeInclusive;

/// Transformer blocks a llama.cpp model may have (`LLAMA_MAX_LAYERS`).
pub const MAX_LAYERS: u64 = 512;
/// Context or sequence length in tokens: 16 Mi, beyond any model's training context.
pub const MAX_TOKENS: u64 = 1 << 24;
/// Bytes: 1 PiB, beyond any machine's memory or drive.
pub const MAX_BYTES: u64 = 1 << 50;
/// Threads: what llama.cpp accepts (`GGML_MAX_N_THREADS`); sweeps take as many.
pub const MAX_THREADS: u64 = 512;
/// Read requests in flight.
pub const MAX_QUEUE_DEPTH: u64 = 1024;

/// An integer flag in `range`, as `T` (usize, u32 or u64).
pub fn int<T>(range: RangeInclusive<u64>) -> RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    RangedU64ValueParser::<T>::new().range(range)
}

/// A finite number in `lo..=hi`.
pub fn float(lo: f64, hi: f64) -> impl TypedValueParser<Value = f64> {
    move |s: &str| -> Result<f64, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number"))?;
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{v} is not in {lo}..={hi}"))
        }
    }
}

/// A finite number in `lo..=hi`, as f32.
#[cfg(feature = "runtime")]
pub fn float32(lo: f32, hi: f32) -> impl TypedValueParser<Value = f32> {
    float(f64::from(lo), f64::from(hi)).map(|v| v as f32)
}

/// A byte count in `lo..=hi`, read as every byte option is (`8GiB`, `500MB`, `4096`;
/// `model::units::parse_bytes`).
pub fn bytes(lo: u64, hi: u64) -> impl TypedValueParser<Value = u64> {
    move |s: &str| -> Result<u64, String> {
        let b = model::units::parse_bytes(s).map_err(|e| e.to_string())?;
        if (lo..=hi).contains(&b) {
            Ok(b)
        } else {
            Err(format!("{s:?} is {b} bytes, not in {lo}..={hi}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[arg(long, value_parser = int::<usize>(1..=10))]
        n: Option<usize>,
        #[arg(long, value_parser = float(0.0, 1.0))]
        f: Option<f64>,
    }

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integers_outside_the_range_name_the_flag_and_the_range() {
        assert_eq!(parse(&["--n", "10"]).unwrap().n, Some(10));
        for bad in ["0", "11", "18446744073709551615", "-1", "1e3", "x"] {
            let e = parse(&[&format!("--n={bad}")]).err().expect(bad);
            assert!(e.contains("--n"), "{bad}: {e}");
        }
        let e = parse(&["--n", "11"]).err().unwrap();
        assert!(e.contains("1..=10"), "{e}");
    }

    #[test]
    fn floats_must_be_finite_and_in_range() {
        assert_eq!(parse(&["--f", "0.5"]).unwrap().f, Some(0.5));
        for bad in ["nan", "NaN", "inf", "-inf", "1.5", "-0.1", "x", ""] {
            let e = parse(&[&format!("--f={bad}")]).err().expect(bad);
            assert!(e.contains("--f"), "{bad}: {e}");
        }
    }
}
