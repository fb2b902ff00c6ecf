//! Errors from loading a hardware profile: each names the file and, where there is one, the key.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HwError {
    #[error("cannot read hardware profile {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax errors, unknown keys, missing keys and wrong types.
    #[error("{}", ParseDisplay { origin, location: *location, key, message })]
    Parse {
        origin: String,
        location: Option<(usize, usize)>,
        key: String,
        message: String,
    },
    /// A value out of range or sections that contradict each other.
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

impl HwError {
    pub(crate) fn invalid(origin: &str, key: &str, message: impl Into<String>) -> HwError {
        HwError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The key path the error is about (`storage.read_curve[3].queue_depth`), if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            HwError::Io { .. } => None,
            HwError::Parse { key, .. } | HwError::Invalid { key, .. } => {
                (!key.is_empty()).then_some(key.as_str())
            }
        }
    }
}

struct ParseDisplay<'a> {
    origin: &'a str,
    location: Option<(usize, usize)>,
    key: &'a str,
    message: &'a str,
}

impl fmt::Display for ParseDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message.trim_end())?;
        if self.message.starts_with("unknown field") {
            write!(f, " (profiles/README.md lists the schema's keys)")?;
        }
        Ok(())
    }
}
