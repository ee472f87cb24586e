// SPDX-License-Identifier: LGPL-2.1-or-later

//go:build 386 || arm || mipsle

package kprim

import "unsafe"

// uptr is a __u64 holding a user pointer: the pointer in the low word
// (little endian), zero above.
type uptr struct {
	p unsafe.Pointer
	_ uint32
}

func mkptr(p unsafe.Pointer) uptr { return uptr{p: p} }
