// Reads the Hugging Face reference data under ../shared/fixtures/hf/<model>/ref/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata::test {

struct ReferencePrompt {
    std::vector<int32_t> ids, prompt_ids, greedy, beam4;
    std::vector<float> logits;  // [ids.size()][vocab]
};

struct Reference {
    int64_t vocab = 0;
    double ppl = 0;
    std::vector<ReferencePrompt> prompts;
};

// Loads prompts.json and every logits file of fixtures/hf/<model>/ref.
Reference load_reference(const std::string& model);
// The perplexity token stream fixtures/hf/tokenizer/eval_ids.json.
std::vector<int32_t> load_eval_ids();
// llama.cpp's perplexity for a fixture file from fixtures/gguf/llamacpp_ppl.tsv (0 when absent).
double llamacpp_ppl(const std::string& file);

}  // namespace strata::test
