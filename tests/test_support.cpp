#include "test_support.h"
#include "test_backend.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace strata::test {

fs::path shared_dir() {
    if (const char* env = std::getenv("STRATA_SHARED"); env && *env) {
        return fs::exists(env) ? fs::path(env) : fs::path();
    }
    fs::path beside = fs::path(STRATA_SOURCE_DIR).parent_path() / "shared";
    return fs::exists(beside / "fixtures") ? beside : fs::path();
}

fs::path fixture(const std::string& relative) {
    fs::path dir = shared_dir();
    return dir.empty() ? dir : dir / "fixtures" / relative;
}

bool skip_without_shared(const char* what) {
    if (!shared_dir().empty()) return false;
    MESSAGE("SKIPPED (no ../shared fixtures; set STRATA_SHARED): ", std::string(what));
    return true;
}

fs::path temp_dir() {
    static fs::path dir = [] {
        fs::path d = fs::temp_directory_path() / ("strata-test-" + std::to_string(getpid()));
        fs::create_directories(d);
        return d;
    }();
    return dir;
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in, "cannot open ", path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string read_text(const fs::path& path) {
    std::vector<uint8_t> b = read_bytes(path);
    return {b.begin(), b.end()};
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

std::vector<float> read_f32(const fs::path& path) {
    std::vector<uint8_t> b = read_bytes(path);
    std::vector<float> v(b.size() / sizeof(float));
    std::memcpy(v.data(), b.data(), v.size() * sizeof(float));
    return v;
}

bool temp_file_left(const fs::path& output) {
    const std::string prefix = output.filename().string() + ".strata-tmp";
    const fs::path dir = output.has_parent_path() ? output.parent_path() : fs::path(".");
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().filename().string().rfind(prefix, 0) == 0) return true;
    }
    return false;
}

int run_strata(const std::string& args, std::string* output) {
    return run_shell(std::string(STRATA_BINARY) + " " + args, output);
}

int run_shell(const std::string& command, std::string* output) {
    std::string cmd = "STRATA='" + std::string(STRATA_BINARY) + "'; { " + command + "; } 2>&1";
    FILE* pipe = popen(cmd.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
    int status = pclose(pipe);
    if (output) *output = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace strata::test

namespace strata::test {

std::unique_ptr<Backend> test_backend(int n_threads) {
    const char* name = std::getenv("STRATA_TEST_BACKEND");
    return make_backend(name && *name ? name : "cpu", n_threads);
}

std::unique_ptr<Model> load_test_model(const GgufFile& file, Backend& backend) {
    std::unique_ptr<Model> model = load_model(file, backend);
    model->set_kv_cache_types({GgmlType::F32, GgmlType::F32});
    return model;
}

}  // namespace strata::test
