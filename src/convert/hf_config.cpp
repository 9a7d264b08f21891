// config.json's values for the architecture tables: the range of every count (one table, checked
// before a value is used) and the float values, each error naming the file, the key and the value.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "convert/hf_convert.h"
#include "util/error.h"
#include "util/limits.h"

namespace strata {

// A config value for a message: integers as integers, anything else with all its digits.
std::string json_number_text(double d) {
    char buf[64];
    if (d == std::floor(d) && std::fabs(d) < 1e18) std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
    else std::snprintf(buf, sizeof buf, "%.17g", d);
    return buf;
}

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
        fail(path_, ": ", key, " is ", json_number_text(v->as_number()), ", expected a finite number");
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
        fail(path_, ": ", key, " is ", json_number_text(d), ", expected an integer from ", r.min, " to ", r.max);
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

}  // namespace strata
