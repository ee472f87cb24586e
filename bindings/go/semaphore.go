// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

import (
	"context"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Weighted is a counting semaphore in the kernel, shared by every process
// that opens its name, with the method set of x/sync/semaphore's
// *semaphore.Weighted. Permits are held by the handle (its fd): Close
// returns those still held, and so does the kernel when the process dies,
// however it dies. Waiters are served in FIFO order across processes.
// Methods are safe for concurrent use.
type Weighted struct {
	object
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
	return &Weighted{newObject(fd)}, nil
}

// Close returns the permits this handle holds and closes it; waits in
// progress on it end with an error.
func (s *Weighted) Close() error { return s.close() }

func (s *Weighted) try(n int64) error {
	a := kSemAcquire{Size: uint32(unsafe.Sizeof(kSemAcquire{})), N: uint64(n)}
	a.Wait.CancelFd = noCancelFd
	return s.with(func(fd int) error {
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
	err := s.try(n)
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
	return s.try(n) == nil
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
