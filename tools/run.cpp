// `strata run`: one-shot completion. Prints the prompt, then streams the continuation as it is
// generated; a timing summary goes to stderr.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>

#include "commands.h"
#include "decode/sampler.h"
#include "model_options.h"
#include "tokenizer/stream_detokenizer.h"
#include "util/error.h"

namespace {

struct RunOptions {
    ModelOptions model;
    std::string prompt, prompt_file;
    int n_predict = 128;
    float temperature = 0.8f;
    int64_t seed = -1;
    bool ignore_eos = false;
};

std::string read_prompt_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) strata::fail(path, ": cannot open prompt file");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run(const RunOptions& o) {
    using clock = std::chrono::steady_clock;
    LoadedModel m = load_model_for_cli(o.model);
    const std::string prompt = o.prompt_file.empty() ? o.prompt : read_prompt_file(o.prompt_file);
    std::vector<int32_t> tokens = m.tokenizer->encode(prompt, true, true);
    if (tokens.empty()) strata::fail("the prompt is empty and the model adds no BOS token: nothing to continue");
    if (static_cast<int>(tokens.size()) >= m.n_ctx) {
        strata::fail("the prompt is ", tokens.size(), " tokens, which does not fit a context of ", m.n_ctx,
                     " with room to generate (raise -c/--ctx-size)");
    }
    const uint64_t seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
    strata::Sampler sampler({o.temperature, seed});
    if (o.temperature > 0) std::fprintf(stderr, "strata: sampling with temperature %.2f, seed %llu\n", o.temperature,
                                        static_cast<unsigned long long>(seed));

    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
    auto state = m.model->new_state(m.n_ctx);
    std::vector<float> logits;
    auto t0 = clock::now();
    m.model->forward(*state, tokens, strata::Logits::Last, logits);
    auto t1 = clock::now();

    strata::StreamDetokenizer detok(*m.tokenizer);
    int generated = 0;
    for (; generated < o.n_predict; ++generated) {
        int32_t next = sampler.sample(logits);
        if (!o.ignore_eos && m.tokenizer->is_eog(next)) break;
        std::fputs(detok.push(next).c_str(), stdout);
        std::fflush(stdout);
        if (state->n_past() >= m.n_ctx) {
            std::fprintf(stderr, "\nstrata: context of %d tokens is full; stopping\n", m.n_ctx);
            ++generated;
            break;
        }
        m.model->forward(*state, std::span<const int32_t>(&next, 1), strata::Logits::Last, logits);
    }
    std::fputs(detok.flush().c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    auto t2 = clock::now();
    const double prompt_s = std::chrono::duration<double>(t1 - t0).count();
    const double gen_s = std::chrono::duration<double>(t2 - t1).count();
    std::fprintf(stderr, "strata: load %.0f ms | prompt %zu tokens, %.1f tokens/s | generation %d tokens, %.1f tokens/s\n",
                 m.load_seconds * 1000, tokens.size(), static_cast<double>(tokens.size()) / prompt_s, generated,
                 generated > 0 ? generated / gen_s : 0.0);
}

}  // namespace

namespace {

void register_run(CLI::App& app) {
    auto o = std::make_shared<RunOptions>();
    auto* cmd = app.add_subcommand("run", "Complete a prompt, streaming the generated text");
    add_model_options(cmd, o->model);
    auto* p = cmd->add_option("-p,--prompt", o->prompt, "Prompt text");
    cmd->add_option("-f,--file", o->prompt_file, "Read the prompt from a file")->excludes(p);
    cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->check(CLI::NonNegativeNumber);
    cmd->add_option("--temp", o->temperature, "Temperature; 0 is greedy")->check(CLI::NonNegativeNumber);
    cmd->add_option("--seed", o->seed, "Random seed (default: random, printed)");
    cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-sequence tokens");
    cmd->callback([o] { run(*o); });
}

const CommandRegistration registration{10, "run", register_run};

}  // namespace
