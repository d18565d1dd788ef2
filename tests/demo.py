#!/usr/bin/env python3
"""smtptrace demo (`make demo`): a private Postfix on 127.0.0.1 with the milter attached,
five SMTP transactions, what smtptrace made of each, and for the one Postfix refused
after the final dot, the verdict `smtptrace-explain --verdicts` gives from Postfix's log.

Runs as root (it starts its own Postfix, smtp-sink and build/smtptrace-milter in a temp
dir, and stops them at the end; nothing else on the machine is touched).
SMTPTRACE_KEEP=1 keeps the temp dir (milter.log, maillog, delivered messages).
"""

import os
import subprocess
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness.instance import Instance, HarnessError, free_port      # noqa: E402
from harness import smtpclient as sc                      # noqa: E402

HOST = '127.0.0.1'
WIDTH = 96
SENDER = 'alice@example.test'
RCPT = 'bob@example.test'
BLOCKED = 'blocked@example.test'      # the demo Postfix rejects this one (access map)
SPAM_SUBJECT = 'FREE MONEY'           # and its header_checks refuse this subject
EXPLAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'build', 'smtptrace-explain')
TOP = os.path.join(os.path.dirname(EXPLAIN), 'smtptrace-top')
HTTP_PORT = None            # the milter's metrics.http_listen port (set in main)
top_snapshot = []           # smtptrace-top --once, taken while the slow upload stalls


def say(text='', indent=0):
    pad = ' ' * indent
    for line in text.split('\n'):
        print(pad + line if line else '')
    sys.stdout.flush()


def heading(text):
    say()
    say(text)
    say('-' * len(text))


def wrapped(text, indent):
    """A long log line, broken between its key=value fields, continuation lines indented."""
    return textwrap.fill(text, width=WIDTH, initial_indent=' ' * indent,
                         subsequent_indent=' ' * (indent + 4), break_long_words=False,
                         break_on_hyphens=False)


def show_dialogue(client):
    """The SMTP dialogue, compact: C: for the client, S: for the server (a multi-line
    reply shows its first line)."""
    more = 0
    for direction, line in client.transcript:
        if direction == '<' and len(line) > 3 and line[3] == '-':
            if more == 0:
                say('S: %s' % line.replace('-', ' ', 1), 6)
            more += 1
            continue
        if direction == '<':
            if more:
                more = 0        # the last line of a multi-line reply (EHLO's extensions)
                continue
            say('S: %s' % line, 6)
        else:
            say('C: %s' % line, 6)


def message(subject, mid):
    return sc.build_message([('From', '<%s>' % SENDER), ('To', '<%s>' % RCPT),
                             ('Subject', subject), ('Message-ID', mid)],
                            body='Hello Bob,\n\nthis message was sent by the smtptrace demo.\n',
                            size=2000)


# ---- the four transactions -------------------------------------------------------------

def send_normal(inst):
    c = sc.SMTPClient(HOST, inst.smtp_port)
    c.ehlo('client.example')
    c.mail(SENDER)
    c.rcpt(RCPT)
    c.data()
    c.send_body(message('A normal message', '<demo-1@client.example>'))
    c.end_data()
    c.quit()
    return c


def send_with_rejected_rcpt(inst):
    c = sc.SMTPClient(HOST, inst.smtp_port)
    c.ehlo('client.example')
    c.mail(SENDER)
    c.rcpt(RCPT)
    c.rcpt(BLOCKED, codes=(550, 554))
    c.data()
    c.send_body(message('One recipient rejected', '<demo-2@client.example>'))
    c.end_data()
    c.quit()
    return c


def send_slow(inst):
    c = sc.SMTPClient(HOST, inst.smtp_port)
    c.ehlo('slow.example')
    c.mail(SENDER)
    c.rcpt(RCPT)
    c.data()
    c.transcript.append(('>', '(waits 3 seconds before sending the message)'))
    t = time.monotonic()
    time.sleep(2.3)             # past stall.warn_after (2 s): a look with smtptrace-top
    r = subprocess.run([TOP, '--once', '-d', '0.3', '-u', 'http://127.0.0.1:%d' % HTTP_PORT],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20,
                       env=dict(os.environ, COLUMNS='96'))
    top_snapshot.append(r.stdout.decode('utf-8', 'replace'))
    time.sleep(max(0.0, 3.0 - (time.monotonic() - t)))
    c.send_body(message('A slow upload', '<demo-3@slow.example>'))
    c.end_data()
    c.quit()
    return c


def send_abandoned(inst):
    c = sc.SMTPClient(HOST, inst.smtp_port)
    c.ehlo('flaky.example')
    c.mail(SENDER)
    c.rcpt(RCPT)
    c.data()
    body = message('Never finished', '<demo-4@flaky.example>')
    c.send_body(body[:len(body) // 2])
    time.sleep(0.5)
    c.transcript.append(('>', '(closes the connection: no final ".")'))
    c.close()
    return c


def send_refused(inst):
    c = sc.SMTPClient(HOST, inst.smtp_port)
    c.ehlo('bulk.example')
    c.mail(SENDER)
    c.rcpt(RCPT)
    c.data()
    c.send_body(message(SPAM_SUBJECT, '<demo-5@bulk.example>'))
    c.end_data()
    c.quit()
    return c


DEMOS = [
    ('1. A normal message',
     'One sender, one recipient, the message sent at once.', send_normal),
    ('2. One recipient rejected by Postfix',
     'Postfix refuses %s (an access map); the message goes to %s only.' % (BLOCKED, RCPT),
     send_with_rejected_rcpt),
    ('3. A slow upload',
     'After "354" the client waits 3 s before sending (here stall.warn_after = 2 s).',
     send_slow),
    ('4. An upload abandoned after 354',
     'The client sends half of the message and hangs up.', send_abandoned),
    ('5. A message Postfix refuses after the final dot',
     'Postfix\'s header_checks refuse the subject "%s" (550 5.7.1) once the whole\n'
     'message is in; the client then says QUIT. The milter never sees that message\'s\n'
     'content, so it cannot tell this from a client that hung up: Postfix\'s log can.'
     % SPAM_SUBJECT, send_refused),
]


def report(inst, title, what, client):
    port = client.local_port
    heading(title)
    say(what, 2)
    say()
    say('What was sent:', 2)
    show_dialogue(client)

    suffix = ':%d' % port
    try:
        txn = inst.wait_milter_line(
            lambda l: l.kind == 'txn' and l.get('client', '').endswith(suffix), timeout=10)
    except HarnessError:
        txn = None
    try:
        conn = inst.wait_milter_line(
            lambda l: l.kind == 'conn' and l.get('client', '').endswith(suffix), timeout=5)
    except HarnessError:
        conn = None

    say()
    say('The X-SMTP-Trace header the delivered message got:', 2)
    qid = txn.qid if txn is not None and txn.qid != 'NOQUEUE' else None
    msg = None
    if qid and txn.get('outcome') == 'accepted':
        try:
            msg = inst.wait_delivered(queue_id=qid, timeout=10)
        except HarnessError:
            msg = None
    if msg is None:
        say('(none: the message was not delivered)', 6)
    else:
        fields = msg.get_all('X-SMTP-Trace')
        if not fields:
            say('(the delivered message has no X-SMTP-Trace header)', 6)
        for f in fields:
            for line in f.lines:
                # a folded line starts with a tab (between items) or a space
                # (inside a long value): show both at one indent
                if line[:1] in (' ', '\t'):
                    line = '    ' + line[1:]
                say(line, 6)

    say()
    say("The milter's log lines:", 2)
    if txn is None and conn is None:
        say('(none found for this connection)', 6)
    session = (txn or conn).get('session') if (txn or conn) is not None else None
    stalls = [l for l in inst.milter_lines()
              if l.kind == 'stall' and session and l.get('session') == session]
    for line in stalls + [txn, conn]:
        if line is not None:
            say(wrapped(line.text, 6))
            say()
    if txn is not None and txn.get('outcome') not in ('accepted', None):
        show_verdict(inst, txn)


def show_verdict(inst, txn):
    """What smtptrace-explain --verdicts makes of this transaction from Postfix's log."""
    with open(inst.maillog_path, 'rb') as a, open(inst.milter_log_path, 'rb') as b:
        text = a.read() + b.read()
    r = subprocess.run([EXPLAIN, '--verdicts'], input=text, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    mine = [l for l in r.stdout.decode('utf-8', 'replace').splitlines()
            if 'session=%s ' % txn.get('session') in l + ' ']
    say('Its verdict, from Postfix\'s log (smtptrace-explain --verdicts maillog milter.log):', 2)
    for line in mine or ['(no verdict: %s)' % r.stderr.decode(errors='replace').strip()]:
        say(wrapped(line, 6))
        say()


def main():
    if os.geteuid() != 0:
        sys.stderr.write('demo: run as root (it starts a private Postfix on 127.0.0.1)\n')
        return 1
    say('smtptrace demo')
    say('==============')
    say('A private Postfix on 127.0.0.1 passes each SMTP session to smtptrace-milter, then')
    say('relays the mail to smtp-sink, which keeps every delivered message in a file.')
    global HTTP_PORT
    HTTP_PORT = free_port()
    inst = Instance(milter=True, smtpd_timeout=30, timeout_tolerance=2,
                    milter_config_extra='stall: { warn_after = 2; repeat_every = 0; };\n'
                                        'metrics: { http_listen = "127.0.0.1:%d"; };' % HTTP_PORT,
                    header_checks=['/^Subject: %s/ REJECT 5.7.1 Looks like spam' % SPAM_SUBJECT])
    try:
        try:
            inst.start()
        except HarnessError as e:
            sys.stderr.write('demo: could not start the test mail system:\n  %s\n'
                             % str(e).replace('\n', '\n  '))
            return 1
        say()
        say('Postfix listens on 127.0.0.1:%d; the milter on %s.' % (inst.smtp_port, inst.milter_socket))
        say('Sending five transactions (this takes about 5 seconds) ...')
        clients = []
        for title, what, send in DEMOS:
            try:
                clients.append((title, what, send(inst)))
            except (OSError, sc.SMTPError) as e:
                sys.stderr.write('demo: %s failed: %s\n' % (title, e))
                return 1
        for title, what, client in clients:
            report(inst, title, what, client)
        heading('smtptrace-top, while the slow upload (3.) was stalled')
        say('smtptrace-top --once -u http://127.0.0.1:%d   (the full screen without --once)'
            % HTTP_PORT, 2)
        say()
        for line in ''.join(top_snapshot).rstrip('\n').split('\n'):
            say(line, 2)
        heading('Where to look')
        say('Each transaction is one "kind=txn" line (outcome, timeline in ms since connect,', 2)
        say('upload_ms = first content event - DATA); each connection one "kind=conn" line.', 2)
        say('The same facts travel with the message in its X-SMTP-Trace header.', 2)
        say('Where the milter cannot know the end (a refusal after the final dot, a milter', 2)
        say('listed after it), smtptrace-explain --verdicts joins its lines with Postfix\'s', 2)
        say('(both log to the mail facility) and gives the reply the client really got.', 2)
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
