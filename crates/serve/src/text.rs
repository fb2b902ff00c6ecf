//! Generated text as clients receive it: token pieces are bytes, not always whole characters,
//! and a stop string may arrive split across tokens. [`TextStream`] turns pieces into text that
//! is safe to send now, holding back a character's first bytes and any tail that could begin a
//! stop string, and says when a stop string has appeared (the text before it is all that is
//! sent).

/// Pieces in, sendable text out.
#[derive(Debug)]
pub struct TextStream {
    stops: Vec<String>,
    /// Bytes received that do not form a whole character yet.
    bytes: Vec<u8>,
    /// Decoded text not yet released (it may begin a stop string).
    held: String,
    stopped: bool,
}

impl TextStream {
    /// Empty stop strings are ignored.
    pub fn new(stops: &[String]) -> TextStream {
        TextStream {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            bytes: Vec::new(),
            held: String::new(),
            stopped: false,
        }
    }

    /// Adds a token's bytes; returns the text that can be sent now.
    pub fn push(&mut self, piece: &[u8]) -> String {
        if self.stopped {
            return String::new();
        }
        self.bytes.extend_from_slice(piece);
        let whole = match std::str::from_utf8(&self.bytes) {
            Ok(s) => s.len(),
            // An incomplete character at the end waits; an invalid sequence is replaced.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.bytes.len(),
        };
        let text = String::from_utf8_lossy(&self.bytes[..whole]).into_owned();
        self.bytes.drain(..whole);
        self.held.push_str(&text);
        self.release()
    }

    /// Whether a stop string has appeared (nothing more is sent).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The text still held at the end of generation (a trailing partial character is replaced).
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        let rest = String::from_utf8_lossy(&self.bytes).into_owned();
        self.bytes.clear();
        self.held.push_str(&rest);
        std::mem::take(&mut self.held)
    }

    fn release(&mut self) -> String {
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.stopped = true;
            self.held.truncate(at);
            return std::mem::take(&mut self.held);
        }
        // Keep the longest tail that is a proper prefix of some stop string.
        let keep = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.held, s))
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        out
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop`, on a character
/// boundary of `text`.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = (stop.len() - 1).min(text.len());
    (1..=max)
        .rev()
        .find(|&n| {
            let start = text.len() - n;
            text.is_char_boundary(start) && stop.starts_with(&text[start..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stream(stops: &[&str], pieces: &[&[u8]]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut t = TextStream::new(&stops);
        let mut out = String::new();
        for p in pieces {
            out += &t.push(p);
        }
        out += &t.finish();
        (out, t.stopped())
    }

    #[test]
    fn characters_split_across_pieces_arrive_whole() {
        let e = "é".as_bytes();
        let mut t = TextStream::new(&[]);
        assert_eq!(t.push(&e[..1]), "");
        assert_eq!(t.push(&e[1..]), "é");
        assert_eq!(stream(&[], &[b"a\xff", b"b"]).0, "a\u{fffd}b");
        assert_eq!(stream(&[], &[b"a", &e[..1]]).0, "a\u{fffd}");
    }

    #[test]
    fn text_before_a_stop_string_is_sent_and_nothing_after() {
        assert_eq!(
            stream(&["END"], &[b"one E", b"N", b"D two"]),
            ("one ".into(), true)
        );
        assert_eq!(
            stream(&["END"], &[b"one EN", b"d"]),
            ("one ENd".into(), false)
        );
        // The earliest of several stops wins.
        assert_eq!(stream(&["b", "a"], &[b"xxab"]), ("xx".into(), true));
        let mut t = TextStream::new(&["\n\n".into()]);
        assert_eq!(t.push(b"hi\n"), "hi");
        assert_eq!(t.push(b"there"), "\nthere");
    }

    proptest! {
        /// Against the oracle: the whole text cut at the first stop string, however the bytes
        /// are split into pieces.
        #[test]
        fn any_split_gives_the_text_cut_at_the_first_stop(
            text in "[ab\u{e9}\u{4e2d} ]{0,40}",
            stop in "[ab\u{e9}]{1,3}",
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                pieces.push(&bytes[last..c]);
                last = c;
            }
            let want = match text.find(&stop) {
                Some(at) => (text[..at].to_string(), true),
                None => (text.clone(), false),
            };
            prop_assert_eq!(stream(&[&stop], &pieces), want);
        }
    }
}
