// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

// Blocking calls: a context becomes the kernel wait's bounds, as the C
// library's kprim_ctx does. Its deadline is the wait's timeout; its
// cancellation (and Close of the handle) reaches the kernel through the
// wait's cancel eventfd: a goroutine watching ctx.Done() writes it, the
// kernel sees it readable and ends the wait with ECANCELED.

import (
	"context"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cancel eventfds are reused: a wait that was cancelled leaves its eventfd
// drained before it goes back. At most efdPoolMax stay open.
const efdPoolMax = 16

var efdPool struct {
	sync.Mutex
	fds []int
}

func getEfd() (int, error) {
	efdPool.Lock()
	if n := len(efdPool.fds); n > 0 {
		fd := efdPool.fds[n-1]
		efdPool.fds = efdPool.fds[:n-1]
		efdPool.Unlock()
		return fd, nil
	}
	efdPool.Unlock()
	return unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
}

func putEfd(fd int, signalled bool) {
	if signalled {
		var buf [8]byte
		if _, err := unix.Read(fd, buf[:]); err != nil && err != unix.EAGAIN {
			unix.Close(fd)
			return
		}
	}
	efdPool.Lock()
	if len(efdPool.fds) < efdPoolMax {
		efdPool.fds = append(efdPool.fds, fd)
		fd = -1
	}
	efdPool.Unlock()
	if fd >= 0 {
		unix.Close(fd)
	}
}

// errDeadline: the context's deadline is too close for the wait.
var errDeadline = context.DeadlineExceeded

// kernelWait runs a blocking command whose struct embeds w, bounded by ctx
// and by the handle's closing. It returns nil, ctx.Err() (cancelled, or
// its deadline passed), errClosed (Close during the wait) or the kernel's
// error. EINTR (a signal handler without SA_RESTART) restarts the call: the
// kernel left the time remaining in w.
func (o *object) kernelWait(ctx context.Context, fd int, req uintptr, arg unsafe.Pointer, w *kWait) error {
	w.TimeoutNs = timeoutInfinite
	if dl, ok := ctx.Deadline(); ok {
		d := time.Until(dl)
		if d <= 0 {
			return errDeadline
		}
		w.TimeoutNs = uint64(d)
	}
	efd, err := getEfd()
	if err != nil {
		return err
	}
	w.CancelFd = int32(efd)
	stop := make(chan struct{})
	exited := make(chan bool)
	go func() {
		fired := false
		select {
		case <-ctx.Done():
			fired = true
		case <-o.closing:
			fired = true
		case <-stop:
		}
		if fired {
			one := [8]byte{1}
			if isBigEndian {
				one = [8]byte{7: 1}
			}
			unix.Write(efd, one[:])
		}
		exited <- fired
	}()
	for {
		_, err = ioctl(fd, req, arg)
		if err != unix.EINTR {
			break
		}
	}
	close(stop)
	fired := <-exited
	putEfd(efd, fired)
	switch err {
	case nil:
		return nil
	case unix.ECANCELED, unix.ETIMEDOUT:
		if e := ctx.Err(); e != nil {
			return e
		}
		if err == unix.ETIMEDOUT {
			// The kernel's clock ran out first; the context's
			// timer is about to.
			return context.DeadlineExceeded
		}
		select {
		case <-o.closing:
			return errClosed
		default:
		}
	}
	return err
}

var isBigEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()
