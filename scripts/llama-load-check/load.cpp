// Loads a GGUF with llama.cpp, greedy-decodes N tokens, prints their ids; fails on non-finite logits.
#include "llama.h"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
int main(int argc, char ** argv) {
    if (argc < 2) { fprintf(stderr, "usage: load MODEL [N]\n"); return 2; }
    int n_gen = argc > 2 ? atoi(argv[2]) : 8;
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.use_extra_bufts = false;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "LOAD FAILED\n"); return 1; }
    auto cp = llama_context_default_params();
    cp.n_ctx = 256; cp.n_batch = 256; cp.n_threads = 2; cp.n_threads_batch = 2;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "CONTEXT FAILED\n"); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const char * prompt = "Hello world, this is a test";
    std::vector<llama_token> toks(64);
    int n = llama_tokenize(vocab, prompt, strlen(prompt), toks.data(), toks.size(), true, false);
    if (n < 0) { fprintf(stderr, "TOKENIZE FAILED\n"); return 1; }
    toks.resize(n);
    printf("prompt tokens %d\n", n);
    llama_batch batch = llama_batch_get_one(toks.data(), toks.size());
    int nv = llama_vocab_n_tokens(vocab);
    printf("generated:");
    for (int i = 0; i < n_gen; i++) {
        if (llama_decode(ctx, batch)) { fprintf(stderr, "DECODE FAILED\n"); return 1; }
        float * logits = llama_get_logits_ith(ctx, -1);
        int best = 0;
        for (int t = 0; t < nv; t++) {
            if (!std::isfinite(logits[t])) { fprintf(stderr, "NON-FINITE LOGIT\n"); return 1; }
            if (logits[t] > logits[best]) best = t;
        }
        printf(" %d", best);
        static llama_token next; next = best;
        batch = llama_batch_get_one(&next, 1);
    }
    printf("\nOK\n");
    llama_free(ctx); llama_model_free(model);
    return 0;
}
