// The backends compiled into this binary: the CPU always, CUDA when built with nvcc.
#include "backend/backend.h"

#ifdef STRATA_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace strata {

std::vector<BackendInfo> list_backends() {
    std::vector<BackendInfo> out{{"cpu", true, ""}};
#ifdef STRATA_CUDA
    const std::string why = cuda_unavailable_reason();
    out.push_back({"cuda", why.empty(), why});
#else
    out.push_back({"cuda", false, "this binary was built without CUDA (nvcc not found at configure time)"});
#endif
    return out;
}

std::unique_ptr<Backend> make_backend(const std::string& name, int n_threads) {
    if (name == "cpu") return make_cpu_backend(n_threads);
    std::string names;
    for (const BackendInfo& b : list_backends()) {
        if (b.name == name && !b.available) fail("backend '", name, "' cannot run here: ", b.why_not);
        names += (names.empty() ? "" : ", ") + b.name;
    }
#ifdef STRATA_CUDA
    if (name == "cuda") return make_cuda_backend(0);
#endif
    fail("unknown backend '", name, "' (built in: ", names, ")");
}

}  // namespace strata
