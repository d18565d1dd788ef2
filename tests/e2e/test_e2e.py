#!/usr/bin/env python3
"""smtptrace end-to-end tests: real Postfix + smtp-sink + the milter on 127.0.0.1.

    python3 tests/e2e/test_e2e.py [-k SUBSTRING] [-v] [--milter-transport unix|inet]
                                  [--log-format kv|json]   (as root; build the milter first)

One instance is started for all cases (smtpd_timeout = 5s, milter attached with
default_action=accept), each case is a function below, and each prints one line:
"ok   name" or "FAIL name: got X, want Y". The last line is "e2e: N passed, M failed";
the exit status is non-zero when any case failed. SMTPTRACE_KEEP=1 keeps the temp dir
(milter.log, maillog, sink/) for a look afterwards; SMTPTRACE_MILTER=PATH picks the binary.

Each case finds its own log lines without fixed sleeps: by the queue id Postfix logged
(found through a unique Message-ID or the client's source port, which Postfix logs with
smtpd_client_port_logging = yes), by a unique HELO name, or by the client's source port
in the milter's client= field, always with a bounded poll.
"""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

from harness.instance import Instance, HarnessError          # noqa: E402
from harness.parse import parse_trace_header, parse_timeline, ParseError   # noqa: E402
from harness import smtpclient as sc                            # noqa: E402
from harness.cases import (Fail, check, eq, show, note, set_verbose,   # noqa: E402
                           run_cases, start_failed, summary)

HOST = '127.0.0.1'
SMTPD_TIMEOUT = 5
HEADER = 'X-SMTP-Trace'
ALL_PHASES = ['connect', 'helo', 'mail', 'rcpt', 'data', 'header', 'eoh', 'body', 'eom']
LOG_WAIT = 5           # seconds to wait for a milter log line that should come at once


# ---- shared helpers ---------------------------------------------------------------------

_seq = [0]


def unique(tag):
    _seq[0] += 1
    return '%s-%d-%d' % (tag, os.getpid(), _seq[0])


def swaks(inst, helo, mail_from, to, *extra):
    """Run swaks against the instance; returns (returncode, stdout). Note: swaks keeps
    only the last --to option, so several recipients go in one comma-separated --to."""
    cmd = ['swaks', '--server', '%s:%d' % (HOST, inst.smtp_port), '--helo', helo,
           '--from', mail_from, '--to', to, '--timeout', '20'] + list(extra)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode('utf-8', 'replace')
    note('swaks exit %d' % r.returncode)
    return r.returncode, out


def queued_as(text):
    m = re.search(r'250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)', text)
    return m.group(1) if m else None


def wait_line(inst, pred, what, count=1, timeout=LOG_WAIT):
    """Poll the milter log for `count` lines matching pred; a timeout fails the case with
    what was (not) there."""
    try:
        return inst.wait_milter_line(pred, timeout, count)
    except HarnessError:
        n = len([l for l in inst.milter_lines() if pred(l)])
        raise Fail('got %d %s within %d s (milter log: %d lines%s), want %d'
                   % (n, what, timeout, len(inst.milter_lines()),
                      '' if inst.milter_running() else ', milter not running', count)) from None


def txn_line_by_qid(inst, qid, timeout=LOG_WAIT):
    return wait_line(inst, lambda l: l.kind == 'txn' and l.qid == qid,
                     'kind=txn lines for queue id %s' % qid, timeout=timeout)


def txn_lines_by_port(inst, port, count=1, timeout=LOG_WAIT):
    suffix = ':%d' % port
    return wait_line(inst, lambda l: l.kind == 'txn' and l.get('client', '').endswith(suffix),
                     'kind=txn lines for client port %d' % port, count, timeout)


def txn_line_by_helo(inst, helo, timeout=LOG_WAIT):
    return wait_line(inst, lambda l: l.kind == 'txn' and l.get('helo') == helo,
                     'kind=txn lines with helo=%s' % helo, timeout=timeout)


def conn_line(inst, session, timeout=LOG_WAIT):
    return wait_line(inst, lambda l: l.kind == 'conn' and l.get('session') == session,
                     'kind=conn lines for session %s' % session, timeout=timeout)


def conn_line_by_helo(inst, helo, timeout=LOG_WAIT):
    return wait_line(inst, lambda l: l.kind == 'conn' and l.get('helo') == helo,
                     'kind=conn lines with helo=%s' % helo, timeout=timeout)


def session_lines_by_helo(inst, helo):
    """Any milter log line of the session that used this HELO (for diagnostics)."""
    return [l for l in inst.milter_lines() if l.get('helo') == helo]


def field(line, key, want=None):
    """A field of a log line, failing the case when it is absent (or differs from want)."""
    check(key in line.fields, 'no %s= in %s' % (key, show(line.raw, 400)), '%s=' % key)
    if want is not None:
        eq(line[key], want, key)
    return line[key]


def int_field(line, key, want=None):
    v = field(line, key)
    check(re.fullmatch(r'\d+', v) is not None, '%s=%s' % (key, show(v)), '%s=<integer>' % key)
    if want is not None:
        eq(int(v), want, key)
    return int(v)


def check_session_id(line):
    s = field(line, 'session')
    check(re.fullmatch(r'[0-9a-f]{16}', s) is not None, 'session=%s' % s, 'session=<16 hex digits>')
    return s


def trace_fields(msg):
    """The delivered message's X-SMTP-Trace fields (there must be exactly one)."""
    found = msg.get_all(HEADER)
    check(len(found) == 1, '%d %s headers (%s)' % (len(found), HEADER, [f.value[:60] for f in found]),
          'exactly 1')
    return found[0]


def parse_trace(f):
    try:
        return parse_trace_header(f.value)
    except ParseError as e:
        raise Fail('unparsable %s header (%s): %s' % (HEADER, e, show(f.value, 400)))


def check_header_lines(f, limit):
    for line in f.lines:
        check(len(line.encode('utf-8', 'surrogateescape')) <= limit,
              'a %d-column header line %s' % (len(line), show(line, 100)), 'at most %d' % limit)
        check(all(32 <= ord(c) < 127 or c == '\t' for c in line),
              'non-ASCII or control character in header line %s' % show(line, 200), 'ASCII only')


def msg_id(tag):
    return '<%s@e2e.test>' % unique(tag)


def send_raw(inst, helo, rcpts=('b@example.test',), pause=0.0, headers=(), mail_from='a@example.test'):
    mid = msg_id('raw')
    body = sc.build_message([('From', '<%s>' % mail_from), ('To', '<%s>' % rcpts[0]),
                             ('Subject', 'smtptrace e2e'), ('Message-ID', mid)] + list(headers),
                            size=1200)
    res = sc.send_with_pause(HOST, inst.smtp_port, helo, mail_from, list(rcpts), body, pause=pause)
    return res, mid


# ---- cases ------------------------------------------------------------------------------

def case_normal_transaction(inst):
    """swaks, one recipient, a forged incoming X-SMTP-Trace: ours replaces it, lands on top
    (above Postfix's Received:), carries every phase, and the log has the txn + conn lines."""
    mid = msg_id('normal')
    rc, out = swaks(inst, 'client.test', 'a@example.test', 'b@example.test',
                    '--header', 'X-SMTP-Trace: forged', '--header', 'Message-Id: %s' % mid)
    eq(rc, 0, 'swaks exit status')
    qid = inst.queue_id(message_id=mid)
    eq(queued_as(out), qid, 'queue id in the 250 reply')
    msg = inst.wait_delivered(queue_id=qid)

    f = trace_fields(msg)
    # Where it lands: the milter inserts at index 0 and Postfix (3.7) puts that above its
    # own Received: header, so ours is the very first header, Postfix's Received: second.
    names = [n.lower() for n in msg.names()]
    check(names[:2] == [HEADER.lower(), 'received'], 'header order %s' % msg.names()[:4],
          "%s first, then Postfix's Received:" % HEADER)
    rcvd = msg.get_all('Received')[0].value
    check('(Postfix)' in rcvd and ('id %s' % qid) in rcvd, 'second header Received: %s' % show(rcvd),
          "Postfix's Received: ... id %s" % qid)
    check_header_lines(f, 78)
    sid, items = parse_trace(f)
    eq(sid, 'mx.test', 'authserv-id')
    check('forged' not in f.value, 'header %s' % show(f.value), 'the forged copy removed')
    eq(items.get('outcome'), 'accepted', 'header outcome')
    eq(items.get('queue_id'), qid, 'header queue_id')
    eq(items.get('helo'), 'client.test', 'header helo')
    tl = parse_timeline(items.get('timeline', ''))
    missing = [p for p in ALL_PHASES if p not in tl]
    check(not missing, 'header timeline=%s' % items.get('timeline'), 'all of %s' % ','.join(ALL_PHASES))
    eq(tl['connect'], 0, 'timeline connect')
    check(all(tl[a] <= tl[b] for a, b in zip(ALL_PHASES, ALL_PHASES[1:])),
          'timeline=%s' % items.get('timeline'), 'non-decreasing times in SMTP order')

    line = txn_line_by_qid(inst, qid)
    field(line, 'outcome', 'accepted')
    field(line, 'helo', 'client.test')
    int_field(line, 'rcpt', 1)
    int_field(line, 'txn', 1)
    session = check_session_id(line)
    eq(items.get('session'), session, 'header session vs log session')
    check('a@example.test' in field(line, 'from'), 'from=%s' % line.get('from'), 'from=<a@example.test>')
    ltl = line.timeline()
    missing = [p for p in ALL_PHASES if p not in ltl]
    check(not missing, 'log timeline=%s' % line.get('timeline'), 'all of %s' % ','.join(ALL_PHASES))
    check(field(line, 'client').startswith('unknown[127.0.0.1]:'), 'client=%s' % line.get('client'),
          'client=unknown[127.0.0.1]:<port>')
    conn = conn_line(inst, session)
    eq(conn.qid, 'NOQUEUE', 'conn line prefix')
    int_field(conn, 'txns', 1)
    field(conn, 'helo', 'client.test')


def case_rejected_recipient(inst):
    """One recipient rejected by Postfix's access map, one accepted (swaks, comma list)."""
    helo = unique('rcptrej') + '.client.test'
    mid = msg_id('rcptrej')
    rc, out = swaks(inst, helo, 'a@example.test', 'b@example.test,blocked@example.test',
                    '--header', 'Message-Id: %s' % mid)
    check('554 5.7.1 <blocked@example.test>: Recipient address rejected: Access denied' in out,
          'swaks transcript without the 554 for blocked@', 'Postfix to reject blocked@example.test')
    qid = inst.queue_id(message_id=mid)
    line = txn_line_by_qid(inst, qid)
    field(line, 'outcome', 'accepted')
    int_field(line, 'rcpt', 1)
    int_field(line, 'rcpt_rejected', 1)
    rejects = field(line, 'rejects')
    check('blocked@example.test' in rejects and '5.7.1' in rejects, 'rejects=%s' % show(rejects),
          'rejects= naming <blocked@example.test> and 5.7.1')
    check('Access denied' in rejects, 'rejects=%s' % show(rejects), 'the reject text (Access denied)')
    rx = field(line, 'rejects_explain')
    check(rx.startswith('5.7.1: permanent failure; ') and 'not authorized' in rx,
          'rejects_explain=%s' % show(rx), "5.7.1 explained from the knowledge base")
    msg = inst.wait_delivered(queue_id=qid)
    _sid, items = parse_trace(trace_fields(msg))
    eq(items.get('rcpt'), '1', 'header rcpt')
    eq(items.get('rcpt_rejected'), '1', 'header rcpt_rejected')
    check('blocked@example.test' in items.get('rejects', ''), 'header rejects=%s' % items.get('rejects'),
          'header rejects naming blocked@example.test')


def case_no_valid_recipients(inst):
    """Every recipient rejected; swaks then gives up after RCPT and sends QUIT:
    outcome=no-valid-recipients, rcpt=0, rcpt_rejected=2."""
    helo = unique('norcpt') + '.client.test'
    rc, out = swaks(inst, helo, 'a@example.test', 'blocked@example.test,blocked2@example.test')
    check(rc != 0, 'swaks exit status 0', 'swaks to fail (all recipients rejected)')
    line = txn_line_by_helo(inst, helo)
    eq(line.qid, 'NOQUEUE', 'log prefix')
    field(line, 'outcome', 'no-valid-recipients')
    int_field(line, 'rcpt', 0)
    int_field(line, 'rcpt_rejected', 2)


def case_no_valid_recipients_then_data(inst):
    """The only recipient rejected, the client still sends DATA (Postfix: 554 5.5.1 Error:
    no valid recipients), then QUIT: outcome=no-valid-recipients."""
    helo = unique('norcpt-data') + '.client.test'
    with sc.SMTPClient(HOST, inst.smtp_port) as c:
        c.ehlo(helo)
        c.mail('a@example.test')
        c.rcpt('blocked@example.test', codes=(554,))
        r = c.command('DATA')
        check(r.code == 554 and '5.5.1' in r.text, 'DATA reply %s' % r.text, '554 5.5.1 no valid recipients')
        c.quit()
    line = txn_line_by_helo(inst, helo)
    eq(line.qid, 'NOQUEUE', 'log prefix')
    field(line, 'outcome', 'no-valid-recipients')
    int_field(line, 'rcpt', 0)
    int_field(line, 'rcpt_rejected', 1)


def case_quit_without_mail(inst):
    """EHLO then QUIT: no transaction, one kind=conn line (helo_count=1 txns=0)."""
    helo = unique('quit') + '.client.test'
    with sc.SMTPClient(HOST, inst.smtp_port) as c:
        c.ehlo(helo)
        c.quit()
    line = conn_line_by_helo(inst, helo)
    eq(line.qid, 'NOQUEUE', 'log prefix')
    int_field(line, 'helo_count', 1)
    int_field(line, 'txns', 0)
    check(not any(l.kind == 'txn' for l in session_lines_by_helo(inst, helo)),
          'a kind=txn line for a session without MAIL', 'none')


def case_pause_after_354(inst):
    """The client waits 2 s after 354, then uploads: accepted, upload_ms about 2000."""
    res, mid = send_raw(inst, unique('pause') + '.client.test', pause=2.0)
    eq(res.final.code, 250, 'reply to the final dot')
    qid = inst.queue_id(client_port=res.local_port)
    eq(queued_as(res.final.text), qid, 'queue id in the 250 reply')
    line = txn_line_by_qid(inst, qid)
    field(line, 'outcome', 'accepted')
    up = int_field(line, 'upload_ms')
    check(1800 <= up <= 2200, 'upload_ms=%d' % up, 'upload_ms=2000 +- 10%')
    tl = line.timeline()
    check('data' in tl and 'header' in tl and 1800 <= tl['header'] - tl['data'] <= 2200,
          'timeline=%s' % line.get('timeline'), 'header - data about 2000 ms')
    msg = inst.wait_delivered(queue_id=qid)
    _sid, items = parse_trace(trace_fields(msg))
    eq(items.get('outcome'), 'accepted', 'header outcome')
    hup = int(items.get('upload_ms', '-1'))
    check(1800 <= hup <= 2200, 'header upload_ms=%s' % items.get('upload_ms'), 'upload_ms=2000 +- 10%')


def case_header_folding_slow_upload(inst):
    """The contract's 78-column folding must also hold when the times have four digits
    (an upload of over a second), not only for a fast local message."""
    res, mid = send_raw(inst, unique('fold') + '.client.test', pause=1.1)
    eq(res.final.code, 250, 'reply to the final dot')
    msg = inst.wait_delivered(queue_id=queued_as(res.final.text))
    f = trace_fields(msg)
    parse_trace(f)
    check_header_lines(f, 78)


def case_ended_after_354(inst):
    """Half the message after 354, then the client closes the socket. The milter cannot
    tell that from a message refused after its dot and a QUIT: ended-after-354 (only
    Postfix's "lost connection after DATA" says the client left)."""
    mid = msg_id('abandon')
    body = sc.build_message([('From', '<a@example.test>'), ('Subject', 'abandon'), ('Message-ID', mid)],
                            size=1200)
    res = sc.abandon_after_354(HOST, inst.smtp_port, unique('abandon') + '.client.test',
                               'a@example.test', ['b@example.test'], body, part=0.5, delay=0.3)
    inst.wait_maillog(r'lost connection after DATA \(\d+ bytes\) from \S+:%d$' % res.local_port)
    line = txn_lines_by_port(inst, res.local_port)
    field(line, 'outcome', 'ended-after-354')
    check('reply' not in line.fields, 'reply=%s' % line.get('reply'), 'no implied reply')
    pf_qid = inst.queue_id(client_port=res.local_port, timeout=2)
    check(line.qid in ('NOQUEUE', pf_qid), 'prefix %s' % line.qid, 'NOQUEUE or %s' % pf_qid)
    tl = line.timeline()
    check('data' in tl and 'header' not in tl and 'eom' not in tl, 'timeline=%s' % line.get('timeline'),
          'data and no content phases')


def case_stall_after_354(inst):
    """Part of the message, then silence: Postfix says 421 4.4.2 after smtpd_timeout."""
    body = sc.build_message([('From', '<a@example.test>'), ('Subject', 'stall')], size=1200)
    res = sc.stall_after_354(HOST, inst.smtp_port, unique('stall') + '.client.test',
                             'a@example.test', ['b@example.test'], body, part=0.5,
                             timeout=SMTPD_TIMEOUT + 20)
    said = (res.server_said or '').strip()
    check(said.startswith('421 4.4.2'), 'server said %r' % said, '421 4.4.2 ... timeout exceeded')
    check(SMTPD_TIMEOUT - 0.5 <= res.elapsed <= SMTPD_TIMEOUT + 3, 'closed after %.1f s' % res.elapsed,
          'about %d s (smtpd_timeout)' % SMTPD_TIMEOUT)
    line = txn_lines_by_port(inst, res.local_port)
    field(line, 'outcome', 'timeout-after-354')
    field(line, 'reply', '421 4.4.2')
    rx = field(line, 'reply_explain')
    check(rx.startswith('421 4.4.2: transient failure; '), 'reply_explain=%s' % show(rx),
          '421 4.4.2 explained from the knowledge base')
    pf_qid = inst.queue_id(client_port=res.local_port, timeout=2)
    check(line.qid in ('NOQUEUE', pf_qid), 'prefix %s' % line.qid, 'NOQUEUE or %s' % pf_qid)


def case_rset_then_second_transaction(inst):
    """MAIL, RCPT, RSET, then a full transaction on the same connection."""
    helo = unique('rset') + '.client.test'
    mid = msg_id('rset')
    body = sc.build_message([('From', '<a@example.test>'), ('Subject', 'after rset'), ('Message-ID', mid)])
    with sc.SMTPClient(HOST, inst.smtp_port) as c:
        port = c.local_port
        c.ehlo(helo)
        c.mail('first@example.test')
        c.rcpt('b@example.test')
        c.rset()
        c.mail('second@example.test')
        c.rcpt('b@example.test')
        c.data()
        c.send_body(body)
        r = c.end_data()
        eq(r.code, 250, 'reply to the final dot')
        c.quit()
    first, second = txn_lines_by_port(inst, port, count=2)
    int_field(first, 'txn', 1)
    field(first, 'outcome', 'aborted-before-data')
    int_field(second, 'txn', 2)
    field(second, 'outcome', 'accepted')
    eq(second.get('session'), check_session_id(first), 'session of the 2nd txn')
    eq(second.qid, queued_as(r.text), 'prefix of the 2nd txn line')
    check('second@example.test' in second.get('from', ''), 'from=%s' % second.get('from'),
          'from=<second@example.test>')
    conn = conn_line(inst, first['session'])
    int_field(conn, 'txns', 2)


HOSTILE_HELOS = [
    ('2000 bytes', 'h' * 1990 + '.long.test'),
    # Postfix lets all of these through (it shows them as "?" in its own Received:):
    # quotes, backslash, '=' and ';' (our separators), a space, a tab, C0 and DEL controls,
    # and valid UTF-8.
    ('odd characters', 'odd"q\\b=x;y <z>\t{|}~\x01\x7f%caf\u00e9.test'),
]


def case_hostile_helo(inst):
    """HELO of 2,000 bytes and one full of odd characters: the log line stays one parsable
    line, and the delivered header is ASCII with no line over 998."""
    for label, helo in HOSTILE_HELOS:
        res, mid = send_raw(inst, helo)
        check(res.final is not None and res.final.code == 250,
              '%s: reply %s' % (label, res.final), '250 for the message')
        qid = queued_as(res.final.text)
        line = txn_line_by_qid(inst, qid)
        check(line.parse_error is None, '%s: malformed log line (%s)' % (label, line.parse_error),
              'a parsable line')
        field(line, 'outcome', 'accepted')
        check('helo' in line.fields, '%s: no helo= in the txn line' % label, 'helo=')
        raw_helo = line['helo']
        check(raw_helo and (helo.startswith(raw_helo[:20]) or raw_helo.startswith(helo[:3])),
              '%s: helo=%s' % (label, show(raw_helo)), 'helo= derived from %s' % show(helo, 40))
        msg = inst.wait_delivered(queue_id=qid)
        f = trace_fields(msg)
        check_header_lines(f, 998)
        _, items = parse_trace(f)
        # a standard RFC 5322 reading plus percent-decoding gives back the very bytes
        # the log line holds (the header caps values at 200 bytes, the log at 512)
        if inst.log_format == 'kv' and len(raw_helo) <= 200:
            eq(items.get('helo', '').encode('utf-8', 'surrogateescape'),
               raw_helo.encode('latin-1'), '%s: helo in the header, decoded' % label,
               fmt=lambda b: show(repr(b)))
    # Every line the milter wrote is one line: it starts with the ident prefix and,
    # when it is a kind= line, parses.
    for l in inst.milter_lines():
        check(l.ident is not None, 'a milter log line without the "ident[pid]: " prefix: %s'
              % show(l.raw, 120), 'one log record per line')
        check(l.parse_error is None, 'malformed log line (%s): %s' % (l.parse_error, show(l.raw, 200)),
              'well-formed key=value lines')


def case_reload_under_load(inst):
    """SIGUSR1 while messages flow: none is lost or refused, each carries exactly one trace
    header, those sent after the reload the new name; a broken file then changes nothing."""
    import threading
    new_name = 'X-SMTP-Trace-Reloaded'
    with open(inst.milter_config) as fh:
        original = fh.read()
    sent, lock, stop = [], threading.Lock(), threading.Event()

    def sender():      # paced: about 20 messages a second, at most 120
        while not stop.is_set() and len(sent) < 120:
            begun = time.monotonic()
            res, mid = send_raw(inst, unique('reload') + '.client.test')
            with lock:
                sent.append((mid, begun, res.final.code if res.final else None))
            time.sleep(0.05)

    t = threading.Thread(target=sender)
    t.start()
    try:
        deadline = time.monotonic() + 20
        while len(sent) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(inst.milter_config, 'w') as fh:
            fh.write(original.replace('name = "X-SMTP-Trace"', 'name = "%s"' % new_name))
        before = len([l for l in inst.milter_lines() if 'reloaded ' in l.raw])
        inst.milter_proc.send_signal(signal.SIGUSR1)
        wait_line(inst, lambda l: 'reloaded ' in l.raw, 'reloaded lines', count=before + 1)
        reloaded_at = time.monotonic()
        while len([1 for _, at, _ in sent if at > reloaded_at]) < 10 and \
                time.monotonic() < deadline + 20:
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(60)
        with open(inst.milter_config, 'w') as fh:
            fh.write(original)
        inst.milter_proc.send_signal(signal.SIGUSR1)
    wait_line(inst, lambda l: 'reloaded ' in l.raw, 'reloaded lines', count=before + 2)
    eq([c for _, _, c in sent if c != 250], [], 'replies other than 250')
    late = 0
    for mid, at, _ in sent:
        msg = inst.wait_delivered(pred=lambda m, mid=mid: (m.get('Message-ID') or '').strip() == mid)
        ours = msg.get_all(HEADER) + msg.get_all(new_name)
        check(len(ours) == 1, '%d trace headers in %s' % (len(ours), mid), 'exactly one')
        if at > reloaded_at:      # begun after the reload was logged: the new name
            late += 1
            eq(ours[0].name, new_name, 'header of a message sent after the reload')
    check(late >= 10, '%d messages after the reload' % late, 'at least 10')
    note('%d messages, %d after the reload, none lost' % (len(sent), late))
    # a broken file that would also rename the header: every error logged, and the
    # running configuration stays (the next message still gets the original name)
    with open(inst.milter_config, 'w') as fh:
        fh.write(original.replace('name = "X-SMTP-Trace"', 'name = "%s"' % new_name)
                 + 'bogus = 1;\n')
    try:
        inst.milter_proc.send_signal(signal.SIGUSR1)
        wait_line(inst, lambda l: 'the running configuration stays' in l.raw, 'kept lines')
        check(any(("unknown key 'bogus'" in l.raw) for l in inst.milter_lines()),
              'no file:line: message line', "file:line: unknown key 'bogus'")
        res, mid = send_raw(inst, unique('after-broken') + '.client.test')
        eq(res.final.code if res.final else None, 250, 'reply after a broken reload')
        msg = inst.wait_delivered(pred=lambda m: (m.get('Message-ID') or '').strip() == mid)
        eq([f.name for f in msg.get_all(HEADER) + msg.get_all(new_name)], [HEADER],
           'the header after a broken reload')
    finally:
        with open(inst.milter_config, 'w') as fh:
            fh.write(original)


def case_log_lines_well_formed(inst):
    """Over the whole run: every milter log line has the prefix, every kind= line parses,
    and the milter is still running."""
    check(inst.milter_running(), 'milter exited with %s' % inst.milter_proc.poll(), 'milter running')
    lines = inst.milter_lines()
    check(any(l.kind == 'txn' for l in lines), 'no kind=txn lines', 'txn lines')
    for l in lines:
        check(l.ident is not None, 'line without prefix: %s' % show(l.raw, 120), '"smtptrace[PID]: " prefix')
        check(l.parse_error is None, 'malformed (%s): %s' % (l.parse_error, show(l.raw, 200)),
              'well-formed lines')


def case_sigterm_stops_cleanly(inst):
    """Last: SIGTERM stops the milter (libmilter's signal thread), exit 0, socket removed."""
    proc = inst.milter_proc
    check(proc is not None and proc.poll() is None, 'milter not running', 'a running milter')
    sock = inst.milter_socket if inst.milter_transport == 'unix' else None
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(15)
    except subprocess.TimeoutExpired:
        raise Fail('still running 15 s after SIGTERM, want it stopped') from None
    eq(rc, 0, 'exit status after SIGTERM')
    if sock is not None:
        check(not os.path.exists(sock), 'socket %s still there' % sock, 'the socket removed')
    check(any('stopped' in l.raw for l in inst.milter_lines()), 'no "stopped" line', 'a "stopped" log line')


CASES = [
    case_normal_transaction,
    case_rejected_recipient,
    case_no_valid_recipients,
    case_no_valid_recipients_then_data,
    case_quit_without_mail,
    case_pause_after_354,
    case_header_folding_slow_upload,
    case_ended_after_354,
    case_stall_after_354,
    case_rset_then_second_transaction,
    case_hostile_helo,
    case_reload_under_load,
    case_log_lines_well_formed,
    case_sigterm_stops_cleanly,    # must stay last
]


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description='smtptrace end-to-end tests')
    ap.add_argument('-k', metavar='SUBSTRING', help='run only the cases whose name contains this')
    ap.add_argument('-v', action='store_true', help='show progress notes and tracebacks')
    ap.add_argument('--milter-transport', choices=('unix', 'inet'), default='unix',
                    help='how Postfix reaches the milter (default: a unix socket)')
    ap.add_argument('--log-format', choices=('kv', 'json'), default='kv',
                    help="the milter's log.format (default kv)")
    args = ap.parse_args(argv)
    set_verbose(args.v)
    cases = [c for c in CASES if not args.k or args.k in c.__name__]
    t0 = time.monotonic()
    try:
        inst = Instance(milter=True, smtpd_timeout=SMTPD_TIMEOUT, timeout_tolerance=1,
                        milter_transport=args.milter_transport, log_format=args.log_format)
        inst.start()
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        return start_failed('e2e', e)
    try:
        passed, failed = run_cases(cases, inst, (HarnessError, sc.SMTPError, OSError,
                                                 subprocess.SubprocessError, ParseError,
                                                 KeyError, ValueError))
    finally:
        inst.stop()
    if inst.milter_returncode not in (0, None, -15):
        print('note: the milter exited with status %s at SIGTERM' % inst.milter_returncode)
    return summary('e2e', passed, failed, started=t0)

if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
