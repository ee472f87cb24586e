// SPDX-License-Identifier: GPL-2.0

// gobench - the Go peers of kprim's primitives, measured the way
// tools/kprim-bench.c measures its cases, so that kprim-bench -x can put
// them into its tables.
//
//	gobench [-t SECONDS] [-w SECONDS] [-T THREADS,...] [-b BATCH]
//
// Every case runs for -t seconds after a warm-up of -w seconds with as many
// goroutines as the thread count, all sharing one object (GOMAXPROCS stays
// the Go default: one per CPU). Each goroutine counts its operations in its
// own clock window and the rates are summed, as in kprim-bench. One line per
// case and thread count on stdout:
//
//	CASE THREADS NS_PER_OP
//
// where NS_PER_OP is the wall time one goroutine spends per operation. A
// case that fails is reported on stderr and left out.
//
// Built without modules against Debian's golang-golang-x-{time,sync,sys}-dev
// and the kprim Go package (see the Makefile's gobench target).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"kprim"
)

const (
	warm = iota
	measure
	stop
)

// A case: setup makes the shared object for n goroutines and returns the
// operation, which reports an error when it could not do its work.
type benchCase struct {
	id    string
	setup func(n int) func() error
}

// Capacity 64, as kprim-bench's channel rows.
const chanCap = 64

var cases = []benchCase{
	// Like kprim-bench's limiter rows: 10^9 tokens/s and a burst of 10^9,
	// so every Allow() succeeds and the row is the cost of asking.
	{"go-lim", func(int) func() error {
		lim := rate.NewLimiter(rate.Limit(1e9), 1e9)
		return func() error {
			if !lim.Allow() {
				return fmt.Errorf("Allow() refused")
			}
			return nil
		}
	}},
	// As many permits as goroutines: nobody waits for a permit.
	{"go-sem", func(n int) func() error {
		sem := semaphore.NewWeighted(int64(n))
		return func() error {
			if !sem.TryAcquire(1) {
				return fmt.Errorf("TryAcquire(1) failed")
			}
			sem.Release(1)
			return nil
		}
	}},
	// The same two through the Go binding (bindings/go): the kernel's
	// objects, so the cost of the binding shows next to the C rows.
	{"go-kprim-lim", func(int) func() error {
		lim, err := kprim.OpenLimiter("", 0, 0, 1e9, 1e9)
		if err != nil {
			return func() error { return err }
		}
		return func() error {
			if !lim.Allow() {
				return fmt.Errorf("Allow() refused")
			}
			return nil
		}
	}},
	{"go-kprim-sem", func(n int) func() error {
		sem, err := kprim.OpenWeighted("", 0, 0, int64(n))
		if err != nil {
			return func() error { return err }
		}
		return func() error {
			if !sem.TryAcquire(1) {
				return fmt.Errorf("TryAcquire(1) failed")
			}
			sem.Release(1)
			return nil
		}
	}},
	// One send and one receive per step on one buffered channel.
	{"go-chan", func(n int) func() error {
		ch := make(chan int, chanCap)
		return func() error {
			ch <- 1
			<-ch
			return nil
		}
	}},
}

// run returns the wall time one goroutine spends per operation, in ns.
func run(c benchCase, n int, secs, warmSecs float64) (float64, error) {
	if c.id == "go-chan" && n > chanCap {
		return 0, fmt.Errorf("more goroutines than channel capacity")
	}
	op := c.setup(n)
	var phase atomic.Int32
	var start, done sync.WaitGroup
	rates := make([]float64, n)
	errs := make([]error, n)

	phase.Store(warm)
	start.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			start.Done()
			start.Wait()
			var err error
			for err == nil && phase.Load() == warm {
				err = op()
			}
			t0 := time.Now()
			ops := 0
			for err == nil && phase.Load() == measure {
				if err = op(); err == nil {
					ops++
				}
			}
			if ns := time.Since(t0).Nanoseconds(); ns > 0 && ops > 0 {
				rates[i] = float64(ops) * 1e9 / float64(ns)
			}
			errs[i] = err
		}(i)
	}
	start.Wait()
	time.Sleep(time.Duration(warmSecs * 1e9))
	phase.Store(measure)
	time.Sleep(time.Duration(secs * 1e9))
	phase.Store(stop)
	done.Wait()

	total := 0.0
	for i := range rates {
		if errs[i] != nil {
			return 0, errs[i]
		}
		total += rates[i]
	}
	if total <= 0 {
		return 0, fmt.Errorf("no operation completed")
	}
	return float64(n) * 1e9 / total, nil
}

func main() {
	secs := flag.Float64("t", 0.3, "measured time per case, seconds")
	warmSecs := flag.Float64("w", 0.05, "warm-up per case, seconds")
	tlist := flag.String("T", "1", "thread (goroutine) counts, comma-separated")
	// kprim-bench -x passes its batch size to every peer program; Go has
	// no batched rows, so it is accepted and not used.
	flag.Int("b", 32, "batch size of batched rows (no such rows here)")
	flag.Parse()
	if flag.NArg() != 0 || *secs <= 0 || *warmSecs < 0 {
		flag.Usage()
		os.Exit(2)
	}
	var counts []int
	for _, s := range strings.Split(*tlist, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "gobench: bad thread count %q\n", s)
			os.Exit(2)
		}
		counts = append(counts, n)
	}

	status := 0
	for _, n := range counts {
		for _, c := range cases {
			ns, err := run(c, n, *secs, *warmSecs)
			if err != nil {
				fmt.Fprintf(os.Stderr, "gobench: %s, %d threads: %v\n",
					c.id, n, err)
				status = 1
				continue
			}
			fmt.Printf("%s %d %.1f\n", c.id, n, ns)
		}
	}
	os.Exit(status)
}
