// SPDX-License-Identifier: LGPL-2.1-or-later

//go:build !amd64

package kprim

// Without a 16-byte compare-and-swap (only amd64 has one here) a limiter
// maps no page: every take is the ioctl.
const haveCAS16 = false

func cas16(p *uint64, o0, o1, n0, n1 uint64) bool { return false }

func nanotime() int64 { return 0 }
