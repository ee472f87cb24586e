// SPDX-License-Identifier: LGPL-2.1-or-later

#include "textflag.h"

// func cas16(p *uint64, o0, o1, n0, n1 uint64) bool
TEXT ·cas16(SB), NOSPLIT, $0-41
	MOVQ	p+0(FP), DI
	MOVQ	o0+8(FP), AX
	MOVQ	o1+16(FP), DX
	MOVQ	n0+24(FP), BX
	MOVQ	n1+32(FP), CX
	LOCK
	CMPXCHG16B	(DI)
	SETEQ	ret+40(FP)
	RET
