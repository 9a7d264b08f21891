// `strata run`: one-shot completion. Prints the prompt, then streams the continuation as it is
// generated (sampled, or speculatively decoded with -md); with --beams the best beam is printed
// once the search ends. A timing summary goes to stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "commands.h"
#include "decode/beam_search.h"
#include "decode/generate.h"
#include "decode/sampler.h"
#include "decode/speculative.h"
#include "model_options.h"
#include "sampling_options.h"
#include "tokenizer/stream_detokenizer.h"
#include "util/error.h"
#include "util/files.h"

namespace {

struct RunOptions {
    ModelOptions model;
    std::string draft_path;
    int n_draft = 4;
    float draft_p_min = 0.75f;
    std::string prompt, prompt_file;
    int n_predict = 128;
    SamplingOptions sampling;
    int beams = 0;
    float length_penalty = 1.0f;
    bool ignore_eos = false;
    bool verbose = false;
};

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void run(const RunOptions& o) {
    using clock = std::chrono::steady_clock;
    if (o.beams > 0 && !o.draft_path.empty()) strata::fail("--beams and --model-draft cannot be combined");
    LoadedModel m = load_model_for_cli(o.model);
    LoadedModel d = load_draft_for_cli(o.model, o.draft_path, m);
    const std::string prompt = o.prompt_file.empty() ? o.prompt : strata::read_file(o.prompt_file);
    std::vector<int32_t> tokens = m.tokenizer->encode(prompt, true, true);
    const size_t n_prompt = tokens.size();
    if (tokens.empty()) strata::fail("the prompt is empty and the model adds no BOS token: nothing to continue");
    if (static_cast<int>(tokens.size()) >= m.n_ctx) {
        strata::fail("the prompt is ", tokens.size(), " tokens, which does not fit a context of ", m.n_ctx,
                     " with room to generate (raise -c/--ctx-size)");
    }
    const strata::SamplerParams sampling = o.sampling.resolved();
    strata::Sampler sampler(sampling);
    if (o.beams == 0 && !sampling.greedy()) {
        std::fprintf(stderr, "strata: sampling with temperature %.2f, top-k %d, top-p %.2f, min-p %.2f, seed %llu\n",
                     sampling.temperature, sampling.top_k, sampling.top_p, sampling.min_p,
                     static_cast<unsigned long long>(sampling.seed));
    }

    std::fputs(prompt.c_str(), stdout);
    std::fflush(stdout);
    strata::StreamDetokenizer detok(*m.tokenizer);
    auto print = [&](int32_t id) {
        if (!o.ignore_eos && m.tokenizer->is_eog(id)) return false;
        std::fputs(detok.push(id).c_str(), stdout);
        std::fflush(stdout);
        return true;
    };

    // Every beam copies the state it forks from: size it to what the search can reach.
    const int n_ctx = o.beams > 0 ? std::min(m.n_ctx, static_cast<int>(n_prompt) + o.n_predict) : m.n_ctx;
    auto state = m.model->new_state(n_ctx);
    std::vector<float> logits;
    auto t0 = clock::now();
    double prompt_s = 0;
    int64_t generated = 0;
    strata::StopReason stop = strata::StopReason::n_predict;
    if (d.model) {
        // Both models process the prompt but its last token, which opens the first target pass.
        auto draft_state = d.model->new_state(m.n_ctx);
        const auto head = std::span<const int32_t>(tokens).first(tokens.size() - 1);
        if (!head.empty()) {
            m.model->forward(*state, head, strata::Logits::Last, logits);
            d.model->forward(*draft_state, head, strata::Logits::Last, logits);
        }
        prompt_s = seconds_since(t0);
        auto st = strata::generate_speculative(*m.model, *state, *d.model, *draft_state, tokens,
                                               {.n_predict = o.n_predict, .n_draft = o.n_draft, .p_min = o.draft_p_min},
                                               sampler, print);
        generated = st.generated;
        stop = st.stop;
        std::fprintf(stderr, "\nstrata: draft %lld tokens, accepted %lld (%.1f%%), %.2f tokens per target pass",
                     static_cast<long long>(st.drafted), static_cast<long long>(st.accepted),
                     100 * st.acceptance_rate(), st.tokens_per_pass());
    } else {
        m.model->forward(*state, tokens, strata::Logits::Last, logits);
        prompt_s = seconds_since(t0);
        if (o.beams > 0) {
            const strata::BeamParams params{
                .n_beams = o.beams, .n_predict = o.n_predict, .length_penalty = o.length_penalty};
            auto is_eos = [&](int32_t id) { return m.tokenizer->is_eog(id); };
            auto best = strata::beam_search(*m.model, *state, logits, params,
                                            o.ignore_eos ? std::function<bool(int32_t)>() : is_eos);
            for (int32_t id : best.tokens) print(id);
            generated = static_cast<int64_t>(best.tokens.size());
            std::fprintf(stderr, "\nstrata: best of %d beams: log-prob %.4f, score %.4f", o.beams, best.log_prob,
                         best.score);
        } else {
            auto r = strata::generate(*m.model, *state, logits, tokens, o.n_predict, sampler, print);
            generated = r.n_generated;
            stop = r.stop;
        }
    }
    if (stop == strata::StopReason::context_full) {
        std::fprintf(stderr, "\nstrata: context of %d tokens is full; stopping", m.n_ctx);
    }
    std::fputs(detok.flush().c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    const double gen_s = seconds_since(t0) - prompt_s;
    std::fprintf(stderr,
                 "\nstrata: load %.0f ms | prompt %zu tokens, %.1f tokens/s | generation %lld tokens, %.1f tokens/s\n",
                 (m.load_seconds + d.load_seconds) * 1000, n_prompt, static_cast<double>(n_prompt) / prompt_s,
                 static_cast<long long>(generated), generated > 0 ? static_cast<double>(generated) / gen_s : 0.0);
    if (o.verbose) {
        const strata::KvCacheTypes kv = state->kv_types();
        std::fprintf(stderr, "state: %zu bytes per position (k %s, v %s)\n", state->bytes_per_position(),
                     strata::type_name(kv.k), strata::type_name(kv.v));
        std::fputs(m.model->usage_report().c_str(), stderr);
    }
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
    add_sampling_options(cmd, o->sampling);
    cmd->add_option("--beams", o->beams, "Beam search with this many beams (0: off)")->check(CLI::NonNegativeNumber);
    cmd->add_option("--length-penalty", o->length_penalty, "Beam score = log-prob / length^A")->capture_default_str();
    cmd->add_option("--model-draft", o->draft_path, "Draft model for speculative decoding");
    cmd->add_option("--draft,--draft-max", o->n_draft, "Most tokens drafted per target pass")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--draft-p-min", o->draft_p_min, "Stop drafting below this draft probability (0: never)")
        ->capture_default_str()
        ->check(CLI::Range(0.0f, 1.0f));
    cmd->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past end-of-sequence tokens");
    cmd->add_flag("--verbose", o->verbose, "Print model statistics after the run (MoE: expert usage per layer)");
    cmd->callback([o] { run(*o); });
}

const CommandRegistration registration{10, "run", register_run};

}  // namespace
