// SPDX-License-Identifier: LGPL-2.1-or-later

//go:build amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || mips64 || mips64le || loong64

package kprim

import "unsafe"

// uptr is a __u64 holding a user pointer.
type uptr struct{ p unsafe.Pointer }

func mkptr(p unsafe.Pointer) uptr { return uptr{p} }
