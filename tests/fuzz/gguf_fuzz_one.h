// One fuzz execution over the GGUF reader: parse, then touch everything a loader would touch.
// Shared by the libFuzzer target and the bounded mutation pass in the test suite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "format/gguf.h"
#include "util/error.h"

namespace strata::fuzz {

// Returns true if the input parsed; false if it was rejected with strata::Error.
// Any other exception or a crash is a bug.
inline bool gguf_fuzz_one(const uint8_t* data, size_t size) {
    try {
        auto f = GgufFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz.gguf");
        size_t checksum = 0;
        for (const auto& [key, value] : f->metadata()) checksum += value.to_string().size() + key.size();
        for (const auto& info : f->tensor_infos()) {
            TensorView t = f->tensor(info.name);
            const uint8_t* p = static_cast<const uint8_t*>(t.data);
            for (size_t i = 0; i < t.nbytes; i += 61) checksum += p[i];
            if (t.nbytes) checksum += p[t.nbytes - 1];
        }
        volatile size_t sink = checksum;
        (void)sink;
        return true;
    } catch (const Error&) {
        return false;
    }
}

}  // namespace strata::fuzz
