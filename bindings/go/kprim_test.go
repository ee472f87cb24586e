// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// needModule skips on a host without the module (go test outside the
// VM); in the VM (TAP mode) a missing module is a failure.
func needModule(t *testing.T) {
	t.Helper()
	if _, err := Features(); err != nil {
		if tapMode {
			t.Fatalf("/dev/kprim: %v", err)
		}
		t.Skipf("/dev/kprim: %v", err)
	}
}

func name(t *testing.T, what string) string {
	return fmt.Sprintf("gotest.%d.%s.%s", os.Getpid(), t.Name(), what)
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// The structs have the uapi's sizes (KPRIM_SIZE_*_VER0, which are also
// the sizes of today's structs).
func TestABISizes(t *testing.T) {
	for _, c := range []struct {
		what string
		got  uintptr
		want uintptr
	}{
		{"kprim_api", unsafe.Sizeof(kAPI{}), 32},
		{"kprim_open", unsafe.Sizeof(kOpen{}), 96},
		{"kprim_unlink", unsafe.Sizeof(kUnlink{}), 24},
		{"kprim_limiter_take", unsafe.Sizeof(kLimiterTake{}), 40},
		{"kprim_limiter_set", unsafe.Sizeof(kLimiterSet{}), 40},
		{"kprim_limiter_info", unsafe.Sizeof(kLimiterInfo{}), 72},
		{"kprim_sem_acquire", unsafe.Sizeof(kSemAcquire{}), 32},
		{"kprim_sem_release", unsafe.Sizeof(kSemRelease{}), 16},
		{"kprim_sem_info", unsafe.Sizeof(kSemInfo{}), 72},
		{"kprim_cache_get", unsafe.Sizeof(kCacheGet{}), 56},
		{"kprim_cache_store", unsafe.Sizeof(kCacheStore{}), 56},
		{"kprim_cache_key", unsafe.Sizeof(kCacheKey{}), 32},
		{"kprim_cache_incr", unsafe.Sizeof(kCacheIncr{}), 56},
		{"kprim_cache_info", unsafe.Sizeof(kCacheInfo{}), 88},
		{"kprim_cache_mget", unsafe.Sizeof(kCacheMget{}), 32},
		{"kprim_cache_mget_entry", unsafe.Sizeof(kMgetEntry{}), 48},
		{"kprim_hdr", unsafe.Sizeof(kHdr{}), 8},
	} {
		if c.got != c.want {
			t.Errorf("struct %s: %d bytes, the uapi's is %d", c.what, c.got, c.want)
		}
	}
	if off := unsafe.Offsetof(kLimiterTake{}.RetryAfterNs); off != 32 {
		t.Errorf("kprim_limiter_take.retry_after_ns at %d, want 32", off)
	}
	if off := unsafe.Offsetof(kOpen{}.Params); off != 32 {
		t.Errorf("kprim_open params at %d, want 32", off)
	}
}

// peer is the C program of the cross-language tests: KPRIM_GO_PEER, else
// /demo/go_peer (the VM), else the build tree's.
func peer(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("KPRIM_GO_PEER"), "/demo/go_peer", "../../build/tools/go_peer"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if tapMode {
		t.Fatal("go_peer not found (KPRIM_GO_PEER, /demo/go_peer)")
	}
	t.Skip("go_peer not built (make tools)")
	return ""
}

// The ioctl numbers this package computes are the C header's.
func TestABIIoctlNumbers(t *testing.T) {
	out, err := exec.Command(peer(t), "abi").Output()
	must(t, err, "go_peer abi")
	mine := map[string]uintptr{
		"KPRIM_IOC_API": iocAPI, "KPRIM_IOC_OPEN": iocOpen, "KPRIM_IOC_UNLINK": iocUnlink,
		"KPRIM_IOC_LIMITER_TAKE": iocLimiterTake, "KPRIM_IOC_LIMITER_SET": iocLimiterSet,
		"KPRIM_IOC_LIMITER_INFO": iocLimiterInfo, "KPRIM_IOC_SEM_ACQUIRE": iocSemAcquire,
		"KPRIM_IOC_SEM_RELEASE": iocSemRelease, "KPRIM_IOC_SEM_INFO": iocSemInfo,
		"KPRIM_IOC_CACHE_GET": iocCacheGet, "KPRIM_IOC_CACHE_STORE": iocCacheStore,
		"KPRIM_IOC_CACHE_DELETE": iocCacheDelete, "KPRIM_IOC_CACHE_TOUCH": iocCacheTouch,
		"KPRIM_IOC_CACHE_INCR": iocCacheIncr, "KPRIM_IOC_CACHE_FLUSH": iocCacheFlush,
		"KPRIM_IOC_CACHE_INFO": iocCacheInfo, "KPRIM_IOC_CACHE_MGET": iocCacheMget,
		"sizeof(struct kprim_cache_mget_entry)": unsafe.Sizeof(kMgetEntry{}),
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		v, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		k := strings.Join(f[:len(f)-1], " ")
		want, ok := mine[k]
		if err != nil || !ok {
			t.Errorf("go_peer abi: unexpected line %q", line)
			continue
		}
		seen++
		if uintptr(v) != want {
			t.Errorf("%s: C 0x%x, Go 0x%x", k, v, want)
		}
	}
	if seen != len(mine) {
		t.Errorf("go_peer abi: %d values, want %d", seen, len(mine))
	}
}

func TestOpenFlags(t *testing.T) {
	needModule(t)
	n := name(t, "lim")
	l, err := OpenLimiter(n, Create|Excl|Transient, 0600, 10, 5)
	must(t, err, "create")
	defer l.Close()
	if _, err := OpenLimiter(n, Create|Excl, 0600, 10, 5); !errors.Is(err, unix.EEXIST) {
		t.Errorf("Create|Excl of an existing name: %v, want EEXIST", err)
	}
	if _, err := OpenLimiter(name(t, "absent"), 0, 0, 10, 5); !errors.Is(err, unix.ENOENT) {
		t.Errorf("open of an absent name: %v, want ENOENT", err)
	}
	if _, err := OpenLimiter(n, Create|Owned|AnyOwner, 0600, 10, 5); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Owned|AnyOwner: %v, want EINVAL", err)
	}
	if _, err := OpenLimiter(n, Create, 01000, 10, 5); !errors.Is(err, unix.EINVAL) {
		t.Errorf("mode 01000: %v, want EINVAL", err)
	}
	if _, err := OpenLimiter(strings.Repeat("x", 256), Create, 0600, 10, 5); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Errorf("256-byte name: %v, want ENAMETOOLONG", err)
	}
	if _, err := OpenLimiter("a/b", Create, 0600, 10, 5); !errors.Is(err, unix.EINVAL) {
		t.Errorf("name with '/': %v, want EINVAL", err)
	}
	// Close-on-exec unless Inherit.
	fl, err := unix.FcntlInt(uintptr(l.Fd()), unix.F_GETFD, 0)
	if err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("object fd flags %#x (%v): want FD_CLOEXEC", fl, err)
	}
	s, _ := getSession()
	if fl, err = unix.FcntlInt(uintptr(s.fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("session fd flags %#x (%v): want FD_CLOEXEC", fl, err)
	}
	li, err := OpenLimiter(n, Inherit, 0, 0, 1)
	must(t, err, "open Inherit")
	if fl, err = unix.FcntlInt(uintptr(li.Fd()), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC != 0 {
		t.Errorf("Inherit fd flags %#x (%v): want no FD_CLOEXEC", fl, err)
	}
	li.Close()
	if err := li.Close(); err != errClosed {
		t.Errorf("second Close: %v", err)
	}
	if li.Allow() {
		t.Error("Allow on a closed handle said yes")
	}
}

func TestLimiterAllow(t *testing.T) {
	needModule(t)
	l, err := OpenLimiter("", 0, 0, Every(time.Hour), 5)
	must(t, err, "open")
	defer l.Close()
	for i := 0; i < 5; i++ {
		if !l.Allow() {
			t.Fatalf("Allow %d of a full bucket of 5: false", i+1)
		}
	}
	if l.Allow() {
		t.Error("6th Allow: true")
	}
	if tk := l.Tokens(); tk != 0 {
		t.Errorf("Tokens %v, want 0", tk)
	}
	if b := l.Burst(); b != 5 {
		t.Errorf("Burst %d, want 5", b)
	}
	if lim := l.Limit(); lim != Every(time.Hour) {
		t.Errorf("Limit %v, want %v", lim, Every(time.Hour))
	}
	if l.AllowN(time.Now(), 6) {
		t.Error("AllowN above the burst: true")
	}
	if !l.AllowN(time.Now(), 0) {
		t.Error("AllowN(0): false")
	}
	st, err := l.Stats()
	must(t, err, "stats")
	if st.Admitted != 5 || st.Rate != 1 || st.PeriodNs != uint64(time.Hour) {
		t.Errorf("stats %+v: want 5 admitted, 1 per hour", st)
	}
}

func TestLimiterRates(t *testing.T) {
	for _, c := range []struct {
		l       Limit
		r, p    uint64
		exactly bool
	}{
		{100, 100, 1e9, true},
		{Every(250 * time.Millisecond), 4, 1e9, true},
		{Every(3 * time.Second), 1, 3e9, true},
		{Every(time.Hour), 1, 3600e9, true},
		{2.5, 1, 4e8, true},
		{0.3, 3, 1e10, true},
		{1e9, 1e9, 1e9, true},
		{Inf, 1 << 62, 1, true},
	} {
		r, p := toKernelRate(c.l, 100)
		if r != c.r || p != c.p {
			t.Errorf("toKernelRate(%v) = %d/%dns, want %d/%dns", c.l, r, p, c.r, c.p)
		}
		if back := fromKernelRate(r, p); c.exactly && back != c.l {
			t.Errorf("fromKernelRate(toKernelRate(%v)) = %v", c.l, back)
		}
	}
	// Anything else: close, and burst*period fits 64 bits.
	for _, l := range []Limit{1.0 / 7, 123.456, 1e-6} {
		r, p := toKernelRate(l, 1000)
		if p > ^uint64(0)/1000 {
			t.Errorf("toKernelRate(%v): period %d overflows a burst of 1000", l, p)
		}
		if back := float64(fromKernelRate(r, p)); back < float64(l)*0.999 || back > float64(l)*1.001 {
			t.Errorf("toKernelRate(%v) = %d/%dns = %v", l, r, p, back)
		}
	}
	// Too slow for the burst: the slowest it allows.
	if r, p := toKernelRate(1e-9, 1000); r != 1 || p != ^uint64(0)/1000 {
		t.Errorf("toKernelRate(1e-9) with a burst of 1000: %d/%dns", r, p)
	}
}

func TestLimiterSet(t *testing.T) {
	needModule(t)
	l, err := OpenLimiter("", 0, 0, 10, 5)
	must(t, err, "open")
	defer l.Close()
	for _, lim := range []Limit{100, 2.5, Every(250 * time.Millisecond), Every(time.Hour), Inf} {
		l.SetLimit(lim)
		if got := l.Limit(); got != lim {
			t.Errorf("SetLimit(%v): Limit %v", lim, got)
		}
	}
	l.SetBurst(7)
	if b := l.Burst(); b != 7 {
		t.Errorf("SetBurst(7): Burst %d", b)
	}
	// Inf: the bucket is full whenever it is looked at.
	for i := 0; i < 100; i++ {
		if !l.AllowN(time.Now(), 7) {
			t.Fatalf("Inf: AllowN(7) %d false", i)
		}
	}
	if err := l.SetBurstErr(0); !errors.Is(err, unix.EINVAL) {
		t.Errorf("SetBurstErr(0): %v, want EINVAL", err)
	}
}

func TestLimiterWait(t *testing.T) {
	needModule(t)
	// The bucket starts empty when it is created, after start: its first
	// token comes 50 ms after that.
	start := time.Now()
	l, err := OpenLimiterInitial("", 0, 0, 20, 1, 0)
	must(t, err, "open")
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, l.Wait(ctx), "Wait")
	if d := time.Since(start); d < 45*time.Millisecond {
		t.Errorf("Wait for a token of a 20/s limiter returned after %v", d)
	}
	// Without a Done channel: no eventfd, the kernel's own wait.
	must(t, l.Wait(context.Background()), "Wait(Background)")
	if err := l.WaitN(ctx, 2); err == nil || !strings.Contains(err.Error(), "exceeds limiter's burst 1") {
		t.Errorf("WaitN above the burst: %v", err)
	}
}

// x/time/rate: a WaitN that cannot be done by the deadline fails at once.
func TestLimiterWaitDeadline(t *testing.T) {
	needModule(t)
	l, err := OpenLimiterInitial("", 0, 0, Every(time.Hour), 1, 0)
	must(t, err, "open")
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err = l.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "would exceed context deadline") {
		t.Errorf("Wait for a token an hour away with 5 s left: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("it took %v: it should fail at once", d)
	}
	// A deadline already past: ctx.Err().
	ctx2, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if err := l.Wait(ctx2); err != context.DeadlineExceeded {
		t.Errorf("Wait with an expired ctx: %v", err)
	}
}

// A cancel reaches the kernel wait (through the cancel eventfd).
func TestLimiterWaitCancel(t *testing.T) {
	needModule(t)
	l, err := OpenLimiterInitial("", 0, 0, Every(time.Hour), 1, 0)
	must(t, err, "open")
	defer l.Close()
	for i := 0; i < 3; i++ { // the eventfd goes back to the pool drained
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { res <- l.Wait(ctx) }()
		waitFor(t, "the waiter in the kernel", func() bool {
			st, _ := l.Stats()
			return st.Waiters == 1
		})
		cancel()
		select {
		case err := <-res:
			if err != context.Canceled {
				t.Errorf("cancelled Wait: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("cancel did not end the kernel wait")
		}
		if st, _ := l.Stats(); st.Waiters != 0 {
			t.Errorf("%d waiters left", st.Waiters)
		}
	}
	// A deadline is the kernel wait's timeout: a token 200 ms away
	// with 100 ms left fails at once; with 2 s left it comes.
	l.SetLimit(5)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	must(t, l.Wait(ctx), "Wait for a 5/s token with 2 s left")
}

func TestLimiterCloseEndsWait(t *testing.T) {
	needModule(t)
	l, err := OpenLimiterInitial("", 0, 0, Every(time.Hour), 1, 0)
	must(t, err, "open")
	res := make(chan error, 1)
	go func() { res <- l.Wait(context.Background()) }()
	waitFor(t, "the waiter in the kernel", func() bool {
		st, _ := l.Stats()
		return st.Waiters == 1
	})
	l.Close()
	select {
	case err := <-res:
		if err != errClosed {
			t.Errorf("Wait ended by Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the wait")
	}
}

func TestWeighted(t *testing.T) {
	needModule(t)
	n := name(t, "sem")
	s, err := OpenWeighted(n, Create|Transient, 0600, 3)
	must(t, err, "open")
	defer s.Close()
	ctx := context.Background()
	must(t, s.Acquire(ctx, 2), "Acquire 2")
	if s.TryAcquire(2) {
		t.Error("TryAcquire 2 of the 1 left: true")
	}
	if !s.TryAcquire(1) {
		t.Error("TryAcquire 1: false")
	}
	st, _ := s.Stats()
	if st.Held != 3 || st.HeldByMe != 3 || st.Available != 0 {
		t.Errorf("stats %+v: want 3 held", st)
	}
	// Another handle waits; a release wakes it.
	s2, err := OpenWeighted(n, 0, 0, 0)
	must(t, err, "second handle")
	defer s2.Close()
	res := make(chan error, 1)
	go func() { res <- s2.Acquire(ctx, 2) }()
	waitFor(t, "the waiter", func() bool { st, _ := s.Stats(); return st.Waiters == 1 })
	s.Release(2)
	must(t, <-res, "Acquire woken by Release")
	if st, _ = s2.Stats(); st.HeldByMe != 2 {
		t.Errorf("second handle holds %d, want 2", st.HeldByMe)
	}
	func() {
		defer func() {
			if r := recover(); r != "semaphore: released more than held" {
				t.Errorf("Release of more than held: panic %v", r)
			}
		}()
		s.Release(2)
	}()
	if st, _ = s.Stats(); st.HeldByMe != 1 {
		t.Errorf("after the refused Release: %d held, want 1", st.HeldByMe)
	}
	// Closing a handle returns its permits.
	s2.Close()
	if st, _ = s.Stats(); st.Held != 1 {
		t.Errorf("after Close of the second handle: %d held, want 1", st.Held)
	}
}

func TestWeightedAcquireCtx(t *testing.T) {
	needModule(t)
	s, err := OpenWeighted("", 0, 0, 2)
	must(t, err, "open")
	defer s.Close()
	must(t, s.Acquire(context.Background(), 2), "Acquire all")
	// Cancel: the kernel wait ends, nothing acquired.
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- s.Acquire(ctx, 1) }()
	waitFor(t, "the waiter", func() bool { st, _ := s.Stats(); return st.Waiters == 1 })
	cancel()
	if err := <-res; err != context.Canceled {
		t.Errorf("cancelled Acquire: %v", err)
	}
	// Deadline: the kernel's timeout.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Acquire(ctx, 1); err != context.DeadlineExceeded {
		t.Errorf("Acquire past its deadline: %v", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("Acquire with 300 ms: returned after %v", d)
	}
	// More than the size: blocks until ctx is done (x/sync's behaviour).
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Acquire(ctx, 3); err != context.DeadlineExceeded {
		t.Errorf("Acquire 3 of 2: %v", err)
	}
	// An ended ctx still succeeds when the permits are free.
	s.Release(2)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := s.Acquire(ctx, 1); err != nil {
		t.Errorf("Acquire of a free permit with a cancelled ctx: %v", err)
	}
	if st, _ := s.Stats(); st.Held != 1 || st.Waiters != 0 {
		t.Errorf("stats %+v: want 1 held, no waiter", st)
	}
}

// The kernel gives a dead process's permits back.
func TestWeightedDeathReturnsPermits(t *testing.T) {
	needModule(t)
	n := name(t, "sem")
	s, err := OpenWeighted(n, Create|Transient, 0600, 3)
	must(t, err, "open")
	defer s.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "KPRIM_GO_HELPER=hold", "KPRIM_GO_NAME="+n)
	out, err := cmd.StdoutPipe()
	must(t, err, "pipe")
	must(t, cmd.Start(), "start the helper")
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "held\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	if st, _ := s.Stats(); st.Held != 2 {
		t.Errorf("helper holds %d, want 2", st.Held)
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, "the permits back", func() bool { st, _ := s.Stats(); return st.Held == 0 })
	if !s.TryAcquire(3) {
		t.Error("TryAcquire 3 after the helper died: false")
	}
}

func helper(what string) int {
	switch what {
	case "hold":
		s, err := OpenWeighted(os.Getenv("KPRIM_GO_NAME"), 0, 0, 0)
		if err == nil {
			err = s.Acquire(context.Background(), 2)
		}
		if err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("held")
		select {}
	case "exclusion":
		// TestSemSlotMutualExclusion's other process: the counters are
		// fd 3.
		cnt, _, err := sharedCounters(3)
		end, _ := strconv.ParseInt(os.Getenv("KPRIM_GO_END"), 10, 64)
		if err == nil {
			err = exclusion(os.Getenv("KPRIM_GO_NAME"), 2, 4, time.Unix(0, end), cnt)
		}
		if err != nil {
			fmt.Println(err)
			return 1
		}
		return 0
	case "limrate":
		// TestLimiterPageRateAcrossProcesses's other process.
		cnt, _, err := sharedCounters(3)
		end, _ := strconv.ParseInt(os.Getenv("KPRIM_GO_END"), 10, 64)
		if err == nil {
			err = limitHammer(os.Getenv("KPRIM_GO_NAME"), 4, time.Unix(0, end), cnt)
		}
		if err != nil {
			fmt.Println(err)
			return 1
		}
		return 0
	case "inherit":
		// TestSemSlotInheritedAcrossExec's child: the fd only, by number,
		// no mapping; raw ioctls, told when to release on stdin.
		fd, _ := strconv.Atoi(os.Getenv("KPRIM_GO_FD"))
		a := kSemAcquire{Size: uint32(unsafe.Sizeof(kSemAcquire{})), N: 1}
		a.Wait.CancelFd = noCancelFd
		if _, err := ioctl(fd, iocSemAcquire, unsafe.Pointer(&a)); err != nil {
			fmt.Println("acquire:", err)
			return 1
		}
		fmt.Println("got")
		bufio.NewReader(os.Stdin).ReadString('\n')
		r := kSemRelease{Size: uint32(unsafe.Sizeof(kSemRelease{})), N: 1}
		if _, err := ioctl(fd, iocSemRelease, unsafe.Pointer(&r)); err != nil {
			fmt.Println("release:", err)
			return 1
		}
		fmt.Println("released")
		return 0
	case "timens":
		// TestLimiterPageTimeNamespace's child, in a time namespace.
		return timensChild()
	}
	return 2
}

func TestCache(t *testing.T) {
	needModule(t)
	c, err := OpenCache(name(t, "cache"), Create|Transient, 0600, nil)
	must(t, err, "open")
	defer c.Close()
	must(t, c.Set(&Item{Key: "a", Value: []byte("1")}), "Set")
	it, err := c.Get("a")
	if err != nil || string(it.Value) != "1" || it.Key != "a" || it.CasID == 0 {
		t.Fatalf("Get a: %+v %v", it, err)
	}
	if _, err := c.Get("nope"); err != ErrCacheMiss {
		t.Errorf("Get of an absent key: %v", err)
	}
	if err := c.Add(&Item{Key: "a", Value: []byte("2")}); err != ErrNotStored {
		t.Errorf("Add of a present key: %v", err)
	}
	if err := c.Replace(&Item{Key: "b", Value: []byte("2")}); err != ErrNotStored {
		t.Errorf("Replace of an absent key: %v", err)
	}
	must(t, c.Add(&Item{Key: "b", Value: []byte("x")}), "Add")
	must(t, c.Replace(&Item{Key: "b", Value: []byte("y")}), "Replace")
	// CompareAndSwap: the version of the Get, or a conflict.
	old := *it
	must(t, c.Set(&Item{Key: "a", Value: []byte("other")}), "Set")
	old.Value = []byte("mine")
	if err := c.CompareAndSwap(&old); err != ErrCASConflict {
		t.Errorf("CompareAndSwap after another Set: %v", err)
	}
	it, _ = c.Get("a")
	it.Value = []byte("mine")
	must(t, c.CompareAndSwap(it), "CompareAndSwap at the current version")
	if it2, _ := c.Get("a"); it2 == nil || string(it2.Value) != "mine" || it2.CasID != it.CasID {
		t.Errorf("after CompareAndSwap: %+v, want mine at %d", it2, it.CasID)
	}
	must(t, c.Delete("a"), "Delete")
	if err := c.Delete("a"); err != ErrCacheMiss {
		t.Errorf("Delete of an absent key: %v", err)
	}
	if err := c.CompareAndSwap(it); err != ErrNotStored {
		t.Errorf("CompareAndSwap of a deleted key: %v", err)
	}
	// Counters.
	if _, err := c.Increment("n", 1); err != ErrCacheMiss {
		t.Errorf("Increment of an absent key: %v", err)
	}
	must(t, c.Set(&Item{Key: "n", Value: []byte("40")}), "Set n")
	if v, err := c.Increment("n", 2); v != 42 || err != nil {
		t.Errorf("Increment: %d %v", v, err)
	}
	if v, err := c.Decrement("n", 50); v != 0 || err != nil {
		t.Errorf("Decrement below 0: %d %v (memcached stops at 0)", v, err)
	}
	if _, err := c.Increment("b", 1); err == nil {
		t.Error("Increment of a non-number: no error")
	}
	// Keys, values, flags.
	for _, k := range []string{"", strings.Repeat("k", 251)} {
		if err := c.Set(&Item{Key: k}); err != ErrMalformedKey {
			t.Errorf("Set of a %d-byte key: %v", len(k), err)
		}
		if _, err := c.Get(k); err != ErrMalformedKey {
			t.Errorf("Get of a %d-byte key: %v", len(k), err)
		}
	}
	if err := c.Set(&Item{Key: "f", Flags: 1}); err != ErrFlags {
		t.Errorf("Set with flags: %v", err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	bin := string([]byte{0, 1, 2, ' ', 0xff})
	must(t, c.Set(&Item{Key: "big", Value: big}), "Set 160 KB")
	must(t, c.Set(&Item{Key: bin, Value: nil}), "Set an empty value under a binary key")
	must(t, c.Set(&Item{Key: strings.Repeat("k", 250), Value: []byte("long")}), "Set a 250-byte key")
	if it, err := c.Get("big"); err != nil || !bytes.Equal(it.Value, big) {
		t.Errorf("Get 160 KB: %v", err)
	}
	if it, err := c.Get(bin); err != nil || len(it.Value) != 0 {
		t.Errorf("Get of the empty value: %+v %v", it, err)
	}
	// Expiration: negative is gone at once; seconds run out.
	must(t, c.Set(&Item{Key: "gone", Value: []byte("x"), Expiration: -1}), "Set expired")
	if _, err := c.Get("gone"); err != ErrCacheMiss {
		t.Errorf("Get of an expired item: %v", err)
	}
	must(t, c.Set(&Item{Key: "soon", Value: []byte("x"), Expiration: 1}), "Set 1 s")
	must(t, c.Touch("b", 1), "Touch 1 s")
	if err := c.Touch("nope", 1); err != ErrCacheMiss {
		t.Errorf("Touch of an absent key: %v", err)
	}
	time.Sleep(1200 * time.Millisecond)
	for _, k := range []string{"soon", "b"} {
		if _, err := c.Get(k); err != ErrCacheMiss {
			t.Errorf("Get %s after its second: %v", k, err)
		}
	}
	// GetMulti: found ones only, big values included.
	keys := []string{"big", "nope", bin, "n", "nope2"}
	m, err := c.GetMulti(keys)
	must(t, err, "GetMulti")
	if len(m) != 3 || !bytes.Equal(m["big"].Value, big) || string(m["n"].Value) != "0" ||
		m[bin] == nil || m["nope"] != nil {
		t.Errorf("GetMulti: %d items %v", len(m), m)
	}
	many := make([]string, 1500)
	for i := range many {
		many[i] = fmt.Sprintf("m%d", i)
		if i%3 == 0 {
			must(t, c.Set(&Item{Key: many[i], Value: []byte(many[i])}), "Set")
		}
	}
	m, err = c.GetMulti(many)
	must(t, err, "GetMulti of 1500")
	if len(m) != 500 || string(m["m1497"].Value) != "m1497" {
		t.Errorf("GetMulti of 1500 keys: %d found", len(m))
	}
	must(t, c.DeleteAll(), "DeleteAll")
	if st, _ := c.Stats(); st.Entries != 0 {
		t.Errorf("after DeleteAll: %d entries", st.Entries)
	}
}

// Gets racing Sets of the same key: the key is present throughout, so
// every Get returns one whole value some Set stored (of whatever size:
// the buffer is regrown when the value outgrows it), never a miss, never
// a torn or short value.
func TestCacheGetRacesSet(t *testing.T) {
	needModule(t)
	c, err := OpenCache("", 0, 0, nil)
	must(t, err, "open")
	defer c.Close()
	// Small values mostly (more rounds), and one beyond Get's first
	// buffer (4 KiB) now and then.
	vals := [][]byte{bytes.Repeat([]byte("a"), 10), bytes.Repeat([]byte("b"), 20), bytes.Repeat([]byte("c"), 5000)}
	must(t, c.Set(&Item{Key: "k", Value: vals[0]}), "Set")
	var wg sync.WaitGroup
	var mu sync.Mutex
	gets, misses, torn := 0, 0, 0
	end := time.Now().Add(3 * time.Second)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; time.Now().Before(end); i++ {
				if g < 2 {
					v := vals[i%2]
					if i%16 == 0 {
						v = vals[2]
					}
					if err := c.Set(&Item{Key: "k", Value: v}); err != nil {
						t.Errorf("Set: %v", err)
						return
					}
					continue
				}
				it, err := c.Get("k")
				mu.Lock()
				gets++
				switch {
				case err == ErrCacheMiss:
					misses++
				case err != nil:
					t.Errorf("Get: %v", err)
				case !bytes.Equal(it.Value, vals[0]) && !bytes.Equal(it.Value, vals[1]) &&
					!bytes.Equal(it.Value, vals[2]):
					torn++
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	st, _ := c.Stats()
	t.Logf("%d gets: %d misses, %d torn; %d evictions", gets, misses, torn, st.Evictions)
	if misses > 0 || torn > 0 {
		t.Errorf("a key present throughout: %d of %d gets missed, %d torn (%d evictions)",
			misses, gets, torn, st.Evictions)
	}
}

func breakerName(t *testing.T) string {
	n := fmt.Sprintf("go%d.%s", os.Getpid(), t.Name())
	t.Cleanup(func() {
		Unlink(KindCache, breakerPrefix+n)
		Unlink(KindSem, breakerPrefix+n)
	})
	return n
}

func TestBreaker(t *testing.T) {
	needModule(t)
	n := breakerName(t)
	var mu sync.Mutex
	var seen []string
	s := BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: 300 * time.Millisecond,
		HalfOpenProbes: 1, SuccessThreshold: 2,
		OnStateChange: func(name string, from, to State) {
			mu.Lock()
			seen = append(seen, from.String()+">"+to.String())
			mu.Unlock()
		}}
	b, err := OpenBreaker(n, s)
	must(t, err, "open")
	defer b.Close()
	if st := b.State(); st != StateClosed {
		t.Fatalf("new breaker: %v", st)
	}
	fail := errors.New("fail")
	for i := 0; i < 3; i++ {
		if _, err := b.Execute(func() (interface{}, error) { return nil, fail }); err != fail {
			t.Fatalf("Execute %d: %v", i, err)
		}
	}
	if st := b.State(); st != StateOpen {
		t.Fatalf("after 3 failures: %v", st)
	}
	if _, err := b.Allow(); err != ErrOpenState {
		t.Errorf("Allow while open: %v", err)
	}
	// A second handle (another process would be the same) sees it.
	s2 := s
	s2.OnStateChange = nil
	b2, err := OpenBreaker(n, s2)
	must(t, err, "second handle")
	defer b2.Close()
	if st := b2.State(); st != StateOpen {
		t.Errorf("second handle: %v", st)
	}
	time.Sleep(350 * time.Millisecond)
	done, err := b.Allow()
	must(t, err, "Allow after the open timeout")
	if st := b.State(); st != StateHalfOpen {
		t.Errorf("after the timeout: %v", st)
	}
	if _, err := b2.Allow(); err != ErrTooManyRequests {
		t.Errorf("second probe of 1: %v", err)
	}
	if c, _ := b.Counts(); c.ProbesInFlight != 1 {
		t.Errorf("probes in flight %d", c.ProbesInFlight)
	}
	done(true)
	done2, err := b2.Allow()
	must(t, err, "second probe, after the first reported")
	done2(true)
	if st := b.State(); st != StateClosed {
		t.Errorf("after 2 probe successes: %v", st)
	}
	mu.Lock()
	got := strings.Join(seen, " ")
	mu.Unlock()
	// The last transition was b2's: b reports its own only.
	if got != "closed>open open>half-open" {
		t.Errorf("OnStateChange: %q", got)
	}
	must(t, b2.ForceOpen(), "ForceOpen")
	time.Sleep(350 * time.Millisecond)
	if _, err := b.Allow(); err != ErrOpenState {
		t.Errorf("forced open, past the timeout: %v", err)
	}
	must(t, b.ForceClose(), "ForceClose")
	// The shared settings must agree.
	s3 := s2
	s3.SuccessThreshold = 3
	if _, err := OpenBreaker(n, s3); !errors.Is(err, unix.EEXIST) {
		t.Errorf("other shared settings: %v, want EEXIST", err)
	}
	s3 = s2
	s3.HalfOpenProbes = 2
	if _, err := OpenBreaker(n, s3); !errors.Is(err, unix.EEXIST) {
		t.Errorf("other probe count: %v, want EEXIST", err)
	}
	if _, err := OpenBreaker("a/b", s2); !errors.Is(err, unix.EINVAL) {
		t.Errorf("name with '/': %v", err)
	}
	if _, err := OpenBreaker(n, BreakerSettings{OpenTimeout: 1, HalfOpenProbes: 1, SuccessThreshold: 1}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("no trip condition: %v", err)
	}
}

func TestBreakerWindow(t *testing.T) {
	needModule(t)
	b, err := OpenBreaker(breakerName(t), BreakerSettings{Window: WindowCount, WindowSize: 10,
		MinCalls: 4, FailureRatePct: 50, OpenTimeout: time.Hour, HalfOpenProbes: 1, SuccessThreshold: 1})
	must(t, err, "open")
	defer b.Close()
	for i, ok := range []bool{true, false, true, true, false, true, false} {
		done, err := b.Allow()
		must(t, err, fmt.Sprintf("Allow %d", i))
		done(ok)
	}
	// 3 of 7 failed: below 50%.
	if st := b.State(); st != StateClosed {
		t.Fatalf("3 of 7 failed: %v", st)
	}
	done, _ := b.Allow()
	done(false)
	if st := b.State(); st != StateOpen {
		t.Errorf("4 of 8 failed: %v", st)
	}
}

// A Go and a C process (go_peer, built on libkprim) share one limiter,
// semaphore, cache and breaker.
func TestCPeerShares(t *testing.T) {
	needModule(t)
	p := peer(t)
	pre := fmt.Sprintf("gopeer%d", os.Getpid())
	t.Cleanup(func() {
		Unlink(KindCache, breakerPrefix+pre+".br")
		Unlink(KindSem, breakerPrefix+pre+".br")
	})
	l, err := OpenLimiter(pre+".lim", Create|Transient, 0600, Every(time.Hour), 10)
	must(t, err, "limiter")
	defer l.Close()
	s, err := OpenWeighted(pre+".sem", Create|Transient, 0600, 3)
	must(t, err, "semaphore")
	defer s.Close()
	c, err := OpenCache(pre+".cache", Create|Transient, 0600, nil)
	must(t, err, "cache")
	defer c.Close()
	b, err := OpenBreaker(pre+".br", BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: time.Hour,
		HalfOpenProbes: 1, SuccessThreshold: 1})
	must(t, err, "breaker")
	defer b.Close()

	if !l.AllowN(time.Now(), 4) {
		t.Fatal("AllowN 4 of 10")
	}
	must(t, s.Acquire(context.Background(), 2), "Acquire 2")
	must(t, c.Set(&Item{Key: "k", Value: []byte("from-go")}), "Set k")
	must(t, c.Set(&Item{Key: "ctr", Value: []byte("5")}), "Set ctr")
	for i := 0; i < 3; i++ {
		done, err := b.Allow()
		must(t, err, "breaker Allow")
		done(false)
	}

	out, err := exec.Command(p, "check", pre).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		t.Log(line)
	}
	must(t, err, "go_peer check")

	if tk := l.Tokens(); tk != 0 {
		t.Errorf("limiter: %v tokens after C took the 6 left", tk)
	}
	if st, _ := s.Stats(); st.Held != 2 || st.HeldByMe != 2 {
		t.Errorf("sem: %d held after C exited holding 1, want Go's 2", st.Held)
	}
	if it, err := c.Get("k2"); err != nil || string(it.Value) != "from-c" {
		t.Errorf("cache: k2 from C: %+v %v", it, err)
	}
	if it, err := c.Get("ctr"); err != nil || string(it.Value) != "6" {
		t.Errorf("cache: ctr after C's incr: %+v %v", it, err)
	}
	if st := b.State(); st != StateClosed {
		t.Errorf("breaker: %v after C's force close", st)
	}
	if cn, _ := b.Counts(); cn.ConsecutiveFailures != 1 {
		t.Errorf("breaker: %d failures in a row, C reported 1", cn.ConsecutiveFailures)
	}
	// C's failure and two of Go's make the row of 3.
	for i := 0; i < 2; i++ {
		done, err := b.Allow()
		must(t, err, "breaker Allow")
		done(false)
	}
	if st := b.State(); st != StateOpen {
		t.Errorf("breaker: %v after 1 C + 2 Go failures", st)
	}

	// A C waiter is woken by a Go release.
	must(t, s.Acquire(context.Background(), 1), "Acquire the last permit")
	cmd := exec.Command(p, "wait", pre)
	var cout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &cout, &cout
	must(t, cmd.Start(), "go_peer wait")
	waitFor(t, "the C waiter", func() bool { st, _ := s.Stats(); return st.Waiters == 1 })
	s.Release(1)
	err = cmd.Wait()
	t.Log(strings.TrimSpace(cout.String()))
	must(t, err, "go_peer wait")
}

// Cancels racing grants: every Wait ends granted or cancelled, and a
// cancel eventfd that fired just as its wait was granted goes back to the
// pool drained (a stale one would end a later, uncancelled wait at once).
func TestWaitCancelRace(t *testing.T) {
	needModule(t)
	l, err := OpenLimiterInitial("", 0, 0, 2000, 1, 0)
	must(t, err, "limiter")
	defer l.Close()
	s, err := OpenWeighted("", 0, 0, 1)
	must(t, err, "semaphore")
	defer s.Close()
	var granted, cancelled [2]int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				d := time.Duration((g*150+i)%7) * 150 * time.Microsecond
				go func() { time.Sleep(d); cancel() }()
				k := i % 2
				var err error
				if k == 0 {
					err = l.Wait(ctx)
				} else if err = s.Acquire(ctx, 1); err == nil {
					time.Sleep(50 * time.Microsecond)
					s.Release(1)
				}
				mu.Lock()
				switch err {
				case nil:
					granted[k]++
				case context.Canceled:
					cancelled[k]++
				default:
					t.Errorf("goroutine %d, wait %d: %v", g, i, err)
				}
				mu.Unlock()
				cancel()
			}
		}(g)
	}
	wg.Wait()
	t.Logf("limiter: %d granted, %d cancelled; semaphore: %d granted, %d cancelled",
		granted[0], cancelled[0], granted[1], cancelled[1])
	if cancelled[0]+cancelled[1] == 0 {
		t.Error("no wait was cancelled: the race was not run")
	}
	// Every pooled eventfd is clean: uncancelled waits all succeed.
	for i := 0; i < 2*efdPoolMax; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := l.Wait(ctx); err != nil {
			t.Errorf("uncancelled Wait %d: %v", i, err)
		}
		cancel()
	}
}

// Go goroutines (two handles) and a C process drive one shared breaker
// at once: every result is one the state machine may give, both sides
// see transitions, and no probe slot is left held.
func TestBreakerHammerWithC(t *testing.T) {
	needModule(t)
	p := peer(t)
	pre := fmt.Sprintf("gohammer%d", os.Getpid())
	n := pre + ".hb"
	t.Cleanup(func() {
		Unlink(KindCache, breakerPrefix+n)
		Unlink(KindSem, breakerPrefix+n)
	})
	s := BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: 2 * time.Millisecond,
		HalfOpenProbes: 2, SuccessThreshold: 2}
	b1, err := OpenBreaker(n, s)
	must(t, err, "breaker")
	defer b1.Close()
	b2, err := OpenBreaker(n, s)
	must(t, err, "second handle")
	defer b2.Close()
	cmd := exec.Command(p, "hammer", pre, "3")
	var cout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &cout, &cout
	must(t, cmd.Start(), "go_peer hammer")
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	end := time.Now().Add(3 * time.Second)
	for g := 0; g < 4; g++ {
		b := b1
		if g == 3 {
			b = b2
		}
		wg.Add(1)
		go func(g int, b *Breaker) {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				tk, err := b.AllowTicket()
				if err == nil {
					err = b.Done(tk, (i+g)%3 != 0)
				}
				mu.Lock()
				switch err {
				case nil, ErrOpenState, ErrTooManyRequests, ErrStale:
					outcomes[fmt.Sprint(err)]++
				default:
					t.Errorf("goroutine %d: %v", g, err)
				}
				mu.Unlock()
			}
		}(g, b)
	}
	wg.Wait()
	err = cmd.Wait()
	t.Log(strings.TrimSpace(cout.String()))
	must(t, err, "go_peer hammer")
	t.Logf("Go outcomes: %v", outcomes)
	c1, err := b1.Counts()
	must(t, err, "counts")
	c2, _ := b2.Counts()
	if c1.Transitions+c2.Transitions == 0 {
		t.Error("the Go handles made no transition")
	}
	if c1.ProbesInFlight != 0 {
		t.Errorf("%d probe slots still held", c1.ProbesInFlight)
	}
	if _, err := b1.StateErr(); err != nil {
		t.Errorf("state after the hammer: %v", err)
	}
}

// needFeature skips without the module's feature bit (in the VM the
// module has them all).
func needFeature(t *testing.T, bit uint64, what string) {
	t.Helper()
	needModule(t)
	if f, _ := Features(); f&bit == 0 {
		t.Skipf("the module has no %s", what)
	}
}

// Uncontended pairs go through the slot, no ioctl: the slot's tally of
// userspace acquisitions (which any system call on the fd moves into the
// kernel's count, and which only the fast path adds to) has all of them.
func TestSemSlotPairsWithoutIoctl(t *testing.T) {
	needFeature(t, featSemSlot, "KPRIM_FEAT_SEM_SLOT")
	t.Setenv("KPRIM_NO_SEM_SLOT", "")
	s, err := OpenWeighted("", 0, 0, 2)
	must(t, err, "open")
	defer s.Close()
	if s.slot == nil {
		t.Fatal("no slot mapped, though the module has KPRIM_FEAT_SEM_SLOT")
	}
	// The first acquire is the kernel's (nothing is parked yet); the
	// release parks the permit.
	if !s.TryAcquire(1) {
		t.Fatal("TryAcquire 1 of 2: false")
	}
	s.Release(1)
	if w := atomic.LoadUint64(&s.slot.Word); w != 1<<slotHeldShift|1 {
		t.Fatalf("slot word %#x after the first pair: want 1 held, 1 parked", w)
	}
	const pairs = 1000
	ctx := context.Background()
	for i := 0; i < pairs; i++ {
		if i%2 == 0 {
			if !s.TryAcquire(1) {
				t.Fatalf("pair %d: TryAcquire: false", i)
			}
		} else if err := s.Acquire(ctx, 1); err != nil {
			t.Fatalf("pair %d: Acquire: %v", i, err)
		}
		if err := s.ReleaseErr(1); err != nil {
			t.Fatalf("pair %d: Release: %v", i, err)
		}
	}
	if got := atomic.LoadUint64(&s.slot.Acquired); got != pairs {
		t.Errorf("the slot counted %d userspace acquisitions in %d pairs: the others were ioctls", got, pairs)
	}
	st, err := s.Stats()
	must(t, err, "stats")
	// INFO takes the parked permit back and counts the slot's tally.
	if st.Acquired != pairs+1 || st.Held != 0 || st.Available != 2 {
		t.Errorf("stats %+v: want %d acquired, nothing held", st, pairs+1)
	}
	// Two permits: one parked, one from the kernel; both go back.
	if !s.TryAcquire(1) || !s.TryAcquire(1) || s.TryAcquire(1) {
		t.Error("TryAcquire of 2 of 2, then a third: not true, true, false")
	}
	s.Release(2)
	if err := s.ReleaseErr(1); err != unix.EINVAL {
		t.Errorf("Release of more than held, with 2 parked: %v, want EINVAL", err)
	}
}

// KPRIM_NO_SEM_SLOT set when a handle is opened turns its slot off: the
// test maps the fd's page itself and sees the package leave it alone.
func TestSemSlotEnvSwitch(t *testing.T) {
	needFeature(t, featSemSlot, "KPRIM_FEAT_SEM_SLOT")
	for _, v := range []string{"1", "yes", "0", ""} {
		t.Setenv("KPRIM_NO_SEM_SLOT", v)
		s, err := OpenWeighted("", 0, 0, 1)
		must(t, err, "open")
		off := v != "" && v != "0"
		if (s.slot == nil) != off {
			t.Errorf("KPRIM_NO_SEM_SLOT=%q: slot mapped %v", v, s.slot != nil)
		}
		mem, err := unix.Mmap(s.Fd(), 0, os.Getpagesize(), unix.PROT_READ, unix.MAP_SHARED)
		must(t, err, "the test's mapping of the slot")
		sl := (*kSemSlot)(unsafe.Pointer(&mem[0]))
		var used uint64
		for i := 0; i < 100; i++ {
			if !s.TryAcquire(1) {
				t.Fatalf("KPRIM_NO_SEM_SLOT=%q: TryAcquire %d: false", v, i)
			}
			used += atomic.LoadUint64(&sl.Acquired)
			s.Release(1)
		}
		if off && used != 0 {
			t.Errorf("KPRIM_NO_SEM_SLOT=%q: the slot was used (tally %d)", v, used)
		} else if !off && used == 0 {
			t.Errorf("KPRIM_NO_SEM_SLOT=%q: the slot was not used", v)
		}
		if st, _ := s.Stats(); st.Acquired != 100 {
			t.Errorf("KPRIM_NO_SEM_SLOT=%q: %d acquired, want 100", v, st.Acquired)
		}
		unix.Munmap(mem)
		s.Close()
	}
}

// A waiter queued in the kernel is woken by a release that would have
// been parked, and is not overtaken by the releasing handle's next
// acquire: while it waits, the slots send every call to the kernel.
func TestSemSlotWaiterNotOvertaken(t *testing.T) {
	needFeature(t, featSemSlot, "KPRIM_FEAT_SEM_SLOT")
	n := name(t, "sem")
	a, err := OpenWeighted(n, Create|Transient, 0600, 2)
	must(t, err, "open")
	defer a.Close()
	b, err := OpenWeighted(n, 0, 0, 0)
	must(t, err, "second handle")
	defer b.Close()
	obs, err := OpenWeighted(n, 0, 0, 0)
	must(t, err, "observer")
	defer obs.Close()
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		// a holds both permits, the second one from its slot.
		must(t, a.Acquire(ctx, 2), "Acquire 2")
		a.Release(1)
		if !a.TryAcquire(1) {
			t.Fatalf("round %d: TryAcquire of the parked permit: false", round)
		}
		res := make(chan error, 1)
		go func() { res <- b.Acquire(ctx, 2) }()
		waitFor(t, "the waiter", func() bool { st, _ := obs.Stats(); return st.Waiters == 1 })
		// One permit back: the waiter wants two, and keeps its place.
		a.Release(1)
		if a.TryAcquire(1) {
			t.Fatalf("round %d: a's TryAcquire overtook the waiter", round)
		}
		ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		if err := a.Acquire(ctx2, 1); err != context.DeadlineExceeded {
			t.Fatalf("round %d: a's Acquire behind the waiter: %v", round, err)
		}
		cancel()
		a.Release(1)
		select {
		case err := <-res:
			must(t, err, "the waiter's Acquire")
		case <-time.After(10 * time.Second):
			st, _ := obs.Stats()
			t.Fatalf("round %d: the waiter was not woken by the releases (%+v)", round, st)
		}
		if st, _ := b.Stats(); st.HeldByMe != 2 {
			t.Fatalf("round %d: the waiter holds %d", round, st.HeldByMe)
		}
		b.Release(2)
	}
	if st, _ := obs.Stats(); st.Held != 0 || st.Waiters != 0 {
		t.Errorf("after the rounds: %+v", st)
	}
}

// exclusion runs workers goroutines on two handles of the semaphore name
// (permits permits) until end, counting in the shared page cnt how many
// are inside at once: [0] inside now, [1] times more than permits were,
// [2] entries, [3] samples that saw a slot's tally of userspace acquires
// above 0 (the fast path is used). Half the acquires block, half try.
func exclusion(name string, permits int32, workers int, end time.Time, cnt []int32) error {
	var hs [2]*Weighted
	for i := range hs {
		h, err := OpenWeighted(name, 0, 0, 0)
		if err != nil {
			return err
		}
		defer h.Close()
		hs[i] = h
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			for _, h := range hs {
				if h.slot != nil && atomic.LoadUint64(&h.slot.Acquired) > 0 {
					atomic.AddInt32(&cnt[3], 1)
				}
			}
		}
	}()
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			h := hs[g%2]
			for i := 0; time.Now().Before(end); i++ {
				if (i+g)%2 == 0 {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					err := h.Acquire(ctx, 1)
					cancel()
					if err != nil {
						errs <- fmt.Errorf("Acquire: %v", err)
						return
					}
				} else if !h.TryAcquire(1) {
					runtime.Gosched()
					continue
				}
				if atomic.AddInt32(&cnt[0], 1) > permits {
					atomic.AddInt32(&cnt[1], 1)
				}
				atomic.AddInt32(&cnt[2], 1)
				for j := 0; j < (i%4)*50; j++ {
					runtime.Gosched()
				}
				atomic.AddInt32(&cnt[0], -1)
				// A refused release is reported, and the run goes
				// on: what it does to exclusion is the point.
				if err := h.ReleaseErr(1); err != nil {
					select {
					case errs <- fmt.Errorf("Release: %v", err):
					default:
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	<-sampled
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// sharedCounters maps f (a page) shared: the counters exclusion() keeps.
func sharedCounters(fd int) ([]int32, []byte, error) {
	mem, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&mem[0])), 4), mem, nil
}

// Goroutines in two processes, two handles each, share 2 permits through
// slots, the kernel and its queue: never more than 2 inside.
func TestSemSlotMutualExclusion(t *testing.T) {
	needFeature(t, featSemSlot, "KPRIM_FEAT_SEM_SLOT")
	n := name(t, "sem")
	s, err := OpenWeighted(n, Create|Transient, 0600, 2)
	must(t, err, "open")
	defer s.Close()
	f, err := os.CreateTemp("", "kprim-excl")
	must(t, err, "counter file")
	os.Remove(f.Name())
	defer f.Close()
	must(t, f.Truncate(4096), "truncate")
	cnt, mem, err := sharedCounters(int(f.Fd()))
	must(t, err, "map the counters")
	defer unix.Munmap(mem)
	end := time.Now().Add(3 * time.Second)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "KPRIM_GO_HELPER=exclusion", "KPRIM_GO_NAME="+n,
		"KPRIM_GO_END="+strconv.FormatInt(end.UnixNano(), 10))
	cmd.ExtraFiles = []*os.File{f}
	var cout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &cout, &cout
	must(t, cmd.Start(), "start the helper")
	err = exclusion(n, 2, 4, end, cnt)
	cerr := cmd.Wait()
	if out := strings.TrimSpace(cout.String()); out != "" {
		t.Log(out)
	}
	t.Logf("%d entries, %d with more than 2 inside; %d samples saw a slot used",
		atomic.LoadInt32(&cnt[2]), atomic.LoadInt32(&cnt[1]), atomic.LoadInt32(&cnt[3]))
	if v := atomic.LoadInt32(&cnt[1]); v != 0 {
		t.Errorf("%d times more than 2 permits were in use", v)
	}
	must(t, err, "this process's workers")
	must(t, cerr, "the helper process")
	if atomic.LoadInt32(&cnt[2]) < 100 {
		t.Errorf("only %d entries: the test did not run", atomic.LoadInt32(&cnt[2]))
	}
	if atomic.LoadInt32(&cnt[3]) == 0 {
		t.Error("no slot was seen used: the fast path was not exercised")
	}
	if st, _ := s.Stats(); st.Held != 0 || st.Waiters != 0 || st.Available != 2 {
		t.Errorf("after the workers: %+v", st)
	}
}

// Close while goroutines use the handle (slot and ioctl paths alike):
// their calls end with the closed error, none faults on the unmapped
// slot, and the permits come back.
func TestSemSlotCloseWhileInUse(t *testing.T) {
	needFeature(t, featSemSlot, "KPRIM_FEAT_SEM_SLOT")
	n := name(t, "sem")
	obs, err := OpenWeighted(n, Create|Transient, 0600, 3)
	must(t, err, "open")
	defer obs.Close()
	for round := 0; round < 30; round++ {
		s, err := OpenWeighted(n, 0, 0, 0)
		must(t, err, "open a handle")
		var wg sync.WaitGroup
		var ops atomic.Int64
		bad := make(chan error, 4)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for {
					if g == 3 {
						ctx, cancel := context.WithTimeout(context.Background(), time.Second)
						err := s.Acquire(ctx, 1)
						cancel()
						if err == errClosed {
							return
						}
						if err == context.DeadlineExceeded {
							continue
						}
						if err != nil {
							bad <- err
							return
						}
					} else if !s.TryAcquire(1) {
						if s.Fd() < 0 {
							return
						}
						continue
					}
					ops.Add(1)
					if err := s.ReleaseErr(1); err == errClosed {
						return
					} else if err != nil {
						bad <- err
						return
					}
				}
			}(g)
		}
		waitFor(t, "the workers", func() bool { return ops.Load() > 50 })
		must(t, s.Close(), "Close")
		wg.Wait()
		select {
		case err := <-bad:
			t.Fatalf("round %d: %v", round, err)
		default:
		}
		if s.TryAcquire(1) || s.ReleaseErr(1) != errClosed {
			t.Fatalf("round %d: the closed handle still works", round)
		}
		if st, _ := obs.Stats(); st.Held != 0 {
			t.Fatalf("round %d: %d permits held after Close", round, st.Held)
		}
	}
}

// cas16 (LOCK CMPXCHG16B on amd64) swaps both words only when both match.
func TestCAS16(t *testing.T) {
	if !haveCAS16 {
		t.Skip("no 16-byte compare-and-swap on this architecture")
	}
	var buf [4]uint64
	p := &buf[0]
	if uintptr(unsafe.Pointer(p))%16 != 0 {
		p = &buf[1]
	}
	w := unsafe.Slice(p, 2)
	w[0], w[1] = 1, 2
	for _, c := range []struct {
		o0, o1 uint64
		ok     bool
	}{{1, 3, false}, {0, 2, false}, {1, 2, true}, {1, 2, false}, {^uint64(0), 1 << 63, true}} {
		if got := cas16(p, c.o0, c.o1, ^uint64(0), 1<<63); got != c.ok {
			t.Errorf("cas16 of {%#x %#x} expecting {%#x %#x}: %v", w[0], w[1], c.o0, c.o1, got)
		}
	}
	if w[0] != ^uint64(0) || w[1] != 1<<63 {
		t.Errorf("after the swaps: {%#x %#x}", w[0], w[1])
	}
	// Concurrent increments of both words: none lost.
	w[0], w[1] = 0, 0
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, tries := 0, 0; i < 20000; tries++ {
				a, b := atomic.LoadUint64(&w[0]), atomic.LoadUint64(&w[1])
				if cas16(p, a, b, a+1, b+2) {
					i++
				} else if tries > 1e7 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if w[0] != 80000 || w[1] != 160000 {
		t.Errorf("after 4 x 20000 concurrent swaps: {%d %d}", w[0], w[1])
	}
	// runtime.nanotime is CLOCK_MONOTONIC, the clock the kernel stamps
	// limiter pages with.
	var a, b unix.Timespec
	must(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &a), "clock_gettime")
	n := nanotime()
	must(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &b), "clock_gettime")
	if n < a.Nano() || n > b.Nano() {
		t.Errorf("nanotime %d not between two CLOCK_MONOTONIC reads %d, %d", n, a.Nano(), b.Nano())
	}
}

// needPage: the module has limiter pages and this machine the swap.
func needPage(t *testing.T) {
	t.Helper()
	needFeature(t, featLimiterPage, "KPRIM_FEAT_LIMITER_PAGE")
	if !haveCAS16 {
		t.Skip("no 16-byte compare-and-swap: no limiter page on this architecture")
	}
}

// Uncontended Allows are taken in the page, no ioctl: the page's count of
// tokens taken in userspace (which only takers in userspace add to) has
// all of them.
func TestLimiterPageAllowWithoutIoctl(t *testing.T) {
	needPage(t)
	t.Setenv("KPRIM_NO_LIMITER_PAGE", "")
	l, err := OpenLimiter("", 0, 0, 1e5, 100000)
	must(t, err, "open")
	defer l.Close()
	if l.pg == nil {
		t.Fatal("no page mapped, though the module has KPRIM_FEAT_LIMITER_PAGE")
	}
	if !l.Allow() {
		t.Fatal("Allow on a full bucket: false")
	}
	const takes = 1000
	before := atomic.LoadUint64(&l.pg.Admitted)
	ctx := context.Background()
	for i := 0; i < takes; i++ {
		if i%2 == 0 {
			if !l.Allow() {
				t.Fatalf("take %d: Allow: false", i)
			}
		} else if err := l.Wait(ctx); err != nil {
			t.Fatalf("take %d: Wait: %v", i, err)
		}
	}
	if got := atomic.LoadUint64(&l.pg.Admitted) - before; got != takes {
		t.Errorf("the page counted %d of %d takes: the others were ioctls", got, takes)
	}
	st, err := l.Stats()
	must(t, err, "stats")
	if st.Admitted != takes+1 || st.Throttled != 0 {
		t.Errorf("stats %+v: want %d admitted, none throttled", st, takes+1)
	}
	// More than the burst, and a bucket too short: the kernel's answers.
	if l.AllowN(time.Time{}, 100001) {
		t.Error("AllowN above the burst: true")
	}
	if err := l.WaitN(ctx, 100001); err == nil {
		t.Error("WaitN above the burst: no error")
	}
	if !l.AllowN(time.Time{}, 90000) || l.AllowN(time.Time{}, 90000) {
		t.Error("AllowN of 90000 twice from about 99000 (refill 100 a ms): not true, false")
	}
	if st, _ = l.Stats(); st.Throttled == 0 {
		t.Errorf("stats %+v: the refused take was not counted", st)
	}
}

// KPRIM_NO_LIMITER_PAGE set when a handle is opened turns its page off:
// the test maps the page itself and sees the package leave it alone.
func TestLimiterPageEnvSwitch(t *testing.T) {
	needPage(t)
	for _, v := range []string{"1", "yes", "0", ""} {
		t.Setenv("KPRIM_NO_LIMITER_PAGE", v)
		l, err := OpenLimiter("", 0, 0, 1e6, 1000)
		must(t, err, "open")
		off := v != "" && v != "0"
		if (l.pg == nil) != off {
			t.Errorf("KPRIM_NO_LIMITER_PAGE=%q: page mapped %v", v, l.pg != nil)
		}
		mem, err := unix.Mmap(l.Fd(), 0, os.Getpagesize(), unix.PROT_READ, unix.MAP_SHARED)
		must(t, err, "the test's mapping of the page")
		pg := (*kLimiterPage)(unsafe.Pointer(&mem[0]))
		before := atomic.LoadUint64(&pg.Admitted)
		for i := 0; i < 100; i++ {
			if !l.Allow() {
				t.Fatalf("KPRIM_NO_LIMITER_PAGE=%q: Allow %d: false", v, i)
			}
		}
		used := atomic.LoadUint64(&pg.Admitted) - before
		if off && used != 0 {
			t.Errorf("KPRIM_NO_LIMITER_PAGE=%q: %d takes in the page", v, used)
		} else if !off && used == 0 {
			t.Errorf("KPRIM_NO_LIMITER_PAGE=%q: the page was not used", v)
		}
		if st, _ := l.Stats(); st.Admitted != 100 {
			t.Errorf("KPRIM_NO_LIMITER_PAGE=%q: %d admitted, want 100", v, st.Admitted)
		}
		unix.Munmap(mem)
		l.Close()
	}
}

// A taker queued in the kernel gets the next token: Allow in another
// handle, which would find the token in the page, does not overtake it.
func TestLimiterPageWaiterNotOvertaken(t *testing.T) {
	needPage(t)
	n := name(t, "lim")
	a, err := OpenLimiter(n, Create|Transient, 0600, Every(100*time.Millisecond), 1)
	must(t, err, "open")
	defer a.Close()
	b, err := OpenLimiter(n, 0, 0, 0, 1)
	must(t, err, "second handle")
	defer b.Close()
	obs, err := OpenLimiter(n, 0, 0, 0, 1)
	must(t, err, "observer")
	defer obs.Close()
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		for a.Allow() {
		}
		res := make(chan error, 1)
		go func() { res <- b.Wait(ctx) }()
		waitFor(t, "the waiter", func() bool { st, _ := obs.Stats(); return st.Waiters == 1 })
		end := time.Now().Add(2 * time.Second)
		for !a.Allow() && time.Now().Before(end) {
			time.Sleep(time.Millisecond)
		}
		// a's first token after the waiter's: the waiter has left.
		if st, _ := obs.Stats(); st.Waiters != 0 {
			t.Fatalf("round %d: Allow took a token while a taker was queued (%+v)", round, st)
		}
		select {
		case err := <-res:
			must(t, err, "the waiter's Wait")
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the waiter was not served", round)
		}
	}
}

// limitHammer takes tokens of the limiter name with workers goroutines
// until end, counting those allowed in cnt[2] and, in cnt[3], the
// samples that saw the page's count of userspace takes grow.
func limitHammer(name string, workers int, end time.Time, cnt []int32) error {
	l, err := OpenLimiter(name, 0, 0, 0, 1)
	if err != nil {
		return err
	}
	defer l.Close()
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if l.Allow() {
					atomic.AddInt32(&cnt[2], 1)
				}
			}
		}()
	}
	for prev := uint64(0); l.pg != nil && time.Now().Before(end); {
		if a := atomic.LoadUint64(&l.pg.Admitted); prev != 0 && a > prev {
			atomic.AddInt32(&cnt[3], 1)
		} else if prev == 0 {
			prev = a + 1 // the first sample: later ones compare
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	return nil
}

// Goroutines in two processes take from one limiter through the page
// and the kernel: never more than the burst plus the rate allows.
func TestLimiterPageRateAcrossProcesses(t *testing.T) {
	needPage(t)
	n := name(t, "lim")
	const rate, burst = 2000, 20
	l, err := OpenLimiter(n, Create|Transient, 0600, rate, burst)
	must(t, err, "open")
	defer l.Close()
	f, err := os.CreateTemp("", "kprim-rate")
	must(t, err, "counter file")
	os.Remove(f.Name())
	defer f.Close()
	must(t, f.Truncate(4096), "truncate")
	cnt, mem, err := sharedCounters(int(f.Fd()))
	must(t, err, "map the counters")
	defer unix.Munmap(mem)
	start := time.Now()
	for l.Allow() {
	}
	end := time.Now().Add(2 * time.Second)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "KPRIM_GO_HELPER=limrate", "KPRIM_GO_NAME="+n,
		"KPRIM_GO_END="+strconv.FormatInt(end.UnixNano(), 10))
	cmd.ExtraFiles = []*os.File{f}
	var cout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &cout, &cout
	must(t, cmd.Start(), "start the helper")
	err = limitHammer(n, 4, end, cnt)
	cerr := cmd.Wait()
	elapsed := time.Since(start)
	if out := strings.TrimSpace(cout.String()); out != "" {
		t.Log(out)
	}
	got := int64(atomic.LoadInt32(&cnt[2]))
	// The bucket was emptied (less than a token left) after start: what
	// came since is the rate's, to the token (+1 for rounding).
	max := int64(rate*elapsed.Seconds()) + 2
	t.Logf("%d allowed in %v (at most %d), %d samples saw the page used", got, elapsed, max, atomic.LoadInt32(&cnt[3]))
	if got > max {
		t.Errorf("%d allowed in %v: more than %d", got, elapsed, max)
	}
	if got < rate/2 {
		t.Errorf("%d allowed in %v: the takers did not run", got, elapsed)
	}
	if atomic.LoadInt32(&cnt[3]) == 0 {
		t.Error("no sample saw the page used: the fast path was not exercised")
	}
	must(t, err, "this process's takers")
	must(t, cerr, "the helper process")
	st, _ := l.Stats()
	if int64(st.Admitted) > max+burst+1 {
		t.Errorf("the kernel counts %d admitted", st.Admitted)
	}
}

// A process whose CLOCK_MONOTONIC a time namespace shifts does not use
// the page (its times would be wrong for everyone else): a child started
// (by go_peer) in a new time namespace with a monotonic offset takes by
// the ioctl.
func TestLimiterPageTimeNamespace(t *testing.T) {
	needPage(t)
	p := peer(t)
	n := name(t, "lim")
	l, err := OpenLimiter(n, Create|Transient, 0600, 1e6, 1000)
	must(t, err, "open")
	defer l.Close()
	cmd := exec.Command(p, "timens", os.Args[0])
	cmd.Env = append(os.Environ(), "KPRIM_GO_HELPER=timens", "KPRIM_GO_NAME="+n)
	out, err := cmd.CombinedOutput()
	t.Log(strings.TrimSpace(string(out)))
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 77 {
		t.Skip("no time namespaces")
	}
	must(t, err, "the child in the time namespace")
	if st, _ := l.Stats(); st.Admitted != 100 {
		t.Errorf("%d admitted, want the child's 100", st.Admitted)
	}
}

func timensChild() int {
	b, _ := os.ReadFile("/proc/self/timens_offsets")
	fmt.Printf("child's timens_offsets: %q\n", b)
	l, err := OpenLimiter(os.Getenv("KPRIM_GO_NAME"), 0, 0, 0, 1)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer l.Close()
	if l.pg == nil {
		fmt.Println("no page mapped")
		return 1
	}
	before := atomic.LoadUint64(&l.pg.Admitted)
	for i := 0; i < 100; i++ {
		if !l.Allow() {
			fmt.Printf("Allow %d: false\n", i)
			return 1
		}
	}
	if d := atomic.LoadUint64(&l.pg.Admitted) - before; d != 0 {
		fmt.Printf("%d of 100 takes in the page with a shifted clock\n", d)
		return 1
	}
	fmt.Println("100 takes, all by the ioctl")
	return 0
}

// Close while goroutines take through the page: their calls fail, none
// faults on the unmapped page.
func TestLimiterPageCloseWhileInUse(t *testing.T) {
	needPage(t)
	for round := 0; round < 30; round++ {
		l, err := OpenLimiter("", 0, 0, 1e6, 1000)
		must(t, err, "open")
		var wg sync.WaitGroup
		var ops atomic.Int64
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for l.Fd() >= 0 {
					if g == 3 {
						ctx, cancel := context.WithTimeout(context.Background(), time.Second)
						l.Wait(ctx)
						cancel()
					} else {
						l.Allow()
					}
					ops.Add(1)
				}
			}(g)
		}
		waitFor(t, "the takers", func() bool { return ops.Load() > 50 })
		must(t, l.Close(), "Close")
		wg.Wait()
		if l.Allow() {
			t.Fatalf("round %d: Allow on the closed handle: true", round)
		}
	}
}

// An fd kept across exec (Inherit) is shared with a program that has no
// mapping of its slot: the parent parks a permit, the child takes it
// through the kernel (which recalls the slot first), and the parent's
// next TryAcquire must not take it again from the slot: two permits, two
// in use. The child's release through the kernel frees one for the parent.
func TestSemSlotInheritedAcrossExec(t *testing.T) {
	needFeature(t, featSemSlot, "KPRIM_FEAT_SEM_SLOT")
	n := name(t, "sem")
	s, err := OpenWeighted(n, Create|Transient|Inherit, 0600, 2)
	must(t, err, "open")
	defer s.Close()
	obs, err := OpenWeighted(n, 0, 0, 0)
	must(t, err, "open an observer")
	defer obs.Close()
	if s.slot == nil {
		t.Fatal("no slot mapped")
	}
	if !s.TryAcquire(2) {
		t.Fatal("TryAcquire 2: false")
	}
	s.Release(1) // parked in the slot
	if w := atomic.LoadUint64(&s.slot.Word); w&slotSlow != 0 || w&slotFree != 1 {
		t.Fatalf("slot word %#x: want lent with 1 parked", w)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "KPRIM_GO_HELPER=inherit",
		fmt.Sprintf("KPRIM_GO_FD=%d", s.Fd()))
	in, err := cmd.StdinPipe()
	must(t, err, "stdin pipe")
	out, err := cmd.StdoutPipe()
	must(t, err, "stdout pipe")
	must(t, cmd.Start(), "start the child")
	defer cmd.Wait()
	defer in.Close()
	rd := bufio.NewReader(out)
	if line, _ := rd.ReadString('\n'); line != "got\n" {
		t.Fatalf("child said %q", line)
	}
	if s.TryAcquire(1) {
		t.Fatal("TryAcquire took the permit the child holds: 3 in use of 2")
	}
	if st, _ := obs.Stats(); st.Held != 2 || st.Available != 0 {
		t.Errorf("held %d available %d, want 2 and 0", st.Held, st.Available)
	}
	fmt.Fprintln(in, "release")
	if line, _ := rd.ReadString('\n'); line != "released\n" {
		t.Fatalf("child said %q", line)
	}
	if !s.TryAcquire(1) {
		t.Fatal("TryAcquire after the child's release: false")
	}
	if s.ReleaseErr(3) != unix.EINVAL {
		t.Error("release of 3 (2 held): not EINVAL")
	}
	s.Release(2)
	if st, _ := obs.Stats(); st.Held != 0 {
		t.Errorf("held %d after every release", st.Held)
	}
}
