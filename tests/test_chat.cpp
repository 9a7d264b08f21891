// Chat sessions: the state persists across turns (a turn prefills only its new tokens, and replies
// match a session that prefills the whole history), the context-full fallback, interrupts, saved
// conversations, every architecture load_model supports; then `strata chat` itself, through a
// pipe and in a real terminal driven by tmux (two turns, a Ctrl-C, /reset, Ctrl-D).
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "chat/chat_session.h"
#include "format/gguf.h"
#include "model/model.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "test_backend.h"

namespace fs = std::filesystem;
using strata::ChatSession;
using strata::ChatTemplate;

namespace {

// The model every test here talks to: the project's default model, and its draft.
const fs::path kChatModel = fs::path(STRATA_SOURCE_DIR) / "models/shakespeare-q8_0.gguf";
const fs::path kDraftModel = fs::path(STRATA_SOURCE_DIR) / "models/shakespeare-draft-q8_0.gguf";

fs::path chat_model() { return kChatModel; }

bool skip_without_model() {
    if (fs::exists(kChatModel)) return false;
    MESSAGE("SKIPPED: ", kChatModel.string(), " is missing");
    return true;
}

struct Loaded {
    std::unique_ptr<strata::GgufFile> file;
    std::unique_ptr<strata::Backend> backend;
    std::unique_ptr<strata::Model> model;
    std::unique_ptr<strata::Tokenizer> tokenizer;
};

Loaded load(const fs::path& path) {
    Loaded m;
    m.file = strata::GgufFile::open(path.string());
    m.backend = strata::test::test_backend(1);
    m.model = strata::test::load_test_model(*m.file, *m.backend);
    m.tokenizer = std::make_unique<strata::Tokenizer>(strata::Tokenizer::from_gguf(*m.file));
    return m;
}

strata::SamplerParams greedy() {
    strata::SamplerParams s;
    s.temperature = 0;
    return s;
}

// A session with greedy sampling and the plain template (or another), collecting notices.
struct Chat {
    Chat(Loaded& m, int n_ctx, int n_predict, ChatTemplate chat_template = ChatTemplate::from_name("plain", {}))
        : session(*m.model, *m.tokenizer, std::move(chat_template), n_ctx, sampler,
                  {.n_predict = n_predict, .n_draft = 4, .notify = [this](const std::string& s) {
                       notices.push_back(s);
                   }}) {}

    strata::ChatReply say(const std::string& text) {
        return session.send(
            text, [](const std::string&) {}, [] { return false; });
    }

    strata::Sampler sampler{greedy()};
    std::vector<std::string> notices;
    ChatSession session;
};

// A few hundred tokens of the kind of text the models were trained on.
std::string long_message() {
    std::string text;
    for (int i = 0; i < 16; ++i)
        text += "Now is the winter of our discontent made glorious summer by this sun of York. ";
    return text;
}

// Two turns, the second checked against a session that prefills the whole history at once.
void check_state_reuse(Loaded& m, const std::string& first_message, int n_predict) {
    const fs::path saved = strata::test::temp_dir() / "chat_turn1.json";
    Chat a(m, 1024, n_predict);
    a.session.set_system("You are a poet.");
    a.say(first_message);
    const strata::ChatTurnStats first = a.session.last_turn();
    a.session.save(saved.string());
    const std::string second_reply = a.say("And then?").text;
    const strata::ChatTurnStats second = a.session.last_turn();
    MESSAGE("turn 1: ", first.prompt_tokens, " tokens prefilled in ", first.prefill_seconds * 1000,
            " ms; turn 2: ", second.prefilled_tokens, " of ", second.prompt_tokens, " prefilled, first token after ",
            second.first_token_seconds * 1000, " ms");
    CHECK(first.reused_tokens == 0);
    // The history stays in the state, the reply included (it re-renders to the tokens generated):
    // only the new message is processed, not the history before it.
    CHECK(second.reused_tokens >= first.prompt_tokens + n_predict / 2);
    CHECK(second.prefilled_tokens <= 24);

    Chat b(m, 1024, n_predict);
    b.session.load(saved.string());
    CHECK(b.say("And then?").text == second_reply);
    CHECK(b.session.last_turn().reused_tokens == 0);
}

}  // namespace

TEST_CASE("chat session: a turn prefills only its new tokens, and replies as a fresh session would") {
    if (skip_without_model()) return;
    Loaded m = load(chat_model());
    check_state_reuse(m, long_message(), 24);
}

TEST_CASE("chat session: other architectures chat the same way (state interface)") {
    if (strata::test::skip_without_shared("fixtures/gguf")) return;
    for (const char* name : {"mixtral-f32.gguf", "mamba-f32.gguf", "mamba2-f32.gguf", "jamba-f32.gguf"}) {
        CAPTURE(name);
        Loaded m;
        try {
            m = load(strata::test::fixture(std::string("gguf/") + name));
        } catch (const strata::Error& e) {
            MESSAGE("SKIPPED ", name, ": ", e.what());
            continue;
        }
        check_state_reuse(m, long_message().substr(0, 300), 16);
    }
}

TEST_CASE("chat session: speculative decoding gives the same greedy replies, turn after turn") {
    if (skip_without_model()) return;
    Loaded m = load(chat_model());
    Loaded draft = load(kDraftModel);
    Chat plain(m, 512, 24), speculative(m, 512, 24);
    speculative.session.set_draft(*draft.model);
    const std::vector<std::string> messages = {"Hello there.", "And then?", "Tell me more."};
    for (size_t i = 0; i < messages.size(); ++i) {
        CAPTURE(messages[i]);
        CHECK(speculative.say(messages[i]).text == plain.say(messages[i]).text);
        if (i > 0) CHECK(speculative.session.last_turn().reused_tokens > 30);
    }
}

TEST_CASE("chat session: a full context drops the oldest turns, keeping the system prompt") {
    if (skip_without_model()) return;
    Loaded m = load(chat_model());
    Chat c(m, 160, 16);
    c.session.set_system("Be brief.");
    for (int i = 0; i < 8; ++i) c.say("Tell me of the king and the queen, number " + std::to_string(i) + ".");
    REQUIRE_FALSE(c.notices.empty());
    CHECK(c.notices[0].find("context full") != std::string::npos);
    CHECK(c.session.messages().front().role == "system");
    CHECK(c.session.messages().size() < 1 + 2 * 8);
    CHECK(c.session.messages().back().role == "assistant");
    CHECK(c.session.context_used() <= 160);

    // A message that cannot fit even alone is refused, leaving the conversation as it was.
    const size_t before = c.session.messages().size();
    CHECK_THROWS_WITH_AS(c.say(long_message()), doctest::Contains("does not fit"), strata::Error);
    CHECK(c.session.messages().size() == before);
}

TEST_CASE("chat session: a model template that fails mid-chat gives way to the built-in format, with one notice") {
    if (skip_without_model()) return;
    Loaded m = load(chat_model());
    // A hostile GGUF's template: ChatML for the first turn, a runaway loop from the second on.
    const std::string hostile =
        "{% if messages | length > 1 %}{% for i in range(16000000) %}{% for j in range(16000000) %}"
        "{% endfor %}{% endfor %}{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "<|im_start|>assistant\n";
    Chat c(m, 512, 8, ChatTemplate::from_model(hostile, {}));
    CHECK(c.say("Hello").stats.generated_tokens > 0);
    CHECK(c.notices.empty());
    CHECK(c.say("And then?").stats.generated_tokens > 0);
    REQUIRE(c.notices.size() == 1);
    CHECK(c.notices[0].find("chat template failed") != std::string::npos);
    CHECK(c.notices[0].find("steps") != std::string::npos);
    CHECK(c.notices[0].find("built-in chatml format") != std::string::npos);
    CHECK(c.notices[0].find('\n') == std::string::npos);
    CHECK(c.say("Bye").stats.generated_tokens > 0);
    CHECK(c.notices.size() == 1);
    CHECK(c.session.messages().size() == 6);
}

TEST_CASE("chat session: an interrupt stops the reply and keeps what was said") {
    if (skip_without_model()) return;
    Loaded m = load(chat_model());
    Chat c(m, 512, 64);
    int polls = 0;
    std::string printed;
    const strata::ChatReply r = c.session.send(
        "Hello", [&](const std::string& s) { printed += s; }, [&] { return ++polls > 6; });
    CHECK(r.end == strata::ReplyEnd::interrupted);
    CHECK(r.stats.generated_tokens > 0);
    CHECK(r.stats.generated_tokens < 64);
    CHECK(r.text == printed);
    REQUIRE(c.session.messages().size() == 2);
    CHECK(c.session.messages()[1].role == "assistant");
    CHECK(!c.session.messages()[1].content.empty());
    CHECK(c.say("Go on.").stats.generated_tokens > 0);
    CHECK(c.session.messages().size() == 4);
}

TEST_CASE("chat session: /save and /load keep the conversation") {
    if (skip_without_model()) return;
    Loaded m = load(chat_model());
    Chat c(m, 256, 8);
    c.session.set_system("S");
    c.say("Hi \"there\"\n\u00e9");
    const fs::path path = strata::test::temp_dir() / "chat.json";
    c.session.save(path.string());
    Chat d(m, 256, 8);
    d.session.load(path.string());
    REQUIRE(d.session.messages().size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        CHECK(d.session.messages()[i].role == c.session.messages()[i].role);
        CHECK(d.session.messages()[i].content == c.session.messages()[i].content);
    }
    d.session.reset();
    CHECK(d.session.messages().size() == 1);
    d.session.set_system("");
    CHECK(d.session.messages().empty());

    const fs::path bad = strata::test::temp_dir() / "bad_chat.json";
    const std::string text = R"({"messages": [{"role": "robot", "content": "x"}]})";
    strata::test::write_bytes(bad, {text.begin(), text.end()});
    CHECK_THROWS_WITH_AS(d.session.load(bad.string()), doctest::Contains("role 'robot'"), strata::Error);
    CHECK_THROWS_WITH_AS(d.session.load((strata::test::temp_dir() / "none.json").string()),
                         doctest::Contains("cannot open"), strata::Error);
}

namespace {

// A strata process with pipes to its stdin and from its stdout and stderr (merged).
class Child {
public:
    explicit Child(const std::vector<std::string>& args) {
        int in[2], out[2];
        REQUIRE(pipe(in) == 0);
        REQUIRE(pipe(out) == 0);
        pid_ = fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            dup2(in[0], 0);
            dup2(out[1], 1);
            dup2(out[1], 2);
            close(in[1]);
            close(out[0]);
            std::vector<char*> argv;
            argv.push_back(const_cast<char*>(STRATA_BINARY));
            for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            execv(STRATA_BINARY, argv.data());
            _exit(127);
        }
        close(in[0]);
        close(out[1]);
        in_ = in[1];
        out_ = out[0];
    }
    ~Child() {
        if (in_ >= 0) close(in_);
        close(out_);
        if (pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }

    void send(const std::string& text) {
        REQUIRE(write(in_, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    }
    void close_input() {
        close(in_);
        in_ = -1;
    }
    void interrupt() { kill(pid_, SIGINT); }
    const std::string& output() const { return output_; }

    // Reads output until pred(output) holds (true) or `seconds` pass (false).
    bool wait_for(const std::function<bool(const std::string&)>& pred, double seconds) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (!pred(output_)) {
            if (std::chrono::steady_clock::now() > end) return false;
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, 50) > 0) {
                char buf[4096];
                const ssize_t n = read(out_, buf, sizeof buf);
                if (n <= 0) return pred(output_);
                output_.append(buf, static_cast<size_t>(n));
            }
        }
        return true;
    }

    // The exit status once the output ends, or -1 after `seconds`.
    int wait_exit(double seconds) {
        wait_for([](const std::string&) { return false; }, seconds);
        int status = 0;
        const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > end) return -1;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

private:
    pid_t pid_ = -1;
    int in_ = -1, out_ = -1;
    std::string output_;
};

// Tokens per reply in the CLI tests: enough for an interrupt to land while one streams.
const std::string kReplyTokens = "600";

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("strata chat: a pipe gives one message per line and ends with the input") {
    if (skip_without_model()) return;
    const fs::path input = strata::test::temp_dir() / "chat_input.txt";
    const std::string lines = "Hello there\n/stats\nHow are you?\n/stats\n/reset\n/stats\n/nonsense\nBye";
    strata::test::write_bytes(input, {lines.begin(), lines.end()});
    std::string out;
    const int rc = strata::test::run_strata(
        "chat -m " + chat_model().string() + " -c 512 -n 12 --temp 0 -t 1 -sys \"You are a poet.\" < " + input.string(),
        &out);
    CAPTURE(out);
    CHECK(rc == 0);
    CHECK(out.find("chat template: plain") != std::string::npos);
    CHECK(out.find("session: 1 turns") != std::string::npos);
    CHECK(out.find("session: 2 turns") != std::string::npos);
    CHECK(out.find("conversation reset") != std::string::npos);
    CHECK(out.find("unknown command /nonsense") != std::string::npos);
    CHECK(count(out, "context: ") == 3);

    CHECK(strata::test::run_strata("chat -m " + chat_model().string() + " -bogus < /dev/null", &out) != 0);
    CHECK(out.find("-bogus") != std::string::npos);
}

TEST_CASE("strata chat: Ctrl-C through a pipe stops the reply; the chat goes on") {
    if (skip_without_model()) return;
    // Replies long enough to be interrupted mid-way (the fixture model never ends one by itself,
    // so each runs to -n); /stats lines mark the turns.
    Child chat({"chat", "-m", chat_model().string(), "-c", "2048", "-n", kReplyTokens, "--temp", "0", "-t", "1"});
    chat.send("Hello\n/stats\nHow are you?\n/stats\nTell me a story.\n");
    REQUIRE(chat.wait_for([](const std::string& o) { return count(o, "session: 2 turns") == 1; }, 30));
    const size_t mark = chat.output().size();
    REQUIRE(chat.wait_for([&](const std::string& o) { return o.size() > mark + 20; }, 10));
    chat.interrupt();
    REQUIRE(chat.wait_for([](const std::string& o) { return o.find("reply interrupted") != std::string::npos; }, 10));
    chat.send("/stats\n/reset\n/stats\n");
    chat.close_input();
    CHECK(chat.wait_exit(20) == 0);
    const std::string& out = chat.output();
    CAPTURE(out);
    CHECK(count(out, "session: 3 turns") == 2);
    CHECK(out.find("conversation reset") != std::string::npos);
}

TEST_CASE("strata chat: a terminal session driven by tmux") {
    if (skip_without_model()) return;
    if (std::system("command -v tmux >/dev/null 2>&1") != 0) {
        MESSAGE("SKIPPED: tmux is not installed");
        return;
    }
    // A private tmux server (its own socket), so no user session is touched.
    const fs::path socket = strata::test::temp_dir() / "tmux.sock";
    const std::string tmux = "tmux -S " + socket.string() + " ";
    auto run = [&](const std::string& args) { return std::system((tmux + args + " >/dev/null 2>&1").c_str()); };
    auto pane = [&] {
        std::string text;
        if (FILE* p = popen((tmux + "capture-pane -p -J -S -3000 -t chat 2>/dev/null").c_str(), "r")) {
            char buf[4096];
            for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
            pclose(p);
        }
        return text;
    };
    // Prompt lines ("> " and what was typed after it); an empty one last means waiting for input.
    auto prompts = [](const std::string& text) {
        size_t n = 0;
        for (size_t pos = 0; pos < text.size(); pos = text.find('\n', pos) + 1) {
            if (text.compare(pos, 1, ">") == 0) ++n;
            if (text.find('\n', pos) == std::string::npos) break;
        }
        return n;
    };
    auto waiting = [](const std::string& text) {
        std::string t = text;
        while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
        return t.size() >= 1 && t.back() == '>' && (t.size() == 1 || t[t.size() - 2] == '\n');
    };
    std::string last_pane;  // shown when a check fails
    CAPTURE(last_pane);
    auto wait = [&](const std::function<bool(const std::string&)>& pred, double seconds) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < end) {
            last_pane = pane();
            if (pred(last_pane)) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    };
    auto type = [&](const std::string& line) {
        run("send-keys -t chat -l '" + line + "'");
        run("send-keys -t chat Enter");
    };
    // bash runs strata and then shows its exit status; on Ctrl-C it waits for strata, which
    // handles the signal, and goes on (bash's rule for a foreground child that survives SIGINT).
    const fs::path wrapper = strata::test::temp_dir() / "chat_in_tmux.sh";
    const std::string script = "\"$@\"\necho \"EXITED:$?\"\nsleep 60\n";
    strata::test::write_bytes(wrapper, {script.begin(), script.end()});
    const std::string command = "bash " + wrapper.string() + " " + STRATA_BINARY + " chat -m " + chat_model().string() +
                                " -c 2048 -n " + kReplyTokens + " --temp 0 -t 1";
    REQUIRE(run("-f /dev/null new-session -d -s chat -x 200 -y 50 \"" + command + "\"") == 0);

    CHECK(wait([&](const std::string& p) { return waiting(p) && prompts(p) == 1; }, 20));
    type("Hello");
    CHECK(wait([&](const std::string& p) { return waiting(p) && prompts(p) == 2; }, 20));
    type("How are you?");
    CHECK(wait([&](const std::string& p) { return waiting(p) && prompts(p) == 3; }, 20));
    type("Tell me a story.");
    // Interrupt once the reply has started streaming.
    CHECK(wait(
        [&](const std::string& p) {
            const size_t typed = p.rfind("> Tell me a story.");
            return typed != std::string::npos && p.size() > typed + 60;
        },
        20));
    run("send-keys -t chat C-c");
    CHECK(
        wait([&](const std::string& p) { return p.find("reply interrupted") != std::string::npos && waiting(p); }, 20));
    type("/reset");
    CHECK(wait([&](const std::string& p) { return p.find("conversation reset") != std::string::npos && waiting(p); },
               20));
    run("send-keys -t chat C-d");
    CHECK(wait([&](const std::string& p) { return p.find("EXITED:0") != std::string::npos; }, 20));
    CHECK(prompts(last_pane) == 5);
    run("kill-server");
    fs::remove(socket);
}
