#!/usr/bin/python3
"""smtptrace end-to-end tests of the stall watchdog and the metrics: real Postfix +
smtp-sink + the milter on 127.0.0.1, the milter's HTTP listener and its text file.

    /usr/bin/python3 tests/e2e/test_stall.py [-k SUBSTRING] [-v]   (as root; make first)

Debian's /usr/bin/python3 is needed: /metrics and the text file are parsed with
prometheus_client's own parser (python3-prometheus-client).

One instance for all cases: smtpd_timeout = 10 s, the milter with
    stall: { warn_after = 2; repeat_every = 2; };
    metrics: { http_listen = "127.0.0.1:<free port>"; textfile = "<tmp>/smtptrace.prom";
               textfile_interval = 1; };
Each case prints "ok   name" or "FAIL name: got X, want Y"; the last line is
"stall: N passed, M failed"; the exit status is non-zero when a case failed.
Counters are compared with their values just before the case (the cases run one after
another, so nothing else moves them). SMTPTRACE_KEEP=1 keeps the temp dirs.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

from harness.instance import Instance, HarnessError, free_port   # noqa: E402
from harness.observe import (http_get, get_json, get_metrics, Metrics, MetricsError,  # noqa: E402
                             LogFollower)
from harness.parse import ParseError                                          # noqa: E402
from harness import smtpclient as sc                                           # noqa: E402
from harness.cases import (Fail, check, eq, show, note, set_verbose,          # noqa: E402
                           set_show_limit, run_cases, start_failed, summary)

HOST = '127.0.0.1'
SMTPD_TIMEOUT = 10
WARN_AFTER = 2
REPEAT_EVERY = 2
TEXTFILE_INTERVAL = 1
LOG_WAIT = 5
PHASES = ['helo', 'mail', 'rcpt', 'data', 'upload', 'content']
SECONDS_BUCKETS = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10',
                   '30', '60', '120', '300', '600', '+Inf']
BYTES_BUCKETS = ['1024', '4096', '16384', '65536', '262144', '1048576', '4194304', '16777216',
                 '67108864', '+Inf']


_seq = [0]


def unique(tag):
    _seq[0] += 1
    return '%s-%d-%d' % (tag, os.getpid(), _seq[0])


class Env:
    """The instance plus what the cases share: the HTTP port, the text file, the log."""

    def __init__(self, inst, http_port, textfile):
        self.inst = inst
        self.http_port = http_port
        self.textfile = textfile
        self.log = LogFollower(inst.milter_log_path, interval=0.02)

    def metrics(self):
        try:
            return get_metrics(self.http_port)
        except MetricsError as e:
            raise Fail('got %s, want a /metrics document prometheus_client parses' % e) from None

    def transactions(self):
        doc = get_json(self.http_port, '/transactions')
        check(isinstance(doc, dict) and isinstance(doc.get('transactions'), list)
              and doc.get('count') == len(doc['transactions']),
              '/transactions %s' % show(repr(doc), 300), '{"count": N, "transactions": [N rows]}')
        return doc

    def wait_lines(self, pred, what, count=1, timeout=LOG_WAIT):
        found = self.log.wait(pred, timeout, count)
        if len(found) < count:
            raise Fail('got %d %s within %s s (milter %s), want %d'
                       % (len(found), what, timeout,
                          'running' if self.inst.milter_running() else 'NOT running', count))
        return found


def by_port(port, kind):
    suffix = ':%d' % port
    return lambda l: l.kind == kind and l.get('client', '').endswith(suffix)


def field(line, key, want=None):
    check(key in line.fields, 'no %s= in %s' % (key, show(line.raw, 400)), '%s=' % key)
    if want is not None:
        eq(line[key], want, key)
    return line[key]


def int_field(line, key):
    v = field(line, key)
    check(re.fullmatch(r'\d+', v) is not None, '%s=%s' % (key, show(v)), '%s=<integer>' % key)
    return int(v)


def counter_delta(before, after, name, want, **labels):
    d = after.value(name, **labels) - before.value(name, **labels)
    what = name + ('{%s}' % ','.join('%s="%s"' % kv for kv in sorted(labels.items())) if labels else '')
    check(d == want, '%s increased by %g (%g -> %g)' % (what, d, before.value(name, **labels),
                                                         after.value(name, **labels)),
          'an increase of %g' % want)


def wait_metrics(env, pred, what, timeout=5):
    """Poll /metrics until pred(Metrics) holds; returns the last Metrics (checked by the
    caller) -- a bounded wait for what the milter updates just after its log line."""
    deadline = time.monotonic() + timeout
    while True:
        m = env.metrics()
        if pred(m) or time.monotonic() >= deadline:
            return m
        time.sleep(0.05)


def stall_lines_of(env, session):
    return [l for _t, l in env.log.lines() if l.kind == 'stall' and l.get('session') == session]


def check_stall_count(env, txn, at_least):
    """stalled=yes, stall_warnings >= at_least and equal to the session's kind=stall lines."""
    field(txn, 'stalled', 'yes')
    n = int_field(txn, 'stall_warnings')
    check(n >= at_least, 'stall_warnings=%d' % n, 'stall_warnings >= %d' % at_least)
    lines = stall_lines_of(env, txn['session'])
    check(len(lines) == n, '%d kind=stall lines for session %s but stall_warnings=%d'
          % (len(lines), txn['session'], n), 'as many stall lines as stall_warnings')
    eq([l.get('warning') for l in lines], [str(i) for i in range(1, n + 1)], 'warning= sequence')
    return n


def open_in_data(env, helo, part=b'From: <a@example.test>\r\nSubject: stall\r\n'):
    """A raw client driven to 354; `part` sent after it. Returns (client, t354)."""
    c = sc.SMTPClient(HOST, env.inst.smtp_port, timeout=30)
    c.ehlo(helo)
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.data()
    t354 = time.monotonic()
    c.send_raw(part)
    return c, t354


def row_of(doc, session):
    rows = [r for r in doc['transactions'] if r.get('session') == session]
    check(len(rows) <= 1, '%d /transactions rows for session %s' % (len(rows), session), 'at most 1')
    return rows[0] if rows else None


# ---- cases ------------------------------------------------------------------------------

def case_stall_then_disconnect(env):
    """Part of the message after 354, then silence: warning 1 after ~2 s (logged, listed in
    /transactions, counted in the gauges and stalls_total), warning 2 ~2 s later; then the
    client closes: ended-after-354 stalled=yes, gone from /transactions, gauges back,
    stalls_total +1 (once, not per warning)."""
    before = env.metrics()
    in_data0 = before.value('smtptrace_transactions_in_data')
    stalled0 = before.value('smtptrace_transactions_stalled')
    helo = unique('stall1') + '.client.test'
    c, t354 = open_in_data(env, helo)
    port = c.local_port
    try:
        found = env.wait_lines(by_port(port, 'stall'), 'kind=stall lines for port %d' % port,
                               timeout=WARN_AFTER + 3)
        t1, w1 = found[0]
        delay = t1 - t354
        note('first stall line %.3f s after the 354: %s' % (delay, w1.raw[:160]))
        check(w1.parse_error is None, 'malformed stall line (%s)' % w1.parse_error, 'a parsable line')
        field(w1, 'warning', '1')
        field(w1, 'helo', helo)
        session = field(w1, 'session')
        check(re.fullmatch(r'[0-9a-f]{16}', session) is not None, 'session=%s' % session, '16 hex digits')
        ms = int_field(w1, 'in_data_ms')
        check(2000 <= ms <= 3000, 'in_data_ms=%d' % ms, 'in_data_ms between 2000 and 3000')
        check(delay <= WARN_AFTER + 1.0, 'the first stall line %.3f s after the 354' % delay,
              'at most %.1f s' % (WARN_AFTER + 1.0))
        check(w1.qid is not None, 'no queue id or NOQUEUE prefix: %s' % show(w1.raw, 120), 'a prefix')

        doc = env.transactions()
        row = row_of(doc, session)
        check(row is not None, '/transactions without session %s (%d rows)' % (session, doc['count']),
              'the stalled transaction listed')
        eq(row.get('phase'), 'data', 'phase')
        eq(row.get('stalled'), True, 'stalled')
        check(isinstance(row.get('seconds_in_phase'), (int, float)) and row['seconds_in_phase'] >= WARN_AFTER,
              'seconds_in_phase=%r' % row.get('seconds_in_phase'), 'seconds_in_phase >= %d' % WARN_AFTER)
        check(row.get('warnings', 0) >= 1, 'warnings=%r' % row.get('warnings'), 'warnings >= 1')
        check(str(row.get('client', '')).endswith(':%d' % port), 'client=%r' % row.get('client'),
              'client ending in :%d' % port)
        eq(row.get('helo'), helo, 'helo')
        if w1.qid != 'NOQUEUE':
            eq(row.get('queue_id'), w1.qid, 'queue_id')

        m = env.metrics()
        v = m.value('smtptrace_transactions_in_data')
        check(v >= 1 and v >= in_data0 + 1, 'smtptrace_transactions_in_data %g (before %g)' % (v, in_data0),
              'at least 1 more than before')
        v = m.value('smtptrace_transactions_stalled')
        check(v >= 1 and v >= stalled0 + 1, 'smtptrace_transactions_stalled %g (before %g)' % (v, stalled0),
              'at least 1 more than before')
        counter_delta(before, m, 'smtptrace_stalls_total', 1)

        found = env.wait_lines(lambda l: l.kind == 'stall' and l.get('session') == session
                               and l.get('warning') == '2', 'warning=2 lines for session %s' % session,
                               timeout=REPEAT_EVERY + 3)
        t2, w2 = found[0]
        gap = t2 - t1
        ms2 = int_field(w2, 'in_data_ms')
        note('second warning %.3f s after the first, in_data_ms=%d' % (gap, ms2))
        check(1800 <= ms2 - ms <= 2500, 'in_data_ms %d then %d' % (ms, ms2), 'about 2000 ms apart')
        check(1.5 <= gap <= 3.0, 'second warning %.2f s after the first' % gap, 'about %d s' % REPEAT_EVERY)
    finally:
        c.close()

    env.inst.wait_maillog(r'lost connection after DATA \(\d+ bytes\) from \S+:%d$' % port)
    txn = env.wait_lines(by_port(port, 'txn'), 'kind=txn lines for port %d' % port)[0][1]
    field(txn, 'outcome', 'ended-after-354')
    eq(txn.get('session'), session, 'session of the txn line')
    check_stall_count(env, txn, 2)

    deadline = time.monotonic() + 3
    while True:
        row = row_of(env.transactions(), session)
        if row is None or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    check(row is None, '/transactions still lists session %s: %r' % (session, row), 'gone after the close')
    after = wait_metrics(env, lambda m: m.value('smtptrace_transactions_in_data') == in_data0
                         and m.value('smtptrace_transactions_stalled') == stalled0, 'gauges back')
    eq(after.value('smtptrace_transactions_in_data'), in_data0, 'smtptrace_transactions_in_data')
    eq(after.value('smtptrace_transactions_stalled'), stalled0, 'smtptrace_transactions_stalled')
    counter_delta(before, after, 'smtptrace_transactions_total', 1, outcome='ended-after-354')
    counter_delta(before, after, 'smtptrace_stalls_total', 1)


def case_pause_then_finish(env):
    """The client pauses 3 s after 354, then uploads: a warning was logged, the message is
    accepted and delivered, txn line stalled=yes, one more upload observation (in the 5 s
    bucket, not the 2.5 s one)."""
    before = env.metrics()
    helo = unique('pause3') + '.client.test'
    mid = '<%s@stall.test>' % unique('pause3')
    body = sc.build_message([('From', '<a@example.test>'), ('To', '<b@example.test>'),
                             ('Subject', 'late upload'), ('Message-ID', mid)], size=1200)
    res = sc.send_with_pause(HOST, env.inst.smtp_port, helo, 'a@example.test', ['b@example.test'],
                             body, pause=3.0)
    eq(res.final.code, 250, 'reply to the final dot')
    qid = env.inst.queue_id(client_port=res.local_port)
    txn = env.wait_lines(by_port(res.local_port, 'txn'), 'kind=txn lines for port %d' % res.local_port)[0][1]
    eq(txn.qid, qid, 'txn line prefix')
    field(txn, 'outcome', 'accepted')
    stalls = [l for _t, l in env.log.lines() if by_port(res.local_port, 'stall')(l)]
    check(len(stalls) >= 1, 'no kind=stall line for port %d' % res.local_port, 'a stall warning')
    check_stall_count(env, txn, 1)
    env.inst.wait_delivered(queue_id=qid)
    after = wait_metrics(env, lambda m: m.value('smtptrace_upload_seconds_count')
                         > before.value('smtptrace_upload_seconds_count'), 'upload observed')
    counter_delta(before, after, 'smtptrace_upload_seconds_count', 1)
    counter_delta(before, after, 'smtptrace_upload_seconds_bucket', 0, le='2.5')
    counter_delta(before, after, 'smtptrace_upload_seconds_bucket', 1, le='5')
    counter_delta(before, after, 'smtptrace_upload_bytes_count', 1)
    counter_delta(before, after, 'smtptrace_transactions_total', 1, outcome='accepted')
    counter_delta(before, after, 'smtptrace_stalls_total', 1)
    eq(after.value('smtptrace_transactions_in_data'), before.value('smtptrace_transactions_in_data'),
       'smtptrace_transactions_in_data after the upload')
    eq(after.value('smtptrace_transactions_stalled'), before.value('smtptrace_transactions_stalled'),
       'smtptrace_transactions_stalled after the upload')


def case_stall_until_421(env):
    """Part of the message, then silence until Postfix's 421 after smtpd_timeout = 10 s:
    timeout-after-354, stalled=yes, a warning every 2 s (at least 4)."""
    before = env.metrics()
    body = sc.build_message([('From', '<a@example.test>'), ('Subject', 'stall to 421')], size=1200)
    res = sc.stall_after_354(HOST, env.inst.smtp_port, unique('stall421') + '.client.test',
                             'a@example.test', ['b@example.test'], body, part=0.5,
                             timeout=SMTPD_TIMEOUT + 20)
    said = (res.server_said or '').strip()
    check(said.startswith('421 4.4.2'), 'server said %r' % said, '421 4.4.2 ... timeout exceeded')
    note('421 after %.1f s' % res.elapsed)
    txn = env.wait_lines(by_port(res.local_port, 'txn'), 'kind=txn lines for port %d' % res.local_port)[0][1]
    field(txn, 'outcome', 'timeout-after-354')
    n = check_stall_count(env, txn, 4)
    note('stall_warnings=%d' % n)
    after = wait_metrics(env, lambda m: m.value('smtptrace_transactions_total', outcome='timeout-after-354')
                         > before.value('smtptrace_transactions_total', outcome='timeout-after-354'),
                         'timeout counted')
    counter_delta(before, after, 'smtptrace_transactions_total', 1, outcome='timeout-after-354')
    counter_delta(before, after, 'smtptrace_stalls_total', 1)


def case_fast_transaction_not_stalled(env):
    """swaks, one fast transaction: never reported as stalled; accepted +1; one observation
    in each phase histogram (helo, mail, rcpt, data, upload, content)."""
    before = env.metrics()
    helo = unique('fast') + '.client.test'
    mid = '<%s@stall.test>' % unique('fast')
    r = subprocess.run(['swaks', '--server', '%s:%d' % (HOST, env.inst.smtp_port), '--helo', helo,
                        '--from', 'a@example.test', '--to', 'b@example.test', '--timeout', '20',
                        '--header', 'Message-Id: %s' % mid],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    eq(r.returncode, 0, 'swaks exit status')
    qid = env.inst.queue_id(message_id=mid)
    txn = env.wait_lines(lambda l: l.kind == 'txn' and l.qid == qid, 'kind=txn lines for %s' % qid)[0][1]
    field(txn, 'outcome', 'accepted')
    check(txn.get('stalled', 'no') != 'yes', 'stalled=%s' % txn.get('stalled'), 'not stalled')
    check(txn.get('stall_warnings', '0') == '0', 'stall_warnings=%s' % txn.get('stall_warnings'),
          'no stall_warnings (or 0)')
    session = field(txn, 'session')
    check(not stall_lines_of(env, session), 'kind=stall lines for a fast transaction', 'none')
    after = wait_metrics(env, lambda m: all(
        m.value('smtptrace_phase_duration_seconds_count', phase=p)
        > before.value('smtptrace_phase_duration_seconds_count', phase=p) for p in PHASES), 'phases')
    counter_delta(before, after, 'smtptrace_transactions_total', 1, outcome='accepted')
    for p in PHASES:
        counter_delta(before, after, 'smtptrace_phase_duration_seconds_count', 1, phase=p)
        counter_delta(before, after, 'smtptrace_phase_duration_seconds_bucket', 1, phase=p, le='+Inf')
    counter_delta(before, after, 'smtptrace_stalls_total', 0)
    counter_delta(before, after, 'smtptrace_upload_seconds_count', 1)
    eq(after.value('smtptrace_transactions_stalled'), before.value('smtptrace_transactions_stalled'),
       'smtptrace_transactions_stalled')
    env.inst.wait_delivered(queue_id=qid)


def case_rejected_recipient_counted(env):
    """A recipient Postfix rejects with 5.7.1 (access map) adds 1 to
    smtptrace_rejected_recipients_total{enhanced="5.7.1"}."""
    before = env.metrics()
    helo = unique('rej') + '.client.test'
    with sc.SMTPClient(HOST, env.inst.smtp_port) as c:
        port = c.local_port
        c.ehlo(helo)
        c.mail('a@example.test')
        r = c.rcpt('blocked@example.test', codes=(554,))
        check('5.7.1' in r.text, 'RCPT reply %s' % r.text, '554 5.7.1 ... Access denied')
        c.rcpt('b@example.test')
        c.data()
        c.send_body(sc.build_message([('From', '<a@example.test>'), ('Subject', 'one rejected')]))
        eq(c.end_data().code, 250, 'reply to the final dot')
        c.quit()
    txn = env.wait_lines(by_port(port, 'txn'), 'kind=txn lines for port %d' % port)[0][1]
    eq(int_field(txn, 'rcpt_rejected'), 1, 'rcpt_rejected')
    after = wait_metrics(env, lambda m: m.value('smtptrace_rejected_recipients_total', enhanced='5.7.1')
                         > before.value('smtptrace_rejected_recipients_total', enhanced='5.7.1'), '5.7.1')
    counter_delta(before, after, 'smtptrace_rejected_recipients_total', 1, enhanced='5.7.1')
    check(after.has('smtptrace_rejected_recipients_total', enhanced='5.7.1'),
          'no smtptrace_rejected_recipients_total{enhanced="5.7.1"} sample', 'the sample present')
    for labels, v in after.labelled('smtptrace_rejected_recipients_total').items():
        if dict(labels).get('enhanced') != '5.7.1':
            eq(v, before.value('smtptrace_rejected_recipients_total', **dict(labels)),
               'smtptrace_rejected_recipients_total%s' % dict(labels))


def _read_textfile(path, with_stat=False):
    """The file's text; with_stat: (text, (st_ino, st_mtime_ns)) of the very file read."""
    with open(path, 'rb') as fh:
        st = os.fstat(fh.fileno())
        text = fh.read().decode('utf-8')
    return (text, (st.st_ino, st.st_mtime_ns)) if with_stat else text


def case_textfile(env):
    """The text file exists, parses, is rewritten (mtime, inode or content change within
    3 s), and is never seen half written: read in a loop across several rewrites, every
    read parses and has every metric family that /metrics has."""
    path = env.textfile
    deadline = time.monotonic() + 5
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(os.path.exists(path), 'no file %s' % path, 'the metrics text file')
    ref = env.metrics().family_names()
    try:
        first = Metrics(_read_textfile(path))
    except MetricsError as e:
        raise Fail('got %s in %s, want a parsable text file' % (e, path)) from None
    eq(first.family_names(), ref, 'metric families in the text file')

    changed_after = None
    t0 = time.monotonic()
    reads = 0
    changes = 0
    last = None
    # At least 50 reads, spread over 3.5 s (so across 3 or more rewrites at interval 1 s);
    # every read parses and is complete. Each rewrite must also be a new file (a new
    # inode: written aside and renamed over the old one), which is what makes it atomic
    # for a reader; an in-place rewrite would only be caught by luck by the reads.
    while reads < 50 or time.monotonic() - t0 < 3.5:
        text, (ino, mtime_ns) = _read_textfile(path, with_stat=True)
        reads += 1
        try:
            m = Metrics(text)
        except MetricsError as e:
            raise Fail('got read %d of the text file unparsable (%s): %s'
                       % (reads, e, show(text[-200:])), 'every read parsable') from None
        check(text.endswith('\n'), 'read %d ends with %r' % (reads, text[-40:]), 'a complete file')
        eq(m.family_names(), ref, 'metric families in read %d' % reads)
        sig = (ino, mtime_ns, text)
        if last is not None and sig != last:
            check(ino != last[0], 'the file rewritten in place (inode %d kept, mtime or content changed)'
                  % ino, 'a new file renamed over it')
            changes += 1
            if changed_after is None:
                changed_after = time.monotonic() - t0
        last = sig
        time.sleep(0.01)
    note('%d reads in %.1f s, %d rewrites seen, first after %.2f s'
         % (reads, time.monotonic() - t0, changes, changed_after if changed_after is not None else -1))
    check(changed_after is not None and changed_after <= 3.0,
          'no rewrite seen' if changed_after is None else 'first rewrite after %.2f s' % changed_after,
          'a rewrite within 3 s')
    check(changes >= 2, '%d rewrites seen in %.1f s' % (changes, time.monotonic() - t0),
          'the loop to span at least 2 rewrites')
    leftovers = [n for n in os.listdir(os.path.dirname(path)) if n != os.path.basename(path)
                 and not n.endswith('.tmp.%d' % env.inst.milter_proc.pid)]
    check(not leftovers, 'other files next to the text file: %s' % leftovers, 'none')


def case_histogram_buckets(env):
    """The contract's bucket boundaries, exactly: seconds 0.005 ... 600 +Inf for each phase
    and for upload_seconds; bytes 1024 ... 67108864 +Inf for upload_bytes."""
    m = env.metrics()

    def les(name, **labels):
        out = []
        for lab, _v in m.labelled(name + '_bucket').items():
            d = dict(lab)
            if all(d.get(k) == v for k, v in labels.items()):
                out.append(d['le'])
        return out

    def check_buckets(got, want, what):
        # Compared as numbers (Prometheus reads le as a float): "1048576" and
        # "1.048576e+06" are both right, "1.04858e+06" (= 1048580) is not.
        got_sorted = sorted(got, key=float)
        check([float(g) for g in got_sorted] == [float(w) for w in want],
              '%s le=%s' % (what, ','.join(got_sorted)), 'le=%s' % ','.join(want))

    for p in PHASES:
        check_buckets(les('smtptrace_phase_duration_seconds', phase=p), SECONDS_BUCKETS,
                      'phase_duration_seconds{phase=%s}' % p)
    check_buckets(les('smtptrace_upload_seconds'), SECONDS_BUCKETS, 'upload_seconds')
    check_buckets(les('smtptrace_upload_bytes'), BYTES_BUCKETS, 'upload_bytes')


def case_http_errors(env):
    """GET /nope is 404; POST /metrics is 405; GET /metrics says text format 0.0.4."""
    status, _ctype, _body = http_get(env.http_port, '/nope')
    eq(status, 404, 'HTTP status of GET /nope')
    status, _ctype, _body = http_get(env.http_port, '/metrics', method='POST', body=b'x=1')
    eq(status, 405, 'HTTP status of POST /metrics')
    status, ctype, _body = http_get(env.http_port, '/metrics')
    eq(status, 200, 'HTTP status of GET /metrics')
    check('text/plain' in ctype and '0.0.4' in ctype, 'Content-Type %s' % ctype,
          'text/plain; version=0.0.4')
    status, ctype, _body = http_get(env.http_port, '/transactions')
    eq(status, 200, 'HTTP status of GET /transactions')
    check('application/json' in ctype, 'Content-Type %s' % ctype, 'application/json')


def case_log_lines_well_formed(env):
    """Over the whole run: every kind= line of the milter parses, the milter still runs, and
    nothing is left in DATA."""
    check(env.inst.milter_running(), 'milter exited with %s' % env.inst.milter_proc.poll(), 'running')
    env.log.poll()
    for _t, l in env.log.lines():
        check(l.ident is not None, 'line without prefix: %s' % show(l.raw, 120), '"smtptrace[PID]: " prefix')
        check(l.parse_error is None, 'malformed (%s): %s' % (l.parse_error, show(l.raw, 200)),
              'well-formed lines')
    m = env.metrics()
    eq(m.value('smtptrace_transactions_in_data'), 0, 'smtptrace_transactions_in_data at the end')
    eq(m.value('smtptrace_transactions_stalled'), 0, 'smtptrace_transactions_stalled at the end')
    eq(env.transactions()['count'], 0, '/transactions count at the end')


CASES = [
    case_stall_then_disconnect,
    case_pause_then_finish,
    case_stall_until_421,
    case_fast_transaction_not_stalled,
    case_rejected_recipient_counted,
    case_textfile,
    case_http_errors,
    case_histogram_buckets,
    case_log_lines_well_formed,
]


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description='smtptrace stall watchdog and metrics tests')
    ap.add_argument('-k', metavar='SUBSTRING', help='run only the cases whose name contains this')
    ap.add_argument('-v', action='store_true', help='show progress notes and tracebacks')
    args = ap.parse_args(argv)
    set_verbose(args.v)
    set_show_limit(200)
    cases = [c for c in CASES if not args.k or args.k in c.__name__]
    t0 = time.monotonic()
    keep = os.environ.get('SMTPTRACE_KEEP', '') not in ('', '0')
    promdir = tempfile.mkdtemp(prefix='smtptrace-prom.')
    os.chmod(promdir, 0o755)
    textfile = os.path.join(promdir, 'smtptrace.prom')
    http_port = free_port()
    extra = ('stall: { warn_after = %d; repeat_every = %d; };\n'
             'metrics: { http_listen = "127.0.0.1:%d"; textfile = "%s"; textfile_interval = %d; };\n'
             % (WARN_AFTER, REPEAT_EVERY, http_port, textfile, TEXTFILE_INTERVAL))
    inst = Instance(milter=True, smtpd_timeout=SMTPD_TIMEOUT, timeout_tolerance=1,
                    milter_config_extra=extra)
    try:
        inst.start()
        inst.wait_milter_listening(http_port)
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        status = start_failed('stall', e)
        inst.stop()
        shutil.rmtree(promdir, ignore_errors=True)
        return status
    env = Env(inst, http_port, textfile)
    try:
        passed, failed = run_cases(cases, env, (HarnessError, sc.SMTPError, OSError,
                                                subprocess.SubprocessError, ParseError,
                                                MetricsError, KeyError, ValueError))
    finally:
        inst.stop()
        if keep:
            sys.stderr.write('SMTPTRACE_KEEP: kept %s\n' % promdir)
        else:
            shutil.rmtree(promdir, ignore_errors=True)
    return summary('stall', passed, failed, started=t0)

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
