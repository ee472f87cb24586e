// SPDX-License-Identifier: LGPL-2.1-or-later

//go:build amd64

package kprim

import _ "unsafe" // go:linkname

// haveCAS16: the limiter page's take needs a 16-byte compare-and-swap.
const haveCAS16 = true

// cas16 is LOCK CMPXCHG16B (limpage_amd64.s): if {p[0], p[1]} is
// {o0, o1}, it becomes {n0, n1} and cas16 is true. p is 16-byte aligned.
//
//go:noescape
func cas16(p *uint64, o0, o1, n0, n1 uint64) bool

// nanotime is the runtime's CLOCK_MONOTONIC in ns (the vDSO's
// clock_gettime(CLOCK_MONOTONIC), runtime/sys_linux_amd64.s), the clock
// the kernel stamps the page with.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64
