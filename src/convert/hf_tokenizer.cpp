// tokenizer.model or tokenizer.json, with tokenizer_config.json's added tokens, special token ids
// and chat template, as GGUF tokenizer.* keys the way gguf-py writes them. Both files come from
// strangers: every field is checked for its type, and every token id against the model's
// vocabulary, before it sizes anything; an error names the file and the field.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>

#include "convert/hf_convert.h"
#include "format/sentencepiece_model.h"
#include "util/error.h"
#include "util/files.h"
#include "util/limits.h"

namespace strata {

namespace fs = std::filesystem;

namespace {

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
        fail(source, ": ", where, " has id ", v.is_number() ? json_number_text(d) : v.dump(),
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
        const std::string where = "added_tokens_decoder[\"" + id_text + "\"]";
        const std::string& content = string_field(entry, "content", source, where);
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
}  // namespace

int64_t add_hf_vocab(GgufWriter& w, const std::string& folder, const HfConfig& cfg, std::optional<int64_t> embd_rows,
                     const std::string& embd_name) {
    const fs::path dir = folder;
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

}  // namespace strata
