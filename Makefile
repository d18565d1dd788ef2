# smtptrace: build, test and demo. `make help` lists the targets.

PREFIX  ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system

CC      ?= cc
PKG_CONFIG ?= pkg-config
BUILD   ?= build

WARN    = -Wall -Wextra -Wpedantic -Wformat=2 -Wshadow -Wstrict-prototypes \
	  -Wmissing-prototypes -Wwrite-strings -Wvla -Wcast-qual -Wnull-dereference \
	  -Werror
HARDEN  = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT     ?= -O2 -g
CFLAGS  ?=
CPPFLAGS += -D_GNU_SOURCE
LDHARDEN = -pie -Wl,-z,relro,-z,now

LIBCONFIG_CFLAGS = $(shell $(PKG_CONFIG) --cflags libconfig 2>/dev/null)
LIBCONFIG_LIBS   = $(shell $(PKG_CONFIG) --libs libconfig 2>/dev/null || echo -lconfig)
MILTER_LIBS      = -lmilter -lpthread
CUNIT_LIBS       = $(shell $(PKG_CONFIG) --libs cunit 2>/dev/null || echo -lcunit)
MHD_CFLAGS       = $(shell $(PKG_CONFIG) --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS         = $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
SYSTEMD_LIBS     = $(shell $(PKG_CONFIG) --libs libsystemd 2>/dev/null || echo -lsystemd)

ALL_CFLAGS = -std=c11 $(OPT) $(WARN) $(HARDEN) $(LIBCONFIG_CFLAGS) $(MHD_CFLAGS) $(CFLAGS) -MMD -MP

# Everything but main.c and mta.c (the libmilter seam) is shared with the tests.
CORE_SRC = milter/sbuf.c milter/escape.c milter/session.c milter/outcome.c milter/cfgstore.c \
	   milter/record.c milter/render.c milter/config.c milter/log.c \
	   milter/callbacks.c milter/header.c milter/codes.c milter/reply.c \
	   milter/registry.c milter/watchdog.c milter/metrics.c milter/expose.c \
	   milter/notify.c milter/reload.c
MILTER_SRC = $(CORE_SRC) milter/mta.c milter/daemon.c milter/httpd.c milter/textfile.c \
	     milter/main.c
# smtptrace-explain --verdicts: the log classifier, the join, the report.
VERDICT_SRC = milter/maillog.c milter/verdict.c milter/summary.c
EXPLAIN_SRC = milter/sbuf.c milter/escape.c milter/codes.c milter/reply.c \
	      milter/session.c milter/outcome.c $(VERDICT_SRC) milter/explain.c
UNIT_SRC = $(wildcard tests/unit/*.c)

CORE_OBJ   = $(CORE_SRC:%.c=$(BUILD)/%.o)
MILTER_OBJ = $(MILTER_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ   = $(UNIT_SRC:%.c=$(BUILD)/%.o)
EXPLAIN_OBJ = $(EXPLAIN_SRC:%.c=$(BUILD)/%.o)
VERDICT_OBJ = $(VERDICT_SRC:%.c=$(BUILD)/%.o)

MILTER_BIN = $(BUILD)/smtptrace-milter
UNIT_BIN   = $(BUILD)/unit-tests
EXPLAIN_BIN = $(BUILD)/smtptrace-explain
# A small rejecting milter for the end-to-end tests (tests/milter).
TEST_MILTER_BIN = $(BUILD)/test-milter

# Debian packages: to build, to run the tests and the demo.
DEPS_BUILD = gcc make pkg-config libmilter-dev libconfig-dev libmicrohttpd-dev libsystemd-dev
DEPS_TEST  = libcunit1-dev postfix swaks python3 python3-prometheus-client prometheus procps
DEPS_BENCH = pflogsumm time

.PHONY: all deps deps-bench check unit cli e2e demo run install clean asan tsan lint help \
	bench bench-explain bench-verdicts bench-watchdog bench-mta install-packages \
	prometheus-check

all: $(MILTER_BIN) $(EXPLAIN_BIN)

$(MILTER_BIN): $(MILTER_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(LIBCONFIG_LIBS) $(MHD_LIBS) $(SYSTEMD_LIBS) $(MILTER_LIBS) $(LDFLAGS)

$(EXPLAIN_BIN): $(EXPLAIN_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ -lpthread $(LDFLAGS)

$(TEST_MILTER_BIN): $(BUILD)/tests/milter/test_milter.o
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(MILTER_LIBS) $(LDFLAGS)

$(UNIT_BIN): $(CORE_OBJ) $(VERDICT_OBJ) $(UNIT_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(LIBCONFIG_LIBS) $(CUNIT_LIBS) $(SYSTEMD_LIBS) -lpthread $(LDFLAGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Imilter -c -o $@ $<

# Installs what is missing, as root, without starting any system MTA.
deps:
	@$(MAKE) -s install-packages PACKAGES="$(DEPS_BUILD) $(DEPS_TEST)"

deps-bench: deps
	@$(MAKE) -s install-packages PACKAGES="$(DEPS_BENCH)"

install-packages:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
	    || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "deps: all packages present"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: run as root to install:$$missing" >&2; exit 1; fi; \
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	export DEBIAN_FRONTEND=noninteractive; \
	guard=""; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	  printf '#!/bin/sh\n# smtptrace deps: start no service while installing\nexit 101\n' \
	    > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1; fi; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	rc=$$?; [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; \
	[ $$rc = 0 ] && echo "deps: done"

unit: $(UNIT_BIN)
	$(UNIT_BIN)

PYTHON ?= /usr/bin/python3

cli: $(EXPLAIN_BIN) $(MILTER_BIN)
	$(PYTHON) tests/cli/test_explain.py
	$(PYTHON) tests/cli/test_verdicts.py $(EXPLAIN_BIN)
	$(PYTHON) tests/cli/test_daemon.py

# Twice: a unix socket with key=value lines, then TCP with JSON lines; then
# stall warnings and metrics, and 500 connections held in DATA at once.
e2e: $(MILTER_BIN) $(EXPLAIN_BIN) $(TEST_MILTER_BIN)
	$(PYTHON) tests/e2e/test_e2e.py
	$(PYTHON) tests/e2e/test_e2e.py --milter-transport inet --log-format json
	$(PYTHON) tests/e2e/test_stall.py
	$(PYTHON) tests/e2e/test_concurrency.py
	$(PYTHON) tests/e2e/test_truth.py

check: deps
	$(MAKE) all $(UNIT_BIN)
	$(MAKE) unit
	$(MAKE) asan
	$(MAKE) tsan
	$(MAKE) cli
	$(MAKE) prometheus-check
	$(MAKE) e2e

prometheus-check:
	bash conf/prometheus/check.sh

# Figures, not pass/fail tests: run on a quiet machine.
bench: bench-explain bench-verdicts bench-watchdog bench-mta

# smtp-source through a private Postfix: no milter vs smtptrace vs smtptrace
# with metrics and stall watching, interleaved; msg/s, ratios, milter CPU, RSS.
bench-mta: deps
	$(MAKE) $(MILTER_BIN)
	$(PYTHON) tests/bench/bench_mta.py

bench-watchdog: $(BUILD)/bench-watchdog
	$(BUILD)/bench-watchdog 1000

$(BUILD)/bench-watchdog: $(BUILD)/tests/bench/bench_watchdog.o $(CORE_OBJ) $(BUILD)/milter/mta.o
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(LIBCONFIG_LIBS) $(SYSTEMD_LIBS) $(MILTER_LIBS) $(LDFLAGS)

bench-explain: deps-bench
	$(MAKE) $(EXPLAIN_BIN)
	$(PYTHON) tests/bench/bench_explain.py

# --verdicts on 1M lines of Postfix log with smtptrace lines mixed in:
# lines/s (target >= 1,000,000) and peak memory.
bench-verdicts: deps-bench
	$(MAKE) $(EXPLAIN_BIN)
	$(PYTHON) tests/bench/bench_verdicts.py $(EXPLAIN_BIN)

demo: deps
	$(MAKE) all
	$(PYTHON) tests/demo.py

run: $(MILTER_BIN)
	$(MILTER_BIN) -f -c conf/smtptrace.conf -p unix:$(CURDIR)/$(BUILD)/milter.sock

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" unit

# The unit suites under ThreadSanitizer: the registry and watchdog tests
# run the real watchdog thread against writer and reader threads.
tsan:
	$(MAKE) BUILD=build-tsan OPT="-O1 -g -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	  HARDEN="-fPIE" unit

lint:
	cppcheck --enable=warning,performance,portability --std=c11 --quiet \
	  --error-exitcode=1 --suppress=missingIncludeSystem -D_GNU_SOURCE milter tests/unit

install: $(MILTER_BIN) $(EXPLAIN_BIN)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/smtptrace \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(UNITDIR)
	install -m 0755 $(MILTER_BIN) $(DESTDIR)$(SBINDIR)/smtptrace-milter
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(EXPLAIN_BIN) $(DESTDIR)$(BINDIR)/smtptrace-explain
	install -m 0644 milter/smtptrace-explain.1 $(DESTDIR)$(MANDIR)/man1/
	[ -e $(DESTDIR)$(SYSCONFDIR)/smtptrace/smtptrace.conf ] || \
	  install -m 0644 conf/smtptrace.conf $(DESTDIR)$(SYSCONFDIR)/smtptrace/smtptrace.conf
	install -m 0644 milter/smtptrace-milter.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 conf/smtptrace.conf.5 $(DESTDIR)$(MANDIR)/man5/
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/smtptrace.service.in > $(DESTDIR)$(UNITDIR)/smtptrace.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/smtptrace.service

clean:
	rm -rf build build-asan build-tsan

help:
	@echo "make           build $(MILTER_BIN)"
	@echo "make deps      install the Debian packages needed (as root)"
	@echo "make check     all tests: unit (CUnit) and end to end on a private Postfix"
	@echo "make demo      a private loopback Postfix with the milter, a few transactions"
	@echo "make bench     benchmarks that print figures (smtptrace-explain vs pflogsumm,"
	@echo "               stall warning lateness, MTA throughput with and without the milter)"
	@echo "make run       the milter in the foreground on $(BUILD)/milter.sock"
	@echo "make asan      unit tests under AddressSanitizer and UBSan"
	@echo "make tsan      unit tests under ThreadSanitizer"
	@echo "make lint      cppcheck"
	@echo "make install   install (DESTDIR, PREFIX honoured)"

-include $(MILTER_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(EXPLAIN_OBJ:.o=.d) $(VERDICT_OBJ:.o=.d) $(BUILD)/tests/milter/test_milter.d
