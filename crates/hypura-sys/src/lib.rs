//! Raw FFI to llama.cpp (re-exported from the pinned llama-cpp-sys-2) plus hypura's C shim: a
//! ggml buffer type for NVMe-tier weights (reserved address space, filled on demand).
//!
//! Everything here is `unsafe` and unchecked; the `runtime` crate wraps it.

pub use llama_cpp_sys_2::*;

/// hypura's shim, `shim/stream_buft.h`.
pub mod shim {
    use super::{ggml_backend_buffer_type_t, ggml_tensor};
    use std::os::raw::{c_char, c_int};

    extern "C" {
        /// A new streamed-weights buffer type (one per loaded model); NULL when out of memory.
        /// Tensors allocated in it are recorded and renamed so the model loader skips their data.
        pub fn hypura_stream_buft_new() -> ggml_backend_buffer_type_t;
        /// Frees the buffer type; -1 (nothing freed) while buffers of it are alive.
        pub fn hypura_stream_buft_free(buft: ggml_backend_buffer_type_t) -> c_int;
        /// Tensors allocated in buffers of this type, in allocation order.
        pub fn hypura_stream_tensor_count(buft: ggml_backend_buffer_type_t) -> usize;
        pub fn hypura_stream_tensor(buft: ggml_backend_buffer_type_t, i: usize)
            -> *mut ggml_tensor;
        /// The tensor's name before the shim renamed it.
        pub fn hypura_stream_tensor_name(
            buft: ggml_backend_buffer_type_t,
            i: usize,
        ) -> *const c_char;
        /// Gives every recorded tensor its original name back (after the model has loaded).
        pub fn hypura_stream_restore_names(buft: ggml_backend_buffer_type_t);
        /// Address space reserved by live buffers of this type, bytes.
        pub fn hypura_stream_reserved_bytes(buft: ggml_backend_buffer_type_t) -> usize;
        /// Nonzero once an allocation failed.
        pub fn hypura_stream_alloc_failed(buft: ggml_backend_buffer_type_t) -> c_int;
    }
}
