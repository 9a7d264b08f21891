// Hugging Face folder → ModelPlan: metadata from config.json through the architecture's table,
// the vocabulary from tokenizer.model (or tokenizer.json), and one TensorSource per GGUF tensor
// that reads and transforms its safetensors data only when the writer asks for it.
#include "convert/hf_convert.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "format/safetensors.h"
#include "format/sentencepiece_model.h"
#include "util/error.h"
#include "util/files.h"
#include "util/limits.h"

namespace strata {

namespace fs = std::filesystem;

namespace {

// A config value for a message: integers as integers, anything else with all its digits.
std::string number_text(double d) {
    char buf[64];
    if (d == std::floor(d) && std::fabs(d) < 1e18) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
    else std::snprintf(buf, sizeof buf, "%.17g", d);
    return buf;
}

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

// tokenizer.json and tokenizer_config.json fields: each error names the file and the field, and
// every token id is checked against the model's vocabulary (the embedding's rows, or the limit)
// before it sizes anything.
const Json& field(const Json& obj, const char* key, const std::string& source, const std::string& where) {
    const Json* v = obj.is_object() ? obj.find(key) : nullptr;
    if (!v) fail(source, ": ", where, " has no \"", key, "\"");
    return *v;
}

const std::string& string_field(const Json& obj, const char* key, const std::string& source,
                                const std::string& where) {
    const Json& v = field(obj, key, source, where);
    if (!v.is_string()) fail(source, ": ", where, ".", key, " is not a string");
    return v.as_string();
}

int64_t token_id(const Json& v, int64_t n_max, const std::string& source, const std::string& where) {
    const double d = v.is_number() ? v.as_number() : -1;
    if (!v.is_number() || d != std::floor(d) || d < 0 || d >= static_cast<double>(n_max)) {
        fail(source, ": ", where, " has id ", v.is_number() ? number_text(d) : v.dump(),
             ", expected an integer from 0 to ", n_max - 1, " (the model's vocabulary)");
    }
    return static_cast<int64_t>(d);
}

bool is_true(const Json* v) { return v && v->kind() == Json::Kind::Bool && v->as_bool(); }

const Json* array_or_none(const Json& obj, const char* key, const std::string& source) {
    const Json* v = obj.find(key);
    if (v && !v->is_null() && !v->is_array()) fail(source, ": \"", key, "\" is not an array");
    return v && v->is_array() ? v : nullptr;
}

// tokenizer.json's BPE (byte-level, GPT-2 style): tokens by id, added tokens typed CONTROL when
// special and USER_DEFINED otherwise, merges as "a b". The pre-tokenizer is written as "default"
// (GPT-2's split); llama.cpp recognizes others by hashing a test tokenization, which needs the
// tokenizer itself.
int64_t add_bpe_vocab(GgufWriter& w, const Json& tj, const HfConfig& cfg, int64_t n_max, const std::string& source) {
    const Json* model = tj.find("model");
    const Json* type = model ? model->find("type") : nullptr;
    if (!model || !type || !type->is_string() || type->as_string() != "BPE") {
        fail(source, ": model.type is not \"BPE\"");
    }
    const Json& vocab = field(*model, "vocab", source, "model");
    if (!vocab.is_object()) fail(source, ": model.vocab is not an object of token: id");
    std::map<int64_t, std::pair<std::string, PieceType>> by_id;  // GGUF token types number like SentencePiece's
    for (const auto& [text, id] : vocab.members()) {
        by_id[token_id(id, n_max, source, "model.vocab token '" + text + "'")] = {text, PieceType::Normal};
    }
    if (const Json* added = array_or_none(tj, "added_tokens", source)) {
        for (size_t i = 0; i < added->size(); ++i) {
            const Json& a = (*added)[i];
            const std::string where = "added_tokens[" + std::to_string(i) + "]";
            const std::string& content = string_field(a, "content", source, where);
            by_id[token_id(field(a, "id", source, where), n_max, source, where)] = {
                content, is_true(a.find("special")) ? PieceType::Control : PieceType::UserDefined};
        }
    }
    // Both terms are within n_max (≤ kMaxVocab): the ids were checked, vocab_size has its range.
    const int64_t n = std::max(cfg.integer_or({"vocab_size"}, 0), by_id.empty() ? 0 : by_id.rbegin()->first + 1);
    if (n == 0) fail(source, ": the vocabulary is empty");
    std::vector<std::string> tokens(static_cast<size_t>(n));
    std::vector<int32_t> types(static_cast<size_t>(n), static_cast<int32_t>(PieceType::Unused));
    for (int64_t i = 0; i < n; ++i) {
        auto it = by_id.find(i);
        if (it == by_id.end()) {
            tokens[i] = "[PAD" + std::to_string(i) + "]";
        } else {
            tokens[i] = it->second.first;
            types[i] = static_cast<int32_t>(it->second.second);
        }
    }
    std::vector<std::string> merges;
    if (const Json* m = array_or_none(*model, "merges", source)) {
        for (size_t i = 0; i < m->size(); ++i) {
            const Json& merge = (*m)[i];
            if (merge.is_string()) {
                merges.push_back(merge.as_string());
            } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
                merges.push_back(merge[0].as_string() + " " + merge[1].as_string());
            } else {
                fail(source, ": model.merges[", i, "] is neither \"a b\" nor [\"a\", \"b\"]");
            }
        }
    }
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", "default");
    w.set_strings("tokenizer.ggml.tokens", tokens);
    w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_strings("tokenizer.ggml.merges", merges);
    return n;
}

// tokenizer_config.json's added_tokens_decoder overrides pieces of tokenizer.model, as
// llama.cpp's converter applies it (special ones become CONTROL, the rest USER_DEFINED).
void apply_added_tokens(SentencePieceModel& sp, const Json& tok_config, int64_t n_max, const std::string& source) {
    const Json* decoder = tok_config.find("added_tokens_decoder");
    if (!decoder || !decoder->is_object()) return;
    for (const auto& [id_text, entry] : decoder->members()) {
        int64_t id = -1;
        const char* end = id_text.data() + id_text.size();
        const auto [ptr, ec] = std::from_chars(id_text.data(), end, id);
        if (ec != std::errc() || ptr != end || id < 0 || id >= n_max) {
            fail(source, ": added_tokens_decoder key '", id_text, "' is not a token id from 0 to ", n_max - 1,
                 " (the model's vocabulary)");
        }
        const std::string& content = string_field(entry, "content", source, "added_tokens_decoder[\"" + id_text + "\"]");
        const size_t at = static_cast<size_t>(id);
        if (at >= sp.pieces.size()) sp.pieces.resize(at + 1, {"", 0.0f, PieceType::Unused});
        sp.pieces[at].text = content;
        sp.pieces[at].type = is_true(entry.find("special")) ? PieceType::Control : PieceType::UserDefined;
        sp.pieces[at].score = -1000.0f;
    }
}

// gguf-py's SpecialVocab: ids from tokenizer.json's added tokens named by tokenizer_config.json,
// then config.json's *_token_id; the add_*_token flags; the chat template.
void add_special_tokens(GgufWriter& w, const fs::path& dir, const HfConfig& cfg, const Json& tok_config,
                        const Json* tok_json, int64_t n_vocab, const std::string& tj_source,
                        const std::string& tc_source) {
    static const char* const kTypes[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
    static const char* const kKeys[] = {"bos_token_id",     "eos_token_id", "unknown_token_id", "seperator_token_id",
                                        "padding_token_id", "cls_token_id", "mask_token_id"};  // llama.cpp's spelling
    std::vector<std::pair<size_t, int64_t>> ids;  // (type, id) in the order found
    auto have = [&](size_t t) {
        return std::any_of(ids.begin(), ids.end(), [t](const auto& p) { return p.first == t; });
    };
    if (const Json* added = tok_json ? array_or_none(*tok_json, "added_tokens", tj_source) : nullptr) {
        for (size_t t = 0; t < std::size(kTypes); ++t) {
            const Json* entry = tok_config.find(std::string(kTypes[t]) + "_token");
            if (entry && entry->is_object()) entry = entry->find("content");
            if (!entry || !entry->is_string()) continue;
            for (size_t i = 0; i < added->size(); ++i) {
                const Json& a = (*added)[i];
                const std::string where = "added_tokens[" + std::to_string(i) + "]";
                if (string_field(a, "content", tj_source, where) == entry->as_string()) {
                    ids.emplace_back(t, token_id(field(a, "id", tj_source, where), n_vocab, tj_source, where));
                    break;
                }
            }
        }
    }
    for (size_t t = 0; t < std::size(kTypes); ++t) {
        const Json* v = cfg.find((std::string(kTypes[t]) + "_token_id").c_str());
        if (!v || !v->is_number() || have(t)) continue;
        const double id = v->as_number();  // a list of ids, or one outside the vocabulary, is left out
        if (id == std::floor(id) && id >= 0 && id < static_cast<double>(n_vocab)) {
            ids.emplace_back(t, static_cast<int64_t>(id));
        }
    }
    for (const auto& [t, id] : ids) w.set_u32(std::string("tokenizer.ggml.") + kKeys[t], static_cast<uint32_t>(id));
    for (const char* t : {"bos", "eos", "sep"}) {
        const Json* v = tok_config.find(std::string("add_") + t + "_token");
        if (v && v->kind() == Json::Kind::Bool) {
            w.set_bool(std::string("tokenizer.ggml.add_") + t + "_token", v->as_bool());
        }
    }
    const Json* tmpl = tok_config.find("chat_template");
    if (tmpl && tmpl->is_string()) {
        w.set_string("tokenizer.chat_template", tmpl->as_string());
    } else if (tmpl && tmpl->is_array()) {  // [{name, template}]: "default" plus named ones
        std::vector<std::string> names;
        for (size_t i = 0; i < tmpl->size(); ++i) {
            const std::string where = "chat_template[" + std::to_string(i) + "]";
            const std::string& name = string_field((*tmpl)[i], "name", tc_source, where);
            const std::string& text = string_field((*tmpl)[i], "template", tc_source, where);
            if (name == "default") {
                w.set_string("tokenizer.chat_template", text);
            } else {
                w.set_string("tokenizer.chat_template." + name, text);
                names.push_back(name);
            }
        }
        if (!names.empty()) w.set_strings("tokenizer.chat_templates", names);
    } else if (fs::exists(dir / "chat_template.jinja")) {
        w.set_string("tokenizer.chat_template", read_file((dir / "chat_template.jinja").string()));
    }
}

// `embd_rows`: the rows of the checkpoint's token embedding (`embd_name`), when it has one; the
// vocabulary must match it, so no token id can index past the embedding.
int64_t add_hf_vocab(GgufWriter& w, const fs::path& dir, const HfConfig& cfg, std::optional<int64_t> embd_rows,
                     const std::string& embd_name) {
    const fs::path sp_path = dir / "tokenizer.model", tj_path = dir / "tokenizer.json",
                   tc_path = dir / "tokenizer_config.json";
    const Json tok_config =
        fs::exists(tc_path) ? Json::parse(read_file(tc_path.string()), tc_path.string()) : Json::object();
    std::optional<Json> tok_json;
    if (fs::exists(tj_path)) tok_json = Json::parse(read_file(tj_path.string()), tj_path.string());
    const int64_t n_max = embd_rows.value_or(limits::kMaxVocab);
    int64_t n_vocab = 0;
    std::string source;
    if (fs::exists(sp_path)) {
        SentencePieceModel sp = read_sentencepiece_model(sp_path.string());
        apply_added_tokens(sp, tok_config, n_max, tc_path.string());
        n_vocab = cfg.integer_or({"vocab_size"}, static_cast<int64_t>(sp.pieces.size()));
        source = sp_path.string();
        add_llama_vocab(w, sp, n_vocab, source);
    } else if (tok_json) {
        source = tj_path.string();
        n_vocab = add_bpe_vocab(w, *tok_json, cfg, n_max, source);
    } else {
        fail(dir.string(), ": no tokenizer.model or tokenizer.json");
    }
    if (embd_rows && n_vocab != *embd_rows) {
        fail(source, ": the vocabulary has ", n_vocab, " tokens (with config.json's vocab_size), but ", embd_name,
             " has ", *embd_rows, " rows; they must match");
    }
    add_special_tokens(w, dir, cfg, tok_config, tok_json ? &*tok_json : nullptr, n_vocab, tj_path.string(),
                       tc_path.string());
    return n_vocab;
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

namespace {

using namespace limits;

struct CountRange {
    const char* key;
    int64_t min, max;
};

// Every count config.json may give, with the range a real model stays in (util/limits.h): a
// value outside is refused before it sizes an allocation, divides anything or is written as a
// u32 that the loader would refuse (0, or 2^32 wrapped to 0, or -1 wrapped to 2^32 - 1).
constexpr CountRange kCountRanges[] = {
    {"vocab_size", 1, kMaxVocab},
    {"n_layers", 1, kMaxLayers},
    {"num_hidden_layers", 1, kMaxLayers},
    {"n_layer", 1, kMaxLayers},
    {"num_layers", 1, kMaxLayers},
    {"hidden_size", 1, kMaxDim},
    {"n_embd", 1, kMaxDim},
    {"dim", 1, kMaxDim},
    {"d_model", 1, kMaxDim},
    {"mamba_d_model", 1, kMaxDim},
    {"intermediate_size", 1, kMaxDim},
    {"n_inner", 1, kMaxDim},
    {"hidden_dim", 1, kMaxDim},
    {"d_inner", 1, kMaxDim},
    {"mamba_d_ssm", 1, kMaxDim},
    {"moe_intermediate_size", 1, kMaxDim},
    {"shared_expert_intermediate_size", 0, kMaxDim},
    {"num_attention_heads", 1, kMaxDim},
    {"n_head", 1, kMaxDim},
    {"n_heads", 1, kMaxDim},
    {"num_key_value_heads", 1, kMaxDim},
    {"n_kv_heads", 1, kMaxDim},
    {"head_dim", 1, kMaxHeadSize},
    {"mamba_d_head", 1, kMaxHeadSize},
    {"max_position_embeddings", 1, kMaxContext},
    {"n_ctx", 1, kMaxContext},
    {"n_positions", 1, kMaxContext},
    {"max_length", 1, kMaxContext},
    {"num_local_experts", 0, kMaxExperts},
    {"num_experts", 0, kMaxExperts},
    {"num_experts_per_tok", 0, kMaxExperts},
    {"num_experts_per_token", 0, kMaxExperts},
    {"conv_kernel", 1, kMaxConvKernel},
    {"d_conv", 1, kMaxConvKernel},
    {"mamba_d_conv", 1, kMaxConvKernel},
    {"state_size", 1, kMaxHeadSize},
    {"d_state", 1, kMaxHeadSize},
    {"mamba_d_state", 1, kMaxHeadSize},
    {"time_step_rank", 1, kMaxDim},
    {"dt_rank", 1, kMaxDim},
    {"mamba_dt_rank", 1, kMaxDim},
    {"n_groups", 1, kMaxDim},
    {"num_groups", 1, kMaxDim},
    {"expand", 1, kMaxConvKernel},
    {"mamba_expand", 1, kMaxConvKernel},
    {"attn_layer_offset", 0, kMaxLayers - 1},
    {"attn_layer_period", 1, kMaxLayers},
};

CountRange range_of(const char* key) {
    for (const CountRange& r : kCountRanges) {
        if (std::strcmp(r.key, key) == 0) return r;
    }
    return {key, 0, kMaxDim};
}

}  // namespace

const Json* HfConfig::find(const char* key) const {
    const Json* v = json_.find(key);
    return v && !v->is_null() ? v : nullptr;
}

const Json* HfConfig::find_number(const Keys& keys, const char** found) const {
    for (const char* k : keys) {
        const Json* v = find(k);
        if (v && v->is_number()) {
            *found = k;
            return v;
        }
    }
    return nullptr;
}

std::optional<double> HfConfig::number(const Keys& keys) const {
    const char* key = nullptr;
    const Json* v = find_number(keys, &key);
    if (!v) return std::nullopt;
    if (!std::isfinite(v->as_number())) {
        fail(path_, ": ", key, " is ", number_text(v->as_number()), ", expected a finite number");
    }
    return v->as_number();
}

std::optional<int64_t> HfConfig::integer_if(const Keys& keys) const {
    const char* key = nullptr;
    const Json* v = find_number(keys, &key);
    if (!v) return std::nullopt;
    const double d = v->as_number();
    const CountRange r = range_of(key);
    // Compared as doubles first: converting one outside int64 to an integer is undefined.
    if (d != std::floor(d) || d < static_cast<double>(r.min) || d > static_cast<double>(r.max)) {
        fail(path_, ": ", key, " is ", number_text(d), ", expected an integer from ", r.min, " to ", r.max);
    }
    return static_cast<int64_t>(d);
}

int64_t HfConfig::integer(const Keys& keys) const {
    if (auto v = integer_if(keys)) return *v;
    std::string names;
    for (const char* k : keys) names += (names.empty() ? "" : ", ") + std::string(k);
    fail(path_, ": missing key (one of: ", names, ")");
}

int64_t HfConfig::integer_or(const Keys& keys, int64_t fallback) const {
    return integer_if(keys).value_or(fallback);
}

std::string HfConfig::string_or(const char* key, const std::string& fallback) const {
    const Json* v = find(key);
    return v && v->is_string() ? v->as_string() : fallback;
}

std::optional<double> HfConfig::rope_theta() const {
    const Json* p = find("rope_parameters");
    if (p && p->is_object()) {
        const Json* t = p->find("rope_theta");
        if (t && t->is_number()) return t->as_number();
    }
    return number({"rope_theta"});
}

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
        std::make_shared<HfConfig>(Json::parse(read_file(config_path.string()), config_path.string()), config_path.string());
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
    for (const char* f : {"config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}) {
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
