// get_rows: the embedding lookup, out row i = table row ids[i] converted to float.
#include <cuda_fp16.h>

#include "backend/cuda/cuda_check.h"
#include "common.cuh"
#include "kernels.h"

namespace strata {
namespace {

// Each thread converts one element: the threads of a warp read neighbouring elements of the
// table row and write neighbouring floats (coalesced). 256 threads cover a typical embedding
// row (2048…8192 wide) in 8…32 blocks along x; rows go along y (grid_y) so no thread divides
// an index by the row width.
constexpr int kBlock = 256;

struct LoadF32 {
    __device__ float operator()(const char* row, int64_t j) const { return reinterpret_cast<const float*>(row)[j]; }
};

struct LoadF16 {
    __device__ float operator()(const char* row, int64_t j) const {
        return __half2float(reinterpret_cast<const __half*>(row)[j]);
    }
};

// Q8_0 (ggml-common.h block_q8_0): 32 elements per 34-byte block, x = d · q with d an IEEE half.
// The 32 lanes that share a block read the same d (one broadcast load).
struct LoadQ8_0 {
    static constexpr int kBlockElems = 32, kBlockBytes = 2 + kBlockElems;
    __device__ float operator()(const char* row, int64_t j) const {
        const char* block = row + (j / kBlockElems) * kBlockBytes;
        const float d = __half2float(*reinterpret_cast<const __half*>(block));
        return d * static_cast<float>(reinterpret_cast<const int8_t*>(block + 2)[j % kBlockElems]);
    }
};

template <class Load>
__global__ void get_rows_kernel(const char* table, size_t table_stride, const int32_t* ids, int64_t n_ids,
                                int64_t n_cols, char* out, size_t out_stride) {
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (j >= n_cols) return;
    for (int64_t i = blockIdx.y; i < n_ids; i += gridDim.y) {
        const char* src = table + static_cast<int64_t>(ids[i]) * table_stride;
        reinterpret_cast<float*>(out + i * out_stride)[j] = Load{}(src, j);
    }
}

template <class Load>
void launch(const void* table, size_t table_stride, const int32_t* ids, int64_t n_ids, int64_t n_cols, float* out,
            size_t out_stride, cudaStream_t stream) {
    if (n_ids == 0 || n_cols == 0) return;
    const dim3 grid(blocks_for(n_cols, kBlock), grid_y(n_ids));
    get_rows_kernel<Load><<<grid, kBlock, 0, stream>>>(static_cast<const char*>(table), table_stride, ids, n_ids,
                                                       n_cols, reinterpret_cast<char*>(out), out_stride);
    STRATA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_get_rows_f32(const void* table, size_t table_row_stride, const int32_t* ids, int64_t n_ids,
                         int64_t n_cols, float* out, size_t out_row_stride, cudaStream_t stream) {
    launch<LoadF32>(table, table_row_stride, ids, n_ids, n_cols, out, out_row_stride, stream);
}

void launch_get_rows_f16(const void* table, size_t table_row_stride, const int32_t* ids, int64_t n_ids,
                         int64_t n_cols, float* out, size_t out_row_stride, cudaStream_t stream) {
    launch<LoadF16>(table, table_row_stride, ids, n_ids, n_cols, out, out_row_stride, stream);
}

void launch_get_rows_q8_0(const void* table, size_t table_row_stride, const int32_t* ids, int64_t n_ids,
                          int64_t n_cols, float* out, size_t out_row_stride, cudaStream_t stream) {
    launch<LoadQ8_0>(table, table_row_stride, ids, n_ids, n_cols, out, out_row_stride, stream);
}

}  // namespace strata
