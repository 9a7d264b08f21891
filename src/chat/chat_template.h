// Turning a conversation into the text a chat model was trained on. A model's own Jinja template
// (tokenizer.chat_template) is rendered with the Jinja interpreter when it parses; its family is
// also recognized from its text, the way llama.cpp's llm_chat_detect_template does, which gives
// the end-of-turn token and a built-in format to fall back on. Models without a template get a
// plain "User: … / Assistant:" format.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

namespace jinja {
class Template;
}

struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

// Texts of the special tokens templates refer to ({{ bos_token }}); empty when the model has none.
struct ChatTokens {
    std::string bos, eos;
};

class ChatTemplate {
public:
    // The built-in formats, by llama.cpp's names, for --template.
    static std::vector<std::string> builtin_names();

    // For the model's tokenizer.chat_template text (empty: none). Never throws: an unparsable
    // template falls back to the detected built-in format, or to "plain", with a notice().
    static ChatTemplate from_model(const std::string& source, const ChatTokens& tokens);
    // --template NAME: a built-in format, or a file ending in .jinja. Throws Error for an unknown
    // name (listing the known ones), an unreadable file or a template that does not parse.
    static ChatTemplate from_name(const std::string& name, const ChatTokens& tokens);

    // The conversation's text; with add_generation_prompt, followed by the opening of the
    // assistant's reply. Throws Error when a Jinja template fails (raise_exception included:
    // Gemma's rejects a system message).
    std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

    bool uses_jinja() const { return jinja_ != nullptr; }
    // From now on, the built-in format of the detected family ("plain" when unknown), for when
    // the Jinja template fails on a conversation. Sets notice().
    void drop_jinja(const std::string& reason);

    // "Jinja template (chatml family)", "built-in llama3", … for the startup log.
    std::string description() const;
    // A one-line note on a fallback, to show the user; empty when none.
    const std::string& notice() const { return notice_; }
    // Text of the token that ends an assistant turn ("<|im_end|>"); empty when EOS does.
    const std::string& end_of_turn() const { return end_of_turn_; }
    // Text that ends a reply written out as plain text ("\nUser:" for the plain format), or "".
    const std::string& stop_text() const { return stop_text_; }

private:
    void use_builtin(const std::string& name);

    std::shared_ptr<const jinja::Template> jinja_;
    std::string builtin_;  // the built-in format used without Jinja, and the family with it
    ChatTokens tokens_;
    std::string notice_, end_of_turn_, stop_text_;
};

// The built-in format whose markers `source` contains (llama.cpp's detection order), or "".
std::string detect_chat_template(std::string_view source);

}  // namespace strata
