#!/usr/bin/env python3
"""smtptrace-explain --verdicts as an operator runs it: files and stdin, both orders of two
logs, --json, --summary, --window, streaming, exit codes, hostile and very long lines.

    test_verdicts.py [SMTPTRACE-EXPLAIN]        (default build/smtptrace-explain)

The logs are the real ones in tests/data/verdicts/ (see its README). Prints one line per
case and "verdicts: N passed, M failed".
"""
import json
import os
import select
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, 'tests'))
from harness.parse import parse_kv  # noqa: E402

BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, 'build', 'smtptrace-explain')
DATA = os.path.join(TOP, 'tests', 'data', 'verdicts')
MAILLOG = os.path.join(DATA, 'run-kv.maillog')
MILTERLOG = os.path.join(DATA, 'run-kv.milter.log')
JSON_MAILLOG = os.path.join(DATA, 'run-json.maillog')
JSON_MILTERLOG = os.path.join(DATA, 'run-json.milter.log')
TXN_LINES = 20          # kind=txn lines in each milter log


class Fail(Exception):
    pass


def run(args, stdin=b''):
    r = subprocess.run([BIN] + args, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    return r.returncode, r.stdout.decode('utf-8'), r.stderr.decode('utf-8', 'replace')


def check(cond, got, want):
    if not cond:
        raise Fail('got %s, want %s' % (got, want))


def kv_verdicts(out):
    """{(session, txn): fields} of key=value output; every line must parse."""
    got = {}
    for line in out.splitlines():
        f = parse_kv(line)
        got[(f['session'], f['txn'])] = f
    return got


def summary_of(verdicts):
    return sorted((k, v['outcome'], v['resolved'], v.get('enhanced', '-'))
                  for k, v in verdicts.items())


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def case_files_both_orders():
    rc, a, err = run(['--verdicts', MAILLOG, MILTERLOG])
    check(rc == 0 and err == '', 'exit %d, stderr %r' % (rc, err), 'exit 0, nothing on stderr')
    rc, b, _ = run(['--verdicts', MILTERLOG, MAILLOG])
    check(rc == 0, 'exit %d' % rc, 'exit 0')
    va, vb = kv_verdicts(a), kv_verdicts(b)
    check(len(va) == TXN_LINES and len(a.splitlines()) == TXN_LINES,
          '%d verdicts' % len(a.splitlines()), 'one per smtptrace line (%d)' % TXN_LINES)
    check(summary_of(va) == summary_of(vb), 'different verdicts', 'the same in both orders')
    outcomes = sorted(v['outcome'] for v in va.values())
    for o in ('accepted', 'refused-after-354', 'abandoned-after-354', 'timeout-after-354',
              'refused-at-data', 'discarded', 'no-valid-recipients', 'aborted-before-data'):
        check(o in outcomes, outcomes, o)


def case_stdin():
    both = read(MAILLOG) + read(MILTERLOG)
    _, files, _ = run(['--verdicts', MAILLOG, MILTERLOG])
    rc, piped, _ = run(['--verdicts'], both)
    check(rc == 0 and piped == files, 'exit %d, %d bytes' % (rc, len(piped)),
          'stdin gives what the files give')
    rc, dash, _ = run(['--verdicts', MAILLOG, '-'], read(MILTERLOG))
    check(rc == 0 and dash == files, 'exit %d' % rc, '"-" reads stdin between files')


def case_json_lines_parse():
    for logs in ((MAILLOG, MILTERLOG), (JSON_MILTERLOG, JSON_MAILLOG)):
        rc, out, _ = run(['--verdicts', '--json'] + list(logs))
        check(rc == 0, 'exit %d' % rc, 'exit 0')
        objs = [json.loads(line) for line in out.splitlines()]
        check(len(objs) == TXN_LINES, '%d objects' % len(objs), TXN_LINES)
        for o in objs:
            for key in ('queue_id', 'session', 'txn', 'from', 'outcome', 'milter_outcome',
                        'resolved', 'code', 'enhanced', 'reply', 'bytes', 'upload_ms',
                        'stalled', 'delivery', 'evidence', 'explain'):
                check(key in o, sorted(o), key)
        refused = [o for o in objs if o['outcome'] == 'refused-at-data'][0]
        check(refused['code'] == 554 and refused['resolved'] is True and
              refused['milter_outcome'] == 'aborted-before-data', refused, '554, resolved')
        queued = [o for o in objs if o['delivery']][0]
        check(queued['delivery']['status'] == 'sent' and queued['delivery']['dsn'] == '2.0.0',
              queued['delivery'], 'status sent, dsn 2.0.0')


def case_summary_80_columns():
    rc, out, _ = run(['--verdicts', '--summary', MAILLOG, MILTERLOG])
    check(rc == 0, 'exit %d' % rc, 'exit 0')
    long_lines = [l for l in out.splitlines() if len(l) > 80]
    check(not long_lines, long_lines[:1], 'every line within 80 columns')
    for part in ('By verdict', 'Top refusals', 'Upload time', 'p50', 'p99',
                 'by client', 'Rejected recipients by enhanced code'):
        check(part in out, repr(out[:200]), part)
    check('kind=' not in out and 'session=' not in out, 'verdict lines', 'the report only')


def case_usage():
    for args in (['--summary'], ['--window', '5'], ['--verdicts', '--summary', '--json'],
                 ['--verdicts', '--window', '0'], ['--verdicts', '--window', 'x'],
                 ['--verdicts', '--log']):
        rc, _, err = run(args)
        check(rc == 2 and err, '%s: exit %d' % (args, rc), 'exit 2 with a message')
    rc, out, _ = run(['--help'])
    check(rc == 0 and '--verdicts' in out and '--summary' in out, 'exit %d' % rc, 'usage names them')


def case_missing_file():
    rc, out, err = run(['--verdicts', '/nonexistent/mail.log', MAILLOG, MILTERLOG])
    check(rc == 3 and 'cannot read /nonexistent/mail.log' in err, 'exit %d, %r' % (rc, err),
          'exit 3, the file named')
    check(len(out.splitlines()) == TXN_LINES, '%d lines' % len(out.splitlines()),
          'the other files still read')


def case_write_error():
    with open('/dev/full', 'wb') as full:
        r = subprocess.run([BIN, '--verdicts', MAILLOG, MILTERLOG], stdout=full,
                           stderr=subprocess.PIPE, timeout=30)
    check(r.returncode == 3 and b'cannot write' in r.stderr, 'exit %d' % r.returncode,
          'exit 3, "cannot write"')


def wait_line(p, timeout=5):
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    return os.read(p.stdout.fileno(), 65536).decode() if ready else ''


def case_streams():
    """tail -F | --verdicts: a verdict comes out when settled, before the input ends."""
    p = subprocess.Popen([BIN, '--verdicts', '--window', '3'], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    try:
        lines = [l for l in read(MAILLOG).splitlines(True) if b'16F1CA72374' in l]
        milter = [l for l in read(MILTERLOG).splitlines(True) if b'16F1CA72374: kind=txn' in l]
        p.stdin.write(milter[0] + b''.join(lines[:-2]))       # up to its queue line
        p.stdin.flush()
        got = wait_line(p, 1)
        check(got == '', repr(got[:80]), 'nothing before the delivery line')
        p.stdin.write(lines[-2])                               # the delivery line
        p.stdin.flush()
        got = wait_line(p)
        check('queue_id=16F1CA72374 ' in got and 'delivery=sent' in got, repr(got[:120]),
              'the verdict at once')
        # a line with no deciding Postfix line: out after --window 3 quiet lines
        p.stdin.write(b'smtptrace[1]: NOQUEUE: kind=txn session=w txn=1 client=x[192.0.2.1]:1 '
                      b'from=<a@b> outcome=aborted-before-data\n' + b'noise\n' * 3)
        p.stdin.flush()
        got = wait_line(p)
        check('session=w ' in got and 'resolved=no' in got, repr(got[:120]),
              'settled by the window')
    finally:
        p.stdin.close()
        p.wait(10)


def case_hostile_and_long_lines():
    milter = (b'smtptrace[1]: 4ABCDEF01: kind=txn session="a\\"b" txn=1 client="x\\\\ [192.0.2.9]:5" '
              b'from="<\\xff\\x01\\"' + b'y' * 300000 + b'>" outcome=ended-after-354\n')
    postfix = (b'Dec  1 22:21:29 mx postfix/smtpd[7]: 4ABCDEF01: client=x[192.0.2.9]:5\n'
               b'Dec  1 22:21:30 mx postfix/cleanup[8]: 4ABCDEF01: reject: body \xff"\\ '
               + b'z' * 70000 + b' from x[192.0.2.9]:5; from=<a> to=<b> proto=ESMTP helo=<h>: '
               b'5.7.1 "no" \\ \xc3\xa9\n'
               b'Dec  1 22:21:31 mx postfix/smtpd[7]: disconnect from x[192.0.2.9]:5\n')
    for args in (['--verdicts'], ['--verdicts', '--json']):
        r = subprocess.run([BIN] + args, input=milter + postfix, stdout=subprocess.PIPE,
                           timeout=30)
        lines = r.stdout.split(b'\n')
        check(r.returncode == 0 and len(lines) == 2 and lines[1] == b'',
              'exit %d, %d lines' % (r.returncode, len(lines) - 1), 'one verdict line')
        text = lines[0].decode('utf-8')
        f = json.loads(text) if '--json' in args else parse_kv(text)
        check(f['outcome'] == 'refused-after-354' and f['session'] == 'a"b',
              (f['outcome'], f['session']), 'refused-after-354, session a"b')
        check(f['reply'].startswith('5xx 5.7.1 "no" \\'), repr(f['reply']), 'the reply, intact')
        check(len(text) < 16000, '%d bytes' % len(text), 'values capped')


CASES = [v for k, v in sorted(globals().items()) if k.startswith('case_')]


def main():
    if not os.path.exists(BIN):
        print('FAIL setup: got no %s, want the built binary' % BIN)
        print('verdicts: 0 passed, 1 failed')
        return 1
    passed = failed = 0
    for case in CASES:
        name = case.__name__[5:]
        try:
            case()
        except (Fail, json.JSONDecodeError, UnicodeDecodeError, ValueError, IndexError,
                KeyError) as e:
            failed += 1
            print('FAIL %s: %s' % (name, e))
        else:
            passed += 1
            print('ok   %s' % name)
    print('verdicts: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
