# Convenience front end over CMake. README's two commands: `make run` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEB_PACKAGES := cmake g++ make libcli11-dev doctest-dev libsentencepiece-dev tmux

.PHONY: all deps configure build run test fuzz bench clean

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

# Coverage-guided fuzzing of the GGUF reader with libFuzzer (clang). FUZZ_SECONDS bounds the run.
FUZZ_SECONDS ?= 60
fuzz:
	mkdir -p $(BUILD)-fuzz/corpus
	clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -Itests \
		tests/fuzz/gguf_libfuzzer.cpp src/format/gguf_*.cpp src/tensor/*.cpp -o $(BUILD)-fuzz/gguf_fuzzer
	$(BUILD)-fuzz/gguf_fuzzer -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
		-artifact_prefix=$(BUILD)-fuzz/ $(BUILD)-fuzz/corpus tests/data/gguf_crashes

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz
