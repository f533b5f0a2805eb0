# The front door. `make run` and `make test` are the README's two commands: each
# installs what is missing (scripts/setup), configures, builds with -j2, then runs.
JOBS ?= 2
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
RUN_INPUT ?= examples/images
RUN_OUTPUT ?= out/run
PORT ?= 8080
DATA_DIR ?= data

.PHONY: screenshots bench-dashboard goldens all setup configure build run upscale-examples bench-server bench-batch bench-runtime bench-vulkan bench-video bench-video-lanes bench-cluster bench-onnx test test-asan fuzz fuzz-build fuzz-one fuzz-smoke bench format clean

all: build

setup:
	@scripts/setup

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

# The main job on the embedded defaults: the job server on 127.0.0.1:8080, its
# SQLite store and results under data/ (docs/server.md; the README has a curl session).
run: build
	$(BUILD)/tessera serve --host 127.0.0.1 --port $(PORT) --data-dir $(DATA_DIR)

# The example images through the default model (realesr-animevideov3-x4), no server.
upscale-examples: build
	$(BUILD)/tessera upscale -i $(RUN_INPUT) -o $(RUN_OUTPUT)
	@echo "results in $(RUN_OUTPUT)/"

# The fuzz smoke run goes first so that ctest's summary closes the output.
test: build
	@$(MAKE) --no-print-directory fuzz-smoke
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure

# ASan + UBSan build: every suite but the resident-memory bounds (label "memory"),
# which ASan's quarantine of freed memory makes meaningless.
test-asan: setup
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_SANITIZE=ON -DTESSERA_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1 ctest -j$(JOBS) --output-on-failure -LE memory

FUZZERS := fuzz_request_decoder fuzz_param_parser fuzz_plan_payload

fuzz-build: setup
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_FUZZ=ON \
		-DTESSERA_BUILD_TESTS=OFF -DTESSERA_BUILD_BENCH=OFF \
		-DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target $(FUZZERS)

# Each fuzzer for FUZZ_SECONDS (default 60); corpora persist in fuzz/corpus/.
# The .param fuzzer also starts from the installed models' graphs.
fuzz: fuzz-build
	@for f in $(FUZZERS); do $(MAKE) --no-print-directory fuzz-one FUZZER=$$f SECONDS=$(FUZZ_SECONDS) \
		CORPUS=fuzz/corpus/$$f || exit 1; done

# A short run of each for CI.
fuzz-smoke: fuzz-build
	@for f in $(FUZZERS); do $(MAKE) --no-print-directory fuzz-one FUZZER=$$f SECONDS=$(FUZZ_SMOKE_SECONDS) \
		CORPUS=$(BUILD)/fuzz-corpus/$$f || exit 1; done

fuzz-one:
	@mkdir -p $(CORPUS)
	@seeds=fuzz/seeds_request; \
	if [ $(FUZZER) = fuzz_plan_payload ]; then seeds=fuzz/seeds_plan; fi; \
	if [ $(FUZZER) = fuzz_param_parser ]; then seeds=fuzz/seeds_param; \
		cp -n $${TESSERA_MODEL_DIR:-$$HOME/.cache/tessera/models}/*.param $(CORPUS)/ 2>/dev/null || true; fi; \
	build-fuzz/fuzz/$(FUZZER) -max_total_time=$(SECONDS) -print_final_stats=1 -artifact_prefix=$(CORPUS)/ \
		$(CORPUS) $$seeds > $(CORPUS).log 2>&1; rc=$$?; \
	if [ $$rc -ne 0 ]; then tail -n 40 $(CORPUS).log; echo "fuzz: $(FUZZER) failed, see $(CORPUS).log"; exit $$rc; fi; \
	echo "fuzz: $(FUZZER) ran $(SECONDS)s with no crash ($$(grep -o 'number_of_executed_units: *[0-9]*' $(CORPUS).log))"

# The dashboard's pages, light and dark, into docs/images/ (docs/dashboard.md):
# a real server and Debian's chromium. Not part of `make test`, which writes
# nothing into the source tree.
screenshots: build
	TESSERA_BINARY=$(BUILD)/tessera TESSERA_SOURCE_DIR=$(CURDIR) node tests/e2e/screenshots.mjs

# The dashboard on a store of 10 000 jobs: first render, interactive, bytes of the
# first load, and the server's CPU with 50 dashboards open (docs/dashboard.md).
bench-dashboard: build
	TESSERA_BINARY=$(BUILD)/tessera TESSERA_SOURCE_DIR=$(CURDIR) node bench/dashboard/dashboard_bench.mjs

# Golden images from the float64 oracle (needs python3-torch, -numpy, -pil: test tools only).
goldens: setup
	@dpkg-query -W python3-torch python3-numpy python3-pil >/dev/null 2>&1 || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-numpy python3-pil
	/usr/bin/python3 tests/oracle/make_goldens.py

bench: build
	$(BUILD)/bench/worker_bench --benchmark_counters_tabular=true
	$(BUILD)/bench/engine_bench --benchmark_counters_tabular=true
	@$(MAKE) --no-print-directory bench-server
	@$(MAKE) --no-print-directory bench-batch
	@$(MAKE) --no-print-directory bench-runtime

# The job server from outside (3 to 5 minutes): GET /status/{id} with wrk at 64
# connections, submit-to-start latency, a queue of 10 000 jobs (submit rate, memory).
bench-server: build
	$(BUILD)/bench/server_bench

# Image batches vs the raw worker on the same 500 small images (issue 6): images/s and
# the batch path's overhead per image.
bench-runtime: build
	$(BUILD)/bench/runtime_bench --benchmark_counters_tabular=true

# Vulkan: host time per batch of tiles, recorded afresh vs replayed (docs/vulkan.md), on vulkan:0.
bench-vulkan: build
	$(BUILD)/bench/vulkan_bench --benchmark_counters_tabular=true

# Video: frames/s of the model alone vs the whole decode + upscale + encode pipeline (docs/video.md).
bench-video: build
	$(BUILD)/bench/video_bench

# One server video job on 1 lane against 2 (docs/video.md, "Speed").
bench-video-lanes: build
	bench/video_lanes.sh --tessera $(BUILD)/tessera

# Several nodes on one PostgreSQL database (docs/cluster.md): claim throughput, submit -> running.
bench-cluster: build
	$(BUILD)/bench/cluster_bench

bench-batch: build
	$(BUILD)/bench/batch_bench --images 500

# The engine against ONNX Runtime on the same forward pass (bench/onnx/README.md): the
# graph exported from the oracle, same padded input, 2 threads each, default ISA and AVX2.
# Installs its own test tools (python3-torch, npm onnxruntime-node) via bench/onnx/setup.sh.
bench-onnx: configure
	BUILD=$(BUILD) bench/onnx/compare.sh

format:
	@clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'fuzz/*.cpp')

clean:
	rm -rf $(BUILD) build-asan build-fuzz out
