// Builds GGUF images byte by byte, so tests can produce every malformed variant on purpose.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace strata::test {

struct GgufBytes {
    std::vector<uint8_t> b;

    template <class T>
    GgufBytes& put(T v) {
        uint8_t tmp[sizeof(T)];
        std::memcpy(tmp, &v, sizeof v);
        b.insert(b.end(), tmp, tmp + sizeof v);
        return *this;
    }
    GgufBytes& str(const std::string& s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    GgufBytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        b.insert(b.end(), {'G', 'G', 'U', 'F'});
        return put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
    }
    GgufBytes& kv_u32(const std::string& key, uint32_t v) { return str(key).put<uint32_t>(4).put<uint32_t>(v); }
    GgufBytes& kv_str(const std::string& key, const std::string& v) { return str(key).put<uint32_t>(8).str(v); }
    // Tensor info with explicit dims (ggml order), type id and data offset.
    GgufBytes& tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, uint64_t offset) {
        str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
        for (int64_t d : ne) put<int64_t>(d);
        return put<uint32_t>(type).put<uint64_t>(offset);
    }
    GgufBytes& pad_to(size_t alignment) {
        while (b.size() % alignment) b.push_back(0);
        return *this;
    }
    GgufBytes& zeros(size_t n) {
        b.insert(b.end(), n, 0);
        return *this;
    }
};

}  // namespace strata::test
