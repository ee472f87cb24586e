#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The figures of a soak run (make soak), from its guest log.

Usage: soak-report.py LOG

Prints the rounds and minutes run, each test's runs and passes, the fuzzer's
calls (and per second of fuzzing), the kills the kill loop survived, the
rounds run per race pair, and the test cases passed (each ends by checking
its invariants). parse-log.py judges the same log; this only counts.
"""
import re
import sys

CALLS = re.compile(r'process \d+: (\d+) calls \((\d+) through io_uring\)')
KILLS = re.compile(r'kills survived: (\d+)')
RACE = re.compile(r'race ([^:]+): (\d+) rounds')
END = re.compile(r'^KPRIM-TEST-END (\S+) rc=(\d+) start=([\d.]+) end=([\d.]+)')
OK = re.compile(r'^ok \d+ ')


def main(path):
    runs, passed, secs = {}, {}, {}
    calls = uring = kills = cases = 0
    races = {}
    rounds = total = None
    with open(path, errors='replace') as f:
        for line in f:
            line = line.rstrip('\r\n')
            at = line.find('KPRIM-')
            if at > 0:
                line = line[at:]
            m = END.match(line)
            if m:
                name, rc, a, b = m.group(1), int(m.group(2)), \
                    float(m.group(3)), float(m.group(4))
                runs[name] = runs.get(name, 0) + 1
                passed[name] = passed.get(name, 0) + (rc == 0)
                secs[name] = secs.get(name, 0.0) + b - a
                continue
            m = re.match(r'^KPRIM-SOAK-END rounds=(\d+) secs=(\d+)', line)
            if m:
                rounds, total = int(m.group(1)), int(m.group(2))
                continue
            if OK.match(line):
                cases += 1
            m = CALLS.search(line)
            if m:
                calls += int(m.group(1))
                uring += int(m.group(2))
            m = KILLS.search(line)
            if m:
                kills += int(m.group(1))
            m = RACE.search(line)
            if m:
                races[m.group(1)] = races.get(m.group(1), 0) + int(m.group(2))
    if rounds is None:
        print(f'soak: no KPRIM-SOAK-END in {path}: the guest did not finish')
        return 1
    print(f'soak: {rounds} rounds in {total / 60:.1f} min')
    for name in sorted(runs):
        print(f'  {name:<22} {passed[name]:4d}/{runs[name]:<4d} runs passed'
              f' ({secs[name] / 60:.1f} min)')
    fz = secs.get('fuzz_test', 0.0)
    rate = f', {calls / fz:.0f} calls/s' if fz else ''
    print(f'  fuzzed calls: {calls} ({uring} through io_uring){rate}')
    print(f'  kills survived: {kills}')
    for pair in sorted(races):
        print(f'  race {pair}: {races[pair]} rounds')
    print(f'  test cases passed (each checks its invariants): {cases}')
    bad = sum(runs.values()) - sum(passed.values())
    print(f'  failed runs: {bad}')
    return 1 if bad else 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
