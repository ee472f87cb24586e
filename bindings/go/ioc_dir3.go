// SPDX-License-Identifier: LGPL-2.1-or-later

//go:build mips || mipsle || mips64 || mips64le || ppc64 || ppc64le

package kprim

// mips and powerpc: 3 direction bits above 13 size bits.
const (
	iocWrite     = 4
	iocRead      = 2
	iocSizeShift = 16
	iocDirShift  = 29
)
