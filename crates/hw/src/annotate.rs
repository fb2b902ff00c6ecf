//! Writing a profile as TOML with a comment on each value saying where it came from.

use super::schema::HwProfile;
use std::collections::BTreeMap;

/// Per-key provenance notes. Keys are dotted paths (`gpu.name`, `ram.bandwidth_gbps`); entries
/// of the read curve use `storage.read_curve[].gbps`, shared by every point.
pub type Notes = BTreeMap<String, String>;

impl HwProfile {
    /// [`HwProfile::to_toml`] with `header` as leading comment lines and each value followed by
    /// `# note` where `notes` has one for its key. Loads back exactly like `to_toml`'s output.
    /// The comments go through `toml_edit`, so a value spanning lines (a multi-line string)
    /// gets its comment after its end, never inside it.
    pub fn to_toml_annotated(&self, header: &str, notes: &Notes) -> String {
        let mut out = String::new();
        for line in header.lines() {
            out.push_str(format!("# {line}").trim_end());
            out.push('\n');
        }
        if !header.is_empty() {
            out.push('\n');
        }
        let plain = self.to_toml();
        match plain.parse::<toml_edit::DocumentMut>() {
            Ok(mut doc) => {
                annotate_table(doc.as_table_mut(), "", notes);
                out.push_str(&doc.to_string());
            }
            // The serializer's own output always parses; without comments if it ever did not.
            Err(_) => out.push_str(&plain),
        }
        out
    }
}

/// Puts `# note` after every value of `table` (dotted path `prefix`) that `notes` has one for;
/// arrays of tables share the path `name[]`.
fn annotate_table(table: &mut toml_edit::Table, prefix: &str, notes: &Notes) {
    for (key, item) in table.iter_mut() {
        let path = if prefix.is_empty() {
            key.get().to_string()
        } else {
            format!("{prefix}.{}", key.get())
        };
        match item {
            toml_edit::Item::Value(v) => {
                if let Some(note) = notes.get(&path) {
                    let note = note.replace(['\n', '\r'], " ");
                    v.decor_mut().set_suffix(format!("  # {note}"));
                }
            }
            toml_edit::Item::Table(t) => annotate_table(t, &path, notes),
            toml_edit::Item::ArrayOfTables(a) => {
                for t in a.iter_mut() {
                    annotate_table(t, &format!("{path}[]"), notes);
                }
            }
            toml_edit::Item::None => {}
        }
    }
}
