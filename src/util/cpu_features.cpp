#include "util/cpu_features.h"

#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace strata {

const CpuFeatures& CpuFeatures::get() {
    static const CpuFeatures f = [] {
        CpuFeatures c;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        c.avx = __builtin_cpu_supports("avx");
        c.avx2 = __builtin_cpu_supports("avx2");
        c.fma = __builtin_cpu_supports("fma");
        c.f16c = __builtin_cpu_supports("f16c");
        c.avx512f = __builtin_cpu_supports("avx512f");
        c.avx512bw = __builtin_cpu_supports("avx512bw");
        c.avx512vnni = __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__)
        c.neon = true;
#endif
        return c;
    }();
    return f;
}

std::string CpuFeatures::to_string() const {
    std::string s;
    auto add = [&](bool on, const char* name) {
        if (!on) return;
        if (!s.empty()) s += ' ';
        s += name;
    };
    add(avx, "AVX");
    add(avx2, "AVX2");
    add(fma, "FMA");
    add(f16c, "F16C");
    add(avx512f, "AVX512F");
    add(avx512bw, "AVX512BW");
    add(avx512vnni, "AVX512VNNI");
    add(neon, "NEON");
    return s.empty() ? "none" : s;
}

int physical_cores() {
    // Count distinct (physical id, core id) pairs; hyperthreads share a core and slow matmuls down.
    std::ifstream in("/proc/cpuinfo");
    std::set<std::pair<std::string, std::string>> cores;
    std::string line, phys = "0";
    while (std::getline(in, line)) {
        auto value = [&] { return line.substr(line.find(':') + 1); };
        if (line.rfind("physical id", 0) == 0) phys = value();
        else if (line.rfind("core id", 0) == 0) cores.emplace(phys, value());
    }
    int logical = static_cast<int>(std::thread::hardware_concurrency());
    if (!cores.empty() && static_cast<int>(cores.size()) <= logical) return static_cast<int>(cores.size());
    return logical > 0 ? logical : 1;
}

}  // namespace strata
