#include "reference.h"

#include <sstream>

#include "test_support.h"
#include "util/json.h"

namespace strata::test {

namespace {

std::vector<int32_t> ints(const Json& arr) {
    std::vector<int32_t> out;
    for (const Json& v : arr.items()) out.push_back(static_cast<int32_t>(v.as_int()));
    return out;
}

}  // namespace

Reference load_reference(const std::string& model) {
    auto dir = fixture("hf/" + model + "/ref");
    Json j = Json::parse(read_text(dir / "prompts.json"), (dir / "prompts.json").string());
    Reference r;
    r.vocab = j.at("vocab_size").as_int();
    if (const Json* p = j.find("perplexity")) r.ppl = p->at("ppl").as_number();
    for (const Json& p : j.at("prompts").items()) {
        ReferencePrompt rp;
        rp.ids = ints(p.at("ids"));
        rp.prompt_ids = ints(p.at("prompt_ids"));
        rp.greedy = ints(p.at("greedy_continuation"));
        if (const Json* b = p.find("beam4_continuation_16")) rp.beam4 = ints(*b);
        rp.logits = read_f32(dir / p.at("logits_file").as_string());
        r.prompts.push_back(std::move(rp));
    }
    return r;
}

std::vector<int32_t> load_eval_ids() {
    auto path = fixture("hf/tokenizer/eval_ids.json");
    return ints(Json::parse(read_text(path), path.string()));
}

double llamacpp_ppl(const std::string& file) {
    std::istringstream in(read_text(fixture("gguf/llamacpp_ppl.tsv")));
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string name, type, ppl;
        std::getline(fields, name, '\t');
        std::getline(fields, type, '\t');
        std::getline(fields, ppl, '\t');
        if (name == file && !ppl.empty()) return std::stod(ppl);
    }
    return 0;
}

}  // namespace strata::test
