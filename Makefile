# Convenience front end over CMake. README's two commands: `make run` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEB_PACKAGES := cmake g++ make libcli11-dev doctest-dev libsentencepiece-dev tmux

.PHONY: all deps configure build run test fuzz fuzz-build bench clean

all: build

# Installs the Debian packages that are missing (needs root or sudo).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# The main job on the embedded default model.
run: build
	$(BUILD)/strata run -m models/shakespeare-q8_0.gguf -p "ROMEO:" -n 64 --temp 0

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Coverage-guided fuzzing with libFuzzer (clang), ASan and UBSan: builds every target of
# tests/fuzz/CMakeLists.txt, then runs each for FUZZ_SECONDS with one job, on its seed corpora
# (those present: ../shared is optional). A finding stops the run and leaves its input at
# $(BUILD)-fuzz/TARGET-crash-…; keep it in tests/data/TARGET_crashes/, where the test suite
# replays it. FUZZ_TIMEOUT: seconds after which one input counts as a hang.
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 20
FUZZ_DIR := $(BUILD)-fuzz
FUZZ_TARGETS := gguf jinja
FUZZ_SEEDS_gguf := tests/data/gguf_crashes
FUZZ_ARGS_gguf := -max_len=65536
FUZZ_SEEDS_jinja := tests/data/jinja_crashes ../shared/fixtures/templates
FUZZ_ARGS_jinja := -max_len=8192 -dict=tests/fuzz/jinja.dict

fuzz: $(FUZZ_TARGETS:%=fuzz-%)

fuzz-build:
	cmake -S tests/fuzz -B $(FUZZ_DIR) -DCMAKE_CXX_COMPILER=clang++
	cmake --build $(FUZZ_DIR) -j $(JOBS)
	if command -v python3 >/dev/null; then \
		python3 tests/fuzz/jinja_seeds.py tests/data/chat_templates/cases.json $(FUZZ_DIR)/seeds/jinja; fi

# (fuzz-TARGET is not .PHONY: make skips pattern rules for phony targets.)
fuzz-%: fuzz-build
	mkdir -p $(FUZZ_DIR)/corpus/$*
	$(FUZZ_DIR)/$*_fuzzer -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 \
		$(FUZZ_ARGS_$*) -artifact_prefix=$(FUZZ_DIR)/$*- $(FUZZ_DIR)/corpus/$* \
		$(wildcard $(FUZZ_SEEDS_$*)) $(wildcard $(FUZZ_DIR)/seeds/$*)

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz
