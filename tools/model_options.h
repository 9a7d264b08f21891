// Flags every model-running subcommand shares (-m, -t, -c, --no-mmap) and the loading they imply.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "format/gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

struct ModelOptions {
    std::string path;
    int threads = 0;  // 0: physical cores
    int n_ctx = 0;    // 0: the model's training context, at most 4096
    bool no_mmap = false;
    std::string cache_type_k = "f16", cache_type_v = "f16";  // -ctk / -ctv
    const char* ctx_flag = "-c/--ctx-size";  // what errors about the context name (bench: "-p + -n")
};

void add_model_options(CLI::App* cmd, ModelOptions& options);

struct LoadedModel {
    std::unique_ptr<strata::GgufFile> file;
    std::unique_ptr<strata::Backend> backend;
    std::unique_ptr<strata::Model> model;
    std::unique_ptr<strata::Tokenizer> tokenizer;
    int n_ctx = 0;
    double load_seconds = 0;
};

// Maps the file, builds backend, model and tokenizer; logs a one-line summary to stderr. The
// KV cache of the context is reserved up front when a state is made, so its size is checked here
// against the memory available (an Error naming -c), and a context beyond the model's training
// context gets a warning, as llama.cpp gives one.
LoadedModel load_model_for_cli(const ModelOptions& options);
// The draft model for speculative decoding, with the target's flags; checked compatible with the
// target's tokenizer. An empty LoadedModel when draft_path is empty.
LoadedModel load_draft_for_cli(const ModelOptions& options, const std::string& draft_path, const LoadedModel& target);
