// Dumps llama.cpp's logits for a token sequence (evaluated in one batch) in MoeLab's LGTS layout, and the experts
// its router chose per position and layer, so `moelab logits --compare` can check the engines agree.
// Build against an existing llama.cpp build (see tests/peers/README.md); this file is MoeLab's own code.
//   llama-logits MODEL.gguf 1,2,3 OUT.bin [ROUTER.csv] [--threads N] [--kv-f32] [--no-fa] [--no-repack] [--token-by-token]
// --token-by-token decodes one token per llama_decode (the generation path, gemv kernels) instead of one batch.
// --no-repack keeps the CPU backend from repacking weights into its interleaved layouts (Q4_K → q4_K_8x8, Q4_0/Q8_0
// → 4x8 ...). Those kernels sum in another order; a last-bit difference can flip an activation's Q8_K/Q8_0 rounding
// where it sits on a tie, and a recurrent model carries the flip on (0.15 max |Δlogit| on a llama-quantize Q4_K_M
// qwen35moe: one quant, x·iscale = −0.49998, rounded to −1 instead of 0). The plain path sums as MoeLab does.
#include "llama.h"
#include "ggml.h"
#include "ggml-backend.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

struct router_capture {
    FILE * csv = nullptr;
    int64_t first_position = 0; // position of the batch's first token (token-by-token decodes one at a time)
};

// Called by the scheduler for every graph node: asks for the MoE top-k index tensors, then copies them out.
static bool on_tensor(struct ggml_tensor * t, bool ask, void * user) {
    const char * prefix = "ffn_moe_topk-";
    bool wanted = strncmp(t->name, prefix, strlen(prefix)) == 0;
    if (ask) {
        return wanted;
    }
    auto * cap = static_cast<router_capture *>(user);
    if (!wanted || cap->csv == nullptr || t->type != GGML_TYPE_I32) {
        return true;
    }
    int layer = atoi(t->name + strlen(prefix));
    int64_t k = t->ne[0], n = t->ne[1];
    // The top-k tensor is a view into the full argsort (row stride nb[1] > k ints): copy row by row.
    std::vector<int32_t> ids(k * n);
    for (int64_t p = 0; p < n; p++) {
        ggml_backend_tensor_get(t, ids.data() + p * k, p * t->nb[1], k * sizeof(int32_t));
    }
    for (int64_t p = 0; p < n; p++) {
        for (int64_t j = 0; j < k; j++) {
            fprintf(cap->csv, "%lld,%d,%lld,%d\n", (long long) (cap->first_position + p), layer, (long long) j, ids[p * k + j]);
        }
    }
    return true;
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf TOKENS(1,2,3) OUT.bin [ROUTER.csv] [--threads N] [--kv-f32] [--no-fa] [--no-repack] [--token-by-token]\n", argv[0]);
        return 2;
    }
    const char * model_path = argv[1];
    std::vector<llama_token> tokens;
    for (char * s = argv[2]; *s;) {
        tokens.push_back((llama_token) strtol(s, &s, 10));
        if (*s == ',') s++;
    }
    const char * out_path = argv[3];
    const char * router_path = nullptr;
    int threads = 2;
    bool kv_f32 = false, no_fa = false, no_repack = false, token_by_token = false;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv-f32")) kv_f32 = true;
        else if (!strcmp(argv[i], "--no-fa")) no_fa = true;
        else if (!strcmp(argv[i], "--no-repack")) no_repack = true;
        else if (!strcmp(argv[i], "--token-by-token")) token_by_token = true;
        else router_path = argv[i];
    }

    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.use_extra_bufts = !no_repack;
    llama_model * model = llama_model_load_from_file(model_path, mp);
    if (!model) { fprintf(stderr, "failed to load %s\n", model_path); return 1; }

    router_capture cap;
    if (router_path) {
        cap.csv = fopen(router_path, "w");
        fprintf(cap.csv, "position,layer,rank,expert\n");
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) tokens.size() + 16;
    cp.n_batch = cp.n_ubatch = (uint32_t) tokens.size();
    cp.n_threads = cp.n_threads_batch = threads;
    cp.cb_eval = router_path ? on_tensor : nullptr;
    cp.cb_eval_user_data = &cap;
    if (kv_f32) { cp.type_k = GGML_TYPE_F32; cp.type_v = GGML_TYPE_F32; }
    if (no_fa) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "failed to create a context\n"); return 1; }

    llama_batch batch = llama_batch_init((int32_t) tokens.size(), 0, 1);
    for (size_t i = 0; i < tokens.size(); i++) {
        batch.token[i] = tokens[i];
        batch.pos[i] = (llama_pos) i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = (int32_t) tokens.size();
    int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::vector<float> logits;
    if (token_by_token) {
        for (size_t i = 0; i < tokens.size(); i++) {
            cap.first_position = (int64_t) i;
            if (llama_decode(ctx, llama_batch_get_one(&tokens[i], 1)) != 0) { fprintf(stderr, "llama_decode failed\n"); return 1; }
            const float * row = llama_get_logits_ith(ctx, -1);
            logits.insert(logits.end(), row, row + n_vocab);
        }
    } else if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "llama_decode failed\n");
        return 1;
    }

    FILE * out = fopen(out_path, "wb");
    int32_t n = (int32_t) tokens.size();
    fwrite("LGTS", 1, 4, out);
    fwrite(&n, 4, 1, out);
    fwrite(&n_vocab, 4, 1, out);
    fwrite(tokens.data(), 4, tokens.size(), out);
    for (int32_t i = 0; i < n; i++) {
        fwrite(token_by_token ? logits.data() + (size_t) i * n_vocab : llama_get_logits_ith(ctx, i), 4, n_vocab, out);
    }
    fclose(out);
    if (cap.csv) fclose(cap.csv);
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
