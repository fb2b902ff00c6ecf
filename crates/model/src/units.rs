//! Human-readable quantities for messages and tables.

/// Bytes in binary units with two decimals: `10 B`, `1.50 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Why a byte count could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BytesError {
    #[error("{text:?} is not a byte count such as 8GiB, 500MB or 4096")]
    NotANumber { text: String },
    #[error("{text:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB; K, M, G, T are KiB, MiB, GiB, TiB)")]
    UnknownUnit { text: String, unit: String },
    #[error("{text:?} is more bytes than 64 bits count")]
    TooLarge { text: String },
}

/// Reads a byte count the way every hypura option takes one: a number (a decimal point is
/// allowed) and an optional unit, case-insensitive, with or without a space: `B`; `KiB`,
/// `MiB`, `GiB`, `TiB` (powers of 1024, also written `K`, `M`, `G`, `T`); `KB`, `MB`, `GB`,
/// `TB` (powers of 1000). `8GiB`, `1.5g`, `500MB`, `4096`. Fractions of a byte round to the
/// nearest.
pub fn parse_bytes(text: &str) -> Result<u64, BytesError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = match number.parse() {
        Ok(v) if !number.is_empty() => v,
        _ => {
            return Err(BytesError::NotANumber {
                text: text.to_string(),
            })
        }
    };
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(BytesError::UnknownUnit {
                text: text.to_string(),
                unit: other.to_string(),
            })
        }
    };
    let bytes = (value * scale).round();
    // 2^64 as f64 is exact; anything at or above it (infinity too) does not fit.
    if bytes >= 18_446_744_073_709_551_616.0 {
        return Err(BytesError::TooLarge {
            text: text.to_string(),
        });
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::{parse_bytes, BytesError};

    #[test]
    fn byte_counts_in_every_unit_and_the_refusals() {
        for (text, want) in [
            ("0", 0),
            ("4096", 4096),
            ("8GiB", 8 << 30),
            ("8 GiB", 8 << 30),
            ("8gib", 8 << 30),
            ("1.5g", 3 << 29),
            ("64k", 65536),
            ("2T", 2 << 40),
            ("500MB", 500_000_000),
            ("2gb", 2_000_000_000),
            ("1.5KB", 1500),
            ("0.5", 1),
            ("16TiB", 16 << 40),
        ] {
            assert_eq!(parse_bytes(text), Ok(want), "{text}");
        }
        assert!(matches!(
            parse_bytes(""),
            Err(BytesError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_bytes("GiB"),
            Err(BytesError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_bytes("-1"),
            Err(BytesError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_bytes("1.2.3G"),
            Err(BytesError::NotANumber { .. })
        ));
        assert!(matches!(
            parse_bytes("2 parsecs"),
            Err(BytesError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_bytes("8GiBs"),
            Err(BytesError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_bytes("16777216TiB"),
            Err(BytesError::TooLarge { .. })
        ));
        assert_eq!(parse_bytes("16777215TiB"), Ok(16_777_215 << 40));
    }

    #[test]
    fn human_bytes() {
        assert_eq!(super::human_bytes(10), "10 B");
        assert_eq!(super::human_bytes(1536), "1.50 KiB");
        assert_eq!(super::human_bytes(3 << 29), "1.50 GiB");
    }
}
