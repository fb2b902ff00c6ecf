//! The profiles in the repository's `profiles/` directory, built into the library so that a
//! command can name one (`--hw m1max`) from any directory. Each is the file's text, parsed and
//! validated when asked for, exactly as [`HwProfile::load`] reads the file.

use crate::{HwError, HwProfile};

/// One shipped profile.
#[derive(Debug, Clone, Copy)]
pub struct Shipped {
    /// The file's stem in `profiles/`: what `--hw` takes.
    pub name: &'static str,
    /// Shorter names `--hw` also takes.
    pub aliases: &'static [&'static str],
    text: &'static str,
}

macro_rules! shipped {
    ($name:literal, [$($alias:literal),*]) => {
        Shipped {
            name: $name,
            aliases: &[$($alias),*],
            text: include_str!(concat!("../../../profiles/", $name, ".toml")),
        }
    };
}

/// Every shipped profile, in the order `hypura list profiles` shows them.
pub const SHIPPED: &[Shipped] = &[
    shipped!("m1max", []),
    shipped!("m2max", []),
    shipped!("m3max", []),
    shipped!("m4max", []),
    shipped!("m4-16g", ["m4"]),
    shipped!("h100-pcie-80g", ["h100"]),
    shipped!("h200-141g", ["h200"]),
];

impl Shipped {
    /// The profile, parsed and validated; errors name it as `shipped profile NAME`.
    pub fn load(&self) -> Result<HwProfile, HwError> {
        HwProfile::from_toml_str(self.text, &format!("shipped profile {}", self.name))
    }

    /// The TOML text, comments included (what `profiles/NAME.toml` holds).
    pub fn text(&self) -> &'static str {
        self.text
    }
}

/// The shipped profile called `name` (its file stem, with or without `.toml`, or an alias).
pub fn find(name: &str) -> Option<&'static Shipped> {
    let name = name.strip_suffix(".toml").unwrap_or(name);
    SHIPPED
        .iter()
        .find(|s| s.name == name || s.aliases.contains(&name))
}

/// The names `--hw` takes, for messages: `m1max, m2max, ..., h200-141g (h200)`.
pub fn names() -> String {
    SHIPPED
        .iter()
        .map(|s| match s.aliases {
            [] => s.name.to_string(),
            a => format!("{} ({})", s.name, a.join(", ")),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn profiles_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles")
    }

    #[test]
    fn every_file_in_profiles_is_shipped_and_loads_as_the_file_does() {
        let mut stems: Vec<String> = std::fs::read_dir(profiles_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        stems.sort();
        let mut names: Vec<String> = SHIPPED.iter().map(|s| s.name.to_string()).collect();
        names.sort();
        assert_eq!(stems, names, "profiles/*.toml against SHIPPED");
        for s in SHIPPED {
            let file = HwProfile::load(profiles_dir().join(format!("{}.toml", s.name))).unwrap();
            assert_eq!(s.load().unwrap(), file, "{}", s.name);
        }
    }

    #[test]
    fn names_aliases_and_the_toml_suffix_find_a_profile_and_nothing_else_does() {
        assert_eq!(find("m1max").unwrap().name, "m1max");
        assert_eq!(find("m1max.toml").unwrap().name, "m1max");
        assert_eq!(find("h200").unwrap().name, "h200-141g");
        assert_eq!(find("h100-pcie-80g").unwrap().name, "h100-pcie-80g");
        assert!(find("M1MAX").is_none());
        assert!(find("").is_none());
        assert!(find("profiles/m1max.toml").is_none());
        // Aliases never collide with another profile's name.
        for s in SHIPPED {
            for a in s.aliases {
                assert_eq!(find(a).unwrap().name, s.name);
            }
        }
        assert!(names().contains("h200-141g (h200)"));
    }
}
