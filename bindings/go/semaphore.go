// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

import (
	"context"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Weighted is a counting semaphore in the kernel, shared by every process
// that opens its name, with the method set of x/sync/semaphore's
// *semaphore.Weighted. Permits are held by the handle (its fd): Close
// returns those still held, and so does the kernel when the process dies,
// however it dies. Waiters are served in FIFO order across processes.
// Methods are safe for concurrent use.
//
// Where the module has semaphore slots (KPRIM_FEAT_SEM_SLOT), as the C
// library does, the permits a handle releases stay parked in its fd's
// slot, a page shared with the kernel, and an acquire they cover, and a
// release, are one atomic compare-and-swap there with no system call
// (Acquire, TryAcquire and Release). The kernel takes parked permits back
// when another handle or process needs them, and while any waiter is
// queued every call goes to the kernel, so FIFO order and what Stats
// reports are as without slots. The environment variable
// KPRIM_NO_SEM_SLOT set (to anything but "0") when a handle is opened
// turns its slot off: every call is then an ioctl.
type Weighted struct {
	object
	slot *kSemSlot // in object.page, nil without a slot; read under mu
}

// OpenWeighted creates or opens the semaphore name ("" for an anonymous
// one) with the C library's flags and, for a new one, permission bits
// mode and n permits (1 .. 2^32-1).
func OpenWeighted(name string, flags Flag, mode uint32, n int64) (*Weighted, error) {
	var a kOpen
	if n < 0 {
		return nil, unix.EINVAL
	}
	a.Params[0] = uint64(n)
	fd, err := openObject(kindSem, name, flags, mode, &a)
	if err != nil {
		return nil, err
	}
	w := &Weighted{object: newObject(fd)}
	if w.page = mapPage(fd, featSemSlot, "KPRIM_NO_SEM_SLOT"); w.page != nil {
		w.slot = (*kSemSlot)(unsafe.Pointer(&w.page[0]))
	}
	return w, nil
}

// slotTries is how many lost swaps a slot operation retries before it
// lets the ioctl decide (KPRIM_SLOT_TRIES).
const slotTries = 4

// slotAcquire takes n parked permits from the slot: false when the slot
// is SLOW (a waiter is queued, or the kernel took them back), they are
// short, or the swap keeps losing (then the ioctl decides). Sequentially
// consistent atomics: at least the acquire ordering the protocol needs.
func slotAcquire(sl *kSemSlot, n uint64) bool {
	w := atomic.LoadUint64(&sl.Word)
	for i := 0; i < slotTries; i++ {
		if w&slotSlow != 0 || w&slotFree < n {
			return false
		}
		if atomic.CompareAndSwapUint64(&sl.Word, w, w-n) {
			atomic.AddUint64(&sl.Acquired, 1)
			return true
		}
		w = atomic.LoadUint64(&sl.Word)
	}
	return false
}

// slotRelease parks n released permits in the slot: false when the slot
// is SLOW (the kernel must see the release: a waiter may be queued), the
// fd would park more than it holds (the kernel refuses that), or the swap
// keeps losing.
func slotRelease(sl *kSemSlot, n uint64) bool {
	w := atomic.LoadUint64(&sl.Word)
	for i := 0; i < slotTries; i++ {
		if w&slotSlow != 0 {
			return false
		}
		free := w & slotFree
		held := (w & slotHeld) >> slotHeldShift
		if free > held || n > held-free || free+n > slotFree {
			return false
		}
		if atomic.CompareAndSwapUint64(&sl.Word, w, w+n) {
			return true
		}
		w = atomic.LoadUint64(&sl.Word)
	}
	return false
}

// Close returns the permits this handle holds and closes it; waits in
// progress on it end with an error.
func (s *Weighted) Close() error { return s.close() }

// try acquires n permits without blocking: from the slot if fast (and
// it has one), else by the ioctl.
func (s *Weighted) try(n int64, fast bool) error {
	a := kSemAcquire{Size: uint32(unsafe.Sizeof(kSemAcquire{})), N: uint64(n)}
	a.Wait.CancelFd = noCancelFd
	return s.with(func(fd int) error {
		if fast && s.slot != nil && slotAcquire(s.slot, uint64(n)) {
			return nil
		}
		_, err := ioctl(fd, iocSemAcquire, unsafe.Pointer(&a))
		return err
	})
}

// Acquire acquires n permits, blocking until they are free or ctx is done.
// On failure it returns ctx.Err() and leaves the semaphore unchanged; if
// ctx is already done it may still succeed without blocking, as
// x/sync's does. n above the semaphore's size blocks until ctx is done,
// as there. Cancellation reaches the kernel wait through its cancel
// eventfd.
func (s *Weighted) Acquire(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	// Parked permits only while ctx is live: a done ctx asks the kernel,
	// as the C library does (which gives what the slot would have).
	err := s.try(n, ctx.Err() == nil)
	if err != unix.EAGAIN {
		if err == unix.EINVAL {
			if st, e := s.Stats(); e == nil && uint64(n) > st.Permits {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-s.closing:
					return errClosed
				}
			}
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	a := kSemAcquire{Size: uint32(unsafe.Sizeof(kSemAcquire{})), N: uint64(n)}
	return s.with(func(fd int) error {
		return s.kernelWait(ctx, fd, iocSemAcquire, unsafe.Pointer(&a), &a.Wait)
	})
}

// TryAcquire acquires n permits without blocking: false (and nothing
// acquired) when they are not free. It does not overtake waiters.
func (s *Weighted) TryAcquire(n int64) bool {
	if n <= 0 {
		return true
	}
	return s.try(n, true) == nil
}

// Release gives back n permits held by this handle. Like x/sync's, it
// panics when they are more than the handle holds (the semaphore does not
// change).
func (s *Weighted) Release(n int64) {
	if err := s.ReleaseErr(n); err == unix.EINVAL {
		panic("semaphore: released more than held")
	} else if err != nil {
		panic("semaphore: release: " + err.Error())
	}
}

// ReleaseErr is Release returning EINVAL (more than held) instead of
// panicking.
func (s *Weighted) ReleaseErr(n int64) error {
	if n <= 0 {
		if n == 0 {
			return nil
		}
		return unix.EINVAL
	}
	r := kSemRelease{Size: uint32(unsafe.Sizeof(kSemRelease{})), N: uint64(n)}
	return s.with(func(fd int) error {
		if s.slot != nil && slotRelease(s.slot, uint64(n)) {
			return nil
		}
		_, err := ioctl(fd, iocSemRelease, unsafe.Pointer(&r))
		return err
	})
}

// SemStats is a semaphore's state as the kernel reports it.
type SemStats struct {
	Permits, Available, Held, HeldByMe, Waiters, Acquired uint64
}

// Stats reads the semaphore's state (HeldByMe: this handle's permits).
func (s *Weighted) Stats() (SemStats, error) {
	i := kSemInfo{Size: uint32(unsafe.Sizeof(kSemInfo{}))}
	err := s.with(func(fd int) error {
		_, err := ioctl(fd, iocSemInfo, unsafe.Pointer(&i))
		return err
	})
	return SemStats{i.Permits, i.Available, i.Held, i.HeldByMe, i.Waiters, i.Acquired}, err
}
