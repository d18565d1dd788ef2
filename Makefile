# smtptrace: build, test and demo. `make help` lists the targets.

PREFIX  ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
# systemd reads units under /usr/local/lib too; the Debian package sets
# UNITDIR=/lib/systemd/system (where Debian 12's dh_installsystemd looks).
UNITDIR ?= $(PREFIX)/lib/systemd/system
DATADIR ?= $(PREFIX)/share/smtptrace
DOCDIR  ?= $(PREFIX)/share/doc/smtptrace

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
# smtptrace-top: json-c, libcurl, ncurses (wide-character build).
JSONC_CFLAGS     = $(shell $(PKG_CONFIG) --cflags json-c 2>/dev/null || echo -I/usr/include/json-c)
JSONC_LIBS       = $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null || echo -ljson-c)
CURL_CFLAGS      = $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS        = $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null || echo -lcurl)
NCURSES_CFLAGS   = $(shell $(PKG_CONFIG) --cflags ncursesw 2>/dev/null)
NCURSES_LIBS     = $(shell $(PKG_CONFIG) --libs ncursesw 2>/dev/null || echo -lncursesw -ltinfo)

ALL_CFLAGS = -std=c11 $(OPT) $(WARN) $(HARDEN) $(LIBCONFIG_CFLAGS) $(MHD_CFLAGS) $(CFLAGS) -MMD -MP

# Everything but main.c and mta.c (the libmilter seam) is shared with the tests.
CORE_SRC = milter/sbuf.c milter/escape.c milter/session.c milter/outcome.c milter/cfgstore.c \
	   milter/record.c milter/render.c milter/config.c milter/log.c milter/logqueue.c \
	   milter/callbacks.c milter/header.c milter/codes.c milter/reply.c \
	   milter/registry.c milter/live.c milter/watchdog.c milter/metrics.c milter/expose.c \
	   milter/notify.c milter/reload.c
MILTER_SRC = $(CORE_SRC) milter/mta.c milter/daemon.c milter/httpd.c milter/textfile.c \
	     milter/main.c
# smtptrace-explain --verdicts: the log classifier, the join, the report.
VERDICT_SRC = milter/maillog.c milter/maillog_sendmail.c milter/verdict.c milter/verdict_out.c \
	      milter/verdict_run.c milter/summary.c
EXPLAIN_SRC = milter/sbuf.c milter/escape.c milter/codes.c milter/reply.c \
	      milter/session.c milter/outcome.c $(VERDICT_SRC) milter/explain.c
# smtptrace-top: the pure parts (also in the unit tests), then the I/O around them.
TOP_PURE_SRC = milter/top_str.c milter/top_model.c milter/top_prom.c milter/top_rates.c \
	       milter/top_state.c milter/top_layout.c milter/top_text.c milter/top_conf.c
TOP_IO_SRC = milter/top_fetch.c milter/top_poll.c milter/top_view.c milter/smtptrace_top.c
UNIT_SRC = $(wildcard tests/unit/*.c)

CORE_OBJ   = $(CORE_SRC:%.c=$(BUILD)/%.o)
MILTER_OBJ = $(MILTER_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ   = $(UNIT_SRC:%.c=$(BUILD)/%.o)
EXPLAIN_OBJ = $(EXPLAIN_SRC:%.c=$(BUILD)/%.o)
VERDICT_OBJ = $(VERDICT_SRC:%.c=$(BUILD)/%.o)
TOP_PURE_OBJ = $(TOP_PURE_SRC:%.c=$(BUILD)/%.o)
TOP_OBJ    = $(TOP_PURE_OBJ) $(TOP_IO_SRC:%.c=$(BUILD)/%.o)

MILTER_BIN = $(BUILD)/smtptrace-milter
UNIT_BIN   = $(BUILD)/unit-tests
EXPLAIN_BIN = $(BUILD)/smtptrace-explain
TOP_BIN    = $(BUILD)/smtptrace-top
# A small rejecting milter for the end-to-end tests (tests/milter).
TEST_MILTER_BIN = $(BUILD)/test-milter

# Debian packages: to build, to run the tests and the demo.
DEPS_BUILD = gcc make pkg-config libmilter-dev libconfig-dev libmicrohttpd-dev libsystemd-dev \
	     libncurses-dev libcurl4-openssl-dev libjson-c-dev
DEPS_TEST  = libcunit1-dev postfix swaks python3 python3-prometheus-client prometheus procps \
	     python3-pyte \
	     clang libclang-rt-14-dev llvm
DEPS_BENCH = pflogsumm time
# To build the Debian package (make deb) and check it (make package-check:
# systemd-analyze, systemd-sysusers, strace, man; systemd-nspawn boots a
# throw-away container with systemd as PID 1 to start the unit for real).
DEPS_PACKAGE = build-essential debhelper dpkg-dev lintian systemd strace man-db \
	       systemd-container iproute2 python3

.PHONY: all deps deps-bench check unit cli e2e demo run install clean asan tsan lint help \
	uninstall deb deps-package package-check \
	bench bench-explain bench-verdicts bench-watchdog bench-mta install-packages \
	prometheus-check

all: $(MILTER_BIN) $(EXPLAIN_BIN) $(TOP_BIN)

$(MILTER_BIN): $(MILTER_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(LIBCONFIG_LIBS) $(MHD_LIBS) $(SYSTEMD_LIBS) $(MILTER_LIBS) $(LDFLAGS)

$(EXPLAIN_BIN): $(EXPLAIN_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ -lpthread $(LDFLAGS)

$(TOP_BIN): $(BUILD)/milter/sbuf.o $(TOP_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(CURL_LIBS) $(NCURSES_LIBS) $(JSONC_LIBS) \
	  $(LIBCONFIG_LIBS) -lm $(LDFLAGS)

# The headers of json-c, libcurl and ncurses: for smtptrace-top's objects only.
$(TOP_OBJ) $(BUILD)/tests/unit/test_top.o: ALL_CFLAGS += $(JSONC_CFLAGS) $(CURL_CFLAGS) \
	$(NCURSES_CFLAGS)

$(TEST_MILTER_BIN): $(BUILD)/tests/milter/test_milter.o
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(MILTER_LIBS) $(LDFLAGS)

$(UNIT_BIN): $(CORE_OBJ) $(VERDICT_OBJ) $(TOP_PURE_OBJ) $(UNIT_OBJ)
	$(CC) $(ALL_CFLAGS) $(LDHARDEN) -o $@ $^ $(LIBCONFIG_LIBS) $(CUNIT_LIBS) $(SYSTEMD_LIBS) $(JSONC_LIBS) -lm -lpthread $(LDFLAGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Imilter -c -o $@ $<

# Installs what is missing, as root, without starting any system MTA.
deps:
	@$(MAKE) -s install-packages PACKAGES="$(DEPS_BUILD) $(DEPS_TEST)"

deps-bench: deps
	@$(MAKE) -s install-packages PACKAGES="$(DEPS_BENCH)"

deps-package:
	@$(MAKE) -s install-packages PACKAGES="$(DEPS_BUILD) $(DEPS_PACKAGE)"

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

cli: $(EXPLAIN_BIN) $(MILTER_BIN) $(TOP_BIN)
	$(PYTHON) tests/cli/test_explain.py
	$(PYTHON) tests/cli/test_verdicts.py $(EXPLAIN_BIN)
	$(PYTHON) tests/cli/test_daemon.py
	$(PYTHON) tests/cli/test_top.py $(TOP_BIN)
	$(MAKE) top-asan

# smtptrace-top's cases again (--once, bad input, the screen), built with ASan and UBSan.
TOP_ASAN_BUILD = $(BUILD)/asan-top

top-asan:
	$(MAKE) BUILD=$(TOP_ASAN_BUILD) OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" $(TOP_ASAN_BUILD)/smtptrace-top
	$(PYTHON) tests/cli/test_top.py $(TOP_ASAN_BUILD)/smtptrace-top

.PHONY: top-asan

# Twice: a unix socket with key=value lines, then TCP with JSON lines; then
# stall warnings and metrics, every session in /transactions and /recent, and
# 500 connections held in DATA at once.
e2e: $(MILTER_BIN) $(EXPLAIN_BIN) $(TEST_MILTER_BIN) $(TOP_BIN) deps-sendmail
	$(PYTHON) tests/e2e/test_e2e.py
	$(PYTHON) tests/e2e/test_e2e.py --milter-transport inet --log-format json
	$(PYTHON) tests/e2e/test_stall.py
	$(PYTHON) tests/e2e/test_sessions.py
	$(PYTHON) tests/e2e/test_concurrency.py
	$(PYTHON) tests/e2e/test_truth.py
	$(PYTHON) tests/e2e/test_top.py --milter $(MILTER_BIN) --top $(TOP_BIN)
	$(PYTHON) tests/e2e/test_sendmail.py

# Faults tried end to end (tests/e2e/test_faults.py): the milter killed under
# load, 2,000 sessions, a low descriptor limit, allocation failures (an
# LD_PRELOAD shim, tests/faults/failalloc.c), the metrics file's directory gone
# or its disk full, no syslog socket, stuck /metrics clients, an EOM with body.
FAILALLOC_SO = $(BUILD)/tests/faults/failalloc.so

$(FAILALLOC_SO): tests/faults/failalloc.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g $(WARN) -D_GNU_SOURCE -fPIC -shared -o $@ $<

faults: $(MILTER_BIN) $(FAILALLOC_SO)
	SMTPTRACE_MILTER=$(CURDIR)/$(MILTER_BIN) $(PYTHON) tests/e2e/test_faults.py \
	  --failalloc $(FAILALLOC_SO)

# The end-to-end suite once against the milter under ASan and UBSan.
ASAN_E2E_BUILD = build-asan-e2e

asan-e2e:
	$(MAKE) BUILD=$(ASAN_E2E_BUILD) \
	  OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" $(ASAN_E2E_BUILD)/smtptrace-milter
	$(PYTHON) tests/faults/asan_e2e.py $(ASAN_E2E_BUILD)/smtptrace-milter

.PHONY: faults asan-e2e

check: deps
	$(MAKE) all $(UNIT_BIN)
	$(MAKE) unit
	$(MAKE) asan
	$(MAKE) tsan
	$(MAKE) cli
	$(MAKE) prometheus-check
	$(MAKE) e2e
	$(MAKE) faults
	$(MAKE) asan-e2e
	$(MAKE) fuzz-check
	$(MAKE) package-check

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

# A real Sendmail 8.17 beside Postfix for tests/e2e/test_sendmail.py and the
# demo: Debian's packages unpacked into build/sendmail-root/, never installed
# (sendmail-bin conflicts with postfix); fetched once, from the package mirror
# (tests/harness/sendmail.py). Its libraries and m4 are ordinary packages.
DEPS_SENDMAIL = m4 libdb5.3 libldap-2.5-0 liblockfile1 libnsl2 libsasl2-2 libssl3 util-linux

deps-sendmail:
	@$(MAKE) -s install-packages PACKAGES="$(DEPS_SENDMAIL)"
	@cd tests && $(PYTHON) -m harness.sendmail --fetch

demo-sendmail: deps deps-sendmail
	$(MAKE) all
	$(PYTHON) tests/demo_sendmail.py

.PHONY: deps-sendmail demo-sendmail

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

# What make install writes besides the programs and the unit. Man pages:
# whichever exist (a wildcard), so a new page needs no change here.
MAN1 = $(wildcard milter/*.1)
MAN5 = $(wildcard conf/*.5)
MAN8 = $(wildcard milter/*.8)
PROM_FILES = conf/prometheus/smtptrace.rules.yml conf/prometheus/smtptrace.rules.test.yml \
	     conf/prometheus/smtptrace-dashboard.json
CONF_FILE = $(DESTDIR)$(SYSCONFDIR)/smtptrace/smtptrace.conf

# The configuration only if there is none (an existing one is never
# replaced). The unit with this install's paths filled in.
install: $(MILTER_BIN) $(EXPLAIN_BIN) $(TOP_BIN)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/smtptrace \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DATADIR)/prometheus $(DESTDIR)$(DOCDIR)
	install -m 0755 $(MILTER_BIN) $(DESTDIR)$(SBINDIR)/smtptrace-milter
	install -m 0755 $(EXPLAIN_BIN) $(DESTDIR)$(BINDIR)/smtptrace-explain
	install -m 0755 $(TOP_BIN) $(DESTDIR)$(BINDIR)/smtptrace-top
	$(if $(MAN1),install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MAN5),install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/)
	$(if $(MAN8),install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/)
	[ -e $(CONF_FILE) ] || install -m 0644 conf/smtptrace.conf $(CONF_FILE)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	  systemd/smtptrace.service.in > $(DESTDIR)$(UNITDIR)/smtptrace.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/smtptrace.service
	install -m 0644 $(PROM_FILES) $(DESTDIR)$(DATADIR)/prometheus/
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 conf/prometheus/README.md $(DESTDIR)$(DOCDIR)/README.prometheus.md

# Removes what install wrote, and the directories of smtptrace's own
# (shared ones such as $(BINDIR) or man8 stay, even if empty). The
# configuration goes only if it is still the one this tree ships; a
# changed one is kept, and said so.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/smtptrace-milter $(DESTDIR)$(BINDIR)/smtptrace-explain \
	  $(DESTDIR)$(BINDIR)/smtptrace-top \
	  $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1))) \
	  $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5))) \
	  $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8))) \
	  $(DESTDIR)$(UNITDIR)/smtptrace.service \
	  $(addprefix $(DESTDIR)$(DATADIR)/prometheus/,$(notdir $(PROM_FILES))) \
	  $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/README.prometheus.md
	rmdir --ignore-fail-on-non-empty $(DESTDIR)$(DATADIR)/prometheus $(DESTDIR)$(DATADIR) \
	  $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@if cmp -s conf/smtptrace.conf $(CONF_FILE); then \
	  echo "rm -f $(CONF_FILE)"; rm -f $(CONF_FILE); \
	  rmdir $(DESTDIR)$(SYSCONFDIR)/smtptrace 2>/dev/null || true; \
	elif [ -e $(CONF_FILE) ]; then \
	  echo "uninstall: kept $(CONF_FILE): it differs from the one installed"; fi
	@if [ -L $(DESTDIR)$(SYSCONFDIR)/systemd/system/multi-user.target.wants/smtptrace.service ]; \
	then echo "uninstall: the unit is still enabled: systemctl disable --now smtptrace"; fi

# The Debian package (debian/), built in a copy of this tree under
# $(DEB_DIR), so the build's files (and dpkg-buildpackage's output in the
# parent directory) stay in $(DEB_DIR): smtptrace_VERSION_amd64.deb there.
DEB_DIR     = build/deb
DEB_VERSION = $(shell sed -n 's/^\#define SMTPTRACE_VERSION "\(.*\)"/\1/p' milter/version.h)
DEB_SRC     = $(DEB_DIR)/smtptrace-$(DEB_VERSION)

deb: deps-package
	rm -rf $(DEB_SRC) $(DEB_DIR)/smtptrace_* $(DEB_DIR)/smtptrace-dbgsym_*
	mkdir -p $(DEB_SRC)
	tar -c --exclude=./.git --exclude='./build*' --exclude=./debian/smtptrace \
	  --exclude=./debian/.debhelper --exclude=./debian/build --exclude=./debian/files \
	  --exclude='./debian/*.substvars' --exclude='./debian/*debhelper*' . | tar -x -C $(DEB_SRC)
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS dpkg-buildpackage -b -us -uc
	rm -rf $(DEB_SRC)
	@ls $(DEB_DIR)/smtptrace_$(DEB_VERSION)_*.deb

# As root: builds, lints, installs and purges the package on this machine
# (which has no systemd as PID 1), then boots a throw-away container with
# systemd to start the unit for real; make install and uninstall into a
# DESTDIR; the unit's security score and sandbox (tests/package).
package-check: deps-package
	$(PYTHON) tests/package/test_package.py

# libFuzzer targets (tests/fuzz/README.md), built with clang into $(FUZZ_BUILD).
# FUZZ_KNOWN_BUGS=1 also asserts the properties known to be broken now (the
# README's table; reproducers in tests/fuzz/crashes/), into build-fuzz-strict.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz$(if $(filter 1,$(FUZZ_KNOWN_BUGS)),-strict)
FUZZ_SECONDS ?= 60
FUZZ_CHECK_SECONDS ?= 10
# make check: this many inputs past the corpus, from seed 1, for each target
FUZZ_CHECK_RUNS ?= 3000
FUZZ_KNOWN_BUGS ?= 0
FUZZ_TARGETS = fuzz_render fuzz_callbacks fuzz_reply fuzz_config fuzz_logreader
FUZZ_SAN     = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	       -fno-omit-frame-pointer
FUZZ_CFLAGS  = -std=c11 -O1 -g $(FUZZ_SAN) $(filter-out -Werror,$(WARN)) $(LIBCONFIG_CFLAGS) \
	       -DFUZZ_KNOWN_BUGS=$(FUZZ_KNOWN_BUGS) -DFUZZ_TOP='"$(CURDIR)"' -MMD -MP
FUZZ_COMMON_OBJ = $(FUZZ_BUILD)/tests/fuzz/fuzz_common.o $(FUZZ_BUILD)/tests/fuzz/formats.o
FUZZ_CORE_OBJ = $(CORE_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/tests/unit/fake_mta.o
# The --log reader is compiled into its target (it includes explain.c); its
# standard input comes through -Wl,--wrap=read (tests/fuzz/fuzz_logreader.c).
FUZZ_EXPLAIN_OBJ = $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(filter-out milter/explain.c,$(EXPLAIN_SRC)))
FUZZ_BINS    = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

.PHONY: fuzz fuzz-check fuzz-build fuzz-coverage

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-check: fuzz-build
	rm -rf $(FUZZ_BUILD)/corpus
	FUZZ_RUNS=$(FUZZ_CHECK_RUNS) FUZZ_SEED=1 \
	  sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_CHECK_SECONDS) $(FUZZ_TARGETS)

# Line and branch coverage of milter/ reached by the seeds and what fuzzing found.
FUZZ_COV_BUILD ?= build-fuzz-cov
fuzz-coverage:
	$(MAKE) fuzz-build FUZZ_BUILD=$(FUZZ_COV_BUILD) \
	  FUZZ_SAN="-fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping"
	sh tests/fuzz/coverage.sh $(FUZZ_COV_BUILD) $(FUZZ_BUILD) $(FUZZ_TARGETS)

$(FUZZ_BUILD)/fuzz_logreader: $(FUZZ_BUILD)/tests/fuzz/fuzz_logreader.o $(FUZZ_EXPLAIN_OBJ) \
			      $(FUZZ_COMMON_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -Wl,--wrap=read -o $@ $^ -lpthread

# The libraries the unit tests link CORE_SRC with.
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_CORE_OBJ) $(FUZZ_COMMON_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -o $@ $^ $(LIBCONFIG_LIBS) $(SYSTEMD_LIBS) -lpthread

# Objects reached only through the pattern rules above: keep them between runs.
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/%.o) $(FUZZ_CORE_OBJ) \
	    $(FUZZ_COMMON_OBJ) $(FUZZ_EXPLAIN_OBJ)

# Our own fuzz code builds with -Werror; milter/ with clang's warnings shown.
$(FUZZ_BUILD)/tests/fuzz/%.o: FUZZ_WERROR = -Werror
$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_WERROR) -Imilter -Itests/unit -Itests/fuzz \
	  -c -o $@ $<

-include $(wildcard $(FUZZ_BUILD)/milter/*.d $(FUZZ_BUILD)/tests/*/*.d)

clean:
	rm -rf build build-asan build-tsan build-fuzz build-fuzz-strict build-fuzz-cov

help:
	@echo "make           build $(MILTER_BIN)"
	@echo "make deps      install the Debian packages needed (as root)"
	@echo "make check     all tests: unit (CUnit) and end to end on a private Postfix"
	@echo "make demo      a private loopback Postfix with the milter, a few transactions"
	@echo "make demo-sendmail  the same through a private Sendmail 8.17 (make deps-sendmail)"
	@echo "make bench     benchmarks that print figures (smtptrace-explain vs pflogsumm,"
	@echo "               stall warning lateness, MTA throughput with and without the milter)"
	@echo "make run       the milter in the foreground on $(BUILD)/milter.sock"
	@echo "make asan      unit tests under AddressSanitizer and UBSan"
	@echo "make tsan      unit tests under ThreadSanitizer"
	@echo "make faults    faults end to end: milter killed, 2,000 sessions, fd limit, no memory, ..."
	@echo "make asan-e2e  the end-to-end suite against a milter built with ASan and UBSan"
	@echo "make lint      cppcheck"
	@echo "make fuzz      each libFuzzer target for FUZZ_SECONDS (60) seconds (tests/fuzz)"
	@echo "make fuzz-check  the same for FUZZ_CHECK_SECONDS (10), as make check does"
	@echo "make fuzz-coverage  line and branch coverage of milter/ the fuzz corpora reach"
	@echo "make install   install (DESTDIR, PREFIX honoured); make uninstall removes it"
	@echo "make deb       the Debian package, into $(DEB_DIR)/"
	@echo "make package-check  build, lint, install and purge the package (as root)"

-include $(MILTER_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(EXPLAIN_OBJ:.o=.d) $(VERDICT_OBJ:.o=.d) $(TOP_OBJ:.o=.d) $(BUILD)/tests/milter/test_milter.d
