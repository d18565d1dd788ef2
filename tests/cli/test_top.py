#!/usr/bin/python3
"""smtptrace-top against a fake smtptrace HTTP server: --once, bad input, the full screen.

    /usr/bin/python3 tests/cli/test_top.py [--once-only] [-k SUBSTRING] [-v] [BINARY]

BINARY defaults to build/smtptrace-top. The fake server (http.server on 127.0.0.1:0,
in this process) serves fixed /metrics, /transactions and /recent documents; a case
swaps in others (HTML, broken JSON, HTTP 500, 100 MB, hostile strings, ...).
The full-screen cases run the program in a pseudo-terminal (pty) and read the screen
with pyte (python3-pyte): the scene, the keys, a resize, q and SIGINT restoring the
terminal (its termios, the cursor, the alternate screen). --once-only skips them (the
ASan run: make top-asan). Under a sanitizer build, any sanitizer report on standard
error fails the case.

Prints "ok   NAME" or "FAIL NAME: got X, want Y" per case, then "top: N passed, M failed".
"""

import fcntl
import http.server
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

from harness.cases import Fail, check, show, run_cases, summary, set_verbose  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(TOP, 'build', 'smtptrace-top')
SANITIZER_ENV = {'ASAN_OPTIONS': 'detect_leaks=1:abort_on_error=0',
                 'UBSAN_OPTIONS': 'halt_on_error=1:print_stacktrace=1'}


# ---- the fake server ----------------------------------------------------------------

def metrics_text(accepted, refused, buckets, version='0.1.0', open_=4, in_data=2, stalled=1):
    """/metrics as smtptrace-milter writes it; buckets: {le: cumulative count}."""
    lines = ['# HELP smtptrace_build_info Version of the running smtptrace-milter.',
             '# TYPE smtptrace_build_info gauge',
             'smtptrace_build_info{version="%s"} 1' % version,
             'smtptrace_connections_open %d' % open_,
             '# TYPE smtptrace_transactions_total counter',
             'smtptrace_transactions_total{outcome="accepted"} %d' % accepted,
             'smtptrace_transactions_total{outcome="refused-after-354"} %d' % refused,
             'smtptrace_transactions_total{outcome="timeout-after-354"} 3',
             'smtptrace_transactions_in_data %d' % in_data,
             'smtptrace_transactions_stalled %d' % stalled,
             'smtptrace_phase_duration_seconds_bucket{phase="helo",le="1"} 99']
    total = 0
    for le in ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10',
               '30', '60', '120', '300', '600', '+Inf']:
        total = buckets.get(le, total)
        lines.append('smtptrace_upload_seconds_bucket{le="%s"} %d' % (le, total))
    lines += ['smtptrace_upload_seconds_sum 12.5', 'smtptrace_upload_seconds_count %d' % total]
    return ('\n'.join(lines) + '\n').encode()


# Two samples: 4 accepted and 2 refused-after-354 in between, 100 uploads all in (0.5, 1].
METRICS_1 = metrics_text(10, 5, {'+Inf': 7, '0.5': 7})
METRICS_2 = metrics_text(14, 7, {'0.5': 7, '1': 107, '+Inf': 107})


def session(sid, phase, secs, client, helo, sender, stalled=False, connected=None, rcpt=1):
    return {'session': sid, 'txn': 1, 'phase': phase, 'seconds_in_phase': secs,
            'seconds_connected': connected if connected is not None else secs + 1.5,
            'client': client, 'helo': helo, 'from': sender, 'rcpt': rcpt, 'rcpt_rejected': 0,
            'queue_id': None, 'tls': None, 'stalled': stalled, 'warnings': 1 if stalled else 0}


SESSIONS = [
    session('00000000000000a1', 'data', 42.5, 'slow.example[192.0.2.10]:40001', 'slow.example',
            'alice@slow.example', stalled=True),
    session('00000000000000a2', 'rcpt', 7.25, 'mx2.example[192.0.2.20]:40002', 'mx2.example',
            'bob@mx2.example'),
    session('00000000000000a3', 'helo', 1.5, 'fresh.example[192.0.2.30]:40003', 'fresh.example',
            None, connected=100.0),
]


def transactions_doc(rows=None, **extra):
    rows = SESSIONS if rows is None else rows
    doc = {'now_ms': 123456, 'version': '0.1.0', 'uptime_s': 3725, 'stall_warn_after_s': 30,
           'open': len(rows), 'in_data': 1, 'stalled': 1, 'transactions': rows,
           'count': len(rows), 'truncated': False}
    doc.update(extra)
    return json.dumps(doc).encode()


ENDINGS = [
    {'session': '00000000000000b1', 'txn': 1, 'queue_id': '4XyZ1abc', 'client': 'ok.example[192.0.2.40]:1',
     'helo': 'ok.example', 'from': 'carol@ok.example', 'outcome': 'accepted', 'reply': None,
     'upload_ms': 420, 'duration_ms': 900, 'ended_ms_ago': 3000, 'end_time': '2026-12-01T22:21:29Z'},
    {'session': '00000000000000b2', 'txn': 2, 'queue_id': None, 'client': 'late.example[192.0.2.50]:2',
     'helo': None, 'from': 'dave@late.example', 'outcome': 'timeout-after-354', 'reply': '421 4.4.2',
     'upload_ms': None, 'duration_ms': 300000, 'ended_ms_ago': 65000, 'end_time': '2026-12-01T22:20:27Z'},
    {'session': '00000000000000b3', 'txn': 1, 'queue_id': '4XyZ2def', 'client': 'big.example[192.0.2.60]:3',
     'helo': 'big.example', 'from': 'erin@big.example', 'outcome': 'refused-after-354', 'reply': None,
     'upload_ms': 1500, 'duration_ms': 2000, 'ended_ms_ago': 125000, 'end_time': '2026-12-01T22:19:27Z'},
]


def recent_doc(rows=None):
    rows = ENDINGS if rows is None else rows
    return json.dumps({'now_ms': 123456, 'size': 1000, 'recent': rows, 'count': len(rows)}).encode()


def scene_routes():
    return {'/metrics': [METRICS_1, METRICS_2], '/transactions': transactions_doc(),
            '/recent': recent_doc()}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split('?', 1)[0]
        self.server.hits.append(self.path)
        route = self.server.routes.get(path)
        if isinstance(route, list):         # served in turn, the last one repeated
            route = route.pop(0) if len(route) > 1 else route[0]
        if route is None:
            route = (404, 'text/plain', b'not found\n')
        if callable(route):
            return route(self)
        if isinstance(route, bytes):
            route = (200, 'application/json' if path != '/metrics' else 'text/plain', route)
        status, ctype, body = route
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        if not self.server.keepalive:
            self.close_connection = True
            self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(body)


class FakeServer:
    """A threaded HTTP server on 127.0.0.1:0 with swappable routes."""

    def __init__(self, routes=None, port=0, keepalive=True):
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.keepalive = keepalive
        self.httpd.routes = routes if routes is not None else scene_routes()
        self.httpd.hits = []
        self.port = self.httpd.server_address[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def stream_huge(length_header):
    """A route that sends 100 MB (with or without Content-Length) until the client hangs up."""
    def route(h):
        total = 100 * 1024 * 1024
        h.send_response(200)
        h.send_header('Content-Type', 'application/json')
        if length_header:
            h.send_header('Content-Length', str(total))
        else:
            h.close_connection = True
            h.send_header('Connection', 'close')
        h.end_headers()
        chunk = b'{"transactions":[' + b' ' * (1024 * 1024 - 17)
        try:
            sent = 0
            while sent < total:
                h.wfile.write(chunk)
                sent += len(chunk)
                chunk = b' ' * (1024 * 1024)
        except OSError:
            pass
    return route


def never_answer(h):
    time.sleep(6)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# ---- running the program -------------------------------------------------------------

def env_for(lang='C.UTF-8', term=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('LC_', 'LANG'))}
    env.update(SANITIZER_ENV)
    env['LANG'] = lang
    for k in ('http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'):
        env.pop(k, None)
    if term:
        env['TERM'] = term
    return env


def no_sanitizer_report(err):
    check('Sanitizer' not in err and 'runtime error' not in err, show(err, 400),
          'no sanitizer report')


def once(url, *extra, lang='C.UTF-8', timeout=30):
    """smtptrace-top --once: (exit status, stdout bytes, stderr text)."""
    r = subprocess.run([BIN, '--once', '-d', '0.2', '-u', url] + list(extra),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env_for(lang))
    err = r.stderr.decode(errors='replace')
    no_sanitizer_report(err)
    return r.returncode, r.stdout, err


def once_ok(url, *extra, lang='C.UTF-8'):
    rc, out, err = once(url, *extra, lang=lang)
    check(rc == 0, 'exit %d: %s' % (rc, show(err)), 'exit 0')
    return out.decode('utf-8')


def once_fails(routes, *words):
    """--once against routes exits 1 with a one-line message holding all the words."""
    with FakeServer(routes) as srv:
        rc, out, err = once(srv.url)
    check(rc == 1, 'exit %d, stdout %s, stderr %s' % (rc, show(out), show(err)), 'exit 1')
    check(out == b'', 'stdout %s' % show(out), 'nothing on stdout')
    check(err.startswith('smtptrace-top: ') and err.count('\n') == 1, show(err),
          'one line "smtptrace-top: ..."')
    for w in words:
        check(w in err, show(err), 'a message with %r' % w)
    return err


def line_with(text, needle):
    for line in text.splitlines():
        if needle in line:
            return line
    raise Fail('got no line with %r in %s, want one' % (needle, show(text, 2000)))


def check_no_control(out):
    """No terminal control: nothing below 0x20 but newline, no DEL, no C1, valid UTF-8."""
    bad = [b for b in out if (b < 0x20 and b != 0x0A) or b == 0x7F]
    check(not bad, 'control bytes %s' % show(bytes(bad[:20])), 'none')
    text = out.decode('utf-8')          # raises on invalid UTF-8
    c1 = [c for c in text if 0x80 <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E]
    check(not c1, 'C1 or bidi characters %s' % show(''.join(c1)), 'none')
    return text


# ---- --once --------------------------------------------------------------------------

def case_once_scene(_):
    with FakeServer() as srv:
        out = once_ok(srv.url)
    text = check_no_control(out.encode())
    slow = line_with(text, 'slow.example[192.0.2.10]')
    check(slow.startswith('! ') and ' data ' in slow and '42.5s' in slow
          and re.search(r' \[#+\]$', slow), show(slow), 'the stalled DATA row marked "!", 42.5s, a full bar')
    mx2 = line_with(text, 'mx2.example[192.0.2.20]')
    check(mx2.startswith('  ') and ' rcpt ' in mx2 and '7.2s' in mx2, show(mx2),
          'an unmarked rcpt row, 7.2s')
    fresh = line_with(text, 'fresh.example[192.0.2.30]')
    check(' helo ' in fresh and '1.5s' in fresh, show(fresh), 'a helo row, 1.5s')
    ys = [text.index(c) for c in ('slow.example[', 'mx2.example[', 'fresh.example[')]
    check(ys == sorted(ys), ys, 'longest in phase first')
    for outcome, who in (('accepted', 'carol@ok.example'), ('timeout-after-354', 'dave@'),
                         ('refused-after-354', 'erin@')):
        line = line_with(text, who)
        check(outcome in line, show(line), 'the ending with %s' % outcome)
    recent = text[text.index('RECENT ENDINGS'):]
    check(recent.index('carol@') < recent.index('dave@') < recent.index('erin@'), show(recent),
          'newest first')
    check('421 4.4.2' in line_with(text, 'dave@'), show(line_with(text, 'dave@')), 'the reply')
    title = text.splitlines()[0]
    check('milter 0.1.0' in title and 'up 01:02:05' in title and srv.url in title, show(title),
          'the version, the uptime 01:02:05 and the URL')
    counts = text.splitlines()[1]
    check('sessions 3, in DATA 1, stalled 1' in counts, show(counts), 'the counts from /transactions')
    check(all(len(l) <= 120 for l in text.splitlines()), 'a line over 120', 'at most 120 columns')


def case_once_rates(_):
    """Rates from two /metrics samples: 4 accepted, 2 refused over the time between them."""
    with FakeServer() as srv:
        text = once_ok(srv.url)
        hits = [h for h in srv.httpd.hits if h.startswith('/metrics')]
    check(len(hits) == 2, show(hits), 'two /metrics samples')
    rates = line_with(text, 'ended per second')
    m = re.search(r'over ([\d.]+)s: ([\d.]+) \(accepted ([\d.]+), refused-after-354 ([\d.]+)\)', rates)
    check(m is not None, show(rates), '"over Ts: total (accepted A, refused-after-354 R)"')
    elapsed, total, acc, ref = (float(x) for x in m.groups())
    check(0.15 <= elapsed <= 3, 'elapsed %s' % elapsed, 'about the 0.2 s interval')
    check(abs(acc * elapsed - 4) < 0.3 and abs(ref * elapsed - 2) < 0.2, rates,
          '4 and 2 over the interval')
    check('timeout-after-354' not in rates, rates, 'no outcome that did not move')
    counts = line_with(text, 'uploads in')
    m = re.search(r' 100 uploads in [\d.]+s: p50 (\d+)ms p95 (\d+)ms', counts)
    check(m is not None, show(counts), '"100 uploads in Ts: p50 Nms p95 Nms"')
    p50, p95 = int(m.group(1)), int(m.group(2))
    # all 100 in (0.5, 1]: histogram_quantile interpolates 0.75 s and 0.975 s
    check(abs(p50 - 750) <= 1 and abs(p95 - 975) <= 1, 'p50 %d p95 %d' % (p50, p95),
          'p50 750ms p95 975ms')


def case_once_ascii_locale(_):
    rows = [session('00000000000000c1', 'mail', 2, 'caf\u00e9.example[192.0.2.9]:1',
                    '\u65e5\u672c.example', 'z@caf\u00e9.example')]
    routes = scene_routes()
    routes['/transactions'] = transactions_doc(rows)
    with FakeServer(routes) as srv:
        rc, out, err = once(srv.url, lang='C')
        utf = once_ok(srv.url)
    check(rc == 0 and all(b < 0x80 for b in out), show(out[:300]), 'ASCII only under LANG=C')
    check('caf?.example[192.0.2.9]:1' in out.decode(), show(out), 'non-ASCII as "?"')
    check('caf\u00e9.example[192.0.2.9]:1' in utf and '\u65e5\u672c.example' in utf,
          show(utf), 'UTF-8 kept under C.UTF-8')


def case_once_no_recent(_):
    """A milter without /recent (404) still gives a snapshot, and says so."""
    routes = scene_routes()
    del routes['/recent']
    with FakeServer(routes) as srv:
        text = once_ok(srv.url)
    check('(this milter serves no /recent)' in text, show(text), 'the pane says so')
    check('slow.example' in text, show(text), 'the sessions still')


def case_once_older_milter(_):
    """Today's /transactions (DATA only, no version, uptime or open count) still reads."""
    old = json.dumps({'now_ms': 5, 'in_data': 1, 'transactions': [
        {'session': '00000000000000d1', 'txn': 1, 'queue_id': None, 'client': 'old.example[192.0.2.7]:5',
         'helo': 'old.example', 'from': 'o@old.example', 'rcpt': 1, 'phase': 'data',
         'seconds_in_phase': 3.25, 'stalled': False, 'warnings': 0}],
        'count': 1, 'truncated': False}).encode()
    routes = {'/metrics': [METRICS_1, METRICS_2], '/transactions': old}
    with FakeServer(routes) as srv:
        text = once_ok(srv.url)
    check('old.example[192.0.2.7]:5' in text and ' data ' in line_with(text, 'old.example['),
          show(text), 'the row')
    check('milter 0.1.0' in text.splitlines()[0], show(text.splitlines()[0]),
          'the version from /metrics')
    check('sessions 4, in DATA 1, stalled 1' in text.splitlines()[1], show(text.splitlines()[1]),
          'counts from /transactions and /metrics')


def case_once_default_url_from_config(_):
    with FakeServer() as srv, tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, 'smtptrace.conf')
        with open(conf, 'w') as f:
            f.write('metrics: { http_listen = "0.0.0.0:%d"; };\n' % srv.port)
        r = subprocess.run([BIN, '--once', '-d', '0.2', '-c', conf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30, env=env_for())
        check(r.returncode == 0 and b'slow.example' in r.stdout, 'exit %d %s' % (
            r.returncode, show(r.stderr)), 'the scene from 127.0.0.1:PORT (0.0.0.0 in the file)')
        check(b'http://127.0.0.1:%d' % srv.port in r.stdout.splitlines()[0],
              show(r.stdout.splitlines()[0]), 'the URL from the file')
        with open(conf, 'w') as f:
            f.write('metrics: { http_listen = ; };\n')
        r = subprocess.run([BIN, '--once', '-d', '0.2', '-c', conf], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30, env=env_for())
        err = r.stderr.decode()
        check(conf + ':1:' in err and 'polling http://127.0.0.1:9754' in err, show(err),
              'the file\'s error, and the default URL')
        r = subprocess.run([BIN, '--once', '-d', '0.2', '-c', os.path.join(d, 'none.conf'),
                            '-u', srv.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30, env=env_for())
        check(r.returncode == 0 and r.stderr == b'', show(r.stderr), 'a missing file is fine')


def case_flags(_):
    for args, word in ((['-d', '0.1'], '-d:'), (['-d', 'abc'], '-d:'), (['-d', '4000'], '-d:'),
                       (['-u', 'ftp://x/'], 'only http'), (['-u', 'http://a b'], 'spaces'),
                       (['extra'], 'unexpected'), (['--bogus'], 'usage')):
        r = subprocess.run([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=10, env=env_for())
        err = r.stderr.decode()
        check(r.returncode == 2 and word in err, '%s: exit %d %s' % (args, r.returncode, show(err)),
              'exit 2 and %r' % word)
    r = subprocess.run([BIN, '--version'], stdout=subprocess.PIPE, timeout=10)
    check(r.returncode == 0 and r.stdout.startswith(b'smtptrace-top '), show(r.stdout),
          'the version')


def case_url_forms(_):
    """-u takes a bare host:port, a trailing slash and smtptrace's own paths."""
    with FakeServer() as srv:
        for u in ('127.0.0.1:%d' % srv.port, srv.url + '/', srv.url + '/metrics',
                  srv.url + '/transactions?phase=data'):
            text = once_ok(u)
            check(text.splitlines()[0].startswith('smtptrace-top  %s  ' % srv.url),
                  show(text.splitlines()[0]), 'the base URL for %s' % u)


def case_no_terminal(_):
    with FakeServer() as srv:
        r = subprocess.run([BIN, '-u', srv.url], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10, env=env_for(term='xterm'))
    check(r.returncode == 1 and b'not a terminal' in r.stderr and b'--once' in r.stderr,
          show(r.stderr), 'exit 1, "not a terminal" and --once suggested')


# ---- bad input -----------------------------------------------------------------------

def case_bad_unreachable(_):
    port = free_port()
    t = time.monotonic()
    rc, out, err = once('http://127.0.0.1:%d' % port)
    check(rc == 1 and 'cannot reach http://127.0.0.1:%d/metrics' % port in err, show(err),
          'exit 1, "cannot reach URL"')
    check(time.monotonic() - t < 5, 'took %.1fs' % (time.monotonic() - t), 'no wait')


def case_bad_html(_):
    html = (200, 'text/html', b'<!DOCTYPE html>\n<html><body>It works!</body></html>\n')
    once_fails({'/metrics': html}, '/metrics does not speak smtptrace', 'HTML')
    once_fails({'/metrics': METRICS_1, '/transactions': html}, '/transactions', 'HTML')


def case_bad_json(_):
    for body, word in ((b'{"transactions": [', 'broken JSON'),
                       (b'{"transactions": []} trailing', 'something after'),
                       (b'', 'empty response'),
                       (b'[1, 2, 3]', 'an array'),
                       (b'{"foo": 1}', 'without "transactions"'),
                       (b'{"transactions": {}}', 'want an array'),
                       (b'{"transactions": [{"session": "x", "phase": 5, "seconds_in_phase": 1}]}',
                        'transactions[0].phase is a number, want a string'),
                       (b'{"transactions": [{"phase": "data", "seconds_in_phase": 1}]}',
                        'no "session"'),
                       (b'{"transactions": [7]}', 'transactions[0] is a number'),
                       (b'[' * 100000, 'broken JSON'),
                       (b'{"transactions": [], "a\x00b": 1}', 'broken JSON')):
        routes = {'/metrics': METRICS_1, '/transactions': body, '/recent': recent_doc()}
        err = once_fails(routes, '/transactions does not speak smtptrace')
        check(word in err, show(err), 'a message with %r' % word)
    once_fails({'/metrics': METRICS_1, '/transactions': transactions_doc(), '/recent': b'{"recent": 1}'},
               '/recent does not speak smtptrace', 'want an array')
    once_fails({'/metrics': b'hello world\n'}, '/metrics', 'no smtptrace_ metric')


def case_bad_http_status(_):
    once_fails({'/metrics': (500, 'text/plain', b'Internal Server Error\n')}, 'HTTP 500',
               'Internal Server Error', '/metrics')
    once_fails({'/metrics': METRICS_1, '/transactions': (503, 'text/plain', b'\x1b[31mbusy\n')},
               'HTTP 503', '/transactions')
    err = once_fails({'/metrics': (302, 'text/html', b'')}, 'HTTP 302', 'redirect')
    check('\x1b' not in err, show(err), 'no escape copied from the body')
    once_fails({}, 'HTTP 404', '/metrics')


def case_bad_huge(_):
    for with_length in (True, False):
        routes = {'/metrics': METRICS_1, '/transactions': stream_huge(with_length)}
        t = time.monotonic()
        once_fails(routes, 'larger than 64 MiB', '/transactions')
        check(time.monotonic() - t < 20, 'took %.1fs' % (time.monotonic() - t), 'a quick stop')


def case_bad_slow(_):
    """A server that accepts and never answers: a timeout, then exit 1."""
    t = time.monotonic()
    once_fails({'/metrics': never_answer}, 'no answer in time')
    check(time.monotonic() - t < 6, 'took %.1fs' % (time.monotonic() - t), 'about 2 s')


HOSTILE = {
    'esc': '\x1b[2J\x1b]0;pwned\x07evil.example[192.0.2.66]:6',
    'long': 'x' * 5000 + '@long.example',
    'nul': 'a\x00b.example',
    'bidi': '\u202egnp.exe\u202c@rtl.example',
    'c1': '\u009b31mred\u0085.example',
    'wide': '\u65e5' * 300,
}


def hostile_routes():
    rows = [session('\x1b[H' + '0' * 14, 'data\x1b[5m', 3.0, HOSTILE['esc'], HOSTILE['long'],
                    HOSTILE['nul'], stalled=True),
            session('00000000000000e2', 'rcpt', 2.0, HOSTILE['bidi'], HOSTILE['c1'], HOSTILE['wide']),
            session('00000000000000e3', 'mail', 1.0, 'raw.example[192.0.2.67]:7', 'RAWHELO',
                    'RAWFROM')]
    doc = transactions_doc(rows, version='0.1.0\x1b[31m\x07')
    # raw invalid UTF-8 and an overlong "/" inside JSON strings: bytes json-c passes through
    doc = doc.replace(b'RAWHELO', b'\xff\xfe\xc0\xafhelo').replace(b'RAWFROM', b'\xed\xa0\x80x@y')
    endings = [dict(ENDINGS[0], outcome='accepted\x1b[2J', reply='250\x08\x08\x08OK',
                    client=HOSTILE['long'], **{'from': '\u202e' + 'y' * 3000})]
    metrics = METRICS_1.replace(b'refused-after-354', b'ev\\"il\\n\x1b[2J')
    metrics2 = METRICS_2.replace(b'refused-after-354', b'ev\\"il\\n\x1b[2J')
    return {'/metrics': [metrics, metrics2], '/transactions': doc, '/recent': recent_doc(endings)}


def case_bad_hostile_strings(_):
    with FakeServer(hostile_routes()) as srv:
        for lang in ('C.UTF-8', 'C'):
            rc, out, err = once(srv.url, lang=lang)
            check(rc == 0, 'exit %d %s' % (rc, show(err)), 'exit 0 (%s)' % lang)
            text = check_no_control(out)
            check('! ?[2J?]0;pwned?evi...[192.0.2.66]' in text, show(text, 3000),
                  'ESC and BEL as "?", the name cut before the address')
            check('x' * 5000 not in text and 'xxx...' in text, show(text, 300), 'a long value cut with "..."')
            check('a?b.example' in text, show(text, 3000), 'NUL as "?"')
            check('????helo' in line_with(text, 'raw.example'), show(line_with(text, 'raw.example')),
                  'invalid UTF-8 and an overlong sequence as "?"')
            check('?gnp.exe?@rtl.example' in text, show(text, 3000), 'bidi overrides as "?"')
            check(all(len(l) <= 120 for l in text.splitlines()),
                  show([l for l in text.splitlines() if len(l) > 120][:1]), 'every line in 120 columns')
            if lang == 'C.UTF-8':
                wide = line_with(text, '\u65e5')
                cols = sum(2 if '\u4e00' <= c <= '\u9fff' else 1 for c in wide)
                check(cols <= 120, '%d columns: %s' % (cols, show(wide)), 'wide characters counted twice')


def case_bad_many_rows(_):
    """25,000 sessions: kept to 20,000, the list marked cut, no crash."""
    rows = [session('%016x' % i, 'rcpt', i / 1000.0, 'c%d.example[192.0.2.1]:%d' % (i, i % 65535),
                    'h', 'f@x') for i in range(25000)]
    routes = scene_routes()
    routes['/transactions'] = transactions_doc(rows)
    with FakeServer(routes) as srv:
        text = once_ok(srv.url)
    check('SESSIONS IN FLIGHT: 20000 (the milter cut its list)' in text, show(text[:600]),
          '20000 rows kept, the list marked cut')


# ---- the full screen -----------------------------------------------------------------

def xterm_emulator(cols, rows):
    """A pyte screen and stream that also know the three xterm sequences ncurses sends for
    TERM=xterm-256color and pyte 0.8 lacks: CSI n S and CSI n T (scroll the region up or
    down) and CSI n b (repeat the last character)."""
    import pyte

    class XtermScreen(pyte.Screen):
        last = ' '

        def draw(self, data):
            if data:
                self.last = data[-1]
            super().draw(data)

        def _scroll(self, count, up):
            top, bottom = self.margins or pyte.screens.Margins(0, self.lines - 1)
            y, x = self.cursor.y, self.cursor.x
            for _ in range(count or 1):
                self.cursor.y = bottom if up else top
                self.index() if up else self.reverse_index()
            self.cursor.y, self.cursor.x = y, x

        def scroll_up(self, count=None, **_):
            self._scroll(count, True)

        def scroll_down(self, count=None, **_):
            self._scroll(count, False)

        def repeat_last(self, count=None, **_):
            self.draw(self.last * (count or 1))

    class XtermStream(pyte.ByteStream):
        csi = dict(pyte.ByteStream.csi, S='scroll_up', T='scroll_down', b='repeat_last')
        events = pyte.ByteStream.events | {'scroll_up', 'scroll_down', 'repeat_last'}

    screen = XtermScreen(cols, rows)
    return screen, XtermStream(screen)


class Screen:
    """smtptrace-top in a pseudo-terminal, its output fed to a pyte screen."""

    def __init__(self, url, rows=24, cols=80, args=(), term='xterm-256color'):
        self.master, self.slave = os.openpty()
        self.set_size(rows, cols, signal_child=False)
        self.tty_before = termios.tcgetattr(self.slave)
        self.screen, self.stream = xterm_emulator(cols, rows)
        self.raw = b''
        env = env_for(term=term)
        self.proc = subprocess.Popen([BIN, '-d', '0.3', '-u', url] + list(args),
                                     stdin=self.slave, stdout=self.slave, stderr=subprocess.PIPE,
                                     env=env, start_new_session=True, preexec_fn=self._ctty)
        self.stderr = b''

    @staticmethod
    def _ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    def set_size(self, rows, cols, signal_child=True):
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
        if signal_child:
            self.screen.resize(rows, cols)
            os.kill(self.proc.pid, signal.SIGWINCH)

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                self.raw += data
                self.stream.feed(data)

    def wait_for(self, pred, seconds=5, what='the screen'):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump(0.1)
            if pred(self.text()):
                return
        raise Fail('got %s, want %s' % (show(self.text(), 3000), what))

    def text(self):
        return '\n'.join(self.screen.display)

    def line(self, needle):
        for y, l in enumerate(self.screen.display):
            if needle in l:
                return y, l
        raise Fail('got no line with %r on %s, want one' % (needle, show(self.text(), 3000)))

    def key(self, data):
        os.write(self.master, data)

    def wait_exit(self, seconds=5, sanitizer_ok=False):
        end = time.monotonic() + seconds
        while self.proc.poll() is None and time.monotonic() < end:
            self.pump(0.05)
        self.pump(0.2)
        check(self.proc.poll() is not None, 'still running', 'the program to exit')
        self.stderr = self.proc.stderr.read()
        if not sanitizer_ok:
            no_sanitizer_report(self.stderr.decode(errors='replace'))
        return self.proc.returncode

    def check_restored(self):
        after = termios.tcgetattr(self.slave)
        check(after == self.tty_before, 'termios %s' % show(after), 'the original %s' % show(self.tty_before))
        enter, leave = self.raw.rfind(b'\x1b[?1049h'), self.raw.rfind(b'\x1b[?1049l')
        check(enter >= 0 and leave > enter, 'enter at %d, leave at %d' % (enter, leave),
              'the alternate screen left')
        hide, show_ = self.raw.rfind(b'\x1b[?25l'), self.raw.rfind(b'\x1b[?25h')
        check(show_ > hide and not self.screen.cursor.hidden, 'cursor hidden', 'the cursor visible')

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()
        os.close(self.master)
        os.close(self.slave)


def with_screen(fn, rows=24, cols=80, routes=None, url=None, args=()):
    srv = FakeServer(routes if routes is not None else scene_routes_repeating()) if url is None else None
    scr = Screen(url or srv.url, rows, cols, args=args)
    try:
        return fn(scr, srv)
    finally:
        scr.close()
        if srv:
            srv.close()


def scene_routes_repeating():
    """The scene, its /metrics alternating between the two samples (so rates show)."""
    routes = scene_routes()
    routes['/metrics'] = [METRICS_1, METRICS_2] * 50
    return routes


def colour_at(scr, y, needle):
    line = scr.screen.display[y]
    x = line.index(needle)
    return scr.screen.buffer[y][x].fg


def case_screen_scene(_):
    def body(scr, srv):
        scr.wait_for(lambda t: '[192.0.2.10]' in t and 'carol@ok.example' in t
                     and 'ended per second over' in t, what='the scene with rates')
        check(all(len(l.rstrip()) <= 80 for l in scr.screen.display), 'a long line', '80 columns')
        y, slow = scr.line('[192.0.2.10]')
        check(slow.startswith('! ') and ' data ' in slow and '[##########]' in slow, show(slow),
              'the stalled DATA row marked "!" with a full bar')
        check(colour_at(scr, y, '[192.0.2.10]') == 'red', colour_at(scr, y, '[192.0.2.10]'),
              'the stalled row in red')
        _, mx2 = scr.line('[192.0.2.20]')
        check(mx2.startswith('  ') and ' rcpt ' in mx2, show(mx2), 'the rcpt row unmarked')
        _, fresh = scr.line('[192.0.2.30]')
        check(' helo ' in fresh, show(fresh), 'the helo row')
        ys = [scr.line(c)[0] for c in ('[192.0.2.10]', '[192.0.2.20]', '[192.0.2.30]')]
        check(ys == sorted(ys), ys, 'longest in phase first')
        for outcome, colour in (('accepted', 'green'), ('timeout-after-354', 'red'),
                                ('refused-after-354', 'brown')):
            y = scr.line({'accepted': 'carol@', 'timeout-after-354': 'dave@',
                          'refused-after-354': 'erin@'}[outcome])[0]
            got = colour_at(scr, y, outcome)
            check(got == colour, '%s in %s' % (outcome, got), '%s in %s' % (outcome, colour))
        check('milter 0.1.0' in scr.screen.display[0], show(scr.screen.display[0]), 'the title')
        check('sessions 3, in DATA 1, stalled 1' in scr.screen.display[1], show(scr.screen.display[1]),
              'the counts')
        check('sort: time in phase' in scr.screen.display[23], show(scr.screen.display[23]),
              'the status line at the bottom')
        scr.key(b'q')
        rc = scr.wait_exit()
        check(rc == 0, 'exit %s' % rc, 'exit 0 on q')
        scr.check_restored()
    with_screen(body)


def case_screen_keys(_):
    def body(scr, srv):
        scr.wait_for(lambda t: '[192.0.2.10]' in t, what='the scene')
        scr.key(b'd')
        scr.wait_for(lambda t: '[DATA only]' in t and '[192.0.2.20]' not in t
                     and '[192.0.2.10]' in t, what='only the DATA session after d')
        scr.key(b'd')
        scr.key(b's')
        scr.wait_for(lambda t: 'sort: time connected' in t, what='sort: time connected after s')
        ys = [scr.line(c)[0] for c in ('[192.0.2.30]', '[192.0.2.10]', '[192.0.2.20]')]
        check(ys == sorted(ys), ys, 'fresh (100 s connected) first')
        scr.key(b's')
        scr.wait_for(lambda t: 'sort: client' in t, what='sort: client')
        ys = [scr.line(c)[0] for c in ('[192.0.2.30]', '[192.0.2.20]', '[192.0.2.10]')]
        check(ys == sorted(ys), ys, 'by client name')
        scr.key(b'/')
        scr.wait_for(lambda t: 'filter (client or sender' in t, what='the filter prompt')
        scr.key(b'BOB@')
        scr.wait_for(lambda t: 'Esc cancels): BOB@' in t, what='the typed filter')
        scr.key(b'\r')
        scr.wait_for(lambda t: '[filter: BOB@]' in t and '[192.0.2.10]' not in t
                     and '[192.0.2.20]' in t, what='only bob@mx2 after the filter')
        scr.key(b'/\x15\r')           # Ctrl-U clears, Enter: no filter
        scr.wait_for(lambda t: '[192.0.2.10]' in t and '[filter' not in t, what='all rows again')
        scr.key(b'?')
        scr.wait_for(lambda t: 'smtptrace-top: keys' in t, what='the help')
        scr.key(b'x')
        scr.wait_for(lambda t: 'smtptrace-top: keys' not in t, what='the help closed by any key')
        scr.key(b'p')
        scr.wait_for(lambda t: '[PAUSED]' in t, what='[PAUSED]')
        n = len(srv.httpd.hits)
        scr.pump(1.0)
        check(len(srv.httpd.hits) == n, '%d requests while paused' % (len(srv.httpd.hits) - n),
              'none')
        scr.key(b'p')
        scr.wait_for(lambda t: '[PAUSED]' not in t, what='resumed')
        scr.pump(0.5)
        check(len(srv.httpd.hits) > n, 'no request after resuming', 'polling again')
        scr.key(b'q')
        check(scr.wait_exit() == 0, 'exit %s' % scr.proc.returncode, 'exit 0')
        scr.check_restored()
    with_screen(body)


def case_screen_resize(_):
    def body(scr, srv):
        scr.wait_for(lambda t: '[192.0.2.10]' in t, what='the scene at 80x24')
        check('CONN' not in scr.text(), 'a CONN column', 'none at 80 columns')
        scr.set_size(40, 132)
        scr.wait_for(lambda t: 'CONN' in t and '[192.0.2.10]' in t
                     and 'sort:' in scr.screen.display[39], what='a redraw at 132x40 with CONN')
        _, head = scr.line('CLIENT')
        check(len(head.rstrip()) > 100, show(head), 'the table as wide as the screen')
        scr.set_size(24, 80)
        scr.wait_for(lambda t: 'CONN' not in t and '[192.0.2.10]' in t
                     and 'sort:' in scr.screen.display[23], what='back to 80x24')
        scr.key(b'q')
        scr.wait_exit()
        scr.check_restored()
    with_screen(body)


def case_screen_tiny(_):
    """Terminals too small for the layout: drawn cut, no crash; then back to 80x24."""
    def body(scr, srv):
        scr.wait_for(lambda t: '[192.0.2.10]' in t, what='the scene')
        for rows, cols in ((6, 30), (2, 10), (1, 1), (24, 80)):
            scr.set_size(rows, cols)
            scr.pump(0.5)
            check(scr.proc.poll() is None, 'exit %s at %dx%d' % (scr.proc.returncode, cols, rows),
                  'still running')
        scr.wait_for(lambda t: '[192.0.2.10]' in t and 'sort:' in scr.screen.display[23],
                     what='the scene at 80x24 again')
        scr.key(b'q')
        check(scr.wait_exit() == 0, 'exit %s' % scr.proc.returncode, 'exit 0')
        scr.check_restored()
    with_screen(body)


def case_screen_sigint(_):
    def body(scr, srv):
        scr.wait_for(lambda t: '[192.0.2.10]' in t, what='the scene')
        os.kill(scr.proc.pid, signal.SIGINT)
        rc = scr.wait_exit()
        check(rc == -signal.SIGINT, 'exit %s' % rc, 'ended by SIGINT')
        scr.check_restored()
    with_screen(body)


def case_screen_sigterm(_):
    def body(scr, srv):
        scr.wait_for(lambda t: '[192.0.2.10]' in t, what='the scene')
        os.kill(scr.proc.pid, signal.SIGTERM)
        rc = scr.wait_exit()
        check(rc == -signal.SIGTERM, 'exit %s' % rc, 'ended by SIGTERM')
        scr.check_restored()
    with_screen(body)


def case_screen_sigint_while_fetching(_):
    """SIGINT while a request hangs: the transfer is abandoned at once."""
    def body(scr, srv):
        scr.pump(1.0)
        t = time.monotonic()
        os.kill(scr.proc.pid, signal.SIGINT)
        rc = scr.wait_exit()
        check(rc == -signal.SIGINT and time.monotonic() - t < 2,
              'exit %s after %.1fs' % (rc, time.monotonic() - t), 'ended by SIGINT within 2 s')
        scr.check_restored()
    with_screen(body, routes={'/metrics': never_answer}, args=('-d', '5'))


def case_screen_crash(_):
    """A crash (SIGSEGV, SIGABRT) still gives the terminal back, then the process dies."""
    for sig in (signal.SIGSEGV, signal.SIGABRT):
        def body(scr, srv):
            scr.wait_for(lambda t: '[192.0.2.10]' in t, what='the scene')
            os.kill(scr.proc.pid, sig)
            rc = scr.wait_exit(sanitizer_ok=True)
            check(rc != 0, 'exit %s' % rc, 'a dead process after signal %d' % sig)
            scr.check_restored()
        with_screen(body)


def case_screen_retry(_):
    """The milter down: the error in the status line, retrying; it comes up: the scene."""
    port = free_port()

    def body(scr, _):
        scr.wait_for(lambda t: 'cannot reach' in scr.screen.display[23]
                     and 'retrying every 0.3s' in scr.screen.display[23],
                     what='"cannot reach ..., retrying" in the status line')
        with FakeServer(scene_routes_repeating(), port=port, keepalive=False):
            scr.wait_for(lambda t: '[192.0.2.10]' in t and 'cannot reach' not in t,
                         what='the scene once the server is up')
        scr.wait_for(lambda t: 'cannot reach' in t and '[192.0.2.10]' in t,
                     what='the error again, the last scene kept')
        scr.key(b'q')
        check(scr.wait_exit() == 0, 'exit %s' % scr.proc.returncode, 'exit 0')
        scr.check_restored()
    with_screen(body, url='http://127.0.0.1:%d' % port)


def case_screen_hostile(_):
    def body(scr, srv):
        scr.wait_for(lambda t: '[192.0.2.66]' in t, what='the hostile scene')
        check(scr.screen.display[0].startswith('smtptrace-top  http'), show(scr.screen.display[0]),
              'the title line intact: nothing cleared or moved the screen')
        _, line = scr.line('[192.0.2.66]')
        check(line.startswith('! ?[2J?...[192.0.2.66] xxx'), show(line), 'escapes shown as "?"')
        _, line = scr.line('[192.0.2.67]')
        check('????helo' in line, show(line), 'invalid UTF-8 as "?"')
        check(all(len(l.rstrip()) <= 80 for l in scr.screen.display), 'a long line', '80 columns')
        scr.key(b'q')
        scr.wait_exit()
        scr.check_restored()
    with_screen(body, routes=hostile_routes())


ONCE_CASES = [case_once_scene, case_once_rates, case_once_ascii_locale, case_once_no_recent,
              case_once_older_milter, case_once_default_url_from_config, case_flags,
              case_url_forms, case_bad_unreachable, case_bad_html, case_bad_json,
              case_bad_http_status, case_bad_huge, case_bad_slow, case_bad_hostile_strings,
              case_bad_many_rows]
SCREEN_CASES = [case_no_terminal, case_screen_scene, case_screen_keys, case_screen_resize,
                case_screen_tiny,
                case_screen_sigint, case_screen_sigterm, case_screen_sigint_while_fetching,
                case_screen_crash, case_screen_retry, case_screen_hostile]


def main():
    global BIN
    args = sys.argv[1:]
    once_only = '--once-only' in args
    set_verbose('-v' in args)
    pick = None
    if '-k' in args:
        pick = args[args.index('-k') + 1]
        args.remove(pick)
    args = [a for a in args if a not in ('--once-only', '-v', '-k')]
    if args:
        BIN = os.path.abspath(args[0])
    if not os.access(BIN, os.X_OK):
        print('FAIL start: got no %s, want the program built (make)' % BIN)
        return summary('top', 0, 1)
    cases = ONCE_CASES + ([] if once_only else SCREEN_CASES)
    if pick:
        cases = [c for c in cases if pick in c.__name__]
    if not once_only:
        try:
            import pyte  # noqa: F401
        except ImportError:
            print('FAIL start: got no pyte, want python3-pyte (make deps)')
            return summary('top', 0, 1)
    passed, failed = run_cases(cases, None, (OSError, subprocess.SubprocessError, ValueError,
                                             UnicodeDecodeError))
    return summary('top' + (' --once-only' if once_only else ''), passed, failed)


if __name__ == '__main__':
    sys.exit(main())
