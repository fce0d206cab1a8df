# The two commands: `make run` and `make test`. Both build first.
.PHONY: all setup build debug run test unit api bench fuzz asan tsan clean

all: build

setup:
	@scripts/setup

build: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release

debug: setup
	@cmake --preset debug >/dev/null
	@cmake --build --preset debug

run: build
	./build/release/cdx serve --demo --data-dir data

test: build
	@scripts/test

unit: build
	@ctest --test-dir build/release --output-on-failure -j2

api: build
	@scripts/test api

bench: build
	@bench/run

# libFuzzer targets, FUZZ_SECONDS each (default 600); `make test` runs them for 30 s each.
fuzz: setup
	@scripts/fuzz

# The API suite against an ASan + UBSan build; the concurrent pieces' unit tests under TSan.
asan: setup
	@scripts/asan

tsan: setup
	@scripts/tsan

clean:
	rm -rf build
