// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

// The user/kernel ABI of kmod/uapi/kprim.h, transcribed. Every struct has
// the layout of its C counterpart (abi_test.go checks the sizes against
// the header's KPRIM_SIZE_*_VER0 and go_peer's sizeof). Pointer fields
// are uptr, a typed pointer padded to 64 bits, so the garbage collector
// sees (and the stack copier adjusts) what the kernel will read.

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	apiVersion = 1
	nameMax    = 255 // KPRIM_NAME_MAX
	keyMax     = 250 // KPRIM_KEY_MAX

	timeoutInfinite = ^uint64(0) // KPRIM_TIMEOUT_INFINITE
	noCancelFd      = -1         // KPRIM_NO_CANCEL_FD

	kindLimiter = 1
	kindSem     = 2
	kindCache   = 3

	featOpenOwned      = 1 << 6
	featCloexecDefault = 1 << 7
	featCacheMget      = 1 << 8
	featLimiterPage    = 1 << 10
	featSemSlot        = 1 << 11
	openCreate         = 1 << 0
	openExcl           = 1 << 1
	openTransient      = 1 << 2
	openCloexec        = 1 << 3
	openInitial        = 1 << 4
	openOwned          = 1 << 5
	openInherit        = 1 << 6
	limiterSetRate     = 1 << 0
	limiterSetBurst    = 1 << 1
	cacheOpSet         = 0
	cacheOpAdd         = 1
	cacheOpReplace     = 2
	cacheOpCAS         = 3
	cacheTTL           = 1 << 0 // store: use ttl_ns
	cachePin           = 1 << 1 // store: never evicted
	cacheDefaultTTL    = 1 << 0 // touch: the cache's default TTL
	cacheDecr          = 1 << 0
	cacheMgetMax       = 1024
	iocMagic           = 0xB9
)

type kAPI struct {
	Size, Flags        uint32
	APIVersion, _      uint32
	Features           uint64
	MaxObjects, MaxObj uint32
}

type kWait struct {
	TimeoutNs uint64
	CancelFd  int32
	_         uint32
}

type kLimiterParams struct {
	Rate, PeriodNs, Burst, Initial uint64
}

type kOpen struct {
	Size, Flags uint32
	Kind, Mode  uint32
	Name        uptr
	NameLen, _  uint32
	Params      [8]uint64 // limiter, sem or cache parameters
}

type kUnlink struct {
	Size, Flags   uint32
	Kind, NameLen uint32
	Name          uptr
}

type kLimiterTake struct {
	Size, Flags  uint32
	N            uint64
	Wait         kWait
	RetryAfterNs uint64
}

type kLimiterSet struct {
	Size, Flags uint32
	Params      kLimiterParams
}

type kLimiterInfo struct {
	Size, Flags                          uint32
	Params                               kLimiterParams
	Tokens, Waiters, Admitted, Throttled uint64
}

type kSemAcquire struct {
	Size, Flags uint32
	N           uint64
	Wait        kWait
}

type kSemRelease struct {
	Size, Flags uint32
	N           uint64
}

type kSemInfo struct {
	Size, Flags                        uint32
	Permits, Available, Held, HeldByMe uint64
	Waiters, Acquired                  uint64
	Holders                            uptr
	NrHolders, _                       uint32
}

type kCacheGet struct {
	Size, Flags uint32
	Key         uptr
	KeyLen, _   uint32
	Value       uptr
	ValueLen    uint64
	TTLNs       uint64
	CAS         uint64
}

type kCacheStore struct {
	Size, Flags uint32
	Key         uptr
	KeyLen, Op  uint32
	Value       uptr
	ValueLen    uint64
	TTLNs       uint64
	CAS         uint64
}

type kCacheKey struct {
	Size, Flags uint32
	Key         uptr
	KeyLen, _   uint32
	TTLNs       uint64
}

type kCacheIncr struct {
	Size, Flags uint32
	Key         uptr
	KeyLen, _   uint32
	Delta       uint64
	Initial     uint64
	Value       uint64
	CAS         uint64
}

type kCacheInfo struct {
	Size, Flags                            uint32
	MaxBytes, MaxEntries, MaxValue, DefTTL uint64
	Bytes, Entries, Hits, Misses           uint64
	Evictions, Expirations                 uint64
}

type kMgetEntry struct {
	Key      uptr
	KeyLen   uint32
	Result   int32
	Value    uptr
	ValueLen uint64
	TTLNs    uint64
	CAS      uint64
}

type kCacheMget struct {
	Size, Flags      uint32
	Entries          uptr
	Count, EntrySize uint32
	_                uint64
}

type kHdr struct {
	Size, Flags uint32
}

// ioc encodes a command as <linux/ioctl.h> does (iocWrite, iocRead and the
// size field's width depend on the architecture: ioc_*.go).
func ioc(dir, nr, size uintptr) uintptr {
	return dir<<iocDirShift | size<<iocSizeShift | iocMagic<<8 | nr
}

// The size in a command is the struct's first published size: the kernel
// dispatches on the number and reads the size field.
var (
	iocAPI         = ioc(iocRead|iocWrite, 0x00, unsafe.Sizeof(kAPI{}))
	iocOpen        = ioc(iocWrite, 0x01, unsafe.Sizeof(kOpen{}))
	iocUnlink      = ioc(iocWrite, 0x02, unsafe.Sizeof(kUnlink{}))
	iocLimiterTake = ioc(iocRead|iocWrite, 0x10, unsafe.Sizeof(kLimiterTake{}))
	iocLimiterSet  = ioc(iocWrite, 0x11, unsafe.Sizeof(kLimiterSet{}))
	iocLimiterInfo = ioc(iocRead|iocWrite, 0x12, unsafe.Sizeof(kLimiterInfo{}))
	iocSemAcquire  = ioc(iocWrite, 0x20, unsafe.Sizeof(kSemAcquire{}))
	iocSemRelease  = ioc(iocWrite, 0x21, unsafe.Sizeof(kSemRelease{}))
	iocSemInfo     = ioc(iocRead|iocWrite, 0x23, unsafe.Sizeof(kSemInfo{}))
	iocCacheGet    = ioc(iocRead|iocWrite, 0x30, unsafe.Sizeof(kCacheGet{}))
	iocCacheStore  = ioc(iocRead|iocWrite, 0x31, unsafe.Sizeof(kCacheStore{}))
	iocCacheDelete = ioc(iocWrite, 0x32, unsafe.Sizeof(kCacheKey{}))
	iocCacheTouch  = ioc(iocWrite, 0x33, unsafe.Sizeof(kCacheKey{}))
	iocCacheIncr   = ioc(iocRead|iocWrite, 0x34, unsafe.Sizeof(kCacheIncr{}))
	iocCacheFlush  = ioc(iocWrite, 0x35, unsafe.Sizeof(kHdr{}))
	iocCacheInfo   = ioc(iocRead|iocWrite, 0x36, unsafe.Sizeof(kCacheInfo{}))
	iocCacheMget   = ioc(iocWrite, 0x37, unsafe.Sizeof(kCacheMget{}))
)

// kSemSlot is struct kprim_sem_slot, the page a semaphore fd maps
// (KPRIM_FEAT_SEM_SLOT); slotFree, slotHeld and slotSlow are the fields of
// its word (KPRIM_SEM_SLOT_*).
type kSemSlot struct {
	Word     uint64
	Acquired uint64
}

const (
	slotFree      = 0x7fffffff
	slotHeldShift = 31
	slotHeld      = 0xffffffff << slotHeldShift
	slotSlow      = 1 << 63
)

// ioctl runs one command; arg points to its struct (any pointer fields in
// it stay valid: the goroutine's stack does not move during a syscall).
// It restarts nothing: callers decide what EINTR means.
func ioctl(fd int, req uintptr, arg unsafe.Pointer) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}

// strPtr is the address of a string's bytes, for the kernel to read (a
// key or a name: never written). Empty strings give nil.
func strPtr(s string) uptr {
	if len(s) == 0 {
		return uptr{}
	}
	return mkptr(*(*unsafe.Pointer)(unsafe.Pointer(&s)))
}

func bytesPtr(b []byte) uptr {
	if len(b) == 0 {
		return uptr{}
	}
	return mkptr(unsafe.Pointer(&b[0]))
}
