//! ggml tensor types: ids as stored in GGUF, block size and bytes per block (from ggml's `type_traits`).

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! ggml_types {
    ($( $variant:ident = $id:literal, $name:literal, $block:literal, $bytes:literal; )*) => {
        /// A ggml tensor element type that llama.cpp can load.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[allow(non_camel_case_types)]
        pub enum GgmlType { $( #[serde(rename = $name)] $variant, )* }

        impl GgmlType {
            /// Every type, in id order.
            pub const ALL: &'static [GgmlType] = &[ $( GgmlType::$variant, )* ];

            /// The id GGUF stores for this type.
            pub fn id(self) -> u32 { match self { $( GgmlType::$variant => $id, )* } }

            /// The name ggml and llama.cpp print (`Q4_K`, `F16`, ...).
            pub fn name(self) -> &'static str { match self { $( GgmlType::$variant => $name, )* } }

            /// Elements per quantization block.
            pub fn block_size(self) -> u64 { match self { $( GgmlType::$variant => $block, )* } }

            /// Bytes one block occupies.
            pub fn block_bytes(self) -> u64 { match self { $( GgmlType::$variant => $bytes, )* } }

            fn try_from_id(id: u32) -> Option<GgmlType> {
                match id { $( $id => Some(GgmlType::$variant), )* _ => None }
            }

            /// Parses a type name, case-insensitively (`q4_k`, `F16`).
            pub fn from_name(name: &str) -> Option<GgmlType> {
                Self::ALL.iter().copied().find(|t| t.name().eq_ignore_ascii_case(name))
            }
        }
    };
}

// Sizes are `sizeof(block_*)` from ggml-common.h. Q8_1 holds two halves (d, s), so 36 bytes;
// the PyPI `gguf` package still lists the pre-2024 40. NVFP4 and Q1_0 are newer than some
// llama.cpp releases but are listed so files using them get sized rather than rejected.
ggml_types! {
    F32 = 0, "F32", 1, 4;
    F16 = 1, "F16", 1, 2;
    Q4_0 = 2, "Q4_0", 32, 18;
    Q4_1 = 3, "Q4_1", 32, 20;
    Q5_0 = 6, "Q5_0", 32, 22;
    Q5_1 = 7, "Q5_1", 32, 24;
    Q8_0 = 8, "Q8_0", 32, 34;
    Q8_1 = 9, "Q8_1", 32, 36;
    Q2_K = 10, "Q2_K", 256, 84;
    Q3_K = 11, "Q3_K", 256, 110;
    Q4_K = 12, "Q4_K", 256, 144;
    Q5_K = 13, "Q5_K", 256, 176;
    Q6_K = 14, "Q6_K", 256, 210;
    Q8_K = 15, "Q8_K", 256, 292;
    IQ2_XXS = 16, "IQ2_XXS", 256, 66;
    IQ2_XS = 17, "IQ2_XS", 256, 74;
    IQ3_XXS = 18, "IQ3_XXS", 256, 98;
    IQ1_S = 19, "IQ1_S", 256, 50;
    IQ4_NL = 20, "IQ4_NL", 32, 18;
    IQ3_S = 21, "IQ3_S", 256, 110;
    IQ2_S = 22, "IQ2_S", 256, 82;
    IQ4_XS = 23, "IQ4_XS", 256, 136;
    I8 = 24, "I8", 1, 1;
    I16 = 25, "I16", 1, 2;
    I32 = 26, "I32", 1, 4;
    I64 = 27, "I64", 1, 8;
    F64 = 28, "F64", 1, 8;
    IQ1_M = 29, "IQ1_M", 256, 56;
    BF16 = 30, "BF16", 1, 2;
    TQ1_0 = 34, "TQ1_0", 256, 54;
    TQ2_0 = 35, "TQ2_0", 256, 66;
    MXFP4 = 39, "MXFP4", 32, 17;
    NVFP4 = 40, "NVFP4", 64, 36;
    Q1_0 = 41, "Q1_0", 128, 18;
}

/// Why a type id cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeIdError {
    /// The id belonged to a type ggml has since removed (Q4_2, Q4_0_4_4, ...).
    Removed(u32, &'static str),
    /// No ggml type ever had this id.
    Unknown(u32),
}

impl fmt::Display for TypeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeIdError::Removed(id, name) => write!(
                f,
                "ggml type {id} ({name}) was removed from ggml; re-quantize the model with a current llama.cpp"
            ),
            TypeIdError::Unknown(id) => write!(f, "unknown ggml type id {id}"),
        }
    }
}

impl std::error::Error for TypeIdError {}

impl TryFrom<u32> for GgmlType {
    type Error = TypeIdError;
    fn try_from(id: u32) -> Result<Self, TypeIdError> {
        if let Some(t) = GgmlType::try_from_id(id) {
            return Ok(t);
        }
        let removed = match id {
            4 => "Q4_2",
            5 => "Q4_3",
            31 => "Q4_0_4_4",
            32 => "Q4_0_4_8",
            33 => "Q4_0_8_8",
            36 => "IQ4_NL_4_4",
            37 => "IQ4_NL_4_8",
            38 => "IQ4_NL_8_8",
            _ => return Err(TypeIdError::Unknown(id)),
        };
        Err(TypeIdError::Removed(id, removed))
    }
}

impl GgmlType {
    /// Bytes of a row of `n` elements, or `None` when `n` is not a whole number of blocks.
    pub fn row_bytes(self, n: u64) -> Option<u64> {
        if n % self.block_size() != 0 {
            return None;
        }
        (n / self.block_size()).checked_mul(self.block_bytes())
    }

    /// Bytes of a tensor with dims `ne` (ne[0] is the contiguous row), or `None` when ne[0] is
    /// not a whole number of blocks or the size overflows u64.
    pub fn tensor_bytes(self, ne: &[u64]) -> Option<u64> {
        let (first, rest) = ne.split_first()?;
        let row = self.row_bytes(*first)?;
        rest.iter().try_fold(row, |acc, &d| acc.checked_mul(d))
    }

    /// Bits per weight, for tables.
    pub fn bits_per_weight(self) -> f64 {
        self.block_bytes() as f64 * 8.0 / self.block_size() as f64
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        for &t in GgmlType::ALL {
            assert_eq!(GgmlType::try_from(t.id()), Ok(t));
            assert_eq!(GgmlType::from_name(&t.name().to_lowercase()), Some(t));
        }
    }

    #[test]
    fn removed_and_unknown_ids_are_told_apart() {
        assert!(matches!(
            GgmlType::try_from(31),
            Err(TypeIdError::Removed(31, "Q4_0_4_4"))
        ));
        assert_eq!(GgmlType::try_from(999), Err(TypeIdError::Unknown(999)));
    }

    #[test]
    fn sizes_match_ggml() {
        // 4096 x 4096 Q4_K: 16 blocks per row of 144 bytes.
        assert_eq!(
            GgmlType::Q4_K.tensor_bytes(&[4096, 4096]),
            Some(4096 * 16 * 144)
        );
        assert_eq!(GgmlType::Q4_K.tensor_bytes(&[640, 1]), None);
        assert_eq!(GgmlType::F32.tensor_bytes(&[u64::MAX, 2]), None);
        assert!((GgmlType::Q4_K.bits_per_weight() - 4.5).abs() < 1e-9);
        assert!((GgmlType::Q8_0.bits_per_weight() - 8.5).abs() < 1e-9);
    }
}
