// One exception type for every user-visible failure: the message names the file, tensor or key,
// and the expected and actual values. The CLI catches it once and prints `strata: error: ...`.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace strata {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Builds the message from any streamable parts: fail("file ", path, ": bad magic").
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    throw Error(os.str());
}

}  // namespace strata
