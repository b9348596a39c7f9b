# visor-gw build.  Plain GNU make; libraries found with pkg-config.
#
#   make            build bin/visor-gw and bin/visorctl
#   make test       build and run every test (installs missing -dev packages)
#   make demo       the end-to-end demonstration (SPEC section 11)
#   make bench      benchmarks against nginx (SPEC section 12)
#   make fuzz       libFuzzer targets (clang)
#   make SANITIZE=address,undefined test
#   make install PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
PKGS     = openssl libcurl libcjson cmocka sqlite3 libevent libevent_openssl libevent_pthreads

# Library modules, one folder per layer.  Every .c in these folders is part of
# libvisor.a; gateway/ (minus main.c) is libgateway.a so tests can reach it.
LIB_DIRS = util crypto policy certs client adapters
LIB_SRC  = $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
GW_SRC   = $(filter-out gateway/main.c,$(wildcard gateway/*.c))
CTL_SRC  = $(wildcard visorctl/*.c)
SUP_SRC  = $(wildcard tests/support/*.c)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
INTEG_SRC= $(wildcard tests/integration/test_*.c)
BENCH_SRC= $(wildcard tests/bench/bench_*.c)
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)

# -Wformat-truncation is off: its findings depend on the optimisation level
# (the -O1 sanitizer build and the -O2 build disagree), and every snprintf
# here is bounded; where a cut would matter the return value is checked.
WARN    = -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
          -Wmissing-prototypes -Wno-unused-parameter -Wno-format-truncation
HARDEN  = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT    ?= -O2 -g
# Install missing -dev packages before pkg-config is asked (a fresh Debian 12
# machine, as root); does nothing when everything is present.
ifeq ($(filter clean,$(MAKECMDGOALS)),)
DEPS_STATUS := $(shell scripts/deps.sh build >&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error missing build dependencies; see scripts/deps.sh)
endif
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS += -I. -D_GNU_SOURCE
CFLAGS  += $(WARN) $(OPT) $(PKG_CFLAGS)
LDFLAGS += -pie -Wl,-z,relro,-z,now
LDLIBS  += $(PKG_LIBS) -lpthread -lm

ifneq ($(SANITIZE),)
BUILD   := $(BUILD)-san
HARDEN  := -fPIE
OPT     := -O1 -g -fno-omit-frame-pointer
CFLAGS  += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif
CFLAGS += $(HARDEN)

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
GW_OBJ   = $(GW_SRC:%.c=$(BUILD)/%.o)
CTL_OBJ  = $(CTL_SRC:%.c=$(BUILD)/%.o)
SUP_OBJ  = $(SUP_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
INTEG_BIN= $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/%)
BENCH_BIN= $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
# Each fuzz target also builds with a plain driver that replays its corpus:
# the regression run in make test.
REPLAY_BIN= $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/replay/%)

.PHONY: all test unit integration demo bench fuzz fuzz-run install clean deps check-src valgrind man-lint
BINDIR   = $(BUILD)/bin
all: $(BINDIR)/visor-gw $(BINDIR)/visorctl
ifeq ($(SANITIZE),)
	@ln -sfn $(BUILD)/bin bin
endif

$(BINDIR)/visor-gw: $(BUILD)/gateway/main.o $(BUILD)/libgateway.a $(BUILD)/libvisor.a
	@mkdir -p $(BINDIR)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BINDIR)/visorctl: $(CTL_OBJ) $(BUILD)/libgateway.a $(BUILD)/libvisor.a
	@mkdir -p $(BINDIR)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libvisor.a: $(LIB_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/libgateway.a: $(GW_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(SUP_OBJ) $(BUILD)/libgateway.a $(BUILD)/libvisor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/integration/%.o $(SUP_OBJ) $(BUILD)/libgateway.a $(BUILD)/libvisor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(SUP_OBJ) $(BUILD)/libgateway.a $(BUILD)/libvisor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/replay/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay_main.o $(BUILD)/libgateway.a $(BUILD)/libvisor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libFuzzer builds (clang): every library object again with coverage.
FUZZ_BUILD = build-fuzz
FUZZ_CC    = clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -std=c11 -I. -D_GNU_SOURCE $(PKG_CFLAGS)
FUZZ_OBJ   = $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o) $(GW_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_BIN   = $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
SECONDS   ?= 60

# -MMD as in the normal build: an object left stale by a changed header
# (a struct grown in one module, not in its caller) makes false findings.
$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_OBJ)
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS) -lpthread -lm

fuzz:
	@scripts/deps.sh fuzz
	$(MAKE) $(FUZZ_BIN)

fuzz-run: fuzz
	@for t in $(FUZZ_BIN); do n=$$(basename $$t); mkdir -p $(FUZZ_BUILD)/corpus-$$n; \
	  echo "== $$n for $(SECONDS)s"; \
	  $$t -max_total_time=$(SECONDS) -print_final_stats=1 \
	    $$( [ -f tests/fuzz/$$n.dict ] && echo -dict=tests/fuzz/$$n.dict ) \
	    $(FUZZ_BUILD)/corpus-$$n tests/fuzz/corpus/$${n#fuzz_} || exit 1; done

# Unit tests first (no network), then integration tests that start real
# gateways on loopback.  Every binary prints cmocka's summary.
test: all $(UNIT_BIN) $(INTEG_BIN) $(REPLAY_BIN) check-src man-lint
	@scripts/deps.sh test
	@VISOR_BIN=$(abspath $(BINDIR)) VISOR_SRC=$(CURDIR) scripts/run-tests.sh $(BUILD) $(UNIT_BIN) $(REPLAY_BIN) $(INTEG_BIN)

check-src:
	@scripts/check-src.sh

# The man pages must stay lint-clean (mandoc).
man-lint:
	@scripts/deps.sh lint
	@mandoc -T lint -W warning docs/*.1 docs/*.5 docs/*.8 && echo "man-lint: clean"

# The whole suite under valgrind memcheck: every test binary, and (through
# VISOR_VALGRIND, tests/support/gwtest.c) every gateway the integration tests
# start.  Any error, or a definite or indirect leak at exit, is exit status
# 99 and fails the binary; scripts/run-tests.sh prints one line per binary
# and the wall time.  Suppressions: library reports only, each with its
# reason, in tests/valgrind.supp.  VALGRIND_VISORCTL=1 puts every visorctl
# run of the integration tests under memcheck as well (much slower).
VALGRIND_CMD = valgrind --quiet --error-exitcode=99 --leak-check=full \
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
  --num-callers=30 --vgdb=no --suppressions=$(CURDIR)/tests/valgrind.supp
valgrind: all $(UNIT_BIN) $(INTEG_BIN) $(REPLAY_BIN)
ifneq ($(SANITIZE),)
	$(error make valgrind runs the plain build; drop SANITIZE)
endif
	@command -v valgrind >/dev/null || scripts/deps.sh valgrind
	@VISOR_BIN=$(abspath $(BINDIR)) VISOR_SRC=$(CURDIR) \
	  VALGRIND="$(VALGRIND_CMD)" VISOR_VALGRIND_VISORCTL=$(VALGRIND_VISORCTL) \
	  scripts/run-tests.sh $(BUILD) $(UNIT_BIN) $(REPLAY_BIN) $(INTEG_BIN)

demo: all
	@scripts/demo.sh $(BUILD)

bench: all $(BENCH_BIN)
	@scripts/bench.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8 \
	  $(DESTDIR)$(PREFIX)/share/doc/visor-gw
	install -m 0755 $(BINDIR)/visor-gw $(BINDIR)/visorctl $(DESTDIR)$(PREFIX)/bin/
	for m in docs/*.1; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man1/ || true; done
	for m in docs/*.5; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man5/ || true; done
	for m in docs/*.8; do [ -f "$$m" ] && install -m 0644 "$$m" $(DESTDIR)$(PREFIX)/share/man/man8/ || true; done
	for f in docs/visor-gw.service docs/gateway.example.json; do [ -f "$$f" ] && install -m 0644 "$$f" $(DESTDIR)$(PREFIX)/share/doc/visor-gw/ || true; done

clean:
	rm -rf build build-san build-fuzz bin

.SECONDARY:

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
