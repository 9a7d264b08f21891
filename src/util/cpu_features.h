// What the running CPU supports (runtime detection, so one portable binary can pick kernels).
#pragma once

#include <string>

namespace strata {

struct CpuFeatures {
    bool avx = false, avx2 = false, fma = false, f16c = false, avx512f = false, avx512bw = false,
         avx512vnni = false, neon = false;
    static const CpuFeatures& get();
    std::string to_string() const;  // "AVX2 FMA F16C ..." (what is present)
};

// Physical cores when known (the default thread count), else logical CPUs.
int physical_cores();

}  // namespace strata
