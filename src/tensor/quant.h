// Whole-row conversions through the type table, for callers that do not want to check the
// function pointers themselves (converters, tests, the reference backend).
#pragma once

#include <cstdint>

#include "tensor/ggml_type.h"

namespace strata {

// Reference-quantizes n floats into `type`; throws Error when strata cannot write the type or n is
// not a multiple of its block size.
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);
// Decodes n elements of `type`; throws Error when strata cannot decode the type or n is not a
// multiple of its block size.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

}  // namespace strata
