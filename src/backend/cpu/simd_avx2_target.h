// Compiles every function defined after this header for AVX2+FMA+F16C without -mavx2 on the
// command line, so the binary stays portable (kernels.cpp calls these functions only on CPUs that
// have all three). Include it LAST, after every other header (<immintrin.h> included): an inline
// function of a header read after it would be compiled for AVX2 too, and the linker could hand
// that copy to code running on an older CPU. Close the region with simd_avx2_target_end.h.
//
// Contraction of a*b+c into one FMA is off in the region, as for the reference quantizers
// (quant_search.h): the activation quantizers here must round exactly as those do. Kernels that
// want FMA call _mm256_fmadd_ps explicitly.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#pragma GCC optimize("fp-contract=off")
#endif
