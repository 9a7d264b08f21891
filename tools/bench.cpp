// `strata bench`: llama-bench-style throughput. Prompt processing (pp: one batched forward of
// n_prompt tokens) and text generation (tg: n_gen single-token forwards), each repeated; prints
// mean ± stddev tokens/s per thread count, so runs in one command compare against each other.
#include <charconv>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "commands.h"
#include "model_options.h"
#include "util/cpu_features.h"
#include "util/error.h"

namespace {

struct BenchOptions {
    ModelOptions model;
    int n_prompt = 128;
    int n_gen = 32;
    int repetitions = 3;
    std::string threads_list;  // "1,2": one row per thread count
};

struct Stat {
    double mean = 0, stddev = 0;
};

Stat stats(const std::vector<double>& v) {
    Stat s;
    s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
    s.stddev = v.size() > 1 ? std::sqrt(s.stddev / static_cast<double>(v.size() - 1)) : 0;
    return s;
}

std::vector<int> parse_threads(const std::string& list) {
    std::vector<int> out;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) {
        int t = 0;
        const char* end = item.data() + item.size();
        const auto [ptr, ec] = std::from_chars(item.data(), end, t);
        if (ec != std::errc() || ptr != end || t <= 0 || t > (1 << 16)) {
            strata::fail("--threads-list: '", item, "' is not a thread count from 1 to 65536");
        }
        out.push_back(t);
    }
    return out;
}

void bench(BenchOptions o) {
    using clock = std::chrono::steady_clock;
    std::vector<int> thread_counts = o.threads_list.empty() ? std::vector<int>{o.model.threads > 0 ? o.model.threads : strata::physical_cores()}
                                                            : parse_threads(o.threads_list);
    // Both are positive ints; their sum is the context, which must be an int too.
    if (o.n_prompt > INT_MAX - o.n_gen) {
        strata::fail("-p ", o.n_prompt, " + -n ", o.n_gen, " tokens is more than the largest context (", INT_MAX, ")");
    }
    o.model.n_ctx = o.n_prompt + o.n_gen;
    o.model.ctx_flag = "-p + -n";
    std::printf("| model | threads | test | tokens/s |\n|---|---|---|---|\n");
    for (int threads : thread_counts) {
        o.model.threads = threads;
        LoadedModel m = load_model_for_cli(o.model);
        const int64_t n_vocab = m.model->info().n_vocab;
        std::vector<int32_t> prompt(static_cast<size_t>(o.n_prompt));
        for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 1) % n_vocab);
        std::vector<double> pp, tg;
        std::vector<float> logits;
        for (int r = 0; r <= o.repetitions; ++r) {  // repetition 0 warms caches and page tables
            auto state = m.model->new_state(o.model.n_ctx);
            auto t0 = clock::now();
            m.model->forward(*state, prompt, strata::Logits::Last, logits);
            auto t1 = clock::now();
            int32_t token = 1;
            for (int i = 0; i < o.n_gen; ++i) {
                m.model->forward(*state, std::span<const int32_t>(&token, 1), strata::Logits::Last, logits);
                token = static_cast<int32_t>((token * 31 + 7) % n_vocab);
            }
            auto t2 = clock::now();
            if (r == 0) continue;
            pp.push_back(o.n_prompt / std::chrono::duration<double>(t1 - t0).count());
            tg.push_back(o.n_gen / std::chrono::duration<double>(t2 - t1).count());
        }
        Stat p = stats(pp), g = stats(tg);
        std::printf("| %s | %d | pp%d | %.1f ± %.1f |\n", o.model.path.c_str(), threads, o.n_prompt, p.mean, p.stddev);
        std::printf("| %s | %d | tg%d | %.1f ± %.1f |\n", o.model.path.c_str(), threads, o.n_gen, g.mean, g.stddev);
        std::fflush(stdout);
    }
}

void register_bench(CLI::App& app) {
    auto o = std::make_shared<BenchOptions>();
    auto* cmd = app.add_subcommand("bench", "Measure prompt-processing and generation throughput");
    add_model_options(cmd, o->model);
    cmd->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens per pp test")->check(CLI::PositiveNumber);
    cmd->add_option("-n,--n-gen", o->n_gen, "Generated tokens per tg test")->check(CLI::PositiveNumber);
    cmd->add_option("-r,--repetitions", o->repetitions, "Timed repetitions")->check(CLI::PositiveNumber);
    cmd->add_option("--threads-list", o->threads_list, "Comma-separated thread counts, one row each (e.g. 1,2)");
    cmd->callback([o] { bench(*o); });
}

const CommandRegistration registration{40, "bench", register_bench};

}  // namespace
