// SPDX-License-Identifier: LGPL-2.1-or-later

package kprim

// The test binary serves three ways:
//   - go test: the usual Go tests;
//   - run with no arguments (the kselftest runner in the test VM runs
//     build/tests/go_test so): it runs itself with -test.v and reports
//     each top-level test as a TAP line, the rest of the output as
//     comments;
//   - KPRIM_GO_HELPER=...: a helper process a test started.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"testing"
)

var tapMode = os.Getenv("KPRIM_GO_TAP") != ""

func TestMain(m *testing.M) {
	if h := os.Getenv("KPRIM_GO_HELPER"); h != "" {
		os.Exit(helper(h))
	}
	if len(os.Args) == 1 {
		os.Exit(runTAP())
	}
	os.Exit(m.Run())
}

var result = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+)`)

func runTAP() int {
	fmt.Println("TAP version 13")
	cmd := exec.Command(os.Args[0], "-test.v", "-test.timeout=240s")
	cmd.Env = append(os.Environ(), "KPRIM_GO_TAP=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Printf("Bail out! %v\n", err)
		return 1
	}
	cmd.Stderr = cmd.Stdout
	if err = cmd.Start(); err != nil {
		fmt.Printf("Bail out! %v\n", err)
		return 1
	}
	n, failed := 0, 0
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Printf("# %s\n", line)
		m := result.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		switch m[1] {
		case "PASS":
			fmt.Printf("ok %d %s\n", n, m[2])
		case "SKIP":
			fmt.Printf("ok %d %s # SKIP\n", n, m[2])
		default:
			failed++
			fmt.Printf("not ok %d %s\n", n, m[2])
		}
	}
	err = cmd.Wait()
	if err != nil && failed == 0 {
		// A panic or a timeout: the test it hit reports nothing.
		n++
		failed++
		fmt.Printf("not ok %d go test binary: %v\n", n, err)
	}
	fmt.Printf("1..%d\n", n)
	fmt.Printf("# %d passed, %d failed\n", n-failed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}
