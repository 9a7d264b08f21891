// Recursive-descent parser for the Jinja subset chat templates use. The expression grammar and
// its precedence follow jinja2/parser.py level by level (condexpr, or, and, not, compare, math1,
// concat, math2, pow, unary, then postfix, filters and tests), so `'a' + x | trim` and `-2 ** 2`
// group as jinja2 groups them.
#include <algorithm>
#include <initializer_list>

#include "chat/jinja_sandbox.h"
#include "chat/jinja_syntax.h"
#include "util/error.h"

namespace strata::jinja {

namespace {

ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
}

ExprPtr make(Expr::Kind kind, int line, ExprPtr a, ExprPtr b = nullptr) {
    ExprPtr e = make(kind, line);
    e->args.push_back(std::move(a));
    if (b) e->args.push_back(std::move(b));
    return e;
}

// Sets e's depth from its finished operands. Chains the parser builds in a loop (`x|f|f|f…`,
// `a.b.c…`, `1+1+1…`) nest without recursing, so their depth is checked here: the renderer and
// the destructors recurse over it.
ExprPtr finish(ExprPtr e) {
    int deepest = 0;
    for (const ExprPtr& a : e->args) deepest = a ? std::max(deepest, a->depth) : deepest;
    for (const auto& kw : e->kwargs) deepest = std::max(deepest, kw.second->depth);
    e->depth = deepest + 1;
    if (e->depth > kMaxNesting)
        fail("chat template line ", e->line, ": expression nested more than ", kMaxNesting, " levels deep");
    return e;
}

class Parser {
public:
    explicit Parser(const std::vector<Token>& tokens) : t_(tokens) {}

    Body parse_template() { return parse_body({}).first; }

private:
    using Kind = Token::Kind;

    // One level of recursion (a nested block, parenthesis, list, `not`…) for as long as it lives.
    class Nested {
    public:
        explicit Nested(Parser& p) : p_(p) {
            if (p_.depth_ >= kMaxNesting) p_.error("nested more than " + std::to_string(kMaxNesting) + " levels deep");
            ++p_.depth_;
        }
        ~Nested() { --p_.depth_; }
        Nested(const Nested&) = delete;
        Nested& operator=(const Nested&) = delete;

    private:
        Parser& p_;
    };

    const Token& peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
    const Token& next() { return t_[std::min(i_++, t_.size() - 1)]; }
    [[noreturn]] void error(const std::string& what) const { fail("chat template line ", peek().line, ": ", what); }

    bool is_op(const char* op, size_t k = 0) const { return peek(k).kind == Kind::Op && peek(k).text == op; }
    bool is_name(const char* name, size_t k = 0) const { return peek(k).kind == Kind::Name && peek(k).text == name; }
    bool skip_op(const char* op) {
        if (!is_op(op)) return false;
        ++i_;
        return true;
    }
    bool skip_name(const char* name) {
        if (!is_name(name)) return false;
        ++i_;
        return true;
    }
    void expect_op(const char* op) {
        if (!skip_op(op)) error(std::string("expected '") + op + "', got '" + describe(peek()) + "'");
    }
    std::string expect_name() {
        if (peek().kind != Kind::Name) error("expected a name, got '" + describe(peek()) + "'");
        return next().text;
    }
    void expect_block_end() {
        if (peek().kind != Kind::BlockEnd) error("expected end of tag %}, got '" + describe(peek()) + "'");
        ++i_;
    }
    static std::string describe(const Token& t) {
        switch (t.kind) {
            case Kind::VarEnd: return "}}";
            case Kind::BlockEnd: return "%}";
            case Kind::End: return "end of template";
            default: return t.text;
        }
    }

    // Nodes up to a block tag named in `ends` (its name consumed, the rest of the tag not).
    std::pair<Body, std::string> parse_body(std::initializer_list<const char*> ends) {
        const Nested nested(*this);
        Body body;
        while (true) {
            const Token& t = peek();
            if (t.kind == Kind::End) {
                if (ends.size() > 0) error(std::string("missing {% ") + *(ends.end() - 1) + " %}");
                return {std::move(body), ""};
            }
            if (t.kind == Kind::Text) {
                Node n{Node::Kind::Text, t.line};
                n.text = next().text;
                body.push_back(std::move(n));
            } else if (t.kind == Kind::VarBegin) {
                Node n{Node::Kind::Output, next().line};
                n.exprs.push_back(parse_tuple(true));
                if (peek().kind != Kind::VarEnd) error("expected end of expression }}, got '" + describe(peek()) + "'");
                ++i_;
                body.push_back(std::move(n));
            } else if (t.kind == Kind::BlockBegin) {
                ++i_;
                const int line = peek().line;
                const std::string name = expect_name();
                if (std::find_if(ends.begin(), ends.end(), [&](const char* e) { return name == e; }) != ends.end()) {
                    return {std::move(body), name};
                }
                body.push_back(parse_statement(name, line));
            } else {
                error("unexpected '" + describe(t) + "'");
            }
        }
    }

    Node parse_statement(const std::string& name, int line) {
        if (name == "if") return parse_if(line);
        if (name == "for") return parse_for(line);
        if (name == "set") return parse_set(line);
        if (name == "macro") return parse_macro(line);
        if (name == "break" || name == "continue") {
            expect_block_end();
            return Node{name == "break" ? Node::Kind::Break : Node::Kind::Continue, line};
        }
        if (name == "generation") {
            // transformers' assistant-mask marker: renders its body unchanged.
            expect_block_end();
            Node n{Node::Kind::If, line};
            ExprPtr yes = make(Expr::Kind::Literal, line);
            yes->value = Value(true);
            n.exprs.push_back(std::move(yes));
            n.bodies.push_back(parse_body({"endgeneration"}).first);
            expect_block_end();
            return n;
        }
        error("unsupported tag {% " + name + " %}");
    }

    Node parse_if(int line) {
        Node n{Node::Kind::If, line};
        n.exprs.push_back(parse_tuple(false));
        expect_block_end();
        while (true) {
            auto [body, end] = parse_body({"elif", "else", "endif"});
            n.bodies.push_back(std::move(body));
            if (end == "elif") {
                n.exprs.push_back(parse_tuple(false));
                expect_block_end();
            } else if (end == "else") {
                expect_block_end();
                n.bodies.push_back(parse_body({"endif"}).first);
                break;
            } else {
                break;
            }
        }
        expect_block_end();
        return n;
    }

    std::vector<std::string> parse_targets() {
        std::vector<std::string> names;
        const bool paren = skip_op("(");
        do {
            names.push_back(expect_name());
        } while (skip_op(","));
        if (paren) expect_op(")");
        return names;
    }

    Node parse_for(int line) {
        Node n{Node::Kind::For, line};
        n.targets = parse_targets();
        if (!skip_name("in")) error("expected 'in' in {% for %}");
        n.exprs.push_back(parse_tuple(false));
        if (skip_name("if")) n.exprs.push_back(parse_expression(true));
        if (is_name("recursive")) error("recursive loops are not supported");
        expect_block_end();
        auto [body, end] = parse_body({"else", "endfor"});
        n.bodies.push_back(std::move(body));
        if (end == "else") {
            expect_block_end();
            n.bodies.push_back(parse_body({"endfor"}).first);
        }
        expect_block_end();
        return n;
    }

    Node parse_set(int line) {
        Node n{Node::Kind::Set, line};
        if (peek(1).kind == Kind::Op && peek(1).text == ".") {
            n.text = expect_name();
            ++i_;
            n.attr = expect_name();
        } else {
            n.targets = parse_targets();
        }
        if (skip_op("=")) {
            n.exprs.push_back(parse_tuple(true));
            expect_block_end();
            return n;
        }
        if (n.targets.size() != 1) error("{% set %} … {% endset %} takes one name");
        expect_block_end();
        Node block{Node::Kind::SetBlock, line};
        block.text = n.targets[0];
        block.bodies.push_back(parse_body({"endset"}).first);
        expect_block_end();
        return block;
    }

    Node parse_macro(int line) {
        Node n{Node::Kind::Macro, line};
        n.text = expect_name();
        expect_op("(");
        while (!skip_op(")")) {
            if (!n.targets.empty()) expect_op(",");
            if (skip_op(")")) break;
            n.targets.push_back(expect_name());
            n.exprs.push_back(skip_op("=") ? parse_expression(true) : nullptr);
        }
        expect_block_end();
        n.bodies.push_back(parse_body({"endmacro"}).first);
        expect_block_end();
        return n;
    }

    // Comma-separated expressions; a tuple when there is a comma (or "()").
    ExprPtr parse_tuple(bool with_condexpr, bool in_parens = false) {
        const int line = peek().line;
        std::vector<ExprPtr> items;
        bool is_tuple = false;
        while (true) {
            if (!items.empty()) expect_op(",");
            const Token& t = peek();
            if (t.kind == Kind::VarEnd || t.kind == Kind::BlockEnd || is_op(")")) break;
            items.push_back(parse_expression(with_condexpr));
            if (!is_op(",")) break;
            is_tuple = true;
        }
        if (!is_tuple && items.size() == 1) return std::move(items[0]);
        if (items.empty() && !in_parens) error("expected an expression, got '" + describe(peek()) + "'");
        ExprPtr e = make(Expr::Kind::Tuple, line);
        e->args = std::move(items);
        return finish(std::move(e));
    }

    ExprPtr parse_expression(bool with_condexpr) {
        const Nested nested(*this);
        return with_condexpr ? parse_condexpr() : parse_or();
    }

    ExprPtr parse_condexpr() {
        ExprPtr expr = parse_or();
        while (is_name("if")) {
            const int line = next().line;
            ExprPtr cond = parse_or();
            ExprPtr otherwise;
            if (skip_name("else")) {
                const Nested nested(*this);
                otherwise = parse_condexpr();
            }
            ExprPtr e = make(Expr::Kind::Cond, line, std::move(cond), std::move(expr));
            e->args.push_back(std::move(otherwise));
            expr = finish(std::move(e));
        }
        return expr;
    }

    ExprPtr binary(Op op, int line, ExprPtr a, ExprPtr b) {
        ExprPtr e = make(Expr::Kind::Binary, line, std::move(a), std::move(b));
        e->op = op;
        return finish(std::move(e));
    }

    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        while (is_name("or")) {
            const int line = next().line;
            e = binary(Op::Or, line, std::move(e), parse_and());
        }
        return e;
    }

    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (is_name("and")) {
            const int line = next().line;
            e = binary(Op::And, line, std::move(e), parse_not());
        }
        return e;
    }

    ExprPtr parse_not() {
        if (!is_name("not")) return parse_compare();
        const Nested nested(*this);
        const int line = next().line;
        ExprPtr e = make(Expr::Kind::Unary, line, parse_not());
        e->op = Op::Not;
        return finish(std::move(e));
    }

    ExprPtr parse_compare() {
        const int line = peek().line;
        ExprPtr first = parse_math1();
        ExprPtr e;
        while (true) {
            static const std::pair<const char*, Op> ops[] = {{"==", Op::Eq}, {"!=", Op::Ne}, {"<", Op::Lt},
                                                             {"<=", Op::Le}, {">", Op::Gt},  {">=", Op::Ge}};
            Op op;
            const auto* found = std::find_if(std::begin(ops), std::end(ops), [&](auto& o) { return is_op(o.first); });
            if (found != std::end(ops)) {
                op = found->second;
                ++i_;
            } else if (is_name("in")) {
                op = Op::In;
                ++i_;
            } else if (is_name("not") && is_name("in", 1)) {
                op = Op::NotIn;
                i_ += 2;
            } else {
                break;
            }
            if (!e) e = make(Expr::Kind::Compare, line, std::move(first));
            e->ops.push_back(op);
            e->args.push_back(parse_math1());
        }
        return e ? finish(std::move(e)) : std::move(first);
    }

    ExprPtr parse_math1() {
        ExprPtr e = parse_concat();
        while (is_op("+") || is_op("-")) {
            const Token& t = next();
            const Op op = t.text == "+" ? Op::Add : Op::Sub;
            e = binary(op, t.line, std::move(e), parse_concat());
        }
        return e;
    }

    ExprPtr parse_concat() {
        ExprPtr e = parse_math2();
        while (is_op("~")) {
            const int line = next().line;
            e = binary(Op::Concat, line, std::move(e), parse_math2());
        }
        return e;
    }

    ExprPtr parse_math2() {
        ExprPtr e = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const Token& t = next();
            const Op op = t.text == "*" ? Op::Mul : t.text == "/" ? Op::Div : t.text == "//" ? Op::FloorDiv : Op::Mod;
            e = binary(op, t.line, std::move(e), parse_pow());
        }
        return e;
    }

    ExprPtr parse_pow() {
        ExprPtr e = parse_unary(true);
        while (is_op("**")) {
            const int line = next().line;
            e = binary(Op::Pow, line, std::move(e), parse_unary(true));
        }
        return e;
    }

    ExprPtr parse_unary(bool with_filter) {
        ExprPtr e;
        if (is_op("-") && peek(1).kind == Kind::Int && peek(1).needs_minus) {
            e = make(Expr::Kind::Literal, next().line);  // -9223372036854775808: INT64_MIN itself
            e->value = Value(next().int_value);
        } else if (is_op("-") || is_op("+")) {
            const Nested nested(*this);
            const Token& t = next();
            e = make(Expr::Kind::Unary, t.line, parse_unary(false));
            e->op = t.text == "-" ? Op::Neg : Op::Pos;
            e = finish(std::move(e));
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        return with_filter ? parse_filter_expr(std::move(e)) : std::move(e);
    }

    ExprPtr parse_primary() {
        const Token& t = peek();
        ExprPtr e = make(Expr::Kind::Literal, t.line);
        switch (t.kind) {
            case Kind::Name:
                ++i_;
                if (t.text == "true" || t.text == "True")
                    e->value = Value(true);
                else if (t.text == "false" || t.text == "False")
                    e->value = Value(false);
                else if (t.text == "none" || t.text == "None")
                    e->value = Value::none();
                else {
                    e->kind = Expr::Kind::Name;
                    e->name = t.text;
                }
                return e;
            case Kind::String: {
                std::string s;
                while (peek().kind == Kind::String) s += next().text;  // adjacent literals join
                e->value = Value(std::move(s));
                return e;
            }
            case Kind::Int:
                if (t.needs_minus) error("integer literal " + t.text + " does not fit in 64 bits");
                e->value = Value(next().int_value);
                return e;
            case Kind::Float: e->value = Value(next().float_value); return e;
            default: break;
        }
        if (skip_op("(")) {
            ExprPtr inner = parse_tuple(true, true);
            expect_op(")");
            return inner;
        }
        if (skip_op("[")) {
            e->kind = Expr::Kind::List;
            while (!skip_op("]")) {
                if (!e->args.empty()) expect_op(",");
                if (skip_op("]")) break;
                e->args.push_back(parse_expression(true));
            }
            return finish(std::move(e));
        }
        if (skip_op("{")) {
            e->kind = Expr::Kind::Dict;
            while (!skip_op("}")) {
                if (!e->args.empty()) expect_op(",");
                if (skip_op("}")) break;
                e->args.push_back(parse_expression(true));
                expect_op(":");
                e->args.push_back(parse_expression(true));
            }
            return finish(std::move(e));
        }
        error("unexpected '" + describe(t) + "'");
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (true) {
            const int line = peek().line;
            if (skip_op(".")) {
                if (peek().kind == Kind::Int && !peek().needs_minus) {
                    ExprPtr index = make(Expr::Kind::Literal, line);
                    index->value = Value(next().int_value);
                    e = finish(make(Expr::Kind::Item, line, std::move(e), std::move(index)));
                } else {
                    e = make(Expr::Kind::Attr, line, std::move(e));
                    e->name = expect_name();
                    e = finish(std::move(e));
                }
            } else if (skip_op("[")) {
                e = parse_subscript(std::move(e), line);
            } else if (is_op("(")) {
                e = parse_call(std::move(e), Expr::Kind::Call, "");
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr target, int line) {
        ExprPtr start = is_op(":") ? nullptr : parse_expression(true);
        if (!skip_op(":")) {
            expect_op("]");
            return finish(make(Expr::Kind::Item, line, std::move(target), std::move(start)));
        }
        ExprPtr e = make(Expr::Kind::Slice, line);
        e->args.push_back(std::move(target));
        e->args.push_back(std::move(start));
        e->args.push_back(is_op("]") || is_op(":") ? nullptr : parse_expression(true));
        e->args.push_back(skip_op(":") && !is_op("]") ? parse_expression(true) : nullptr);
        expect_op("]");
        return finish(std::move(e));
    }

    // name(args…) for calls, filters and tests: positional arguments, then keyword ones.
    ExprPtr parse_call(ExprPtr target, Expr::Kind kind, std::string name) {
        ExprPtr e = make(kind, peek().line, std::move(target));
        e->name = std::move(name);
        expect_op("(");
        bool first = true;
        while (!skip_op(")")) {
            if (!first) expect_op(",");
            first = false;
            if (skip_op(")")) break;
            if (is_op("*") || is_op("**")) error("*args and **kwargs are not supported");
            if (peek().kind == Kind::Name && is_op("=", 1)) {
                std::string key = next().text;
                ++i_;
                e->kwargs.emplace_back(std::move(key), parse_expression(true));
            } else {
                if (!e->kwargs.empty()) error("positional argument after keyword argument");
                e->args.push_back(parse_expression(true));
            }
        }
        return finish(std::move(e));
    }

    std::string dotted_name() {
        std::string name = expect_name();
        while (skip_op(".")) {
            name += '.';
            name += expect_name();
        }
        return name;
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        while (true) {
            if (skip_op("|")) {
                const int line = peek().line;
                std::string name = dotted_name();
                if (is_op("(")) {
                    e = parse_call(std::move(e), Expr::Kind::Filter, std::move(name));
                } else {
                    e = make(Expr::Kind::Filter, line, std::move(e));
                    e->name = std::move(name);
                    e = finish(std::move(e));
                }
            } else if (is_name("is")) {
                e = parse_test(std::move(e));
            } else if (is_op("(")) {
                e = parse_call(std::move(e), Expr::Kind::Call, "");
            } else {
                return e;
            }
        }
    }

    ExprPtr parse_test(ExprPtr subject) {
        const int line = next().line;
        const bool negated = skip_name("not");
        std::string name = dotted_name();
        ExprPtr e;
        if (is_op("(")) {
            e = parse_call(std::move(subject), Expr::Kind::Test, std::move(name));
        } else {
            e = make(Expr::Kind::Test, line, std::move(subject));
            e->name = std::move(name);
            // `x is divisibleby 3`: one argument without parentheses, as jinja2 allows.
            const Token& t = peek();
            const bool starts_primary =
                (t.kind == Kind::Name && t.text != "else" && t.text != "or" && t.text != "and") ||
                t.kind == Kind::String || t.kind == Kind::Int || t.kind == Kind::Float || is_op("(") || is_op("[") ||
                is_op("{");
            if (starts_primary) {
                if (is_name("is")) error("tests cannot be chained with 'is'");
                e->args.push_back(parse_postfix(parse_primary()));
            }
        }
        e->negated = negated;
        return finish(std::move(e));
    }

    const std::vector<Token>& t_;
    size_t i_ = 0;
    int depth_ = 0;
};

}  // namespace

Body parse(const std::vector<Token>& tokens) { return Parser(tokens).parse_template(); }

}  // namespace strata::jinja
