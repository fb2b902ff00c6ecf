//! Plain-text tables and human-readable byte counts for command output.

/// A table printed with columns padded to their widest cell: columns whose cells all start with
/// a digit (or are `-`) are right-aligned, the rest left-aligned.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut width = vec![0usize; n];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let numeric: Vec<bool> = (0..n)
            .map(|i| {
                self.rows.iter().all(|r| {
                    r.get(i)
                        .is_none_or(|c| c == "-" || c.starts_with(|ch: char| ch.is_ascii_digit()))
                })
            })
            .collect();
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (c, w)) in r.iter().zip(&width).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(w - c.chars().count());
                if !numeric[i] {
                    line.push_str(c);
                    line.push_str(&pad);
                } else {
                    line.push_str(&pad);
                    line.push_str(c);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Bytes as B / KiB / MiB / GiB / TiB with two decimals (binary units).
pub fn bytes(n: u64) -> String {
    model::units::human_bytes(n)
}

/// A fraction as a percentage with one decimal.
pub fn percent(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(3 << 30), "3.00 GiB");
        let mut t = Table::new(["a", "bb"]);
        t.row(["xyz", "1"]);
        assert_eq!(t.render(), "a    bb\nxyz   1\n");
        let mut t = Table::new(["n", "name"]);
        t.row(["10", "x"]);
        t.row(["2", "-"]);
        assert_eq!(t.render(), " n  name\n10  x\n 2  -\n");
    }
}
