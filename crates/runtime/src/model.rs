//! A loaded llama.cpp model: load parameters (load mode, extra buffer types, which tensors go to
//! the streamed-weights buffer type), the tensors that ended up streamed, tokenization.

use crate::backend;
use crate::error::{Error, Result, TokenizeError};
use hypura_sys as sys;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

/// How llama.cpp reads resident weights at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// llama.cpp's default (mmap where supported). Note: it prefetches the whole file.
    Default,
    /// Plain (buffered) reads into anonymous memory; streamed tensors are not read at all. Kernel
    /// readahead around the resident tensors still caches neighbouring (streamed) file pages.
    Read,
    /// Like `Read` with O_DIRECT (llama.cpp's `dio` mode, buffered where unsupported): nothing
    /// passes through the page cache.
    DirectIo,
}

/// What to load and where.
#[derive(Debug, Clone)]
pub struct ModelParams {
    pub load_mode: LoadMode,
    /// llama.cpp's CPU "extra" buffer types (weight repacking into anonymous copies).
    pub use_extra_bufts: bool,
    /// Regexes (searched in full tensor names) of tensors to place in the streamed-weights buffer
    /// type: reserved address space, not read at load, filled on demand.
    pub streamed: Vec<String>,
    /// Regexes of tensors forced to llama.cpp's CPU buffer type: host memory, not a GPU's, and
    /// not repacked (the kernels a streamed tensor, which is in host memory too, runs with).
    pub host: Vec<String>,
    /// llama.cpp's `-ot REGEX=BUFT` after the above: tensors whose names the regex matches go to
    /// the buffer type of the device named (`CPU`, `CUDA0`, ...; case-insensitive); the first
    /// matching pattern wins, as in llama.cpp.
    pub overrides: Vec<(String, String)>,
    /// llama.cpp's `-ngl` (None: its default, every layer on the GPU when there is one).
    pub n_gpu_layers: Option<i32>,
}

impl ModelParams {
    /// llama.cpp's own defaults: what "plain llama.cpp" means in comparisons.
    pub fn llama_defaults() -> ModelParams {
        ModelParams {
            load_mode: LoadMode::Default,
            use_extra_bufts: true,
            streamed: Vec::new(),
            host: Vec::new(),
            overrides: Vec::new(),
            n_gpu_layers: None,
        }
    }
}

/// llama.cpp's `--n-cpu-moe N` as `-ot` overrides: the routed-expert tensors of layers `0..n`
/// in host memory (its `LLM_FFN_EXPS_REGEX` per layer).
pub fn n_cpu_moe_overrides(n: u32) -> Vec<(String, String)> {
    (0..n)
        .map(|il| {
            (
                format!("blk\\.{il}\\.ffn_(up|down|gate|gate_up)_(ch|)exps"),
                "CPU".to_string(),
            )
        })
        .collect()
}

/// The buffer type of the device llama.cpp's backends call `name` (case-insensitive), for an
/// `-ot` override.
fn device_buffer_type(name: &str) -> Result<sys::ggml_backend_buffer_type_t> {
    if name.eq_ignore_ascii_case("cpu") {
        // SAFETY: the CPU buffer type is a static singleton.
        return Ok(unsafe { sys::ggml_backend_cpu_buffer_type() });
    }
    let names = backend::devices();
    match names.iter().position(|d| d.eq_ignore_ascii_case(name)) {
        // SAFETY: backends are initialised (devices() did); i is a valid device index.
        Some(i) => Ok(unsafe { sys::ggml_backend_dev_buffer_type(sys::ggml_backend_dev_get(i)) }),
        None => Err(Error::UnknownDevice {
            name: name.to_string(),
            known: names,
        }),
    }
}

/// Whether this build of llama.cpp has a GPU backend (CUDA, Metal) that layers can go to.
pub fn gpu_offload() -> bool {
    // SAFETY: plain C query.
    unsafe { sys::llama_supports_gpu_offload() }
}

/// One tensor placed in the streamed-weights buffer type.
#[derive(Debug, Clone)]
pub struct StreamedTensor {
    pub name: String,
    pub tensor: *mut sys::ggml_tensor,
    /// Page-aligned start of the tensor's reserved memory.
    pub data: *mut u8,
    /// Bytes of tensor data.
    pub bytes: usize,
    /// Bytes reserved for it: whole pages, so releasing them touches no other tensor.
    pub reserved: usize,
}

/// A loaded model. Not `Send`: llama.cpp objects stay on the thread that made them.
pub struct Model {
    raw: NonNull<sys::llama_model>,
    stream_buft: Option<sys::ggml_backend_buffer_type_t>,
    streamed: Vec<StreamedTensor>,
    path: PathBuf,
}

/// Text benchmark prompts are cut from ([`Model::filler_prompt`]).
const FILLER_TEXT: &str = "The history of the printing press begins in the workshops of \
    fifteenth-century Mainz, where goldsmiths, merchants and scribes met the demand for books.";

impl Model {
    /// A prompt of exactly `n` token ids for benchmarks and validation: a fixed English text
    /// tokenized (with the model's BOS), repeated as needed, cut to `n`.
    pub fn filler_prompt(&self, n: usize) -> Result<Vec<i32>> {
        let mut ids = self.tokenize(FILLER_TEXT, true)?;
        let more = self.tokenize(FILLER_TEXT, false)?;
        while ids.len() < n && !more.is_empty() {
            ids.extend_from_slice(&more);
        }
        ids.truncate(n);
        Ok(ids)
    }

    pub fn load(path: &Path, params: &ModelParams) -> Result<Model> {
        backend::init();
        let load_err = |detail: String| Error::ModelLoad {
            path: path.to_path_buf(),
            detail,
        };
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| load_err(": the path contains a NUL byte".into()))?;
        // SAFETY: returns a plain struct of defaults.
        let mut mp = unsafe { sys::llama_model_default_params() };
        mp.use_extra_bufts = params.use_extra_bufts;
        mp.load_mode = match params.load_mode {
            LoadMode::Default => mp.load_mode,
            LoadMode::Read => sys::LLAMA_LOAD_MODE_NONE,
            LoadMode::DirectIo => sys::LLAMA_LOAD_MODE_DIRECT_IO,
        };

        let stream_buft = if params.streamed.is_empty() {
            None
        } else {
            // SAFETY: allocates a buffer type owned by this Model (freed in Drop).
            let b = unsafe { sys::shim::hypura_stream_buft_new() };
            if b.is_null() {
                return Err(Error::OutOfMemory {
                    what: "streamed-weights buffer type",
                    bytes: None,
                });
            }
            Some(b)
        };
        let mut patterns: Vec<(CString, sys::ggml_backend_buffer_type_t)> = Vec::new();
        for p in &params.streamed {
            let c = CString::new(p.as_str())
                .map_err(|_| load_err(format!(": tensor pattern {p:?} contains a NUL byte")))?;
            patterns.push((
                c,
                stream_buft.expect("streamed patterns imply the buffer type"),
            ));
        }
        // SAFETY: the CPU buffer type is a static singleton.
        let cpu = unsafe { sys::ggml_backend_cpu_buffer_type() };
        for p in &params.host {
            let c = CString::new(p.as_str())
                .map_err(|_| load_err(format!(": tensor pattern {p:?} contains a NUL byte")))?;
            patterns.push((c, cpu));
        }
        for (p, device) in &params.overrides {
            let c = CString::new(p.as_str())
                .map_err(|_| load_err(format!(": tensor pattern {p:?} contains a NUL byte")))?;
            patterns.push((c, device_buffer_type(device)?));
        }
        if let Some(n) = params.n_gpu_layers {
            mp.n_gpu_layers = n;
        }
        let mut overrides: Vec<sys::llama_model_tensor_buft_override> = patterns
            .iter()
            .map(|(c, b)| sys::llama_model_tensor_buft_override {
                pattern: c.as_ptr(),
                buft: *b,
            })
            .collect();
        if !overrides.is_empty() {
            overrides.push(sys::llama_model_tensor_buft_override {
                pattern: std::ptr::null(),
                buft: std::ptr::null_mut(),
            });
            mp.tensor_buft_overrides = overrides.as_ptr();
        }

        backend::clear_log();
        // SAFETY: path and override patterns outlive the call; llama.cpp copies what it keeps.
        let raw = unsafe { sys::llama_model_load_from_file(c_path.as_ptr(), mp) };
        drop(overrides);
        drop(patterns);
        let Some(raw) = NonNull::new(raw) else {
            if let Some(b) = stream_buft {
                // SAFETY: the failed load freed its buffers; nothing else refers to the type.
                unsafe { sys::shim::hypura_stream_buft_free(b) };
            }
            return Err(load_err(backend::log_detail()));
        };
        let mut model = Model {
            raw,
            stream_buft,
            streamed: Vec::new(),
            path: path.to_path_buf(),
        };
        if let Some(b) = stream_buft {
            model.streamed = collect_streamed(b)?;
        }
        Ok(model)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn raw(&self) -> *mut sys::llama_model {
        self.raw.as_ptr()
    }

    /// Tensors in the streamed-weights buffer type (empty unless `ModelParams::streamed` matched).
    pub fn streamed(&self) -> &[StreamedTensor] {
        &self.streamed
    }

    /// Address space reserved for streamed tensors (not memory in use).
    pub fn streamed_reserved_bytes(&self) -> usize {
        // SAFETY: the buffer type lives as long as the model.
        self.stream_buft
            .map_or(0, |b| unsafe { sys::shim::hypura_stream_reserved_bytes(b) })
    }

    fn vocab(&self) -> *const sys::llama_vocab {
        // SAFETY: the vocab lives as long as the model.
        unsafe { sys::llama_model_get_vocab(self.raw.as_ptr()) }
    }

    pub fn n_vocab(&self) -> usize {
        // SAFETY: valid vocab pointer.
        unsafe { sys::llama_vocab_n_tokens(self.vocab()) }.max(0) as usize
    }

    /// The context length the model was trained with (0 when its file does not say).
    pub fn n_ctx_train(&self) -> u32 {
        // SAFETY: valid model pointer.
        unsafe { sys::llama_model_n_ctx_train(self.raw.as_ptr()) }.max(0) as u32
    }

    pub fn is_end_of_generation(&self, token: i32) -> bool {
        // SAFETY: valid vocab pointer; llama.cpp range-checks the token.
        unsafe { sys::llama_vocab_is_eog(self.vocab(), token) }
    }

    /// Tokens of `text`, with the model's BOS etc. when `add_special`.
    pub fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<i32>> {
        let len =
            i32::try_from(text.len()).map_err(|_| Error::Tokenize(TokenizeError::PromptTooLong))?;
        let mut tokens = vec![0i32; text.len() + 8];
        for _ in 0..2 {
            // SAFETY: text and the token buffer are valid for the given lengths.
            let n = unsafe {
                sys::llama_tokenize(
                    self.vocab(),
                    text.as_ptr().cast(),
                    len,
                    tokens.as_mut_ptr(),
                    tokens.len() as i32,
                    add_special,
                    true,
                )
            };
            if n >= 0 {
                tokens.truncate(n as usize);
                return Ok(tokens);
            }
            if n == i32::MIN {
                return Err(Error::Tokenize(TokenizeError::TooManyTokens));
            }
            tokens.resize((-n) as usize, 0);
        }
        Err(Error::Tokenize(TokenizeError::CountMismatch))
    }

    /// The text of one token (special tokens rendered); a token that is part of a multi-byte
    /// character renders as U+FFFD (join [`Model::token_piece`]s to keep such characters).
    pub fn token_text(&self, token: i32) -> String {
        String::from_utf8_lossy(&self.token_piece(token)).into_owned()
    }

    /// The bytes of one token (special tokens rendered): not always whole UTF-8 characters.
    pub fn token_piece(&self, token: i32) -> Vec<u8> {
        let mut buf = vec![0u8; 64];
        for _ in 0..2 {
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                sys::llama_token_to_piece(
                    self.vocab(),
                    token,
                    buf.as_mut_ptr().cast(),
                    buf.len() as i32,
                    0,
                    true,
                )
            };
            if n >= 0 {
                buf.truncate(n as usize);
                return buf;
            }
            buf.resize((-n) as usize, 0);
        }
        Vec::new()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: we own the model; its buffers (including streamed ones) are freed here, after
        // which the streamed-weights buffer type has no live buffers.
        unsafe {
            sys::llama_model_free(self.raw.as_ptr());
            if let Some(b) = self.stream_buft {
                sys::shim::hypura_stream_buft_free(b);
            }
        }
    }
}

/// Records the streamed tensors and gives them their names back (the shim renamed them so the
/// loader would skip their data).
fn collect_streamed(buft: sys::ggml_backend_buffer_type_t) -> Result<Vec<StreamedTensor>> {
    // SAFETY: the buffer type and its recorded tensors live as long as the model.
    unsafe {
        if sys::shim::hypura_stream_alloc_failed(buft) != 0 {
            return Err(Error::OutOfMemory {
                what: "reserving address space for streamed tensors",
                bytes: None,
            });
        }
        sys::shim::hypura_stream_restore_names(buft);
        let n = sys::shim::hypura_stream_tensor_count(buft);
        let page = crate::direct_io::PAGE;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let t = sys::shim::hypura_stream_tensor(buft, i);
            let name = CStr::from_ptr(sys::shim::hypura_stream_tensor_name(buft, i))
                .to_string_lossy()
                .into_owned();
            let bytes = sys::ggml_nbytes(t);
            let data = (*t).data as *mut u8;
            if data as usize % page != 0 {
                return Err(Error::Unaligned { tensor: name });
            }
            out.push(StreamedTensor {
                name,
                tensor: t,
                data,
                bytes,
                reserved: bytes.div_ceil(page) * page,
            });
        }
        Ok(out)
    }
}
