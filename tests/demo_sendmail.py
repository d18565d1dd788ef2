#!/usr/bin/env python3
"""smtptrace demo through Sendmail (`make demo-sendmail`): the transactions of tests/demo.py
through a private Sendmail 8.17 on 127.0.0.1 instead of Postfix, what smtptrace made of each,
and for the ones the milter cannot settle, the verdict `smtptrace-explain --verdicts` gives
from Sendmail's own log.

Runs as root: it starts its own Sendmail (Debian's packages unpacked into build/sendmail-root/,
never installed; `make deps-sendmail`), smtp-sink and build/smtptrace-milter in a temp dir,
and stops them at the end (tests/harness/sendmail.py). SMTPTRACE_KEEP=1 keeps the temp dir;
SMTPTRACE_MILTER and SMTPTRACE_EXPLAIN pick other binaries than build/'s.
The senders, the report and the layout are tests/demo.py's.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import demo                                                  # noqa: E402
from demo import say, heading, wrapped, message, SENDER, RCPT, BLOCKED, HOST   # noqa: E402
from harness.instance import HarnessError                    # noqa: E402
from harness.sendmail import SendmailInstance, sendmail_version   # noqa: E402
from harness import smtpclient as sc                         # noqa: E402

UNKNOWN = 'nosuchuser@mx.test'  # a local user that does not exist: 550 5.1.1 User unknown
SIZE_LIMIT = 50000              # MaxMessageSize of the demo Sendmail
EXPLAIN = os.environ.get('SMTPTRACE_EXPLAIN') or demo.EXPLAIN


def send_with_rejected_rcpts(inst):
    c = sc.SMTPClient(HOST, inst.smtp_port)
    c.ehlo('client.example')
    c.mail(SENDER)
    c.rcpt(RCPT)
    c.rcpt(UNKNOWN, codes=(550,))
    c.rcpt(BLOCKED, codes=(550,))
    c.data()
    c.send_body(message('Two recipients rejected', '<demo-2@client.example>'))
    c.end_data()
    c.quit()
    return c


def send_too_big(inst):
    c = sc.SMTPClient(HOST, inst.smtp_port)
    c.ehlo('bulk.example')
    c.mail(SENDER)
    c.rcpt(RCPT)
    c.data()
    c.send_body(sc.build_message([('From', '<%s>' % SENDER), ('To', '<%s>' % RCPT),
                                  ('Subject', 'A very large attachment'),
                                  ('Message-ID', '<demo-5@bulk.example>')],
                                 body='Hello Bob,\n\nthe whole archive is below.\n',
                                 size=SIZE_LIMIT + 10000))
    c.end_data()
    c.quit()
    return c


DEMOS = [
    ('1. A normal message',
     'One sender, one recipient, the message sent at once.', demo.send_normal),
    ('2. Two recipients rejected by Sendmail',
     'Sendmail refuses %s (no such local user) and %s (its access\n'
     'database). The first refusal reaches the milter (SMFIP_RCPT_REJ, with the 3-digit\n'
     'code); the second, made in check_rcpt, never does. The message goes to %s only.'
     % (UNKNOWN, BLOCKED, RCPT), send_with_rejected_rcpts),
    ('3. A slow upload',
     'After "354" the client waits 3 s before sending (here stall.warn_after = 2 s).',
     demo.send_slow),
    ('4. An upload abandoned after 354',
     'The client sends half of the message and hangs up.', demo.send_abandoned),
    ('5. A message Sendmail refuses after the final dot',
     'The message is over Sendmail\'s MaxMessageSize (%d bytes): "552 5.2.3" once the\n'
     'whole message is in; the client then says QUIT. Sendmail tells the milter ABORT\n'
     'before any content, so it cannot tell this from a client that hung up: Sendmail\'s\n'
     'log can.' % SIZE_LIMIT, send_too_big),
]


def show_verdict(inst, txn):
    """What smtptrace-explain --verdicts makes of this transaction from Sendmail's log."""
    with open(inst.maillog_path, 'rb') as a, open(inst.milter_log_path, 'rb') as b:
        text = a.read() + b.read()
    r = subprocess.run([EXPLAIN, '--verdicts'], input=text, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    mine = [l for l in r.stdout.decode('utf-8', 'replace').splitlines()
            if 'session=%s ' % txn.get('session') in l + ' ']
    say("Its verdict, from Sendmail's log (smtptrace-explain --verdicts maillog milter.log):", 2)
    for line in mine or ['(no verdict: %s)' % r.stderr.decode(errors='replace').strip()]:
        say(wrapped(line, 6))
        say()


def main():
    if os.geteuid() != 0:
        sys.stderr.write('demo: run as root (it starts a private Sendmail on 127.0.0.1)\n')
        return 1
    say('smtptrace demo through Sendmail')
    say('===============================')
    say('A private Sendmail on 127.0.0.1 passes each SMTP session to smtptrace-milter')
    say('(INPUT_MAIL_FILTER), then relays the mail to smtp-sink, which keeps every')
    say('delivered message in a file.')
    inst = SendmailInstance(milter=True, datablock_timeout=30, timeout_tolerance=2,
                            max_message_size=SIZE_LIMIT,
                            milter_config_extra='stall: { warn_after = 2; repeat_every = 0; };')
    demo.show_verdict = show_verdict      # report() words the verdict for Sendmail
    try:
        try:
            inst.start()
        except HarnessError as e:
            sys.stderr.write('demo: could not start the test mail system:\n  %s\n'
                             % str(e).replace('\n', '\n  '))
            return 1
        say()
        say('Sendmail %s listens on 127.0.0.1:%d; the milter on %s.'
            % (sendmail_version(inst.root), inst.smtp_port, inst.milter_socket))
        say('Sending five transactions (this takes about 5 seconds) ...')
        clients = []
        for title, what, send in DEMOS:
            try:
                clients.append((title, what, send(inst)))
            except (OSError, sc.SMTPError) as e:
                sys.stderr.write('demo: %s failed: %s\n' % (title, e))
                return 1
        for title, what, client in clients:
            demo.report(inst, title, what, client)
        heading('Where to look')
        say('Each transaction is one "kind=txn" line (outcome, timeline in ms since connect,', 2)
        say('upload_ms = first content event - DATA); each connection one "kind=conn" line.', 2)
        say('The same facts travel with the message in its X-SMTP-Trace header.', 2)
        say('Sendmail gives the milter its queue id at MAIL ({i}), so every line carries it,', 2)
        say('and writes it on nearly every line of its own log: smtptrace-explain --verdicts', 2)
        say('joins the two by queue id and gives the reply the client really got.', 2)
        if inst.keep:
            say('Files kept in %s (milter.log, maillog, sink/).' % inst.dir, 2)
        return 0
    finally:
        inst.stop()


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
