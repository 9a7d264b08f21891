#include "decode/sampler.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "util/error.h"

namespace strata {

int32_t Sampler::sample(std::span<const float> logits) {
    if (logits.empty()) fail("sampling from empty logits");
    auto max_it = std::max_element(logits.begin(), logits.end());
    if (params_.temperature <= 0) return static_cast<int32_t>(max_it - logits.begin());
    std::vector<double> p(logits.size());
    double sum = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
        p[i] = std::exp((static_cast<double>(logits[i]) - *max_it) / params_.temperature);
        sum += p[i];
    }
    // Inverse-CDF draw from a 53-bit uniform: exact for a given seed on every platform.
    double u = std::generate_canonical<double, 53>(rng_) * sum;
    for (size_t i = 0; i < p.size(); ++i) {
        u -= p[i];
        if (u < 0) return static_cast<int32_t>(i);
    }
    return static_cast<int32_t>(max_it - logits.begin());
}

}  // namespace strata
