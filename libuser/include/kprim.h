/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libkprim - host-wide concurrency primitives.
 *
 * Kernel objects shared by every process of the host (through /dev/kprim):
 *   kprim/session.h   connect, list, unlink
 *   kprim/limiter.h   token-bucket rate limiters
 *   kprim/sem.h       counting semaphores whose permits survive no crash
 *   kprim/cache.h     expiring key-value cache
 * In-process building blocks:
 *   kprim/ctx.h       cancellation and deadlines
 *   kprim/chan.h      Go-style channels and select
 *   kprim/pipeline.h  stages, fan-out/fan-in, cancellation
 *   kprim/gates.h     throttle/bound a stage host-wide (limiter, semaphore)
 *   kprim/breaker.h   circuit breaker, local or shared host-wide
 * Not included here (it needs liburing's headers; include it yourself):
 *   kprim/uring.h     the object operations on an io_uring, batched gets
 *
 * Conventions: 0 (or a count) on success, a negative errno on failure;
 * never -1 with errno. Link with -lkprim (pkg-config: kprim).
 */
#ifndef KPRIM_H
#define KPRIM_H

#include "kprim/session.h"
#include "kprim/ctx.h"
#include "kprim/limiter.h"
#include "kprim/sem.h"
#include "kprim/cache.h"
#include "kprim/chan.h"
#include "kprim/pipeline.h"
#include "kprim/gates.h"
#include "kprim/breaker.h"

#endif /* KPRIM_H */
