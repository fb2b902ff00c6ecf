// hypura's streamed-weights buffer type (see stream_buft.c). Declared for Rust in src/lib.rs.
#pragma once

#include "ggml-backend.h"

#ifdef __cplusplus
extern "C" {
#endif

// A new buffer type; one per loaded model. NULL when out of memory.
ggml_backend_buffer_type_t hypura_stream_buft_new(void);
// Frees the buffer type; -1 (and nothing freed) while buffers of it are still alive.
int hypura_stream_buft_free(ggml_backend_buffer_type_t buft);
// Tensors allocated in buffers of this type, in allocation order, with their original names.
size_t hypura_stream_tensor_count(ggml_backend_buffer_type_t buft);
struct ggml_tensor * hypura_stream_tensor(ggml_backend_buffer_type_t buft, size_t i);
const char * hypura_stream_tensor_name(ggml_backend_buffer_type_t buft, size_t i);
// Gives every recorded tensor its original name back (call after the model has loaded).
void hypura_stream_restore_names(ggml_backend_buffer_type_t buft);
// Address space reserved by live buffers of this type, bytes.
size_t hypura_stream_reserved_bytes(ggml_backend_buffer_type_t buft);
// Nonzero once an allocation (mmap or bookkeeping) failed.
int hypura_stream_alloc_failed(ggml_backend_buffer_type_t buft);

#ifdef __cplusplus
}
#endif
