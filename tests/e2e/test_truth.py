#!/usr/bin/env python3
"""smtptrace end-to-end truth tests: what the milter says, and what `smtptrace-explain
--verdicts` says over Postfix's real log, when something other than the client ends the
transaction (size limit, header/body checks, smtpd_data_restrictions, another milter).

    python3 tests/e2e/test_truth.py [-k SUBSTRING] [-v] [--log-format kv|json]
                                    [--save-logs DIR [--save-note TEXT]]
                                    (as root; make build/smtptrace-milter build/test-milter
                                     build/smtptrace-explain first)

One instance for all cases, on 127.0.0.1 (tests/harness/instance.py):
    smtpd_timeout = 5s (also the milter's mta.data_timeout), message_size_limit = 20000,
    header_checks  /^Subject:.*TRUTH-REJECT-HEADER/ REJECT 5.7.1 ...,
                   /^Subject:.*TRUTH-DISCARD-HEADER/ DISCARD ...
    body_checks    /TRUTH-REJECT-BODY/ REJECT 5.7.1 ...
    smtpd_data_restrictions = check_sender_access (datarefused@example.test REJECT ...)
    smtpd_milters = test-milter "Before", smtptrace, test-milter "After"
        (tests/milter/test_milter.c: acts only on "X-Test-Before:" / "X-Test-After:"
         reject|tempfail|discard, at end of message)
    rcpt_access: blocked@example.test and blocked2@example.test rejected.

Each case drives one SMTP session with the raw client (tests/harness/smtpclient.py), waits
(bounded polls, no fixed sleeps) for Postfix's deciding line and the milter's kind=txn line,
asserts the milter's line, then runs smtptrace-explain --verdicts over the instance's
maillog and the milter's log concatenated on stdin, in both orders (maillog then
milter.log, and milter.log then maillog), and asserts the verdict of the transaction
(found by the milter's session and txn). Both orders must give the same verdict.

Prints "ok   name" or "FAIL name: got X, want Y"; the last line is
"truth: N passed, M failed"; the exit status is non-zero when a case failed.

Environment: SMTPTRACE_MILTER (the milter), SMTPTRACE_TEST_MILTER (the test milter;
default: test-milter beside the milter's binary), SMTPTRACE_EXPLAIN (default
REPO/build/smtptrace-explain), SMTPTRACE_KEEP=1 keeps the temp dir.

--save-logs DIR writes what the run produced for tests/data/postfix-3.7/: the whole
maillog and milter log, and one file per case with that case's Postfix and milter lines
and the client's transcript (as # comments).
"""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

from harness.instance import Instance, HarnessError, REPO     # noqa: E402
from harness.parse import parse_kv, ParseError                 # noqa: E402
from harness import smtpclient as sc                            # noqa: E402
from harness.cases import (Fail, check, eq, show, note, set_verbose,   # noqa: E402
                           run_cases, start_failed, summary)

HOST = '127.0.0.1'
SMTPD_TIMEOUT = 5
SIZE_LIMIT = 20000
PAUSE = 2.0
LOG_WAIT = 8            # seconds for a line that should come at once (or at the close)
HEADER_MARK = 'TRUTH-REJECT-HEADER'
DISCARD_MARK = 'TRUTH-DISCARD-HEADER'
BODY_MARK = 'TRUTH-REJECT-BODY'
HEADER_TEXT = 'Header rejected by truth test'
BODY_TEXT = 'Body rejected by truth test'
DATA_SENDER = 'datarefused@example.test'
DATA_TEXT = 'DATA refused by truth test'
MILTER_TEXT = 'Rejected by test milter'          # tests/milter/test_milter.c
MILTER_TEMP_TEXT = 'Deferred by test milter'
EXPLAIN = os.environ.get('SMTPTRACE_EXPLAIN') or os.path.join(REPO, 'build', 'smtptrace-explain')

INSTANCE_OPTIONS = dict(
    smtpd_timeout=SMTPD_TIMEOUT, timeout_tolerance=1,
    milters_before=['Before'], milters_after=['After'],
    message_size_limit=SIZE_LIMIT,
    header_checks=['/^Subject:.*%s/ REJECT 5.7.1 %s' % (HEADER_MARK, HEADER_TEXT),
                   '/^Subject:.*%s/ DISCARD discarded by truth test' % DISCARD_MARK],
    body_checks=['/%s/ REJECT 5.7.1 %s' % (BODY_MARK, BODY_TEXT)],
    data_access={DATA_SENDER: 'REJECT 5.7.1 %s' % DATA_TEXT},
)

_seq = [0]


def unique(tag):
    _seq[0] += 1
    return '%s-%d-%d' % (tag, os.getpid(), _seq[0])


# ---- the run's shared state --------------------------------------------------------------

class Env:
    def __init__(self, inst):
        self.inst = inst
        self.captured = []      # [(case name, [client ports], transcript lines, notes)]
        self.current = None

    def client(self, tag):
        """A raw client after EHLO with a unique HELO name; recorded for --save-logs."""
        helo = unique(tag) + '.client.test'
        c = sc.SMTPClient(HOST, self.inst.smtp_port)
        c.ehlo_reply = c.ehlo(helo)
        c.helo_name = helo
        if self.current is not None:
            self.current[1].append(c.local_port)
            self.current[2].append(c)
        return c

    def note(self, text):
        if self.current is not None:
            self.current[3].append(text)
        note(text)


def message(tag, headers=(), body='Hello from the smtptrace truth tests.\n', size=1200,
            mail_from='a@example.test', rcpt='b@example.test'):
    mid = '<%s@truth.test>' % unique(tag)
    hdrs = [('From', '<%s>' % mail_from), ('To', '<%s>' % rcpt),
            ('Subject', 'smtptrace truth %s' % tag), ('Message-ID', mid)] + list(headers)
    return sc.build_message(hdrs, body=body, size=size)


def send_message(c, data, mail_from='a@example.test', rcpts=('b@example.test',)):
    """MAIL, RCPT, DATA (354), the message and the dot; returns the reply to the dot."""
    c.mail(mail_from)
    for r in rcpts:
        c.rcpt(r)
    c.data()
    c.send_body(data)
    return c.end_data()


def queued_as(text):
    m = re.search(r"250 2\.0\.0 Ok: (?:\d+ bytes )?queued as ([0-9A-Za-z]+)", text)
    return m.group(1) if m else None


# ---- waiting for lines ---------------------------------------------------------------------

def wait_maillog(env, pattern, what, timeout=LOG_WAIT):
    try:
        return env.inst.wait_maillog(pattern, timeout)
    except HarnessError:
        raise Fail('got no Postfix line /%s/ within %d s (%s), want one' % (pattern, timeout, what)) from None


def wait_session_end(env, port):
    """Postfix's "disconnect from ...:PORT" and the milter's kind=conn line of the session:
    every line of the session is then in both logs."""
    wait_maillog(env, r'disconnect from \S+\[127\.0\.0\.1\]:%d( |$)' % port, 'the disconnect')


def txn_lines(env, port, count=1, timeout=LOG_WAIT):
    suffix = ':%d' % port
    pred = lambda l: l.kind == 'txn' and l.get('client', '').endswith(suffix)   # noqa: E731
    try:
        return env.inst.wait_milter_line(pred, timeout, count)
    except HarnessError:
        n = len([l for l in env.inst.milter_lines() if pred(l)])
        raise Fail('got %d kind=txn lines for client port %d within %d s (milter %s), want %d'
                   % (n, port, timeout, 'running' if env.inst.milter_running() else 'not running',
                      count)) from None


def conn_line(env, session, timeout=LOG_WAIT):
    pred = lambda l: l.kind == 'conn' and l.get('session') == session   # noqa: E731
    try:
        return env.inst.wait_milter_line(pred, timeout)
    except HarnessError:
        raise Fail('got no kind=conn line for session %s within %d s, want one'
                   % (session, timeout)) from None


def field(line, key, want=None):
    check(key in line.fields, 'no %s= in %s' % (key, show(line.raw, 400)), '%s=' % key)
    if want is not None:
        eq(line[key], want, key)
    return line[key]


def int_field(line, key):
    v = field(line, key)
    check(re.fullmatch(r'\d+', v) is not None, '%s=%s' % (key, show(v)), '%s=<integer>' % key)
    return int(v)


def content_free(line):
    """The txn line's timeline has DATA and no content phase."""
    tl = line.timeline()
    check('data' in tl and not any(p in tl for p in ('header', 'eoh', 'body', 'eom')),
          'timeline=%s' % line.get('timeline'), 'data and no content phases')


def full_content(line):
    tl = line.timeline()
    check('eom' in tl, 'timeline=%s' % line.get('timeline'), 'a timeline up to eom')


def txn_prefix(line, qid):
    """The milter's line carries Postfix's queue id (it saw {i} at DATA at the latest)."""
    eq(line.qid, qid, 'queue id prefix of the milter line')


# ---- verdicts ------------------------------------------------------------------------------

def read_bytes(path):
    try:
        with open(path, 'rb') as fh:
            return fh.read()
    except FileNotFoundError:
        return b''


def run_verdicts(env, order, extra=()):
    """smtptrace-explain --verdicts over the two logs on stdin; [dict] (one per line)."""
    maillog = read_bytes(env.inst.maillog_path)
    milterlog = read_bytes(env.inst.milter_log_path)
    data = maillog + milterlog if order == 'maillog+milter' else milterlog + maillog
    if not os.access(EXPLAIN, os.X_OK):
        raise Fail('got no %s, want the smtptrace-explain binary with --verdicts' % EXPLAIN)
    r = subprocess.run([EXPLAIN, '--verdicts'] + list(extra), input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise Fail('got smtptrace-explain --verdicts%s exit %d (%s), want exit 0 and verdicts'
                   % (''.join(' ' + a for a in extra), r.returncode,
                      show(r.stderr.decode('utf-8', 'replace').strip(), 200)))
    out = []
    for raw in r.stdout.decode('utf-8', 'replace').splitlines():
        if not raw.strip():
            continue
        if '--json' in extra:
            try:
                obj = json.loads(raw)
            except ValueError as e:
                raise Fail('got a --json line that is not JSON (%s): %s, want one object a line'
                           % (e, show(raw))) from None
            check(isinstance(obj, dict), 'a --json line %s' % show(raw), 'an object')
            out.append(obj)
        else:
            try:
                out.append(parse_kv(raw))
            except ParseError as e:
                raise Fail('got an unparsable verdict line (%s): %s, want key=value' % (e, show(raw))) from None
    return out


def find_verdict(verdicts, session, txn):
    found = [v for v in verdicts if str(v.get('session')) == session and str(v.get('txn')) == str(txn)]
    return found


def verdict(env, line, want, order):
    """The verdict of the milter line's transaction in one order; checks `want`:
    key -> exact string, or a callable (value or None) -> bool with a description in
    want['_desc'][key]."""
    vs = run_verdicts(env, order)
    session, txn = line.get('session'), line.get('txn')
    found = find_verdict(vs, session, txn)
    check(len(found) == 1, '%d verdicts for session=%s txn=%s (%s; %d verdicts in all)'
          % (len(found), session, txn, order, len(vs)), 'exactly 1')
    v = found[0]
    desc = want.get('_desc', {})
    for key, w in want.items():
        if key == '_desc':
            continue
        got = v.get(key)
        if callable(w):
            check(w(got), '%s=%s (%s) in %s' % (key, show(got), order, show(fmt_verdict(v), 300)),
                  '%s=%s' % (key, desc.get(key, '?')))
        else:
            check(got is not None and str(got) == w,
                  '%s=%s (%s) in %s' % (key, show(got), order, show(fmt_verdict(v), 300)),
                  '%s=%s' % (key, w))
    return v


def fmt_verdict(v):
    return ' '.join('%s=%s' % (k, x) for k, x in v.items())


def verdicts_both(env, line, want):
    """verdict() in both orders; the two verdicts must agree on every key."""
    a = verdict(env, line, want, 'maillog+milter')
    b = verdict(env, line, want, 'milter+maillog')
    keys = sorted(set(a) | set(b))
    diff = [k for k in keys if a.get(k) != b.get(k)]
    check(not diff, 'the orders disagree on %s (%s vs %s)'
          % (','.join(diff), show(str({k: a.get(k) for k in diff})), show(str({k: b.get(k) for k in diff}))),
          'the same verdict in both orders')
    return a


def no_code_or(code):
    """The 3-digit code: absent (Postfix did not log it) or the one the client got."""
    return lambda v: v in (None, '', '-') or str(v) == code


def contains(text):
    return lambda v: v is not None and text in str(v)


def int_at_least(n):
    return lambda v: v is not None and re.fullmatch(r'\d+', str(v)) is not None and int(v) >= n


# ---- cases ---------------------------------------------------------------------------------

def case_normal(env):
    """A full transaction: accepted, delivered; the verdict accepted, status=sent."""
    c = env.client('normal')
    r = send_message(c, message('normal'))
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid = queued_as(r.text)
    wait_maillog(env, r'^%s: to=<b@example\.test>.*status=sent' % qid, 'the delivery')
    wait_maillog(env, r'^%s: removed$' % qid, 'the queue file removed')
    wait_session_end(env, c.local_port)
    line = txn_lines(env, c.local_port)
    field(line, 'outcome', 'accepted')
    txn_prefix(line, qid)
    eq(int_field(line, 'txn'), 1, 'txn')
    eq(int_field(line, 'rcpt'), 1, 'rcpt')
    full_content(line)
    verdicts_both(env, line, {'outcome': 'accepted', 'milter_outcome': 'accepted', 'resolved': 'yes',
                              'queue_id': qid, 'delivery': contains('sent'),
                              '_desc': {'delivery': '<...status=sent...>'}})


def case_paused_upload(env):
    """The client waits PAUSE s after 354, then uploads: accepted, upload_ms >= the pause."""
    c = env.client('pause')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.data()
    time.sleep(PAUSE)        # the client's pause: the behaviour under test, not a wait for a result
    c.send_body(message('pause'))
    r = c.end_data()
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid = queued_as(r.text)
    wait_maillog(env, r'^%s: removed$' % qid, 'the queue file removed')
    wait_session_end(env, c.local_port)
    line = txn_lines(env, c.local_port)
    field(line, 'outcome', 'accepted')
    txn_prefix(line, qid)
    ms = int(PAUSE * 1000)
    up = int_field(line, 'upload_ms')
    check(up >= ms, 'upload_ms=%d' % up, 'upload_ms >= %d' % ms)
    verdicts_both(env, line, {'outcome': 'accepted', 'milter_outcome': 'accepted', 'resolved': 'yes',
                              'queue_id': qid, 'upload_ms': int_at_least(ms),
                              '_desc': {'upload_ms': '>= %d' % ms}})


def case_abandoned_after_354(env):
    """Half the message after 354, then the client closes the socket: the milter cannot
    tell this from a refusal then QUIT (ended-after-354); Postfix's "lost connection
    after DATA (N bytes)" settles it: abandoned-after-354 with the bytes."""
    c = env.client('abandon')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.data()
    data = message('abandon')
    c.send_body(data[:len(data) // 2])
    port = c.local_port
    time.sleep(0.3)          # the client's behaviour: the half upload reaches Postfix first
    c.close()
    _l, m = wait_maillog(env, r'lost connection after DATA \((\d+) bytes\) from \S+:%d$' % port,
                         'the lost connection')
    nbytes = m.group(1)
    qid = env.inst.queue_id(client_port=port, timeout=2)
    wait_session_end(env, port)
    line = txn_lines(env, port)
    field(line, 'outcome', 'ended-after-354')
    txn_prefix(line, qid)
    content_free(line)
    verdicts_both(env, line, {'outcome': 'abandoned-after-354', 'milter_outcome': 'ended-after-354',
                              'resolved': 'yes', 'queue_id': qid, 'bytes': nbytes,
                              'evidence': contains('lost connection after DATA'),
                              '_desc': {'evidence': '<...lost connection after DATA...>'}})


def case_timeout_after_354(env):
    """Part of the message, then silence until smtpd_timeout: 421 4.4.2 from Postfix,
    "timeout after DATA (N bytes)"; timeout-after-354 in the milter and the verdict."""
    c = env.client('stall')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.data()
    data = message('stall')
    c.send_body(data[:len(data) // 2])
    port = c.local_port
    said, elapsed = c.wait_for_close(SMTPD_TIMEOUT + 20)
    check(said.strip().startswith('421 4.4.2'), 'server said %s' % show(said), '421 4.4.2 ... timeout exceeded')
    _l, m = wait_maillog(env, r'timeout after DATA \((\d+) bytes\) from \S+:%d$' % port, 'the timeout')
    nbytes = m.group(1)
    qid = env.inst.queue_id(client_port=port, timeout=2)
    wait_session_end(env, port)
    line = txn_lines(env, port)
    field(line, 'outcome', 'timeout-after-354')
    field(line, 'reply', '421 4.4.2')
    txn_prefix(line, qid)
    content_free(line)
    verdicts_both(env, line, {'outcome': 'timeout-after-354', 'milter_outcome': 'timeout-after-354',
                              'resolved': 'yes', 'queue_id': qid, 'bytes': nbytes,
                              'code': '421', 'enhanced': '4.4.2',
                              'evidence': contains('timeout after DATA'),
                              '_desc': {'evidence': '<...timeout after DATA...>'}})


def refused_case(env, tag, data, want_code, want_enh, want_text, postfix_rx, evidence,
                 verdict_extra=None, milter_outcome='ended-after-354'):
    """Send `data`; Postfix refuses it after the dot; QUIT. Returns (line, qid)."""
    c = env.client(tag)
    r = send_message(c, data)
    port = c.local_port
    c.quit()
    check(r.code == want_code and want_enh in r.text and want_text in r.text,
          'reply to the final dot %s' % show(r.text), '%d %s ...%s...' % (want_code, want_enh, want_text))
    qid = env.inst.queue_id(client_port=port)
    wait_maillog(env, postfix_rx(qid), 'the refusal')
    wait_session_end(env, port)
    line = txn_lines(env, port)
    field(line, 'outcome', milter_outcome)
    txn_prefix(line, qid)
    if milter_outcome == 'accepted':
        full_content(line)
    else:
        content_free(line)
    want = {'outcome': 'refused-after-354', 'milter_outcome': milter_outcome, 'resolved': 'yes',
            'queue_id': qid, 'enhanced': want_enh, 'code': no_code_or(str(want_code)),
            'reply': contains(want_text), 'evidence': contains(evidence),
            '_desc': {'code': '%d or none' % want_code, 'reply': '<...%s...>' % want_text,
                      'evidence': '<...%s...>' % evidence}}
    want.update(verdict_extra or {})
    verdicts_both(env, line, want)
    return line, qid


def case_over_size_limit(env):
    """A message over message_size_limit: 552 5.3.4 after the dot, Postfix logs only
    "warning: QID: queue file size limit exceeded"; the client quits; the milter saw DATA,
    abort, close (ended-after-354); the verdict refused-after-354 552 5.3.4."""
    data = message('size', size=SIZE_LIMIT * 2)
    refused_case(env, 'size', data, 552, '5.3.4', 'message file too big',
                 lambda q: r'^warning: %s: queue file size limit exceeded$' % q,
                 'queue file size limit exceeded', verdict_extra={'code': '552'})


def case_header_checks_reject(env):
    data = message('hdr', headers=[('X-Truth', 'a')])
    data = data.replace(b'Subject: smtptrace truth hdr', b'Subject: %s' % HEADER_MARK.encode())
    refused_case(env, 'hdr', data, 550, '5.7.1', HEADER_TEXT,
                 lambda q: r'^%s: reject: header Subject: %s' % (q, HEADER_MARK), 'reject: header')


def case_header_reject_then_vanish(env):
    """The rejected Subject, then 70 % of the message and a close without the dot:
    cleanup may log "reject: header" during the upload, but the client never got the 550
    (it left first): the truth is abandoned-after-354, with Postfix's bytes."""
    c = env.client('hdrgone')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.data()
    data = message('hdrgone', size=6000).replace(b'Subject: smtptrace truth hdrgone',
                                                 b'Subject: %s gone' % HEADER_MARK.encode())
    c.send_body(data[:len(data) * 7 // 10])
    port = c.local_port
    time.sleep(0.3)          # the client's behaviour: the partial upload reaches Postfix first
    c.close()
    _l, m = wait_maillog(env, r'lost connection after DATA \((\d+) bytes\) from \S+:%d$' % port,
                         'the lost connection')
    nbytes = m.group(1)
    qid = env.inst.queue_id(client_port=port, timeout=2)
    wait_session_end(env, port)
    rej = [l for l in env.inst.maillog_for(qid) if 'reject: header' in l.text]
    env.note('cleanup logged reject: header during the upload: %s' % ('yes' if rej else 'no'))
    line = txn_lines(env, port)
    field(line, 'outcome', 'ended-after-354')
    txn_prefix(line, qid)
    content_free(line)
    verdicts_both(env, line, {'outcome': 'abandoned-after-354', 'milter_outcome': 'ended-after-354',
                              'resolved': 'yes', 'queue_id': qid, 'bytes': nbytes,
                              'evidence': contains('lost connection after DATA'),
                              '_desc': {'evidence': '<...lost connection after DATA...>'}})


def case_header_checks_discard(env):
    """header_checks DISCARD, then QUIT: the client gets 250 queued, the message is dropped
    (cleanup logs "discard: header"); the milter saw DATA, abort, close (ended-after-354);
    the verdict discarded."""
    c = env.client('hdrdiscard')
    data = message('hdrdiscard').replace(b'Subject: smtptrace truth hdrdiscard',
                                         b'Subject: %s' % DISCARD_MARK.encode())
    r = send_message(c, data)
    port = c.local_port
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid = queued_as(r.text)
    wait_maillog(env, r'^%s: discard: header Subject: %s' % (qid, DISCARD_MARK), 'the discard line')
    wait_session_end(env, port)
    line = txn_lines(env, port)
    # Like a refusal, the discard happens in cleanup before the milters get the content:
    # DATA, then abort and close at the QUIT. The client got 250.
    field(line, 'outcome', 'ended-after-354')
    txn_prefix(line, qid)
    content_free(line)
    verdicts_both(env, line, {'outcome': 'discarded', 'milter_outcome': 'ended-after-354',
                              'resolved': 'yes', 'queue_id': qid,
                              'evidence': contains('discard: header'),
                              '_desc': {'evidence': '<...discard: header...>'}})


def case_body_checks_reject(env):
    data = message('body', body='first line\n%s here\nlast line\n' % BODY_MARK)
    refused_case(env, 'body', data, 550, '5.7.1', BODY_TEXT,
                 lambda q: r'^%s: reject: body %s' % (q, BODY_MARK), 'reject: body')


def case_data_refused(env):
    """smtpd_data_restrictions REJECT: 554 5.7.1 to DATA; the milter gets no DATA event
    (aborted-before-data); the verdict refused-at-data, code 554."""
    c = env.client('datarej')
    c.mail(DATA_SENDER)
    c.rcpt('b@example.test')
    r = c.command('DATA')
    port = c.local_port
    c.quit()
    check(r.code == 554 and '5.7.1' in r.text, 'reply to DATA %s' % show(r.text), '554 5.7.1 ...')
    pl, _m = wait_maillog(env, r'reject: DATA from \S+:%d: 554 5\.7\.1' % port, 'the reject: DATA line')
    env.note('reject: DATA line queue id: %s' % (pl.qid or pl.text.split(':')[0]))
    wait_session_end(env, port)
    line = txn_lines(env, port)
    field(line, 'outcome', 'aborted-before-data')
    tl = line.timeline()
    check('data' not in tl, 'timeline=%s' % line.get('timeline'), 'no data phase')
    want = {'outcome': 'refused-at-data', 'milter_outcome': 'aborted-before-data', 'resolved': 'yes',
            'code': '554', 'enhanced': '5.7.1', 'reply': contains(DATA_TEXT),
            'evidence': contains('reject: DATA'),
            '_desc': {'reply': '<...%s...>' % DATA_TEXT, 'evidence': '<...reject: DATA...>'}}
    if pl.qid:
        want['queue_id'] = pl.qid
    verdicts_both(env, line, want)


def case_after_milter_rejects(env):
    """The milter listed after smtptrace rejects at end of data: smtptrace saw EOM
    (accepted, and never learns more); the verdict refused-after-354 5.7.1."""
    data = message('after', headers=[('X-Test-After', 'reject')])
    refused_case(env, 'after', data, 550, '5.7.1', MILTER_TEXT,
                 lambda q: r'^%s: milter-reject: END-OF-MESSAGE from .*: 5\.7\.1 %s' % (q, MILTER_TEXT),
                 'milter-reject: END-OF-MESSAGE', milter_outcome='accepted')


def case_after_milter_tempfails(env):
    data = message('aftertemp', headers=[('X-Test-After', 'tempfail')])
    refused_case(env, 'aftertemp', data, 451, '4.7.1', MILTER_TEMP_TEXT,
                 lambda q: r'^%s: milter-reject: END-OF-MESSAGE from .*: 4\.7\.1 %s' % (q, MILTER_TEMP_TEXT),
                 'milter-reject: END-OF-MESSAGE', milter_outcome='accepted')


def case_after_milter_discards(env):
    """The milter after smtptrace discards: the client got 250, Postfix logs milter-discard;
    smtptrace saw EOM (accepted); the verdict discarded."""
    c = env.client('discard')
    r = send_message(c, message('discard', headers=[('X-Test-After', 'discard')]))
    port = c.local_port
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid = queued_as(r.text)
    wait_maillog(env, r'^%s: milter-discard: END-OF-MESSAGE from ' % qid, 'the milter-discard line')
    wait_session_end(env, port)
    line = txn_lines(env, port)
    field(line, 'outcome', 'accepted')
    txn_prefix(line, qid)
    verdicts_both(env, line, {'outcome': 'discarded', 'milter_outcome': 'accepted', 'resolved': 'yes',
                              'queue_id': qid, 'evidence': contains('milter-discard'),
                              '_desc': {'evidence': '<...milter-discard...>'}})


def case_before_milter_rejects(env):
    """The milter listed before smtptrace rejects at end of data, the client quits:
    smtptrace saw DATA, abort, close (ended-after-354); the verdict refused-after-354."""
    data = message('before', headers=[('X-Test-Before', 'reject')])
    refused_case(env, 'before', data, 550, '5.7.1', MILTER_TEXT,
                 lambda q: r'^%s: milter-reject: END-OF-MESSAGE from .*: 5\.7\.1 %s' % (q, MILTER_TEXT),
                 'milter-reject: END-OF-MESSAGE')


def case_before_milter_rejects_then_mail(env):
    """The milter before smtptrace rejects; the client goes on with MAIL (then RSET, QUIT):
    the milter sees abort then MAIL: refused-after-354."""
    c = env.client('beforemail')
    r = send_message(c, message('beforemail', headers=[('X-Test-Before', 'reject')]))
    port = c.local_port
    check(r.code == 550 and MILTER_TEXT in r.text, 'reply to the final dot %s' % show(r.text),
          '550 5.7.1 %s' % MILTER_TEXT)
    c.mail('a@example.test')
    c.rset()
    c.quit()
    qid = env.inst.queue_id(client_port=port)
    wait_maillog(env, r'^%s: milter-reject: END-OF-MESSAGE' % qid, 'the milter-reject line')
    wait_session_end(env, port)
    line = txn_lines(env, port, count=2)[0]
    field(line, 'outcome', 'refused-after-354')
    txn_prefix(line, qid)
    content_free(line)
    verdicts_both(env, line, {'outcome': 'refused-after-354', 'milter_outcome': 'refused-after-354',
                              'resolved': 'yes', 'queue_id': qid, 'enhanced': '5.7.1',
                              'code': no_code_or('550'), 'reply': contains(MILTER_TEXT),
                              'evidence': contains('milter-reject: END-OF-MESSAGE'),
                              '_desc': {'code': '550 or none', 'reply': '<...%s...>' % MILTER_TEXT,
                                        'evidence': '<...milter-reject: END-OF-MESSAGE...>'}})


def case_refused_then_second_transaction(env):
    """header_checks refuses txn 1 (550 after the dot); the client goes on with a second,
    accepted message on the same connection. The milter: txn 1 refused-after-354 (the
    abort came with the next MAIL), txn 2 accepted; the verdicts the same."""
    c = env.client('twotxn')
    d1 = message('twotxn1').replace(b'Subject: smtptrace truth twotxn1',
                                    b'Subject: %s twice' % HEADER_MARK.encode())
    r1 = send_message(c, d1)
    check(r1.code == 550 and HEADER_TEXT in r1.text, 'reply to the first dot %s' % show(r1.text),
          '550 5.7.1 %s' % HEADER_TEXT)
    r2 = send_message(c, message('twotxn2'), mail_from='second@example.test')
    port = c.local_port
    c.quit()
    eq(r2.code, 250, 'reply to the second dot')
    qid2 = queued_as(r2.text)
    wait_maillog(env, r'^%s: removed$' % qid2, 'the second message delivered')
    wait_session_end(env, port)
    first, second = txn_lines(env, port, count=2)
    eq(int_field(first, 'txn'), 1, 'txn of the first line')
    field(first, 'outcome', 'refused-after-354')
    content_free(first)
    eq(int_field(second, 'txn'), 2, 'txn of the second line')
    field(second, 'outcome', 'accepted')
    txn_prefix(second, qid2)
    eq(second.get('session'), first.get('session'), 'session of txn 2')
    v1 = verdicts_both(env, first, {'outcome': 'refused-after-354', 'milter_outcome': 'refused-after-354',
                                    'resolved': 'yes', 'enhanced': '5.7.1',
                                    'code': no_code_or('550'), 'reply': contains(HEADER_TEXT),
                                    'evidence': contains('reject: header'),
                                    '_desc': {'code': '550 or none', 'reply': '<...%s...>' % HEADER_TEXT,
                                              'evidence': '<...reject: header...>'}})
    check(str(v1.get('queue_id')) == first.qid, 'txn 1 verdict queue_id=%s' % v1.get('queue_id'),
          "the milter line's %s" % first.qid)
    verdicts_both(env, second, {'outcome': 'accepted', 'milter_outcome': 'accepted', 'resolved': 'yes',
                                'queue_id': qid2, 'delivery': contains('sent'),
                                '_desc': {'delivery': '<...status=sent...>'}})


def refused_then(env, tag, then):
    """header_checks refuses the message (550 after the dot); then the client does
    `then(c)` and QUIT. Returns the milter's txn line of the refused message and its qid."""
    c = env.client(tag)
    d = message(tag).replace(b'Subject: smtptrace truth %s' % tag.encode(),
                             b'Subject: %s %s' % (HEADER_MARK.encode(), tag.encode()))
    r = send_message(c, d)
    check(r.code == 550 and HEADER_TEXT in r.text, 'reply to the final dot %s' % show(r.text),
          '550 5.7.1 %s' % HEADER_TEXT)
    port = c.local_port
    then(c)
    c.quit()
    qid = env.inst.queue_id(client_port=port)
    wait_maillog(env, r'^%s: reject: header Subject: %s' % (qid, HEADER_MARK), 'the header reject')
    wait_session_end(env, port)
    line = txn_lines(env, port)
    env.note('txn line: %s' % line.raw)
    return line, qid


def case_refused_then_ehlo(env):
    """Refused after the dot, then EHLO again (a HELO event for the milter), QUIT:
    the milter knows the client went on: refused-after-354."""
    line, qid = refused_then(env, 'thenehlo', lambda c: c.ehlo('again.client.test'))
    field(line, 'outcome', 'refused-after-354')
    txn_prefix(line, qid)
    content_free(line)
    verdicts_both(env, line, {'outcome': 'refused-after-354', 'milter_outcome': 'refused-after-354',
                              'resolved': 'yes', 'queue_id': qid, 'enhanced': '5.7.1',
                              'evidence': contains('reject: header'),
                              '_desc': {'evidence': '<...reject: header...>'}})


def case_refused_then_rset(env):
    """Refused after the dot, then RSET, QUIT. The milter protocol has no RSET event and
    Postfix sends the milter nothing for it after a finished transaction: the milter
    sees DATA, abort, close, like a client that vanished: ended-after-354. The verdict
    (Postfix's reject line) says refused-after-354."""
    line, qid = refused_then(env, 'thenrset', lambda c: c.rset())
    field(line, 'outcome', 'ended-after-354')
    txn_prefix(line, qid)
    content_free(line)
    verdicts_both(env, line, {'outcome': 'refused-after-354', 'milter_outcome': 'ended-after-354',
                              'resolved': 'yes', 'queue_id': qid, 'enhanced': '5.7.1',
                              'evidence': contains('reject: header'),
                              '_desc': {'evidence': '<...reject: header...>'}})


def case_no_valid_recipients(env):
    """Every RCPT rejected by Postfix, then QUIT: no-valid-recipients (rcpt=0,
    rcpt_rejected=2) in the milter and the verdict."""
    c = env.client('norcpt')
    c.mail('a@example.test')
    c.rcpt('blocked@example.test', codes=(554,))
    c.rcpt('blocked2@example.test', codes=(554,))
    port = c.local_port
    c.quit()
    pl, _m = wait_maillog(env, r'reject: RCPT from \S+:%d: 554 5\.7\.1 <blocked2@' % port, 'the RCPT reject')
    env.note('reject: RCPT line queue id: %s' % (pl.qid or pl.text.split(':')[0]))
    wait_session_end(env, port)
    line = txn_lines(env, port)
    env.note('no-valid-recipients txn line prefix: %s' % line.qid)
    field(line, 'outcome', 'no-valid-recipients')
    eq(int_field(line, 'rcpt'), 0, 'rcpt')
    eq(int_field(line, 'rcpt_rejected'), 2, 'rcpt_rejected')
    verdicts_both(env, line, {'outcome': 'no-valid-recipients', 'milter_outcome': 'no-valid-recipients'})


def case_rset_after_rcpt(env):
    """MAIL, RCPT (accepted), RSET, QUIT: aborted-before-data in the milter and the verdict."""
    c = env.client('rset')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.rset()
    port = c.local_port
    c.quit()
    wait_session_end(env, port)
    line = txn_lines(env, port)
    env.note('aborted-before-data (RSET) txn line prefix: %s' % line.qid)
    field(line, 'outcome', 'aborted-before-data')
    verdicts_both(env, line, {'outcome': 'aborted-before-data', 'milter_outcome': 'aborted-before-data'})


def case_rset_after_two_rcpts(env):
    """MAIL, two RCPTs, RSET: Postfix opens the queue file at the first accepted
    recipient, after the milter's RCPT event, so {i} comes with the second RCPT:
    the milter's line carries the queue id Postfix logged in "QID: client="."""
    c = env.client('rset2')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.rcpt('c@example.test')
    c.rset()
    port = c.local_port
    c.quit()
    qid = env.inst.queue_id(client_port=port)
    wait_session_end(env, port)
    line = txn_lines(env, port)
    env.note('aborted-before-data (2 rcpts, RSET) txn line prefix: %s, Postfix client= %s' % (line.qid, qid))
    field(line, 'outcome', 'aborted-before-data')
    txn_prefix(line, qid)
    verdicts_both(env, line, {'outcome': 'aborted-before-data', 'milter_outcome': 'aborted-before-data',
                              'queue_id': qid})


def case_bdat(env):
    """BDAT (CHUNKING): two chunks, the second LAST; no 354. Accepted, delivered."""
    c = env.client('bdat')
    ehlo = c.ehlo_reply
    check(any('CHUNKING' in l for l in ehlo.lines), 'EHLO reply %s' % show(ehlo.text), 'CHUNKING offered')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    data = message('bdat')
    half = len(data) // 2
    r1 = c.bdat(data[:half])
    eq(r1.code, 250, 'reply to the first BDAT')
    r = c.bdat(data[half:], last=True)
    port = c.local_port
    c.quit()
    eq(r.code, 250, 'reply to BDAT LAST')
    qid = queued_as(r.text)
    check(qid is not None, 'reply %s' % show(r.text), '250 2.0.0 Ok: queued as QID')
    wait_maillog(env, r'^%s: removed$' % qid, 'the queue file removed')
    wait_session_end(env, port)
    line = txn_lines(env, port)
    field(line, 'outcome', 'accepted')
    txn_prefix(line, qid)
    full_content(line)
    verdicts_both(env, line, {'outcome': 'accepted', 'milter_outcome': 'accepted', 'resolved': 'yes',
                              'queue_id': qid, 'delivery': contains('sent'),
                              '_desc': {'delivery': '<...status=sent...>'}})


def case_json_matches_kv(env):
    """--json gives the same verdicts as key=value: one object a line, the same outcomes."""
    kv = run_verdicts(env, 'maillog+milter')
    js = run_verdicts(env, 'maillog+milter', extra=['--json'])
    check(len(kv) > 0, 'no verdicts over the whole run', 'one per transaction')
    eq(len(js), len(kv), 'number of verdicts with --json')
    for a, b in zip(kv, js):
        for key in ('session', 'txn', 'outcome', 'milter_outcome', 'resolved'):
            check(str(a.get(key)) == str(b.get(key)) or (key == 'resolved' and
                                                          str(b.get(key)).lower() in ('true', 'false')),
                  '%s=%s with --json, %s without' % (key, b.get(key), a.get(key)), 'the same')


def case_milter_lines_well_formed(env):
    """Over the whole run: every milter log line has the prefix and parses; milters up."""
    inst = env.inst
    check(inst.milter_running(), 'smtptrace exited with %s' % inst.milter_proc.poll(), 'running')
    for name, proc in inst.test_milter_procs.items():
        check(proc.poll() is None, 'test milter %s exited with %s' % (name, proc.poll()), 'running')
    for l in inst.milter_lines():
        check(l.ident is not None, 'a line without prefix: %s' % show(l.raw, 120), '"smtptrace[PID]: "')
        check(l.parse_error is None, 'malformed (%s): %s' % (l.parse_error, show(l.raw, 200)),
              'well-formed lines')
    check(not any(l.get('outcome') == 'abandoned-after-354' for l in inst.milter_lines()),
          'outcome=abandoned-after-354 in the milter log', 'never (only a verdict says that)')


CASES = [
    case_normal,
    case_paused_upload,
    case_abandoned_after_354,
    case_timeout_after_354,
    case_over_size_limit,
    case_header_checks_reject,
    case_header_reject_then_vanish,
    case_header_checks_discard,
    case_body_checks_reject,
    case_data_refused,
    case_after_milter_rejects,
    case_after_milter_tempfails,
    case_after_milter_discards,
    case_before_milter_rejects,
    case_before_milter_rejects_then_mail,
    case_refused_then_second_transaction,
    case_refused_then_ehlo,
    case_refused_then_rset,
    case_no_valid_recipients,
    case_rset_after_rcpt,
    case_rset_after_two_rcpts,
    case_bdat,
    case_json_matches_kv,
    case_milter_lines_well_formed,
]


# ---- --save-logs ----------------------------------------------------------------------------

def _case_lines(env, ports):
    """The Postfix lines of the sessions from these client ports (smtpd lines from connect
    to disconnect of the same smtpd pid, and every line of the queue ids named there), and
    the milter lines of their sessions."""
    ml = env.inst.maillog_lines()
    keep = set()
    qids = set()
    for port in ports:
        rx_c = re.compile(r'^connect from \S+\[127\.0\.0\.1\]:%d$' % port)
        rx_d = re.compile(r'^disconnect from \S+\[127\.0\.0\.1\]:%d( |$)' % port)
        start = next((i for i, l in enumerate(ml) if rx_c.search(l.text)), None)
        if start is None:
            continue
        pid = re.search(r'\[(\d+)\]: ', ml[start].raw).group(1)
        for i in range(start, len(ml)):
            l = ml[i]
            if l.prog and l.prog.endswith('/smtpd') and ('[%s]: ' % pid) in l.raw:
                keep.add(i)
                if l.qid:
                    qids.add(l.qid)
                if rx_d.search(l.text):
                    break
        for i in range(start, len(ml)):
            l = ml[i]
            m = re.match(r'^(?:warning: )?([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}): ',
                         l.text)
            if (l.qid in qids) or (m and m.group(1) in qids):
                keep.add(i)
    # a daemon's warning without a queue id right after one of its kept lines
    # ("warning: mail_stream_cleanup: close error" after the size limit)
    for i in sorted(keep):
        j = i + 1
        while j < len(ml) and j not in keep and not ml[j].qid and ml[j].text.startswith('warning:') \
                and re.search(r'\[\d+\]: ', ml[j].raw).group(0) == re.search(r'\[\d+\]: ', ml[i].raw).group(0):
            keep.add(j)
            j += 1
    postfix = [ml[i].raw for i in sorted(keep)]
    sessions = set()
    for l in env.inst.milter_lines():
        if l.kind == 'txn' and any(l.get('client', '').endswith(':%d' % p) for p in ports):
            sessions.add(l.get('session'))
    milter = [l.raw for l in env.inst.milter_lines() if l.get('session') in sessions]
    return postfix, milter


def save_logs(env, outdir, extra_note=None):
    os.makedirs(outdir, exist_ok=True)
    inst = env.inst
    ver = subprocess.run(['/usr/sbin/postconf', '-d', '-h', 'mail_version'], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout.decode().strip()
    settings = ['%s = %s' % (k, v) for k, v in inst.main_cf_settings().items()
                if k in ('smtpd_timeout', 'message_size_limit', 'header_checks', 'body_checks',
                         'smtpd_data_restrictions', 'smtpd_milters', 'smtpd_recipient_restrictions',
                         'smtpd_client_port_logging', 'enable_long_queue_ids')]
    tables = []
    for name in ('header_checks', 'body_checks', 'data_access', 'rcpt_access'):
        p = os.path.join(inst.config_dir, name)
        if os.path.exists(p):
            tables += ['%s: %s' % (name, l.rstrip('\n')) for l in open(p) if not l.startswith('#')]
    head = [
        'Captured by tests/e2e/test_truth.py --save-logs on %s' % time.strftime('%Y-%m-%d'),
        'Debian 12, Postfix %s (maillog_file), libmilter 8.17.1, on the private loopback test' % ver,
        'instance of tests/harness/instance.py (smtpd on 127.0.0.1, relay to smtp-sink,',
        'smtpd_client_port_logging = yes; short queue ids). Settings of this run:',
    ] + ['  ' + s for s in settings] + ['  ' + t for t in tables] + [
        'The temp dir path /tmp/smtptrace-e2e.XXXX is as it was in the run.',
    ]
    first = inst.milter_lines()[:1]
    if first:
        head.append('The milter: %s' % first[0].text)
    if extra_note:
        head += extra_note.split('\n')
    for fname, path, what in (('maillog', inst.maillog_path, "Postfix's maillog of the whole run"),
                              ('milter.log', inst.milter_log_path,
                               "smtptrace-milter -f's log (stderr) of the same run, same order")):
        with open(os.path.join(outdir, fname), 'wb') as out:
            out.write(('# %s\n' % what).encode())
            for h in head:
                out.write(('# %s\n' % h).encode())
            out.write(read_bytes(path))
    for name, ports, clients, notes in env.captured:
        if not ports:
            continue
        postfix, milter = _case_lines(env, ports)
        with open(os.path.join(outdir, '%s.log' % name), 'w') as out:
            out.write('# case %s (tests/e2e/test_truth.py)\n' % name)
            for h in head:
                out.write('# %s\n' % h)
            for c in clients:
                out.write('# client 127.0.0.1:%d, the raw client of tests/harness/smtpclient.py:\n'
                          % c.local_port)
                for d, t in c.transcript:
                    out.write('#   %s %s\n' % ('C:' if d == '>' else 'S:', t))
            for n in notes:
                out.write('# note: %s\n' % n)
            out.write('# Postfix lines of this session (maillog), then the milter lines of it:\n')
            for l in postfix:
                out.write(l + '\n')
            for l in milter:
                out.write(l + '\n')


# ---- main -----------------------------------------------------------------------------------

def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description='smtptrace end-to-end truth tests')
    ap.add_argument('-k', metavar='SUBSTRING', help='run only the cases whose name contains this')
    ap.add_argument('-v', action='store_true', help='show progress notes and tracebacks')
    ap.add_argument('--save-logs', metavar='DIR', help='write the logs of the run (tests/data/postfix-3.7)')
    ap.add_argument('--log-format', choices=('kv', 'json'), default='kv',
                    help="the milter's log.format (default kv)")
    ap.add_argument('--save-note', metavar='TEXT', help='a note for the header of the saved files')
    args = ap.parse_args(argv)
    set_verbose(args.v)
    cases = [c for c in CASES if not args.k or args.k in c.__name__]
    t0 = time.monotonic()
    try:
        inst = Instance(milter=True, log_format=args.log_format, **INSTANCE_OPTIONS)
        inst.start()
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        return start_failed('truth', e)
    env = Env(inst)

    def wrap(case):
        def run(e):
            e.current = (case.__name__[len('case_'):], [], [], [])
            e.captured.append(e.current)
            t = time.monotonic()
            try:
                case(e)
            finally:
                e.current = None
                note('%s: %.1f s' % (case.__name__[len('case_'):], time.monotonic() - t))
        run.__name__ = case.__name__
        return run

    try:
        passed, failed = run_cases([wrap(c) for c in cases], env,
                                   (HarnessError, sc.SMTPError, OSError, subprocess.SubprocessError,
                                    ParseError, KeyError, ValueError))
        if args.save_logs:
            save_logs(env, args.save_logs, args.save_note)
    finally:
        inst.stop()
    return summary('truth', passed, failed, started=t0)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
