// `strata perplexity`: llama.cpp's perplexity method (see decode/perplexity.h), printed the way
// llama-perplexity prints it so the numbers can be compared side by side.
#include <cstdio>

#include "commands.h"
#include "decode/perplexity.h"
#include "model_options.h"
#include "util/error.h"
#include "util/files.h"
#include "util/progress.h"

namespace {

struct PerplexityOptions {
    ModelOptions model;
    std::string text_file;
    int chunks = -1;
    int batch = 0;
};

void perplexity(PerplexityOptions o) {
    if (o.model.n_ctx <= 0) o.model.n_ctx = 512;
    LoadedModel m = load_model_for_cli(o.model);
    const std::string text = strata::read_file(o.text_file);
    std::vector<int32_t> tokens = m.tokenizer->encode(text, true, false);
    std::fprintf(stderr, "strata: %s: %zu tokens, n_ctx %d\n", o.text_file.c_str(), tokens.size(), m.n_ctx);
    strata::ProgressBar bar("perplexity", o.chunks > 0 ? std::min<int64_t>(o.chunks, tokens.size() / m.n_ctx)
                                                       : static_cast<int64_t>(tokens.size()) / m.n_ctx,
                            "chunks");
    strata::PerplexityParams params{m.n_ctx, o.chunks, o.batch, m.tokenizer->bos()};
    auto result = strata::perplexity(*m.model, tokens, params,
                                     [&](int done, int total, const strata::PerplexityResult& r) {
                                         std::printf("[%d]%.4f,", done, r.ppl);
                                         if (done == total) std::printf("\n");
                                         std::fflush(stdout);
                                         bar.update(done);
                                     });
    bar.finish();
    std::printf("Final estimate: PPL = %.4f +/- %.5f\n", result.ppl, result.ppl_error);
}

}  // namespace

namespace {

void register_perplexity(CLI::App& app) {
    auto o = std::make_shared<PerplexityOptions>();
    auto* cmd = app.add_subcommand("perplexity", "Perplexity of a model on a text file (llama.cpp's method)");
    add_model_options(cmd, o->model);
    cmd->add_option("-f,--file", o->text_file, "Text file")->required();
    cmd->add_option("--chunks", o->chunks, "Chunks to evaluate (default: all)");
    cmd->add_option("-b,--batch-size", o->batch, "Tokens per forward pass (default: the whole chunk)");
    cmd->callback([o] { perplexity(*o); });
}

const CommandRegistration registration{30, "perplexity", register_perplexity};

}  // namespace
