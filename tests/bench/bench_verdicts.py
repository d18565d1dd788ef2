#!/usr/bin/env python3
"""make bench-verdicts: smtptrace-explain --verdicts on a 1,000,000-line mail log.

Generates the log with tests/bench/postfix_log.py --smtptrace (Postfix's
lines and smtptrace's kind=txn lines for every transaction that reaches
the queue, every outcome), runs `smtptrace-explain --verdicts` on it (output
to /dev/null, best of 3) and `--verdicts --summary` once, and prints

    smtptrace-explain --verdicts: N lines/s, peak X MiB

(peak = max RSS from GNU time; lines/s from the wall clock, best of 3, and
per CPU second, which a busy machine does not skew). Checks that there is one verdict per
smtptrace line and that the share settled by Postfix's lines is what the
generator put in. Target: at least 1,000,000 lines/s, under 32 MiB.
Exits 1 when a target is missed or a check fails.

    bench_verdicts.py [SMTPTRACE-EXPLAIN]      (default build/smtptrace-explain)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINES = int(os.environ.get('BENCH_LINES', '1000000'))
TARGET_LPS = 1000000
TARGET_MIB = 32


def timed(argv, log_path, runs, out=os.devnull):
    """Best of `runs`: (wall seconds, CPU seconds (user + sys), max RSS in KiB)."""
    best = None
    for _ in range(runs):
        with open(log_path, 'rb') as fin, open(out, 'wb') as fout, \
                tempfile.NamedTemporaryFile('r') as rss:
            t0 = time.monotonic()
            r = subprocess.run(['/usr/bin/time', '-q', '-f', '%U %S %M', '-o', rss.name] + argv,
                               stdin=fin, stdout=fout, stderr=subprocess.PIPE)
            elapsed = time.monotonic() - t0
            if r.returncode != 0:
                sys.exit('%s failed (%d): %s' % (argv[0], r.returncode,
                                                 r.stderr.decode(errors='replace')[:300]))
            user, system, maxrss = rss.read().split()[-3:]
        if best is None or elapsed < best[0]:
            best = (elapsed, float(user) + float(system), int(maxrss))
    return best


def check_output(explain, log, d):
    """One verdict per smtptrace line; how many Postfix settled. Returns problems."""
    out = os.path.join(d, 'verdicts.json')
    timed([explain, '--verdicts', '--json'], log, 1, out)
    txn_lines = 0
    with open(log, 'rb') as f:
        for line in f:
            if b' kind=txn ' in line or b'"kind":"txn"' in line:
                txn_lines += 1
    verdicts = resolved = 0
    outcomes = {}
    with open(out) as f:
        for line in f:
            v = json.loads(line)
            verdicts += 1
            resolved += v['resolved']
            outcomes[v['outcome']] = outcomes.get(v['outcome'], 0) + 1
    print('verdicts: %d for %d smtptrace lines, %d resolved (%.1f%%)'
          % (verdicts, txn_lines, resolved, 100.0 * resolved / max(verdicts, 1)))
    print('  ' + ', '.join('%s %d' % kv for kv in sorted(outcomes.items(), key=lambda kv: -kv[1])))
    problems = []
    if verdicts != txn_lines:
        problems.append('%d verdicts for %d smtptrace lines' % (verdicts, txn_lines))
    # the generator leaves only RSET transactions (4 in 104) without a deciding line
    if resolved < 0.9 * verdicts:
        problems.append('only %d of %d verdicts resolved' % (resolved, verdicts))
    return problems


def main():
    explain = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, 'build', 'smtptrace-explain')
    with tempfile.TemporaryDirectory(prefix='smtptrace-bench.') as d:
        log = os.path.join(d, 'mail.log')
        with open(log, 'w') as f:
            subprocess.run([sys.executable, os.path.join(TOP, 'tests', 'bench', 'postfix_log.py'),
                            str(LINES), '--smtptrace'], stdout=f, check=True)
        print('log: %d lines, %.1f MiB (synthetic Postfix log with smtptrace lines)'
              % (LINES, os.path.getsize(log) / 1048576))
        sec, cpu, rss = timed([explain, '--verdicts'], log, 3)
        lps = LINES / sec
        print('smtptrace-explain --verdicts: %.0f lines/s, peak %.1f MiB '
              '(%.2f s; %.2f s of CPU: %.0f lines per CPU second)'
              % (lps, rss / 1024, sec, cpu, LINES / max(cpu, 0.001)))
        s_sec, _, s_rss = timed([explain, '--verdicts', '--summary'], log, 1)
        print('smtptrace-explain --verdicts --summary: %.0f lines/s, peak %.1f MiB'
              % (LINES / s_sec, s_rss / 1024))
        problems = check_output(explain, log, d)
        if lps < TARGET_LPS:
            problems.append('%.0f lines/s, under the target %d' % (lps, TARGET_LPS))
        if rss >= TARGET_MIB * 1024:
            problems.append('peak %.1f MiB, over the target %d MiB' % (rss / 1024, TARGET_MIB))
        for p in problems:
            print('bench-verdicts: ' + p)
        print('bench-verdicts: %s' % ('TARGET MISSED' if problems else 'targets met'))
        return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
