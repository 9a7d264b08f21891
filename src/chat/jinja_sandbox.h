// The limits a chat template runs under. A GGUF's tokenizer.chat_template is code written by
// whoever made the file, and `strata chat` executes it, so every way a template could take
// unbounded stack, memory or time is bounded here; going past a limit is an ordinary template
// error (Error "chat template line N: …"), after which the chat falls back to its built-in format.
// Real templates stay orders of magnitude below every limit (the fixtures in
// ../shared/fixtures/templates render a conversation in a few thousand steps, nest at most 6
// levels, and produce a few kilobytes per message).
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::jinja {

// The largest template source accepted. The largest templates models ship (tool-calling ones)
// are ~20 KB; a 1 MiB source already parses into a few hundred thousand syntax nodes.
constexpr size_t kMaxTemplateBytes = size_t{1} << 20;

// How deep the syntax may nest: parentheses, lists, `not`/`-` chains, filter and attribute chains
// (`x|f|f|f…` is a chain of nested calls), blocks inside blocks. Real templates nest fewer than 10
// levels, and jinja2 itself stops near 100 nested parentheses (Python's recursion limit). The
// parser and the renderer recurse once per level, so this bounds their stack use.
constexpr int kMaxNesting = 64;

// How deep values may nest (lists in lists, dicts in dicts): repr, tojson, comparisons and the
// destructors recurse over it. Tool schemas and messages nest a handful of levels.
constexpr int kMaxValueDepth = 64;

// How deep the renderer may recurse at run time: the syntax's own nesting plus the nesting of
// macro calls (a recursive macro). Some tool templates render JSON schemas with a recursive macro,
// one call per schema level, well under this; a few frames per level keep the stack under ~1 MiB
// even with AddressSanitizer.
constexpr int kMaxRenderDepth = 256;

// The work one render may do, in steps: one per syntax node executed or expression evaluated
// (~50 ns), kStepsPerItem per list item a builtin visits or creates, one per kBytesPerStep bytes
// it creates or scans (printing a nested list costs ~10 ns a byte). Charged before the work, so a
// render ends within about a second, however its loops nest (`range(16000000)` inside another is
// refused before the list is built), and creates at most ~256 MiB in all. A real template needs
// ~100 steps per message plus a few times the bytes of the conversation: 2^24 steps render a
// conversation of tens of thousands of messages, or of megabytes.
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr uint64_t kMaxSteps = uint64_t{1} << 24;
#else
// libFuzzer builds (tests/fuzz) take a smaller budget: the same code paths, but an input that
// exhausts it costs milliseconds, not seconds under the sanitizers, so the fuzzer keeps its pace.
constexpr uint64_t kMaxSteps = uint64_t{1} << 20;
#endif
constexpr uint64_t kBytesPerStep = 4;
// A list item costs its Value (~90 bytes) and often a string of its own: charged as ~128 bytes,
// the most one step may allocate (2^24 steps × 16 bytes bound what a render holds).
constexpr uint64_t kStepsPerItem = 8;

// The largest string a template may create, the rendered text included. A context of a million
// tokens is ~4 MiB of text; 16 MiB leaves room for the template's own markup around it.
constexpr size_t kMaxStringBytes = size_t{16} << 20;

// The work and recursion a render has used so far. One per render, owned by the renderer and
// passed to every builtin that can do more than constant work.
class Budget {
public:
    // Charges n steps; throws Error once the render has used more than kMaxSteps.
    void steps(uint64_t n);
    // Charges the creation or scan of n bytes.
    void bytes(uint64_t n) { steps(n / kBytesPerStep + 1); }
    // Charges the creation or visit of n list items.
    void items(uint64_t n);
    // Throws Error when a string of n bytes would exceed kMaxStringBytes; otherwise charges it.
    void string(uint64_t n) { append(0, n); }
    // The same for `added` bytes appended to a string of `size`: only the new bytes are charged.
    void append(uint64_t size, uint64_t added);
    uint64_t used() const { return used_; }

    // One level of the renderer's recursion, for as long as it lives; throws Error beyond
    // kMaxRenderDepth.
    class Level {
    public:
        explicit Level(Budget& budget);
        ~Level() { --budget_.depth_; }
        Level(const Level&) = delete;
        Level& operator=(const Level&) = delete;

    private:
        Budget& budget_;
    };

private:
    uint64_t used_ = 0;
    int depth_ = 0;
};

// Python's integer arithmetic where the result fits in 64 bits; Python's integers are unbounded,
// so a result that does not fit is a template error naming the operation, never a wrapped value.
int64_t checked_add(int64_t a, int64_t b);
int64_t checked_sub(int64_t a, int64_t b);
int64_t checked_mul(int64_t a, int64_t b);
int64_t checked_neg(int64_t a);
// Floor division and modulo rounding toward −∞, as Python's // and %; b == 0 is an error.
int64_t floor_div(int64_t a, int64_t b);
int64_t floor_mod(int64_t a, int64_t b);
int64_t checked_pow(int64_t base, int64_t exponent);  // exponent >= 0
// int(x) of a float: truncation toward zero; NaN, infinities and values beyond 64 bits are errors.
int64_t float_to_int(double x);

}  // namespace strata::jinja
