#!/usr/bin/env python3
"""Write a synthetic Postfix mail log of N lines (default 1,000,000) to stdout.

The mix follows a busy relay: connect/disconnect, accepted mail through
smtpd, cleanup, qmgr and smtp, recipients rejected by smtpd, deferred and
bounced deliveries with the remote reply, and timeout / lost connection
lines. Deterministic (fixed seed), so runs compare. Addresses and hosts are
documentation ones (example.*, 192.0.2.x, 198.51.100.x).
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


if __name__ == '__main__':
    main()
