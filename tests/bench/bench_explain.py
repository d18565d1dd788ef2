#!/usr/bin/env python3
"""make bench-explain: smtptrace-explain --log against pflogsumm on one Postfix log.

Generates a 1,000,000-line log (tests/bench/postfix_log.py), runs each tool
on it (output to /dev/null), and prints wall time, lines per second and
peak memory (max RSS, from GNU time: a wait4 from this Python process
would count the forked interpreter's pages), then the ratio. Targets:
smtptrace-explain at least 5 times pflogsumm's lines per second, and under
10 MiB peak memory. Prints figures; exits 1 when a target is missed.
"""
import os
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINES = int(os.environ.get('BENCH_LINES', '1000000'))


def measure(argv, log_path, runs):
    """Best of `runs`: (seconds, max RSS in KiB)."""
    best = None
    for _ in range(runs):
        with open(log_path, 'rb') as fin, open(os.devnull, 'wb') as fout, \
                tempfile.NamedTemporaryFile('r') as rss:
            t0 = time.monotonic()
            r = subprocess.run(['/usr/bin/time', '-q', '-f', '%M', '-o', rss.name] + argv,
                               stdin=fin, stdout=fout, stderr=subprocess.PIPE)
            elapsed = time.monotonic() - t0
            if r.returncode != 0:
                sys.exit('%s failed (%d): %s' % (argv[0], r.returncode,
                                                 r.stderr.decode(errors='replace')[:300]))
            maxrss = int(rss.read().split()[-1])
        if best is None or elapsed < best[0]:
            best = (elapsed, maxrss)
    return best


def main():
    explain = os.path.join(TOP, 'build', 'smtptrace-explain')
    with tempfile.TemporaryDirectory(prefix='smtptrace-bench.') as d:
        log = os.path.join(d, 'mail.log')
        with open(log, 'w') as f:
            subprocess.run([sys.executable, os.path.join(TOP, 'tests', 'bench', 'postfix_log.py'),
                            str(LINES)], stdout=f, check=True)
        size = os.path.getsize(log)
        print('log: %d lines, %.1f MiB (synthetic Postfix log)' % (LINES, size / 1048576))
        e_sec, e_rss = measure([explain, '--log'], log, 3)
        p_sec, p_rss = measure(['pflogsumm', log], log, 1)
        e_lps, p_lps = LINES / e_sec, LINES / p_sec
        print('%-26s %8.2f s %12.0f lines/s   peak %7.1f MiB' % ('smtptrace-explain --log', e_sec, e_lps, e_rss / 1024))
        print('%-26s %8.2f s %12.0f lines/s   peak %7.1f MiB' % ('pflogsumm', p_sec, p_lps, p_rss / 1024))
        ratio = e_lps / p_lps
        print('ratio: smtptrace-explain is %.1fx pflogsumm (target >= 5x); peak %.1f MiB (target < 10 MiB)'
              % (ratio, e_rss / 1024))
        ok = ratio >= 5 and e_rss < 10 * 1024
        print('bench-explain: %s' % ('targets met' if ok else 'TARGET MISSED'))
        return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
