// The scale searches behind ggml's reference quantizers (ggml-quants.c), reproduced operation by
// operation so the bytes we write equal llama-quantize's without an importance matrix. They are
// floating-point searches: changing the order of an addition changes which scale wins a tie.
#pragma once

#include <cstdint>
#include <cstring>

// ggml compiles its reference quantizers without fused multiply-add (they live in ggml-base,
// which gets no -march flags). A contracted a*b+c rounds once instead of twice, which moves
// ties in these searches and in the final level rounding, so with -march=native the bytes would
// no longer match llama-quantize's. Every function defined after this point in a file including
// this header is therefore compiled without contraction.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace strata {

// Round to nearest, ties to even, for |x| < 2^22: adding 1.5 * 2^23 leaves the rounded integer in
// the low mantissa bits. ggml uses this instead of lroundf (ties away), so we must too.
inline int nearest_int(float x) {
    const float biased = x + 12582912.f;
    int32_t bits;
    std::memcpy(&bits, &biased, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

// Symmetric levels L in [0, 2*nmax) for x ~ scale * (L - nmax); returns the scale. Tries 19 scales
// around nmax/max|x| and keeps the one minimising sum x^2 (x - scale*l)^2 (ggml's make_qx_quants
// with rmse_type 1 and no importance weights).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L);

// As make_qx_quants for Q3_K, refined by coordinate descent: each level is moved to the one the
// current least-squares scale prefers while that lowers the weighted error (ggml's make_q3_quants
// with do_rmse). L in [0, 2*nmax).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L);

// Asymmetric levels L in [0, nmax] for x ~ scale * L - min, min >= 0 returned in *the_min. Tries
// nstep+1 grid spacings (rmin + rdelta*is + nmax)/(max - min) and, for each, the weighted
// least-squares scale and min; keeps the lowest weighted squared (or absolute, use_mad) error.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);

// Index of the IQ4_NL level nearest to x (ties go up, as in ggml's best_index_int8).
int best_index_iq4nl(float x);

// The scale d of a block of 32 on the IQ4_NL grid (x ~ d * kvalues_iq4nl[L]): starting from
// max|x|/127, tries 15 grid stretches and keeps the x^2-weighted least-squares fit. 0 for an
// all-zero block. This is the ntry = 7 search llama-quantize runs (quantize_iq4_nl/_xs).
float iq4nl_block_scale(const float* x);

}  // namespace strata
