#!/usr/bin/python3
"""smtptrace-top --once on a real Postfix: sessions in flight, a stall, an ending.

    /usr/bin/python3 tests/e2e/test_top.py [--milter PATH] [--top PATH] [-v]
                                                   (as root; make first)

One instance (tests/harness/instance.py): smtpd_timeout = 30 s, the milter with
    metrics: { http_listen = "127.0.0.1:<free port>"; };
    stall: { warn_after = 2; repeat_every = 0; };
Four clients: one finished (its message accepted), one held after EHLO, one after
RCPT, one stalled after 354 past warn_after. Then `smtptrace-top --once -u URL`
must show the three in flight with their phases (helo, rcpt, data), the stalled one
marked "!", and the finished one among the recent endings as "accepted".
A milter without /recent (milter/httpd.c) makes it print "skip: ..." and pass.
Prints "ok   NAME" or "FAIL NAME: got X, want Y", then "top-e2e: N passed, M failed".
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

from harness.instance import Instance, HarnessError, free_port   # noqa: E402
from harness.observe import get_json                                # noqa: E402
from harness import smtpclient as sc                                # noqa: E402
from harness.cases import (Fail, check, show, run_cases, start_failed, summary,  # noqa: E402
                           set_verbose, note)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
HOST = '127.0.0.1'
WARN_AFTER = 2
TAG = 'top%d' % os.getpid()


class Scene:
    """The instance, the top binary and the clients held open."""

    def __init__(self, inst, port, top):
        self.inst = inst
        self.port = port
        self.url = 'http://%s:%d' % (HOST, port)
        self.top = top
        self.clients = []
        self.output = None

    def client(self):
        c = sc.SMTPClient(HOST, self.inst.smtp_port, timeout=30)
        self.clients.append(c)
        return c

    def close(self):
        for c in self.clients:
            c.close()


def set_up(s):
    """The finished one first, then the three held; wait until the stall shows."""
    msg = sc.build_message(headers=[('Subject', 'top e2e')])
    res = sc.send_with_pause(HOST, s.inst.smtp_port, 'fin.%s.example' % TAG,
                             'fin-%s@example.test' % TAG, ['to@example.test'], msg)
    check(res.final.code == 250, 'final reply %s' % res.final.text, '250')

    ehlo = s.client()
    ehlo.ehlo('ehlo.%s.example' % TAG)
    rcpt = s.client()
    rcpt.ehlo('rcpt.%s.example' % TAG)
    rcpt.mail('rcpt-%s@example.test' % TAG)
    rcpt.rcpt('to@example.test')
    stall = s.client()
    stall.ehlo('stall.%s.example' % TAG)
    stall.mail('stall-%s@example.test' % TAG)
    stall.rcpt('to@example.test')
    stall.data()
    stall.send_body(msg[:len(msg) // 2])

    deadline = time.monotonic() + WARN_AFTER + 8
    while time.monotonic() < deadline:
        doc = get_json(s.port, '/transactions')
        rows = doc.get('transactions', [])
        if any(r.get('stalled') and TAG in (r.get('helo') or '') for r in rows):
            note('stalled after %.1f s' % (WARN_AFTER + 8 - (deadline - time.monotonic())))
            return
        time.sleep(0.2)
    raise Fail('got no stalled row in /transactions: %s' % show(rows, 600),
               'the stalled client marked within %d s' % (WARN_AFTER + 8))


def row_of(text, helo):
    for line in text.splitlines():
        if helo in line:
            return line
    raise Fail('got no row with %r in %s, want one' % (helo, show(text, 3000)))


def check_once(s):
    """The snapshot: three in flight with their phases, the stall marked, the ending."""
    set_up(s)
    r = subprocess.run([s.top, '--once', '-d', '0.5', '-u', s.url], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                       env=dict(os.environ, LANG='C.UTF-8', COLUMNS='250'))
    out, err = r.stdout.decode(), r.stderr.decode()
    check(r.returncode == 0 and err == '', 'exit %d, stderr %s' % (r.returncode, show(err)),
          'exit 0, nothing on stderr')
    s.output = out
    note('\n' + out)
    ehlo = row_of(out, 'ehlo.%s' % TAG)
    check(ehlo.startswith('  ') and ' helo ' in ehlo, show(ehlo), 'the EHLO one in phase helo')
    rcpt = row_of(out, 'rcpt.%s' % TAG)
    check(rcpt.startswith('  ') and ' rcpt ' in rcpt and 'rcpt-%s@' % TAG in rcpt, show(rcpt),
          'the RCPT one in phase rcpt, with its sender')
    stall = row_of(out, 'stall.%s' % TAG)
    check(stall.startswith('! ') and ' data ' in stall and stall.endswith('#]'), show(stall),
          'the stalled one marked "!", in phase data, its bar full')
    sessions = out[out.index('SESSIONS IN FLIGHT'):out.index('RECENT ENDINGS')]
    check('fin.%s' % TAG not in sessions, show(sessions), 'the finished one not in flight')
    recent = out[out.index('RECENT ENDINGS'):]
    fin = row_of(recent, 'fin-%s@example.test' % TAG)
    check(' accepted ' in fin, show(fin), 'the finished one among the endings as accepted')
    counts = out.splitlines()[1]
    check('in DATA 1, stalled 1' in counts, show(counts), 'the counts: in DATA 1, stalled 1')
    check('milter 0.1.0' in out.splitlines()[0], show(out.splitlines()[0]), 'the version')


def main():
    args = sys.argv[1:]
    set_verbose('-v' in args)
    milter = os.path.join(REPO, 'build', 'smtptrace-milter')
    top = os.path.join(REPO, 'build', 'smtptrace-top')
    if '--milter' in args:
        milter = os.path.abspath(args[args.index('--milter') + 1])
    if '--top' in args:
        top = os.path.abspath(args[args.index('--top') + 1])
    with open(os.path.join(REPO, 'milter', 'httpd.c')) as f:
        if '/recent' not in f.read():
            print('skip: the milter has no /recent yet')
            return summary('top-e2e', 0, 0)
    for path in (milter, top):
        if not os.access(path, os.X_OK):
            return start_failed('top-e2e', 'no %s (make first)' % path)
    port = free_port()
    extra = ('metrics: { http_listen = "%s:%d"; };\n'
             'stall: { warn_after = %d; repeat_every = 0; };\n' % (HOST, port, WARN_AFTER))
    try:
        inst = Instance(milter_path=milter, smtpd_timeout=30, milter_config_extra=extra)
        inst.start()
    except (HarnessError, OSError) as e:
        return start_failed('top-e2e', e)
    s = Scene(inst, port, top)
    try:
        passed, failed = run_cases([check_once], s, (HarnessError, sc.SMTPError, OSError,
                                                     ValueError, subprocess.SubprocessError),
                                   what='check')
    finally:
        s.close()
        inst.stop()
    if failed and s.output:
        print(s.output)
    return summary('top-e2e', passed, failed)


if __name__ == '__main__':
    sys.exit(main())
