// `strata quantize IN.gguf OUT.gguf TYPE`: llama-quantize's per-tensor mixes (Q4_K_M, Q8_0, …),
// streaming one tensor at a time, rows spread over threads.
#include <cstdio>
#include <thread>

#include "commands.h"
#include "convert/quantize_model.h"
#include "format/gguf.h"
#include "util/error.h"
#include "util/files.h"

namespace {

struct QuantizeOptions {
    std::string input, output, type;
    int threads = 0;
};

void quantize(const QuantizeOptions& o) {
    const strata::QuantMix* mix = strata::find_quant_mix(o.type);
    if (!mix) strata::fail("unknown quantization type '", o.type, "' (supported: ", strata::quant_mix_names(), ")");
    strata::check_output_path(o.output, {o.input});  // before reading: the same file by any name
    std::shared_ptr<const strata::GgufFile> in = strata::GgufFile::open(o.input);
    const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (const strata::GgufTensorInfo& t : in->tensor_infos()) {
        if (strata::type_traits(t.type).is_quantized) {
            std::fprintf(stderr, "strata: warning: %s is already %s; requantizing adds the errors of both types\n",
                         t.name.c_str(), strata::type_name(t.type));
            break;
        }
    }
    const strata::ModelPlan plan = strata::plan_from_gguf(in);
    std::fprintf(stderr, "strata: quantizing %s to %s (%s) with %d threads\n", o.input.c_str(), o.output.c_str(),
                 mix->name, threads);
    const strata::WriteSummary s = strata::write_model(plan, *mix, o.output, threads);
    for (const std::string& f : s.fallbacks) std::fprintf(stderr, "strata: fallback: %s\n", f.c_str());
    std::fputs(strata::summary_text(s, o.output).c_str(), stdout);
}

void register_quantize(CLI::App& app) {
    auto o = std::make_shared<QuantizeOptions>();
    auto* cmd = app.add_subcommand("quantize", "Quantize a GGUF model with llama.cpp's per-tensor type mixes");
    cmd->add_option("input", o->input, "GGUF file to read")->required();
    cmd->add_option("output", o->output, "GGUF file to write")->required();
    cmd->add_option("type", o->type, "Target: " + strata::quant_mix_names())->required();
    cmd->add_option("-t,--threads", o->threads, "Threads (default: all cores)")->check(CLI::NonNegativeNumber);
    cmd->callback([o] { quantize(*o); });
}

const CommandRegistration registration{60, "quantize", register_quantize};

}  // namespace
