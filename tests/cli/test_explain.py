#!/usr/bin/env python3
"""smtptrace-explain as an operator uses it: arguments, stdin, --log, --json, exit codes.

Runs build/smtptrace-explain; prints one line per case and "explain: N passed, M failed".
"""
import json
import os
import select
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(TOP, 'build', 'smtptrace-explain')


class Fail(Exception):
    pass


def run(args, stdin=''):
    r = subprocess.run([BIN] + args, input=stdin.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return r.returncode, r.stdout.decode('ascii'), r.stderr.decode()


def check(cond, got, want):
    if not cond:
        raise Fail('got %s, want %s' % (got, want))


def case_basic_code():
    rc, out, _ = run(['354'])
    check(rc == 0, 'exit %d' % rc, 'exit 0')
    check(out.startswith('354: positive intermediate\n'), repr(out[:60]), 'the class first')
    check('<CRLF>.<CRLF>' in out, 'no end-of-data advice', 'how to end the message')
    check(all(len(l) <= 80 for l in out.splitlines()), 'a line over 80 columns', 'at most 80')


def case_enhanced_code():
    rc, out, _ = run(['5.7.1'])
    check(rc == 0, 'exit %d' % rc, 'exit 0')
    check(out.startswith('5.7.1: permanent failure'), repr(out[:60]), '5.7.1: permanent failure')
    check('Who acts:' in out and 'What to do:' in out and 'Defined in: RFC 3463' in out,
          repr(out), 'who acts, what to do, the RFC')


def case_full_reply():
    rc, out, _ = run(['550 5.1.1 <a@b.example>: Recipient address rejected: User unknown'])
    check(rc == 0, 'exit %d' % rc, 'exit 0')
    check('550 5.1.1: permanent failure' in out, repr(out[:80]), 'both codes explained')
    check('    5.1.1 Bad destination mailbox' in out, repr(out), 'the 5.1.1 entry')


def case_conflict():
    rc, out, _ = run(['550 4.4.7'])
    check('The classes conflict' in out and 'basic code decides' in out, repr(out[-200:]),
          'the conflict said')


def case_unknown_code():
    rc, out, _ = run(['599 5.9.99 odd'])
    check(rc == 1, 'exit %d' % rc, 'exit 1 (not a known code)')
    check('not a registered code: class 5 (permanent failure)' in out, repr(out), 'explained by class')


def case_no_code():
    rc, out, _ = run(['hello world'])
    check(rc == 1, 'exit %d' % rc, 'exit 1')
    check('no SMTP reply code found' in out, repr(out), 'said so')


def case_usage():
    rc, _, err = run(['--bogus'])
    check(rc == 2, 'exit %d' % rc, 'exit 2')
    rc, out, _ = run(['--help'])
    check(rc == 0 and 'examples:' in out, 'exit %d' % rc, '--help with examples')


def case_stdin_multiline_joined():
    text = ('550-5.1.1 The email account that you tried to reach does not exist.\n'
            '550-5.1.1 Please try double-checking the address.\n'
            '550 5.1.1 https://support.google.com/mail/?p=NoSuchUser\n'
            '421 4.7.0 Try again later\n')
    rc, out, _ = run([], text)
    check(rc == 0, 'exit %d' % rc, 'exit 0')
    check(out.count('550 5.1.1: permanent failure') == 1, repr(out), 'one explanation for 3 lines')
    check(out.count('421 4.7.0: transient failure') == 1, repr(out), 'then the 421')


def case_json():
    rc, out, _ = run(['--json', '550 5.1.1 user unknown', '354', 'no code'])
    lines = out.splitlines()
    check(len(lines) == 3, '%d lines' % len(lines), 'one JSON object per input')
    objs = [json.loads(l) for l in lines]
    o = objs[0]
    for key in ('input', 'code', 'enhanced', 'class', 'meaning'):
        check(key in o, 'keys %s' % sorted(o), key)
    check(o['code'] == 550 and o['enhanced'] == '5.1.1' and o['class'] == 'permanent failure',
          repr(o), 'code 550, enhanced 5.1.1, permanent failure')
    check(objs[1]['code'] == 354 and objs[1]['enhanced'] is None, repr(objs[1]), '354, enhanced null')
    check(objs[2]['code'] is None and objs[2]['class'] is None, repr(objs[2]), 'nulls without a code')
    check(rc == 1, 'exit %d' % rc, 'exit 1 (one input had no code)')


LOG = '''\
Nov 30 10:00:00 mx postfix/smtpd[100]: connect from unknown[192.0.2.1]
Nov 30 10:00:01 mx postfix/smtpd[100]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <x@example.org>: Relay access denied; from=<a@example.net> to=<x@example.org> proto=ESMTP helo=<h>
Nov 30 10:00:02 mx postfix/smtp[101]: 4ABC: to=<y@example.com>, relay=mx.example.com[198.51.100.1]:25, delay=1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 5DEF)
Nov 30 10:05:00 mx postfix/smtpd[102]: timeout after DATA (432 bytes) from unknown[192.0.2.2]
Nov 30 10:05:01 mx postfix/smtpd[102]: disconnect from unknown[192.0.2.2] ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4
'''


def case_log_annotates():
    rc, out, _ = run(['--log'], LOG)
    check(rc == 0, 'exit %d' % rc, 'exit 0')
    lines = out.splitlines()
    src = LOG.splitlines()
    kept = [l for l in lines if not l.startswith('    smtptrace: ')]
    check(kept == src, 'lines changed or lost', 'every input line, unchanged, in order')
    notes = [l for l in lines if l.startswith('    smtptrace: ')]
    check(len(notes) == 2, '%d explanation lines' % len(notes), '2 (the 554 and the timeout)')
    check(lines[lines.index(src[1]) + 1].startswith('    smtptrace: 554 5.7.1: permanent failure'),
          repr(lines[2]), 'the 554 explained right after its line')
    check('timeout after DATA: the client got 354' in notes[1], repr(notes[1]), 'the timeout explained')
    rc, out, _ = run(['--log', '--all'], LOG)
    check(sum(1 for l in out.splitlines() if l.startswith('    smtptrace: ')) == 3,
          repr(out), '--all explains the 250 too')


def case_log_json():
    rc, out, _ = run(['--log', '--json'], LOG)
    objs = [json.loads(l) for l in out.splitlines()]
    check(len(objs) == 2, '%d objects' % len(objs), '2')
    check(objs[1]['event'] == 'timeout after DATA', repr(objs[1]), 'event "timeout after DATA"')


def case_hostile_input():
    rc, out, _ = run(['--json', '550 5.1.1 \x01\x7f"\\ bad'])
    o = json.loads(out)
    check(o['code'] == 550, repr(o), 'still parsed')
    # well-formed UTF-8 passes through as UTF-8 (cut at a character, never inside
    # one); bytes that are not UTF-8 become \u00XX; the object stays whole either way
    r = subprocess.run([BIN, '--json', '-'], input=b'550 5.1.1 ' + b'\xc3\xa9' * 1500 + b'\n',
                       stdout=subprocess.PIPE, timeout=30)
    o = json.loads(r.stdout.decode('utf-8'))
    check(o['enhanced'] == '5.1.1' and len(o['input']) > 1000 and '\u00e9\u00e9' in o['input'],
          repr(o)[:80], 'one valid JSON object, the UTF-8 kept')
    r = subprocess.run([BIN, '--json', '-'], input=b'550 5.1.1 caf\xe9 \xff\n',
                       stdout=subprocess.PIPE, timeout=30)
    check(b'caf\\u00e9 \\u00ff' in r.stdout, repr(r.stdout[:80]),
          'bytes that are not UTF-8 as \\u00XX')
    o = json.loads(r.stdout.decode('ascii'))


def case_long_lines_constant_memory():
    """A 100 kB line passes through byte for byte; a 50 MB one in bounded memory."""
    line = '550 5.1.1 ' + 'x' * 100000
    rc, out, _ = run(['--log'], line + '\n')
    lines = out.split('\n')
    check(rc == 0 and lines[0] == line, 'exit %d, first line %d bytes' % (rc, len(lines[0])),
          'the line unchanged')
    check(lines[1].startswith('    smtptrace: 550 5.1.1'), repr(lines[1][:60]), 'explained by its start')
    with tempfile.TemporaryFile() as f:
        f.write(b'y' * 50000000 + b'\n421 4.4.2 closing\n')
        f.seek(0)
        r = subprocess.run(['/usr/bin/time', '-f', '%M', BIN, '--log'], stdin=f,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    kib = int(r.stderr.decode().split()[-1])
    head = b'y' * 50000000 + b'\n421 4.4.2 closing\n'
    check(r.returncode == 0 and r.stdout.startswith(head) and
          r.stdout[len(head):].startswith(b'    smtptrace: 421 4.4.2'),
          'exit %d, %d bytes out' % (r.returncode, len(r.stdout)),
          'every byte passed through, the next line explained')
    check(kib < 10 * 1024, 'peak %d KiB' % kib, 'under 10 MiB for a 50 MB line')


def case_reply_without_last_line():
    rc, out, _ = run([], '550-5.1.1 first line of a reply cut short\n')
    check('550 5.1.1: permanent failure' in out, repr(out), 'still explained at the end of input')


def case_write_error():
    with open('/dev/full', 'wb') as full:
        for args in (['--log'], [], ['354']):
            r = subprocess.run([BIN] + args, input=b'550 5.1.1 x\n' * 1000, stdout=full,
                               stderr=subprocess.PIPE, timeout=30)
            check(r.returncode == 3 and b'cannot write' in r.stderr,
                  '%s: exit %d' % (args, r.returncode), 'exit 3, "cannot write"')


def case_streams():
    """--log answers each line as it comes (tail -f | smtptrace-explain --log)."""
    p = subprocess.Popen([BIN, '--log'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        p.stdin.write(b'Nov 30 mx postfix/smtpd[1]: timeout after DATA (9 bytes) from x[192.0.2.1]\n')
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], 5)
        check(ready, 'nothing within 5 s', 'the line and its explanation at once')
        got = os.read(p.stdout.fileno(), 65536).decode()
        check('timeout after DATA' in got, repr(got), 'the line echoed')
    finally:
        p.stdin.close()
        p.wait(10)


def case_long_line_json_input_is_its_start():
    """--log --json on a line over 64 KiB: "input" is the line's start (cut with ...),
    the codes found there; it once showed the last piece with the first piece's code."""
    line = '550 5.1.1 <a@example.org>: User unknown ' + 'x' * 100000 + ' TAIL'
    rc, out, _ = run(['--log', '--json'], line + '\n')
    objs = [json.loads(l) for l in out.splitlines()]
    check(rc == 0 and len(objs) == 1, 'exit %d, %d objects' % (rc, len(objs)), 'one object')
    o = objs[0]
    check(o['input'].startswith('550 5.1.1 <a@example.org>') and o['input'].endswith('...')
          and 'TAIL' not in o['input'] and o['code'] == 550,
          repr(o['input'][:40] + ' ... ' + o['input'][-10:]), 'the start of the line, cut')


def case_long_reply_echoed_whole():
    """Standard-input mode echoes a long reply with its codes (it once echoed only the
    text after them)."""
    reply = '550 5.1.1 <%s@example.org>: Recipient address rejected: User unknown' % ('u' * 200)
    rc, out, _ = run(['-'], reply + '\n')
    check(out.splitlines()[0] == reply, repr(out.splitlines()[0][:60]), 'the reply as given')


def case_event_only_exit_status_agrees():
    """An event line without a code is explained by its words: exit 0 in both forms."""
    line = 'Dec  1 10:00:00 mx postfix/smtpd[7]: lost connection after DATA (432 bytes) from x[192.0.2.1]'
    rc_text, _, _ = run([line])
    rc_json, out, _ = run(['--json', line])
    check(rc_text == 0 and rc_json == 0, 'text %d, json %d' % (rc_text, rc_json), 'both 0')
    o = json.loads(out)
    check(o['event'] == 'lost connection after DATA' and o['known'] is True, repr(o)[:100],
          'the event, explained')


def case_postfix_timeout_line_keeps_its_code():
    """Postfix's "timeout after DATA" line implies its own reply, 421 4.4.2 (the outcome
    table leaves the enhanced code to the MTA)."""
    line = 'Dec  1 10:00:00 mx postfix/smtpd[7]: timeout after DATA (432 bytes) from x[192.0.2.1]'
    rc, out, _ = run(['--json', line])
    o = json.loads(out)
    check(rc == 0 and o['enhanced_detail'] is not None and '4.4.2' in o['meaning'] + out,
          repr(o)[:120], '421 4.4.2 explained')
    rc, out, _ = run(['--log'], line + '\n')
    check('421 4.4.2' in out.splitlines()[1] or '4.4.2' in out, repr(out[:200]), 'the annotation names 4.4.2')


CASES = [v for k, v in sorted(globals().items()) if k.startswith('case_')]


def main():
    if not os.path.exists(BIN):
        print('FAIL setup: got no %s, want the built binary' % BIN)
        print('explain: 0 passed, 1 failed')
        return 1
    passed = failed = 0
    for case in CASES:
        name = case.__name__[5:]
        try:
            case()
        except (Fail, json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
            failed += 1
            print('FAIL %s: %s' % (name, e))
        else:
            passed += 1
            print('ok   %s' % name)
    print('explain: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
