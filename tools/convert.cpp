// `strata convert SRC -o OUT.gguf`: a Hugging Face folder or a llama2.c checkpoint to GGUF, laid
// out as llama.cpp's converter lays it out, tensors converted one at a time.
#include <cstdio>
#include <filesystem>
#include <thread>

#include "commands.h"
#include "convert/hf_convert.h"
#include "convert/llama2c.h"
#include "convert/quantize_model.h"
#include "util/error.h"

namespace {

struct ConvertOptions {
    std::string source, output, type = "f16", vocab;
    int threads = 0;
};

void convert(const ConvertOptions& o) {
    const strata::QuantMix* mix = strata::find_quant_mix(o.type);
    if (!mix) strata::fail("unknown --type '", o.type, "' (supported: ", strata::quant_mix_names(), ")");
    const bool hf_folder = std::filesystem::is_directory(o.source);
    if (hf_folder && !o.vocab.empty()) {
        strata::fail("--vocab is for llama2.c checkpoints; a Hugging Face folder brings its own tokenizer");
    }
    const strata::ModelPlan plan =
        hf_folder ? strata::plan_hf_conversion(o.source) : strata::plan_llama2c_conversion(o.source, o.vocab);
    for (const std::string& n : plan.notes) std::fprintf(stderr, "strata: note: %s\n", n.c_str());
    const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::fprintf(stderr, "strata: converting %s (%s) to %s as %s\n", o.source.c_str(), plan.facts.arch.c_str(),
                 o.output.c_str(), mix->name);
    const strata::WriteSummary s = strata::write_model(plan, *mix, o.output, threads);
    for (const std::string& f : s.fallbacks) std::fprintf(stderr, "strata: fallback: %s\n", f.c_str());
    std::fputs(strata::summary_text(s, o.output).c_str(), stdout);
}

void register_convert(CLI::App& app) {
    auto o = std::make_shared<ConvertOptions>();
    auto* cmd = app.add_subcommand("convert", "Convert a Hugging Face folder or a llama2.c checkpoint to GGUF");
    cmd->add_option("source", o->source, "Hugging Face model folder, or a llama2.c .bin checkpoint")->required();
    cmd->add_option("-o,--output", o->output, "GGUF file to write")->required();
    cmd->add_option("--type", o->type, "Tensor types: f32, f16, bf16, q8_0 or any quantize mix (default f16)");
    cmd->add_option("--vocab", o->vocab, "llama2.c only: its tokenizer.bin, or a SentencePiece tokenizer.model");
    cmd->add_option("-t,--threads", o->threads, "Threads (default: all cores)")->check(CLI::NonNegativeNumber);
    cmd->callback([o] { convert(*o); });
}

const CommandRegistration registration{50, "convert", register_convert};

}  // namespace
