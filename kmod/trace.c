// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - the one place the tracepoints of kprim_trace.h are defined.
 */
#define CREATE_TRACE_POINTS
#include "kprim_trace.h"
