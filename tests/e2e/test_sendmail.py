#!/usr/bin/env python3
"""smtptrace end-to-end on a real Sendmail 8.17: the milter's lines, the delivered header, and
the verdict `smtptrace-explain --verdicts` gives over Sendmail's own log.

    python3 tests/e2e/test_sendmail.py [-k SUBSTRING] [-v] [--save-logs DIR]
                                       (as root; make BUILD=... the milter, the test milter
                                        and smtptrace-explain first; make deps-sendmail)

One instance for all cases (tests/harness/sendmail.py): Debian 12's Sendmail 8.17.1.9,
unpacked from its packages into build/sendmail-root/ (never installed: it conflicts with
Postfix), on 127.0.0.1 in a private UTS+mount namespace, relaying to smtp-sink, its log
from a private /dev/log. Settings:
    Timeout.datablock = 5s (Sendmail's data timeout, 1 h by default; also the milter's
        mta.data_timeout), MaxMessageSize = 20000, AllowBogusHELO = True
    access db (check_rcpt, FEATURE(blocklist_recipients)): blocked@ and blocked2@example.test
        refused with "550 5.2.1 ... Mailbox disabled for this recipient"
    nouser@mx.test, nouser2@mx.test: local users that do not exist ("550 5.1.1 User unknown")
    INPUT_MAIL_FILTER: test-milter "Before", smtptrace, test-milter "After", each with F=
        (tests/milter/test_milter.c: acts only on "X-Test-Before:"/"X-Test-After:")

Each case drives one SMTP session with the raw client, waits (bounded polls) for Sendmail's
deciding line and the milter's kind=txn line, asserts them, then runs smtptrace-explain
--verdicts over Sendmail's log and the milter's log in both orders (tests/e2e/test_truth.py's
helpers) and asserts the verdict. Where Sendmail differs from Postfix the case says what is
expected and why. Prints "ok   name" or "FAIL name: got X, want Y"; the last line is
"sendmail: N passed, M failed"; the exit status is non-zero when a case failed.

Environment: SMTPTRACE_MILTER, SMTPTRACE_TEST_MILTER, SMTPTRACE_EXPLAIN (as test_truth.py),
SMTPTRACE_KEEP=1 keeps the temp dir.

--save-logs DIR writes what the run produced for tests/data/sendmail-8.17/: Sendmail's whole
log and the milter's, and one file per case with the client's transcript (# comments), the
Sendmail lines of its queue ids and the milter lines of its session.
"""

import os
import re
import subprocess
import sys
import time

HERE = os.path.abspath(os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from harness.instance import HarnessError                         # noqa: E402
from harness.sendmail import SendmailInstance, sendmail_version    # noqa: E402
from harness.parse import parse_trace_header, parse_timeline, ParseError   # noqa: E402
from harness import smtpclient as sc                               # noqa: E402
from harness.cases import (Fail, check, eq, show, note, set_verbose,   # noqa: E402
                           run_cases, start_failed, summary)
import test_truth as truth                                         # noqa: E402
from test_truth import (Env, field, int_field, content_free, full_content, txn_prefix,  # noqa: E402
                        verdicts_both, contains, int_at_least)

HOST = '127.0.0.1'
DATABLOCK = 5
SIZE_LIMIT = 20000
PAUSE = 2.0
LOG_WAIT = 8
HEADER = 'X-SMTP-Trace'
ALL_PHASES = ['connect', 'helo', 'mail', 'rcpt', 'data', 'header', 'eoh', 'body', 'eom']
MILTER_TEXT = 'Rejected by test milter'              # tests/milter/test_milter.c
ACCESS_TEXT = 'Mailbox disabled for this recipient'  # harness.sendmail.DEFAULT_ACCESS
QID_RE = r'[0-9A-Za-z]{8}\d{6,}'

INSTANCE_OPTIONS = dict(
    datablock_timeout=DATABLOCK, timeout_tolerance=1, max_message_size=SIZE_LIMIT,
    allow_bogus_helo=True, milters_before=['Before'], milters_after=['After'],
)


def accepted_as(text):
    """The queue id in Sendmail's "250 2.0.0 QID Message accepted for delivery"."""
    m = re.search(r'250 2\.0\.0 (%s) Message accepted for delivery' % QID_RE, text)
    return m.group(1) if m else None


def wait_maillog(env, pattern, what, timeout=LOG_WAIT):
    try:
        return env.inst.wait_maillog(pattern, timeout)
    except HarnessError:
        raise Fail('got no Sendmail line /%s/ within %d s (%s), want one' % (pattern, timeout, what)) from None


def session_over(env, line):
    """The milter's kind=conn line of the txn line's session: the milter wrote all of it."""
    truth.conn_line(env, line.get('session'))


def txn_line(env, port, count=1):
    lines = truth.txn_lines(env, port, count, timeout=LOG_WAIT)
    return lines


def qid_of(line):
    check(re.fullmatch(QID_RE, line.qid or '') is not None, 'prefix %s' % line.qid,
          "Sendmail's queue id ({i} from MAIL)")
    return line.qid


def message(tag, headers=(), size=1200, mail_from='a@example.test', rcpt='b@example.test'):
    return truth.message(tag, headers=headers, size=size, mail_from=mail_from, rcpt=rcpt)


def trace_fields(msg):
    found = msg.get_all(HEADER)
    check(len(found) == 1, '%d %s headers (%s)' % (len(found), HEADER, [f.value[:60] for f in found]),
          'exactly 1')
    return found[0]


def parse_trace(f):
    try:
        return parse_trace_header(f.value)
    except ParseError as e:
        raise Fail('unparsable %s header (%s): %s' % (HEADER, e, show(f.value, 400))) from None


def check_header_lines(f, limit):
    for line in f.lines:
        check(len(line.encode('utf-8', 'surrogateescape')) <= limit,
              'a %d-column header line %s' % (len(line), show(line, 100)), 'at most %d' % limit)
        check(all(32 <= ord(c) < 127 or c == '\t' for c in line),
              'non-ASCII or control character in header line %s' % show(line, 200), 'ASCII only')


def delivered_ok(env, qid):
    """Sendmail's delivery line and the verdict keys of an accepted message."""
    wait_maillog(env, r'^%s: to=<.*, mailer=esmtp, .*stat=Sent' % qid, 'the delivery')
    return {'outcome': 'accepted', 'milter_outcome': 'accepted', 'resolved': 'yes', 'queue_id': qid,
            'code': '250', 'delivery': contains('Sent'), 'evidence': contains('stat=Sent'),
            '_desc': {'delivery': '<...Sent...>', 'evidence': '<...stat=Sent...>'}}


# ---- cases ---------------------------------------------------------------------------------

def case_normal(env):
    """A full transaction: 250 "QID Message accepted for delivery"; the milter's line
    carries that QID ({i} from MAIL), every phase; the verdict accepted, delivery Sent."""
    c = env.client('normal')
    r = truth.send_message(c, message('normal'))
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid = accepted_as(r.text)
    check(qid is not None, 'reply %s' % show(r.text), '250 2.0.0 QID Message accepted for delivery')
    want = delivered_ok(env, qid)
    line = txn_line(env, c.local_port)
    session_over(env, line)
    field(line, 'outcome', 'accepted')
    txn_prefix(line, qid)
    eq(int_field(line, 'txn'), 1, 'txn')
    eq(int_field(line, 'rcpt'), 1, 'rcpt')
    tl = line.timeline()
    missing = [p for p in ALL_PHASES if p not in tl]
    check(not missing, 'timeline=%s' % line.get('timeline'), 'all of %s' % ','.join(ALL_PHASES))
    check(field(line, 'client').startswith('localhost[127.0.0.1]:'), 'client=%s' % line.get('client'),
          'client=localhost[127.0.0.1]:PORT (Sendmail resolves 127.0.0.1 in its hosts file)')
    msg = env.inst.wait_delivered(queue_id=qid)
    _sid, items = parse_trace(trace_fields(msg))
    eq(items.get('outcome'), 'accepted', 'header outcome')
    eq(items.get('queue_id'), qid, 'header queue_id')
    verdicts_both(env, line, want)


def case_forged_header_removed(env):
    """An incoming X-SMTP-Trace is removed (Sendmail logs "Milter (smtptrace) delete:
    header"), ours inserted at index 0 lands above Sendmail's own Received: (as on
    Postfix), folded at 78 columns."""
    c = env.client('forged')
    r = truth.send_message(c, message('forged', headers=[(HEADER, 'forged by the client')]))
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid = accepted_as(r.text)
    wait_maillog(env, r'^%s: Milter \(smtptrace\) delete: header %s: forged' % (qid, HEADER),
                 "Sendmail's note of the removal")
    msg = env.inst.wait_delivered(queue_id=qid)
    f = trace_fields(msg)
    check('forged by the client' not in f.value, 'header %s' % show(f.value), 'the forged copy removed')
    names = [n.lower() for n in msg.names()]
    check(names[:2] == [HEADER.lower(), 'received'], 'header order %s' % msg.names()[:4],
          "%s first, then Sendmail's Received:" % HEADER)
    rcvd = msg.get_all('Received')[0].value
    check(('id %s' % qid) in rcvd and '8.17' in rcvd, 'second header Received: %s' % show(rcvd),
          "Sendmail's Received: ... (8.17...) ... id %s" % qid)
    check_header_lines(f, 78)
    sid, items = parse_trace(f)
    eq(sid, 'mx.test', 'authserv-id')
    eq(items.get('queue_id'), qid, 'header queue_id')
    tl = parse_timeline(items.get('timeline', ''))
    check(all(p in tl for p in ALL_PHASES), 'header timeline=%s' % items.get('timeline'),
          'every phase')


def case_paused_upload(env):
    """The client waits PAUSE s after 354, then uploads: accepted, upload_ms >= the pause
    (Sendmail, like Postfix, hands the content to the milters only after the final dot)."""
    c = env.client('pause')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.data()
    time.sleep(PAUSE)        # the client's pause: the behaviour under test
    c.send_body(message('pause'))
    r = c.end_data()
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid = accepted_as(r.text)
    want = delivered_ok(env, qid)
    line = txn_line(env, c.local_port)
    field(line, 'outcome', 'accepted')
    txn_prefix(line, qid)
    ms = int(PAUSE * 1000)
    up = int_field(line, 'upload_ms')
    check(ms <= up <= ms + 500, 'upload_ms=%d' % up, 'upload_ms %d..%d' % (ms, ms + 500))
    msg = env.inst.wait_delivered(queue_id=qid)
    _sid, items = parse_trace(trace_fields(msg))
    check(int(items.get('upload_ms', '-1')) >= ms, 'header upload_ms=%s' % items.get('upload_ms'),
          'upload_ms >= %d' % ms)
    want['upload_ms'] = int_at_least(ms)
    want['_desc']['upload_ms'] = '>= %d' % ms
    verdicts_both(env, line, want)


def case_abandoned_after_354(env):
    """Half the message after 354, then the client closes. Sendmail sends the milter ABORT
    at once (not with the client's next step, as Postfix does), then close:
    ended-after-354. Sendmail logs "QID: collect: premature EOM: unexpected close": the
    verdict abandoned-after-354."""
    c = env.client('abandon')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.data()
    data = message('abandon')
    c.send_body(data[:len(data) // 2])
    port = c.local_port
    time.sleep(0.3)          # the client's behaviour: the half upload reaches Sendmail first
    c.close()
    line = txn_line(env, port)
    session_over(env, line)
    qid = qid_of(line)
    wait_maillog(env, r'^%s: collect: premature EOM: unexpected close$' % qid, 'the premature EOM')
    wait_maillog(env, r'^%s: from=<a@example\.test>, size=\d+,' % qid, 'the from= line')
    field(line, 'outcome', 'ended-after-354')
    content_free(line)
    verdicts_both(env, line, {'outcome': 'abandoned-after-354', 'milter_outcome': 'ended-after-354',
                              'resolved': 'yes', 'queue_id': qid,
                              'evidence': contains('collect: premature EOM'),
                              '_desc': {'evidence': '<...collect: premature EOM...>'}})


def case_timeout_after_354(env):
    """Part of the message, then silence until Timeout.datablock (5 s): Sendmail answers
    "421 4.4.1 collect: relay=.., from=<..>, info=read timeout" and logs it as SYSERR. The
    milter sees DATA, ABORT at the timeout, close: timeout-after-354, with Sendmail's 421
    4.4.1 (it knows the MTA by its {v} macro). The verdict takes the reply from Sendmail's
    line: 421 4.4.1."""
    c = env.client('stall')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    c.data()
    data = message('stall')
    c.send_body(data[:len(data) // 2])
    port = c.local_port
    said, elapsed = c.wait_for_close(DATABLOCK + 20)
    check(said.strip().startswith('421 4.4.1 collect: ') and 'info=read timeout' in said,
          'server said %s' % show(said), '421 4.4.1 collect: ... info=read timeout')
    check(DATABLOCK - 0.5 <= elapsed <= DATABLOCK + 3, 'closed after %.1f s' % elapsed,
          'about %d s (Timeout.datablock)' % DATABLOCK)
    line = txn_line(env, port)
    session_over(env, line)
    qid = qid_of(line)
    wait_maillog(env, r'^%s: SYSERR\(root\): collect: relay=\S+, from=<a@example\.test>, '
                 r'info=read timeout$' % qid, 'the read timeout')
    field(line, 'outcome', 'timeout-after-354')
    field(line, 'reply', '421 4.4.1')      # the milter knows Sendmail by its {v} macro
    content_free(line)
    verdicts_both(env, line, {'outcome': 'timeout-after-354', 'milter_outcome': 'timeout-after-354',
                              'resolved': 'yes', 'queue_id': qid, 'code': '421', 'enhanced': '4.4.1',
                              'reply': contains('info=read timeout'),
                              'evidence': contains('info=read timeout'),
                              '_desc': {'reply': '<...info=read timeout...>',
                                        'evidence': '<...info=read timeout...>'}})


def case_rset_then_second_transaction(env):
    """MAIL, RCPT, RSET, then a full transaction. Sendmail sends ABORT at the RSET and a new
    {i} at the next MAIL: two lines with two queue ids. Txn 1 aborted-before-data: Sendmail
    logs only "QID: from=<..>, size=0, .., nrcpts=1" for it, which ends it and decides
    nothing (resolved=no, as on Postfix); txn 2 accepted."""
    c = env.client('rset')
    c.mail('first@example.test')
    c.rcpt('b@example.test')
    c.rset()
    r = truth.send_message(c, message('rset', mail_from='second@example.test'),
                           mail_from='second@example.test')
    port = c.local_port
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid2 = accepted_as(r.text)
    want2 = delivered_ok(env, qid2)
    first, second = txn_line(env, port, count=2)
    session_over(env, first)
    qid1 = qid_of(first)
    check(qid1 != qid2, 'both lines %s' % qid1, 'a new {i} for the second transaction')
    wait_maillog(env, r'^%s: from=<first@example\.test>, size=0, class=\d+, nrcpts=1,' % qid1,
                 'the from= line of the reset transaction')
    eq(int_field(first, 'txn'), 1, 'txn of the first line')
    field(first, 'outcome', 'aborted-before-data')
    eq(int_field(second, 'txn'), 2, 'txn of the second line')
    field(second, 'outcome', 'accepted')
    txn_prefix(second, qid2)
    eq(second.get('session'), first.get('session'), 'session of txn 2')
    verdicts_both(env, first, {'outcome': 'aborted-before-data', 'milter_outcome': 'aborted-before-data',
                               'resolved': 'no', 'queue_id': qid1})
    verdicts_both(env, second, want2)


def case_unknown_user_at_rcpt(env):
    """Three recipients: b@example.test (accepted), nouser@mx.test (550 5.1.1 User unknown:
    a local user that does not exist, decided after check_rcpt, so the milter gets it
    through SMFIP_RCPT_REJ with the 3-digit code in {rcpt_addr}), blocked@example.test (550
    5.2.1 from the access db in check_rcpt: the milter never sees it). rcpt=1
    rcpt_rejected=1; the message accepted."""
    c = env.client('unknown')
    c.mail('a@example.test')
    c.rcpt('b@example.test')
    r1 = c.rcpt('nouser@mx.test', codes=(550,))
    r2 = c.rcpt('blocked@example.test', codes=(550,))
    check('5.1.1' in r1.text and 'User unknown' in r1.text, 'reply %s' % show(r1.text),
          '550 5.1.1 <nouser@mx.test>... User unknown')
    check('5.2.1' in r2.text and ACCESS_TEXT in r2.text, 'reply %s' % show(r2.text),
          '550 5.2.1 <blocked@example.test>... %s' % ACCESS_TEXT)
    c.data()
    c.send_body(message('unknown'))
    r = c.end_data()
    port = c.local_port
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid = accepted_as(r.text)
    want = delivered_ok(env, qid)
    wait_maillog(env, r'^%s: <nouser@mx\.test>\.\.\. User unknown$' % qid, "Sendmail's User unknown")
    wait_maillog(env, r'^%s: ruleset=check_rcpt, arg1=<blocked@example\.test>, .*reject=550 5\.2\.1 '
                 % qid, "Sendmail's check_rcpt reject")
    line = txn_line(env, port)
    field(line, 'outcome', 'accepted')
    txn_prefix(line, qid)
    eq(int_field(line, 'rcpt'), 1, 'rcpt')
    eq(int_field(line, 'rcpt_rejected'), 1, 'rcpt_rejected (the access db refusal is not seen)')
    eq(field(line, 'rejects'), '<nouser@mx.test> 5.1.1 550 5.1.1 User unknown', 'rejects')
    check('blocked@' not in line.raw, 'blocked@ in %s' % show(line.raw, 300),
          'no trace of the access db refusal')
    msg = env.inst.wait_delivered(queue_id=qid)
    _sid, items = parse_trace(trace_fields(msg))
    eq(items.get('rcpt_rejected'), '1', 'header rcpt_rejected')
    check('nouser@mx.test' in items.get('rejects', ''), 'header rejects=%s' % items.get('rejects'),
          'header rejects naming nouser@mx.test')
    verdicts_both(env, line, want)


def case_all_unknown_users(env):
    """Every recipient an unknown local user, then QUIT: the milter saw both refusals
    (SMFIP_RCPT_REJ): no-valid-recipients. Sendmail logs "QID: <R>... User unknown" for
    each and "from=<..>, size=0, .., nrcpts=0": the verdict no-valid-recipients, resolved
    by that log, 550 5.1.1."""
    c = env.client('nouser')
    c.mail('a@example.test')
    c.rcpt('nouser@mx.test', codes=(550,))
    c.rcpt('nouser2@mx.test', codes=(550,))
    port = c.local_port
    c.quit()
    line = txn_line(env, port)
    session_over(env, line)
    qid = qid_of(line)
    wait_maillog(env, r'^%s: from=<a@example\.test>, size=0, class=\d+, nrcpts=0,' % qid, 'the from= line')
    field(line, 'outcome', 'no-valid-recipients')
    eq(int_field(line, 'rcpt'), 0, 'rcpt')
    eq(int_field(line, 'rcpt_rejected'), 2, 'rcpt_rejected')
    verdicts_both(env, line, {'outcome': 'no-valid-recipients', 'milter_outcome': 'no-valid-recipients',
                              'resolved': 'yes', 'queue_id': qid, 'code': '550', 'enhanced': '5.1.1',
                              'evidence': contains('User unknown'),
                              '_desc': {'evidence': '<...User unknown...>'}})


def case_all_refused_by_access_db(env):
    """Every recipient refused by the access db (check_rcpt), DATA (503), QUIT. Sendmail never
    passes check_rcpt refusals to a milter, so smtptrace saw MAIL and nothing more:
    aborted-before-data, rcpt=0 rcpt_rejected=0. Sendmail's log ("ruleset=check_rcpt, ...,
    reject=550 5.2.1 ..." for each, then nrcpts=0) settles it: no-valid-recipients."""
    c = env.client('access')
    c.mail('a@example.test')
    c.rcpt('blocked@example.test', codes=(550,))
    c.rcpt('blocked2@example.test', codes=(550,))
    r = c.command('DATA')
    check(r.code == 503, 'reply to DATA %s' % show(r.text), '503 5.0.0 Need RCPT (recipient)')
    port = c.local_port
    c.quit()
    line = txn_line(env, port)
    session_over(env, line)
    qid = qid_of(line)
    wait_maillog(env, r'^%s: from=<a@example\.test>, size=0, class=\d+, nrcpts=0,' % qid, 'the from= line')
    field(line, 'outcome', 'aborted-before-data')
    eq(int_field(line, 'rcpt'), 0, 'rcpt')
    eq(int_field(line, 'rcpt_rejected'), 0, 'rcpt_rejected (check_rcpt refusals never reach a milter)')
    verdicts_both(env, line, {'outcome': 'no-valid-recipients', 'milter_outcome': 'aborted-before-data',
                              'resolved': 'yes', 'queue_id': qid, 'code': '550', 'enhanced': '5.2.1',
                              'reply': contains(ACCESS_TEXT), 'evidence': contains('ruleset=check_rcpt'),
                              '_desc': {'reply': '<...%s...>' % ACCESS_TEXT,
                                        'evidence': '<...ruleset=check_rcpt...>'}})


def case_two_transactions(env):
    """Two messages on one connection: two lines, txn 1 and 2, each with its own {i}, both
    accepted and delivered; the connection's line counts txns=2."""
    c = env.client('two')
    r1 = truth.send_message(c, message('two1'))
    r2 = truth.send_message(c, message('two2', mail_from='second@example.test'),
                            mail_from='second@example.test')
    port = c.local_port
    c.quit()
    eq((r1.code, r2.code), (250, 250), 'replies to the final dots')
    q1, q2 = accepted_as(r1.text), accepted_as(r2.text)
    check(q1 != q2, 'both %s' % q1, 'two queue ids')
    want1, want2 = delivered_ok(env, q1), delivered_ok(env, q2)
    first, second = txn_line(env, port, count=2)
    txn_prefix(first, q1)
    txn_prefix(second, q2)
    eq((int_field(first, 'txn'), int_field(second, 'txn')), (1, 2), 'txn numbers')
    field(first, 'outcome', 'accepted')
    field(second, 'outcome', 'accepted')
    conn = truth.conn_line(env, first.get('session'))
    eq(int_field(conn, 'txns'), 2, 'txns of the connection')
    verdicts_both(env, first, want1)
    verdicts_both(env, second, want2)


HOSTILE_HELO = 'odd"q\\b=x;y<z>{|}~\x01\x7f%caf\u00e9.test'


def case_hostile_helo(env):
    """A 2,000-byte HELO: Sendmail refuses it itself (501 5.0.0 Invalid domain name: longer
    than its MAXNAME, 256), so the milter never sees it. Then one full of odd characters
    (quotes, backslash, '=' and ';', controls, UTF-8; no space or tab, where Sendmail would
    cut the name): passed with AllowBogusHELO; the log line stays one parsable line, the
    header ASCII with no line over 998, and decodes to the very bytes."""
    c = sc.SMTPClient(HOST, env.inst.smtp_port)
    if env.current is not None:
        env.current[1].append(c.local_port)
        env.current[2].append(c)
    r = c.command('EHLO ' + 'h' * 1990 + '.long.test')
    check(r.code == 501 and 'Invalid domain name' in r.text, 'reply to the long EHLO %s' % show(r.text),
          '501 5.0.0 Invalid domain name')
    r = c.command('EHLO ' + HOSTILE_HELO)
    check(r.code == 250 and 'accepting invalid domain name' in r.text,
          'reply to the odd EHLO %s' % show(r.text, 80), '250 ... accepting invalid domain name')
    res = truth.send_message(c, message('hostile'))
    port = c.local_port
    c.quit()
    eq(res.code, 250, 'reply to the final dot')
    qid = accepted_as(res.text)
    line = txn_line(env, port)
    check(line.parse_error is None, 'malformed log line (%s)' % line.parse_error, 'a parsable line')
    field(line, 'outcome', 'accepted')
    raw_helo = field(line, 'helo')
    eq(raw_helo.encode('latin-1'), HOSTILE_HELO.encode('utf-8'), 'helo in the log, decoded',
       fmt=lambda b: show(repr(b)))
    conn = truth.conn_line(env, line.get('session'))
    eq(int_field(conn, 'helo_count'), 1, 'helo_count (the refused EHLO never reached the milter)')
    msg = env.inst.wait_delivered(queue_id=qid)
    f = trace_fields(msg)
    check_header_lines(f, 998)
    _sid, items = parse_trace(f)
    eq(items.get('helo', '').encode('utf-8', 'surrogateescape'), HOSTILE_HELO.encode('utf-8'),
       'helo in the header, decoded', fmt=lambda b: show(repr(b)))


def case_over_size_limit(env):
    """A message over MaxMessageSize: 552 5.2.3 after the dot; Sendmail sends ABORT at once,
    the milter saw DATA, abort, then the client's QUIT: ended-after-354. Sendmail's
    "message size (N) exceeds maximum (M)" settles it: refused-after-354, 552 5.2.3."""
    c = env.client('size')
    r = truth.send_message(c, message('size', size=SIZE_LIMIT * 2))
    port = c.local_port
    c.quit()
    check(r.code == 552 and '5.2.3' in r.text, 'reply to the final dot %s' % show(r.text),
          '552 5.2.3 Message exceeds maximum fixed size (%d)' % SIZE_LIMIT)
    line = txn_line(env, port)
    session_over(env, line)
    qid = qid_of(line)
    wait_maillog(env, r'^%s: message size \(\d+\) exceeds maximum \(%d\)$' % (qid, SIZE_LIMIT),
                 'the size line')
    field(line, 'outcome', 'ended-after-354')
    content_free(line)
    verdicts_both(env, line, {'outcome': 'refused-after-354', 'milter_outcome': 'ended-after-354',
                              'resolved': 'yes', 'queue_id': qid, 'code': '552', 'enhanced': '5.2.3',
                              'evidence': contains('exceeds maximum'),
                              '_desc': {'evidence': '<...exceeds maximum...>'}})


def case_before_milter_rejects_then_mail(env):
    """The milter listed before smtptrace rejects at end of data (550 5.7.1); the client goes
    on with MAIL. smtptrace saw DATA, ABORT (at the refusal), then the next MAIL:
    refused-after-354. "QID: Milter: data, reject=550 5.7.1 ..." logs the 3-digit code."""
    c = env.client('before')
    r = truth.send_message(c, message('before', headers=[('X-Test-Before', 'reject')]))
    check(r.code == 550 and MILTER_TEXT in r.text, 'reply to the final dot %s' % show(r.text),
          '550 5.7.1 %s' % MILTER_TEXT)
    c.mail('a@example.test')
    c.rset()
    port = c.local_port
    c.quit()
    first = txn_line(env, port, count=2)[0]
    session_over(env, first)
    qid = qid_of(first)
    wait_maillog(env, r'^%s: Milter: data, reject=550 5\.7\.1 %s$' % (qid, MILTER_TEXT), 'the reject')
    field(first, 'outcome', 'refused-after-354')
    content_free(first)
    verdicts_both(env, first, {'outcome': 'refused-after-354', 'milter_outcome': 'refused-after-354',
                               'resolved': 'yes', 'queue_id': qid, 'code': '550', 'enhanced': '5.7.1',
                               'evidence': contains('Milter: data, reject='),
                               '_desc': {'evidence': '<...Milter: data, reject=...>'}})


def case_after_milter_rejects(env):
    """The milter listed after smtptrace rejects at end of data: smtptrace saw the content and
    EOM (accepted, and nothing after); the verdict refused-after-354 550 5.7.1. Sendmail
    still writes a to= line for the refused recipients (no mailer=, stat=the refusal):
    no delivery."""
    c = env.client('after')
    r = truth.send_message(c, message('after', headers=[('X-Test-After', 'reject')]))
    port = c.local_port
    c.quit()
    check(r.code == 550 and MILTER_TEXT in r.text, 'reply to the final dot %s' % show(r.text),
          '550 5.7.1 %s' % MILTER_TEXT)
    line = txn_line(env, port)
    qid = qid_of(line)
    wait_maillog(env, r'^%s: to=<b@example\.test>, delay=[^,]*, pri=\d+, stat=%s$' % (qid, MILTER_TEXT),
                 'the refused recipients')
    field(line, 'outcome', 'accepted')
    full_content(line)
    verdicts_both(env, line, {'outcome': 'refused-after-354', 'milter_outcome': 'accepted',
                              'resolved': 'yes', 'queue_id': qid, 'code': '550', 'enhanced': '5.7.1',
                              'delivery': lambda v: v in (None, ''),
                              'evidence': contains('Milter: data, reject='),
                              '_desc': {'delivery': 'none', 'evidence': '<...Milter: data, reject=...>'}})


def case_after_milter_tempfails(env):
    """The milter after smtptrace tempfails: 451 4.7.1, logged "Milter: data, reject=451 4.7.1
    ..." like a reject; smtptrace saw EOM (accepted); the verdict refused-after-354 451."""
    c = env.client('aftertemp')
    r = truth.send_message(c, message('aftertemp', headers=[('X-Test-After', 'tempfail')]))
    port = c.local_port
    c.quit()
    check(r.code == 451 and '4.7.1' in r.text, 'reply to the final dot %s' % show(r.text),
          '451 4.7.1 Deferred by test milter')
    line = txn_line(env, port)
    qid = qid_of(line)
    wait_maillog(env, r'^%s: Milter: data, reject=451 4\.7\.1 ' % qid, 'the tempfail')
    field(line, 'outcome', 'accepted')
    verdicts_both(env, line, {'outcome': 'refused-after-354', 'milter_outcome': 'accepted',
                              'resolved': 'yes', 'queue_id': qid, 'code': '451', 'enhanced': '4.7.1'})


def case_after_milter_discards(env):
    """The milter after smtptrace discards: the client gets 250 "QID Message accepted for
    delivery", Sendmail logs "Milter: data, discard" and "discarded", and delivers
    nothing. smtptrace saw EOM (accepted); the verdict discarded, 250."""
    c = env.client('afterdisc')
    r = truth.send_message(c, message('afterdisc', headers=[('X-Test-After', 'discard')]))
    port = c.local_port
    c.quit()
    eq(r.code, 250, 'reply to the final dot')
    qid = accepted_as(r.text)
    wait_maillog(env, r'^%s: discarded$' % qid, "Sendmail's discarded line")
    line = txn_line(env, port)
    txn_prefix(line, qid)
    field(line, 'outcome', 'accepted')
    verdicts_both(env, line, {'outcome': 'discarded', 'milter_outcome': 'accepted', 'resolved': 'yes',
                              'queue_id': qid, 'code': '250', 'enhanced': '2.0.0',
                              'evidence': contains('Milter: data, discard'),
                              '_desc': {'evidence': '<...Milter: data, discard...>'}})


def case_lines_well_formed(env):
    """Over the whole run: every milter line has the prefix and parses, the milters and
    Sendmail are up, and no verdict line is left unresolved but the RSET'd and the
    MAIL-then-RSET transactions (Sendmail logs nothing that decides those)."""
    inst = env.inst
    check(inst.milter_running(), 'smtptrace exited with %s' % inst.milter_proc.poll(), 'running')
    check(inst.sendmail_running(), 'sendmail exited', 'running')
    for name, proc in inst.test_milter_procs.items():
        check(proc.poll() is None, 'test milter %s exited with %s' % (name, proc.poll()), 'running')
    for l in inst.milter_lines():
        check(l.ident is not None, 'a line without prefix: %s' % show(l.raw, 120), '"smtptrace[PID]: "')
        check(l.parse_error is None, 'malformed (%s): %s' % (l.parse_error, show(l.raw, 200)),
              'well-formed lines')
    vs = truth.run_verdicts(env, 'maillog+milter')
    loose = [v for v in vs if v.get('resolved') != 'yes' and v.get('outcome') != 'aborted-before-data']
    check(not loose, 'unresolved verdicts %s' % show(str([(v.get('session'), v.get('txn'),
                                                          v.get('outcome')) for v in loose])),
          'only aborted-before-data unresolved')


CASES = [
    case_normal,
    case_forged_header_removed,
    case_paused_upload,
    case_abandoned_after_354,
    case_timeout_after_354,
    case_rset_then_second_transaction,
    case_unknown_user_at_rcpt,
    case_all_unknown_users,
    case_all_refused_by_access_db,
    case_two_transactions,
    case_hostile_helo,
    case_over_size_limit,
    case_before_milter_rejects_then_mail,
    case_after_milter_rejects,
    case_after_milter_tempfails,
    case_after_milter_discards,
    case_lines_well_formed,
]


# ---- --save-logs ----------------------------------------------------------------------------

def _case_lines(env, ports):
    """The Sendmail lines of the queue ids the milter logged for these client ports (and the
    lines of the SMTP server processes that wrote them), then the milter lines of those
    sessions."""
    sessions, qids = set(), set()
    for l in env.inst.milter_lines():
        if l.kind == 'txn' and any(l.get('client', '').endswith(':%d' % p) for p in ports):
            sessions.add(l.get('session'))
            if l.qid and l.qid != 'NOQUEUE':
                qids.add(l.qid)
    ml = env.inst.maillog_lines()
    pids = {l.pid for l in ml if l.qid in qids}
    sendmail = [l.raw for l in ml if l.qid in qids or (l.qid is None and l.pid in pids
                                                         and l.prog == 'sm-mta')]
    milter = [l.raw for l in env.inst.milter_lines() if l.get('session') in sessions]
    return sendmail, milter


def save_logs(env, outdir):
    os.makedirs(outdir, exist_ok=True)
    inst = env.inst
    head = [
        'Captured by tests/e2e/test_sendmail.py --save-logs on %s' % time.strftime('%Y-%m-%d'),
        "Debian 12, Sendmail %s (Debian's package, unpacked, not installed), libmilter 8.17.1,"
        % sendmail_version(inst.root),
        'on the private loopback instance of tests/harness/sendmail.py (sendmail -bD -L sm-mta,',
        'LogLevel 9, host name mx.test, relay to smtp-sink; its log from a private /dev/log).',
        'Settings of this run: Timeout.datablock=%ds, MaxMessageSize=%d, AllowBogusHELO=True;'
        % (DATABLOCK, SIZE_LIMIT),
        'access db: %s;' % ', '.join('%s %s' % kv for kv in sorted(inst.access.items())),
        'INPUT_MAIL_FILTER before, smtptrace, after (tests/milter/test_milter.c), F= empty.',
        'The temp dir path /tmp/smtptrace-sendmail.XXXX is as it was in the run.',
    ]
    first = inst.milter_lines()[:1]
    if first:
        head.append('The milter: %s' % first[0].text)
    for fname, path, what in (('maillog', inst.maillog_path, "Sendmail's log of the whole run"),
                              ('milter.log', inst.milter_log_path,
                               "smtptrace-milter -f's log (stderr) of the same run, same order")):
        with open(os.path.join(outdir, fname), 'wb') as out:
            out.write(('# %s\n' % what).encode())
            for h in head:
                out.write(('# %s\n' % h).encode())
            out.write(truth.read_bytes(path))
    for name, ports, clients, notes in env.captured:
        if not ports:
            continue
        sendmail, milter = _case_lines(env, ports)
        with open(os.path.join(outdir, '%s.log' % name), 'w', errors='surrogateescape') as out:
            out.write('# case %s (tests/e2e/test_sendmail.py)\n' % name)
            for h in head:
                out.write('# %s\n' % h)
            for c in clients:
                out.write('# client 127.0.0.1:%d, the raw client of tests/harness/smtpclient.py:\n'
                          % c.local_port)
                for d, t in c.transcript:
                    out.write('#   %s %s\n' % ('C:' if d == '>' else 'S:', show(t, 200)))
            for n in notes:
                out.write('# note: %s\n' % n)
            out.write('# Sendmail lines of its queue ids, then the milter lines of its session:\n')
            for l in sendmail + milter:
                out.write(l + '\n')


# ---- main -----------------------------------------------------------------------------------

def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description='smtptrace end-to-end tests on Sendmail 8.17')
    ap.add_argument('-k', metavar='SUBSTRING', help='run only the cases whose name contains this')
    ap.add_argument('-v', action='store_true', help='show progress notes and tracebacks')
    ap.add_argument('--save-logs', metavar='DIR', help='write the logs of the run (tests/data/sendmail-8.17)')
    args = ap.parse_args(argv)
    set_verbose(args.v)
    cases = [c for c in CASES if not args.k or args.k in c.__name__]
    t0 = time.monotonic()
    try:
        inst = SendmailInstance(milter=True, **INSTANCE_OPTIONS)
        inst.start()
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        return start_failed('sendmail', e)
    note('Sendmail up in %.2f s (%s)' % (inst.start_seconds, inst.dir))
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
            save_logs(env, args.save_logs)
    finally:
        inst.stop()
    return summary('sendmail', passed, failed, started=t0)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
