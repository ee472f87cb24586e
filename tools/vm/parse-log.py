#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge test-VM serial logs.

Usage: parse-log.py [--kunit SUITE,...] LABEL=LOG [LABEL=LOG ...]

For every log: count the kselftest results (TAP) of each test program and
the KUnit results (KTAP, from the kernel log the guest dumps at the end),
and fail on anything that is not a clean pass: a failed test, a program
that crashed, hung or reported nothing, a KUnit suite that is missing, a
module that would not load or unload, a kmemleak report, or any kernel
splat (BUG, WARNING, KASAN, UBSAN, lockdep, RCU, hung task, Oops, panic).

Prints per-kernel, per-suite counts and ends with the plain line
"N passed, N failed" (", N skipped" when any). Exit status 1 on failure.
"""
import re
import sys

TS = re.compile(r'^\[\s*\d+\.\d+\]\s?')
RESULT = re.compile(r'^(not ok|ok)\s+\d+\s+(?:- )?(.*?)(?:\s+#\s*(SKIP|skip)\b.*)?$')
SPLATS = [
    r'BUG:', r'WARNING:', r'KASAN', r'UBSAN', r'Oops', r'Kernel panic',
    r'general protection fault', r'Call Trace:', r'kernel BUG',
    r'possible circular locking', r'possible recursive locking',
    r'inconsistent lock state', r'DEBUG_LOCKS_WARN_ON',
    r'suspicious RCU usage', r'rcu: INFO', r'RCU stall',
    r'self-detected stall', r'blocked for more than', r'soft lockup',
    r'sleeping function called from invalid context',
    r'scheduling while atomic', r'unreferenced object',
    r'suspected memory leak', r'list_add corruption', r'list_del corruption',
    r'refcount_t:', r'stack-protector', r'double fault',
]
SPLAT = re.compile('|'.join(SPLATS))
# Boot lines that match a pattern above without being a problem.
BENIGN = re.compile(r'KASAN.*(initialized|enabled|Generic)|kasan: |'
                    r'UBSAN:\s*$|kmemleak: Kernel memory leak detector|'
                    r'WARNING: .*(module verification failed|loading out-of-tree)|'
                    r'module verification failed')


class Kernel:
    def __init__(self, label):
        self.label = label
        self.suites = {}      # name -> [pass, fail, skip]
        self.failures = []    # human-readable reasons
        self.notes = []       # worth saying, not a failure

    def count(self, suite, kind):
        s = self.suites.setdefault(suite, [0, 0, 0])
        s[{'pass': 0, 'fail': 1, 'skip': 2}[kind]] += 1

    def fail(self, why):
        self.failures.append(why)


ESC = re.compile(r'\x1b(\[[0-9;?]*[A-Za-z]|[@-Z\\-_])')


def strip(line):
    """One console line without line ends and terminal escapes; a marker
    that the console glued to earlier output starts its own line."""
    line = ESC.sub('', line.rstrip('\r\n')).replace('\r', '')
    at = line.find('KPRIM-')
    return line[at:] if at > 0 and not TS.match(line) else line


def parse_tap(k, name, lines):
    """Top-level TAP results of one kselftest program."""
    seen = 0
    for line in lines:
        m = RESULT.match(line)
        if not m:
            continue
        seen += 1
        status, case, skip = m.groups()
        if status == 'not ok':
            k.count(name, 'fail')
            k.fail(f'{name}: {case}')
        elif skip:
            k.count(name, 'skip')
        else:
            k.count(name, 'pass')
    return seen


def parse_kunit(k, dmesg, expected):
    """KTAP of the kprim suites, from the kernel log."""
    open_at = {}   # indent -> subtest name
    for raw in dmesg:
        line = TS.sub('', raw)
        body = line.lstrip(' ')
        indent = len(line) - len(body)
        if body.startswith('# Subtest:'):
            open_at[indent] = body.split(':', 1)[1].strip()
            continue
        m = RESULT.match(body)
        if not m:
            continue
        suite = open_at.get(indent)
        # Only the suites' own cases: parameter rows nest one level deeper.
        if suite not in expected:
            continue
        status, case, skip = m.groups()
        if status == 'not ok':
            k.count('kunit:' + suite, 'fail')
            k.fail(f'kunit {suite}: {case}')
        elif skip:
            k.count('kunit:' + suite, 'skip')
        else:
            k.count('kunit:' + suite, 'pass')
    for suite in expected:
        if 'kunit:' + suite not in k.suites:
            k.fail(f'kunit suite {suite}: no result in the kernel log')


KCSAN_TITLE = re.compile(r'BUG: KCSAN: ')
# A frame of the module or of its KUnit suites, e.g.
# " kprim_sem_release+0x4c/0x120 [kprim]".
KPRIM_FRAME = re.compile(r'\[kprim(_kunit)?\]')


def parse_kcsan(k, dmesg):
    """KCSAN reports: one that names a kprim frame in either access's
    stack fails the run; one entirely inside the core kernel (races that
    upstream knows or tolerates, reached under our load) is listed as a
    note and counted, not judged."""
    reports = []
    i = 0
    while i < len(dmesg):
        if not KCSAN_TITLE.search(dmesg[i]):
            i += 1
            continue
        block = [dmesg[i]]
        i += 1
        while i < len(dmesg) and not dmesg[i].startswith('=====') and \
                not KCSAN_TITLE.search(dmesg[i]):
            block.append(dmesg[i])
            i += 1
        reports.append(block)
    ours = [b for b in reports if any(KPRIM_FRAME.search(l) for l in b)]
    others = [b for b in reports if b not in ours]
    for b in ours:
        frames = [l.strip() for l in b[1:] if KPRIM_FRAME.search(l)]
        k.fail(b[0][b[0].index('KCSAN'):] + ' | ' +
               ' | '.join(frames[:4]))
    if reports:
        k.notes.append(f'KCSAN reports: {len(ours)} in kprim, '
                       f'{len(others)} in the core kernel only (not judged)')
    for b in others[:10]:
        k.notes.append('core-kernel ' + b[0][b[0].index('KCSAN'):])


def parse_log(label, path, kunit):
    k = Kernel(label)
    try:
        with open(path, errors='replace') as f:
            lines = [strip(l) for l in f]
    except OSError as e:
        k.fail(f'cannot read log {path}: {e}')
        return k

    def marker(prefix):
        return [l for l in lines if l.startswith(prefix)]

    if not marker('KPRIM-GUEST-START'):
        k.fail('guest never started (boot failure?)')
        for l in marker('KPRIM-BOOT-HANG'):
            k.fail(l[len('KPRIM-'):])
    for l in marker('KPRIM-BOOT-RETRIES'):
        k.notes.append('booted again after a hang before /init: ' +
                       l[len('KPRIM-BOOT-RETRIES '):])
    for l in marker('KPRIM-INSMOD') + marker('KPRIM-RMMOD') + \
            marker('KPRIM-KUNIT-INSMOD'):
        if not l.endswith('rc=0'):
            k.fail(l)
    if not marker('KPRIM-GUEST-DONE'):
        k.fail('guest did not finish (crash, panic or VM timeout)')

    # kselftest programs
    i = 0
    programs = 0
    while i < len(lines):
        if not lines[i].startswith('KPRIM-TEST-BEGIN '):
            i += 1
            continue
        name = lines[i].split()[1]
        programs += 1
        body = []
        i += 1
        end = None
        while i < len(lines):
            if lines[i].startswith('KPRIM-TEST-END ' + name + ' '):
                end = lines[i]
                break
            if lines[i].startswith('KPRIM-TEST-BEGIN '):
                break
            body.append(lines[i])
            i += 1
        seen = parse_tap(k, name, [l for l in body if not TS.match(l)])
        if end is None:
            k.count(name, 'fail')
            k.fail(f'{name}: no end marker (guest died during it)')
            continue
        rc = int(re.search(r'rc=(\d+)', end).group(1))
        if rc == 137:
            k.count(name, 'fail')
            k.fail(f'{name}: killed after the per-test timeout')
        elif rc == 4 and seen and not k.suites.get(name, [0, 0, 0])[1]:
            pass    # KSFT_SKIP: every test skipped, each counted as such
        elif rc != 0 and not k.suites.get(name, [0, 0])[1]:
            k.count(name, 'fail')
            k.fail(f'{name}: exit status {rc} with no failed test reported')
        elif seen == 0:
            k.count(name, 'fail')
            k.fail(f'{name}: reported no result')
        i += 1
    if not programs and marker('KPRIM-GUEST-START'):
        k.fail('no test program ran')

    # kernel log dumped at the end, or the console if the guest died first
    if 'KPRIM-DMESG-BEGIN' in lines:
        a = lines.index('KPRIM-DMESG-BEGIN')
        b = lines.index('KPRIM-DMESG-END') if 'KPRIM-DMESG-END' in lines \
            else len(lines)
        dmesg = lines[a + 1:b]
    else:
        dmesg = [l for l in lines if TS.match(l)]
    if kunit:
        parse_kunit(k, dmesg, kunit)

    parse_kcsan(k, [TS.sub('', l) for l in dmesg])

    splats = []
    for l in dmesg + [l for l in lines if TS.match(l)]:
        text = TS.sub('', l)
        if KCSAN_TITLE.search(text):
            continue    # judged by parse_kcsan()
        if SPLAT.search(text) and not BENIGN.search(text) and text not in splats:
            splats.append(text)
    for s in splats[:20]:
        k.fail('kernel splat: ' + s)

    if 'KPRIM-KMEMLEAK-BEGIN' in lines:
        a = lines.index('KPRIM-KMEMLEAK-BEGIN')
        b = lines.index('KPRIM-KMEMLEAK-END') if 'KPRIM-KMEMLEAK-END' in lines \
            else len(lines)
        leak = [l for l in lines[a + 1:b] if l.strip() and not TS.match(l)]
        if leak:
            k.fail('kmemleak: ' + ' | '.join(leak[:6]))
    return k


def main(argv):
    kunit = []
    args = argv[1:]
    if len(args) >= 2 and args[0] == '--kunit':
        kunit = [s for s in args[1].split(',') if s]
        args = args[2:]
    kernels = []
    for a in args:
        label, path = a.split('=', 1)
        # KUnit (kprim_kunit.ko) exists for the 6.12 kernels only.
        want = kunit if label.startswith(('debug', 'kcsan')) else []
        kernels.append((parse_log(label, path, want), path))

    total = [0, 0, 0]
    extra_fail = 0
    for k, path in kernels:
        print(f'== {k.label} ({path})')
        for suite in sorted(k.suites):
            p, f, s = k.suites[suite]
            total[0] += p
            total[1] += f
            total[2] += s
            print(f'   {suite:<24} {p:4d} passed {f:4d} failed {s:4d} skipped')
        counted = sum(v[1] for v in k.suites.values())
        # Failures not tied to a counted test (splats, leaks, boot, rmmod).
        extra = max(0, len(k.failures) - counted)
        extra_fail += extra
        for why in k.failures:
            print(f'   FAIL: {why}')
        for note in k.notes:
            print(f'   note: {note}')
    failed = total[1] + extra_fail
    line = f'{total[0]} passed, {failed} failed'
    if total[2]:
        line += f', {total[2]} skipped'
    print(line)
    return 1 if failed or not total[0] else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
