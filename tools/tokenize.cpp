// `strata tokenize -m FILE -p TEXT`: shows how a model's tokenizer splits text.
//   default   one line per token: id, the vocabulary entry and the text it prints, escaped
//   --ids     the ids as a list: [1, 15043, 3186]
//   --pieces  the vocabulary entries as a list: ['<s>', '▁Hello', '▁world']
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "format/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"
#include "util/files.h"

namespace {

struct TokenizeOptions {
    std::string model;
    std::string prompt;
    std::string prompt_file;
    bool ids = false;
    bool pieces = false;
    bool special = false;
    bool no_bos = false;
    bool has_text = false;  // -p or -f was given (an empty -p "" is a valid text)
};

// Quotes text for the terminal: escapes quotes, backslashes, control characters and bytes that
// are not part of a valid UTF-8 character (a piece can hold half of one).
std::string quoted(const std::string& s) {
    std::string out = "'";
    for (size_t pos = 0; pos < s.size();) {
        uint32_t cp;
        size_t len = strata::unicode::decode_utf8(s, pos, &cp);
        const auto byte = static_cast<uint8_t>(s[pos]);
        char buf[8];
        if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\t') {
            out += "\\t";
        } else if (cp == '\r') {
            out += "\\r";
        } else if (cp == '\'' || cp == '\\') {
            out += '\\';
            out += static_cast<char>(cp);
        } else if (cp < 0x20 || cp == 0x7F || (cp == strata::unicode::kReplacement && len == 1)) {
            std::snprintf(buf, sizeof buf, "\\x%02x", byte);
            out += buf;
        } else {
            out.append(s, pos, len);
        }
        pos += len;
    }
    return out + "'";
}

void run_tokenize(const TokenizeOptions& opt) {
    if (!opt.has_text) strata::fail("tokenize: give the text with -p TEXT or -f FILE");
    const std::string text = opt.prompt_file.empty() ? opt.prompt : strata::read_file(opt.prompt_file);
    auto file = strata::GgufFile::open(opt.model);
    const strata::Tokenizer tok = strata::Tokenizer::from_gguf(*file);
    const std::vector<int32_t> ids = tok.encode(text, !opt.no_bos, opt.special);

    if (opt.ids || opt.pieces) {
        std::string line = "[";
        for (size_t i = 0; i < ids.size(); ++i) {
            if (i) line += ", ";
            line += opt.ids ? std::to_string(ids[i]) : quoted(tok.token_text(ids[i]));
        }
        std::printf("%s]\n", line.c_str());
    } else {
        for (int32_t id : ids) {
            std::printf("%6d  %-24s -> %s\n", id, quoted(tok.token_text(id)).c_str(),
                        quoted(tok.token_to_piece(id, true)).c_str());
        }
    }
    std::fprintf(stderr, "%zu tokens from %zu bytes\n", ids.size(), text.size());
}

void register_tokenize(CLI::App& app) {
    auto opt = std::make_shared<TokenizeOptions>();
    CLI::App* cmd = app.add_subcommand("tokenize", "Show the tokens a model's tokenizer makes of a text");
    cmd->add_option("-m,--model", opt->model, "GGUF file whose tokenizer to use")->required();
    auto* prompt = cmd->add_option("-p,--prompt", opt->prompt, "Text to tokenize");
    auto* file = cmd->add_option("-f,--file", opt->prompt_file, "Read the text from a file");
    prompt->excludes(file);
    auto* ids = cmd->add_flag("--ids", opt->ids, "Print only the ids, as a list");
    cmd->add_flag("--pieces", opt->pieces, "Print only the vocabulary entries, as a list")->excludes(ids);
    cmd->add_flag("--special", opt->special, "Parse special tokens written in the text (<s>, <|endoftext|>)");
    cmd->add_flag("--no-bos", opt->no_bos, "Add no BOS/EOS even if the model asks for them");
    cmd->callback([opt, prompt, file] {
        opt->has_text = prompt->count() > 0 || file->count() > 0;
        run_tokenize(*opt);
    });
}

const CommandRegistration registration{70, "tokenize", register_tokenize};

}  // namespace
