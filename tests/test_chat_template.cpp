// Chat templates: the Jinja interpreter against transformers' apply_chat_template on real model
// templates (../shared/fixtures/templates) and on small feature cases, llama.cpp-style family
// detection, the built-in formats and the fallbacks. Inputs are in
// tests/data/chat_templates/cases.json; the expected strings in expected.json were rendered once
// by render_reference.py (beside them) with transformers 5.17 / jinja2 3.1.6.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "chat/jinja.h"
#include "test_support.h"
#include "util/error.h"
#include "util/json.h"

namespace fs = std::filesystem;
using strata::ChatMessage;
using strata::ChatTemplate;
using strata::Json;

namespace {

const fs::path kDataDir = fs::path(STRATA_SOURCE_DIR) / "tests/data/chat_templates";

const Json& cases() {
    static const Json j = Json::parse(strata::test::read_text(kDataDir / "cases.json"), "cases.json");
    return j;
}

const Json& expected() {
    static const Json j = Json::parse(strata::test::read_text(kDataDir / "expected.json"), "expected.json");
    return j;
}

std::vector<ChatMessage> messages_of(const Json& conversation) {
    std::vector<ChatMessage> out;
    for (const Json& m : conversation.at("messages").items())
        out.push_back({m.at("role").as_string(), m.at("content").as_string()});
    return out;
}

strata::ChatTokens tokens_of(const std::string& template_name) {
    const Json& t = cases().at("special_tokens").at(template_name);
    return {t.find("bos_token") ? t.at("bos_token").as_string() : "",
            t.find("eos_token") ? t.at("eos_token").as_string() : ""};
}

// The reference's result: the rendered text, or that it raised (message in `error`).
struct Outcome {
    bool raised;
    std::string text;
};

Outcome reference(const Json& entry) {
    if (const Json* out = entry.find("output")) return {false, out->as_string()};
    return {true, entry.at("error").as_string()};
}

std::string fixture_template(const std::string& name) {
    return strata::test::read_text(strata::test::fixture("templates/" + name + ".jinja"));
}

const std::vector<std::string> kFixtureTemplates = {"Qwen-Qwen2.5-7B-Instruct",
                                                    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B",
                                                    "google-gemma-2-2b-it",
                                                    "meta-llama-Llama-3.1-8B-Instruct",
                                                    "microsoft-Phi-3.5-mini-instruct",
                                                    "mistralai-Mistral-Nemo-Instruct-2407"};

}  // namespace

TEST_CASE("jinja: feature cases render as jinja2 renders them") {
    for (const Json& c : cases().at("features").items()) {
        const std::string name = c.at("name").as_string();
        CAPTURE(name);
        const Outcome want = reference(expected().at("features").at(name));
        std::string got;
        bool raised = false;
        try {
            got = strata::jinja::Template(c.at("template").as_string())
                      .render(strata::jinja::Value::from_json(c.at("vars")));
        } catch (const strata::Error& e) {
            raised = true;
            got = e.what();
        }
        CHECK(raised == want.raised);
        if (!want.raised) CHECK(got == want.text);
    }
}

TEST_CASE("chat templates: the models' own templates render exactly as transformers renders them") {
    if (strata::test::skip_without_shared("fixtures/templates")) return;
    for (const std::string& name : kFixtureTemplates) {
        const ChatTemplate t = ChatTemplate::from_model(fixture_template(name), tokens_of(name));
        REQUIRE_MESSAGE(t.uses_jinja(), name, ": ", t.notice());
        for (const Json& conversation : cases().at("conversations").items()) {
            const std::string conv = conversation.at("name").as_string();
            CAPTURE(name);
            CAPTURE(conv);
            const Outcome want = reference(expected().at("templates").at(name).at(conv));
            try {
                const std::string got =
                    t.apply(messages_of(conversation), conversation.at("add_generation_prompt").as_bool());
                CHECK_FALSE(want.raised);
                CHECK(got == want.text);
            } catch (const strata::Error& e) {
                CHECK(want.raised);
                // Both raise the template's own message (Gemma: "System role not supported").
                const std::string message = want.text.substr(want.text.find(": ") + 2);
                CHECK(std::string(e.what()).find(message) != std::string::npos);
            }
        }
    }
}

TEST_CASE("chat templates: families are detected from the template text as llama.cpp detects them") {
    if (!strata::test::skip_without_shared("fixtures/templates")) {
        const std::vector<std::pair<std::string, std::string>> families = {
            {"Qwen-Qwen2.5-7B-Instruct", "chatml"},      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B", "deepseek3"},
            {"google-gemma-2-2b-it", "gemma"},           {"meta-llama-Llama-3.1-8B-Instruct", "llama3"},
            {"microsoft-Phi-3.5-mini-instruct", "phi3"}, {"mistralai-Mistral-Nemo-Instruct-2407", "mistral-v3-tekken"},
        };
        for (const auto& [name, family] : families)
            CHECK(strata::detect_chat_template(fixture_template(name)) == family);
    }
    CHECK(strata::detect_chat_template("{{ '[INST] ' + m }}") == "llama2");
    CHECK(strata::detect_chat_template("<<SYS>>\\n [INST]") == "llama2-sys");
    CHECK(strata::detect_chat_template("{{ bos_token + '[INST] ' + content.strip() }} <<SYS>>") == "llama2-sys-strip");
    CHECK(strata::detect_chat_template("{{ bos_token + '[INST] ' }} <<SYS>>") == "llama2-sys-bos");
    CHECK(strata::detect_chat_template("{{ ' [INST] ' + system_message }}") == "mistral-v1");
    CHECK(strata::detect_chat_template("[AVAILABLE_TOOLS][INST]") == "mistral-v3");
    CHECK(strata::detect_chat_template("[SYSTEM_PROMPT] [INST]") == "mistral-v7");
    CHECK(strata::detect_chat_template("<|user|>\\n{{ m }}<|endoftext|>") == "zephyr");
    CHECK(strata::detect_chat_template("{{ 'User: ' + m }}") == "");
}

TEST_CASE("chat templates: built-in formats match the reference where the model's template does the same") {
    if (strata::test::skip_without_shared("fixtures/templates")) return;
    // Built-in formats leave BOS to the tokenizer, so the reference's leading bos_token is cut.
    const std::vector<std::tuple<std::string, std::string, std::string>> same = {
        {"chatml", "Qwen-Qwen2.5-7B-Instruct", "system_two_turns"},
        {"chatml", "Qwen-Qwen2.5-7B-Instruct", "whitespace_unicode"},
        {"phi3", "microsoft-Phi-3.5-mini-instruct", "system_two_turns"},
        {"phi3", "microsoft-Phi-3.5-mini-instruct", "two_turns"},
        {"gemma", "google-gemma-2-2b-it", "two_turns"},
        {"gemma", "google-gemma-2-2b-it", "single_user"},
        {"mistral-v3-tekken", "mistralai-Mistral-Nemo-Instruct-2407", "two_turns"},
    };
    for (const auto& [builtin, model, conv] : same) {
        CAPTURE(builtin);
        CAPTURE(conv);
        const ChatTemplate t = ChatTemplate::from_name(builtin, tokens_of(model));
        for (const Json& conversation : cases().at("conversations").items()) {
            if (conversation.at("name").as_string() != conv) continue;
            std::string want = reference(expected().at("templates").at(model).at(conv)).text;
            const std::string bos = tokens_of(model).bos;
            if (!bos.empty() && want.rfind(bos, 0) == 0) want.erase(0, bos.size());
            CHECK(t.apply(messages_of(conversation), true) == want);
        }
    }
}

TEST_CASE("chat templates: built-in formats without a reference template here") {
    const std::vector<ChatMessage> conv = {{"system", "S"}, {"user", " U1 "}, {"assistant", "A1"}, {"user", "U2"}};
    auto render = [&](const char* name) { return ChatTemplate::from_name(name, {"<s>", "</s>"}).apply(conv, true); };
    CHECK(render("llama3") ==
          "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU1<|"
          "eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU2<"
          "|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
    CHECK(render("llama2-sys") == "[INST] <<SYS>>\nS\n<</SYS>>\n\n U1  [/INST]A1</s>[INST] U2 [/INST]");
    CHECK(render("llama2-sys-bos") == "[INST] <<SYS>>\nS\n<</SYS>>\n\n U1  [/INST]A1</s><s>[INST] U2 [/INST]");
    CHECK(render("mistral-v1") == " [INST] S\n\n U1  [/INST] A1</s> [INST] U2 [/INST]");
    CHECK(render("mistral-v7") == "[SYSTEM_PROMPT] S[/SYSTEM_PROMPT][INST]  U1 [/INST] A1</s>[INST] U2[/INST]");
    CHECK(render("zephyr") ==
          "<|system|>\nS<|endoftext|>\n<|user|>\n U1 <|endoftext|>\n<|assistant|>\nA1<|endoftext|>\n"
          "<|user|>\nU2<|endoftext|>\n<|assistant|>\n");
    CHECK(render("gemma") ==
          "<start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1<end_of_turn>\n"
          "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n");
    CHECK(render("deepseek3") ==
          "S\n\n<｜User｜> U1 <｜Assistant｜>A1<｜end▁of▁sentence｜><｜User｜>U2<｜Assistant｜>");
    CHECK(render("plain") == "S\n\nUser:  U1 \nAssistant:A1\nUser: U2\nAssistant:");
    const ChatTemplate plain = ChatTemplate::from_name("plain", {});
    CHECK(plain.stop_text() == "\nUser:");
    CHECK(ChatTemplate::from_name("chatml", {}).end_of_turn() == "<|im_end|>");
    CHECK(ChatTemplate::from_name("llama3", {}).end_of_turn() == "<|eot_id|>");
}

TEST_CASE("chat templates: fallbacks say so in one line") {
    const ChatTemplate none = ChatTemplate::from_model("", {});
    CHECK_FALSE(none.uses_jinja());
    CHECK(none.description() == "plain User:/Assistant: format");
    CHECK(none.notice().find("no chat template") != std::string::npos);

    // A template the interpreter cannot parse, of a known family: the built-in format.
    const ChatTemplate broken = ChatTemplate::from_model("{% for m in messages %}<|im_start|>{{ m.role }", {});
    CHECK_FALSE(broken.uses_jinja());
    CHECK(broken.description() == "built-in chatml format");
    CHECK(broken.notice().find("line 1") != std::string::npos);
    CHECK(broken.notice().find('\n') == std::string::npos);

    // Of an unknown family: the plain format.
    const ChatTemplate unknown = ChatTemplate::from_model("{% weird %}", {});
    CHECK(unknown.description() == "plain User:/Assistant: format");
    CHECK(unknown.notice().find("unsupported tag") != std::string::npos);

    // A template that parses but fails at run time can be dropped for the built-in format.
    ChatTemplate failing = ChatTemplate::from_model("{{ raise_exception('no') }}<start_of_turn>", {});
    CHECK(failing.uses_jinja());
    CHECK_THROWS_WITH_AS(failing.apply({{"user", "hi"}}, true), doctest::Contains("no"), strata::Error);
    failing.drop_jinja("no");
    CHECK(failing.apply({{"user", "hi"}}, true) == "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n");

    CHECK_THROWS_WITH_AS(ChatTemplate::from_name("nonesuch", {}), doctest::Contains("chatml"), strata::Error);
}

TEST_CASE("jinja: errors name the line") {
    auto error_of = [](const std::string& source) {
        try {
            strata::jinja::Template(source).render(strata::jinja::Value::object());
        } catch (const strata::Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(error_of("a\n{% if x %}b") == "chat template line 2: missing {% endif %}");
    CHECK(error_of("a\nb\n{{ 1 + }}").find("line 3") != std::string::npos);
    CHECK(error_of("{{ 'unterminated }}").find("string not closed") != std::string::npos);
    CHECK(error_of("{% include 'x' %}").find("unsupported tag") != std::string::npos);
    CHECK(error_of("x\n{{ y.z }}") == "chat template line 2: 'y' is undefined (reading its attribute 'z')");
}
