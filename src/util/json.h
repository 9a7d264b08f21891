// A small JSON value with a strict parser and a writer: enough for config.json, tokenizer.json,
// test references and chat transcripts, without a dependency.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

class Json {
public:
    enum class Kind { Null, Bool, Number, String, Array, Object };

    Json() = default;
    Json(bool b) : kind_(Kind::Bool), bool_(b) {}
    Json(double n) : kind_(Kind::Number), number_(n) {}
    Json(int n) : kind_(Kind::Number), number_(n) {}
    Json(int64_t n) : kind_(Kind::Number), number_(static_cast<double>(n)) {}
    Json(std::string s) : kind_(Kind::String), string_(std::move(s)) {}
    Json(const char* s) : kind_(Kind::String), string_(s) {}
    static Json array() { Json j; j.kind_ = Kind::Array; return j; }
    static Json object() { Json j; j.kind_ = Kind::Object; return j; }

    // Throws Error naming `source` and the byte offset on malformed input.
    static Json parse(std::string_view text, const std::string& source = "JSON");

    Kind kind() const { return kind_; }
    bool is_null() const { return kind_ == Kind::Null; }
    bool is_number() const { return kind_ == Kind::Number; }
    bool is_string() const { return kind_ == Kind::String; }
    bool is_array() const { return kind_ == Kind::Array; }
    bool is_object() const { return kind_ == Kind::Object; }

    // Accessors throw Error when the kind is wrong.
    bool as_bool() const;
    double as_number() const;
    int64_t as_int() const;
    const std::string& as_string() const;
    const std::vector<Json>& items() const;
    const std::vector<std::pair<std::string, Json>>& members() const;

    // Object lookup: nullptr when absent (or not an object).
    const Json* find(std::string_view key) const;
    // Object lookup that throws Error naming the key when absent.
    const Json& at(std::string_view key) const;
    const Json& operator[](size_t i) const { return items().at(i); }
    size_t size() const;

    void push_back(Json v);
    void set(const std::string& key, Json v);

    std::string dump(int indent = -1) const;

private:
    void dump_to(std::string& out, int indent, int depth) const;

    Kind kind_ = Kind::Null;
    bool bool_ = false;
    double number_ = 0;
    std::string string_;
    std::vector<Json> items_;
    std::vector<std::pair<std::string, Json>> members_;
};

// Appends s to out as a quoted JSON string.
void json_quote(std::string& out, std::string_view s);

}  // namespace strata
