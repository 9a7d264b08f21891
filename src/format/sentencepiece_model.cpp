// Protocol-buffer wire format, as much as ModelProto needs: each field is a varint key
// (field_number << 3 | wire_type) followed by a varint (0), 8 bytes (1), a length-prefixed
// payload (2: strings and sub-messages) or 4 bytes (5: float). Unknown fields are skipped, so
// newer tokenizer.model files still read.
#include "format/sentencepiece_model.h"

#include <cstring>

#include "util/error.h"
#include "util/files.h"

namespace strata {

namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class WireReader {
public:
    WireReader(const std::string& name, std::string_view bytes, size_t base) : name_(name), data_(bytes), base_(base) {}

    bool done() const { return pos_ >= data_.size(); }

    // Reads the next key; false at the end of the message.
    bool next(uint32_t& field, uint32_t& wire) {
        if (done()) return false;
        const uint64_t key = varint();
        field = static_cast<uint32_t>(key >> 3);
        wire = static_cast<uint32_t>(key & 7);
        if (field == 0) bad("field number 0");
        return true;
    }

    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (done()) bad("varint runs past the end");
            const uint8_t b = static_cast<uint8_t>(data_[pos_++]);
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        bad("varint longer than 10 bytes");
    }

    std::string_view bytes() {
        const uint64_t n = varint();
        if (n > data_.size() - pos_) bad("length ", n, " runs past the end");
        std::string_view s = data_.substr(pos_, n);
        pos_ += n;
        return s;
    }

    float fixed32_float() {
        if (data_.size() - pos_ < 4) bad("float runs past the end");
        float f;
        std::memcpy(&f, data_.data() + pos_, 4);
        pos_ += 4;
        return f;
    }

    void skip(uint32_t wire) {
        switch (wire) {
        case kVarint:
            varint();
            break;
        case kFixed64:
            advance(8);
            break;
        case kLengthDelimited:
            bytes();
            break;
        case kFixed32:
            advance(4);
            break;
        default:
            bad("unsupported wire type ", wire);
        }
    }

    // A sub-message's reader; offsets in its errors stay relative to the whole file.
    WireReader sub() {
        std::string_view s = bytes();
        return WireReader(name_, s, base_ + static_cast<size_t>(s.data() - data_.data()));
    }

    void expect(uint32_t wire, uint32_t wanted, const char* what) {
        if (wire != wanted) bad(what, " has wire type ", wire, ", expected ", wanted);
    }

    template <class... Parts>
    [[noreturn]] void bad(const Parts&... parts) const {
        fail(name_, ": malformed SentencePiece model at byte ", base_ + pos_, ": ", parts...);
    }

private:
    void advance(size_t n) {
        if (data_.size() - pos_ < n) bad("field runs past the end");
        pos_ += n;
    }

    const std::string& name_;
    std::string_view data_;
    size_t base_;
    size_t pos_ = 0;
};

SentencePieceModel::Piece read_piece(WireReader r) {
    SentencePieceModel::Piece p;
    uint32_t field, wire;
    while (r.next(field, wire)) {
        if (field == 1) {
            r.expect(wire, kLengthDelimited, "piece");
            p.text = std::string(r.bytes());
        } else if (field == 2) {
            r.expect(wire, kFixed32, "score");
            p.score = r.fixed32_float();
        } else if (field == 3) {
            r.expect(wire, kVarint, "type");
            const uint64_t t = r.varint();
            if (t < 1 || t > 6) r.bad("piece type ", t, " is not 1..6");
            p.type = static_cast<PieceType>(t);
        } else {
            r.skip(wire);
        }
    }
    return p;
}

// proto2 int32 fields are sign-extended to 64 bits on the wire, so -1 arrives as 2^64 - 1.
int32_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<int64_t>(v)); }

void read_trainer_spec(WireReader r, SentencePieceModel& m) {
    uint32_t field, wire;
    while (r.next(field, wire)) {
        if (wire != kVarint) {
            r.skip(wire);
            continue;
        }
        const uint64_t v = r.varint();
        switch (field) {
        case 3:
            m.model_type = as_int32(v);
            break;
        case 35:
            m.byte_fallback = v != 0;
            break;
        case 40:
            m.unk_id = as_int32(v);
            break;
        case 41:
            m.bos_id = as_int32(v);
            break;
        case 42:
            m.eos_id = as_int32(v);
            break;
        case 43:
            m.pad_id = as_int32(v);
            break;
        default:
            break;
        }
    }
}

void read_normalizer_spec(WireReader r, SentencePieceModel& m) {
    uint32_t field, wire;
    while (r.next(field, wire)) {
        if (wire != kVarint) {
            r.skip(wire);
            continue;
        }
        const bool v = r.varint() != 0;
        if (field == 3) m.add_dummy_prefix = v;
        if (field == 4) m.remove_extra_whitespaces = v;
        if (field == 5) m.escape_whitespaces = v;
    }
}

}  // namespace

SentencePieceModel parse_sentencepiece_model(const std::string& bytes, const std::string& name) {
    SentencePieceModel m;
    WireReader r(name, bytes, 0);
    uint32_t field, wire;
    while (r.next(field, wire)) {
        if (field >= 1 && field <= 3) r.expect(wire, kLengthDelimited, "ModelProto field");
        if (field == 1) m.pieces.push_back(read_piece(r.sub()));
        else if (field == 2) read_trainer_spec(r.sub(), m);
        else if (field == 3) read_normalizer_spec(r.sub(), m);
        else r.skip(wire);
    }
    if (m.pieces.empty()) fail(name, ": SentencePiece model has no pieces");
    for (int32_t id : {m.unk_id, m.bos_id, m.eos_id, m.pad_id}) {
        if (id >= static_cast<int32_t>(m.pieces.size())) {
            fail(name, ": special token id ", id, " is outside the ", m.pieces.size(), " pieces");
        }
    }
    return m;
}

SentencePieceModel read_sentencepiece_model(const std::string& path) {
    return parse_sentencepiece_model(read_file(path), path);
}

}  // namespace strata

namespace strata {

void add_llama_vocab(GgufWriter& w, const SentencePieceModel& sp, int64_t n_vocab, const std::string& source) {
    const int64_t n_pieces = static_cast<int64_t>(sp.pieces.size());
    if (n_pieces > n_vocab) {
        fail(source, ": the tokenizer has ", n_pieces, " pieces but the model's vocabulary is ", n_vocab);
    }
    std::vector<std::string> tokens(static_cast<size_t>(n_vocab));
    std::vector<float> scores(static_cast<size_t>(n_vocab), -10000.0f);
    std::vector<int32_t> types(static_cast<size_t>(n_vocab), static_cast<int32_t>(PieceType::Unused));
    for (int64_t i = 0; i < n_vocab; ++i) {
        if (i < n_pieces) {
            tokens[i] = sp.pieces[i].text;
            scores[i] = sp.pieces[i].score;
            types[i] = static_cast<int32_t>(sp.pieces[i].type);
        } else {
            tokens[i] = "[PAD" + std::to_string(i) + "]";
        }
    }
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_string("tokenizer.ggml.pre", "default");
    w.set_strings("tokenizer.ggml.tokens", tokens);
    w.set_f32_array("tokenizer.ggml.scores", scores);
    w.set_i32_array("tokenizer.ggml.token_type", types);
    // The GGUF default is a dummy prefix; only a model without one needs the key.
    if (!sp.add_dummy_prefix) w.set_bool("tokenizer.ggml.add_space_prefix", false);
}

}  // namespace strata
