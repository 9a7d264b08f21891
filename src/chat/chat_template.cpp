#include "chat/chat_template.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "chat/jinja.h"
#include "chat/jinja_builtins.h"
#include "util/error.h"

namespace strata {

namespace {

std::string trim(const std::string& s) { return jinja::python_strip(s, nullptr, true, true); }

// A template's error message for a one-line notice: it may carry the template's own text
// (raise_exception's argument), so control characters become spaces and it is cut short.
std::string one_line(const std::string& message) {
    constexpr size_t kMaxReason = 300;  // a terminal line or two
    std::string out;
    for (size_t i = 0; i < message.size(); ++i) {
        const auto c = static_cast<unsigned char>(message[i]);
        if (out.size() >= kMaxReason && (c & 0xC0) != 0x80) return out + "…";
        out += c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c);
    }
    return out;
}

// Formats that wrap each message in a prefix and suffix per role (llama.cpp's
// llm_chat_apply_template, where each is a few lines of the same shape).
struct RoleFormat {
    const char* name;
    const char* system[2];
    const char* user[2];
    const char* assistant[2];
    const char* generation_prompt;
    const char* end_of_turn;  // "" when the turn ends with EOS
    bool trim;                // strip each message's content
    // Gemma has no system role: the system text opens the next user message, then "\n\n".
    bool system_into_user;
};

const RoleFormat kRoleFormats[] = {
    {"chatml",
     {"<|im_start|>system\n", "<|im_end|>\n"},
     {"<|im_start|>user\n", "<|im_end|>\n"},
     {"<|im_start|>assistant\n", "<|im_end|>\n"},
     "<|im_start|>assistant\n",
     "<|im_end|>",
     false,
     false},
    {"llama3",
     {"<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"},
     {"<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"},
     {"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"},
     "<|start_header_id|>assistant<|end_header_id|>\n\n",
     "<|eot_id|>",
     true,
     false},
    {"phi3",
     {"<|system|>\n", "<|end|>\n"},
     {"<|user|>\n", "<|end|>\n"},
     {"<|assistant|>\n", "<|end|>\n"},
     "<|assistant|>\n",
     "<|end|>",
     false,
     false},
    {"zephyr",
     {"<|system|>\n", "<|endoftext|>\n"},
     {"<|user|>\n", "<|endoftext|>\n"},
     {"<|assistant|>\n", "<|endoftext|>\n"},
     "<|assistant|>\n",
     "<|endoftext|>",
     false,
     false},
    {"gemma",
     {"", ""},
     {"<start_of_turn>user\n", "<end_of_turn>\n"},
     {"<start_of_turn>model\n", "<end_of_turn>\n"},
     "<start_of_turn>model\n",
     "<end_of_turn>",
     true,
     true},
    {"deepseek3",
     {"", "\n\n"},
     {"<｜User｜>", ""},
     {"<｜Assistant｜>", "<｜end▁of▁sentence｜>"},
     "<｜Assistant｜>",
     "",
     false,
     false},
    {"mistral-v7",
     {"[SYSTEM_PROMPT] ", "[/SYSTEM_PROMPT]"},
     {"[INST] ", "[/INST]"},
     {" ", "</s>"},
     "",
     "",
     false,
     false},
    {"mistral-v7-tekken",
     {"[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"},
     {"[INST]", "[/INST]"},
     {"", "</s>"},
     "",
     "",
     false,
     false},
    // A reply follows "Assistant:" exactly as the model wrote it (its leading space included), so
    // the history renders back to the tokens that were generated.
    {"plain", {"", "\n\n"}, {"User: ", "\n"}, {"Assistant:", "\n"}, "Assistant:", "", false, false},
};

// The [INST] family (Llama 2, Mistral v1/v3): a user turn opens with [INST], a system message
// sits inside the first one, and the assistant's reply closes the turn with </s>.
struct InstFormat {
    const char* name;
    const char* open;        // opens the first user turn
    const char* open_again;  // opens later ones
    const char* system[2];
    const char* user_close;
    const char* assistant_prefix;
    bool trim_all, trim_assistant;
};

const InstFormat kInstFormats[] = {
    {"llama2", "[INST] ", "[INST] ", {"", "\n"}, " [/INST]", "", false, false},
    {"llama2-sys", "[INST] ", "[INST] ", {"<<SYS>>\n", "\n<</SYS>>\n\n"}, " [/INST]", "", false, false},
    {"llama2-sys-bos", "[INST] ", "<s>[INST] ", {"<<SYS>>\n", "\n<</SYS>>\n\n"}, " [/INST]", "", false, false},
    {"llama2-sys-strip", "[INST] ", "[INST] ", {"<<SYS>>\n", "\n<</SYS>>\n\n"}, " [/INST]", "", true, false},
    {"mistral-v1", " [INST] ", " [INST] ", {"", "\n\n"}, " [/INST]", " ", false, false},
    {"mistral-v3", "[INST] ", "[INST] ", {"", "\n\n"}, "[/INST]", " ", false, true},
    {"mistral-v3-tekken", "[INST]", "[INST]", {"", "\n\n"}, "[/INST]", "", false, false},
};

const RoleFormat* find_role_format(const std::string& name) {
    for (const RoleFormat& f : kRoleFormats) {
        if (name == f.name) return &f;
    }
    return nullptr;
}

const InstFormat* find_inst_format(const std::string& name) {
    for (const InstFormat& f : kInstFormats) {
        if (name == f.name) return &f;
    }
    return nullptr;
}

std::string apply_role_format(const RoleFormat& f, const std::vector<ChatMessage>& messages,
                              bool add_generation_prompt) {
    std::string out, pending_system;
    for (const ChatMessage& m : messages) {
        const std::string content = f.trim ? trim(m.content) : m.content;
        if (m.role == "system" && f.system_into_user) {
            pending_system += content;
            continue;
        }
        const char* const* affixes = m.role == "system" ? f.system : m.role == "assistant" ? f.assistant : f.user;
        out += affixes[0];
        if (m.role == "user" && !pending_system.empty()) {
            out += pending_system + "\n\n";
            pending_system.clear();
        }
        out += content + affixes[1];
    }
    if (add_generation_prompt) out += f.generation_prompt;
    return out;
}

std::string apply_inst_format(const InstFormat& f, const std::vector<ChatMessage>& messages) {
    std::string out;
    bool in_turn = false, first_turn = true;
    for (const ChatMessage& m : messages) {
        const std::string content = f.trim_all ? trim(m.content) : m.content;
        if (!in_turn) {
            out += first_turn ? f.open : f.open_again;
            in_turn = true;
            first_turn = false;
        }
        if (m.role == "system") {
            out += f.system[0] + content + f.system[1];
        } else if (m.role == "user") {
            out += content + f.user_close;
        } else {
            out += f.assistant_prefix + (f.trim_assistant ? trim(content) : content) + "</s>";
            in_turn = false;
        }
    }
    return out;
}

jinja::Value to_value(const std::vector<ChatMessage>& messages) {
    jinja::Array items;
    for (const ChatMessage& m : messages) {
        items.push_back(jinja::Value::object({{"role", jinja::Value(m.role)}, {"content", jinja::Value(m.content)}}));
    }
    return jinja::Value::array(std::move(items));
}

}  // namespace

std::string detect_chat_template(std::string_view t) {
    auto has = [&](const char* s) { return t.find(s) != std::string_view::npos; };
    if (has("<|im_start|>")) return "chatml";
    if (t.substr(0, 7) == "mistral" || has("[INST]")) {
        if (has("[SYSTEM_PROMPT]")) return "mistral-v7";
        if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
            if (has(" [INST]")) return "mistral-v1";
            if (has("\"[INST]\"")) return "mistral-v3-tekken";
            return "mistral-v3";
        }
        if (has("content.strip()")) return "llama2-sys-strip";
        if (has("bos_token + '[INST]")) return "llama2-sys-bos";
        if (has("<<SYS>>")) return "llama2-sys";
        return "llama2";
    }
    if (has("<|assistant|>") && has("<|end|>")) return "phi3";
    if (has("<|user|>") && has("<|endoftext|>")) return "zephyr";
    if (has("<start_of_turn>")) return "gemma";
    if (has("<|start_header_id|>") && has("<|end_header_id|>")) return "llama3";
    if (has("<｜Assistant｜>") && has("<｜User｜>") && has("<｜end▁of▁sentence｜>")) return "deepseek3";
    return "";
}

std::vector<std::string> ChatTemplate::builtin_names() {
    std::vector<std::string> names;
    for (const RoleFormat& f : kRoleFormats) names.emplace_back(f.name);
    for (const InstFormat& f : kInstFormats) names.emplace_back(f.name);
    std::sort(names.begin(), names.end());
    return names;
}

void ChatTemplate::use_builtin(const std::string& name) {
    builtin_ = name;
    const RoleFormat* f = find_role_format(name);
    end_of_turn_ = f ? f->end_of_turn : "";
    stop_text_ = name == "plain" ? "\nUser:" : "";
}

ChatTemplate ChatTemplate::from_model(const std::string& source, const ChatTokens& tokens) {
    ChatTemplate t;
    t.tokens_ = tokens;
    const std::string family = detect_chat_template(source);
    t.use_builtin(family.empty() ? "plain" : family);
    if (source.empty()) {
        t.notice_ = "the model has no chat template; using a plain \"User: / Assistant:\" format";
        return t;
    }
    try {
        t.jinja_ = std::make_shared<const jinja::Template>(source);
        t.stop_text_.clear();
    } catch (const Error& e) {
        t.notice_ = "cannot use the model's chat template (" + one_line(e.what()) + "); using the built-in " +
                    t.builtin_ + " format";
    }
    return t;
}

ChatTemplate ChatTemplate::from_name(const std::string& name, const ChatTokens& tokens) {
    ChatTemplate t;
    t.tokens_ = tokens;
    if (name.size() > 6 && name.compare(name.size() - 6, 6, ".jinja") == 0) {
        std::ifstream in(name, std::ios::binary);
        if (!in) fail(name, ": cannot open chat template file");
        const std::string source{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        const std::string family = detect_chat_template(source);
        t.use_builtin(family.empty() ? "plain" : family);
        t.jinja_ = std::make_shared<const jinja::Template>(source);
        t.stop_text_.clear();
        return t;
    }
    const std::vector<std::string> names = builtin_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
        std::string known;
        for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
        fail("unknown chat template '", name, "' (known: ", known, "; or a .jinja file)");
    }
    t.use_builtin(name);
    return t;
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
    if (jinja_) {
        // The variables transformers' apply_chat_template passes.
        jinja::Object vars = {{"messages", to_value(messages)},
                              {"add_generation_prompt", jinja::Value(add_generation_prompt)},
                              {"tools", jinja::Value::none()},
                              {"documents", jinja::Value::none()}};
        if (!tokens_.bos.empty()) vars.emplace_back("bos_token", jinja::Value(tokens_.bos));
        if (!tokens_.eos.empty()) vars.emplace_back("eos_token", jinja::Value(tokens_.eos));
        return jinja_->render(jinja::Value::object(std::move(vars)));
    }
    if (const RoleFormat* f = find_role_format(builtin_)) return apply_role_format(*f, messages, add_generation_prompt);
    return apply_inst_format(*find_inst_format(builtin_), messages);
}

void ChatTemplate::drop_jinja(const std::string& reason) {
    jinja_.reset();
    use_builtin(builtin_);
    notice_ = "the model's chat template failed (" + one_line(reason) + "); using the built-in " + builtin_ + " format";
}

std::string ChatTemplate::description() const {
    if (jinja_)
        return "Jinja template (" + (builtin_ == "plain" ? std::string("unrecognized family") : builtin_ + " family") +
               ")";
    return builtin_ == "plain" ? "plain User:/Assistant: format" : "built-in " + builtin_ + " format";
}

}  // namespace strata
