// A multi-turn conversation with a model: the messages, and the sequence state that persists
// across turns (KV cache, Mamba state or both: the state interface makes no difference here).
//
// Each turn renders the whole conversation with the chat template, tokenizes it, and compares it
// with the tokens already in the state: the common prefix is kept (the state is rolled back to it
// if the new text diverges, as when a template re-renders the previous reply differently) and
// only the rest is prefilled. So a turn costs its new tokens, not the history's length. When the
// context fills, the oldest turns are dropped (the system prompt stays), with a notice, and the
// shorter conversation is prefilled again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "decode/sampler.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace strata {

struct ChatOptions {
    int n_predict = -1;  // tokens per reply at most; −1: until the end of the turn
    int n_draft = 4;     // tokens drafted per target pass when a draft model is set
    // One-line notices (context full, template fallback); the CLI prints them to stderr.
    std::function<void(const std::string&)> notify;
};

// Numbers of one turn (and, summed, of the session) for /stats.
struct ChatTurnStats {
    int64_t prompt_tokens = 0;     // the rendered conversation, as tokens
    int64_t reused_tokens = 0;     // of those, already in the state
    int64_t prefilled_tokens = 0;  // processed this turn before the first token
    int64_t generated_tokens = 0;
    double prefill_seconds = 0, first_token_seconds = 0, generation_seconds = 0;
};

enum class ReplyEnd { end_of_turn, interrupted, length, context_full };

struct ChatReply {
    std::string text;  // as printed, and as the history keeps it
    ReplyEnd end = ReplyEnd::end_of_turn;
    ChatTurnStats stats;
};

class ChatSession {
public:
    // `sampler` picks every reply token; model, tokenizer and sampler must outlive the session.
    ChatSession(Model& model, const Tokenizer& tokenizer, ChatTemplate chat_template, int n_ctx, Sampler& sampler,
                ChatOptions options);
    ~ChatSession();

    // Speculative decoding of replies with this draft model (same vocabulary; see speculative.h).
    void set_draft(Model& draft);

    // Sends the user's message and streams the reply through on_text as it is generated (whole
    // UTF-8 characters; special tokens are not printed). `interrupted` is polled before every
    // token and between prefill chunks: when it returns true the reply stops there and stays in
    // the history as far as it got. Throws Error when the message cannot fit the context even
    // alone (the conversation is left as it was).
    ChatReply send(const std::string& user_text, const std::function<void(const std::string&)>& on_text,
                   const std::function<bool()>& interrupted);

    // Replaces the system prompt (empty: none) and keeps the turns.
    void set_system(const std::string& text);
    // Forgets the turns, keeping the system prompt. The state is reused up to where the new
    // conversation differs, on the next turn.
    void reset();
    const std::vector<ChatMessage>& messages() const { return messages_; }

    // The conversation as JSON ({"messages": [{"role", "content"}…]}), and back; load() throws
    // Error naming the file for unreadable or malformed ones.
    void save(const std::string& path) const;
    void load(const std::string& path);

    int context_used() const;
    int context_size() const { return n_ctx_; }
    const ChatTurnStats& last_turn() const { return last_; }
    const ChatTurnStats& totals() const { return totals_; }

private:
    struct Sequence;  // a model with its state, the tokens in it and a recurrent checkpoint

    std::string render();
    std::vector<int32_t> tokenize(const std::string& text) const;
    // The rendered conversation (with the generation prompt) followed by `reply`, after dropping
    // the oldest turns while it leaves less than `room` tokens free. Returns empty when even the
    // system prompt and the current message leave no room.
    std::vector<int32_t> fit(const std::vector<int32_t>& reply, int room);
    // Prefills the sequences to hold `want` (all of it, or all but the last token for
    // speculative decoding); false when interrupted.
    bool prefill(const std::vector<int32_t>& want, const std::function<bool()>& interrupted);
    void notify(const std::string& text) const;

    const Tokenizer& tokenizer_;
    ChatTemplate template_;
    int n_ctx_;
    Sampler& sampler_;
    ChatOptions options_;
    std::unique_ptr<Sequence> target_, draft_;
    std::vector<int32_t> tokens_;  // the sequence: the target state holds its first n_past
    std::vector<float> logits_;    // the target's logits after the last processed token
    int32_t end_of_turn_ = -1;     // the template's end-of-turn token, when it is one token
    std::vector<ChatMessage> messages_;
    ChatTurnStats last_, totals_;
};

}  // namespace strata
