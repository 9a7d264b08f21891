// The evaluator: walks the syntax tree with a stack of scopes. As in jinja2, a for loop's body
// gets its own scope (a `set` inside it does not leak out), if blocks do not, and macros run in
// a fresh scope above the caller's.
#include "chat/jinja.h"

#include <cmath>
#include <cstdint>
#include <unordered_map>

#include "chat/jinja_builtins.h"
#include "chat/jinja_sandbox.h"
#include "chat/jinja_syntax.h"
#include "util/error.h"

namespace strata::jinja {

namespace {

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
    if (a.is_undefined()) fail("'", a.undefined_name(), "' is undefined");
    if (b.is_undefined()) fail("'", b.undefined_name(), "' is undefined");
    fail("unsupported operand type(s) for ", op, ": '", a.type_name(), "' and '", b.type_name(), "'");
}

bool both_ints(const Value& a, const Value& b) {
    return a.kind() != Value::Kind::Float && b.kind() != Value::Kind::Float;
}

// seq * n, charged (and refused when too large) before anything is built.
Value repeat(Budget& budget, const Value& seq, int64_t n) {
    const uint64_t times = n > 0 ? static_cast<uint64_t>(n) : 0;
    if (seq.is_string()) {
        const uint64_t size = seq.as_string().size();
        budget.string(size == 0 || times <= kMaxStringBytes / size ? size * times : kMaxStringBytes + 1);
        std::string out;
        out.reserve(size * times);
        for (uint64_t i = 0; i < times; ++i) out += seq.as_string();
        return out;
    }
    const uint64_t size = seq.items().size();
    budget.items(size == 0 || times <= kMaxSteps / size ? size * times : kMaxSteps + 1);
    Array out;
    out.reserve(size * times);
    for (uint64_t i = 0; i < times; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
    return Value::array(std::move(out), seq.is_tuple());
}

Value concatenate(Budget& budget, const std::string& a, const std::string& b) {
    budget.string(uint64_t{a.size()} + b.size());
    std::string out;
    out.reserve(a.size() + b.size());
    return out.append(a).append(b);
}

// Python's float ** float, with its errors where C's pow would give inf or nan silently.
double float_pow(double a, double b) {
    if (a == 0 && b < 0) fail("0.0 cannot be raised to a negative power");
    if (a < 0 && std::isfinite(b) && b != std::floor(b)) fail("a negative number raised to a fractional power");
    const double r = std::pow(a, b);
    if (std::isinf(r) && std::isfinite(a) && std::isfinite(b)) fail("numerical result out of range: ", a, " ** ", b);
    return r;
}

// Python's arithmetic: ints stay ints (floor division and modulo round toward −∞), `/` always
// gives a float, + joins strings and lists, * repeats them. Integer results that do not fit in 64
// bits are errors (Python would grow the integer).
Value arithmetic(Budget& budget, Op op, const Value& a, const Value& b) {
    if (op == Op::Concat) return concatenate(budget, a.str(budget), b.str(budget));
    const bool numbers = a.is_number() && b.is_number();
    auto is_count = [](const Value& v) { return v.kind() == Value::Kind::Int || v.kind() == Value::Kind::Bool; };
    switch (op) {
        case Op::Add:
            if (numbers)
                return both_ints(a, b) ? Value(checked_add(a.as_int(), b.as_int()))
                                       : Value(a.as_number() + b.as_number());
            if (a.is_string() && b.is_string()) return concatenate(budget, a.as_string(), b.as_string());
            if (a.is_array() && b.is_array()) {
                budget.items(a.items().size() + b.items().size());
                Array out = a.items();
                out.insert(out.end(), b.items().begin(), b.items().end());
                return Value::array(std::move(out), a.is_tuple());
            }
            if (a.is_string() && !b.is_undefined())
                fail("can only concatenate str (not \"", b.type_name(), "\") to str");
            unsupported("+", a, b);
        case Op::Sub:
            if (!numbers) unsupported("-", a, b);
            return both_ints(a, b) ? Value(checked_sub(a.as_int(), b.as_int())) : Value(a.as_number() - b.as_number());
        case Op::Mul:
            if (numbers)
                return both_ints(a, b) ? Value(checked_mul(a.as_int(), b.as_int()))
                                       : Value(a.as_number() * b.as_number());
            if ((a.is_string() || a.is_array()) && is_count(b)) return repeat(budget, a, b.as_int());
            if ((b.is_string() || b.is_array()) && is_count(a)) return repeat(budget, b, a.as_int());
            unsupported("*", a, b);
        case Op::Div:
            if (!numbers) unsupported("/", a, b);
            if (b.as_number() == 0) fail("division by zero");
            return a.as_number() / b.as_number();
        case Op::FloorDiv:
        case Op::Mod: {
            if (!numbers) unsupported(op == Op::Mod ? "%" : "//", a, b);
            if (both_ints(a, b)) {
                return op == Op::FloorDiv ? floor_div(a.as_int(), b.as_int()) : floor_mod(a.as_int(), b.as_int());
            }
            if (b.as_number() == 0) fail("float division or modulo by zero");
            const double x = a.as_number(), y = b.as_number();
            const double q = std::floor(x / y);
            return op == Op::FloorDiv ? q : x - q * y;
        }
        case Op::Pow:
            if (!numbers) unsupported("**", a, b);
            if (both_ints(a, b) && b.as_int() >= 0) return checked_pow(a.as_int(), b.as_int());
            return float_pow(a.as_number(), b.as_number());
        default: fail("internal error: not an arithmetic operator");
    }
}

bool compare(Budget& budget, Op op, const Value& a, const Value& b) {
    switch (op) {
        case Op::Eq: return a.equals(b, budget);
        case Op::Ne: return !a.equals(b, budget);
        case Op::Lt: return a.compare(b, budget) < 0;
        case Op::Le: return a.compare(b, budget) <= 0;
        case Op::Gt: return a.compare(b, budget) > 0;
        case Op::Ge: return a.compare(b, budget) >= 0;
        case Op::In: return contains(budget, b, a);
        case Op::NotIn: return !contains(budget, b, a);
        default: fail("internal error: not a comparison");
    }
}

class Renderer {
public:
    explicit Renderer(const Value& variables) {
        scopes_.emplace_back();
        for (auto& [k, v] : global_functions(budget_)) scopes_[0][k] = v;
        for (const auto& [k, v] : variables.members()) scopes_[0][k] = v;
    }

    std::string run(const Body& body) {
        try {
            exec(body);
        } catch (const Error& e) {
            fail("chat template line ", line_, ": ", e.what());
        } catch (const std::exception& e) {
            // Not reachable by design; if a library call throws anyway, the chat still falls back.
            throw InternalError("chat template line " + std::to_string(line_) + ": internal error: " + e.what());
        }
        return std::move(out_);
    }

private:
    using Scope = std::unordered_map<std::string, Value>;
    enum class Flow { Normal, Break, Continue };

    // Charged per scope searched: inside a deep recursion of macros a global is many scopes away.
    Value lookup(const std::string& name) {
        for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
            budget_.steps(1);
            if (auto found = it->find(name); found != it->end()) return found->second;
        }
        return Value::undefined(name);
    }

    void assign(const std::vector<std::string>& targets, const Value& v) {
        if (targets.size() == 1) {
            scopes_.back()[targets[0]] = v;
            return;
        }
        const Array items = iterate(budget_, v);
        if (items.size() != targets.size()) {
            fail("cannot unpack ", items.size(), " values into ", targets.size(), " names");
        }
        for (size_t i = 0; i < targets.size(); ++i) scopes_.back()[targets[i]] = items[i];
    }

    // The output, and the text captured by {% set %} blocks and macro calls, all count against the
    // string limit.
    void write(const std::string& text) {
        if (text.size() > kMaxStringBytes - out_.size()) {
            fail("the template's output exceeds ", kMaxStringBytes, " bytes (the limit on what a template renders)");
        }
        budget_.bytes(text.size());
        out_ += text;
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
        const Budget::Level level(budget_);
        budget_.steps(1);
        line_ = n.line;
        switch (n.kind) {
            case Node::Kind::Text: write(n.text); break;
            case Node::Kind::Output: write(eval(*n.exprs[0]).str(budget_)); break;
            case Node::Kind::If:
                for (size_t i = 0; i < n.exprs.size(); ++i) {
                    if (eval(*n.exprs[i]).truthy()) return exec(n.bodies[i]);
                }
                if (n.bodies.size() > n.exprs.size()) exec(n.bodies.back());
                break;
            case Node::Kind::For: exec_for(n); break;
            case Node::Kind::Set:
                if (!n.attr.empty()) {
                    const Value target = lookup(n.text);
                    if (target.is_object()) budget_.steps(target.members().size());  // the search for the name
                    target.set_member(n.attr, eval(*n.exprs[0]));
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
        Array items = iterate(budget_, eval(*n.exprs[0]));
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
            // An iteration's cost beyond its body: the `loop` object's ten members.
            budget_.items(10);
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
            const Budget::Level level(budget_);
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
        const Budget::Level level(budget_);
        budget_.steps(1);
        line_ = e.line;
        switch (e.kind) {
            case Expr::Kind::Literal: return e.value;
            case Expr::Kind::Name: return lookup(e.name);
            case Expr::Kind::List:
            case Expr::Kind::Tuple: {
                budget_.items(e.args.size());
                Array items;
                for (const auto& a : e.args) items.push_back(eval(*a));
                return Value::array(std::move(items), e.kind == Expr::Kind::Tuple);
            }
            case Expr::Kind::Dict: {
                budget_.items(e.args.size() / 2);
                Object members;
                std::unordered_map<std::string, size_t> index;  // a repeated key keeps its place, takes the last value
                for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
                    std::string key = eval(*e.args[i]).str(budget_);
                    budget_.string(key.size());
                    Value value = eval(*e.args[i + 1]);
                    if (const auto [at, inserted] = index.emplace(key, members.size()); !inserted) {
                        members[at->second].second = std::move(value);
                    } else {
                        members.emplace_back(std::move(key), std::move(value));
                    }
                }
                return Value::object(std::move(members));
            }
            case Expr::Kind::Attr: return get_attribute(budget_, eval(*e.args[0]), e.name);
            case Expr::Kind::Item: {
                const Value obj = eval(*e.args[0]);
                return get_item(budget_, obj, eval(*e.args[1]));
            }
            case Expr::Kind::Slice: {
                const Value obj = eval(*e.args[0]);
                Value bounds[3];
                for (size_t i = 0; i < 3; ++i) bounds[i] = e.args[i + 1] ? eval(*e.args[i + 1]) : Value::none();
                return get_slice(budget_, obj, &bounds[0], &bounds[1], &bounds[2]);
            }
            case Expr::Kind::Call: {
                const Value callee = eval(*e.args[0]);
                if (callee.is_undefined()) fail("'", callee.undefined_name(), "' is undefined");
                const Args args = eval_args(e, 1);
                return callee.function()(args);
            }
            case Expr::Kind::Filter: {
                const Value input = eval(*e.args[0]);
                return apply_filter(budget_, e.name, input, eval_args(e, 1));
            }
            case Expr::Kind::Test: {
                const Value subject = eval(*e.args[0]);
                return apply_test(budget_, e.name, subject, eval_args(e, 1)) != e.negated;
            }
            case Expr::Kind::Unary: {
                const Value v = eval(*e.args[0]);
                if (e.op == Op::Not) return !v.truthy();
                if (!v.is_number())
                    fail("bad operand type for unary ", e.op == Op::Neg ? "-" : "+", ": '", v.type_name(), "'");
                if (e.op == Op::Pos) return v;
                return v.kind() == Value::Kind::Float ? Value(-v.as_number()) : Value(checked_neg(v.as_int()));
            }
            case Expr::Kind::Binary: {
                Value left = eval(*e.args[0]);
                if (e.op == Op::And) return left.truthy() ? eval(*e.args[1]) : left;
                if (e.op == Op::Or) return left.truthy() ? left : eval(*e.args[1]);
                const Value right = eval(*e.args[1]);
                return arithmetic(budget_, e.op, left, right);
            }
            case Expr::Kind::Compare: {
                Value left = eval(*e.args[0]);
                for (size_t i = 0; i < e.ops.size(); ++i) {
                    Value right = eval(*e.args[i + 1]);
                    if (!compare(budget_, e.ops[i], left, right)) return false;
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

    Budget budget_;
    std::vector<Scope> scopes_;
    std::string out_;
    Flow flow_ = Flow::Normal;
    int line_ = 0;  // of the node or expression being evaluated, for error messages
};

}  // namespace

namespace {

Body parse_source(std::string_view source) {
    if (source.size() > kMaxTemplateBytes) {
        fail("chat template of ", source.size(), " bytes: the limit is ", kMaxTemplateBytes, " bytes");
    }
    try {
        return parse(lex(source));
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {
        throw InternalError(std::string("chat template: internal error while parsing: ") + e.what());
    }
}

}  // namespace

Template::Template(std::string_view source) : body_(std::make_shared<const Body>(parse_source(source))) {}

std::string Template::render(const Value& variables) const { return Renderer(variables).run(*body_); }

}  // namespace strata::jinja
