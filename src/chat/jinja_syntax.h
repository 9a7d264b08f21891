// The syntax tree of a Jinja template, and the lexer and parser that build it (internal to
// jinja*.cpp). Whitespace is handled as transformers configures jinja2 for chat templates:
// trim_blocks (the newline after a block tag is dropped), lstrip_blocks (spaces before a block
// tag on its own line are dropped), and the `-` / `+` markers inside tags.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_value.h"

namespace strata::jinja {

struct Token {
    enum class Kind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };
    Kind kind;
    std::string text;  // Text: the data; Name/Op: the spelling; String: the decoded value
    int64_t int_value = 0;
    double float_value = 0;
    int line = 1;
    // The literal 9223372036854775808 (int_value holds INT64_MIN): it fits in 64 bits only after a
    // unary minus, which the parser checks.
    bool needs_minus = false;
};

// Throws Error("chat template line N: …") on an unterminated tag, string or comment.
std::vector<Token> lex(std::string_view source);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class Op {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Concat,
    And,
    Or,
    Not,
    Neg,
    Pos,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn
};

struct Expr {
    enum class Kind {
        Literal,  // value
        Name,     // name
        List,     // args: the items
        Tuple,    // args: the items
        Dict,     // args: key, value, key, value…
        Attr,     // args[0].name
        Item,     // args[0][args[1]]
        Slice,    // args[0][args[1]:args[2]:args[3]], each bound may be null
        Call,     // args[0](args[1…], kwargs)
        Filter,   // args[0] | name(args[1…], kwargs)
        Test,     // args[0] is [not] name(args[1…])
        Unary,    // op args[0]
        Binary,   // args[0] op args[1] (and/or short-circuit)
        Compare,  // args[0] ops[0] args[1] ops[1] args[2]…, chained as Python does
        Cond,     // args[1] if args[0] else args[2] (null: undefined)
    };
    Kind kind;
    int line = 0;
    int depth = 1;  // of the subtree: 1 + the deepest operand's, at most kMaxNesting
    Value value;
    std::string name;
    Op op = Op::Add;
    std::vector<Op> ops;
    std::vector<ExprPtr> args;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    bool negated = false;
};

struct Node;
using Body = std::vector<Node>;

struct Node {
    enum class Kind {
        Text,      // text
        Output,    // {{ exprs[0] }}
        If,        // exprs: conditions; bodies: one per condition, plus the else body when present
        For,       // targets in exprs[0] [if exprs[1]]; bodies[0], else: bodies[1]
        Set,       // targets = exprs[0]; or name.attr = exprs[0] (a namespace attribute)
        SetBlock,  // name = the output of bodies[0]
        Macro,     // name(targets with defaults exprs, null when none): bodies[0]
        Break,
        Continue,
    };
    Node(Kind k, int at) : kind(k), line(at) {}

    Kind kind;
    int line;
    std::string text;  // Text; the name for SetBlock and Macro; the namespace for Set with attr
    std::string attr;
    std::vector<std::string> targets;
    std::vector<ExprPtr> exprs;
    std::vector<Body> bodies;
};

// Throws Error("chat template line N: …") on a syntax error, an unsupported tag, or syntax nested
// deeper than kMaxNesting (jinja_sandbox.h).
Body parse(const std::vector<Token>& tokens);

}  // namespace strata::jinja
