// `strata chat`: a conversation in the terminal. Replies stream as they are generated; Ctrl-C
// stops a reply (it stays in the history) and, at the prompt, exits, as Ctrl-D does. Lines
// starting with / are commands (/help). When stdin is not a terminal, each line is one user
// message and the program ends with the input, so chats can be scripted.
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cerrno>
#include <csignal>
#include <cstdio>

#include "chat/chat_session.h"
#include "commands.h"
#include "decode/speculative.h"
#include "model_options.h"
#include "sampling_options.h"
#include "util/error.h"

namespace {

struct ChatCliOptions {
    ModelOptions model;
    std::string system_prompt, template_name, draft_path;
    strata::ChatOptions chat;
    SamplingOptions sampling;
};

// Set by the SIGINT handler, polled per token and by the line reader; a signal handler can only
// reach a global.
std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) { g_interrupted = true; }

// Without SA_RESTART, so a read() blocked at the prompt returns EINTR and the reader sees Ctrl-C.
void install_sigint_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
}

// Plain line reading from fd 0 (no readline: the terminal's own line editing serves).
class LineReader {
public:
    enum class Result { line, end, interrupted };

    Result read(std::string& line) {
        while (true) {
            if (const size_t nl = buffer_.find('\n'); nl != std::string::npos) {
                line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                return Result::line;
            }
            if (g_interrupted) return Result::interrupted;
            char chunk[4096];
            const ssize_t n = ::read(0, chunk, sizeof chunk);
            if (n > 0) {
                buffer_.append(chunk, static_cast<size_t>(n));
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                if (buffer_.empty()) return Result::end;
                line = std::move(buffer_);  // a last line without a newline
                buffer_.clear();
                return Result::line;
            }
        }
    }

private:
    std::string buffer_;
};

const char* kHelp =
    "commands:\n"
    "  /reset          forget the conversation (the system prompt stays)\n"
    "  /system TEXT    set the system prompt (no TEXT: remove it)\n"
    "  /stats          tokens, speed and context used\n"
    "  /save FILE      write the conversation as JSON\n"
    "  /load FILE      read a conversation written by /save\n"
    "  /help           this list\n"
    "Ctrl-C stops a reply; Ctrl-C at the prompt, Ctrl-D or /exit leaves.\n";

double per_second(int64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0.0; }

void print_stats(const strata::ChatSession& s, int turns) {
    const strata::ChatTurnStats& l = s.last_turn();
    const strata::ChatTurnStats& t = s.totals();
    std::printf("context: %d of %d tokens used\n", s.context_used(), s.context_size());
    std::printf(
        "last turn: prompt %lld tokens (%lld reused, %lld prefilled in %.1f ms), first token after %.1f ms, "
        "%lld tokens generated at %.1f tokens/s\n",
        static_cast<long long>(l.prompt_tokens), static_cast<long long>(l.reused_tokens),
        static_cast<long long>(l.prefilled_tokens), l.prefill_seconds * 1000, l.first_token_seconds * 1000,
        static_cast<long long>(l.generated_tokens), per_second(l.generated_tokens, l.generation_seconds));
    std::printf("session: %d turns, %lld tokens prefilled at %.1f tokens/s, %lld generated at %.1f tokens/s\n", turns,
                static_cast<long long>(t.prefilled_tokens), per_second(t.prefilled_tokens, t.prefill_seconds),
                static_cast<long long>(t.generated_tokens), per_second(t.generated_tokens, t.generation_seconds));
}

// Handles a /command; false when it asks to leave.
bool run_command(const std::string& line, strata::ChatSession& session, int turns) {
    const size_t space = line.find(' ');
    const std::string name = line.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
    if (name == "/exit" || name == "/quit") return false;
    if (name == "/help") {
        std::fputs(kHelp, stdout);
    } else if (name == "/reset") {
        session.reset();
        std::fputs("strata: conversation reset\n", stderr);
    } else if (name == "/system") {
        session.set_system(arg);
        std::fputs(arg.empty() ? "strata: system prompt removed\n" : "strata: system prompt set\n", stderr);
    } else if (name == "/stats") {
        print_stats(session, turns);
    } else if (name == "/save" || name == "/load") {
        if (arg.empty()) strata::fail(name, " needs a file name");
        if (name == "/save")
            session.save(arg);
        else
            session.load(arg);
        std::fprintf(stderr, "strata: conversation %s %s (%zu messages)\n",
                     name == "/save" ? "written to" : "read from", arg.c_str(), session.messages().size());
    } else {
        strata::fail("unknown command ", name, " (/help lists them)");
    }
    std::fflush(stdout);
    return true;
}

void chat(ChatCliOptions& o) {
    LoadedModel m = load_model_for_cli(o.model);
    LoadedModel d = load_draft_for_cli(o.model, o.draft_path, m);
    const strata::Tokenizer& tok = *m.tokenizer;
    const strata::ChatTokens special{tok.bos() >= 0 ? tok.token_text(tok.bos()) : "",
                                     tok.eos() >= 0 ? tok.token_text(tok.eos()) : ""};
    strata::ChatTemplate tmpl =
        o.template_name.empty()
            ? strata::ChatTemplate::from_model(m.file->get_string("tokenizer.chat_template", ""), special)
            : strata::ChatTemplate::from_name(o.template_name, special);
    if (!tmpl.notice().empty()) std::fprintf(stderr, "strata: %s\n", tmpl.notice().c_str());
    std::fprintf(stderr, "strata: chat template: %s\n", tmpl.description().c_str());

    strata::Sampler sampler(o.sampling.resolved());
    o.chat.notify = [](const std::string& text) { std::fprintf(stderr, "\nstrata: %s\n", text.c_str()); };
    strata::ChatSession session(*m.model, tok, std::move(tmpl), m.n_ctx, sampler, o.chat);
    if (d.model) session.set_draft(*d.model);
    if (!o.system_prompt.empty()) session.set_system(o.system_prompt);

    const bool interactive = isatty(0) != 0;
    if (interactive) std::fputs("strata: /help lists commands; Ctrl-C stops a reply, Ctrl-D exits\n", stderr);
    install_sigint_handler();
    LineReader reader;
    std::string line;
    int turns = 0;
    auto print = [](const std::string& text) {
        std::fputs(text.c_str(), stdout);
        std::fflush(stdout);
    };
    while (true) {
        if (interactive) print("> ");
        const LineReader::Result r = reader.read(line);
        if (r != LineReader::Result::line) {
            if (interactive) print("\n");
            break;
        }
        if (line.empty()) continue;
        try {
            if (line[0] == '/') {
                if (!run_command(line, session, turns)) break;
                continue;
            }
            g_interrupted = false;
            const strata::ChatReply reply = session.send(line, print, [] { return g_interrupted.load(); });
            ++turns;
            print("\n");
            if (reply.end == strata::ReplyEnd::interrupted) std::fputs("strata: reply interrupted\n", stderr);
        } catch (const strata::Error& e) {
            std::fflush(stdout);
            std::fprintf(stderr, "strata: error: %s\n", e.what());
        }
        g_interrupted = false;
    }
    std::fflush(stdout);
}

// The sampler chain's flags, in llama.cpp's spelling and defaults (as `strata run` has them).
void register_chat(CLI::App& app) {
    auto o = std::make_shared<ChatCliOptions>();
    auto* cmd = app.add_subcommand("chat", "Chat with a model in the terminal (or line by line from a pipe)");
    add_model_options(cmd, o->model);
    cmd->add_option("--system-prompt,--sys", o->system_prompt, "System prompt (also -sys, as llama.cpp spells it)");
    cmd->add_option(
        "--template", o->template_name, "Chat template: a built-in format (" + [] {
            std::string names;
            for (const std::string& n : strata::ChatTemplate::builtin_names()) names += (names.empty() ? "" : ", ") + n;
            return names;
        }() + ") or a .jinja file; default: the model's own");
    cmd->add_option("-n,--n-predict", o->chat.n_predict, "Tokens per reply at most (-1: until the end of the turn)")
        ->capture_default_str()
        ->check(CLI::Range(-1, INT_MAX));
    add_sampling_options(cmd, o->sampling);
    cmd->add_option("--model-draft", o->draft_path, "Draft model for speculative decoding (also -md)");
    cmd->add_option("--draft,--draft-max", o->chat.n_draft, "Tokens drafted per target pass")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->callback([o] { chat(*o); });
}

const CommandRegistration registration{20, "chat", register_chat};

}  // namespace
