#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

namespace strata {

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

bool ProgressBar::enabled() {
    static const bool tty = isatty(STDERR_FILENO) != 0;
    return tty;
}

void ProgressBar::update(int64_t done, const std::string& caption) {
    if (!enabled() || total_ <= 0) return;
    constexpr int kWidth = 30;
    const double frac = static_cast<double>(done) / static_cast<double>(total_);
    const int filled = static_cast<int>(frac * kWidth);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r%s [%s] %lld/%lld %3.0f%% %.1f %s/s %s\033[K", label_.c_str(), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), 100 * frac,
                 secs > 0 ? static_cast<double>(done) / secs : 0.0, unit_.c_str(), caption.c_str());
    std::fflush(stderr);
    drawn_ = true;
}

void ProgressBar::finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
}

}  // namespace strata
