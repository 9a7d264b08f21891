// The evaluator: walks the syntax tree with a stack of scopes. As in jinja2, a for loop's body
// gets its own scope (a `set` inside it does not leak out), if blocks do not, and macros run in
// a fresh scope above the caller's.
#include "chat/jinja.h"

#include <cmath>
#include <cstdint>
#include <unordered_map>

#include "chat/jinja_builtins.h"
#include "chat/jinja_syntax.h"
#include "util/error.h"

namespace strata::jinja {

namespace {

// Bounds the output of `seq * n`, so a template cannot exhaust memory by accident or on purpose.
constexpr uint64_t kMaxItems = uint64_t{1} << 26;

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
    if (a.is_undefined()) fail("'", a.undefined_name(), "' is undefined");
    if (b.is_undefined()) fail("'", b.undefined_name(), "' is undefined");
    fail("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'");
}

bool both_ints(const Value& a, const Value& b) {
    return a.kind() != Value::Kind::Float && b.kind() != Value::Kind::Float;
}

Value repeat(const Value& seq, int64_t n) {
    const size_t size = seq.is_string() ? seq.as_string().size() : seq.items().size();
    if (n > 0 && size > 0 && static_cast<uint64_t>(n) > kMaxItems / size)
        fail("repeating a sequence ", n, " times is too large");
    if (seq.is_string()) {
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq.as_string();
        return out;
    }
    Array out;
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
    return Value::array(std::move(out), seq.is_tuple());
}

// Python's arithmetic: ints stay ints (floor division and modulo round toward −∞), `/` always
// gives a float, + joins strings and lists, * repeats them.
Value arithmetic(Op op, const Value& a, const Value& b) {
    if (op == Op::Concat) return a.str() + b.str();
    const bool numbers = a.is_number() && b.is_number();
    switch (op) {
        case Op::Add:
            if (numbers) return both_ints(a, b) ? Value(a.as_int() + b.as_int()) : Value(a.as_number() + b.as_number());
            if (a.is_string() && b.is_string()) return a.as_string() + b.as_string();
            if (a.is_array() && b.is_array()) {
                Array out = a.items();
                out.insert(out.end(), b.items().begin(), b.items().end());
                return Value::array(std::move(out), a.is_tuple());
            }
            if (a.is_string() && !b.is_undefined())
                fail("can only concatenate str (not \"", b.type_name(), "\") to str");
            unsupported("+", a, b);
        case Op::Sub:
            if (!numbers) unsupported("-", a, b);
            return both_ints(a, b) ? Value(a.as_int() - b.as_int()) : Value(a.as_number() - b.as_number());
        case Op::Mul:
            if (numbers) return both_ints(a, b) ? Value(a.as_int() * b.as_int()) : Value(a.as_number() * b.as_number());
            if ((a.is_string() || a.is_array()) && b.kind() == Value::Kind::Int) return repeat(a, b.as_int());
            if ((b.is_string() || b.is_array()) && a.kind() == Value::Kind::Int) return repeat(b, a.as_int());
            unsupported("*", a, b);
        case Op::Div:
            if (!numbers) unsupported("/", a, b);
            if (b.as_number() == 0) fail("division by zero");
            return a.as_number() / b.as_number();
        case Op::FloorDiv:
        case Op::Mod: {
            if (!numbers) unsupported(op == Op::Mod ? "%" : "//", a, b);
            if (b.as_number() == 0) fail("integer division or modulo by zero");
            if (both_ints(a, b)) {
                const int64_t x = a.as_int(), y = b.as_int();
                int64_t q = x / y, r = x % y;
                if (r != 0 && ((r < 0) != (y < 0))) {
                    --q;
                    r += y;
                }
                return op == Op::FloorDiv ? Value(q) : Value(r);
            }
            const double x = a.as_number(), y = b.as_number();
            const double q = std::floor(x / y);
            return op == Op::FloorDiv ? q : x - q * y;
        }
        case Op::Pow:
            if (!numbers) unsupported("**", a, b);
            if (both_ints(a, b) && b.as_int() >= 0) {
                // Square-and-multiply in unsigned arithmetic, so huge exponents neither hang nor
                // overflow into undefined behaviour (they wrap, where Python would grow).
                uint64_t base = static_cast<uint64_t>(a.as_int()), r = 1;
                for (uint64_t e = static_cast<uint64_t>(b.as_int()); e; e >>= 1, base *= base) {
                    if (e & 1) r *= base;
                }
                return static_cast<int64_t>(r);
            }
            return std::pow(a.as_number(), b.as_number());
        default: fail("internal error: not an arithmetic operator");
    }
}

bool compare(Op op, const Value& a, const Value& b) {
    switch (op) {
        case Op::Eq: return a.equals(b);
        case Op::Ne: return !a.equals(b);
        case Op::Lt: return a.compare(b) < 0;
        case Op::Le: return a.compare(b) <= 0;
        case Op::Gt: return a.compare(b) > 0;
        case Op::Ge: return a.compare(b) >= 0;
        case Op::In: return contains(b, a);
        case Op::NotIn: return !contains(b, a);
        default: fail("internal error: not a comparison");
    }
}

class Renderer {
public:
    explicit Renderer(const Value& variables) {
        scopes_.emplace_back();
        for (auto& [k, v] : global_functions()) scopes_[0][k] = v;
        for (const auto& [k, v] : variables.members()) scopes_[0][k] = v;
    }

    std::string run(const Body& body) {
        try {
            exec(body);
        } catch (const Error& e) {
            fail("chat template line ", line_, ": ", e.what());
        }
        return std::move(out_);
    }

private:
    using Scope = std::unordered_map<std::string, Value>;
    enum class Flow { Normal, Break, Continue };

    Value lookup(const std::string& name) const {
        for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
            if (auto found = it->find(name); found != it->end()) return found->second;
        }
        return Value::undefined(name);
    }

    void assign(const std::vector<std::string>& targets, const Value& v) {
        if (targets.size() == 1) {
            scopes_.back()[targets[0]] = v;
            return;
        }
        const Array items = iterate(v);
        if (items.size() != targets.size()) {
            fail("cannot unpack ", items.size(), " values into ", targets.size(), " names");
        }
        for (size_t i = 0; i < targets.size(); ++i) scopes_.back()[targets[i]] = items[i];
    }

    std::string capture(const Body& body) {
        std::string saved = std::move(out_);
        out_.clear();
        exec(body);
        std::swap(saved, out_);
        return saved;
    }

    void exec(const Body& body) {
        for (const Node& n : body) {
            exec(n);
            if (flow_ != Flow::Normal) return;
        }
    }

    void exec(const Node& n) {
        line_ = n.line;
        switch (n.kind) {
            case Node::Kind::Text: out_ += n.text; break;
            case Node::Kind::Output: out_ += eval(*n.exprs[0]).str(); break;
            case Node::Kind::If:
                for (size_t i = 0; i < n.exprs.size(); ++i) {
                    if (eval(*n.exprs[i]).truthy()) return exec(n.bodies[i]);
                }
                if (n.bodies.size() > n.exprs.size()) exec(n.bodies.back());
                break;
            case Node::Kind::For: exec_for(n); break;
            case Node::Kind::Set:
                if (!n.attr.empty()) {
                    lookup(n.text).set_member(n.attr, eval(*n.exprs[0]));
                } else {
                    assign(n.targets, eval(*n.exprs[0]));
                }
                break;
            case Node::Kind::SetBlock: scopes_.back()[n.text] = capture(n.bodies[0]); break;
            case Node::Kind::Macro: scopes_.back()[n.text] = macro(n); break;
            case Node::Kind::Break: flow_ = Flow::Break; break;
            case Node::Kind::Continue: flow_ = Flow::Continue; break;
        }
    }

    void exec_for(const Node& n) {
        Array items = iterate(eval(*n.exprs[0]));
        scopes_.emplace_back();
        if (n.exprs.size() > 1) {  // the loop filter sees the loop variables, not `loop`
            Array kept;
            for (const Value& item : items) {
                assign(n.targets, item);
                if (eval(*n.exprs[1]).truthy()) kept.push_back(item);
            }
            items = std::move(kept);
        }
        if (items.empty()) {
            scopes_.pop_back();
            if (n.bodies.size() > 1) exec(n.bodies[1]);
            return;
        }
        const auto length = static_cast<int64_t>(items.size());
        for (int64_t i = 0; i < length; ++i) {
            const auto k = static_cast<size_t>(i);
            Object loop = {{"index", i + 1},         {"index0", i},
                           {"revindex", length - i}, {"revindex0", length - i - 1},
                           {"first", i == 0},        {"last", i == length - 1},
                           {"length", length}};
            if (i > 0) loop.emplace_back("previtem", items[k - 1]);
            if (i + 1 < length) loop.emplace_back("nextitem", items[k + 1]);
            loop.emplace_back("cycle", Value::function([i](const Args& a) {
                                  if (a.positional.empty()) fail("loop.cycle() needs at least one value");
                                  return a.positional[static_cast<size_t>(i) % a.positional.size()];
                              }));
            scopes_.back()["loop"] = Value::object(std::move(loop));
            assign(n.targets, items[k]);
            exec(n.bodies[0]);
            const Flow flow = flow_;
            flow_ = Flow::Normal;
            if (flow == Flow::Break) break;
        }
        scopes_.pop_back();
    }

    Value macro(const Node& n) {
        return Value::function([this, &n](const Args& a) -> Value {
            scopes_.emplace_back();
            for (size_t i = 0; i < n.targets.size(); ++i) {
                const Value* v = a.get(i, n.targets[i]);
                scopes_.back()[n.targets[i]] = v ? *v : n.exprs[i] ? eval(*n.exprs[i]) : Value::undefined(n.targets[i]);
            }
            std::string result = capture(n.bodies[0]);
            flow_ = Flow::Normal;
            scopes_.pop_back();
            return result;
        });
    }

    Args eval_args(const Expr& e, size_t first) {
        Args args;
        for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i]));
        for (const auto& [k, v] : e.kwargs) args.named.emplace_back(k, eval(*v));
        return args;
    }

    Value eval(const Expr& e) {
        line_ = e.line;
        switch (e.kind) {
            case Expr::Kind::Literal: return e.value;
            case Expr::Kind::Name: return lookup(e.name);
            case Expr::Kind::List:
            case Expr::Kind::Tuple: {
                Array items;
                for (const auto& a : e.args) items.push_back(eval(*a));
                return Value::array(std::move(items), e.kind == Expr::Kind::Tuple);
            }
            case Expr::Kind::Dict: {
                Object members;
                for (size_t i = 0; i + 1 < e.args.size(); i += 2)
                    members.emplace_back(eval(*e.args[i]).str(), eval(*e.args[i + 1]));
                return Value::object(std::move(members));
            }
            case Expr::Kind::Attr: return get_attribute(eval(*e.args[0]), e.name);
            case Expr::Kind::Item: return get_item(eval(*e.args[0]), eval(*e.args[1]));
            case Expr::Kind::Slice: {
                const Value obj = eval(*e.args[0]);
                Value bounds[3];
                for (size_t i = 0; i < 3; ++i) bounds[i] = e.args[i + 1] ? eval(*e.args[i + 1]) : Value::none();
                return get_slice(obj, &bounds[0], &bounds[1], &bounds[2]);
            }
            case Expr::Kind::Call: {
                const Value callee = eval(*e.args[0]);
                if (callee.is_undefined()) fail("'", callee.undefined_name(), "' is undefined");
                const Args args = eval_args(e, 1);
                return callee.function()(args);
            }
            case Expr::Kind::Filter: {
                const Value input = eval(*e.args[0]);
                return apply_filter(e.name, input, eval_args(e, 1));
            }
            case Expr::Kind::Test: {
                const Value subject = eval(*e.args[0]);
                return apply_test(e.name, subject, eval_args(e, 1)) != e.negated;
            }
            case Expr::Kind::Unary: {
                const Value v = eval(*e.args[0]);
                if (e.op == Op::Not) return !v.truthy();
                if (!v.is_number())
                    fail("bad operand type for unary ", e.op == Op::Neg ? "-" : "+", ": '", v.type_name(), "'");
                if (e.op == Op::Pos) return v;
                return v.kind() == Value::Kind::Float ? Value(-v.as_number()) : Value(-v.as_int());
            }
            case Expr::Kind::Binary: {
                Value left = eval(*e.args[0]);
                if (e.op == Op::And) return left.truthy() ? eval(*e.args[1]) : left;
                if (e.op == Op::Or) return left.truthy() ? left : eval(*e.args[1]);
                return arithmetic(e.op, left, eval(*e.args[1]));
            }
            case Expr::Kind::Compare: {
                Value left = eval(*e.args[0]);
                for (size_t i = 0; i < e.ops.size(); ++i) {
                    Value right = eval(*e.args[i + 1]);
                    if (!compare(e.ops[i], left, right)) return false;
                    left = std::move(right);
                }
                return true;
            }
            case Expr::Kind::Cond:
                if (eval(*e.args[0]).truthy()) return eval(*e.args[1]);
                return e.args[2] ? eval(*e.args[2]) : Value::undefined("inline if without else");
        }
        return Value();
    }

    std::vector<Scope> scopes_;
    std::string out_;
    Flow flow_ = Flow::Normal;
    int line_ = 0;  // of the node or expression being evaluated, for error messages
};

}  // namespace

Template::Template(std::string_view source) : body_(std::make_shared<const Body>(parse(lex(source)))) {}

std::string Template::render(const Value& variables) const { return Renderer(variables).run(*body_); }

}  // namespace strata::jinja
