#!/usr/bin/env python3
"""Write a synthetic Postfix mail log of N lines (default 1,000,000) to stdout.

The mix follows a busy relay: connect/disconnect, accepted mail through
smtpd, cleanup, qmgr and smtp, recipients rejected by smtpd, deferred and
bounced deliveries with the remote reply, and timeout / lost connection
lines. Deterministic (fixed seed), so runs compare. Addresses and hosts are
documentation ones (example.*, 192.0.2.x, 198.51.100.x).

    postfix_log.py [N] [--smtptrace]

--smtptrace (for make bench-verdicts) writes a mail.log as it is with
smtptrace-milter beside Postfix: every transaction that reaches the queue
has its smtptrace kind=txn line (key=value, one in five in JSON), placed
among that session's Postfix lines (before, between or after them, as
syslog may order two programs), and the mix covers every outcome: queued
and delivered, refused by header/body checks, by a milter after
smtptrace (5.7.1 and 4.7.1), over the size limit, discarded, DATA refused,
abandoned and timed out after 354, every recipient rejected, RSET. The
shapes of the lines are those of tests/data/postfix-3.7. Without it the
output is the plain Postfix log that make bench-explain has always used.
"""
import random
import sys

REJECTS = [
    '554 5.7.1 <{rcpt}>: Relay access denied',
    '550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table',
    '450 4.7.1 <{helo}>: Helo command rejected: Host not found',
    '554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org',
    '450 4.1.8 <{sender}>: Sender address rejected: Domain not found',
]
REMOTE = [
    ('deferred', '421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM command)'),
    ('bounced', '550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown (in reply to RCPT TO command)'),
    ('deferred', '451 4.3.0 Temporary local problem - please try later (in reply to end of DATA command)'),
    ('bounced', '550-5.7.26 This mail has been blocked because the sender is unauthenticated. 550 5.7.26 Gmail requires all senders to authenticate with either SPF or DKIM. (in reply to end of DATA command)'),
]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    rnd = random.Random(5321)
    out = sys.stdout
    written = 0
    qn = 0
    sec = 0
    while written < n:
        sec += 1
        ts = 'Nov %2d %02d:%02d:%02d' % (1 + sec // 86400 % 28, sec // 3600 % 24, sec // 60 % 60, sec % 60)
        pid = 1000 + rnd.randrange(9000)
        ip = '192.0.2.%d' % rnd.randrange(1, 255)
        host = 'unknown[%s]' % ip
        qn += 1
        qid = '%011X' % (0x4A000000000 + qn)
        sender = 'user%d@example.net' % rnd.randrange(5000)
        rcpt = 'rcpt%d@example.org' % rnd.randrange(20000)
        helo = 'client%d.example.net' % rnd.randrange(3000)
        kind = rnd.random()
        lines = ['%s mx postfix/smtpd[%d]: connect from %s' % (ts, pid, host)]
        if kind < 0.55:
            lines += [
                '%s mx postfix/smtpd[%d]: %s: client=%s' % (ts, pid, qid, host),
                '%s mx postfix/cleanup[%d]: %s: message-id=<%d.%s>' % (ts, pid + 1, qid, qn, 'example.net'),
                '%s mx postfix/qmgr[999]: %s: from=<%s>, size=%d, nrcpt=1 (queue active)' % (ts, qid, sender, rnd.randrange(800, 90000)),
            ]
            r = rnd.random()
            relay = 'mx%d.example.com[198.51.100.%d]:25' % (rnd.randrange(9), rnd.randrange(1, 255))
            if r < 0.85:
                lines.append('%s mx postfix/smtp[%d]: %s: to=<%s>, relay=%s, delay=0.4, delays=0.01/0/0.2/0.19, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as %X)' % (ts, pid + 2, qid, rcpt, relay, qn))
                lines.append('%s mx postfix/qmgr[999]: %s: removed' % (ts, qid))
            else:
                status, text = REMOTE[rnd.randrange(len(REMOTE))]
                dsn = text.split()[1] if text[3] == ' ' else text[4:9]
                lines.append('%s mx postfix/smtp[%d]: %s: to=<%s>, relay=%s, delay=2, delays=0.01/0/1/1, dsn=%s, status=%s (host %s said: %s)' % (
                    ts, pid + 2, qid, rcpt, relay, dsn, status, relay.split(':')[0], text.format(rcpt=rcpt, ip=ip)))
        elif kind < 0.85:
            text = REJECTS[rnd.randrange(len(REJECTS))].format(rcpt=rcpt, helo=helo, ip=ip, sender=sender)
            lines.append('%s mx postfix/smtpd[%d]: NOQUEUE: reject: RCPT from %s: %s; from=<%s> to=<%s> proto=ESMTP helo=<%s>' % (ts, pid, host, text, sender, rcpt, helo))
        elif kind < 0.93:
            lines.append('%s mx postfix/smtpd[%d]: timeout after DATA (%d bytes) from %s' % (ts, pid, rnd.randrange(0, 50000), host))
        else:
            stage = ('DATA', 'RCPT', 'CONNECT', 'END-OF-MESSAGE')[rnd.randrange(4)]
            lines.append('%s mx postfix/smtpd[%d]: lost connection after %s from %s' % (ts, pid, stage, host))
        lines.append('%s mx postfix/smtpd[%d]: disconnect from %s ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5' % (ts, pid, host))
        for line in lines:
            if written >= n:
                break
            out.write(line + '\n')
            written += 1


OUTCOMES = [  # (weight, kind): the share of each kind of transaction with --smtptrace
    (50, 'accepted'), (4, 'deferred'), (8, 'header'), (3, 'body'), (6, 'after_milter'),
    (1, 'after_tempfail'), (1, 'size'), (1, 'discard'), (2, 'data_refused'),
    (3, 'abandoned'), (2, 'timeout'), (15, 'no_rcpt'), (4, 'rset'),
]


def milter_line(rnd, qid, session, client, sender, outcome, extra):
    """smtptrace's kind=txn line, as smtptrace-milter -f writes it (1 in 5 in JSON)."""
    if rnd.random() < 0.2:
        fields = ['"queue_id":%s' % ('"%s"' % qid if qid else 'null'), '"kind":"txn"',
                  '"session":"%s"' % session, '"txn":1', '"client":"%s"' % client,
                  '"from":"<%s>"' % sender, '"outcome":"%s"' % outcome]
        fields += ['"%s":%s' % (k, v if isinstance(v, int) else '"%s"' % v) for k, v in extra]
        return 'smtptrace[99]: {%s}' % ','.join(fields)
    kv = ' '.join('%s=%s' % (k, ('"%s"' % v) if isinstance(v, str) and ' ' in v else v)
                  for k, v in extra)
    return ('smtptrace[99]: %s: kind=txn session=%s txn=1 client=%s from=<%s> outcome=%s %s' % (
        qid or 'NOQUEUE', session, client, sender, outcome, kv)).rstrip()


def session_lines(rnd, kind, ts, pid, qid, ip, port, sender, rcpt):
    """(Postfix lines of one session, smtptrace's line) for one kind of transaction."""
    host = 'unknown[%s]:%d' % (ip, port)
    helo = '<client%d.example.net>' % rnd.randrange(3000)
    tail = 'from=<%s> to=<%s> proto=ESMTP helo=%s' % (sender, rcpt, helo)
    pre = '%s mx postfix/' % ts
    smtpd, cleanup = 'smtpd[%d]: ' % pid, 'cleanup[%d]: ' % (pid + 1)
    lines = [pre + smtpd + 'connect from ' + host]
    if kind not in ('no_rcpt',):
        lines.append(pre + smtpd + '%s: client=%s' % (qid, host))
    outcome, extra = 'accepted', [('upload_ms', rnd.randrange(1, 3000))]
    data = rnd.randrange(500, 50000)
    if kind in ('accepted', 'deferred'):
        lines.append(pre + cleanup + '%s: message-id=<%s@example.net>' % (qid, qid))
        lines.append(pre + 'qmgr[999]: %s: from=<%s>, size=%d, nrcpt=1 (queue active)' % (qid, sender, data))
        relay = 'mx%d.example.com[198.51.100.%d]:25' % (rnd.randrange(9), rnd.randrange(1, 255))
        status = 'sent' if kind == 'accepted' else 'deferred'
        dsn = '2.0.0' if kind == 'accepted' else '4.7.0'
        lines.append(pre + 'smtp[%d]: %s: to=<%s>, relay=%s, delay=0.4, delays=0.01/0/0.2/0.19, dsn=%s, status=%s (250 2.0.0 Ok)' % (pid + 2, qid, rcpt, relay, dsn, status))
        if kind == 'accepted':
            lines.append(pre + 'qmgr[999]: %s: removed' % qid)
    elif kind in ('header', 'body'):
        what = 'header Subject: cheap pills' if kind == 'header' else 'body buy now'
        lines.append(pre + cleanup + '%s: reject: %s from %s; %s: 5.7.1 message content rejected' % (qid, what, host, tail))
        outcome, extra = 'ended-after-354', [('in_data_ms', rnd.randrange(1, 9000))]
    elif kind in ('after_milter', 'after_tempfail'):
        code = '5.7.1 Rejected by rspamd' if kind == 'after_milter' else '4.7.1 Try again later'
        lines.append(pre + cleanup + '%s: message-id=<%s@example.net>' % (qid, qid))
        lines.append(pre + cleanup + '%s: milter-reject: END-OF-MESSAGE from unknown[%s]: %s; %s' % (qid, ip, code, tail))
    elif kind == 'size':
        lines.append(pre + smtpd + 'warning: %s: queue file size limit exceeded' % qid)
        lines.append(pre + cleanup + 'warning: %s: queue file size limit exceeded' % qid)
        outcome, extra = 'ended-after-354', [('in_data_ms', rnd.randrange(1, 9000))]
    elif kind == 'discard':
        lines.append(pre + cleanup + '%s: milter-discard: END-OF-MESSAGE from unknown[%s]: milter triggers DISCARD action; %s' % (qid, ip, tail))
    elif kind == 'data_refused':
        lines.append(pre + smtpd + '%s: reject: DATA from %s: 554 5.7.1 <%s>: Sender address rejected: Access denied; %s' % (qid, host, sender, tail))
        outcome, extra, qid = 'aborted-before-data', [], ''
    elif kind in ('abandoned', 'timeout'):
        what = 'lost connection' if kind == 'abandoned' else 'timeout'
        lines.append(pre + smtpd + '%s after DATA (%d bytes) from %s' % (what, data, host))
        outcome = 'ended-after-354' if kind == 'abandoned' else 'timeout-after-354'
        extra = [('in_data_ms', rnd.randrange(1, 300000))]
        if rnd.random() < 0.3:
            extra.append(('stalled', 'yes'))
    elif kind == 'no_rcpt':
        lines.append(pre + smtpd + 'NOQUEUE: reject: RCPT from %s: 550 5.1.1 <%s>: Recipient address rejected: User unknown; %s' % (host, rcpt, tail))
        outcome, qid = 'no-valid-recipients', ''
        extra = [('rcpt', 0), ('rcpt_rejected', 1), ('rejects', '<%s> 5.1.1 Recipient address rejected: User unknown' % rcpt), ('reply', '5xx 5.1.1')]
    elif kind == 'rset':
        outcome, extra, qid = 'aborted-before-data', [], ''
    lines.append(pre + smtpd + 'disconnect from %s ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5' % host)
    session = '%016x' % rnd.getrandbits(64)
    return lines, milter_line(rnd, qid, session, host, sender, outcome, extra)


def main_smtptrace(n):
    rnd = random.Random(5321)
    out = sys.stdout
    kinds = [k for w, k in OUTCOMES for _ in range(w)]
    written, qn, sec = 0, 0, 0
    while written < n:
        sec += 1
        ts = 'Nov %2d %02d:%02d:%02d' % (1 + sec // 86400 % 28, sec // 3600 % 24, sec // 60 % 60, sec % 60)
        qn += 1
        lines, mline = session_lines(
            rnd, kinds[rnd.randrange(len(kinds))], ts, 1000 + rnd.randrange(9000),
            '%011X' % (0x4A000000000 + qn), '192.0.2.%d' % rnd.randrange(1, 255),
            1024 + rnd.randrange(60000), 'user%d@example.net' % rnd.randrange(5000),
            'rcpt%d@example.org' % rnd.randrange(20000))
        lines.insert(rnd.randrange(len(lines) + 1), mline)
        for line in lines:
            if written >= n:
                break
            out.write(line + '\n')
            written += 1


if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if a != '--smtptrace']
    if '--smtptrace' in sys.argv[1:]:
        main_smtptrace(int(args[0]) if args else 1000000)
    else:
        sys.argv[1:] = args
        main()
