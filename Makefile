# peerflash: the commands people type. CMake does the building underneath.
#   make          build the library and build/peerflash (Release, -Werror)
#   make test     install missing packages, build with ASan+UBSan (clang), run all tests (CTest)
#   make demo     flash sample images into simulated targets through the link emulator
#   make bench    print the benchmark table
#   make firmware cross-compile the core for Cortex-M and build/firmware/updater-{mps2,microbit}.elf
#   make deps     only install the Debian packages (scripts/install-deps.sh)
MAKEFLAGS += --no-print-directory
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
TEST_BUILD ?= build-test
CTEST_ARGS ?=

.PHONY: all build deps test demo bench clean fuzz firmware

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: deps build
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
	    -DPF_SANITIZE=ON -DPF_FUZZ=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The demo builds quietly (the log is shown only if the build fails).
demo: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@echo "building peerflash (log: $(BUILD)/build.log)..."
	@cmake --build $(BUILD) -j $(JOBS) >$(BUILD)/build.log 2>&1 || { tail -n 40 $(BUILD)/build.log; exit 1; }
	@bash scripts/demo.sh $(BUILD)

bench: build
	@$(BUILD)/pf-bench

firmware: deps
	@cmake -S firmware -B $(BUILD)/firmware -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/arm-none-eabi.cmake >/dev/null
	@cmake --build $(BUILD)/firmware -j $(JOBS)

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
