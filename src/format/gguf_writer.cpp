// GGUF v3 writer: header, metadata and tensor infos first (sizes are known from type and shape),
// then each tensor's bytes produced on demand and padded to the alignment.
#include <cstring>

#include "format/gguf.h"
#include "util/error.h"
#include "util/files.h"

namespace strata {

namespace {

template <class T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_string(std::string& out, std::string_view s) {
    put<uint64_t>(out, s.size());
    out.append(s);
}

}  // namespace

void GgufWriter::set_raw(const std::string& key, GgufType type, std::string bytes) {
    for (Kv& kv : kv_) {
        if (kv.key == key) {
            kv.type = type;
            kv.bytes = std::move(bytes);
            return;
        }
    }
    kv_.push_back({key, type, std::move(bytes)});
}

#define STRATA_SCALAR_SETTER(fn, ctype, gtype) \
    void GgufWriter::fn(const std::string& key, ctype v) { \
        std::string b;                                      \
        put<ctype>(b, v);                                   \
        set_raw(key, GgufType::gtype, std::move(b));        \
    }
STRATA_SCALAR_SETTER(set_u8, uint8_t, UINT8)
STRATA_SCALAR_SETTER(set_u32, uint32_t, UINT32)
STRATA_SCALAR_SETTER(set_i32, int32_t, INT32)
STRATA_SCALAR_SETTER(set_u64, uint64_t, UINT64)
STRATA_SCALAR_SETTER(set_f32, float, FLOAT32)
#undef STRATA_SCALAR_SETTER

void GgufWriter::set_bool(const std::string& key, bool v) {
    set_raw(key, GgufType::BOOL, std::string(1, v ? '\1' : '\0'));
}

void GgufWriter::set_string(const std::string& key, std::string_view v) {
    std::string b;
    put_string(b, v);
    set_raw(key, GgufType::STRING, std::move(b));
}

void GgufWriter::set_strings(const std::string& key, const std::vector<std::string>& v) {
    std::string b;
    put<uint32_t>(b, static_cast<uint32_t>(GgufType::STRING));
    put<uint64_t>(b, v.size());
    for (const std::string& s : v) put_string(b, s);
    set_raw(key, GgufType::ARRAY, std::move(b));
}

void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& v) {
    std::string b;
    put<uint32_t>(b, static_cast<uint32_t>(GgufType::FLOAT32));
    put<uint64_t>(b, v.size());
    b.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    set_raw(key, GgufType::ARRAY, std::move(b));
}

void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
    std::string b;
    put<uint32_t>(b, static_cast<uint32_t>(GgufType::INT32));
    put<uint64_t>(b, v.size());
    b.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
    set_raw(key, GgufType::ARRAY, std::move(b));
}

void GgufWriter::set_value(const std::string& key, const GgufValue& v) { set_raw(key, v.type, std::string(v.raw)); }

void GgufWriter::remove(const std::string& key) {
    std::erase_if(kv_, [&](const Kv& kv) { return kv.key == key; });
}

bool GgufWriter::has(const std::string& key) const {
    for (const Kv& kv : kv_) {
        if (kv.key == key) return true;
    }
    return false;
}

void GgufWriter::set_alignment(uint32_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) fail("GGUF alignment ", alignment, " is not a power of two");
    alignment_ = alignment;
    set_u32("general.alignment", alignment);
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Producer produce) {
    // What the reader would refuse is never written: 1 to 4 dimensions, each positive, a byte
    // size that fits.
    if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims)) {
        fail("tensor '", name, "': ", ne.size(), " dimensions");
    }
    int64_t rows = 1;
    for (size_t d = 0; d < ne.size(); ++d) {
        if (ne[d] <= 0) fail("tensor '", name, "': dimension ", d, " is ", ne[d], " (GGUF needs positive dimensions)");
        if (d > 0 && __builtin_mul_overflow(rows, ne[d], &rows)) fail("tensor '", name, "': element count overflows");
    }
    for (const Tensor& t : tensors_) {
        if (t.name == name) fail("duplicate tensor name '", name, "' in GGUF writer");
    }
    size_t nbytes = 0;
    if (__builtin_mul_overflow(row_size(type, ne[0]), static_cast<size_t>(rows), &nbytes)) {
        fail("tensor '", name, "': byte size overflows");
    }
    tensors_.push_back({name, type, std::move(ne), nbytes, std::move(produce)});
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, const void* data) {
    const uint8_t* bytes = static_cast<const uint8_t*>(data);
    add_tensor(name, type, std::move(ne), Producer{});
    Tensor& t = tensors_.back();
    t.produce = [bytes, nbytes = t.nbytes](std::vector<uint8_t>& out) { out.assign(bytes, bytes + nbytes); };
}

void GgufWriter::write(const std::string& path, const std::function<void(size_t, size_t)>& on_tensor,
                       const std::vector<std::string>& inputs) const {
    std::string head;
    put<uint32_t>(head, kGgufMagic);
    put<uint32_t>(head, 3);
    put<uint64_t>(head, tensors_.size());
    put<uint64_t>(head, kv_.size());
    for (const Kv& kv : kv_) {
        put_string(head, kv.key);
        put<uint32_t>(head, static_cast<uint32_t>(kv.type));
        head += kv.bytes;
    }
    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
        put_string(head, t.name);
        put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
        for (int64_t d : t.ne) put<int64_t>(head, d);
        put<uint32_t>(head, static_cast<uint32_t>(t.type));
        put<uint64_t>(head, offset);
        offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
    }
    head.resize((head.size() + alignment_ - 1) / alignment_ * alignment_, '\0');

    AtomicFile out(path, inputs);
    out.write(head.data(), head.size());
    std::vector<uint8_t> buf;
    const char zeros[64] = {};
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const Tensor& t = tensors_[i];
        buf.clear();
        t.produce(buf);
        if (buf.size() != t.nbytes) {
            fail(path, ": tensor '", t.name, "' produced ", buf.size(), " bytes, expected ", t.nbytes);
        }
        out.write(buf.data(), buf.size());
        size_t pad = (alignment_ - t.nbytes % alignment_) % alignment_;
        while (pad > 0) {
            size_t n = std::min(pad, sizeof zeros);
            out.write(zeros, n);
            pad -= n;
        }
        if (on_tensor) on_tensor(i + 1, tensors_.size());
    }
    out.commit();
}

}  // namespace strata
