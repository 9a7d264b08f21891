// get_rows: the embedding lookup, out row i = table row ids[i] converted to float, for every
// weight format of dequant.cuh (the values are the reference dequantizers' exactly).
#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "dequant.cuh"
#include "kernels.h"

namespace strata {
namespace {

// Each thread dequantizes one chunk of the row (one element of a float table, 32 of a quantized
// one) and writes its floats; rows go along y (grid_y, looped beyond 65535) so no thread divides
// an index by the row width. For the float types a warp reads 32 neighbouring elements and
// writes 32 neighbouring floats (coalesced); 256 threads cover a typical embedding row
// (2048…8192 wide) in 8…32 blocks. For the block types a warp reads 32 neighbouring blocks; 64
// threads per block (2048 elements) still give a 4096-wide row two blocks, so even one id spreads
// over two SMs.
template <class Fmt>
constexpr int block_threads() {
    return Fmt::kChunk == 1 ? 256 : 64;
}

// An id outside the table writes NaN to its row instead of reading out of bounds: the caller
// checks ids (backend.h), and a NaN shows a slip where a silent clamp would hide it.
template <class Fmt>
__global__ void get_rows_kernel(const char* table, size_t table_stride, int64_t table_rows, const int32_t* ids,
                                int64_t n_ids, int64_t n_chunks, char* out, size_t out_stride) {
    const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= n_chunks) return;
    for (int64_t i = blockIdx.y; i < n_ids; i += gridDim.y) {
        float* dst = reinterpret_cast<float*>(out + static_cast<size_t>(i) * out_stride) + c * Fmt::kChunk;
        const int64_t id = ids[i];
        float v[Fmt::kChunk];
        if (id >= 0 && id < table_rows) {
            Fmt::dequant(table + static_cast<size_t>(id) * table_stride, c, v);
        } else {
#pragma unroll
            for (int j = 0; j < Fmt::kChunk; ++j) v[j] = __int_as_float(0x7fc00000);  // quiet NaN
        }
#pragma unroll
        for (int j = 0; j < Fmt::kChunk; ++j) dst[j] = v[j];
    }
}

}  // namespace

void launch_get_rows(GgmlType type, const void* table, size_t table_row_stride, int64_t table_rows,
                     const int32_t* ids, int64_t n_ids, int64_t n_cols, float* out, size_t out_row_stride,
                     cudaStream_t stream) {
    with_format(type, "get_rows", [&](auto fmt) {
        using Fmt = decltype(fmt);
        const int64_t n_chunks = n_cols / Fmt::kChunk;
        if (n_ids == 0 || n_chunks == 0) return;
        constexpr int kBlock = block_threads<Fmt>();
        const dim3 grid(blocks_for(n_chunks, kBlock), grid_y(n_ids));
        get_rows_kernel<Fmt><<<grid, kBlock, 0, stream>>>(static_cast<const char*>(table), table_row_stride,
                                                          table_rows, ids, n_ids, n_chunks,
                                                          reinterpret_cast<char*>(out), out_row_stride);
        STRATA_CUDA_CHECK(cudaGetLastError());
    });
}

}  // namespace strata
