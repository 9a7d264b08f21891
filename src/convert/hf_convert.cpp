// Hugging Face folder → ModelPlan: metadata from config.json through the architecture's table,
// the vocabulary from tokenizer.model (or tokenizer.json), and one TensorSource per GGUF tensor
// that reads and transforms its safetensors data only when the writer asks for it.
#include "convert/hf_convert.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "format/safetensors.h"
#include "util/error.h"
#include "util/files.h"

namespace strata {

namespace fs = std::filesystem;

namespace {

// Matches an HF name against a pattern with {bid}/{xid} placeholders (decimal numbers).
bool match(const char* pattern, const std::string& name, int& bid, int& xid) {
    bid = xid = -1;
    size_t i = 0;
    for (const char* p = pattern; *p;) {
        if (*p == '{') {
            const bool is_bid = std::strncmp(p, "{bid}", 5) == 0;
            size_t j = i;
            while (j < name.size() && j - i < 9 && name[j] >= '0' && name[j] <= '9') ++j;
            if (j == i) return false;
            (is_bid ? bid : xid) = std::stoi(name.substr(i, j - i));
            i = j;
            p += 5;
        } else {
            if (i >= name.size() || name[i] != *p) return false;
            ++i;
            ++p;
        }
    }
    return i == name.size();
}

std::string expand(const char* pattern, int bid) {
    std::string s = pattern;
    const size_t at = s.find("{bid}");
    if (at != std::string::npos) s.replace(at, 5, std::to_string(bid));
    return s;
}

// Output shape (PyTorch order) of a transform.
std::vector<int64_t> transformed_shape(Transform tr, const HfConfig& cfg, std::vector<int64_t> shape,
                                       const std::string& name) {
    switch (tr) {
    case Transform::Squeeze:
        std::erase(shape, 1);
        return shape;
    case Transform::Column:
    case Transform::NegExpColumn:
        shape.push_back(1);
        return shape;
    case Transform::GroupRows: {
        const int64_t groups = cfg.integer_or({"n_groups", "num_groups"}, 1);
        if (shape.size() != 1 || shape[0] % groups != 0) {
            fail(cfg.path(), ": tensor '", name, "' does not split into n_groups (", groups, ") equal rows");
        }
        return {groups, shape[0] / groups};
    }
    case Transform::GateHalf:
    case Transform::UpHalf:
        if (shape.size() != 3 || shape[1] % 2 != 0) fail(name, ": fused gate_up_proj should be [experts, 2·ff, d]");
        shape[1] /= 2;
        return shape;
    default:
        return shape;
    }
}

// llama.cpp's permute(): within each head, rows [h0 … h(n/2-1) | h(n/2) …] become pairs
// (h0, h(n/2)), (h1, h(n/2+1)), … so the pair rope sees what the half rope saw.
void permute_rows(std::vector<float>& data, const std::vector<int64_t>& shape, int64_t n_head,
                  const std::string& name) {
    const int64_t rows = shape.empty() ? 0 : shape[0];
    if (n_head <= 0 || rows <= 0 || rows % (2 * n_head) != 0) {
        fail(name, ": ", rows, " rows do not split into ", n_head, " heads of pairs");
    }
    const int64_t cols = static_cast<int64_t>(data.size()) / rows;
    const int64_t head_dim = rows / n_head, half = head_dim / 2;
    std::vector<float> out(data.size());
    for (int64_t h = 0; h < n_head; ++h) {
        for (int64_t i = 0; i < half; ++i) {
            for (int64_t j = 0; j < 2; ++j) {
                const float* src = data.data() + (h * head_dim + j * half + i) * cols;
                std::copy(src, src + cols, out.data() + (h * head_dim + 2 * i + j) * cols);
            }
        }
    }
    data.swap(out);
}

void apply_transform(Transform tr, const HfConfig& cfg, std::vector<float>& data, const std::vector<int64_t>& shape,
                     const std::string& name) {
    switch (tr) {
    case Transform::PermuteQ:
        permute_rows(data, shape, cfg.integer({"num_attention_heads"}), name);
        break;
    case Transform::PermuteK: {
        const int64_t n_head = cfg.integer({"num_attention_heads"});
        permute_rows(data, shape, cfg.integer_or({"num_key_value_heads"}, n_head), name);
        break;
    }
    case Transform::NegExp:
    case Transform::NegExpColumn:
        for (float& x : data) x = -std::exp(x);
        break;
    case Transform::GateHalf:
    case Transform::UpHalf: {
        const int64_t experts = shape[0], rows = shape[1], cols = shape[2], half = rows / 2;
        const int64_t skip = tr == Transform::GateHalf ? 0 : half;
        std::vector<float> out(static_cast<size_t>(experts * half * cols));
        for (int64_t e = 0; e < experts; ++e) {
            const float* src = data.data() + (e * rows + skip) * cols;
            std::copy(src, src + half * cols, out.data() + e * half * cols);
        }
        data.swap(out);
        break;
    }
    default:
        break;
    }
}

std::vector<int64_t> ggml_order(const std::vector<int64_t>& shape) {
    if (shape.empty()) return {1};
    return {shape.rbegin(), shape.rend()};
}

// The experts of one block for a {xid} rule, in expert order; all must be present and alike.
std::vector<const SafetensorsTensor*> expert_members(const SafetensorsCheckpoint& ckpt, const TensorRule& rule, int bid,
                                                     const std::string& gguf_name) {
    std::map<int, const SafetensorsTensor*> by_expert;
    for (const SafetensorsTensor* t : ckpt.tensors()) {
        int b, x;
        if (match(rule.hf, t->name, b, x) && b == bid) by_expert[x] = t;
    }
    std::vector<const SafetensorsTensor*> members;
    for (const auto& [x, t] : by_expert) {
        if (x != static_cast<int>(members.size())) {
            fail(gguf_name, ": expert ", members.size(), " is missing from the checkpoint");
        }
        if (!members.empty() && t->shape != members[0]->shape) {
            fail(t->name, ": shape differs from expert 0's (", members[0]->name, ")");
        }
        members.push_back(t);
    }
    return members;
}

// tie_word_embeddings checkpoints may still store lm_head; llama.cpp drops it when it equals
// the embedding, since the model then reads the embedding for both.
bool is_tied_copy(const HfConfig& cfg, const SafetensorsCheckpoint& ckpt, const SafetensorsTensor& t,
                  const std::vector<TensorRule>& rules) {
    const Json* tied = cfg.find("tie_word_embeddings");
    if (!tied || tied->kind() != Json::Kind::Bool || !tied->as_bool()) return false;
    for (const TensorRule& r : rules) {
        if (std::strcmp(r.gguf, "token_embd.weight") != 0) continue;
        const SafetensorsTensor* e = ckpt.find(r.hf);
        if (e && e->dtype == t.dtype && e->shape == t.shape && std::memcmp(e->data, t.data, t.nbytes) == 0) return true;
    }
    return false;
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// What a GGUF tensor can be (the reader's rules: 1 to 4 dimensions, each ≥ 1), and for the Q/K
// permutation, rows that split into heads of pairs: checked before any data is read or divided.
void check_shape(const SafetensorsTensor& t, Transform tr, const HfConfig& cfg, size_t extra_dims) {
    if (t.shape.size() + extra_dims > static_cast<size_t>(kMaxDims)) {
        fail(t.file, ": tensor '", t.name, "' has shape ", shape_text(t.shape), "; GGUF tensors have at most ",
             kMaxDims, " dimensions");
    }
    for (int64_t d : t.shape) {
        if (d < 1) {
            fail(t.file, ": tensor '", t.name, "' has shape ", shape_text(t.shape),
                 "; GGUF tensors need every dimension ≥ 1");
        }
    }
    if (tr == Transform::PermuteQ || tr == Transform::PermuteK) {
        const int64_t n_head = cfg.integer({"num_attention_heads"});
        const int64_t heads = tr == Transform::PermuteQ ? n_head : cfg.integer_or({"num_key_value_heads"}, n_head);
        if (t.shape.empty() || t.shape[0] % (2 * heads) != 0) {
            fail(t.file, ": tensor '", t.name, "' has shape ", shape_text(t.shape), ", whose rows do not split into ",
                 heads, tr == Transform::PermuteQ ? " attention" : " key/value", " heads of even size (", cfg.path(),
                 ")");
        }
    }
}

void plan_tensors(ModelPlan& plan, const HfArchitecture& arch, const HfConfig& cfg, const SafetensorsCheckpoint& ckpt) {
    std::set<std::string> stacked;  // expert tensors already planned
    for (const SafetensorsTensor* t : ckpt.tensors()) {
        if (t->name.ends_with("rotary_emb.inv_freq")) continue;  // recomputed from rope.freq_base
        bool matched = false;
        for (const TensorRule& rule : arch.tensors) {
            int bid, xid;
            if (!match(rule.hf, t->name, bid, xid)) continue;
            matched = true;
            check_shape(*t, rule.transform, cfg, xid >= 0 ? 1 : 0);
            const std::string name = expand(rule.gguf, bid);
            if (name == "output.weight" && is_tied_copy(cfg, ckpt, *t, arch.tensors)) {
                continue;
            }
            TensorSource src;
            src.name = name;
            if (xid >= 0) {
                if (!stacked.insert(name).second) continue;
                auto members = expert_members(ckpt, rule, bid, name);
                std::vector<int64_t> shape = members[0]->shape;
                shape.insert(shape.begin(), static_cast<int64_t>(members.size()));
                src.ne = ggml_order(shape);
                for (const SafetensorsTensor* m : members) src.source_bytes += m->nbytes;
                src.load = [members](std::vector<float>& out) {
                    out.clear();
                    std::vector<float> one;
                    for (const SafetensorsTensor* m : members) {
                        read_as_f32(*m, one);
                        out.insert(out.end(), one.begin(), one.end());
                    }
                };
            } else {
                const Transform tr = rule.transform;
                const std::vector<int64_t> shape = t->shape;
                src.ne = ggml_order(transformed_shape(tr, cfg, shape, t->name));
                src.source_bytes = t->nbytes;
                const HfConfig* c = &cfg;
                src.load = [t, tr, shape, c](std::vector<float>& out) {
                    read_as_f32(*t, out);
                    apply_transform(tr, *c, out, shape, t->name);
                };
            }
            plan.tensors.push_back(std::move(src));
        }
        if (!matched) {
            fail(t->file, ": tensor '", t->name, "' has no GGUF name in strata's ", arch.hf_class, " table");
        }
    }
}

// Values written through the table, kept to fill in ModelFacts for the quantization rules.
void add_arch_metadata(ModelPlan& plan, const HfArchitecture& arch, const HfConfig& cfg) {
    GgufWriter& w = plan.writer;
    std::map<std::string, MetaValue> written;
    for (const MetaRule& rule : arch.keys) {
        const std::string key =
            std::strncmp(rule.key, "general.", 8) == 0 ? rule.key : std::string(arch.gguf_arch) + "." + rule.key;
        const MetaValue v = rule.value(cfg);
        if (auto* u = std::get_if<uint32_t>(&v)) w.set_u32(key, *u);
        else if (auto* f = std::get_if<float>(&v)) w.set_f32(key, *f);
        else if (auto* b = std::get_if<bool>(&v)) w.set_bool(key, *b);
        else if (auto* s = std::get_if<std::string>(&v)) w.set_string(key, *s);
        else if (auto* a = std::get_if<std::vector<int32_t>>(&v)) w.set_i32_array(key, *a);
        written[rule.key] = v;
    }
    auto count = [&](const char* key) -> int {
        auto it = written.find(key);
        if (it == written.end()) return 0;
        if (auto* u = std::get_if<uint32_t>(&it->second)) return static_cast<int>(*u);
        if (auto* a = std::get_if<std::vector<int32_t>>(&it->second)) return a->empty() ? 0 : (*a)[0];
        return 0;
    };
    // Relations the GGUF loader checks, refused here so that convert never writes a file it
    // cannot load: the router picks k of n experts; query heads share key/value heads evenly.
    const int n_expert = count("expert_count"), n_used = count("expert_used_count");
    if (n_expert > 0 && (n_used < 1 || n_used > n_expert)) {
        fail(cfg.path(), ": num_experts_per_tok is ", n_used, ", expected 1 to the expert count (", n_expert, ")");
    }
    const auto kv = written.find("attention.head_count_kv");
    if (kv != written.end() && std::holds_alternative<uint32_t>(kv->second)) {
        const int n_head = count("attention.head_count"), n_kv = count("attention.head_count_kv");
        if (n_head > 0 && n_head % n_kv != 0) {
            fail(cfg.path(), ": num_attention_heads (", n_head, ") is not a multiple of num_key_value_heads (", n_kv,
                 ")");
        }
    }
    plan.facts.arch = arch.gguf_arch;
    plan.facts.n_layer = count("block_count");
    plan.facts.n_head = count("attention.head_count");
    plan.facts.n_head_kv =
        written.count("attention.head_count_kv") ? count("attention.head_count_kv") : plan.facts.n_head;
    plan.facts.n_expert = count("expert_count");
}

}  // namespace

std::string model_title(const std::string& id) {
    // Python's str.title() on all-lowercase words, except versions ("v2") and numbers.
    std::string out, word;
    auto flush = [&] {
        if (word.empty()) return;
        bool has_lower = false, has_upper = false;
        for (char ch : word) {
            has_lower |= std::islower(static_cast<unsigned char>(ch)) != 0;
            has_upper |= std::isupper(static_cast<unsigned char>(ch)) != 0;
        }
        const bool version = std::isdigit(static_cast<unsigned char>(word[0])) ||
                             (word[0] == 'v' && word.size() > 1 && std::isdigit(static_cast<unsigned char>(word[1])));
        if (has_lower && !has_upper && !version) {
            bool prev_alpha = false;
            for (char& ch : word) {
                const bool alpha = std::isalpha(static_cast<unsigned char>(ch)) != 0;
                if (alpha && !prev_alpha) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
                prev_alpha = alpha;
            }
        }
        out += (out.empty() ? "" : " ") + word;
        word.clear();
    };
    for (char ch : id) {
        if (ch == '-' || ch == ' ' || ch == '\t') flush();
        else word += ch;
    }
    flush();
    return out;
}

void add_general_metadata(GgufWriter& w, const std::string& arch, const std::string& name) {
    w.set_string("general.architecture", arch);
    w.set_string("general.type", "model");
    w.set_string("general.name", name);
    w.set_string("general.size_label", "");
}

void set_size_label(ModelPlan& plan) {
    // gguf-py's size_label(): experts count once (shared + one expert's share), "4x428K".
    int64_t total = 0, shared = 0, expert = 0, expert_sum = 0, n_expert_tensors = 0;
    for (const TensorSource& t : plan.tensors) {
        int64_t n = 1;
        for (int64_t d : t.ne) n *= d;
        total += n;
        if (t.name.find("_exps.") != std::string::npos && t.ne.size() >= 2) {
            const int64_t e = t.name.ends_with(".bias") ? t.ne[1] : t.ne[std::min<size_t>(2, t.ne.size() - 1)];
            expert += n / e;
            expert_sum += e;
            ++n_expert_tensors;
        } else {
            shared += n;
        }
    }
    auto rounded = [](int64_t count) {
        const double c = static_cast<double>(count);
        const auto [scaled, suffix] = c > 1e12  ? std::pair{c * 1e-12, "T"}
                                      : c > 1e9 ? std::pair{c * 1e-9, "B"}
                                      : c > 1e6 ? std::pair{c * 1e-6, "M"}
                                                : std::pair{c * 1e-3, "K"};
        std::string digits = std::to_string(static_cast<long long>(std::nearbyint(scaled)));
        digits.erase(
            0, digits.find_first_not_of('0') == std::string::npos ? digits.size() : digits.find_first_not_of('0'));
        const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.*f%s", fix, scaled, suffix);
        return std::string(buf);
    };
    const int64_t n_expert = n_expert_tensors ? expert_sum / n_expert_tensors : 0;
    plan.writer.set_string("general.size_label",
                           n_expert > 0 ? std::to_string(n_expert) + "x" + rounded(shared + expert) : rounded(total));
}

ModelPlan plan_hf_conversion(const std::string& dir) {
    const fs::path config_path = fs::path(dir) / "config.json";
    if (!fs::is_directory(dir)) fail(dir, ": not a directory (expected a Hugging Face model folder)");
    auto cfg =
        std::make_shared<HfConfig>(Json::parse(read_file(config_path.string()), config_path.string()),
                                   config_path.string());
    const Json* classes = cfg->find("architectures");
    if (!classes || !classes->is_array() || classes->size() == 0 || !(*classes)[0].is_string()) {
        fail(config_path.string(), ": no \"architectures\" list naming the model class");
    }
    const std::string hf_class = (*classes)[0].as_string();
    const HfArchitecture* arch = find_hf_architecture(hf_class);
    if (!arch) {
        fail(config_path.string(), ": architecture '", hf_class,
             "' is not supported (supported: ", hf_architecture_names(), ")");
    }

    ModelPlan plan;
    auto ckpt = std::make_shared<SafetensorsCheckpoint>(SafetensorsCheckpoint::open(dir));
    plan.keep_alive.push_back(ckpt);
    plan.keep_alive.push_back(cfg);
    plan.inputs = ckpt->paths();
    for (const char* f :
         {"config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}) {
        plan.inputs.push_back((fs::path(dir) / f).string());
    }
    fs::path folder = fs::absolute(dir).lexically_normal();
    if (!folder.has_filename()) folder = folder.parent_path();  // "models/llama/" or "."
    add_general_metadata(plan.writer, arch->gguf_arch, model_title(folder.filename().string()));
    add_arch_metadata(plan, *arch, *cfg);
    plan.writer.set_u32("general.quantization_version", 2);
    // The embedding's rows bound every token id (and the vocabulary must match them).
    std::optional<int64_t> embd_rows;
    std::string embd_name;
    for (const TensorRule& r : arch->tensors) {
        const SafetensorsTensor* e = std::strcmp(r.gguf, "token_embd.weight") == 0 ? ckpt->find(r.hf) : nullptr;
        if (e && e->shape.size() == 2) embd_rows = e->shape[0], embd_name = e->file + ": tensor '" + e->name + "'";
    }
    add_hf_vocab(plan.writer, dir, *cfg, embd_rows, embd_name);
    plan_tensors(plan, *arch, *cfg, *ckpt);
    set_size_label(plan);
    return plan;
}

}  // namespace strata
