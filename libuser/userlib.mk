# libkprim in-process parts (context, channels, pipelines, breaker).
# Included from the top Makefile; paths are relative to the repo root.
KPRIM_USERLIB_SRCS := libuser/ctx.c libuser/chan.c libuser/pipeline.c libuser/breaker.c \
	libuser/breaker_shared.c libuser/gates.c
KPRIM_USERLIB_HDRS := libuser/include/kprim/ctx.h libuser/include/kprim/chan.h \
	libuser/include/kprim/pipeline.h libuser/include/kprim/breaker.h \
	libuser/include/kprim/gates.h
# kselftest binaries: selftests/kprim/<name>.c, need no kernel module.
# (lib_test, breaker_shared_test and pipeline_gate_test need /dev/kprim:
# they run in the VM only, like every selftests/kprim/*_test.c.)
KPRIM_USERLIB_TESTS := ctx_test chan_test pipeline_test breaker_test lib_attack_test
# libuser/examples/<name>.c
KPRIM_USERLIB_EXAMPLES := pipeline_square fanout pipeline_limited breaker_demo \
	uring_server
KPRIM_USERLIB_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -O2 -pthread -fPIC \
	-Ilibuser/include
# Tests: put the kselftest headers on the system path (-isystem <src>/
# tools/testing/selftests) so the harness's own unused parameters do not
# trip -Wextra -Werror.
