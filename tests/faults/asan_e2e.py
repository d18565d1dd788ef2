#!/usr/bin/python3
"""The end-to-end suite (tests/e2e/test_e2e.py) once against a milter built with
AddressSanitizer and UndefinedBehaviorSanitizer (make asan-e2e).

    /usr/bin/python3 tests/faults/asan_e2e.py build-asan-e2e/smtptrace-milter [test_e2e.py args]

The milter runs with ASAN_OPTIONS=halt_on_error=1 (leak detection on, as by default) and
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1; its stderr is its log (milter.log in
the harness's temp dir), so a sanitizer report lands there. The temp dir is kept
(SMTPTRACE_KEEP=1) for the check and removed afterwards. Passes when the suite passes
and no milter log holds "ERROR: AddressSanitizer", "ERROR: LeakSanitizer" or
"runtime error:". Prints the run time.
"""

import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
SANITIZER_RX = re.compile(r'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|'
                          r'SUMMARY: (Address|Undefined|Leak)')


def main(argv):
    if not argv:
        sys.stderr.write('usage: asan_e2e.py MILTER [test_e2e.py arguments]\n')
        return 2
    milter = os.path.abspath(argv[0])
    if not os.access(milter, os.X_OK):
        sys.stderr.write('asan-e2e: %s is missing\n' % milter)
        return 2
    env = dict(os.environ)
    env.update({
        'SMTPTRACE_MILTER': milter,
        'SMTPTRACE_KEEP': '1',
        'ASAN_OPTIONS': 'halt_on_error=1:detect_leaks=1:abort_on_error=0',
        'UBSAN_OPTIONS': 'halt_on_error=1:print_stacktrace=1',
    })
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'tests', 'e2e', 'test_e2e.py')] + argv[1:],
                          env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.decode('utf-8', 'replace')
    kept = re.findall(r'^SMTPTRACE_KEEP: kept (\S+)$', err, re.M)
    rest = [l for l in err.splitlines() if not l.startswith('SMTPTRACE_KEEP: kept ')]
    if rest:
        sys.stderr.write('\n'.join(rest) + '\n')
    found = []
    logs = 0
    for d in kept:
        path = os.path.join(d, 'milter.log')
        try:
            with open(path, 'rb') as fh:
                text = fh.read().decode('utf-8', 'replace')
            logs += 1
        except OSError as e:
            found.append('%s: %s' % (path, e))
            text = ''
        found += ['%s: %s' % (path, l) for l in text.splitlines() if SANITIZER_RX.search(l)]
        if os.environ.get('SMTPTRACE_KEEP', '') in ('', '0'):
            shutil.rmtree(d, ignore_errors=True)
    took = time.monotonic() - t0
    for l in found[:40]:
        print('asan-e2e: %s' % l)
    ok = proc.returncode == 0 and not found and logs > 0
    print('asan-e2e: test_e2e.py exit %d; %d milter log(s) checked, %d sanitizer line(s); '
          'run time %.1f s: %s' % (proc.returncode, logs, len(found), took, 'ok' if ok else 'FAILED'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
