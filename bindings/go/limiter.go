// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

import (
	"context"
	"fmt"
	"math"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
)

// Limit is x/time/rate's: events per second. rate.Every and rate.Inf work
// as they do there.
type Limit = rate.Limit

// Inf is the infinite rate limit (rate.Inf).
const Inf = rate.Inf

// Every converts a minimum time between events to a Limit (rate.Every).
func Every(interval time.Duration) Limit { return rate.Every(interval) }

// A Limiter is a token bucket in the kernel, shared by every process that
// opens its name, with the method set of x/time/rate's *rate.Limiter.
// The kernel keeps exact integer time and serves waiters in FIFO order.
// Methods are safe for concurrent use.
//
// Differences from x/time/rate: there is no Reserve (the kernel queues
// waiters itself and holds no reservations to cancel); the kernel's clock
// decides, so the time arguments of AllowN are ignored; Tokens counts
// whole tokens; and n above the burst fails even at an Inf limit (the
// bucket holds burst tokens).
//
// Where the module has limiter state pages (KPRIM_FEAT_LIMITER_PAGE) and
// the machine a 16-byte compare-and-swap (amd64), as the C library does,
// a Limiter maps the limiter's page, shared by every process that uses
// it, and a take that finds the tokens there while nobody waits (Allow,
// AllowN, and WaitN when it need not wait) is a clock read and one atomic
// compare-and-swap, no system call. Everything else (a taker queued, the
// bucket short, n above the burst) goes to the kernel, with the same FIFO
// order, counts and results. A process whose CLOCK_MONOTONIC is shifted
// by a time namespace does not use the page. The environment variable
// KPRIM_NO_LIMITER_PAGE set (to anything but "0") when a handle is opened
// turns its page off: every take is then an ioctl.
type Limiter struct {
	object
	pg *kLimiterPage // in object.page, nil without one; read under mu
}

// OpenLimiter creates or opens the limiter name ("" for an anonymous one)
// with the C library's flags (Create, Excl, Transient, Owned, AnyOwner,
// Inherit) and, for a new limiter, permission bits mode (e.g. 0600), limit
// r and burst b; a new limiter starts with a full bucket, as
// rate.NewLimiter does. The parameters of an existing limiter do not
// change (they must still be valid with Create).
func OpenLimiter(name string, flags Flag, mode uint32, r Limit, b int) (*Limiter, error) {
	return openLimiter(name, flags, mode, r, b, -1)
}

// OpenLimiterInitial is OpenLimiter with initial tokens in a new bucket.
func OpenLimiterInitial(name string, flags Flag, mode uint32, r Limit, b, initial int) (*Limiter, error) {
	if initial < 0 {
		return nil, unix.EINVAL
	}
	return openLimiter(name, flags, mode, r, b, initial)
}

func openLimiter(name string, flags Flag, mode uint32, r Limit, b, initial int) (*Limiter, error) {
	var a kOpen
	if b < 1 {
		return nil, unix.EINVAL
	}
	rt, per := toKernelRate(r, uint64(b))
	a.Params[0], a.Params[1], a.Params[2] = rt, per, uint64(b)
	if initial >= 0 {
		a.Flags = openInitial
		a.Params[3] = uint64(initial)
	}
	fd, err := openObject(kindLimiter, name, flags, mode, &a)
	if err != nil {
		return nil, err
	}
	lim := &Limiter{object: newObject(fd)}
	if haveCAS16 {
		lim.page = mapPage(fd, featLimiterPage, "KPRIM_NO_LIMITER_PAGE")
	}
	if lim.page != nil {
		lim.pg = (*kLimiterPage)(unsafe.Pointer(&lim.page[0]))
	}
	return lim, nil
}

// Close closes the handle; the limiter lives on while named or open
// elsewhere. Waits in progress on it end with an error.
func (lim *Limiter) Close() error { return lim.close() }

// toKernelRate expresses l events/s as rate tokens every period ns, which
// the kernel keeps exactly: integer rates per second, and Every(d) as one
// token per d, are exact; anything else is the nearest fraction with a
// period of at most 10^6 s. burst*period must fit 64 bits (the kernel's
// bucket size in its units). Inf is 2^62 tokens per ns: the bucket is full
// whenever it is looked at. A limit of 0 or less is one token per the
// longest period the burst allows (centuries), and so is
// any limit too slow for it.
func toKernelRate(l Limit, burst uint64) (uint64, uint64) {
	maxPer := math.MaxUint64 / burst
	switch {
	case l == Inf || float64(l) >= 1<<62:
		return 1 << 62, 1
	case l <= 0 || math.IsNaN(float64(l)):
		return 1, maxPer
	}
	f := float64(l)
	if f == math.Trunc(f) && 1e9 <= maxPer {
		return uint64(f), 1e9
	}
	if d := 1e9 / f; math.Abs(d-math.Round(d)) < 0.01 && d < float64(maxPer) {
		return 1, uint64(math.Round(d))
	}
	per := uint64(1e9)
	for per < 1e15 && per*10 <= maxPer && f*float64(per)/1e9 != math.Trunc(f*float64(per)/1e9) {
		per *= 10
	}
	r := math.Round(f * float64(per) / 1e9)
	if r < 1 {
		// Slower than one token per 11 days: one token per period,
		// as long a period as the burst allows.
		if d := math.Round(1e9 / f); d < float64(maxPer) {
			return 1, uint64(d)
		}
		return 1, maxPer
	}
	return uint64(r), per
}

func fromKernelRate(r, per uint64) Limit {
	if r >= 1<<62 && per == 1 {
		return Inf
	}
	return Limit(float64(r) * 1e9 / float64(per))
}

func (lim *Limiter) info() (kLimiterInfo, error) {
	i := kLimiterInfo{Size: uint32(unsafe.Sizeof(kLimiterInfo{}))}
	err := lim.with(func(fd int) error {
		_, err := ioctl(fd, iocLimiterInfo, unsafe.Pointer(&i))
		return err
	})
	return i, err
}

// take without waiting: ok, or the time until n tokens would be there
// for a new request (the kernel's retry_after_ns).
func (lim *Limiter) try(n int) (bool, time.Duration, error) {
	t := kLimiterTake{Size: uint32(unsafe.Sizeof(kLimiterTake{})), N: uint64(n)}
	t.Wait.CancelFd = noCancelFd
	err := lim.with(func(fd int) error {
		// Tokens in the page and nobody queued: no system call.
		if lim.pg != nil && pageTake(lim.pg, uint64(n)) {
			return nil
		}
		_, err := ioctl(fd, iocLimiterTake, unsafe.Pointer(&t))
		return err
	})
	if err == unix.EAGAIN {
		return false, time.Duration(t.RetryAfterNs), nil
	}
	return err == nil, 0, err
}

// Allow is AllowN(time.Now(), 1).
func (lim *Limiter) Allow() bool { return lim.AllowN(time.Time{}, 1) }

// AllowN reports whether n events may happen now, and takes their tokens
// if so. The kernel's clock decides: t is ignored (it is in the signature
// for x/time/rate's sake). False also when n exceeds the burst or the
// handle is closed; n <= 0 is always allowed.
func (lim *Limiter) AllowN(t time.Time, n int) bool {
	if n <= 0 {
		return true
	}
	ok, _, _ := lim.try(n)
	return ok
}

// Wait is WaitN(ctx, 1).
func (lim *Limiter) Wait(ctx context.Context) error { return lim.WaitN(ctx, 1) }

// WaitN blocks until lim permits n events, in FIFO order with every other
// waiter of the limiter, in any process. As x/time/rate's, it fails when n
// exceeds the burst, when ctx is done (ctx.Err()), and at once, without
// waiting, when the tokens would come after ctx's deadline. The
// cancellation reaches the kernel wait through its cancel eventfd.
func (lim *Limiter) WaitN(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The common case takes no eventfd: tokens are there (in the page,
	// when ctx is live, as here).
	ok, after, err := lim.try(n)
	if ok {
		return nil
	}
	if err == unix.EINVAL {
		if i, e := lim.info(); e == nil && uint64(n) > i.Params.Burst {
			return fmt.Errorf("rate: Wait(n=%d) exceeds limiter's burst %d", n, i.Params.Burst)
		}
	}
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < after {
		return fmt.Errorf("rate: Wait(n=%d) would exceed context deadline", n)
	}
	tk := kLimiterTake{Size: uint32(unsafe.Sizeof(kLimiterTake{})), N: uint64(n)}
	return lim.with(func(fd int) error {
		return lim.kernelWait(ctx, fd, iocLimiterTake, unsafe.Pointer(&tk), &tk.Wait)
	})
}

// Limit returns the limit (events per second), 0 when it cannot be read.
func (lim *Limiter) Limit() Limit {
	i, err := lim.info()
	if err != nil {
		return 0
	}
	return fromKernelRate(i.Params.Rate, i.Params.PeriodNs)
}

// Burst returns the bucket size, 0 when it cannot be read.
func (lim *Limiter) Burst() int {
	i, err := lim.info()
	if err != nil {
		return 0
	}
	return int(i.Params.Burst)
}

// Tokens returns the whole tokens available now (the kernel counts in
// whole tokens), 0 when they cannot be read.
func (lim *Limiter) Tokens() float64 {
	i, err := lim.info()
	if err != nil {
		return 0
	}
	return float64(i.Tokens)
}

// SetLimit sets a new limit, for every process using the limiter. Only
// its owner may (see SetLimitErr: this signature, x/time/rate's, drops
// the error).
func (lim *Limiter) SetLimit(newLimit Limit) { _ = lim.SetLimitErr(newLimit) }

// SetBurst sets a new bucket size (see SetBurstErr).
func (lim *Limiter) SetBurst(newBurst int) { _ = lim.SetBurstErr(newBurst) }

// SetLimitErr is SetLimit that says why it failed: EPERM (not the
// owner), EINVAL, EOVERFLOW.
func (lim *Limiter) SetLimitErr(newLimit Limit) error {
	i, err := lim.info()
	if err != nil {
		return err
	}
	s := kLimiterSet{Size: uint32(unsafe.Sizeof(kLimiterSet{})), Flags: limiterSetRate}
	s.Params.Rate, s.Params.PeriodNs = toKernelRate(newLimit, i.Params.Burst)
	return lim.set(&s)
}

// SetBurstErr is SetBurst that says why it failed: EPERM (not the owner),
// EINVAL, EOVERFLOW. Waiters asking for more than the new burst fail.
func (lim *Limiter) SetBurstErr(newBurst int) error {
	if newBurst < 1 {
		return unix.EINVAL
	}
	s := kLimiterSet{Size: uint32(unsafe.Sizeof(kLimiterSet{})), Flags: limiterSetBurst}
	s.Params.Burst = uint64(newBurst)
	return lim.set(&s)
}

func (lim *Limiter) set(s *kLimiterSet) error {
	return lim.with(func(fd int) error {
		_, err := ioctl(fd, iocLimiterSet, unsafe.Pointer(s))
		return err
	})
}

// LimiterStats is a limiter's state as the kernel reports it.
type LimiterStats struct {
	Rate, PeriodNs, Burst, Initial uint64
	Tokens, Waiters                uint64
	Admitted, Throttled            uint64
}

// Stats reads the limiter's state.
func (lim *Limiter) Stats() (LimiterStats, error) {
	i, err := lim.info()
	return LimiterStats{i.Params.Rate, i.Params.PeriodNs, i.Params.Burst,
		i.Params.Initial, i.Tokens, i.Waiters, i.Admitted, i.Throttled}, err
}
