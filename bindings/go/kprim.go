// SPDX-License-Identifier: LGPL-2.1-or-later

// Package kprim gives Go programs kprim's host-wide primitives: token-bucket
// rate limiters, weighted semaphores, an expiring key-value cache (all kernel
// objects behind /dev/kprim, shared by every process that opens the same
// name) and the circuit breaker the C library shares through them.
//
// It is pure Go over the kernel's ioctls (golang.org/x/sys/unix, no cgo),
// so programs using it build static and cross-compile. The types have the
// method sets Go programs already use, so switching is changing a
// constructor:
//
//	Limiter   golang.org/x/time/rate.Limiter: Allow, AllowN, Wait, WaitN,
//	          Limit, Burst, SetLimit, SetBurst, Tokens (same Limit type)
//	Weighted  golang.org/x/sync/semaphore.Weighted: Acquire, TryAcquire,
//	          Release
//	Cache     github.com/bradfitz/gomemcache/memcache.Client: Get, GetMulti,
//	          Set, Add, Replace, CompareAndSwap, Delete, Touch, Increment,
//	          Decrement, DeleteAll, with Item, ErrCacheMiss, ErrNotStored,
//	          ErrCASConflict
//	Breaker   a circuit breaker (sony/gobreaker's two-step Allow, and
//	          Execute) whose state is the C library's shared breaker:
//	          kprim_breaker_new_shared() in C and OpenBreaker in Go drive
//	          one breaker
//
// # Objects, names, ownership
//
// Open* create or open named objects with the C library's flags and mode:
// Create, Excl, Transient, Owned, AnyOwner, Inherit, and permission bits
// for a new object. A named Create opens "mine or fail" (Owned is implied:
// another user's object of that name is refused with EPERM) unless
// AnyOwner is given. An empty name makes an anonymous object, private to
// the handle (and to fds passed on). Close closes the handle; a named object
// lives on until unlinked (Unlink) unless it was created Transient.
//
// # Fork and exec
//
// Every fd this package opens (the /dev/kprim session and each object) is
// close-on-exec: a program started with os/exec or syscall.ForkExec does
// not inherit them, and permits held through a Weighted stay with this
// process. Inherit keeps an object's fd open across exec (it is then shared
// with the new program: permits it holds are held by the shared file and
// come back only when every copy is closed). Go programs do not fork
// without exec. The kernel returns a Weighted's permits, and a Breaker's
// half-open probe slot, when the process that holds them dies.
//
// # Blocking calls
//
// Wait, WaitN and Acquire block in the kernel (FIFO order with every other
// waiter, in any process). A goroutine blocked there holds an OS thread, as
// in any blocking system call: many thousands of goroutines blocked at once
// need as many threads (Go's limit is 10000, runtime/debug.SetMaxThreads).
// Their context's cancellation and Close of the handle end the wait.
//
// # Fast paths
//
// As the C library does, the package leaves out the system call where the
// module allows it, transparently (same results, same FIFO order): a
// Weighted's Acquire, TryAcquire and Release use the fd's semaphore slot
// (KPRIM_FEAT_SEM_SLOT), a Limiter's Allow, AllowN and WaitN the limiter's
// state page (KPRIM_FEAT_LIMITER_PAGE; amd64 only, and not in a time
// namespace that shifts CLOCK_MONOTONIC). Each is one page mapped when the
// handle is opened, used only while nobody waits for the object, and
// unmapped by Close once no call is using it. Setting KPRIM_NO_SEM_SLOT,
// resp. KPRIM_NO_LIMITER_PAGE, in the environment (to anything but "0")
// before a handle is opened turns it off for that handle.
//
// # Errors
//
// Kernel errors are returned as unix.Errno values (compare with errors.Is,
// e.g. errors.Is(err, unix.EEXIST)); ENODEV means the module is not loaded.
package kprim

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Flag selects how Open* find or create an object (the C library's
// KPRIM_* open flags, same values).
type Flag uint32

const (
	Create    Flag = openCreate    // create when absent
	Excl      Flag = openExcl      // with Create: fail (EEXIST) if present
	Transient Flag = openTransient // on create: gone with its last handle
	Owned     Flag = openOwned     // EPERM unless the caller owns it
	Inherit   Flag = openInherit   // keep the fd open across exec
	AnyOwner  Flag = 1 << 31       // with Create: no implied Owned
)

// The kinds Unlink takes.
const (
	KindLimiter = kindLimiter
	KindSem     = kindSem
	KindCache   = kindCache
)

type session struct {
	fd       int
	features uint64
}

var (
	sessMu sync.Mutex
	sessp  atomic.Pointer[session]
)

// The /dev/kprim session every object is opened through: opened on first
// use (close-on-exec) and kept for the process, like the C library's
// struct kprim. A failure is not kept: a later call tries again (the
// module may have been loaded since).
func getSession() (*session, error) {
	if s := sessp.Load(); s != nil {
		return s, nil
	}
	sessMu.Lock()
	defer sessMu.Unlock()
	if s := sessp.Load(); s != nil {
		return s, nil
	}
	fd, err := unix.Open("/dev/kprim", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT || err == unix.ENXIO {
			err = unix.ENODEV
		}
		return nil, err
	}
	api := kAPI{Size: uint32(unsafe.Sizeof(kAPI{}))}
	if _, err = ioctl(fd, iocAPI, unsafe.Pointer(&api)); err != nil || api.APIVersion != apiVersion {
		unix.Close(fd)
		if err == nil || err == unix.ENOTTY {
			err = unix.EPROTO
		}
		return nil, err
	}
	s := &session{fd: fd, features: api.Features}
	sessp.Store(s)
	return s, nil
}

// Features reports the module's KPRIM_FEAT_* bits (and ENODEV when it is
// not loaded).
func Features() (uint64, error) {
	s, err := getSession()
	if err != nil {
		return 0, err
	}
	return s.features, nil
}

// object is what every handle holds: the object fd, -1 once closed, and
// the fd's shared page when it has one. A call reads the page only inside
// with(), under mu's read lock, as it uses the fd: Close unmaps it under
// the write lock, after every call in progress has left, so no call can
// touch the page once it is gone.
type object struct {
	mu      sync.RWMutex // fd and page against Close
	fd      int
	page    []byte        // the fd's mapping (slot or limiter page), or nil
	closing chan struct{} // closed by Close: blocked waits end
	once    sync.Once
}

func newObject(fd int) object {
	return object{fd: fd, closing: make(chan struct{})}
}

var errClosed = errors.New("kprim: use of closed handle")

// openObject is kprim_obj_open(): flags checked and translated as the C
// library does, params already in a.
func openObject(kind uint32, name string, flags Flag, mode uint32, a *kOpen) (int, error) {
	s, err := getSession()
	if err != nil {
		return -1, err
	}
	known := Create | Excl | Transient | Owned | Inherit | AnyOwner
	if flags&^known != 0 || (flags&Owned != 0 && flags&AnyOwner != 0) || mode&^0777 != 0 {
		return -1, unix.EINVAL
	}
	if flags&Create != 0 && name != "" && flags&AnyOwner == 0 {
		flags |= Owned
	}
	flags &^= AnyOwner
	if flags&Owned != 0 && s.features&featOpenOwned == 0 {
		return -1, unix.EOPNOTSUPP
	}
	if s.features&featCloexecDefault == 0 {
		// An older module inherits by default and knows no INHERIT.
		if flags&Inherit != 0 {
			flags &^= Inherit
		} else {
			flags |= openCloexec
		}
	}
	if len(name) > nameMax {
		return -1, unix.ENAMETOOLONG
	}
	a.Size = uint32(unsafe.Sizeof(*a))
	a.Flags |= uint32(flags)
	a.Kind = kind
	a.Mode = mode
	a.Name = strPtr(name)
	a.NameLen = uint32(len(name))
	fd, err := ioctl(s.fd, iocOpen, unsafe.Pointer(a))
	runtime.KeepAlive(name)
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// Unlink removes a named object's name (KindLimiter, KindSem, KindCache);
// open handles keep the object. The owner only (EPERM otherwise).
func Unlink(kind int, name string) error {
	s, err := getSession()
	if err != nil {
		return err
	}
	if name == "" {
		return unix.EINVAL
	}
	if len(name) > nameMax {
		return unix.ENAMETOOLONG
	}
	u := kUnlink{Size: uint32(unsafe.Sizeof(kUnlink{})), Kind: uint32(kind),
		NameLen: uint32(len(name)), Name: strPtr(name)}
	_, err = ioctl(s.fd, iocUnlink, unsafe.Pointer(&u))
	runtime.KeepAlive(name)
	return err
}

// with runs f on the fd unless the handle is closed (Close waits for it).
func (o *object) with(f func(fd int) error) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.fd < 0 {
		return errClosed
	}
	return f(o.fd)
}

// close ends the waits in progress on the handle (they return an error
// saying it is closed), waits for the calls in progress, closes the fd.
func (o *object) close() error {
	o.once.Do(func() { close(o.closing) })
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fd < 0 {
		return errClosed
	}
	// The mapping holds the fd's file: unmap first, so that the close
	// is the last reference (it returns a semaphore's permits).
	if o.page != nil {
		unix.Munmap(o.page)
		o.page = nil
	}
	err := unix.Close(o.fd)
	o.fd = -1
	return err
}

// mapPage is kprim_obj_page_map(): the fd's page (one page, offset 0,
// shared, read and write), or nil when env is set to anything but "0"
// (the switch that turns the page off), the module has no such page
// (feature bit feat), or the mmap fails (the calls then take the ioctls).
func mapPage(fd int, feat uint64, env string) []byte {
	if v := os.Getenv(env); v != "" && v != "0" {
		return nil
	}
	s := sessp.Load()
	if s == nil || s.features&feat == 0 {
		return nil
	}
	ps := os.Getpagesize()
	if ps < 4096 {
		return nil
	}
	mem, err := unix.Mmap(fd, 0, ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return mem
}

// Fd returns the object's fd (for poll/epoll, or to pass to another
// process), -1 once closed. It stays the handle's.
func (o *object) Fd() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.fd
}
