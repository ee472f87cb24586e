// SPDX-License-Identifier: LGPL-2.1-or-later

//go:build !mips && !mipsle && !mips64 && !mips64le && !ppc64 && !ppc64le

package kprim

// asm-generic/ioctl.h: 2 direction bits above 14 size bits.
const (
	iocWrite     = 1
	iocRead      = 2
	iocSizeShift = 16
	iocDirShift  = 30
)
