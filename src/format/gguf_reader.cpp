// GGUF parsing: a bounds-checked cursor over the mapped bytes. Every count and length is checked
// against the bytes that remain before anything is allocated, so a hostile file can neither
// crash the reader nor make it allocate more than the file's own size.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "format/gguf.h"
#include "util/error.h"
#include "util/files.h"

namespace strata {

namespace {

constexpr int kMaxNesting = 8;  // arrays of arrays deeper than this are not a real model file

size_t scalar_size(GgufType t) {
    switch (t) {
        case GgufType::UINT8:
        case GgufType::INT8:
        case GgufType::BOOL: return 1;
        case GgufType::UINT16:
        case GgufType::INT16: return 2;
        case GgufType::UINT32:
        case GgufType::INT32:
        case GgufType::FLOAT32: return 4;
        case GgufType::UINT64:
        case GgufType::INT64:
        case GgufType::FLOAT64: return 8;
        default: return 0;
    }
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

struct Cursor {
    const uint8_t* base;
    size_t size;
    size_t pos = 0;
    const std::string& path;

    size_t remaining() const { return size - pos; }

    void need(uint64_t n, const char* what) const {
        if (n > remaining()) {
            fail(path, ": truncated GGUF: ", what, " needs ", n, " bytes at offset ", pos, ", but the file has ",
                 remaining(), " left (file size ", size, ")");
        }
    }
    template <class T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, base + pos, sizeof v);
        pos += sizeof v;
        return v;
    }
    std::string_view read_string(const char* what) {
        uint64_t len = read<uint64_t>(what);
        if (len > remaining()) {
            fail(path, ": ", what, " at offset ", pos - 8, " claims ", len, " bytes, but only ", remaining(),
                 " remain in the file");
        }
        std::string_view s(reinterpret_cast<const char*>(base + pos), len);
        pos += len;
        return s;
    }
};

// Minimum encoded size of one element, used to reject impossible counts before allocating.
uint64_t min_encoded_size(GgufType t) {
    if (t == GgufType::STRING) return 8;
    if (t == GgufType::ARRAY) return 12;
    return scalar_size(t);
}

void parse_value(Cursor& c, GgufType type, GgufValue& out, const std::string& key, int depth) {
    const size_t start = c.pos;
    out.type = type;
    switch (type) {
        case GgufType::UINT8: out.scalar.u64 = c.read<uint8_t>("a uint8 value"); break;
        case GgufType::INT8: out.scalar.i64 = c.read<int8_t>("an int8 value"); break;
        case GgufType::UINT16: out.scalar.u64 = c.read<uint16_t>("a uint16 value"); break;
        case GgufType::INT16: out.scalar.i64 = c.read<int16_t>("an int16 value"); break;
        case GgufType::UINT32: out.scalar.u64 = c.read<uint32_t>("a uint32 value"); break;
        case GgufType::INT32: out.scalar.i64 = c.read<int32_t>("an int32 value"); break;
        case GgufType::UINT64: out.scalar.u64 = c.read<uint64_t>("a uint64 value"); break;
        case GgufType::INT64: out.scalar.i64 = c.read<int64_t>("an int64 value"); break;
        case GgufType::FLOAT32: out.scalar.f64 = c.read<float>("a float32 value"); break;
        case GgufType::FLOAT64: out.scalar.f64 = c.read<double>("a float64 value"); break;
        case GgufType::BOOL: {
            uint8_t b = c.read<uint8_t>("a bool value");
            if (b > 1) fail(c.path, ": metadata key '", key, "': bool value ", int(b), " is neither 0 nor 1");
            out.scalar.b = b != 0;
            break;
        }
        case GgufType::STRING: out.str = c.read_string("a string value"); break;
        case GgufType::ARRAY: {
            if (depth >= kMaxNesting) fail(c.path, ": metadata key '", key, "': arrays nested deeper than ", kMaxNesting);
            uint32_t et = c.read<uint32_t>("an array element type");
            if (!valid_type(et)) fail(c.path, ": metadata key '", key, "': unknown array element type ", et);
            out.elem_type = static_cast<GgufType>(et);
            out.count = c.read<uint64_t>("an array length");
            const uint64_t min_size = min_encoded_size(out.elem_type);
            if (out.count > c.remaining() / min_size) {
                fail(c.path, ": metadata key '", key, "': array of ", out.count, " ", gguf_type_name(out.elem_type),
                     " elements does not fit in the ", c.remaining(), " bytes left in the file");
            }
            if (out.elem_type == GgufType::STRING || out.elem_type == GgufType::ARRAY) {
                out.items.resize(out.count);
                for (auto& item : out.items) parse_value(c, out.elem_type, item, key, depth + 1);
            } else {
                out.elems = c.base + c.pos;
                c.pos += out.count * min_size;
            }
            break;
        }
        default: fail(c.path, ": metadata key '", key, "': unknown value type ", static_cast<uint32_t>(type));
    }
    out.raw = std::string_view(reinterpret_cast<const char*>(c.base + start), c.pos - start);
}

// Keys whose type the format or llama.cpp fixes; a file that disagrees is malformed, and catching
// it here gives a better message than a failed lookup deep inside a model loader.
struct KnownKey {
    const char* key;
    GgufType type;
    GgufType elem_type;  // for arrays
};
constexpr KnownKey kKnownKeys[] = {
    {"general.alignment", GgufType::UINT32, GgufType::UINT8},
    {"general.architecture", GgufType::STRING, GgufType::UINT8},
    {"general.name", GgufType::STRING, GgufType::UINT8},
    {"general.file_type", GgufType::UINT32, GgufType::UINT8},
    {"general.quantization_version", GgufType::UINT32, GgufType::UINT8},
    {"tokenizer.ggml.model", GgufType::STRING, GgufType::UINT8},
    {"tokenizer.ggml.pre", GgufType::STRING, GgufType::UINT8},
    {"tokenizer.ggml.tokens", GgufType::ARRAY, GgufType::STRING},
    {"tokenizer.ggml.scores", GgufType::ARRAY, GgufType::FLOAT32},
    {"tokenizer.ggml.token_type", GgufType::ARRAY, GgufType::INT32},
    {"tokenizer.ggml.merges", GgufType::ARRAY, GgufType::STRING},
    {"tokenizer.chat_template", GgufType::STRING, GgufType::UINT8},
};

void check_known_key(const std::string& path, const std::string& key, const GgufValue& v) {
    for (const KnownKey& k : kKnownKeys) {
        if (key != k.key) continue;
        bool ok = v.type == k.type && (k.type != GgufType::ARRAY || v.elem_type == k.elem_type);
        if (!ok) {
            std::string expected = gguf_type_name(k.type);
            if (k.type == GgufType::ARRAY) expected += std::string(" of ") + gguf_type_name(k.elem_type);
            std::string actual = gguf_type_name(v.type);
            if (v.type == GgufType::ARRAY) actual += std::string(" of ") + gguf_type_name(v.elem_type);
            fail(path, ": metadata key '", key, "' must be ", expected, ", but the file stores ", actual);
        }
    }
}

bool mul_overflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

void GgufFile::parse() {
    Cursor c{base_, size_, 0, path_};
    if (size_ == 0) fail(path_, ": file is empty, not a GGUF file");
    if (size_ < 4 || std::memcmp(base_, "GGUF", 4) != 0) {
        std::string got(reinterpret_cast<const char*>(base_), std::min<size_t>(size_, 4));
        for (char& ch : got) ch = (ch >= 32 && ch < 127) ? ch : '?';
        fail(path_, ": not a GGUF file (magic is '", got, "', expected 'GGUF')");
    }
    c.pos = 4;
    version_ = c.read<uint32_t>("the version");
    if (version_ == 0x03000000 || version_ == 0x02000000) {
        fail(path_, ": big-endian GGUF files are not supported");
    }
    if (version_ == 1) fail(path_, ": GGUF version 1 is obsolete and not supported (versions 2 and 3 are)");
    if (version_ != 2 && version_ != 3) fail(path_, ": unsupported GGUF version ", version_, " (versions 2 and 3 are supported)");

    const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
    const uint64_t n_kv = c.read<uint64_t>("the metadata count");
    // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info 8+4+8+4+8.
    if (n_kv > c.remaining() / 13) fail(path_, ": metadata count ", n_kv, " cannot fit in a file of ", size_, " bytes");
    if (n_tensors > c.remaining() / 32) fail(path_, ": tensor count ", n_tensors, " cannot fit in a file of ", size_, " bytes");

    kv_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
        std::string key(c.read_string("a metadata key"));
        if (key.empty()) fail(path_, ": metadata entry ", i, " has an empty key");
        uint32_t type = c.read<uint32_t>("a metadata value type");
        if (!valid_type(type)) fail(path_, ": metadata key '", key, "' has unknown value type ", type);
        GgufValue value;
        parse_value(c, static_cast<GgufType>(type), value, key, 0);
        check_known_key(path_, key, value);
        if (!kv_index_.emplace(key, kv_.size()).second) fail(path_, ": duplicate metadata key '", key, "'");
        kv_.emplace_back(std::move(key), std::move(value));
    }

    if (const GgufValue* a = find("general.alignment")) {
        uint64_t al = a->scalar.u64;
        if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20)) {
            fail(path_, ": general.alignment is ", al, ", expected a power of two");
        }
        alignment_ = static_cast<uint32_t>(al);
    }

    tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GgufTensorInfo t;
        t.name = std::string(c.read_string("a tensor name"));
        if (t.name.empty()) fail(path_, ": tensor ", i, " has an empty name");
        const std::string where = path_ + ": tensor '" + t.name + "'";
        uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
        if (n_dims == 0 || n_dims > kMaxDims) fail(where, " has ", n_dims, " dimensions (1 to ", kMaxDims, " allowed)");
        t.n_dims = static_cast<int>(n_dims);
        int64_t n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            int64_t ne = c.read<int64_t>("a tensor dimension");
            if (ne <= 0) fail(where, " has dimension ", d, " = ", ne, " (must be positive)");
            if (mul_overflows(n_elements, ne, &n_elements)) fail(where, " has an element count that overflows");
            t.ne[d] = ne;
        }
        uint32_t type_id = c.read<uint32_t>("a tensor type");
        const TypeTraits* traits = find_type_traits(type_id);
        if (!traits) fail(where, " has unknown tensor type id ", type_id);
        t.type = traits->type;
        if (t.ne[0] % traits->block_size != 0) {
            fail(where, " (", traits->name, "): row length ", t.ne[0], " is not a multiple of the block size ",
                 traits->block_size);
        }
        int64_t n_blocks = n_elements / traits->block_size;
        int64_t nbytes;
        if (mul_overflows(n_blocks, static_cast<int64_t>(traits->type_size), &nbytes)) {
            fail(where, " has a byte size that overflows");
        }
        t.nbytes = static_cast<size_t>(nbytes);
        t.offset = c.read<uint64_t>("a tensor data offset");
        if (t.offset % alignment_ != 0) {
            fail(where, " data offset ", t.offset, " is not aligned to ", alignment_, " bytes");
        }
        if (!tensor_index_.emplace(t.name, tensors_.size()).second) fail(path_, ": duplicate tensor name '", t.name, "'");
        tensors_.push_back(std::move(t));
    }

    data_offset_ = (c.pos + alignment_ - 1) / alignment_ * alignment_;
    if (!tensors_.empty() && data_offset_ > size_) {
        fail(path_, ": truncated GGUF: the tensor data section would start at byte ", data_offset_, ", past the end (",
             size_, " bytes)");
    }
    const uint64_t data_size = data_offset_ <= size_ ? size_ - data_offset_ : 0;
    for (const GgufTensorInfo& t : tensors_) {
        if (t.offset > data_size || t.nbytes > data_size - t.offset) {
            fail(path_, ": tensor '", t.name, "' data [", t.offset, ", ", t.offset + t.nbytes,
                 ") lies outside the data section of ", data_size, " bytes (file truncated?)");
        }
    }
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path, Options options) {
    std::unique_ptr<GgufFile> f(new GgufFile());
    f->path_ = path;
    const int fd = open_regular_file(path, &f->size_);  // a FIFO is refused, not waited on
    if (options.use_mmap && f->size_ > 0) {
        void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            f->base_ = static_cast<const uint8_t*>(p);
            f->mapped_ = true;
        }
    }
    if (!f->mapped_) {  // --no-mmap, or mapping unavailable: read the whole file
        f->owned_.resize(f->size_);
        size_t done = 0;
        while (done < f->size_) {
            ssize_t n = ::read(fd, f->owned_.data() + done, f->size_ - done);
            if (n <= 0) {
                ::close(fd);
                fail(path, ": read failed after ", done, " bytes: ", n < 0 ? std::strerror(errno) : "unexpected end");
            }
            done += static_cast<size_t>(n);
        }
        f->base_ = f->owned_.data();
    }
    ::close(fd);
    f->parse();
    return f;
}

std::unique_ptr<GgufFile> GgufFile::from_bytes(std::vector<uint8_t> bytes, const std::string& name) {
    std::unique_ptr<GgufFile> f(new GgufFile());
    f->path_ = name;
    f->owned_ = std::move(bytes);
    f->base_ = f->owned_.data();
    f->size_ = f->owned_.size();
    f->parse();
    return f;
}

GgufFile::~GgufFile() {
    if (mapped_) munmap(const_cast<uint8_t*>(base_), size_);
}

}  // namespace strata
