// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

// A limiter take in userspace, through the limiter's shared state page
// (KPRIM_FEAT_LIMITER_PAGE), as libkprim's limiter_page.h does it: the
// protocol is described with struct kprim_limiter_page in the uapi
// header. A take that finds tokens and no queued taker is a clock read and
// one 16-byte compare-and-swap; anything else goes to the ioctl.

import (
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// kLimiterPage is struct kprim_limiter_page.
type kLimiterPage struct {
	Fill, Stamp, Rate, PeriodNs, Burst, Cap uint64
	Reserved                                [2]uint64
	Admitted                                uint64
}

const (
	pageLast     = 1<<58 - 1        // KPRIM_LIMITER_PAGE_LAST
	pageGen      = 31 << 58         // KPRIM_LIMITER_PAGE_GEN
	pageSlow     = 1 << 63          // KPRIM_LIMITER_PAGE_SLOW
	pageTries    = 4                // KPRIM_PAGE_TRIES
	clockRecheck = 10 * 1000 * 1000 // KPRIM_CLOCK_RECHECK_NS
)

// Whether this process's CLOCK_MONOTONIC is the kernel's: a time
// namespace with a monotonic offset would publish times the other users
// of the page do not share. clockUnknown until checked (at the first
// take); Go programs do not fork without exec, so once is enough, but for
// a setns() into a time namespace, which a long refill looks for.
const (
	clockUnknown = iota
	clockShared
	clockShifted
)

var (
	clockState atomic.Int32
	// CLOCK_REALTIME - CLOCK_MONOTONIC when the clock was last found
	// shared: entering a time namespace shifts the second, not the first.
	clockBase atomic.Int64
)

func clockOffset() int64 { return time.Now().UnixNano() - nanotime() }

// clockCheck reads this process's time namespace offsets: the clock is
// shared when there is no monotonic offset (kprim_clock_check()).
func clockCheck() bool {
	clockBase.Store(clockOffset())
	shared := true
	if b, err := os.ReadFile("/proc/self/timens_offsets"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != "monotonic" {
				continue
			}
			s, e1 := strconv.ParseInt(f[1], 10, 64)
			ns, e2 := strconv.ParseInt(f[2], 10, 64)
			if e1 == nil && e2 == nil && (s != 0 || ns != 0) {
				shared = false
			}
		}
	} else if _, e := os.Stat("/proc/self/ns/time"); e == nil {
		// Time namespaces, offsets unreadable: not trusted.
		shared = false
	} else if _, e := os.Stat("/proc/self/ns"); e != nil {
		// No /proc: a sandbox, perhaps in a time namespace.
		shared = false
	}
	if shared {
		clockState.Store(clockShared)
	} else {
		clockState.Store(clockShifted)
	}
	return shared
}

// clockStill is, before a long refill, whether the clock still is what
// was checked (a wall-clock step gets a new check: kprim_clock_recheck()).
func clockStill() bool {
	d := clockOffset() - clockBase.Load()
	if d >= -clockRecheck && d <= clockRecheck {
		return true
	}
	return clockCheck()
}

// pageRefill brings the bucket {*fill, *last} up to now, as the kernel's
// refill does; false when now does not fit the page's time or a long
// refill finds the clock shifted.
func pageRefill(fill, last *uint64, now, rate, cap uint64) bool {
	if now <= *last {
		return true
	}
	if now > pageLast || (now-*last > clockRecheck && !clockStill()) {
		return false
	}
	hi, add := bits.Mul64(now-*last, rate)
	if hi != 0 || add >= cap-*fill {
		*fill = cap
	} else {
		*fill += add
	}
	*last = now
	return true
}

// pageTake takes n tokens in userspace: false when the ioctl must decide
// (the page says SLOW: a taker is queued or the kernel is at work; the
// bucket is short, which the kernel counts and says when to retry; the
// swap kept losing; this process's clock is not the kernel's).
// Go reads CLOCK_MONOTONIC precisely (the runtime's vDSO read): there is
// no coarse first read as in C.
func pageTake(pg *kLimiterPage, n uint64) bool {
	if st := clockState.Load(); st != clockShared && (st == clockShifted || !clockCheck()) {
		return false
	}
	now := uint64(nanotime())
	for tries := 0; tries < pageTries; tries++ {
		// The kernel stores fill before it releases the stamp.
		stamp := atomic.LoadUint64(&pg.Stamp)
		if stamp&pageSlow != 0 {
			return false
		}
		seen := atomic.LoadUint64(&pg.Fill)
		rate := atomic.LoadUint64(&pg.Rate)
		cap := atomic.LoadUint64(&pg.Cap)
		hi, cost := bits.Mul64(n, atomic.LoadUint64(&pg.PeriodNs))
		if seen > cap || hi != 0 {
			return false
		}
		fill, last := seen, stamp&pageLast
		if !pageRefill(&fill, &last, now, rate, cap) || cost > fill {
			return false
		}
		// Fails if anyone, the kernel included, changed either word.
		if cas16(&pg.Fill, seen, stamp, fill-cost, last|stamp&pageGen) {
			atomic.AddUint64(&pg.Admitted, n)
			return true
		}
	}
	return false
}
