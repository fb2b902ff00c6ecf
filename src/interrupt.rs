//! Ctrl-C while a chat reply is generated: the signal handler sets [`STOP`] instead of ending
//! the process, and the generation loop stops at the next token.

use std::sync::atomic::AtomicBool;

/// Set while a reply is being generated.
pub static REPLYING: AtomicBool = AtomicBool::new(false);
/// Set by Ctrl-C during a reply; cleared when the next reply starts.
pub static STOP: AtomicBool = AtomicBool::new(false);
