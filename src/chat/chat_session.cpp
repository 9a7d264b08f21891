#include "chat/chat_session.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <fstream>
#include <iterator>

#include "decode/generate.h"
#include "decode/speculative.h"
#include "tokenizer/stream_detokenizer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json.h"

namespace strata {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Prefill runs in chunks of this many tokens, so an interrupt is noticed during a long one.
constexpr size_t kPrefillChunk = 512;

// The reply's printable text: whole characters from the detokenizer, cut before the template's
// stop text (the plain format's "\nUser:", which a base model writes when it starts the next
// turn itself). A tail that may be the start of the stop text is held back until it is not.
class ReplyPrinter {
public:
    ReplyPrinter(const Tokenizer& tokenizer, std::string stop) : detok_(tokenizer), stop_(std::move(stop)) {}

    std::string push(int32_t id) { return release(detok_.push(id), false); }
    std::string finish() { return stopped_ ? std::string() : release(detok_.flush(), true); }
    bool stopped() const { return stopped_; }
    const std::string& text() const { return printed_; }

private:
    std::string release(const std::string& piece, bool everything) {
        if (stopped_) return {};
        held_ += piece;
        if (!stop_.empty()) {
            if (const size_t at = held_.find(stop_); at != std::string::npos) {
                held_.resize(at);
                stopped_ = everything = true;
            }
        }
        size_t keep = 0;
        for (size_t n = std::min(held_.size(), stop_.empty() ? 0 : stop_.size() - 1); !everything && n > 0; --n) {
            if (held_.compare(held_.size() - n, n, stop_, 0, n) == 0) {
                keep = n;
                break;
            }
        }
        std::string out = held_.substr(0, held_.size() - keep);
        held_.erase(0, held_.size() - keep);
        printed_ += out;
        return out;
    }

    StreamDetokenizer detok_;
    std::string stop_, held_, printed_;
    bool stopped_ = false;
};

void add(ChatTurnStats& total, const ChatTurnStats& turn) {
    total.prompt_tokens += turn.prompt_tokens;
    total.reused_tokens += turn.reused_tokens;
    total.prefilled_tokens += turn.prefilled_tokens;
    total.generated_tokens += turn.generated_tokens;
    total.prefill_seconds += turn.prefill_seconds;
    total.first_token_seconds += turn.first_token_seconds;
    total.generation_seconds += turn.generation_seconds;
}

}  // namespace

struct ChatSession::Sequence {
    Sequence(Model& m, int n_ctx) : model(m), state(m.new_state(n_ctx)) {}

    Model& model;
    std::unique_ptr<SequenceState> state;
    // A recurrent state can be rolled back only over its last few positions (rollback_depth);
    // a copy taken after each prefill lets a turn that re-renders the previous reply (a template
    // that rewrites it, a retokenization that differs) restart from there instead of from 0.
    int checkpoint_pos = -1;
    std::vector<uint8_t> checkpoint;

    void rewind(int n) {
        if (n >= state->n_past()) return;
        if (state->can_truncate(n)) {
            state->truncate(n);
        } else if (checkpoint_pos > 0 && checkpoint_pos <= n) {
            // No snapshot that far back (recurrent layers only): the checkpoint, else the start.
            state->restore(checkpoint);
        } else {
            state->truncate(0);
        }
        if (state->n_past() < checkpoint_pos) checkpoint_pos = -1;
    }

    void take_checkpoint() {
        if (!state->has_recurrent() || checkpoint_pos == state->n_past()) return;
        checkpoint = state->save();
        checkpoint_pos = state->n_past();
    }
};

ChatSession::ChatSession(Model& model, const Tokenizer& tokenizer, ChatTemplate chat_template, int n_ctx,
                         Sampler& sampler, ChatOptions options)
    : tokenizer_(tokenizer),
      template_(std::move(chat_template)),
      n_ctx_(n_ctx),
      sampler_(sampler),
      options_(std::move(options)),
      target_(std::make_unique<Sequence>(model, n_ctx)) {
    if (!template_.end_of_turn().empty()) {
        const std::vector<int32_t> ids = tokenizer_.encode(template_.end_of_turn(), false, true);
        if (ids.size() == 1) end_of_turn_ = ids[0];
    }
}

ChatSession::~ChatSession() = default;

void ChatSession::set_draft(Model& draft) { draft_ = std::make_unique<Sequence>(draft, n_ctx_); }

void ChatSession::notify(const std::string& text) const {
    if (options_.notify) options_.notify(text);
}

std::string ChatSession::render() {
    try {
        return template_.apply(messages_, true);
    } catch (const Error& e) {
        if (!template_.uses_jinja()) throw;
        template_.drop_jinja(e.what());
        notify(template_.notice());
        return template_.apply(messages_, true);
    }
}

std::vector<int32_t> ChatSession::tokenize(const std::string& text) const {
    std::vector<int32_t> ids;
    // Templates that write {{ bos_token }} get it parsed as the token; otherwise the vocabulary's
    // add_bos rule puts it in front.
    const int32_t bos = tokenizer_.bos();
    if (bos >= 0 && tokenizer_.add_bos() && text.rfind(tokenizer_.token_text(bos), 0) != 0) ids.push_back(bos);
    const std::vector<int32_t> rest = tokenizer_.encode(text, false, true);
    ids.insert(ids.end(), rest.begin(), rest.end());
    return ids;
}

std::vector<int32_t> ChatSession::fit(const std::vector<int32_t>& reply, int room) {
    const std::vector<ChatMessage> kept = messages_;
    size_t full_size = 0;
    int dropped = 0;
    while (true) {
        std::vector<int32_t> want = tokenize(render());
        want.insert(want.end(), reply.begin(), reply.end());
        if (dropped == 0) full_size = want.size();
        if (static_cast<int64_t>(want.size()) + room <= n_ctx_) {
            if (dropped > 0) {
                notify("context full (" + std::to_string(full_size) + " tokens + " + std::to_string(room) +
                       " for the reply > " + std::to_string(n_ctx_) + "): dropped the oldest " +
                       std::to_string(dropped) + " turn(s), keeping the system prompt; processing the remaining " +
                       std::to_string(want.size()) + " tokens again");
            }
            return want;
        }
        // The oldest turn: the first user message and the reply to it; never the current message.
        const size_t first = !messages_.empty() && messages_[0].role == "system" ? 1 : 0;
        if (messages_.size() <= first + 1) {
            messages_ = kept;
            return {};
        }
        messages_.erase(messages_.begin() + static_cast<ptrdiff_t>(first));
        if (messages_.size() > first + 1 && messages_[first].role == "assistant") {
            messages_.erase(messages_.begin() + static_cast<ptrdiff_t>(first));
        }
        ++dropped;
    }
}

bool ChatSession::prefill(const std::vector<int32_t>& want, const std::function<bool()>& interrupted) {
    // Speculative decoding starts from states holding all but the last token; plain generation
    // needs the logits after the last one, so the target runs at least that token again.
    const int goal = static_cast<int>(want.size()) - (draft_ ? 1 : 0);
    for (Sequence* s : {target_.get(), draft_.get()}) {
        if (!s) continue;
        // The state holds tokens_[0, n_past): keep what it shares with `want`.
        const auto held =
            static_cast<ptrdiff_t>(std::min<size_t>(static_cast<size_t>(s->state->n_past()), want.size()));
        const int common =
            static_cast<int>(std::mismatch(want.begin(), want.begin() + held, tokens_.begin()).first - want.begin());
        s->rewind(std::min(common, s == target_.get() && !draft_ ? goal - 1 : goal));
    }
    tokens_ = want;
    last_.reused_tokens = target_->state->n_past();
    std::vector<float> draft_logits;
    for (Sequence* s : {target_.get(), draft_.get()}) {
        if (!s) continue;
        while (s->state->n_past() < goal) {
            if (interrupted()) return false;
            const size_t from = static_cast<size_t>(s->state->n_past());
            const size_t n = std::min(kPrefillChunk, static_cast<size_t>(goal) - from);
            // Only the target's last logits start the reply; the draft's are not needed.
            std::vector<float>& out = s == target_.get() ? logits_ : draft_logits;
            s->model.forward(*s->state, std::span<const int32_t>(tokens_).subspan(from, n), Logits::Last, out);
            if (s == target_.get()) last_.prefilled_tokens += static_cast<int64_t>(n);
        }
        s->take_checkpoint();
    }
    return true;
}

ChatReply ChatSession::send(const std::string& user_text, const std::function<void(const std::string&)>& on_text,
                            const std::function<bool()>& interrupted) {
    const Clock::time_point start = Clock::now();
    last_ = ChatTurnStats{};
    // Room kept free for the reply when the conversation is fitted into the context.
    const int room = std::max(1, options_.n_predict > 0 ? std::min(options_.n_predict, n_ctx_ / 2) : n_ctx_ / 4);
    messages_.push_back({"user", user_text});
    std::vector<int32_t> want = fit({}, room);
    if (want.empty()) {
        messages_.pop_back();
        fail("the message does not fit a context of ", n_ctx_, " tokens with ", room,
             " left for the reply (shorten it or raise -c/--ctx-size)");
    }
    ChatReply reply;
    last_.prompt_tokens = static_cast<int64_t>(want.size());
    const bool prefilled = prefill(want, interrupted);
    last_.prefill_seconds = seconds_since(start);
    ReplyPrinter printer(tokenizer_, template_.stop_text());
    std::vector<int32_t> reply_tokens;
    Clock::time_point generation_start = Clock::now();
    if (!prefilled) {
        reply.end = ReplyEnd::interrupted;
    } else {
        auto on_token = [&](int32_t id) {
            if (interrupted()) {
                reply.end = ReplyEnd::interrupted;
                return false;
            }
            if (tokenizer_.is_eog(id) || id == end_of_turn_) {
                reply.end = ReplyEnd::end_of_turn;
                return false;
            }
            if (reply_tokens.empty()) last_.first_token_seconds = seconds_since(start);
            const std::string text = printer.push(id);
            if (!text.empty()) on_text(text);
            if (printer.stopped()) {
                reply.end = ReplyEnd::end_of_turn;
                return false;
            }
            reply_tokens.push_back(id);
            return true;
        };
        while (true) {
            const int left =
                options_.n_predict < 0 ? INT_MAX : options_.n_predict - static_cast<int>(reply_tokens.size());
            StopReason stop;
            if (!draft_) {
                stop = generate(target_->model, *target_->state, logits_, tokens_, left, sampler_, on_token).stop;
            } else {
                stop = generate_speculative(target_->model, *target_->state, draft_->model, *draft_->state, tokens_,
                                            {.n_predict = left, .n_draft = options_.n_draft}, sampler_, on_token)
                           .stop;
                // The draft may still hold rejected drafts; what the target kept is right for both.
                draft_->rewind(target_->state->n_past());
            }
            if (stop == StopReason::n_predict) reply.end = ReplyEnd::length;
            if (stop != StopReason::context_full) break;
            want = fit(reply_tokens, room);
            if (want.empty()) {
                notify("context full: the reply alone fills the context of " + std::to_string(n_ctx_) +
                       " tokens; stopping it (raise -c/--ctx-size)");
                reply.end = ReplyEnd::context_full;
                break;
            }
            if (!prefill(want, interrupted)) {
                reply.end = ReplyEnd::interrupted;
                break;
            }
        }
    }
    const std::string tail = printer.finish();
    if (!tail.empty()) on_text(tail);
    reply.text = printer.text();
    // Kept as generated, so the next turn's rendering matches the tokens already in the state.
    messages_.push_back({"assistant", reply.text});
    last_.generated_tokens = static_cast<int64_t>(reply_tokens.size());
    last_.generation_seconds = seconds_since(generation_start);
    add(totals_, last_);
    reply.stats = last_;
    return reply;
}

void ChatSession::set_system(const std::string& text) {
    const bool has = !messages_.empty() && messages_[0].role == "system";
    if (text.empty()) {
        if (has) messages_.erase(messages_.begin());
    } else if (has) {
        messages_[0].content = text;
    } else {
        messages_.insert(messages_.begin(), {"system", text});
    }
}

void ChatSession::reset() {
    const bool has_system = !messages_.empty() && messages_[0].role == "system";
    messages_.resize(has_system ? 1 : 0);
}

int ChatSession::context_used() const { return target_->state->n_past(); }

void ChatSession::save(const std::string& path) const {
    Json list = Json::array();
    for (const ChatMessage& m : messages_) {
        Json item = Json::object();
        item.set("role", m.role);
        item.set("content", m.content);
        list.push_back(std::move(item));
    }
    Json root = Json::object();
    root.set("messages", std::move(list));
    // Atomically: a full disk or a signal leaves an older save as it was.
    write_file_atomically(path, root.dump(2) + "\n");
}

void ChatSession::load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, ": cannot open conversation file");
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const Json root = Json::parse(text, path);
    std::vector<ChatMessage> loaded;
    for (const Json& item : root.at("messages").items()) {
        ChatMessage m{item.at("role").as_string(), item.at("content").as_string()};
        if (m.role != "system" && m.role != "user" && m.role != "assistant") {
            fail(path, ": message ", loaded.size(), " has role '", m.role, "' (expected system, user or assistant)");
        }
        if (m.role == "system" && !loaded.empty()) fail(path, ": a system message must come first");
        loaded.push_back(std::move(m));
    }
    messages_ = std::move(loaded);
}

}  // namespace strata
