//! The one error type of the crate: an I/O failure, a refused file name, or invalid content
//! with where it is ([`Location`]) and what is wrong (an enum per reader).

use crate::binary::BinaryError;
use crate::import::ImportError;
use crate::json::JsonError;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A trace file name whose extension names no form.
    #[error("{}: unknown trace extension; name the file *.json (JSON) or *.htrace (binary)", path.display())]
    UnknownExtension { path: PathBuf },
    /// [`crate::save`] without `force` to a file that exists.
    #[error("{}: already exists", path.display())]
    Exists { path: PathBuf },
    #[error("{}: is a directory; give a file name to write", path.display())]
    IsDir { path: PathBuf },
    #[error("{}: is not a regular file (a device, FIFO or socket); give a file name to write", path.display())]
    NotRegular { path: PathBuf },
    /// The JSON form is not JSON or breaks a rule of the format.
    #[error("{at}: {problem}")]
    Json { at: Location, problem: JsonError },
    /// The binary form breaks a rule of the format.
    #[error("{at}: {problem}")]
    Binary { at: Location, problem: BinaryError },
    /// Another tool's records that do not make a trace (boxed: some problems carry the
    /// records' text, and every Result of the crate would grow by them).
    #[error("{at}: {problem}")]
    Import {
        at: Location,
        problem: Box<ImportError>,
    },
}

/// A place in a file, as errors name it: `file`, `file:line`, `file:line:column` or
/// `file: byte N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub place: Place,
}

/// Where in the file (lines and columns count from 1, bytes from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The file as a whole.
    File,
    Line(u64),
    LineColumn {
        line: u64,
        column: u64,
    },
    Byte(u64),
}

impl Location {
    pub fn file(path: &Path) -> Location {
        Location::new(path, Place::File)
    }

    pub fn line(path: &Path, line: u64) -> Location {
        Location::new(path, Place::Line(line))
    }

    pub fn byte(path: &Path, byte: u64) -> Location {
        Location::new(path, Place::Byte(byte))
    }

    /// Where serde_json stood when `e` happened.
    pub fn json(path: &Path, e: &serde_json::Error) -> Location {
        Location::new(
            path,
            Place::LineColumn {
                line: e.line() as u64,
                column: e.column() as u64,
            },
        )
    }

    fn new(path: &Path, place: Place) -> Location {
        Location {
            path: path.to_path_buf(),
            place,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.place {
            Place::File => write!(f, "{path}"),
            Place::Line(line) => write!(f, "{path}:{line}"),
            Place::LineColumn { line, column } => write!(f, "{path}:{line}:{column}"),
            Place::Byte(byte) => write!(f, "{path}: byte {byte}"),
        }
    }
}

impl TraceError {
    /// Where invalid content is; None for I/O failures and refused file names.
    pub fn location(&self) -> Option<&Location> {
        match self {
            TraceError::Json { at, .. }
            | TraceError::Binary { at, .. }
            | TraceError::Import { at, .. } => Some(at),
            _ => None,
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> TraceError {
        TraceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn import(at: Location, problem: impl Into<ImportError>) -> TraceError {
        TraceError::Import {
            at,
            problem: Box::new(problem.into()),
        }
    }

    /// A serde_json error of a JSON-based importer's input, at its line and column.
    pub(crate) fn json_syntax(path: &Path, e: serde_json::Error) -> TraceError {
        TraceError::Json {
            at: Location::json(path, &e),
            problem: JsonError::Syntax(e),
        }
    }
}

/// A serde_json error's message without its " at line L column C" suffix.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}
