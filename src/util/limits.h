// The sane maxima every reader of an untrusted model file checks its counts against: far above
// any published model (embeddings of 2^14, vocabularies of 2^18, 256 experts, 128 layers), so a
// value beyond one is a corrupt or hostile file, refused with its name before it sizes an
// allocation or enters arithmetic. With them every product of a few counts stays far inside int64.
#pragma once

#include <cstdint>

namespace strata::limits {

inline constexpr int64_t kMaxVocab = int64_t{1} << 24;     // tokens
inline constexpr int64_t kMaxDim = int64_t{1} << 20;       // embedding, feed-forward, heads, inner sizes
inline constexpr int64_t kMaxHeadSize = int64_t{1} << 16;  // key/value length per head, SSM state size
inline constexpr int64_t kMaxLayers = int64_t{1} << 12;
inline constexpr int64_t kMaxExperts = int64_t{1} << 12;
inline constexpr int64_t kMaxContext = int64_t{1} << 30;   // trained context length in tokens
inline constexpr int64_t kMaxConvKernel = int64_t{1} << 10;

}  // namespace strata::limits
