// A one-line progress bar on stderr, drawn only when stderr is a terminal (logs and pipes stay
// clean). Shows done/total, percent, rate and an optional caption.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace strata {

class ProgressBar {
public:
    ProgressBar(std::string label, int64_t total, std::string unit = "");
    ~ProgressBar();
    void update(int64_t done, const std::string& caption = "");
    void finish();
    static bool enabled();  // stderr is a terminal

private:
    std::string label_, unit_;
    int64_t total_;
    std::chrono::steady_clock::time_point start_;
    bool drawn_ = false;
};

}  // namespace strata
