// GGUF reader/writer: round trips, every malformed-file case with the error it must give, and
// every fixture file written by llama.cpp.
#include <doctest/doctest.h>

#include <filesystem>

#include "format/gguf.h"
#include "gguf_builder.h"
#include "tensor/ggml_type.h"
#include "test_support.h"
#include "util/error.h"
#include "util/json.h"

using namespace strata;
using strata::test::GgufBytes;
namespace fs = std::filesystem;

namespace {

// The error message a parse of `bytes` gives (empty if it parses).
std::string parse_error(const std::vector<uint8_t>& bytes) {
    try {
        GgufFile::from_bytes(bytes, "bad.gguf");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// A valid file: one key, one F32 tensor of 8 elements, one Q8_0 tensor of 32 elements.
GgufBytes valid_file() {
    GgufBytes g;
    g.header(2, 1).kv_str("general.architecture", "llama");
    g.tensor("a", {8}, 0, 0).tensor("b", {32}, 8, 32);
    g.pad_to(32).zeros(32 + 34);
    return g;
}

}  // namespace

TEST_CASE("a minimal hand-built file parses") {
    GgufBytes g = valid_file();
    auto f = GgufFile::from_bytes(g.b, "ok.gguf");
    CHECK(f->version() == 3);
    CHECK(f->get_string("general.architecture") == "llama");
    REQUIRE(f->tensor_infos().size() == 2);
    CHECK(f->tensor("b").type == GgmlType::Q8_0);
    CHECK(f->tensor("b").nbytes == 34);
}

TEST_CASE("writer round trip: every metadata type and several tensor types") {
    fs::path path = test::temp_dir() / "roundtrip.gguf";
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_u8("t.u8", 200);
    w.set_u32("t.u32", 4000000000u);
    w.set_i32("t.i32", -7);
    w.set_u64("t.u64", 1ull << 40);
    w.set_f32("t.f32", 0.25f);
    w.set_bool("t.bool", true);
    w.set_strings("t.strings", {"a", "", "ünïcode", std::string("nul\0inside", 10)});
    w.set_f32_array("t.f32s", {1.5f, -2.5f});
    w.set_i32_array("t.i32s", {1, -2, 3});

    std::vector<float> data(64 * 3);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i % 17) - 8.0f;
    w.add_tensor("f32", GgmlType::F32, {64, 3}, data.data());
    for (GgmlType type : {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) {
        const TypeTraits& tt = type_traits(type);
        std::vector<uint8_t> q(row_size(type, 64) * 3);
        tt.from_float(data.data(), q.data(), static_cast<int64_t>(data.size()));
        w.add_tensor(std::string("t_") + tt.name, type, {64, 3}, [q](std::vector<uint8_t>& out) { out = q; });
    }
    w.write(path.string());

    auto f = GgufFile::open(path.string());
    CHECK(f->is_mapped());
    CHECK(f->get_u32("t.u8") == 200);
    CHECK(f->get_u32("t.u32") == 4000000000u);
    CHECK(f->get_i64("t.i32") == -7);
    CHECK(f->get_u64("t.u64") == (1ull << 40));
    CHECK(f->get_f32("t.f32") == 0.25f);
    CHECK(f->get_bool("t.bool", false));
    auto strs = f->get_strings("t.strings");
    REQUIRE(strs.size() == 4);
    CHECK(strs[2] == "ünïcode");
    CHECK(strs[3] == std::string_view("nul\0inside", 10));
    CHECK(f->get_f32_array("t.f32s") == std::vector<float>{1.5f, -2.5f});
    CHECK(f->get_int_array("t.i32s") == std::vector<int64_t>{1, -2, 3});

    TensorView t = f->tensor("f32");
    REQUIRE(t.nbytes == data.size() * 4);
    CHECK(std::memcmp(t.data, data.data(), t.nbytes) == 0);
    CHECK(reinterpret_cast<uintptr_t>(t.data) % 32 == 0);
    TensorView q = f->tensor("t_q8_0");
    std::vector<float> back(data.size());
    type_traits(GgmlType::Q8_0).to_float(q.data, back.data(), static_cast<int64_t>(back.size()));
    for (size_t i = 0; i < data.size(); ++i) CHECK(back[i] == doctest::Approx(data[i]).epsilon(0.01));

    // Copying every key and tensor into a new file reproduces the file byte for byte.
    GgufWriter copy;
    for (const auto& [key, value] : f->metadata()) copy.set_value(key, value);
    for (const auto& info : f->tensor_infos()) {
        TensorView v = f->tensor(info.name);
        copy.add_tensor(info.name, info.type, std::vector<int64_t>(info.ne, info.ne + info.n_dims), v.data);
    }
    fs::path path2 = test::temp_dir() / "roundtrip2.gguf";
    copy.write(path2.string());
    CHECK(test::read_bytes(path) == test::read_bytes(path2));

    // --no-mmap reads the same content.
    auto g = GgufFile::open(path.string(), {.use_mmap = false});
    CHECK_FALSE(g->is_mapped());
    CHECK(std::memcmp(g->tensor("t_q4_0").data, f->tensor("t_q4_0").data, f->tensor("t_q4_0").nbytes) == 0);
}

TEST_CASE("typed getters name the key and the types on mismatch") {
    GgufBytes g;
    g.header(0, 2).kv_str("x.name", "hello").kv_u32("x.count", 3);
    auto f = GgufFile::from_bytes(g.b, "keys.gguf");
    CHECK_THROWS_WITH_AS(f->get_u32("x.name"), doctest::Contains("'x.name' should be an unsigned integer, but the file stores string"), Error);
    CHECK_THROWS_WITH_AS(f->get_u32("x.missing"), doctest::Contains("keys.gguf: missing metadata key 'x.missing'"), Error);
    CHECK_THROWS_WITH_AS(f->get_string("x.count"), doctest::Contains("should be a string"), Error);
    CHECK(f->get_u32("x.missing", 9) == 9);
    CHECK_THROWS_WITH_AS(f->tensor("nope"), doctest::Contains("missing tensor 'nope'"), Error);
}

TEST_CASE("malformed files give clear errors") {
    struct Case {
        const char* name;
        std::vector<uint8_t> bytes;
        const char* expected;
    };
    std::vector<Case> cases;
    auto add = [&](const char* name, const GgufBytes& g, const char* expected) { cases.push_back({name, g.b, expected}); };

    add("empty", GgufBytes{}, "file is empty");
    {
        GgufBytes g = valid_file();
        g.b[0] = 'X';
        add("bad magic", g, "not a GGUF file (magic is 'XGUF'");
    }
    add("version 1", GgufBytes{}.header(0, 0, 1), "GGUF version 1 is obsolete");
    add("version 99", GgufBytes{}.header(0, 0, 99), "unsupported GGUF version 99");
    add("big endian", GgufBytes{}.header(0, 0, 0x03000000), "big-endian");
    add("huge kv count", GgufBytes{}.header(0, 1ull << 60), "metadata count 1152921504606846976 cannot fit");
    add("huge tensor count", GgufBytes{}.header(1ull << 60, 0), "tensor count");
    {
        GgufBytes g;
        g.header(0, 1).put<uint64_t>(1ull << 62).zeros(16);
        add("key length past end", g, "claims 4611686018427387904 bytes");
    }
    {
        GgufBytes g;
        g.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 61);
        add("array count past end", g, "does not fit");
    }
    {
        GgufBytes g;
        g.header(0, 1).str("k").put<uint32_t>(77).put<uint32_t>(0);
        add("unknown value type", g, "unknown value type 77");
    }
    add("duplicate key", GgufBytes{}.header(0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2), "duplicate metadata key 'a.b'");
    add("wrong type for known key", GgufBytes{}.header(0, 1).kv_str("general.alignment", "32"),
        "'general.alignment' must be uint32, but the file stores string");
    add("alignment not a power of two", GgufBytes{}.header(0, 1).kv_u32("general.alignment", 24),
        "general.alignment is 24");
    {
        GgufBytes g;
        g.header(0, 1).str("b").put<uint32_t>(7).put<uint8_t>(5);
        add("bool not 0/1", g, "bool value 5");
    }
    auto one_tensor = [](std::vector<int64_t> ne, uint32_t type, uint64_t offset, size_t data) {
        GgufBytes g;
        g.header(1, 0).tensor("w", std::move(ne), type, offset).pad_to(32).zeros(data);
        return g;
    };
    add("unknown tensor type", one_tensor({4}, 1234, 0, 32), "tensor 'w' has unknown tensor type id 1234");
    add("zero dims", one_tensor({}, 0, 0, 32), "tensor 'w' has 0 dimensions");
    add("five dims", one_tensor({1, 1, 1, 1, 1}, 0, 0, 32), "has 5 dimensions");
    add("zero-length dim", one_tensor({4, 0}, 0, 0, 32), "dimension 1 = 0");
    add("negative dim", one_tensor({-4}, 0, 0, 32), "dimension 0 = -4");
    add("overflowing shape", one_tensor({1ll << 40, 1ll << 40}, 0, 0, 32), "overflows");
    add("row not a multiple of the block", one_tensor({48}, 8, 0, 64), "row length 48 is not a multiple of the block size 32");
    add("misaligned offset", one_tensor({4}, 0, 4, 64), "data offset 4 is not aligned");
    add("data out of bounds", one_tensor({64}, 0, 0, 100), "lies outside the data section");
    {
        GgufBytes g;
        g.header(2, 0).tensor("w", {4}, 0, 0).tensor("w", {4}, 0, 32).pad_to(32).zeros(64);
        add("duplicate tensor", g, "duplicate tensor name 'w'");
    }

    for (const Case& c : cases) {
        CAPTURE(std::string(c.name));
        std::string err = parse_error(c.bytes);
        CHECK_MESSAGE(err.find(c.expected) != std::string::npos, "got: '", err, "'");
        CHECK(err.rfind("bad.gguf: ", 0) == 0);  // every message names the file
    }
}

TEST_CASE("a file truncated at any byte is rejected with an error") {
    GgufBytes g = valid_file();
    for (size_t cut = 0; cut < g.b.size(); ++cut) {
        CAPTURE(cut);
        std::vector<uint8_t> part(g.b.begin(), g.b.begin() + static_cast<long>(cut));
        CHECK_FALSE(parse_error(part).empty());
    }
    CHECK(parse_error(g.b).empty());
}

TEST_CASE("open() errors name the path") {
    CHECK_THROWS_WITH_AS(GgufFile::open("/nonexistent/x.gguf"), doctest::Contains("/nonexistent/x.gguf: cannot open"), Error);
    CHECK_THROWS_WITH_AS(GgufFile::open("/tmp"), doctest::Contains("/tmp: not a regular file"), Error);
}

TEST_CASE("every llama.cpp fixture GGUF loads, and `strata info` lists it") {
    if (test::skip_without_shared("GGUF fixtures")) return;
    int n = 0;
    for (const char* dir : {"gguf", "vocab"}) {
        for (const auto& entry : fs::directory_iterator(test::fixture(dir))) {
            if (entry.path().extension() != ".gguf") continue;
            CAPTURE(entry.path().string());
            auto f = GgufFile::open(entry.path().string());
            CHECK(f->has("general.architecture"));
            for (const auto& t : f->tensor_infos()) CHECK(f->tensor(t.name).nbytes == t.nbytes);
            std::string out;
            REQUIRE(test::run_strata("info --json " + entry.path().string(), &out) == 0);
            Json j = Json::parse(out, entry.path().string());
            CHECK(j.at("tensors").size() == f->tensor_infos().size());
            CHECK(j.at("metadata").size() == f->metadata().size());
            ++n;
        }
    }
    CHECK(n >= 38);
}

TEST_CASE("strata info: text output and errors") {
    fs::path path = test::temp_dir() / "info.gguf";
    test::write_bytes(path, valid_file().b);
    std::string out;
    CHECK(test::run_strata("info " + path.string(), &out) == 0);
    CHECK(out.find("general.architecture") != std::string::npos);
    CHECK(out.find("q8_0") != std::string::npos);
    CHECK(out.find("total: 40 parameters") != std::string::npos);
    fs::path bad = test::temp_dir() / "bad.gguf";
    test::write_bytes(bad, {'G', 'G', 'U', 'F', 3, 0, 0});
    CHECK(test::run_strata("info " + bad.string(), &out) == 1);
    CHECK(out.find("strata: error: " + bad.string() + ": truncated GGUF") != std::string::npos);
}
