//! Writing a profile as TOML with a comment on each value saying where it came from.

use super::schema::HwProfile;
use std::collections::BTreeMap;

/// Per-key provenance notes. Keys are dotted paths (`gpu.name`, `ram.bandwidth_gbps`); entries
/// of the read curve use `storage.read_curve[].gbps`, shared by every point.
pub type Notes = BTreeMap<String, String>;

impl HwProfile {
    /// [`HwProfile::to_toml`] with `header` as leading comment lines and each value followed by
    /// `# note` where `notes` has one for its key. Loads back exactly like `to_toml`'s output.
    pub fn to_toml_annotated(&self, header: &str, notes: &Notes) -> String {
        let mut out = String::new();
        for line in header.lines() {
            out.push_str(format!("# {line}").trim_end());
            out.push('\n');
        }
        if !header.is_empty() {
            out.push('\n');
        }
        let mut section = String::new();
        for line in self.to_toml().lines() {
            let trimmed = line.trim();
            if let Some(name) = trimmed
                .strip_prefix("[[")
                .and_then(|s| s.strip_suffix("]]"))
            {
                section = format!("{name}[]");
            } else if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                section = name.to_string();
            }
            out.push_str(line);
            if let Some((key, _)) = trimmed.split_once(" = ") {
                let path = if section.is_empty() {
                    key.to_string()
                } else {
                    format!("{section}.{key}")
                };
                if let Some(note) = notes.get(&path) {
                    out.push_str("  # ");
                    out.push_str(&note.replace(['\n', '\r'], " "));
                }
            }
            out.push('\n');
        }
        out
    }
}
