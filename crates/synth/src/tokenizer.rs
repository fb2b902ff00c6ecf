//! The smallest SentencePiece-style (`llama`) vocabulary llama.cpp loads: `<unk>`, `<s>`, `</s>`,
//! the 256 byte tokens `<0x00>`..`<0xFF>` (SPM falls back to them, and finds `\n` as `<0x0A>`),
//! then unique filler word pieces up to the requested size.

use gguf::{Array, Metadata, Value};
use std::collections::HashSet;

/// Special tokens plus byte tokens: the fewest a vocabulary can have.
pub const MIN_VOCAB: u64 = 3 + 256;
/// Keep the token list's size within what llama.cpp's int32 token ids address.
pub const MAX_VOCAB: u64 = i32::MAX as u64;

/// A vocabulary size the synthesizer cannot build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabError {
    #[error("vocabulary size {n_vocab} is out of range: it needs at least {MIN_VOCAB} tokens (3 special + 256 byte tokens) and at most {MAX_VOCAB}")]
    OutOfRange { n_vocab: u64 },
}

/// llama.cpp's `llama_token_type` values.
pub mod token_type {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const BYTE: i32 = 6;
}

pub const UNK_ID: u32 = 0;
pub const BOS_ID: u32 = 1;
pub const EOS_ID: u32 = 2;

/// SentencePiece's word-boundary marker, which llama.cpp's SPM turns back into a space.
const SPACE: &str = "\u{2581}";

/// Token texts, in id order: specials, bytes, then fillers (single printable ASCII characters,
/// `▁` + letter, letter pairs, `▁` + pairs, then numbered pieces), all distinct.
pub fn token_texts(n_vocab: u64) -> Result<Vec<String>, VocabError> {
    if !(MIN_VOCAB..=MAX_VOCAB).contains(&n_vocab) {
        return Err(VocabError::OutOfRange { n_vocab });
    }
    let n = n_vocab as usize;
    let mut tokens: Vec<String> = Vec::with_capacity(n);
    tokens.extend(["<unk>", "<s>", "</s>"].map(String::from));
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    let mut seen: HashSet<String> = tokens.iter().cloned().collect();
    let letters = || ('a'..='z').map(String::from);
    let pairs = || ('a'..='z').flat_map(|a| ('a'..='z').map(move |b| format!("{a}{b}")));
    let fillers = std::iter::once(SPACE.to_string())
        .chain((0x21u8..=0x7e).map(|c| (c as char).to_string()))
        .chain(letters().map(|l| format!("{SPACE}{l}")))
        .chain(pairs())
        .chain(pairs().map(|p| format!("{SPACE}{p}")))
        .chain((0u64..).map(|i| format!("{SPACE}tok{i}")));
    for piece in fillers {
        if tokens.len() == n {
            break;
        }
        if seen.insert(piece.clone()) {
            tokens.push(piece);
        }
    }
    Ok(tokens)
}

/// The `tokenizer.ggml.*` keys for an `n_vocab`-token SPM vocabulary.
pub fn spm_metadata(n_vocab: u64) -> Result<Metadata, VocabError> {
    let tokens = token_texts(n_vocab)?;
    let types: Vec<i32> = (0..tokens.len())
        .map(|i| match i {
            0 => token_type::UNKNOWN,
            1 | 2 => token_type::CONTROL,
            3..=258 => token_type::BYTE,
            _ => token_type::NORMAL,
        })
        .collect();
    // SPM merges the pair with the highest score first; earlier (shorter) pieces win.
    let scores: Vec<f32> = (0..tokens.len())
        .map(|i| {
            if i < MIN_VOCAB as usize {
                0.0
            } else {
                -(i as f32)
            }
        })
        .collect();
    let mut md = Metadata::default();
    md.insert("tokenizer.ggml.model", Value::String("llama".into()));
    md.insert("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    md.insert("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
    md.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    md.insert("tokenizer.ggml.bos_token_id", Value::U32(BOS_ID));
    md.insert("tokenizer.ggml.eos_token_id", Value::U32(EOS_ID));
    md.insert("tokenizer.ggml.unknown_token_id", Value::U32(UNK_ID));
    md.insert("tokenizer.ggml.add_bos_token", Value::Bool(true));
    md.insert("tokenizer.ggml.add_eos_token", Value::Bool(false));
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_has_specials_bytes_and_unique_fillers() {
        for n in [MIN_VOCAB, 300, 512, 2000, 32000] {
            let t = token_texts(n).unwrap();
            assert_eq!(t.len() as u64, n);
            assert_eq!(&t[..3], &["<unk>", "<s>", "</s>"]);
            assert_eq!(t[3], "<0x00>");
            assert_eq!(
                t[3 + 10],
                "<0x0A>",
                "llama.cpp's SPM finds the newline as <0x0A>"
            );
            assert_eq!(t[258], "<0xFF>");
            let unique: HashSet<&String> = t.iter().collect();
            assert_eq!(unique.len(), t.len(), "llama.cpp refuses duplicate tokens");
            assert!(t.iter().all(|s| !s.is_empty()));
        }
    }

    #[test]
    fn metadata_arrays_agree_in_length_and_types() {
        let md = spm_metadata(600).unwrap();
        assert_eq!(md.get_str("tokenizer.ggml.model"), Some("llama"));
        let len = |k: &str| md.get(k).and_then(Value::as_array).map(Array::len);
        assert_eq!(len("tokenizer.ggml.tokens"), Some(600));
        assert_eq!(len("tokenizer.ggml.scores"), Some(600));
        let Some(Value::Array(Array::I32(types))) = md.get("tokenizer.ggml.token_type") else {
            panic!("token_type is an i32 array")
        };
        assert_eq!(
            (types[0], types[1], types[2], types[3], types[258], types[259]),
            (2, 3, 3, 6, 6, 1)
        );
        assert_eq!(md.get_u64("tokenizer.ggml.bos_token_id"), Some(1));
    }

    #[test]
    fn too_small_a_vocabulary_is_refused() {
        let e = token_texts(100).unwrap_err();
        assert_eq!(e, VocabError::OutOfRange { n_vocab: 100 });
        assert!(e.to_string().contains("at least 259"), "{e}");
    }
}
