// The one check of every CUDA runtime call, host code and kernel launches alike (after a launch,
// check cudaGetLastError()): a failure throws strata::Error naming the call as written, CUDA's
// error string, and the file and line, e.g.
//   cuda: cudaMalloc(&p, bytes) failed: out of memory (cudaErrorMemoryAllocation) at …/cuda_backend.cpp:53
// Errors from earlier asynchronous work surface at the next checked call, so the file and line
// say where it was noticed, not necessarily where it started (CUDA_LAUNCH_BLOCKING=1 narrows it).
#pragma once

#include <cuda_runtime_api.h>

#include "util/error.h"

namespace strata {

[[noreturn]] inline void cuda_fail(const char* call, cudaError_t err, const char* file, int line) {
    fail("cuda: ", call, " failed: ", cudaGetErrorString(err), " (", cudaGetErrorName(err), ") at ", file, ":", line);
}

}  // namespace strata

#define STRATA_CUDA_CHECK(call)                                                 \
    do {                                                                        \
        const cudaError_t strata_cuda_err_ = (call);                            \
        if (strata_cuda_err_ != cudaSuccess) {                                  \
            ::strata::cuda_fail(#call, strata_cuda_err_, __FILE__, __LINE__);  \
        }                                                                       \
    } while (0)
