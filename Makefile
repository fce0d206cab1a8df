# The two commands: `make run` and `make test`. Both build first.
.PHONY: all setup build debug run test unit api bench clean

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

clean:
	rm -rf build
