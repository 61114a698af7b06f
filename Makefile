# People's entry points; CMake + CTest do the work underneath.
#   make        build everything into build/ (tests run from this build: ASan + UBSan)
#   make demo   flash a local Linux node, update it over the network, show the result
#   make test   every test (unit, integration) under the sanitizers
#   make bench  benchmarks, from an optimised build without sanitizers (build-bench/)
#   make valgrind  unit tests, fuzz corpus and a node taking an upload under valgrind
#   make fuzz   libFuzzer targets (clang), FUZZ_SECONDS each (default 60)
#   make footprint  code size and RAM of the core cross-compiled for ESP8266 and Cortex-M4
#   make install [PREFIX=/usr/local] [INSTALL_TOOLS=OFF]  the core (lib, headers, CMake
#               package ota::core, pkg-config ota-core) and the tools ota, ota-boot, from
#               an optimised build without sanitizers or tests (build-install/)
BUILD       ?= build
BENCH_BUILD ?= build-bench
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX      ?= /usr/local
INSTALL_BUILD ?= build-install
INSTALL_TOOLS ?= ON

.PHONY: all deps build demo test bench valgrind fuzz footprint install clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTA_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@./scripts/demo.sh $(BUILD)/bin

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: deps
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DOTA_SANITIZE=OFF >/dev/null
	@cmake --build $(BENCH_BUILD) -j $(JOBS)
	@./bench/run.sh $(BENCH_BUILD)/bin

valgrind: deps
	@cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=Debug -DOTA_SANITIZE=OFF >/dev/null
	@cmake --build build-valgrind -j $(JOBS)
	@./scripts/valgrind.sh build-valgrind

fuzz: deps
	@./scripts/fuzz.sh

footprint:
	@./scripts/deps.sh footprint
	@./scripts/footprint.sh build-footprint

install:
	@cmake -S . -B $(INSTALL_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTA_SANITIZE=OFF \
	  -DOTA_BUILD_TOOLS=$(INSTALL_TOOLS) -DOTA_BUILD_TESTS=OFF -DOTA_INSTALL=ON >/dev/null
	@cmake --build $(INSTALL_BUILD) -j $(JOBS)
	@cmake --install $(INSTALL_BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(BENCH_BUILD) build-valgrind build-footprint build-fuzz build-install
