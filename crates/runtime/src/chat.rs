//! Chat turns as the model expects them: llama.cpp's chat templates (the GGUF's own
//! `tokenizer.chat_template`, matched to llama.cpp's built-in list, or a built-in one by name
//! such as `chatml` or `gemma`) applied to a conversation.

use crate::error::{Error, Result};
use crate::model::Model;
use hypura_sys as sys;
use std::ffi::{CStr, CString};

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Model {
    /// The chat template the GGUF carries (`tokenizer.chat_template`), if any.
    pub fn chat_template(&self) -> Option<String> {
        // SAFETY: the model is live; the returned string is owned by it (or NULL).
        let p = unsafe { sys::llama_model_chat_template(self.raw(), std::ptr::null()) };
        if p.is_null() {
            return None;
        }
        // SAFETY: NUL-terminated, valid while the model is.
        Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }
}

/// The built-in template for an architecture whose GGUF carries none: Gemma's for gemma, else
/// chatml.
pub fn fallback_template(arch: &str) -> &'static str {
    match arch {
        "gemma" | "gemma2" | "gemma3" => "gemma",
        _ => "chatml",
    }
}

/// `messages` formatted with `template` (a Jinja template llama.cpp recognises, or a built-in
/// template's name), ending with the assistant's turn opened when `open_reply`.
pub fn apply_template(template: &str, messages: &[Message], open_reply: bool) -> Result<String> {
    let bad = |what: &str| Error::ChatTemplate(format!("{what}: {}", short(template)));
    let tmpl = CString::new(template).map_err(|_| bad("a NUL byte in the template"))?;
    let owned: Vec<(CString, CString)> = messages
        .iter()
        .map(|m| {
            Ok((
                CString::new(m.role.as_str()).map_err(|_| bad("a NUL byte in a role"))?,
                CString::new(m.content.as_str()).map_err(|_| bad("a NUL byte in a message"))?,
            ))
        })
        .collect::<Result<_>>()?;
    let chat: Vec<sys::llama_chat_message> = owned
        .iter()
        .map(|(r, c)| sys::llama_chat_message {
            role: r.as_ptr(),
            content: c.as_ptr(),
        })
        .collect();
    let total: usize = messages
        .iter()
        .map(|m| m.content.len() + m.role.len())
        .sum();
    let mut buf = vec![0u8; 2 * total + 256];
    for _ in 0..2 {
        let len = i32::try_from(buf.len()).map_err(|_| bad("a conversation over 2 GiB"))?;
        // SAFETY: every pointer is valid for the call (owned strings, chat, buf of len bytes).
        let n = unsafe {
            sys::llama_chat_apply_template(
                tmpl.as_ptr(),
                chat.as_ptr(),
                chat.len(),
                open_reply,
                buf.as_mut_ptr().cast(),
                len,
            )
        };
        if n < 0 {
            return Err(bad("llama.cpp does not know this chat template"));
        }
        let n = n as usize;
        if n <= buf.len() {
            buf.truncate(n);
            return String::from_utf8(buf).map_err(|_| bad("the formatted chat is not UTF-8"));
        }
        buf.resize(n, 0);
    }
    Err(bad("the formatted chat kept growing"))
}

/// The first line of a template, shortened, for messages.
fn short(template: &str) -> String {
    let line = template.lines().next().unwrap_or("");
    match line.char_indices().nth(60) {
        Some((i, _)) => format!("{:?}...", &line[..i]),
        None => format!("{line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn built_in_templates_format_turns_as_their_models_expect() {
        let chat = [
            msg("user", "Hi"),
            msg("assistant", "Hello!"),
            msg("user", "Bye"),
        ];
        assert_eq!(
            apply_template("chatml", &chat, true).unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n\
             <|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            apply_template("gemma", &chat[..1], true).unwrap(),
            "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
        // Without the opened reply, a conversation is a prefix of itself continued.
        let closed = apply_template("chatml", &chat[..2], false).unwrap();
        assert!(apply_template("chatml", &chat, true)
            .unwrap()
            .starts_with(&closed));
        assert!(matches!(
            apply_template("no-such-template", &chat, true),
            Err(Error::ChatTemplate(_))
        ));
    }
}
