#include "chat/jinja_sandbox.h"

#include <cmath>
#include <string>

#include "chat/jinja_value.h"
#include "util/error.h"

namespace strata::jinja {

void Budget::steps(uint64_t n) {
    if (n > kMaxSteps - used_) {
        fail("the template needs more than ", kMaxSteps, " steps (the limit on a render's work: ", used_, " used, ", n,
             " more asked)");
    }
    used_ += n;
}

void Budget::items(uint64_t n) { steps(n > kMaxSteps / kStepsPerItem ? kMaxSteps + 1 : n * kStepsPerItem); }

void Budget::append(uint64_t size, uint64_t added) {
    if (added > kMaxStringBytes || size > kMaxStringBytes - added) {
        fail("a string of ", size + added, " bytes exceeds the limit of ", kMaxStringBytes, " bytes");
    }
    bytes(added);
}

Budget::Level::Level(Budget& budget) : budget_(budget) {
    if (budget_.depth_ >= kMaxRenderDepth) {
        fail("the template recurses more than ", kMaxRenderDepth, " levels deep (a recursive macro?)");
    }
    ++budget_.depth_;
}

namespace {

// An operand as Python would need it written: (-2) ** 64, not -2 ** 64.
std::string operand(int64_t v) {
    std::string s = std::to_string(v);
    if (v < 0) s.insert(0, 1, '(').push_back(')');
    return s;
}

[[noreturn]] void overflow(int64_t a, const char* op, int64_t b) {
    fail("integer overflow: ", operand(a), " ", op, " ", operand(b), " does not fit in 64 bits");
}

}  // namespace

int64_t checked_add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) overflow(a, "+", b);
    return r;
}

int64_t checked_sub(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) overflow(a, "-", b);
    return r;
}

int64_t checked_mul(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) overflow(a, "*", b);
    return r;
}

int64_t checked_neg(int64_t a) {
    if (a == INT64_MIN) fail("integer overflow: -(", a, ") does not fit in 64 bits");
    return -a;
}

int64_t floor_div(int64_t a, int64_t b) {
    if (b == 0) fail("integer division or modulo by zero");
    if (b == -1) return checked_neg(a);  // INT64_MIN / -1 is the one quotient that overflows
    const int64_t q = a / b, r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}

int64_t floor_mod(int64_t a, int64_t b) {
    if (b == 0) fail("integer division or modulo by zero");
    if (b == -1) return 0;  // Python's answer; INT64_MIN % -1 is undefined in C++
    const int64_t r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

int64_t checked_pow(int64_t base, int64_t exponent) {
    // Square-and-multiply; the base is squared only while bits remain, so an overflow there means
    // the result overflows too.
    int64_t result = 1, b = base;
    for (uint64_t e = static_cast<uint64_t>(exponent); e; e >>= 1) {
        int64_t next;
        if ((e & 1) && __builtin_mul_overflow(result, b, &next)) overflow(base, "**", exponent);
        if (e & 1) result = next;
        if ((e >> 1) && __builtin_mul_overflow(b, b, &b)) overflow(base, "**", exponent);
    }
    return result;
}

int64_t float_to_int(double x) {
    if (std::isnan(x)) fail("cannot convert float NaN to integer");
    if (std::isinf(x)) fail("cannot convert float infinity to integer");
    // ±2^63 are exact doubles: every truncated value in [-2^63, 2^63) converts exactly.
    const double t = std::trunc(x);
    if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0)) {
        fail("integer overflow: int(", python_float(x), ") does not fit in 64 bits");
    }
    return static_cast<int64_t>(t);
}

}  // namespace strata::jinja
