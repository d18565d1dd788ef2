#!/usr/bin/python3
"""smtptrace end-to-end tests of /transactions (every SMTP session open) and /recent (the
transactions that ended last): real Postfix + smtp-sink + the milter on 127.0.0.1.

    /usr/bin/python3 tests/e2e/test_sessions.py [-k SUBSTRING] [-v]   (as root; make first)

One instance: smtpd_timeout = 30 s (the held clients must outlive the stall), the milter with
    stall: { warn_after = 2; repeat_every = 2; };
    metrics: { http_listen = "127.0.0.1:<free port>"; recent = 50; };
The scene (case "scene"): one client finishes a transaction (accepted, QUIT); then four are
held: one connected that said nothing, one after EHLO, one after RCPT, one after 354 with
part of its message, silent past stall.warn_after. /transactions must show the four in
connect, helo, rcpt and data (that one stalled), longest in its phase first, and not the
finished one; ?phase= and ?limit= cut the list; /recent must show the finished one with
the outcome, queue id, upload and duration of its kind=txn line. Then the four close and
/recent shows how each ended, newest first.

Each case prints "ok   name" or "FAIL name: got X, want Y"; the last line is
"sessions: N passed, M failed"; the exit status is non-zero when a case failed.
SMTPTRACE_MILTER names the milter binary; SMTPTRACE_KEEP=1 keeps the temp dir.
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

from harness.instance import Instance, HarnessError, free_port   # noqa: E402
from harness.observe import http_get, get_json, LogFollower     # noqa: E402
from harness.parse import ParseError                              # noqa: E402
from harness import smtpclient as sc                              # noqa: E402
from harness.cases import (Fail, check, eq, show, note, set_verbose,  # noqa: E402
                           set_show_limit, run_cases, start_failed, summary)

HOST = '127.0.0.1'
SMTPD_TIMEOUT = 30
WARN_AFTER = 2
RECENT = 50
LOG_WAIT = 5
PHASES = ('connect', 'helo', 'mail', 'rcpt', 'data', 'content')
ROW_KEYS = ['session', 'txn', 'phase', 'seconds_in_phase', 'seconds_connected', 'client', 'helo',
            'from', 'rcpt', 'rcpt_rejected', 'queue_id', 'tls', 'stalled', 'warnings']
TOP_KEYS = ['now_ms', 'version', 'uptime_s', 'stall_warn_after_s', 'open', 'in_data', 'stalled',
            'transactions', 'count', 'truncated']
RECENT_KEYS = ['session', 'txn', 'queue_id', 'client', 'helo', 'from', 'outcome', 'reply',
               'upload_ms', 'duration_ms', 'ended_ms_ago', 'end_time']


class Env:
    def __init__(self, inst, http_port):
        self.inst = inst
        self.http_port = http_port
        self.log = LogFollower(inst.milter_log_path, interval=0.02)
        self.held = {}          # name -> SMTPClient
        self.finished = None    # (port, kind=txn line)

    def transactions(self, query=''):
        doc = get_json(self.http_port, '/transactions' + query)
        check(isinstance(doc, dict) and list(doc) == TOP_KEYS,
              '/transactions%s keys %s' % (query, show(list(doc) if isinstance(doc, dict) else doc)),
              'exactly %s in that order' % TOP_KEYS)
        check(doc['count'] == len(doc['transactions']),
              'count %r with %d rows' % (doc['count'], len(doc['transactions'])), 'count = rows')
        for r in doc['transactions']:
            check(list(r) == ROW_KEYS, 'row keys %s' % list(r), '%s' % ROW_KEYS)
            check(r['phase'] in PHASES, 'phase %r' % r['phase'], 'one of %s' % (PHASES,))
        return doc

    def recent(self, query=''):
        doc = get_json(self.http_port, '/recent' + query)
        check(isinstance(doc, dict) and list(doc) == ['now_ms', 'size', 'recent', 'count'],
              '/recent keys %s' % show(list(doc) if isinstance(doc, dict) else doc),
              'now_ms, size, recent, count')
        eq(doc['count'], len(doc['recent']), 'count of /recent')
        for e in doc['recent']:
            check(list(e) == RECENT_KEYS, '/recent entry keys %s' % list(e), '%s' % RECENT_KEYS)
        return doc

    def wait_txn(self, port):
        found = self.log.wait(lambda l: l.kind == 'txn' and l.get('client', '').endswith(':%d' % port),
                              LOG_WAIT)
        check(found, 'no kind=txn line for client port %d within %d s' % (port, LOG_WAIT),
              'one')
        return found[0][1]


def rows_by_port(doc):
    out = {}
    for r in doc['transactions']:
        m = re.search(r':(\d+)$', r['client'])
        if m:
            out[int(m.group(1))] = r
    return out


def ours(env, doc):
    """The rows of the held clients, by name."""
    by_port = rows_by_port(doc)
    return {name: by_port.get(c.local_port) for name, c in env.held.items()}


# ---- cases ----------------------------------------------------------------------------

def case_scene(env):
    """The finished one, then four held: connect, helo, rcpt, data (stalled)."""
    # 1. one transaction to its end
    body = sc.build_message([('From', '<a@example.test>'), ('To', '<b@example.test>'),
                             ('Subject', 'finished')], size=2000)
    res = sc.send_with_pause(HOST, env.inst.smtp_port, 'finished.client.test', 'a@example.test',
                             ['b@example.test'], body, pause=0.3)
    eq(res.final.code, 250, 'reply to the final dot')
    txn = env.wait_txn(res.local_port)
    eq(txn.get('outcome'), 'accepted', 'outcome of the finished one')
    env.finished = (res.local_port, txn)
    env.log.wait(lambda l: l.kind == 'conn' and l.get('session') == txn.get('session'), LOG_WAIT)

    # 2. four held
    env.held['connect'] = sc.SMTPClient(HOST, env.inst.smtp_port)
    c = sc.SMTPClient(HOST, env.inst.smtp_port)
    c.ehlo('held-helo.client.test')
    env.held['helo'] = c
    c = sc.SMTPClient(HOST, env.inst.smtp_port)
    c.ehlo('held-rcpt.client.test')
    c.mail('rcpt@example.test')
    c.rcpt('b@example.test')
    env.held['rcpt'] = c
    c = sc.SMTPClient(HOST, env.inst.smtp_port)
    c.ehlo('held-data.client.test')
    c.mail('data@example.test')
    c.rcpt('b@example.test')
    c.data()
    c.send_raw(b'From: <data@example.test>\r\nSubject: stalled\r\n')
    env.held['data'] = c
    port = c.local_port
    found = env.log.wait(lambda l: l.kind == 'stall' and l.get('client', '').endswith(':%d' % port),
                         WARN_AFTER + 3)
    check(found, 'no kind=stall line for port %d' % port, 'a stall warning')
    stall = found[0][1]

    doc = env.transactions()
    rows = ours(env, doc)
    for name, want_phase in (('connect', 'connect'), ('helo', 'helo'), ('rcpt', 'rcpt'),
                             ('data', 'data')):
        r = rows[name]
        check(r is not None, 'no row for the client held at %s (%d rows: %s)'
              % (name, doc['count'], show([x['client'] for x in doc['transactions']])),
              'its row')
        eq(r['phase'], want_phase, 'phase of the client held at %s' % name)
        eq(r['stalled'], name == 'data', 'stalled of the client held at %s' % name)
        check(r['seconds_connected'] >= r['seconds_in_phase'] >= 0,
              'seconds_connected %r, seconds_in_phase %r' % (r['seconds_connected'],
                                                            r['seconds_in_phase']),
              'connected at least as long as in its phase')
        check(re.fullmatch(r'[0-9a-f]{16}', r['session']) is not None, 'session %r' % r['session'],
              '16 hex digits')
        eq(r['tls'], None, 'tls')
    eq(rows['connect']['helo'], None, 'helo of the silent one')
    eq(rows['connect']['txn'], 0, 'txn before any MAIL')
    eq(rows['helo']['helo'], 'held-helo.client.test', 'helo')
    eq(rows['helo']['from'], None, 'from outside a transaction')
    eq(rows['rcpt']['from'], '<rcpt@example.test>', 'from')
    eq((rows['rcpt']['txn'], rows['rcpt']['rcpt'], rows['rcpt']['rcpt_rejected']), (1, 1, 0),
       '(txn, rcpt, rcpt_rejected)')
    d = rows['data']
    eq(d['session'], stall.get('session'), 'session of the stalled row and its stall line')
    check(d['warnings'] >= 1 and d['seconds_in_phase'] >= WARN_AFTER,
          'warnings %r, seconds_in_phase %r' % (d['warnings'], d['seconds_in_phase']),
          'warnings >= 1 after >= %d s' % WARN_AFTER)
    if stall.qid not in (None, 'NOQUEUE'):
        eq(d['queue_id'], stall.qid, 'queue_id')
    eq((doc['open'], doc['in_data'], doc['stalled']), (4, 1, 1), '(open, in_data, stalled)')
    eq(doc['truncated'], False, 'truncated')
    eq(doc['stall_warn_after_s'], WARN_AFTER, 'stall_warn_after_s')
    check(isinstance(doc['uptime_s'], int) and doc['uptime_s'] >= 0, 'uptime_s %r' % doc['uptime_s'],
          'an integer >= 0')
    check(re.fullmatch(r'\d+\.\d+\.\d+', doc['version']) is not None, 'version %r' % doc['version'],
          'N.N.N')
    secs = [r['seconds_in_phase'] for r in doc['transactions']]
    check(secs == sorted(secs, reverse=True), 'seconds_in_phase in order %s' % secs,
          'the longest in its phase first')
    fin = [r for r in doc['transactions'] if r['session'] == env.finished[1].get('session')]
    check(not fin, 'the finished session listed: %r' % fin, 'not listed once closed')
    note('rows: %s' % ', '.join('%s %.1fs' % (r['phase'], r['seconds_in_phase'])
                                for r in doc['transactions']))


def case_phase_and_limit(env):
    """?phase=P lists phase P only (the counts stay those of every session); ?limit=1 the
    longest in its phase, truncated; an unknown phase is a 400."""
    check(env.held, 'no held clients (the scene failed)', 'the scene')
    full = env.transactions()
    for phase, name in (('connect', 'connect'), ('helo', 'helo'), ('rcpt', 'rcpt'),
                        ('data', 'data'), ('mail', None), ('content', None)):
        doc = env.transactions('?phase=' + phase)
        eq(sorted({r['phase'] for r in doc['transactions']}), [phase] if name else [],
           'phases listed with ?phase=%s' % phase)
        eq((doc['open'], doc['in_data'], doc['stalled']),
           (full['open'], full['in_data'], full['stalled']), '(open, in_data, stalled) with ?phase=%s' % phase)
        if name:
            rows = ours(env, doc)
            check(rows[name] is not None, 'no row of the client held at %s with ?phase=%s'
                  % (name, phase), 'its row')
        eq(doc['truncated'], False, 'truncated with ?phase=%s' % phase)
    doc = env.transactions('?limit=1')
    eq(doc['count'], 1, 'count with ?limit=1')
    eq(doc['truncated'], True, 'truncated with ?limit=1')
    eq(doc['transactions'][0]['session'], full['transactions'][0]['session'],
       'the row kept by ?limit=1 (the longest in its phase)')
    doc = env.transactions('?phase=data&limit=5')
    eq([r['stalled'] for r in doc['transactions']], [True], 'stalled of ?phase=data')
    status, ctype, body = http_get(env.http_port, '/transactions?phase=nope')
    eq(status, 400, 'HTTP status of ?phase=nope')
    check(b'data' in body, 'body %r' % body[:200], 'the phases named')
    status, ctype, body = http_get(env.http_port, '/recent')
    eq((status, 'application/json' in ctype), (200, True), '(status, JSON) of /recent')


def case_recent_finished(env):
    """/recent: the finished transaction with what its kind=txn line says."""
    check(env.finished is not None, 'no finished transaction (the scene failed)', 'the scene')
    port, txn = env.finished
    doc = env.recent()
    eq(doc['size'], RECENT, 'size (metrics.recent)')
    ents = [e for e in doc['recent'] if e['session'] == txn.get('session')]
    eq(len(ents), 1, 'entries of the finished session')
    e = ents[0]
    eq(e['outcome'], txn.get('outcome'), 'outcome (as the kind=txn line)')
    eq(e['outcome'], 'accepted', 'outcome')
    eq(e['reply'], None, 'reply of an accepted message')
    eq(e['txn'], int(txn.get('txn')), 'txn')
    eq(e['queue_id'], txn.qid, 'queue_id (the txn line prefix)')
    eq(e['queue_id'], env.inst.queue_id(client_port=port), 'queue_id (Postfix)')
    eq(e['upload_ms'], int(txn.get('upload_ms')), 'upload_ms')
    eq(e['duration_ms'], int(txn.get('duration_ms')), 'duration_ms')
    check(e['upload_ms'] >= 250, 'upload_ms %r' % e['upload_ms'], 'the 0.3 s pause in it')
    eq(e['helo'], 'finished.client.test', 'helo')
    eq(e['from'], '<a@example.test>', 'from')
    check(e['client'].endswith(':%d' % port), 'client %r' % e['client'], 'ending in :%d' % port)
    check(re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', e['end_time']) is not None,
          'end_time %r' % e['end_time'], 'YYYY-MM-DDTHH:MM:SSZ')
    end = time.mktime(time.strptime(e['end_time'], '%Y-%m-%dT%H:%M:%SZ')) - time.timezone
    check(abs(time.time() - e['ended_ms_ago'] / 1000 - end) < 2.5,
          'end_time %s, ended_ms_ago %d, now %s' % (e['end_time'], e['ended_ms_ago'],
                                                    time.strftime('%H:%M:%S', time.gmtime())),
          'the end time about now - ended_ms_ago')
    doc = env.recent('?limit=1')
    eq(doc['count'], 1, 'count with ?limit=1')


def case_close_all(env):
    """The four close: gone from /transactions; /recent has how the three with a transaction
    ended (data: ended-after-354, stalled), the newest first."""
    check(env.held, 'no held clients (the scene failed)', 'the scene')
    sessions = {name: r['session'] for name, r in ours(env, env.transactions()).items() if r}
    for name in ('rcpt', 'data', 'helo', 'connect'):
        env.held[name].close()
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while True:
        doc = env.transactions()
        if doc['open'] == 0 or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    eq((doc['open'], doc['count'], doc['in_data'], doc['stalled']), (0, 0, 0, 0),
       '(open, count, in_data, stalled) after the close')
    doc = env.recent()
    by_session = {e['session']: e for e in doc['recent']}
    eq(by_session.get(sessions.get('data'), {}).get('outcome'), 'ended-after-354',
       'outcome of the stalled one')
    eq(by_session.get(sessions.get('rcpt'), {}).get('outcome'), 'aborted-before-data',
       'outcome of the one held after RCPT')
    check(sessions.get('helo') not in by_session and sessions.get('connect') not in by_session,
          'entries for sessions without a transaction', 'none')
    ago = [e['ended_ms_ago'] for e in doc['recent']]
    check(ago == sorted(ago), 'ended_ms_ago in order %s' % ago, 'the newest first')
    txn = env.wait_txn(env.held['data'].local_port)
    e = by_session.get(sessions.get('data'), {})
    eq((e.get('outcome'), e.get('upload_ms'), e.get('duration_ms')),
       (txn.get('outcome'), None, int(txn.get('duration_ms'))),
       '(outcome, upload_ms, duration_ms) as the kind=txn line')


def case_http_errors(env):
    """Unknown paths: 404 naming the three; POST: 405."""
    status, _ctype, body = http_get(env.http_port, '/nope')
    eq(status, 404, 'HTTP status of GET /nope')
    check(b'/recent' in body, 'body %r' % body[:200], 'the paths named')
    status, _ctype, _body = http_get(env.http_port, '/recent', method='POST', body=b'x')
    eq(status, 405, 'HTTP status of POST /recent')


CASES = [
    case_scene,
    case_phase_and_limit,
    case_recent_finished,
    case_close_all,
    case_http_errors,
]


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description='smtptrace /transactions and /recent tests')
    ap.add_argument('-k', metavar='SUBSTRING', help='run only the cases whose name contains this')
    ap.add_argument('-v', action='store_true', help='show progress notes and tracebacks')
    args = ap.parse_args(argv)
    set_verbose(args.v)
    set_show_limit(300)
    cases = [c for c in CASES if not args.k or args.k in c.__name__]
    t0 = time.monotonic()
    http_port = free_port()
    extra = ('stall: { warn_after = %d; repeat_every = 2; };\n'
             'metrics: { http_listen = "127.0.0.1:%d"; recent = %d; };\n'
             % (WARN_AFTER, http_port, RECENT))
    inst = Instance(milter=True, smtpd_timeout=SMTPD_TIMEOUT, milter_config_extra=extra)
    try:
        inst.start()
        inst.wait_milter_listening(http_port)
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        status = start_failed('sessions', e)
        inst.stop()
        return status
    env = Env(inst, http_port)
    try:
        passed, failed = run_cases(cases, env, (HarnessError, sc.SMTPError, OSError,
                                                subprocess.SubprocessError, ParseError,
                                                KeyError, ValueError, TypeError))
    finally:
        for c in env.held.values():
            c.close()
        inst.stop()
    return summary('sessions', passed, failed, started=t0)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
