# The front door. `make run` and `make test` are the README's two commands: each
# installs what is missing (scripts/setup), configures, builds with -j2, then runs.
JOBS ?= 2
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 15
RUN_INPUT ?= examples/images
RUN_OUTPUT ?= out/run

.PHONY: all setup configure build run test test-asan fuzz fuzz-smoke bench format clean

all: build

setup:
	@scripts/setup

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

# The main job on the embedded defaults: upscale the example images x2 (lanczos).
run: build
	$(BUILD)/tessera worker --mode batch --input $(RUN_INPUT) --output $(RUN_OUTPUT)
	@echo "results in $(RUN_OUTPUT)/"

# The fuzz smoke run goes first so that ctest's summary closes the output.
test: build
	@$(MAKE) --no-print-directory fuzz-smoke
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure

# ASan + UBSan build: every suite but the resident-memory bounds (label "memory"),
# which ASan's quarantine of freed memory makes meaningless.
test-asan: setup
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTESSERA_SANITIZE=ON -DTESSERA_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1 ctest -j$(JOBS) --output-on-failure -LE memory

build-fuzz/fuzz/fuzz_request_decoder: setup
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_FUZZ=ON \
		-DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCH=OFF \
		-DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target fuzz_request_decoder

# The decoder fuzzer for FUZZ_SECONDS; the corpus persists in fuzz/corpus.
fuzz: build-fuzz/fuzz/fuzz_request_decoder
	@mkdir -p fuzz/corpus
	build-fuzz/fuzz/fuzz_request_decoder -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=fuzz/ fuzz/corpus fuzz/seeds

# A short run for CI, from the committed seeds only.
fuzz-smoke: build-fuzz/fuzz/fuzz_request_decoder
	@mkdir -p $(BUILD)/fuzz-corpus
	@build-fuzz/fuzz/fuzz_request_decoder -max_total_time=$(FUZZ_SMOKE_SECONDS) -print_final_stats=1 \
		-artifact_prefix=$(BUILD)/ $(BUILD)/fuzz-corpus fuzz/seeds > $(BUILD)/fuzz-smoke.log 2>&1; \
		rc=$$?; tail -n 6 $(BUILD)/fuzz-smoke.log; \
		if [ $$rc -ne 0 ]; then echo "fuzz-smoke: the fuzzer failed, see $(BUILD)/fuzz-smoke.log"; exit $$rc; fi; \
		echo "fuzz-smoke: no crash in $(FUZZ_SMOKE_SECONDS)s"

bench: build
	$(BUILD)/bench/worker_bench --benchmark_counters_tabular=true

format:
	@clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'fuzz/*.cpp')

clean:
	rm -rf $(BUILD) build-asan build-fuzz out
