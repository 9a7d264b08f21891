// Shared helpers for the test suites: where fixtures live, temporary files, small file I/O.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace strata::test {

// ../shared beside the checkout, or $STRATA_SHARED; empty when absent.
std::filesystem::path shared_dir();
// A fixture path under shared_dir(); empty when the fixtures are absent.
std::filesystem::path fixture(const std::string& relative);
// True (and a loud MESSAGE) when the fixtures are missing, so the caller returns early.
bool skip_without_shared(const char* what);

// A fresh directory under the system temp dir, unique per process.
std::filesystem::path temp_dir();

std::vector<uint8_t> read_bytes(const std::filesystem::path& path);
std::string read_text(const std::filesystem::path& path);
void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes);
std::vector<float> read_f32(const std::filesystem::path& path);

// Whether a write of `output` left a temporary file beside it (OUT.strata-tmp-*).
bool temp_file_left(const std::filesystem::path& output);

// Runs the strata binary with the given arguments; returns exit code, captures stdout+stderr.
int run_strata(const std::string& args, std::string* output);
// Runs a shell command line the same way; $STRATA names the binary (for ulimit, pipes, traps).
int run_shell(const std::string& command, std::string* output);

}  // namespace strata::test
