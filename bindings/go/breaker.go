// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

// The shared circuit breaker of libuser/breaker.c and breaker_shared.c, in
// Go, on the same kernel objects with the same layout: a cache and a
// semaphore named "kprim-breaker.<name>"; the cache's entry "state" holds
// the 40-byte state record, "settings" the 32-byte settings record, both
// in the host's byte order; the semaphore's permits are the half-open
// probe slots. A Go and a C process that open the same name drive one
// breaker. The state machine is the C library's: every decision is a
// load of the word and a compare-and-swap of the new one, retried when
// another process got there first.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// State is a breaker's state (the C library's values).
type State int

const (
	StateClosed   State = 0
	StateOpen     State = 1
	StateHalfOpen State = 2
)

func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("unknown state: %d", int(s))
}

// Window is how a closed breaker measures its failure rate.
type Window uint32

const (
	WindowNone  Window = 0 // consecutive failures only
	WindowCount Window = 1 // the last WindowSize calls
	WindowTime  Window = 2 // calls in the last WindowDuration
)

// WindowMax is the largest WindowSize (calls or buckets).
const WindowMax = 65536

// BreakerNameMax is the longest breaker name: the kernel's 255-byte name
// limit minus the "kprim-breaker." prefix.
const BreakerNameMax = 241

var (
	// ErrOpenState: the breaker is open (gobreaker's error).
	ErrOpenState = errors.New("circuit breaker is open")
	// ErrTooManyRequests: half-open, and every probe slot is taken.
	ErrTooManyRequests = errors.New("too many requests")
	// ErrStale: a result reported after the breaker changed generation;
	// it was ignored.
	ErrStale = errors.New("kprim: breaker result is stale")
)

// BreakerSettings configures a breaker (the C kprim_breaker_settings).
// OpenTimeout, HalfOpenProbes, SuccessThreshold and ConsecutiveFailures are
// fixed by the first process to create the breaker: a later open with
// other values fails with EEXIST.
type BreakerSettings struct {
	ConsecutiveFailures uint32        // trip after this many failures in a row, 0 = off
	Window              Window        // failure-rate window, per process
	WindowSize          uint32        // Count: calls; Time: buckets (1..WindowMax)
	WindowDuration      time.Duration // Time: the window's length (>= WindowSize ns)
	MinCalls            uint32        // no rate decision below this many calls
	FailureRatePct      uint32        // trip at this failure percentage (1..100)
	OpenTimeout         time.Duration // open this long before half-open (> 0)
	HalfOpenProbes      uint32        // concurrent half-open calls, host-wide (>= 1)
	SuccessThreshold    uint32        // half-open successes that close it (>= 1)
	// OnStateChange is called for each transition this handle makes, in
	// order, one at a time, with no lock held, before the call that made
	// it returns. It must not call into the same breaker.
	OnStateChange func(name string, from, to State)
	// Mode: permission bits of the kernel objects when this call creates
	// them (0 = 0600: the user's processes; 0660 shares with the group).
	Mode uint32
}

func (s *BreakerSettings) check() error {
	if s.ConsecutiveFailures == 0 && s.Window == WindowNone {
		return unix.EINVAL
	}
	if s.Window > WindowTime || s.Mode&^0777 != 0 {
		return unix.EINVAL
	}
	if s.Window != WindowNone {
		if s.WindowSize == 0 || s.WindowSize > WindowMax ||
			s.MinCalls == 0 || s.FailureRatePct == 0 || s.FailureRatePct > 100 {
			return unix.EINVAL
		}
		if s.Window == WindowTime && s.WindowDuration < time.Duration(s.WindowSize) {
			return unix.EINVAL
		}
		if s.Window == WindowCount && s.MinCalls > s.WindowSize {
			return unix.EINVAL
		}
	}
	if s.OpenTimeout <= 0 || s.HalfOpenProbes == 0 || s.SuccessThreshold == 0 {
		return unix.EINVAL
	}
	return nil
}

// BreakerCounts are a handle's counts (kprim_breaker_counts):
// ConsecutiveFailures and ProbesInFlight are the breaker's, host-wide.
type BreakerCounts struct {
	Allowed, Rejected, Successes, Failures, Ignored, Transitions     uint64
	ConsecutiveFailures, WindowCalls, WindowFailures, ProbesInFlight uint32
}

// breakerWord is struct breaker_word.
type breakerWord struct {
	Gen, SinceNs                                       uint64
	State, Forced, ProbeSuccesses, ConsecutiveFailures uint32
}

const (
	breakerPrefix = "kprim-breaker."
	stateKey      = "state"
	settingsKey   = "settings"
	recordMagic   = 0x4b504252 // "KPBR"
	recordLayout  = 2
	stateLen      = 40
	settingsLen   = 32
	loadTries     = 16
)

var nativeOrder binary.ByteOrder = binary.LittleEndian

func init() {
	if isBigEndian {
		nativeOrder = binary.BigEndian
	}
}

func (w *breakerWord) record() []byte {
	b := make([]byte, stateLen)
	o := nativeOrder
	o.PutUint32(b[0:], recordMagic)
	o.PutUint32(b[4:], recordLayout)
	o.PutUint64(b[8:], w.Gen)
	o.PutUint64(b[16:], w.SinceNs)
	o.PutUint32(b[24:], w.State)
	o.PutUint32(b[28:], w.Forced)
	o.PutUint32(b[32:], w.ProbeSuccesses)
	o.PutUint32(b[36:], w.ConsecutiveFailures)
	return b
}

func parseWord(b []byte) (breakerWord, error) {
	o := nativeOrder
	if len(b) != stateLen || o.Uint32(b[0:]) != recordMagic || o.Uint32(b[4:]) != recordLayout {
		return breakerWord{}, unix.EPROTO
	}
	w := breakerWord{o.Uint64(b[8:]), o.Uint64(b[16:]), o.Uint32(b[24:]),
		o.Uint32(b[28:]), o.Uint32(b[32:]), o.Uint32(b[36:])}
	if w.State > uint32(StateHalfOpen) {
		return breakerWord{}, unix.EPROTO
	}
	return w, nil
}

func settingsRecord(s *BreakerSettings) []byte {
	b := make([]byte, settingsLen)
	o := nativeOrder
	o.PutUint32(b[0:], recordMagic)
	o.PutUint32(b[4:], recordLayout)
	o.PutUint64(b[8:], uint64(s.OpenTimeout))
	o.PutUint32(b[16:], s.HalfOpenProbes)
	o.PutUint32(b[20:], s.SuccessThreshold)
	o.PutUint32(b[24:], s.ConsecutiveFailures)
	return b
}

// monoNs is CLOCK_MONOTONIC, the clock every process of the host agrees on.
func monoNs() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Sec)*1e9 + uint64(ts.Nsec)
}

type bucket struct {
	epoch           uint64
	calls, failures uint32
}

type stateNote struct{ from, to State }

// A Breaker is a circuit breaker shared by every process of the host that
// opens the same name, in Go or through the C library. Shared: the state,
// its generation, the time it was entered, the ForceOpen pin, the count of
// failures in a row, the half-open success count and probe slots. Per
// handle: the failure-rate window, the counts, OnStateChange. Methods are
// safe for concurrent use.
type Breaker struct {
	name  string
	s     BreakerSettings
	cache *Cache
	sem   *Weighted

	mu       sync.Mutex
	last     breakerWord // the word last loaded or stored, at version
	version  uint64
	haveLast bool
	seenGen  uint64
	outcomes []uint8
	buckets  []bucket
	ringPos  uint32
	ringLen  uint32
	ringFail uint32
	bucketNs uint64
	c        BreakerCounts
	notes    []stateNote

	deliver sync.Mutex // one thread at a time runs OnStateChange
}

// OpenBreaker opens the shared breaker name (1..BreakerNameMax bytes, no
// '/'), creating its kernel objects on first use; they outlive the
// processes until unlinked (kprimctl rm, or Unlink of both
// "kprim-breaker.<name>"). EEXIST: created with other shared settings;
// EPROTO: the entry holds no state this package understands.
func OpenBreaker(name string, s BreakerSettings) (*Breaker, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsRune(name, '/') {
		return nil, unix.EINVAL
	}
	if len(name) > BreakerNameMax {
		return nil, unix.ENAMETOOLONG
	}
	mode := s.Mode
	if mode == 0 {
		mode = 0600
	}
	obj := breakerPrefix + name
	// Joined whoever created it, as the C library does: the processes
	// sharing a breaker may run as different users.
	cache, err := OpenCache(obj, Create|AnyOwner, mode,
		&CacheConfig{MaxBytes: 16384, MaxEntries: 8, MaxValue: 256})
	if err != nil {
		return nil, err
	}
	sem, err := OpenWeighted(obj, Create|AnyOwner, mode, int64(s.HalfOpenProbes))
	if err != nil {
		cache.Close()
		return nil, err
	}
	b := &Breaker{name: name, s: s, cache: cache, sem: sem, seenGen: ^uint64(0)}
	if s.Window == WindowCount {
		b.outcomes = make([]uint8, s.WindowSize)
	}
	if s.Window == WindowTime {
		b.buckets = make([]bucket, s.WindowSize)
		b.bucketNs = uint64(s.WindowDuration) / uint64(s.WindowSize)
	}
	if err = b.checkShared(); err == nil {
		var w breakerWord
		err = b.load(&w) // create the state entry now: errors show here
	}
	if err != nil {
		sem.Close()
		cache.Close()
		return nil, err
	}
	return b, nil
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// Close closes the handle, returning the probe slots it holds; the shared
// breaker lives on.
func (b *Breaker) Close() error {
	err := b.sem.Close()
	if e := b.cache.Close(); err == nil {
		err = e
	}
	return err
}

func (b *Breaker) checkShared() error {
	st, err := b.sem.Stats()
	if err != nil {
		return err
	}
	if st.Permits != uint64(b.s.HalfOpenProbes) {
		return unix.EEXIST
	}
	want := settingsRecord(&b.s)
	err = b.cache.storePinned(cacheOpAdd, settingsKey, want, nil)
	if err != unix.EEXIST {
		return err
	}
	have, err := b.cache.get(settingsKey)
	if err == ErrCacheMiss {
		return nil // evicted since: nothing to disagree with
	}
	if err != nil {
		return err
	}
	o := nativeOrder
	if len(have.Value) != settingsLen || o.Uint32(have.Value) != recordMagic ||
		o.Uint32(have.Value[4:]) != recordLayout {
		return unix.EPROTO
	}
	if string(have.Value) != string(want) {
		return unix.EEXIST
	}
	return nil
}

// backend: the shared word (b.mu held).
func (b *Breaker) loadRaw(w *breakerWord) error {
	for i := 0; i < loadTries; i++ {
		it, err := b.cache.get(stateKey)
		if err == ErrCacheMiss {
			// First use, or lost: start closed, never rewinding the
			// generation (see breaker_shared.c).
			var fresh breakerWord
			now := monoNs()
			if b.haveLast {
				fresh.Gen = b.last.Gen + 1
			}
			if fresh.Gen < now {
				fresh.Gen = now
			}
			fresh.SinceNs = now
			err = b.cache.storePinned(cacheOpAdd, stateKey, fresh.record(), nil)
			if err != nil && err != unix.EEXIST {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		nw, err := parseWord(it.Value)
		if err != nil {
			return err
		}
		b.last, b.version, b.haveLast = nw, it.CasID, true
		*w = nw
		return nil
	}
	return unix.EIO
}

// errAgain: the word changed since it was loaded; reload and decide again.
var errAgain = unix.EAGAIN

func (b *Breaker) cas(old, nw *breakerWord) error {
	if !b.haveLast || *old != b.last {
		return errAgain
	}
	ver := b.version
	err := b.cache.storePinned(cacheOpCAS, stateKey, nw.record(), &ver)
	if err == unix.ESTALE || err == unix.ENOENT {
		return errAgain
	}
	if err != nil {
		return err
	}
	b.last, b.version = *nw, ver
	return nil
}

func (b *Breaker) probeAcquire() error {
	if b.sem.TryAcquire(1) {
		return nil
	}
	if _, err := b.sem.Stats(); err != nil {
		return err
	}
	return ErrTooManyRequests
}

func (b *Breaker) probeRelease() { _ = b.sem.ReleaseErr(1) }

func (b *Breaker) resetStats() {
	b.ringPos, b.ringLen, b.ringFail = 0, 0, 0
	b.c.WindowCalls, b.c.WindowFailures = 0, 0
	for i := range b.buckets {
		b.buckets[i] = bucket{}
	}
}

func (b *Breaker) syncGen(w *breakerWord) {
	if w.Gen != b.seenGen {
		b.resetStats()
		b.seenGen = w.Gen
	}
}

func (b *Breaker) load(w *breakerWord) error {
	err := b.loadRaw(w)
	if err == nil {
		b.syncGen(w)
	}
	return err
}

func (b *Breaker) transition(cur *breakerWord, state State, forced uint32, now uint64, next *breakerWord) error {
	*next = breakerWord{Gen: cur.Gen + 1, SinceNs: now, State: uint32(state), Forced: forced}
	if err := b.cas(cur, next); err != nil {
		return err
	}
	b.syncGen(next)
	if cur.State != uint32(state) {
		b.c.Transitions++
		if b.s.OnStateChange != nil {
			b.notes = append(b.notes, stateNote{State(cur.State), state})
		}
	}
	return nil
}

// record adds a closed-state result to the window: true if it must trip.
func (b *Breaker) record(failed bool, now uint64) bool {
	s := &b.s
	var calls, failures uint64
	f := uint32(0)
	if failed {
		f = 1
	}
	switch s.Window {
	case WindowCount:
		if b.ringLen == s.WindowSize {
			b.ringFail -= uint32(b.outcomes[b.ringPos])
		} else {
			b.ringLen++
		}
		b.outcomes[b.ringPos] = uint8(f)
		b.ringFail += f
		b.ringPos = (b.ringPos + 1) % s.WindowSize
		calls, failures = uint64(b.ringLen), uint64(b.ringFail)
	case WindowTime:
		epoch := now/b.bucketNs + 1
		bk := &b.buckets[epoch%uint64(s.WindowSize)]
		if bk.epoch != epoch {
			*bk = bucket{epoch: epoch}
		}
		bk.calls++
		bk.failures += f
		for i := range b.buckets {
			bk = &b.buckets[i]
			if bk.epoch != 0 && bk.epoch+uint64(s.WindowSize) > epoch {
				calls += uint64(bk.calls)
				failures += uint64(bk.failures)
			}
		}
	default:
		return false
	}
	b.c.WindowCalls, b.c.WindowFailures = uint32(calls), uint32(failures)
	return calls >= uint64(s.MinCalls) && failures*100 >= uint64(s.FailureRatePct)*calls
}

// unlock drops b.mu and delivers the notes queued so far, in order, one
// at a time: whoever delivers takes every note queued before it, so by
// the time a call returns its own transitions have been notified.
func (b *Breaker) unlock() {
	if b.s.OnStateChange == nil || len(b.notes) == 0 {
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.deliver.Lock()
	defer b.deliver.Unlock()
	for {
		b.mu.Lock()
		if len(b.notes) == 0 {
			b.mu.Unlock()
			return
		}
		n := b.notes[0]
		b.notes = b.notes[1:]
		b.mu.Unlock()
		b.s.OnStateChange(b.name, n.from, n.to)
	}
}

// A Ticket is the proof of admission Done takes back.
type Ticket struct {
	Gen   uint64
	Probe bool // holds a half-open probe slot
}

// AllowTicket asks whether a call may go ahead: a Ticket to report with
// Done, or ErrOpenState / ErrTooManyRequests (or a kernel error).
func (b *Breaker) AllowTicket() (Ticket, error) {
	var w, next breakerWord
	var err error
	b.mu.Lock()
	defer b.unlock()
	for {
		if err = b.load(&w); err != nil {
			break
		}
		now := monoNs()
		if w.State == uint32(StateOpen) {
			if w.Forced != 0 || now < w.SinceNs || now-w.SinceNs < uint64(b.s.OpenTimeout) {
				err = ErrOpenState
				break
			}
			err = b.transition(&w, StateHalfOpen, 0, now, &next)
			if err == errAgain {
				continue
			}
			if err != nil {
				break
			}
			w = next
		}
		if w.State != uint32(StateHalfOpen) {
			break
		}
		if err = b.probeAcquire(); err != nil {
			break
		}
		// A probe counts for the generation it was admitted into.
		err = b.loadRaw(&next)
		if err == nil && next.Gen == w.Gen {
			break
		}
		b.probeRelease()
		if err != nil {
			break
		}
	}
	if err != nil {
		b.c.Rejected++
		return Ticket{}, err
	}
	b.c.Allowed++
	return Ticket{Gen: w.Gen, Probe: w.State == uint32(StateHalfOpen)}, nil
}

// Done reports the result of an admitted call; report every ticket once.
// ErrStale: the breaker changed generation since; the result was ignored.
func (b *Breaker) Done(t Ticket, success bool) error {
	var w, next breakerWord
	var err error
	recorded, windowTrip := false, false
	b.mu.Lock()
	defer b.unlock()
	for {
		if err = b.load(&w); err != nil {
			break
		}
		now := monoNs()
		if w.Gen != t.Gen || w.State == uint32(StateOpen) {
			b.c.Ignored++
			err = ErrStale
			break
		}
		if w.State == uint32(StateClosed) {
			if !recorded {
				windowTrip = b.record(!success, now)
				recorded = true
			}
			next = w
			if success {
				next.ConsecutiveFailures = 0
			} else if b.s.ConsecutiveFailures != 0 && w.ConsecutiveFailures < ^uint32(0) {
				next.ConsecutiveFailures++
			}
			trip := windowTrip || (b.s.ConsecutiveFailures != 0 &&
				next.ConsecutiveFailures >= b.s.ConsecutiveFailures)
			if trip {
				err = b.transition(&w, StateOpen, 0, now, &next)
			} else if next.ConsecutiveFailures != w.ConsecutiveFailures {
				err = b.cas(&w, &next)
			} else {
				break
			}
		} else if !success {
			err = b.transition(&w, StateOpen, 0, now, &next)
		} else if w.ProbeSuccesses+1 >= b.s.SuccessThreshold {
			err = b.transition(&w, StateClosed, 0, now, &next)
		} else {
			next = w
			next.ProbeSuccesses++
			err = b.cas(&w, &next)
		}
		if err != errAgain {
			break
		}
	}
	if t.Probe {
		b.probeRelease()
	}
	if err == nil {
		if success {
			b.c.Successes++
		} else {
			b.c.Failures++
		}
	}
	return err
}

// Allow is gobreaker's TwoStepCircuitBreaker.Allow: a done callback to
// report the call's result with, or ErrOpenState / ErrTooManyRequests.
func (b *Breaker) Allow() (done func(success bool), err error) {
	t, err := b.AllowTicket()
	if err != nil {
		return nil, err
	}
	return func(success bool) { _ = b.Done(t, success) }, nil
}

// Execute runs req if the breaker allows it and reports its result (an
// error or a panic is a failure; a panic goes on after being counted), as
// gobreaker's CircuitBreaker.Execute.
func (b *Breaker) Execute(req func() (interface{}, error)) (interface{}, error) {
	t, err := b.AllowTicket()
	if err != nil {
		return nil, err
	}
	defer func() {
		if e := recover(); e != nil {
			_ = b.Done(t, false)
			panic(e)
		}
	}()
	res, err := req()
	_ = b.Done(t, err == nil)
	return res, err
}

func (b *Breaker) force(state State, forced uint32) error {
	var w, next breakerWord
	var err error
	b.mu.Lock()
	defer b.unlock()
	for {
		if err = b.load(&w); err != nil {
			return err
		}
		if err = b.transition(&w, state, forced, monoNs(), &next); err != errAgain {
			return err
		}
	}
}

// ForceOpen opens the breaker, for every process, until ForceClose.
func (b *Breaker) ForceOpen() error { return b.force(StateOpen, 1) }

// ForceClose closes it (counters reset, not pinned).
func (b *Breaker) ForceClose() error { return b.force(StateClosed, 0) }

// State returns the current state (open stays open after the timeout:
// half-open is entered by the next Allow), or an error reading it.
func (b *Breaker) StateErr() (State, error) {
	var w breakerWord
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.load(&w); err != nil {
		return 0, err
	}
	return State(w.State), nil
}

// State is StateErr without the error (gobreaker's signature): a breaker
// whose state cannot be read reports open.
func (b *Breaker) State() State {
	s, err := b.StateErr()
	if err != nil {
		return StateOpen
	}
	return s
}

// Counts returns this handle's counts.
func (b *Breaker) Counts() (BreakerCounts, error) {
	var w breakerWord
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.load(&w); err != nil {
		return BreakerCounts{}, err
	}
	c := b.c
	c.ConsecutiveFailures = 0
	if w.State == uint32(StateClosed) {
		c.ConsecutiveFailures = w.ConsecutiveFailures
	}
	if st, err := b.sem.Stats(); err == nil {
		c.ProbesInFlight = uint32(st.Held)
	}
	return c, nil
}
