// The values a Jinja template computes with, with Python's semantics where chat templates rely on
// them: truthiness, str()/repr() spelling ("None", "True", "1.0", "['a', 1]"), json.dumps output,
// equality across int/float/bool, ordering, and strings measured in code points, not bytes.
// Containers and strings are shared, not copied (as Python references are), so a namespace()
// object assigned in a loop body is seen after the loop, and passing a long string around is free.
//
// For the sandbox (jinja_sandbox.h), every value knows how deeply it nests, and a namespace - the
// one mutable value - may not hold a namespace or a function (directly or inside a container),
// so no value can contain itself: repr, tojson, comparisons and destructors always end.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata {
class Json;
}

namespace strata::jinja {

class Budget;
class Value;
using Array = std::vector<Value>;
using Object = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python dicts keep it

// A call's arguments: positional ones, then keyword ones.
struct Args {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> named;

    // The argument at position i or named `name`, or nullptr.
    const Value* get(size_t i, std::string_view name) const;
};
using Function = std::function<Value(const Args&)>;

class Value {
public:
    enum class Kind { Undefined, None, Bool, Int, Float, String, Array, Object, Function };

    Value() = default;                         // undefined
    static Value undefined(std::string name);  // `name` says what was missing, for error messages
    static Value none();
    Value(bool b) : kind_(Kind::Bool), int_(b) {}
    Value(int i) : kind_(Kind::Int), int_(i) {}
    Value(int64_t i) : kind_(Kind::Int), int_(i) {}
    Value(double d) : kind_(Kind::Float), float_(d) {}
    Value(std::string s);
    Value(const char* s) : Value(std::string(s)) {}
    // Throw Error when the container would nest deeper than kMaxValueDepth.
    static Value array(Array items = {}, bool tuple = false);
    static Value object(Object members = {});
    // A jinja2 namespace(): an object whose attributes `{% set ns.x = … %}` may assign. Throws
    // Error for a member that is or holds a namespace or a function.
    static Value namespace_object(Object members);
    static Value function(Function fn);
    // JSON objects become objects, arrays arrays, numbers Int when integral and written without a
    // fraction, else Float.
    static Value from_json(const Json& json);

    Kind kind() const { return kind_; }
    bool is_undefined() const { return kind_ == Kind::Undefined; }
    bool is_none() const { return kind_ == Kind::None; }
    bool is_string() const { return kind_ == Kind::String; }
    bool is_array() const { return kind_ == Kind::Array; }
    bool is_object() const { return kind_ == Kind::Object; }
    bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
    bool is_tuple() const { return kind_ == Kind::Array && tuple_; }
    bool is_namespace() const { return kind_ == Kind::Object && namespace_; }
    // Python truthiness; undefined is false.
    bool truthy() const;

    // Accessors throw Error naming the expected and actual type.
    int64_t as_int() const;    // Int or Bool
    double as_number() const;  // Int, Float or Bool
    const std::string& as_string() const;
    const Array& items() const;
    const Object& members() const;
    const Function& function() const;
    // For undefined values: what was looked up.
    const std::string& undefined_name() const;
    // Nesting depth: 0 for scalars, 1 + the deepest item for containers.
    int depth() const { return depth_; }

    // Object member, or nullptr.
    const Value* find(std::string_view key) const;
    // Assigns a namespace attribute (visible through every copy of this value). Throws Error for a
    // value that is or holds a namespace or a function (it could make the namespace contain
    // itself).
    void set_member(const std::string& key, Value v) const;

    // Python's type name ("str", "int", "list", "dict", "NoneType"…) for error messages.
    std::string type_name() const;
    // These three charge the budget for the values they visit and the text they make, and throw
    // Error rather than build a string over kMaxStringBytes.
    std::string str(Budget& budget) const;   // str(): what {{ value }} prints; undefined prints ""
    std::string repr(Budget& budget) const;  // repr(): how values look inside printed containers
    // json.dumps(value, ensure_ascii=False, indent=indent (< 0: none), separators, sort_keys), as
    // transformers' tojson filter calls it.
    std::string to_json(Budget& budget, int indent, const std::string& item_separator, const std::string& key_separator,
                        bool sort_keys) const;

    // Python == (namespaces and functions by identity, as Python compares them), and undefined ==
    // undefined. Charges the budget for what it visits.
    bool equals(const Value& other, Budget& budget) const;
    // Python ordering (<0, 0, >0) of numbers, strings and sequences; throws Error otherwise.
    int compare(const Value& other, Budget& budget) const;

private:
    void repr_into(std::string& out, Budget& budget) const;
    void set_depth(int depth);  // throws Error beyond kMaxValueDepth

    Kind kind_ = Kind::Undefined;
    bool tuple_ = false, namespace_ = false;
    // Is or holds a namespace or a function: such a value may not become a namespace's member.
    bool holds_reference_ = false;
    uint8_t depth_ = 0;
    int64_t int_ = 0;
    double float_ = 0;
    std::shared_ptr<const std::string> string_;  // String: the text; Undefined: what was looked up
    std::shared_ptr<Array> array_;
    std::shared_ptr<Object> object_;
    std::shared_ptr<Function> function_;
};

// Python's repr() of a float: the shortest digits that round-trip, exponent form outside
// 1e-4 ≤ |x| < 1e16 ("1e-05", "1e+16"), and always a ".0" on integral values.
std::string python_float(double d);

// UTF-8 code points: byte offsets of each character's start, plus the total size at the end.
std::vector<size_t> utf8_offsets(std::string_view s);
// The number of code points (what len() gives), without building the offsets.
size_t utf8_length(std::string_view s);

}  // namespace strata::jinja
