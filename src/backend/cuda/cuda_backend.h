// The CUDA backend's entry points (host side in src/backend/cuda/, kernels in cuda/). Built only
// when CMake finds nvcc; the registry (backend_registry.cpp) calls these.
#pragma once

#include <memory>
#include <string>

namespace strata {

class Backend;

// Empty when a CUDA device can be used here; otherwise why not ("no CUDA device found", the
// driver's error), for notices and test skip messages.
std::string cuda_unavailable_reason();
// The backend on CUDA device `device` (one stream); throws Error when it cannot be created.
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace strata
