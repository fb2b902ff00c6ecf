// hypura's "streamed weights" ggml buffer type: host memory that is reserved address space
// (MAP_NORESERVE, untouched until filled) for tensors that the plan puts on the NVMe tier.
//
// llama.cpp places a tensor in this buffer type through `tensor_buft_overrides`. The buffer
// records every tensor allocated in it and renames it, so that the model loader (which finds a
// tensor's file data by name and skips names it does not know) reads none of its bytes at load
// time; `hypura_stream_restore_names` gives the original names back once loading is done. The
// runtime then fills and releases whole pages on demand from its eval callback.
//
// Compiled against llama.cpp's internal ggml-backend-impl.h of the exact pinned llama-cpp-sys-2
// version: the interface structs are filled here in C, never re-declared in Rust.

#include "stream_buft.h"

#include "ggml-backend-impl.h"
#include "ggml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HYPURA_PAGE 4096

struct hypura_stream_record {
    struct ggml_tensor * tensor;
    char name[GGML_MAX_NAME];
};

struct hypura_stream_ctx {
    struct ggml_backend_buffer_type buft;
    struct hypura_stream_record * records;
    size_t n_records;
    size_t cap_records;
    size_t n_buffers_live;
    size_t reserved_bytes;
    int alloc_failed;
};

struct hypura_stream_buffer {
    void * base;
    size_t mapped;
};

static size_t round_up_page(size_t n) {
    return (n + HYPURA_PAGE - 1) & ~((size_t) HYPURA_PAGE - 1);
}

static struct hypura_stream_ctx * ctx_of(ggml_backend_buffer_type_t buft) {
    return (struct hypura_stream_ctx *) buft->context;
}

// ---- buffer ----

static void stream_buffer_free(ggml_backend_buffer_t buffer) {
    struct hypura_stream_buffer * b = (struct hypura_stream_buffer *) buffer->context;
    struct hypura_stream_ctx * c = ctx_of(buffer->buft);
    munmap(b->base, b->mapped);
    c->n_buffers_live--;
    c->reserved_bytes -= b->mapped;
    free(b);
}

static void * stream_buffer_get_base(ggml_backend_buffer_t buffer) {
    return ((struct hypura_stream_buffer *) buffer->context)->base;
}

static enum ggml_status stream_buffer_init_tensor(ggml_backend_buffer_t buffer, struct ggml_tensor * tensor) {
    struct hypura_stream_ctx * c = ctx_of(buffer->buft);
    if (tensor->view_src != NULL) {
        return GGML_STATUS_SUCCESS;
    }
    if (c->n_records == c->cap_records) {
        size_t cap = c->cap_records ? c->cap_records * 2 : 64;
        struct hypura_stream_record * r = realloc(c->records, cap * sizeof(*r));
        if (r == NULL) {
            c->alloc_failed = 1;
            return GGML_STATUS_ALLOC_FAILED;
        }
        c->records = r;
        c->cap_records = cap;
    }
    struct hypura_stream_record * rec = &c->records[c->n_records];
    rec->tensor = tensor;
    memcpy(rec->name, tensor->name, GGML_MAX_NAME);
    // An unknown name makes llama_model_loader::load_all_data skip the tensor's data.
    ggml_format_name(tensor, "hypura-streamed-%zu", c->n_records);
    c->n_records++;
    return GGML_STATUS_SUCCESS;
}

static void stream_buffer_memset_tensor(ggml_backend_buffer_t buffer, struct ggml_tensor * tensor, uint8_t value,
                                        size_t offset, size_t size) {
    (void) buffer;
    memset((char *) tensor->data + offset, value, size);
}

static void stream_buffer_set_tensor(ggml_backend_buffer_t buffer, struct ggml_tensor * tensor, const void * data,
                                     size_t offset, size_t size) {
    (void) buffer;
    memcpy((char *) tensor->data + offset, data, size);
}

static void stream_buffer_get_tensor(ggml_backend_buffer_t buffer, const struct ggml_tensor * tensor, void * data,
                                     size_t offset, size_t size) {
    (void) buffer;
    memcpy(data, (const char *) tensor->data + offset, size);
}

static bool stream_buffer_cpy_tensor(ggml_backend_buffer_t buffer, const struct ggml_tensor * src,
                                     struct ggml_tensor * dst) {
    (void) buffer;
    if (src->buffer != NULL && ggml_backend_buffer_is_host(src->buffer)) {
        memcpy(dst->data, src->data, ggml_nbytes(src));
        return true;
    }
    return false;
}

static void stream_buffer_clear(ggml_backend_buffer_t buffer, uint8_t value) {
    struct hypura_stream_buffer * b = (struct hypura_stream_buffer *) buffer->context;
    if (value == 0) {
        // Anonymous pages read back as zero after MADV_DONTNEED: clearing commits no memory.
        madvise(b->base, b->mapped, MADV_DONTNEED);
    } else {
        memset(b->base, value, b->mapped);
    }
}

static const struct ggml_backend_buffer_i stream_buffer_iface = {
    /* .free_buffer     = */ stream_buffer_free,
    /* .get_base        = */ stream_buffer_get_base,
    /* .init_tensor     = */ stream_buffer_init_tensor,
    /* .memset_tensor   = */ stream_buffer_memset_tensor,
    /* .set_tensor      = */ stream_buffer_set_tensor,
    /* .get_tensor      = */ stream_buffer_get_tensor,
    /* .set_tensor_2d   = */ NULL,
    /* .get_tensor_2d   = */ NULL,
    /* .cpy_tensor      = */ stream_buffer_cpy_tensor,
    /* .clear           = */ stream_buffer_clear,
    /* .reset           = */ NULL,
};

// ---- buffer type ----

static const char * stream_buft_get_name(ggml_backend_buffer_type_t buft) {
    (void) buft;
    return "HYPURA_STREAM";
}

static ggml_backend_buffer_t stream_buft_alloc_buffer(ggml_backend_buffer_type_t buft, size_t size) {
    struct hypura_stream_ctx * c = ctx_of(buft);
    // get_base must never be NULL, so even an empty buffer maps one page.
    size_t mapped = round_up_page(size ? size : 1);
    void * base = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        c->alloc_failed = 1;
        return NULL;
    }
    struct hypura_stream_buffer * b = malloc(sizeof(*b));
    if (b == NULL) {
        munmap(base, mapped);
        c->alloc_failed = 1;
        return NULL;
    }
    b->base = base;
    b->mapped = mapped;
    c->n_buffers_live++;
    c->reserved_bytes += mapped;
    return ggml_backend_buffer_init(buft, stream_buffer_iface, b, size);
}

static size_t stream_buft_get_alignment(ggml_backend_buffer_type_t buft) {
    (void) buft;
    return HYPURA_PAGE;
}

// Whole pages per tensor: releasing one tensor's pages never touches a neighbour.
static size_t stream_buft_get_alloc_size(ggml_backend_buffer_type_t buft, const struct ggml_tensor * tensor) {
    (void) buft;
    return round_up_page(ggml_nbytes(tensor));
}

// Must be true: the CPU backend runs ops on any host buffer; with false the scheduler aborts.
static bool stream_buft_is_host(ggml_backend_buffer_type_t buft) {
    (void) buft;
    return true;
}

ggml_backend_buffer_type_t hypura_stream_buft_new(void) {
    struct hypura_stream_ctx * c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->buft.iface.get_name = stream_buft_get_name;
    c->buft.iface.alloc_buffer = stream_buft_alloc_buffer;
    c->buft.iface.alloc_buffer_n = NULL;
    c->buft.iface.get_alignment = stream_buft_get_alignment;
    c->buft.iface.get_max_size = NULL;
    c->buft.iface.get_alloc_size = stream_buft_get_alloc_size;
    c->buft.iface.get_alloc_size_n = NULL;
    c->buft.iface.is_host = stream_buft_is_host;
    c->buft.device = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    c->buft.context = c;
    return &c->buft;
}

int hypura_stream_buft_free(ggml_backend_buffer_type_t buft) {
    struct hypura_stream_ctx * c = ctx_of(buft);
    if (c->n_buffers_live != 0) {
        return -1;
    }
    free(c->records);
    free(c);
    return 0;
}

size_t hypura_stream_tensor_count(ggml_backend_buffer_type_t buft) {
    return ctx_of(buft)->n_records;
}

struct ggml_tensor * hypura_stream_tensor(ggml_backend_buffer_type_t buft, size_t i) {
    struct hypura_stream_ctx * c = ctx_of(buft);
    return i < c->n_records ? c->records[i].tensor : NULL;
}

const char * hypura_stream_tensor_name(ggml_backend_buffer_type_t buft, size_t i) {
    struct hypura_stream_ctx * c = ctx_of(buft);
    return i < c->n_records ? c->records[i].name : NULL;
}

void hypura_stream_restore_names(ggml_backend_buffer_type_t buft) {
    struct hypura_stream_ctx * c = ctx_of(buft);
    for (size_t i = 0; i < c->n_records; i++) {
        ggml_set_name(c->records[i].tensor, c->records[i].name);
    }
}

size_t hypura_stream_reserved_bytes(ggml_backend_buffer_type_t buft) {
    return ctx_of(buft)->reserved_bytes;
}

int hypura_stream_alloc_failed(ggml_backend_buffer_type_t buft) {
    return ctx_of(buft)->alloc_failed;
}
