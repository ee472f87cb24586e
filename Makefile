# SPDX-License-Identifier: GPL-2.0
#
# kprim: build, test, demo, install.
#
#   make                 module (against KDIR), libkprim, tools, selftests
#   make check           the whole test pipeline in QEMU, both kernels
#   make demo            boot the VM and show kprim at work
#   make bench           boot the VM and run kprim-bench (kprim next to its peers,
#                        Go's among them: installs golang-go, x/time, x/sync),
#                        timed (bench-time), then in instructions (bench-insn)
#   make bench-time      the timed tables only
#   make bench-insn      1 thread in instructions per operation (QEMU -icount,
#                        one vCPU), with the per-stage breakdown
#   make vm-test         rebuild module + tests, rerun them in the VM (fast)
#   make vm-shell        interactive shell in the test VM (module loaded)
#   make host-test       the library tests that need no module, on this host
#   make check-api       exports = public headers, headers compile with the uapi
#   make host-test-tsan  the same under ThreadSanitizer (build/tsan)
#   make host-test-asan  the same under AddressSanitizer + UBSan (build/asan)
#   make lint            checkpatch, sparse and W=1 on kmod/
#   make model-check     the protocol models (models/*.pml) under spin
#   make install         library, headers, pkg-config, kprimctl, man pages (PREFIX)
#   make man-check       the man pages render without warnings and cover the API
#   make modules_install / headers_install / dkms-install

# The kernel to build the module against: the running one when its headers
# are installed, else the stock Debian kernel the test VM boots.
STOCK_KVER := $(shell bash tools/vm/stock-kver.sh)
KDIR ?= $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
		   /lib/modules/$(STOCK_KVER)/build)

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man

B := build
CC ?= gcc
KPRIM_MAJOR := 1
KPRIM_VERSION := 1.0.0

# kselftest harness headers, taken from Debian's linux-source-6.12.
KSFT_INC ?= $(shell bash tools/vm/ksft-headers.sh)

WFLAGS := -Wall -Wextra -Werror
USER_CFLAGS := -std=gnu11 -O2 -g $(WFLAGS) -pthread -D_GNU_SOURCE \
	       -Ilibuser/include -Ikmod $(CFLAGS)

# Sanitizer builds (host-test-tsan, host-test-asan) are sub-makes with their
# own B and SAN_CFLAGS, so their objects never mix with the normal build's.
# Their tests link dynamically: the sanitizer runtimes do not link -static.
SAN_CFLAGS ?=
TEST_STATIC := -static
ifneq ($(SAN_CFLAGS),)
USER_CFLAGS += $(SAN_CFLAGS) -fno-omit-frame-pointer
TEST_STATIC :=
endif

include libuser/userlib.mk

LIB_SRCS := libuser/session.c libuser/limiter.c libuser/limiter_page.c libuser/sem.c libuser/cache.c \
	    libuser/uring.c $(KPRIM_USERLIB_SRCS)
LIB_OBJS := $(LIB_SRCS:libuser/%.c=$(B)/lib/%.o)
LIB_HDRS := $(wildcard libuser/include/*.h libuser/include/kprim/*.h libuser/*.h) \
	    kmod/uapi/kprim.h

# Every selftests/kprim/*_test.c is a test program run in the VM.
SELFTESTS := $(patsubst selftests/kprim/%.c,%,$(wildcard selftests/kprim/*_test.c))
TEST_BINS := $(SELFTESTS:%=$(B)/tests/%)
HOST_TEST_BINS := $(KPRIM_USERLIB_TESTS:%=$(B)/tests/%)
TOOLS := $(B)/tools/kprimctl $(B)/tools/kprim-bench $(B)/tools/go_peer
EXAMPLES := $(KPRIM_USERLIB_EXAMPLES:%=$(B)/examples/%)

.PHONY: soak dkms-install all module lib tools gobench daemonbench selftests examples check demo bench bench-time bench-insn vm-test vm-shell \
	host-test host-test-run host-test-tsan host-test-asan check-api lint model-check install modules_install headers_install clean distclean

all: module lib tools selftests examples

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 modules

modules_install:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules_install

headers_install:
	install -D -m 644 kmod/uapi/kprim.h $(DESTDIR)$(INCDIR)/linux/kprim.h

# Source tree for DKMS in /usr/src/kprim-<version>, then 'dkms install'.
DKMS_SRC := $(DESTDIR)/usr/src/kprim-$(KPRIM_VERSION)
dkms-install:
	rm -rf $(DKMS_SRC) && install -d $(DKMS_SRC)/kmod
	cp -r Kbuild $(DKMS_SRC)/
	cp $(filter-out %.mod.c,$(wildcard kmod/*.c)) kmod/*.h kmod/Kbuild $(DKMS_SRC)/kmod/
	cp -r kmod/uapi $(DKMS_SRC)/kmod/ && install -d $(DKMS_SRC)/kmod/tests
	cp kmod/tests/*.c $(DKMS_SRC)/kmod/tests/
	sed 's/@VERSION@/$(KPRIM_VERSION)/' tools/dkms.conf > $(DKMS_SRC)/dkms.conf
	@echo "now: dkms install kprim/$(KPRIM_VERSION)"

# --- libkprim ---------------------------------------------------------------
lib: $(B)/libkprim.so.$(KPRIM_VERSION) $(B)/libkprim.a $(B)/kprim.pc

$(B)/lib/%.o: libuser/%.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -fPIC -c -o $@ $<

$(B)/libkprim.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/libkprim.so.$(KPRIM_VERSION): $(LIB_OBJS) libuser/libkprim.map
	$(CC) -shared -pthread -Wl,-soname,libkprim.so.$(KPRIM_MAJOR) \
		-Wl,--version-script=libuser/libkprim.map -o $@ $(LIB_OBJS) -luring
	ln -sf libkprim.so.$(KPRIM_VERSION) $(B)/libkprim.so.$(KPRIM_MAJOR)
	ln -sf libkprim.so.$(KPRIM_MAJOR) $(B)/libkprim.so

$(B)/kprim.pc: libuser/libkprim.pc.in
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCDIR@|$(INCDIR)|; s|@VERSION@|$(KPRIM_VERSION)|' $< > $@

# --- tests, tools, examples: static, so they run in the busybox VM ----------
selftests: $(TEST_BINS) $(B)/tests/go_test

$(B)/tests/%: selftests/kprim/%.c $(wildcard selftests/kprim/*.h) $(B)/libkprim.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) $(TEST_STATIC) -isystem $(KSFT_INC) -o $@ $< $(B)/libkprim.a $(LDLIBS)

$(B)/tests/uring_test $(B)/tests/uring_async_test $(B)/tests/fuzz_test $(B)/tests/lifecycle_test \
	$(B)/tests/attack_test $(B)/tests/attack_mget_test $(B)/tests/attack_async_test \
	$(B)/tests/fault_test $(B)/tests/uring_lib_test $(B)/tests/attack_final_test \
	$(B)/tests/kill_loop_test $(B)/tests/trace_test $(B)/tests/attack_six_test \
	$(B)/tests/attack_seven_test $(B)/tests/attack_eight_test \
	$(B)/tests/attack_nine_test $(B)/tests/attack_ten_test: LDLIBS += -luring

tools: $(TOOLS)

$(B)/tools/%: tools/%.c $(B)/libkprim.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -static -o $@ $< $(B)/libkprim.a -lm $(LDLIBS)

$(B)/tools/kprim-bench: LDLIBS += -luring

# The C side of go_test's cross-language case: not a test itself (every
# program in build/tests is run as one), so it goes to /demo in the VM.
$(B)/tools/go_peer: selftests/kprim/go_peer.c $(B)/libkprim.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -static -o $@ $< $(B)/libkprim.a $(LDLIBS)

# The Go package (bindings/go, import path "kprim"), GOPATH mode against
# Debian's golang-golang-x-{sys,time}-dev: its tests as one static program
# that speaks TAP when run without arguments (the VM's kselftest runner).
GO ?= go
GO_SRCS := $(wildcard bindings/go/*.go bindings/go/*.s)
GO_ENV := GO111MODULE=off GOPATH=$(CURDIR)/$(B)/gopath:/usr/share/gocode \
	  CGO_ENABLED=0 GOCACHE=$(CURDIR)/$(B)/go-cache GOFLAGS=

$(B)/gopath/src/kprim:
	@mkdir -p $(dir $@)
	ln -sfn $(CURDIR)/bindings/go $@

$(B)/tests/go_test: $(GO_SRCS) | $(B)/gopath/src/kprim
	@mkdir -p $(dir $@)
	cd $(B)/gopath/src/kprim && $(GO_ENV) $(GO) vet . && \
		$(GO_ENV) $(GO) test -c -o $(CURDIR)/$@ .

# The Go peers for kprim-bench -x (make bench only): Debian's golang-go and
# golang-golang-x-{time,sync}-dev, GOPATH mode (no network), static; its
# "kprim via Go" rows use bindings/go.
gobench: $(B)/tools/gobench

$(B)/tools/gobench: tools/gobench/gobench.go $(GO_SRCS) | $(B)/gopath/src/kprim
	@mkdir -p $(dir $@)
	cd tools/gobench && $(GO_ENV) $(GO) build -o $(CURDIR)/$@ gobench.go

# The daemon peers for kprim-bench -x (make bench only): memcached through
# libmemcached and Redis through hiredis. Dynamic (Debian ships no static
# libmemcached); the VM gets its libraries with it (mkinitramfs.sh).
daemonbench: $(B)/tools/daemonbench

$(B)/tools/daemonbench: tools/daemonbench/daemonbench.c
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -o $@ $< -lmemcached -lhiredis

examples: $(EXAMPLES)

$(B)/examples/%: libuser/examples/%.c $(B)/libkprim.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -static -o $@ $< $(B)/libkprim.a $(LDLIBS)

$(B)/examples/uring_server: LDLIBS += -luring

# --- the test VM -------------------------------------------------------------
check:
	bash tools/vm/check.sh

vm-test:
	bash tools/vm/check.sh --fast

demo:
	bash tools/vm/check.sh --demo

# Two boots, one after the other: the timed tables, then the same cases in
# instructions (repeatable to the instruction; see README, Performance).
bench:
	bash tools/vm/check.sh --bench
	bash tools/vm/check.sh --bench-insn

bench-time:
	bash tools/vm/check.sh --bench

bench-insn:
	bash tools/vm/check.sh --bench-insn

vm-shell:
	bash tools/vm/check.sh --shell

# Not part of check: KPRIM_SOAK_MIN minutes (default 30) of the fuzzer, the
# race and kill loops on the debug kernel (KPRIM_KERNELS=kcsan for KCSAN).
soak:
	bash tools/vm/check.sh --soak

host-test: check-api host-test-run

# The library's interface: libkprim.so exports exactly the public headers'
# functions and libkprim.a defines nothing outside kprim_; the public
# headers compile alone and with <linux/kprim.h> in either order.
check-api: lib
	CC="$(CC)" bash tools/check-symbols.sh $(B)/libkprim.so $(B)/libkprim.a
	CC="$(CC)" bash tools/check-headers.sh

# Build and run the host tests; also what the sanitizer variants run.
host-test-run: $(HOST_TEST_BINS)
	@set -e; for t in $(HOST_TEST_BINS); do echo "== $$t"; $$t; done

# A report fails the test it happens in: the sanitizers exit non-zero at the
# first one (the kselftest harness counts a test's non-zero exit as failed).
host-test-tsan:
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $(TSAN_OPTIONS)" \
	$(MAKE) B=$(B)/tsan SAN_CFLAGS="-fsanitize=thread" host-test-run

host-test-asan:
	ASAN_OPTIONS="detect_leaks=1 detect_stack_use_after_return=1 $(ASAN_OPTIONS)" \
	UBSAN_OPTIONS="print_stacktrace=1 $(UBSAN_OPTIONS)" \
	$(MAKE) B=$(B)/asan \
		SAN_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
		host-test-run

lint:
	bash tools/vm/lint.sh

# Exhaustive checks of the protocol models (Debian's spin): correct
# configurations must pass, deliberate mutations must fail.
model-check:
	bash models/check.sh

# --- install -----------------------------------------------------------------
install: lib $(B)/tools/kprimctl install-man
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)/kprim \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	install -m 755 $(B)/libkprim.so.$(KPRIM_VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libkprim.so.$(KPRIM_VERSION) $(DESTDIR)$(LIBDIR)/libkprim.so.$(KPRIM_MAJOR)
	ln -sf libkprim.so.$(KPRIM_MAJOR) $(DESTDIR)$(LIBDIR)/libkprim.so
	install -m 644 $(B)/libkprim.a $(DESTDIR)$(LIBDIR)/
	install -m 644 libuser/include/kprim.h $(DESTDIR)$(INCDIR)/
	install -m 644 libuser/include/kprim/*.h $(DESTDIR)$(INCDIR)/kprim/
	install -D -m 644 kmod/uapi/kprim.h $(DESTDIR)$(INCDIR)/linux/kprim.h
	install -m 644 $(B)/kprim.pc $(DESTDIR)$(PKGCONFIGDIR)/
	install -m 755 $(B)/tools/kprimctl $(DESTDIR)$(BINDIR)/
	install -D -m 644 tools/kprimctl.bash-completion \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/kprimctl

# --- man pages ---------------------------------------------------------------
# man/manN/*.N: kprim(7), kprim_ioctl(2), libkprim(3) and its pages (one
# .so link per function), kprimctl(8). man-check renders each with all
# warnings on and checks that every public function, ioctl, feature bit,
# module parameter and kprimctl command is documented.
MAN_PAGES := $(wildcard man/man[1-8]/*.[1-8])

.PHONY: man-check install-man
man-check: lib
	CC="$(CC)" bash tools/man-check.sh $(B)/libkprim.so

install-man:
	@set -e; for d in $(sort $(dir $(MAN_PAGES))); do \
		s=$$(basename $$d); install -d $(DESTDIR)$(MANDIR)/$$s; \
		install -m 644 $$d*.[1-8] $(DESTDIR)$(MANDIR)/$$s/; \
	done; echo "installed $(words $(MAN_PAGES)) man pages in $(DESTDIR)$(MANDIR)"

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf $(B)

distclean: clean
	@echo "the debug kernel cache stays: rm -rf /var/cache/kprim to drop it"
