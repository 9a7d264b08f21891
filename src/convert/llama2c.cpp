// llama2.c → ModelPlan. Each tensor is read from the checkpoint by offset when the writer asks
// for it, so conversion needs memory for one tensor only.
#include "convert/llama2c.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "convert/hf_convert.h"
#include "util/error.h"
#include "util/files.h"
#include "util/limits.h"

namespace strata {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kExportMagic = 0x616b3432;  // "ak42": llama2.c's newer export formats

// Float offsets of each weight group, in run.c's memory_map_weights order.
struct Layout {
    int64_t embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, classifier, end;
};

Layout layout_of(const Llama2cConfig& c) {
    const int64_t dim = c.dim, head_size = c.dim / c.n_heads, kv_dim = c.n_kv_heads * head_size, L = c.n_layers;
    Layout l{};
    int64_t at = 0;
    auto take = [&](int64_t n) {
        const int64_t start = at;
        at += n;
        return start;
    };
    l.embedding = take(static_cast<int64_t>(c.vocab_size) * dim);
    l.rms_att = take(L * dim);
    l.wq = take(L * dim * dim);
    l.wk = take(L * dim * kv_dim);
    l.wv = take(L * dim * kv_dim);
    l.wo = take(L * dim * dim);
    l.rms_ffn = take(L * dim);
    l.w1 = take(L * dim * c.hidden_dim);
    l.w2 = take(L * c.hidden_dim * dim);
    l.w3 = take(L * dim * c.hidden_dim);
    l.rms_final = take(dim);
    take(static_cast<int64_t>(c.seq_len) * head_size);  // freq_cis_real and _imag: recomputed by the rope
    l.classifier = c.shared_classifier ? l.embedding : take(static_cast<int64_t>(c.vocab_size) * dim);
    l.end = at;
    return l;
}

int32_t byte_piece(const std::string& text) {
    if (text.size() != 6 || text.compare(0, 3, "<0x") != 0 || text[5] != '>') return -1;
    return static_cast<int32_t>(std::strtol(text.substr(3, 2).c_str(), nullptr, 16));
}

SentencePieceModel placeholder_vocab(int vocab_size) {
    SentencePieceModel sp;
    sp.byte_fallback = true;
    if (vocab_size < 259) return sp;
    sp.pieces.push_back({"<unk>", 0, PieceType::Unknown});
    sp.pieces.push_back({"<s>", 0, PieceType::Control});
    sp.pieces.push_back({"</s>", 0, PieceType::Control});
    char buf[8];
    for (int b = 0; b < 256; ++b) {
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        sp.pieces.push_back({buf, 0, PieceType::Byte});
    }
    return sp;
}

}  // namespace

Llama2cConfig read_llama2c_config(const std::string& path) {
    size_t actual = 0;
    const int fd = open_regular_file(path, &actual);
    int32_t h[7] = {};
    const bool whole = ::read(fd, h, sizeof h) == static_cast<ssize_t>(sizeof h);
    ::close(fd);
    if (!whole) fail(path, ": shorter than the 28-byte llama2.c header");
    if (static_cast<uint32_t>(h[0]) == kExportMagic) {
        fail(path, ": llama2.c export version ", h[1],
             " is not supported (only the legacy run.c format: export.py --version 0)");
    }
    // Every field within its range before any arithmetic (util/limits.h): the layout's products
    // then stay far inside int64, and a negative vocab_size has a magnitude to take.
    struct Field {
        const char* name;
        int64_t min, max;
    };
    static constexpr Field kFields[7] = {
        {"dim", 1, limits::kMaxDim},          {"hidden_dim", 1, limits::kMaxDim},
        {"n_layers", 1, limits::kMaxLayers},  {"n_heads", 1, limits::kMaxDim},
        {"n_kv_heads", 1, limits::kMaxDim},   {"vocab_size", -limits::kMaxVocab, limits::kMaxVocab},
        {"seq_len", 1, limits::kMaxContext},
    };
    for (int i = 0; i < 7; ++i) {
        const Field& f = kFields[i];
        if (h[i] < f.min || h[i] > f.max || h[i] == 0) {
            fail(path, ": header field ", f.name, " is ", h[i], ", expected ", i == 5 ? "±1 to " : "1 to ", f.max,
                 i == 5 ? " (negative: an unshared classifier)" : "");
        }
    }
    Llama2cConfig c;
    c.dim = h[0], c.hidden_dim = h[1], c.n_layers = h[2], c.n_heads = h[3], c.n_kv_heads = h[4], c.seq_len = h[6];
    c.shared_classifier = h[5] > 0;
    c.vocab_size = h[5] < 0 ? -h[5] : h[5];
    if (c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0 || (c.dim / c.n_heads) % 2 != 0) {
        fail(path, ": dim ", c.dim, ", n_heads ", c.n_heads, ", n_kv_heads ", c.n_kv_heads,
             " do not form heads of even size with whole KV groups");
    }
    const uint64_t expected = 28 + 4 * static_cast<uint64_t>(layout_of(c).end);
    if (actual != expected) {
        fail(path, ": ", actual, " bytes, but the header (dim ", c.dim, ", hidden ", c.hidden_dim, ", ", c.n_layers,
             " layers, vocab ", c.vocab_size, c.shared_classifier ? ", shared" : ", unshared", " classifier, seq_len ",
             c.seq_len, ") needs ", expected);
    }
    return c;
}

SentencePieceModel read_llama2c_tokenizer(const std::string& path, int vocab_size) {
    const std::string bytes = read_file(path);
    size_t at = 0;
    // Each length is checked against the bytes left before anything is allocated for it.
    auto take = [&](void* out, size_t n) {
        if (n > bytes.size() - at) return false;
        std::memcpy(out, bytes.data() + at, n);
        at += n;
        return true;
    };
    SentencePieceModel sp;
    int32_t max_len = 0;
    if (!take(&max_len, 4) || max_len <= 0) {
        fail(path, ": not a llama2.c tokenizer.bin (max_token_length ", max_len, ")");
    }
    for (int i = 0; i < vocab_size; ++i) {
        float score = 0;
        int32_t len = 0;
        if (!take(&score, 4) || !take(&len, 4) || len < 0 || len > max_len ||
            static_cast<size_t>(len) > bytes.size() - at) {
            fail(path, ": token ", i, " of ", vocab_size, " is truncated or longer than ", max_len, " bytes");
        }
        std::string text = bytes.substr(at, static_cast<size_t>(len));
        at += static_cast<size_t>(len);
        PieceType type = PieceType::Normal;
        if (text == "\n<s>\n" || text == "\n</s>\n") {
            text = text.substr(1, text.size() - 2);
            type = PieceType::Control;
        } else if (text == "<unk>") {
            type = PieceType::Unknown;
        } else if (byte_piece(text) >= 0) {
            type = PieceType::Byte;
        } else {
            for (size_t sp_at = text.find(' '); sp_at != std::string::npos; sp_at = text.find(' ', sp_at + 3)) {
                text.replace(sp_at, 1, "\xE2\x96\x81");
            }
        }
        sp.pieces.push_back({std::move(text), score, type});
    }
    if (at != bytes.size()) fail(path, ": has more than the model's ", vocab_size, " tokens");
    for (const auto& p : sp.pieces) sp.byte_fallback |= p.type == PieceType::Byte;
    return sp;
}

ModelPlan plan_llama2c_conversion(const std::string& checkpoint, const std::string& vocab) {
    const Llama2cConfig c = read_llama2c_config(checkpoint);
    const Layout l = layout_of(c);
    const int64_t head_size = c.dim / c.n_heads, kv_dim = c.n_kv_heads * head_size, dim = c.dim, hidden = c.hidden_dim;

    ModelPlan plan;
    plan.inputs = {checkpoint, vocab};
    GgufWriter& w = plan.writer;
    add_general_metadata(w, "llama", model_title(fs::path(checkpoint).stem().string()));
    w.set_u32("llama.block_count", static_cast<uint32_t>(c.n_layers));
    w.set_u32("llama.context_length", static_cast<uint32_t>(c.seq_len));
    w.set_u32("llama.embedding_length", static_cast<uint32_t>(c.dim));
    w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(c.hidden_dim));
    w.set_u32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
    w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
    w.set_f32("llama.rope.freq_base", 10000.0f);                 // run.c's theta
    w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);  // run.c's rmsnorm epsilon
    w.set_u32("general.file_type", 0);
    w.set_u32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
    w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(head_size));
    w.set_u32("general.quantization_version", 2);

    SentencePieceModel sp;
    if (vocab.empty()) {
        sp = placeholder_vocab(c.vocab_size);
        plan.notes.push_back(
            "no --vocab given: wrote a placeholder vocabulary (<unk>, <s>, </s> and the 256 byte tokens; "
            "the other ids are [PADn]); text from this model decodes only through byte tokens");
    } else if (fs::path(vocab).extension() == ".model") {
        sp = read_sentencepiece_model(vocab);
    } else {
        sp = read_llama2c_tokenizer(vocab, c.vocab_size);
    }
    add_llama_vocab(w, sp, c.vocab_size, vocab.empty() ? checkpoint : vocab);
    // Only ids inside the vocabulary (a tiny one has no room for run.c's BOS 1 and EOS 2).
    const std::pair<const char*, int32_t> special[] = {{"tokenizer.ggml.bos_token_id", sp.bos_id},
                                                       {"tokenizer.ggml.eos_token_id", sp.eos_id}};
    for (const auto& [key, id] : special) {
        if (id >= 0 && id < c.vocab_size) w.set_u32(key, static_cast<uint32_t>(id));
    }
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    w.set_bool("tokenizer.ggml.add_eos_token", false);

    plan.facts = {"llama", c.n_layers, c.n_heads, c.n_kv_heads, 0};
    // A tensor of `n` floats at float offset `at`, shaped ne (ggml order).
    auto add = [&](const std::string& name, int64_t at, std::vector<int64_t> ne) {
        int64_t n = 1;
        for (int64_t d : ne) n *= d;
        TensorSource t;
        t.name = name;
        t.ne = std::move(ne);
        t.source_bytes = static_cast<size_t>(n) * 4;
        t.load = [checkpoint, at, n](std::vector<float>& out) {
            std::ifstream in(checkpoint, std::ios::binary);
            in.seekg(28 + 4 * at);
            out.resize(static_cast<size_t>(n));
            in.read(reinterpret_cast<char*>(out.data()), n * 4);
            if (!in) fail(checkpoint, ": read failed at byte ", 28 + 4 * at);
        };
        plan.tensors.push_back(std::move(t));
    };
    add("token_embd.weight", l.embedding, {dim, c.vocab_size});
    add("output_norm.weight", l.rms_final, {dim});
    // A shared classifier is the embedding; like a tied Hugging Face model, no output tensor.
    if (!c.shared_classifier) add("output.weight", l.classifier, {dim, c.vocab_size});
    for (int64_t i = 0; i < c.n_layers; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        add(p + "attn_norm.weight", l.rms_att + i * dim, {dim});
        add(p + "attn_q.weight", l.wq + i * dim * dim, {dim, dim});
        add(p + "attn_k.weight", l.wk + i * dim * kv_dim, {dim, kv_dim});
        add(p + "attn_v.weight", l.wv + i * dim * kv_dim, {dim, kv_dim});
        add(p + "attn_output.weight", l.wo + i * dim * dim, {dim, dim});
        add(p + "ffn_norm.weight", l.rms_ffn + i * dim, {dim});
        add(p + "ffn_gate.weight", l.w1 + i * dim * hidden, {dim, hidden});
        add(p + "ffn_down.weight", l.w2 + i * hidden * dim, {hidden, dim});
        add(p + "ffn_up.weight", l.w3 + i * dim * hidden, {dim, hidden});
    }
    set_size_label(plan);
    return plan;
}

}  // namespace strata
