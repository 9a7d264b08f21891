// The quantization driver. The type rules follow llama.cpp's src/llama-quant.cpp
// (tensor_allows_quantization, llama_tensor_get_type_impl, tensor_type_fallback) for the mixes
// strata writes, so a strata file has the same per-tensor types as llama-quantize's; without an
// importance matrix llama.cpp uses the reference quantizers, which are strata's too, so the bytes
// agree as well.
#include "convert/quantize_model.h"

#include <strings.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "tensor/quant.h"
#include "util/error.h"
#include "util/files.h"
#include "util/progress.h"
#include "util/thread_pool.h"

namespace strata {

namespace {

using T = GgmlType;

// llama_ftype ids (llama.h); Q2_K_S and the IQ mixes need an importance matrix, which strata
// does not compute, so they are not offered.
const QuantMix kMixes[] = {
    {"F32", 0, T::F32},      {"F16", 1, T::F16},      {"BF16", 32, T::BF16},   {"Q4_0", 2, T::Q4_0},
    {"Q4_1", 3, T::Q4_1},    {"Q5_0", 8, T::Q5_0},    {"Q5_1", 9, T::Q5_1},    {"Q8_0", 7, T::Q8_0},
    {"Q2_K", 10, T::Q2_K},   {"Q3_K_S", 11, T::Q3_K}, {"Q3_K_M", 12, T::Q3_K}, {"Q3_K_L", 13, T::Q3_K},
    {"Q4_K_S", 14, T::Q4_K}, {"Q4_K_M", 15, T::Q4_K}, {"Q5_K_S", 16, T::Q5_K}, {"Q5_K_M", 17, T::Q5_K},
    {"Q6_K", 18, T::Q6_K},
};

enum class Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other
};

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

Category category_of(const std::string& name) {
    if (name == "output.weight") return Category::Output;
    if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Category::TokenEmbd;
    if (contains(name, "attn_qkv.weight")) return Category::AttnQkv;
    if (contains(name, "attn_kv_b.weight")) return Category::AttnKvB;
    if (contains(name, "attn_v.weight")) return Category::AttnV;
    if (contains(name, "attn_k.weight")) return Category::AttnK;
    if (contains(name, "attn_q.weight")) return Category::AttnQ;
    if (contains(name, "attn_output.weight")) return Category::AttnOutput;
    if (contains(name, "ffn_up")) return Category::FfnUp;
    if (contains(name, "ffn_gate")) return Category::FfnGate;
    if (contains(name, "ffn_down")) return Category::FfnDown;
    return Category::Other;
}

bool is_attn_v_like(Category c) { return c == Category::AttnV || c == Category::AttnQkv || c == Category::AttnKvB; }

// ggml_n_dims: trailing dimensions of 1 do not count.
int n_dims(const std::vector<int64_t>& ne) {
    int n = 1;
    for (size_t d = 1; d < ne.size(); ++d) {
        if (ne[d] > 1) n = static_cast<int>(d) + 1;
    }
    return n;
}

// Tensors that stay in their stored type: vectors, norms, routers, convolutions and the small
// special-purpose weights llama.cpp lists (substrings of their GGUF names).
bool allows_quantization(const TensorSource& t) {
    static const char* const kKeep[] = {
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "time_mix_first.weight",
        "time_mix_w0.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_v0.weight",
        "time_mix_v1.weight",
        "time_mix_v2.weight",
        "time_mix_a0.weight",
        "time_mix_a1.weight",
        "time_mix_a2.weight",
        "time_mix_g1.weight",
        "time_mix_g2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
        ".position_embd",
        ".patch_embd",
        ".rel_pos",
    };
    const std::string& name = t.name;
    if (n_dims(t.ne) < 2) return false;
    if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0) return false;
    if (name == "position_embd.weight" || name == "token_types.weight") return false;
    for (const char* part : kKeep) {
        if (contains(name, part)) return false;
    }
    return true;
}

bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

struct Counters {
    int n_attention_wv = 0, i_attention_wv = 0, i_ffn_down = 0;
    bool tied_embeddings = true;
};

// llama_tensor_get_type_impl, restricted to the mixes in kMixes.
GgmlType mix_rule(const ModelFacts& m, const QuantMix& mix, Counters& qs, const TensorSource& t, Category cat) {
    const std::string& ftype = mix.name;
    const bool falcon = m.arch == "falcon";
    const int n_gqa = m.n_head_kv > 0 ? m.n_head / m.n_head_kv : 0;
    GgmlType type = mix.default_type;
    if (cat == Category::Output || (qs.tied_embeddings && cat == Category::TokenEmbd)) {
        // A tied embedding is also the output projection, so it gets the output's type.
        if (falcon || t.ne[0] % type_traits(type).block_size != 0) type = T::Q8_0;
        else if (type != T::Q8_0) type = T::Q6_K;
    } else if (cat == Category::TokenEmbd) {
        // the default type
    } else if (is_attn_v_like(cat)) {
        const int i = qs.i_attention_wv;
        if (ftype == "Q2_K") type = n_gqa >= 4 ? T::Q4_K : T::Q3_K;
        else if (ftype == "Q3_K_M") type = i < 2 ? T::Q5_K : T::Q4_K;
        else if (ftype == "Q3_K_L") type = T::Q5_K;
        else if ((ftype == "Q4_K_M" || ftype == "Q5_K_M") && use_more_bits(i, qs.n_attention_wv)) type = T::Q6_K;
        else if (ftype == "Q4_K_S" && i < 4) type = T::Q5_K;
        // Llama-2-70B: 8 heads share each V, so V is 8x smaller than Q and more bits are cheap.
        const bool is_70b = m.arch == "llama" && m.n_layer == 80;
        if (is_70b && (type == T::Q3_K || type == T::Q4_K)) type = T::Q5_K;
        if (m.n_expert == 8) type = T::Q8_0;
        ++qs.i_attention_wv;
    } else if (cat == Category::AttnK) {
        if (m.n_expert == 8) type = T::Q8_0;
    } else if (cat == Category::FfnDown) {
        // MoE files interleave expert tensors, so the layer comes from the name, not a counter.
        int i_layer = qs.i_ffn_down;
        const int n_layer = m.n_layer;
        if (std::max(1, m.n_expert) > 1 && std::sscanf(t.name.c_str(), "blk.%d.", &i_layer) != 1) {
            fail("tensor '", t.name, "': cannot tell its layer (expected a name blk.N.…)");
        }
        if (ftype == "Q2_K") type = T::Q3_K;
        else if (ftype == "Q3_K_M") {
            type = i_layer < n_layer / 16 ? T::Q5_K : (!falcon || use_more_bits(i_layer, n_layer)) ? T::Q4_K : T::Q3_K;
        } else if (ftype == "Q3_K_L") type = falcon ? T::Q4_K : T::Q5_K;
        else if (ftype == "Q4_K_M") {
            if (falcon) type = i_layer < n_layer / 16 ? T::Q6_K : use_more_bits(i_layer, n_layer) ? T::Q5_K : T::Q4_K;
            else if (use_more_bits(i_layer, n_layer)) type = T::Q6_K;
        } else if (ftype == "Q5_K_M" && use_more_bits(i_layer, n_layer)) type = T::Q6_K;
        else if (ftype == "Q4_K_S" && !falcon && i_layer < n_layer / 8) type = T::Q5_K;
        ++qs.i_ffn_down;
    } else if (cat == Category::AttnOutput) {
        if (falcon) {
            if (ftype == "Q3_K_L") type = T::Q4_K;
        } else if (m.n_expert == 8) {
            if (ftype == "Q2_K" || ftype == "Q3_K_S" || ftype == "Q3_K_M" || ftype == "Q4_K_S" || ftype == "Q4_K_M") {
                type = T::Q5_K;
            }
        } else if (ftype == "Q2_K") type = T::Q3_K;
        else if (ftype == "Q3_K_M") type = T::Q4_K;
        else if (ftype == "Q3_K_L") type = T::Q5_K;
    } else if (cat == Category::AttnQkv) {
        if (ftype == "Q3_K_M" || ftype == "Q3_K_L") type = T::Q4_K;
        else if (ftype == "Q4_K_M") type = T::Q5_K;
        else if (ftype == "Q5_K_M") type = T::Q6_K;
    }
    return type;
}

// tensor_type_fallback: a row length the chosen block does not divide takes a 32-wide type of
// similar size, or F16 when even 32 does not divide it. llama.cpp stops with an error for the
// 32-wide types themselves; strata uses F16 there too, which llama.cpp loads.
GgmlType fallback(const TensorSource& t, GgmlType type, std::vector<std::string>* notes) {
    const int64_t ncols = t.ne[0];
    if (ncols % type_traits(type).block_size == 0) return type;
    GgmlType to = T::F16;
    switch (type) {
    case T::Q2_K:
    case T::Q3_K:
        to = T::Q4_0;
        break;
    case T::Q4_K:
        to = T::Q5_0;
        break;
    case T::Q5_K:
        to = T::Q5_1;
        break;
    case T::Q6_K:
        to = T::Q8_0;
        break;
    default:
        break;
    }
    if (ncols % type_traits(to).block_size != 0) to = T::F16;
    if (notes) {
        notes->push_back(t.name + ": row length " + std::to_string(ncols) + " is not a multiple of " +
                         std::to_string(type_traits(type).block_size) + " (" + type_name(type) + "), using " +
                         type_name(to));
    }
    return to;
}

}  // namespace

const QuantMix* find_quant_mix(std::string_view name) {
    for (const QuantMix& m : kMixes) {
        if (name.size() == std::strlen(m.name) && strncasecmp(m.name, name.data(), name.size()) == 0) return &m;
    }
    return nullptr;
}

std::string quant_mix_names() {
    std::string s;
    for (const QuantMix& m : kMixes) s += (s.empty() ? "" : ", ") + std::string(m.name);
    return s;
}

std::vector<GgmlType> choose_tensor_types(const ModelFacts& facts, const std::vector<TensorSource>& tensors,
                                          const QuantMix& mix, std::vector<std::string>* fallback_notes) {
    Counters qs;
    for (const TensorSource& t : tensors) {
        const Category c = category_of(t.name);
        if (is_attn_v_like(c)) ++qs.n_attention_wv;
        if (c == Category::Output) qs.tied_embeddings = false;
    }
    const bool quantized_mix = type_traits(mix.default_type).is_quantized;
    std::vector<GgmlType> types;
    for (const TensorSource& t : tensors) {
        if (!allows_quantization(t)) {
            types.push_back(t.type);
            continue;
        }
        GgmlType type = mix.default_type;
        if (quantized_mix) type = fallback(t, mix_rule(facts, mix, qs, t, category_of(t.name)), fallback_notes);
        types.push_back(type);
    }
    return types;
}

WriteSummary write_model(const ModelPlan& plan, const QuantMix& mix, const std::string& path, int n_threads) {
    const auto t0 = std::chrono::steady_clock::now();
    check_output_path(path, plan.inputs);  // before any work; the writer checks again when it opens
    WriteSummary s;
    const std::vector<GgmlType> types = choose_tensor_types(plan.facts, plan.tensors, mix, &s.fallbacks);
    for (GgmlType t : types) {
        auto it = std::find_if(s.type_counts.begin(), s.type_counts.end(), [t](const auto& p) { return p.first == t; });
        if (it == s.type_counts.end()) s.type_counts.emplace_back(t, 1);
        else ++it->second;
    }

    GgufWriter writer = plan.writer;  // the plan stays reusable (tests write one plan in several mixes)
    writer.set_u32("general.quantization_version", 2);  // ggml's GGML_QNT_VERSION
    writer.set_u32("general.file_type", mix.file_type);

    s.n_tensors = plan.tensors.size();
    uint64_t total_kib = 0;
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
        const TensorSource& t = plan.tensors[i];
        int64_t n = 1;
        for (int64_t d : t.ne) n *= d;
        s.n_params += n;
        s.bytes_in += t.source_bytes;
        s.bytes_out += row_size(types[i], t.ne[0]) * static_cast<uint64_t>(n / t.ne[0]);
        total_kib += t.source_bytes / 1024;
    }

    ThreadPool pool(n_threads);
    ProgressBar bar("strata: writing", static_cast<int64_t>(total_kib), "KiB");
    uint64_t done_kib = 0;
    std::vector<float> values;
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
        const TensorSource& t = plan.tensors[i];
        const GgmlType type = types[i];
        writer.add_tensor(t.name, type, t.ne, [&, i, type](std::vector<uint8_t>& out) {
            const TensorSource& src = plan.tensors[i];
            const size_t row_bytes = row_size(type, src.ne[0]);
            if (type == src.type && src.raw) {
                const uint8_t* raw = static_cast<const uint8_t*>(src.raw);
                out.assign(raw, raw + src.source_bytes);
            } else {
                src.load(values);
                const int64_t rows = static_cast<int64_t>(values.size()) / src.ne[0];
                out.resize(row_bytes * static_cast<size_t>(rows));
                // Rows quantize independently, so splitting them over threads changes no byte.
                pool.parallel_for(
                    rows,
                    [&](int64_t begin, int64_t end, int) {
                        quantize_row(type, values.data() + begin * src.ne[0], out.data() + begin * row_bytes,
                                     (end - begin) * src.ne[0]);
                    },
                    std::max<int64_t>(1, 16384 / src.ne[0]));
            }
            done_kib += src.source_bytes / 1024;
            bar.update(static_cast<int64_t>(done_kib),
                       "tensor " + std::to_string(i + 1) + "/" + std::to_string(plan.tensors.size()) + " " + src.name);
        });
    }

    // The writer goes through a temporary file renamed when complete: a failure never leaves a
    // truncated file that looks like a model, and never touches the inputs.
    writer.write(path, {}, plan.inputs);
    bar.finish();
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s;
}

std::string summary_text(const WriteSummary& s, const std::string& path) {
    std::string types;
    for (const auto& [type, n] : s.type_counts) {
        types += std::string(types.empty() ? "" : ", ") + type_name(type) + " " + std::to_string(n);
    }
    char sizes[256];
    std::snprintf(sizes, sizeof sizes,
                  "size %.2f MiB (%.2f bits per weight) -> %.2f MiB (%.2f bits per weight) in %.2f s\n",
                  static_cast<double>(s.bytes_in) / (1 << 20), s.bpw_in(), static_cast<double>(s.bytes_out) / (1 << 20),
                  s.bpw_out(), s.seconds);
    return path + ": " + std::to_string(s.n_tensors) + " tensors (" + types + "), " + std::to_string(s.n_params) +
           " parameters\n" + sizes;
}

ModelPlan plan_from_gguf(std::shared_ptr<const GgufFile> file) {
    ModelPlan plan;
    const GgufFile& f = *file;
    for (const auto& [key, value] : f.metadata()) {
        // llama-quantize re-adds these two at the end of the metadata.
        if (key == "general.quantization_version" || key == "general.file_type") continue;
        plan.writer.set_value(key, value);
    }
    if (f.alignment() != kGgufDefaultAlignment) plan.writer.set_alignment(f.alignment());

    const std::string arch = f.get_string("general.architecture");
    plan.facts.arch = arch;
    plan.facts.n_layer = static_cast<int>(f.get_u32(arch + ".block_count"));
    plan.facts.n_expert = static_cast<int>(f.get_u32(arch + ".expert_count", 0));
    // Per-layer head counts (Jamba) are arrays; the rules look at layer 0, as llama.cpp's n_gqa().
    auto first_count = [&](const std::string& key) -> int {
        const GgufValue* v = f.find(key);
        if (!v) return 0;
        if (v->type == GgufType::ARRAY) return v->count ? static_cast<int>(v->number_at(0)) : 0;
        return static_cast<int>(f.get_u32(key));
    };
    plan.facts.n_head = first_count(arch + ".attention.head_count");
    plan.facts.n_head_kv =
        f.has(arch + ".attention.head_count_kv") ? first_count(arch + ".attention.head_count_kv") : plan.facts.n_head;

    // llama-quantize walks llama_model_loader's weights_map: tensors outside blocks first, then
    // block by block, each group by name.
    std::vector<const GgufTensorInfo*> infos;
    for (const GgufTensorInfo& t : f.tensor_infos()) infos.push_back(&t);
    auto layer_of = [](const std::string& name) {
        int layer = -1;
        std::sscanf(name.c_str(), "blk.%d.", &layer);
        return layer;
    };
    std::stable_sort(infos.begin(), infos.end(), [&](const GgufTensorInfo* a, const GgufTensorInfo* b) {
        const int la = layer_of(a->name), lb = layer_of(b->name);
        return la != lb ? la < lb : a->name < b->name;
    });
    for (const GgufTensorInfo* info : infos) {
        TensorSource t;
        t.name = info->name;
        // ggml keeps no trailing dimensions of 1 (ggml_n_dims), so llama-quantize writes [256, 1] as [256].
        t.ne.assign(info->ne, info->ne + std::max(1, info->n_dims));
        t.ne.resize(static_cast<size_t>(n_dims(t.ne)));
        t.type = info->type;
        const TensorView view = f.tensor(info->name);
        t.raw = view.data;
        t.source_bytes = info->nbytes;
        const int64_t n = info->n_elements();
        const GgmlType type = info->type;
        t.load = [view, n, type](std::vector<float>& out) {
            out.resize(static_cast<size_t>(n));
            dequantize_row(type, view.data, out.data(), n);
        };
        plan.tensors.push_back(std::move(t));
    }
    plan.inputs.push_back(file->path());
    plan.keep_alive.push_back(std::move(file));
    return plan;
}

}  // namespace strata
