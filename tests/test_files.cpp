// Files are never destroyed (util/files.h): outputs appear whole or not at all, through a
// temporary file with a random name that a planted symlink cannot redirect; an output that is an
// input (by any spelling: ./, a symlink, a hard link) or a non-regular file is refused; a full
// disk or SIGINT/SIGTERM leaves the old file and no temporary. Then the same through the CLI:
// quantize, convert and chat /save. Inputs that are not regular files (a FIFO) are refused at once.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "llama2c_builder.h"
#include "test_support.h"
#include "util/error.h"
#include "util/files.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
    const fs::path dir = test::temp_dir() / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

void write_text(const fs::path& path, const std::string& text) {
    test::write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// What a write left behind in `dir`: anything with "strata-tmp" in its name.
std::vector<std::string> temp_files(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().filename().string().find("strata-tmp") != std::string::npos) out.push_back(e.path().string());
    }
    return out;
}

// Runs fn with files limited to `bytes` and SIGXFSZ ignored: a write past the limit fails with
// EFBIG, as one on a full disk fails with ENOSPC.
template <class F>
void with_file_size_limit(rlim_t bytes, F fn) {
    rlimit old{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    rlimit low = old;
    low.rlim_cur = bytes;
    auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &low) == 0);
    try {
        fn();
    } catch (...) {
        setrlimit(RLIMIT_FSIZE, &old);
        std::signal(SIGXFSZ, old_handler);
        throw;
    }
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
}

}  // namespace

TEST_CASE("files: an atomic write appears whole or not at all, under a name no symlink redirects") {
    const fs::path dir = fresh_dir("atomic");
    const fs::path out = dir / "out.bin";
    write_text(out, "old");
    {
        AtomicFile f(out.string());
        f.write("new", 3);
        CHECK(test::read_text(out) == "old");
        CHECK(temp_files(dir).size() == 1);
    }  // no commit: an error path
    CHECK(test::read_text(out) == "old");
    CHECK(temp_files(dir).empty());
    {
        AtomicFile f(out.string());
        f.write("new", 3);
        f.commit();
    }
    CHECK(test::read_text(out) == "new");
    CHECK(temp_files(dir).empty());

    // The old fixed name OUT.strata-tmp, planted as a symlink to a victim, is never opened.
    const fs::path victim = dir / "victim";
    write_text(victim, "precious");
    fs::create_symlink(victim, out.string() + ".strata-tmp");
    {
        AtomicFile a(out.string()), b(out.string());
        CHECK(a.temp_path() != b.temp_path());
        CHECK(a.temp_path().rfind(out.string() + ".strata-tmp-", 0) == 0);
        CHECK(fs::path(a.temp_path()).parent_path() == out.parent_path());
    }
    write_file_atomically(out.string(), "x");
    CHECK(test::read_text(victim) == "precious");
    CHECK(test::read_text(out) == "x");
    fs::remove(out.string() + ".strata-tmp");

    // Replacing a file keeps its permissions.
    fs::permissions(out, fs::perms::owner_read | fs::perms::owner_write);
    write_file_atomically(out.string(), "y");
    CHECK(fs::status(out).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
    CHECK(temp_files(dir).empty());
}

TEST_CASE("files: an output that is an input, or an existing non-regular file, is refused before writing") {
    const fs::path dir = fresh_dir("same-file");
    const fs::path in = dir / "in.bin";
    write_text(in, "data");
    fs::create_symlink(in, dir / "link.bin");
    fs::create_hard_link(in, dir / "hard.bin");
    for (const fs::path& out : {dir / "." / "in.bin", dir / "link.bin", dir / "hard.bin"}) {
        CAPTURE(out);
        CHECK_THROWS_WITH_AS(check_output_path(out.string(), {in.string()}),
                             doctest::Contains((out.string() + ": is the input " + in.string() + " (the same file)").c_str()),
                             Error);
        CHECK_THROWS_AS(AtomicFile(out.string(), {in.string()}), Error);
    }
    CHECK_NOTHROW(check_output_path((dir / "other.bin").string(), {in.string()}));
    CHECK_NOTHROW(check_output_path(in.string(), {(dir / "other.bin").string()}));  // absent inputs never match
    CHECK_THROWS_WITH_AS(check_output_path("/dev/null", {}),
                         doctest::Contains("/dev/null: exists and is a character device; refusing to replace it"),
                         Error);
    CHECK_THROWS_WITH_AS(check_output_path(dir.string(), {}), doctest::Contains("exists and is a directory"), Error);
    CHECK_THROWS_WITH_AS(AtomicFile((dir / "no-such-dir" / "x").string()), doctest::Contains("cannot create"), Error);
    CHECK(test::read_text(in) == "data");
    CHECK(temp_files(dir).empty());
}

TEST_CASE("files: a full disk or SIGINT/SIGTERM mid-write leaves the old file and no temporary") {
    const fs::path dir = fresh_dir("interrupted");
    const fs::path out = dir / "save.json";
    write_text(out, "old save");
    with_file_size_limit(4096, [&] {
        CHECK_THROWS_WITH_AS(write_file_atomically(out.string(), std::string(10000, 'x')),
                             doctest::Contains((out.string() + ": write failed (File too large); the file was left as it was").c_str()),
                             Error);
    });
    CHECK(test::read_text(out) == "old save");
    CHECK(temp_files(dir).empty());

    for (int sig : {SIGINT, SIGTERM}) {
        CAPTURE(sig);
        const pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {  // the child: default dispositions (doctest handles both), a write, the signal
            std::signal(SIGINT, SIG_DFL);
            std::signal(SIGTERM, SIG_DFL);
            AtomicFile f(out.string());
            f.write("partial", 7);
            raise(sig);
            _exit(0);
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == sig);
        CHECK(test::read_text(out) == "old save");
        CHECK(temp_files(dir).empty());
    }
}

TEST_CASE("files: reading a FIFO, a directory or a device fails at once instead of blocking") {
    const fs::path dir = fresh_dir("fifo");
    const fs::path fifo = dir / "model.gguf";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(read_file(fifo.string()), doctest::Contains((fifo.string() + ": not a regular file (a FIFO)").c_str()), Error);
    CHECK_THROWS_WITH_AS(read_file(dir.string()), doctest::Contains(": not a regular file (a directory)"), Error);
    CHECK_THROWS_WITH_AS(read_file("/dev/zero"), doctest::Contains("not a regular file (a character device)"), Error);
    write_text(dir / "big.json", std::string(100, ' '));
    CHECK_THROWS_WITH_AS(read_file((dir / "big.json").string(), 64), doctest::Contains("100 bytes is more than the 64"),
                         Error);
    std::string output;
    CHECK(test::run_shell("timeout 20 $STRATA info " + fifo.string(), &output) == 1);
    CHECK(output.find("strata: error: " + fifo.string() + ": not a regular file (a FIFO)") != std::string::npos);
}

TEST_CASE("files: quantize, convert and chat /save never destroy their input") {
    const fs::path dir = fresh_dir("cli-outputs");
    const fs::path in = dir / "in.gguf";
    fs::copy_file(fs::path(STRATA_SOURCE_DIR) / "models/shakespeare-q8_0.gguf", in);
    const std::vector<uint8_t> original = test::read_bytes(in);
    fs::create_symlink(in, dir / "link.gguf");
    std::string output;
    for (const fs::path& out : {dir / "." / "in.gguf", dir / "link.gguf"}) {
        CAPTURE(out);
        CHECK(test::run_strata("quantize " + in.string() + " " + out.string() + " q8_0", &output) == 1);
        CHECK(output.find("is the input " + in.string() + " (the same file); refusing to overwrite it") !=
              std::string::npos);
    }
    CHECK(test::run_strata("quantize " + in.string() + " /dev/null q8_0", &output) == 1);
    CHECK(output.find("strata: error: /dev/null: exists and is a character device") != std::string::npos);
    CHECK(fs::is_character_file("/dev/null"));

    const fs::path bin = dir / "x.bin";
    test::write_llama2c(bin, {});
    const std::vector<uint8_t> checkpoint = test::read_bytes(bin);
    CHECK(test::run_strata("convert " + bin.string() + " -o " + bin.string(), &output) == 1);
    CHECK(output.find("is the input " + bin.string()) != std::string::npos);
    CHECK(test::read_bytes(bin) == checkpoint);
    CHECK(test::run_strata("convert " + bin.string() + " -o " + (dir / "x.gguf").string(), &output) == 0);

    if (!test::fixture("hf/llama-draft").empty()) {
        const fs::path hf = dir / "hf";
        fs::create_directories(hf);
        for (const char* f : {"config.json", "tokenizer.model", "tokenizer_config.json", "model.safetensors"}) {
            fs::copy_file(test::fixture("hf/llama-draft") / f, hf / f);
        }
        const std::vector<uint8_t> weights = test::read_bytes(hf / "model.safetensors");
        CHECK(test::run_strata("convert " + hf.string() + " -o " + (hf / "model.safetensors").string(), &output) == 1);
        CHECK(output.find("model.safetensors: is the input") != std::string::npos);
        CHECK(test::read_bytes(hf / "model.safetensors") == weights);
        CHECK(test::run_strata("convert " + hf.string() + " -o " + (hf / "model.gguf").string(), &output) == 0);
        CHECK(temp_files(hf).empty());
    }

    // /save on a full disk (a file-size limit here) reports the error and keeps the older save.
    const fs::path save = dir / "chat.json";
    write_text(save, "older save");
    CHECK(test::run_shell("trap '' XFSZ; ulimit -f 4; printf '/save " + save.string() + "\\n' | $STRATA chat -m " +
                              in.string() + " --temp 0 -n 4 -sys " + std::string(6000, 'a'),
                          &output) == 0);
    CHECK(output.find("strata: error: " + save.string() + ": write failed (File too large)") != std::string::npos);
    CHECK(test::read_text(save) == "older save");
    CHECK(test::read_bytes(in) == original);
    CHECK(temp_files(dir).empty());
}
