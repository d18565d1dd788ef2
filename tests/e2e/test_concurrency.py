#!/usr/bin/python3
"""smtptrace end-to-end concurrency test: 500 simultaneous connections held in DATA
against the real Postfix; every one reported, none lost, none reported twice, memory
bounded.

    /usr/bin/python3 tests/e2e/test_concurrency.py [-n 500] [-v]   (as root; make first)

One instance: Postfix with its limits raised (default_process_limit = 600 -- the smtpd
service's maxproc in the harness's master.cf is "-", so it follows; no anvil limits;
smtpd_timeout = 120 s), the milter with stall { warn_after = 5; repeat_every = 0; } and
its HTTP listener on a free port. N clients (asyncio, one event loop) are each driven to
354, send a few bytes of the message, and are held. Then:

  setup_sessions       every client got its 354 (time to set up all N printed)
  stall_lines          within warn_after + 1 s of the LAST 354: exactly N kind=stall lines
                       with warning=1, one per session/client port, none early
                       (in_data_ms >= 5000); worst lateness printed (wall clock: line seen
                       vs 354 + 5 s; milter's view: in_data_ms - 5000)
  transactions_listed  /transactions: N rows, the same sessions, stalled, phase data
  gauges_in_data       smtptrace_transactions_in_data == N, _stalled == N
  memory_bounded       the milter's VmRSS / VmHWM under MEMORY_BOUND_MIB (printed)
  close_all_reported   all clients close: N txn lines, ended-after-354, stalled=yes,
                       stall_warnings=1, each session exactly once
  gauges_back          in_data and stalled back to 0, /transactions empty, stalls_total ==
                       N, transactions_total{ended-after-354} == N, nothing degraded
  postfix_held_all     one smtpd process per held session was running, Postfix logged no
                       "process limit" (or other) warning, and N "lost connection after DATA"

Postfix fact (3.7, master_ent.c): a service whose addresses are all loopback is flagged
local-only, so master neither enters stress mode nor logs "has reached its process limit"
for it; clients over the limit just wait unanswered in the listen queue. The test therefore
counts the instance's smtpd processes and reports where stuck clients were waiting.

Each check prints "ok   name" or "FAIL name: got X, want Y"; the last line is
"concurrency: N passed, M failed"; the exit status is non-zero when a check failed.
"""

import asyncio
import os
import re
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

from harness.instance import Instance, HarnessError, free_port   # noqa: E402
from harness.smtpclient import read_reply_async                   # noqa: E402
from harness.observe import (get_json, get_metrics, MetricsError, LogFollower,   # noqa: E402
                             proc_status_kib, proc_threads, proc_fds)
from harness import cases                                                       # noqa: E402
from harness.cases import (Fail, check, say, note, set_verbose, run_cases,      # noqa: E402
                           start_failed, summary)

HOST = '127.0.0.1'
N_DEFAULT = 500
WARN_AFTER = 5
SMTPD_TIMEOUT = 120
SETUP_TIMEOUT = 60          # all N sessions in DATA by then, or the setup fails
CLOSE_WAIT = 30             # all N txn lines after the close by then
# The bound on the milter's memory. Seen here (Debian 12, libmilter 8.17.1 with its worker
# pool, 2 cores): VmRSS about 4.7 MiB idle, 8.2-8.4 MiB with 500 sessions in DATA (about
# 7 KiB a session), VmHWM 8.7-10 MiB over the run; 7 threads whatever the load (no thread
# per session). What a session may cost: libmilter's context and read buffer, the
# milter's session and transaction records (the registry entry lives inside the
# transaction), plus transient /transactions renders (~350 bytes a row). 64 MiB leaves
# 500 x 100 KiB of room over the idle process: no plausible legitimate growth reaches it,
# while a leak per event, a thread per session with a touched stack, or buffers kept per
# session of the message size would.
MEMORY_BOUND_MIB = 64


def eq(got, want, what):
    """cases.eq with the values shown by repr(), as this script always has."""
    cases.eq(got, want, what, fmt=repr)


# ---- the clients ---------------------------------------------------------------------

class Client:
    def __init__(self, i):
        self.i = i
        self.port = None
        self.reader = None
        self.writer = None
        self.t_start = None
        self.t354 = None
        self.error = None
        self.stage = 'connect'     # what it was waiting for when it stopped


async def _drive(c, smtp_port):
    c.t_start = time.monotonic()
    c.reader, c.writer = await asyncio.open_connection(HOST, smtp_port)
    c.port = c.writer.get_extra_info('sockname')[1]
    c.stage = 'the 220 greeting'
    await read_reply_async(c.reader, 220)
    for cmd, code in ((b'EHLO held%d.conc.test' % c.i, 250),
                      (b'MAIL FROM:<a@example.test>', 250),
                      (b'RCPT TO:<b@example.test>', 250),
                      (b'DATA', 354)):
        c.stage = 'the reply to ' + cmd.split()[0].decode()
        c.writer.write(cmd + b'\r\n')
        await read_reply_async(c.reader, code)
    c.t354 = time.monotonic()
    c.stage = 'in DATA'
    c.writer.write(b'From: <a@example.test>\r\nSubject: held %d\r\n' % c.i)
    await c.writer.drain()


async def _drive_all(clients, smtp_port):
    async def one(c):
        try:
            await asyncio.wait_for(_drive(c, smtp_port), SETUP_TIMEOUT)
        except Exception as e:          # recorded per client, reported by the check
            c.error = 'waiting for %s: %s %s' % (c.stage, type(e).__name__, e)
    await asyncio.gather(*(one(c) for c in clients))


async def _close_all(clients):
    for c in clients:
        if c.writer is not None:
            c.writer.close()
    for c in clients:
        if c.writer is not None:
            try:
                await asyncio.wait_for(c.writer.wait_closed(), 5)
            except Exception:
                pass


# ---- the checks ------------------------------------------------------------------------

class Run:
    """Shared state of the checks, in order; a check that needs an earlier one's result
    fails when that one did not produce it."""

    def __init__(self, inst, http_port, n):
        self.inst = inst
        self.http_port = http_port
        self.n = n
        self.log = LogFollower(inst.milter_log_path, interval=0.02)
        self.loop = asyncio.new_event_loop()
        self.clients = [Client(i) for i in range(n)]
        self.by_port = {}
        self.last354 = None
        self.sessions = None       # port -> session, from the stall lines
        self.figures = {}

    def metrics(self):
        try:
            return get_metrics(self.http_port, timeout=20)
        except MetricsError as e:
            raise Fail('got %s, want a /metrics document prometheus_client parses' % e) from None

    def need(self, attr, what):
        if getattr(self, attr) is None:
            raise Fail('got no %s (an earlier check failed), want it' % what)
        return getattr(self, attr)


def check_setup_sessions(run):
    pid = run.inst.milter_proc.pid
    run.figures['rss_idle_kib'] = proc_status_kib(pid).get('VmRSS')
    run.log.start()
    t0 = time.monotonic()
    run.loop.run_until_complete(_drive_all(run.clients, run.inst.smtp_port))
    took = time.monotonic() - t0
    bad = [c for c in run.clients if c.t354 is None]
    good = [c for c in run.clients if c.t354 is not None]
    run.by_port = {c.port: c for c in good}
    if good:
        run.last354 = max(c.t354 for c in good)
        run.figures['setup_s'] = run.last354 - t0
    say('setup: %d of %d sessions in DATA; last 354 %.2f s after the start (%.2f s in all)'
        % (len(good), run.n, (run.last354 - t0) if good else -1, took))
    if bad:
        errs = {}
        for c in bad:
            errs.setdefault(c.error, 0)
            errs[c.error] += 1
        for e, k in sorted(errs.items(), key=lambda x: -x[1])[:5]:
            say('%d clients: %s' % (k, e))
        pl = [l.raw for l in run.inst.maillog_lines() if 'warning' in l.text][:5]
        for l in pl:
            say('maillog: %s' % l[:200])
        # Postfix logs no "process limit" warning for a service on a loopback address
        # (master flags it local-only: no stress mode, no warning); clients beyond the
        # limit just wait in the listen queue for a greeting. So count the processes.
        say('smtpd processes of this instance: %d (default_process_limit %s)'
            % (smtpd_count(run.inst), run.inst.main_cf_settings().get('default_process_limit')))
    check(not bad, '%d of %d clients not in DATA' % (len(bad), run.n), 'all %d got 354' % run.n)
    eq(len(run.by_port), run.n, 'distinct client ports')


def check_stall_lines(run):
    last354 = run.need('last354', 'client in DATA')
    deadline = last354 + WARN_AFTER + 1.0
    ports = set(run.by_port)

    def is_ours(l):
        if l.kind != 'stall':
            return False
        m = re.search(r':(\d+)$', l.get('client', ''))
        return m is not None and int(m.group(1)) in ports

    while True:
        found = [(t, l) for t, l in run.log.lines() if is_ours(l)]
        if len(found) >= run.n or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    seen_at = time.monotonic()
    # The milter prints all it knows at once; give a duplicate a moment to show up.
    time.sleep(0.3)
    found = [(t, l) for t, l in run.log.lines() if l.kind == 'stall']
    say('%d kind=stall lines %.2f s after the last 354 (limit %.1f s)'
        % (len(found), seen_at - last354, WARN_AFTER + 1.0))
    malformed = [l for _t, l in found if l.parse_error]
    check(not malformed, 'malformed stall lines, e.g. %r' % (malformed[:1],), 'none')
    late = [(t, l) for t, l in found if t > deadline]
    check(len(found) - len(late) >= run.n,
          '%d kind=stall lines by the last 354 + %.1f s' % (len(found) - len(late), WARN_AFTER + 1.0),
          '%d' % run.n)
    check(len(found) == run.n, '%d kind=stall lines' % len(found), 'exactly %d' % run.n)
    warnings = {}
    for _t, l in found:
        warnings[l.get('warning')] = warnings.get(l.get('warning'), 0) + 1
    eq(warnings, {'1': run.n}, 'warning= values')
    sessions = {}
    port_of_session = {}
    worst_wall = worst_milter = None
    early = []
    for t, l in found:
        m = re.search(r':(\d+)$', l.get('client', ''))
        check(m is not None and int(m.group(1)) in run.by_port, 'stall line for client %s' % l.get('client'),
              'one of our clients')
        port = int(m.group(1))
        s = l.get('session')
        check(port not in sessions, 'two stall lines for client port %d' % port, 'one per client')
        check(s not in port_of_session, 'two stall lines for session %s' % s, 'one per session')
        sessions[port] = s
        port_of_session[s] = port
        ms = int(l['in_data_ms'])
        if ms < WARN_AFTER * 1000:
            early.append(l.raw)
        wall = t - (run.by_port[port].t354 + WARN_AFTER)
        worst_wall = wall if worst_wall is None else max(worst_wall, wall)
        lm = ms - WARN_AFTER * 1000
        worst_milter = lm if worst_milter is None else max(worst_milter, lm)
    check(not early, '%d warnings before warn_after, e.g. %s' % (len(early), early[:1]), 'none early')
    eq(len(sessions), run.n, 'distinct sessions')
    run.sessions = sessions
    run.figures['late_wall_ms'] = worst_wall * 1000
    run.figures['late_milter_ms'] = worst_milter
    say('worst lateness: %.0f ms by the wall clock (line seen vs 354 + %d s, 20 ms polling), '
        '%d ms as the milter saw it (in_data_ms - %d)'
        % (worst_wall * 1000, WARN_AFTER, worst_milter, WARN_AFTER * 1000))


def check_transactions_listed(run):
    sessions = run.need('sessions', 'stall lines')
    t = time.monotonic()
    doc = get_json(run.http_port, '/transactions', timeout=20)
    note('/transactions took %.3f s' % (time.monotonic() - t))
    rows = doc.get('transactions', [])
    eq(doc.get('count'), run.n, '/transactions count')
    eq(len(rows), run.n, '/transactions rows')
    got = [r.get('session') for r in rows]
    eq(len(set(got)), run.n, 'distinct sessions in /transactions')
    eq(set(got), set(sessions.values()), 'the sessions of /transactions equal those of the stall lines')
    bad = [r for r in rows if r.get('stalled') is not True or r.get('phase') != 'data'
           or r.get('warnings') != 1 or not r.get('seconds_in_phase', 0) >= WARN_AFTER]
    check(not bad, '%d rows not stalled/data/warnings=1/>= %d s, e.g. %r' % (len(bad), WARN_AFTER, bad[:1]),
          'every row stalled in data')
    for r in rows:
        port = int(r['client'].rsplit(':', 1)[1])
        check(sessions.get(port) == r['session'], 'row %r' % r, 'the session of client port %d' % port)


def check_gauges_in_data(run):
    m = run.metrics()
    eq(m.value('smtptrace_transactions_in_data'), run.n, 'smtptrace_transactions_in_data')
    eq(m.value('smtptrace_transactions_stalled'), run.n, 'smtptrace_transactions_stalled')
    eq(m.value('smtptrace_stalls_total'), run.n, 'smtptrace_stalls_total')
    check(m.value('smtptrace_connections_open') >= run.n,
          'smtptrace_connections_open %g' % m.value('smtptrace_connections_open'), '>= %d' % run.n)


def check_memory_bounded(run):
    run.figures['smtpd_held'] = smtpd_count(run.inst)
    say('smtpd processes of this instance: %d' % run.figures['smtpd_held'])
    pid = run.inst.milter_proc.pid
    st = proc_status_kib(pid)
    run.figures['rss_held_kib'] = st.get('VmRSS')
    say('milter memory with %d sessions in DATA: VmRSS %.1f MiB (idle %.1f MiB), VmHWM %.1f MiB, '
        '%s threads, %s fds'
        % (run.n, st['VmRSS'] / 1024, (run.figures.get('rss_idle_kib') or 0) / 1024,
           st['VmHWM'] / 1024, proc_threads(pid), proc_fds(pid)))
    check(st['VmRSS'] < MEMORY_BOUND_MIB * 1024, 'VmRSS %.1f MiB' % (st['VmRSS'] / 1024),
          'under %d MiB' % MEMORY_BOUND_MIB)
    check(st['VmHWM'] < MEMORY_BOUND_MIB * 1024, 'VmHWM %.1f MiB' % (st['VmHWM'] / 1024),
          'under %d MiB' % MEMORY_BOUND_MIB)


def check_close_all_reported(run):
    t0 = time.monotonic()
    run.loop.run_until_complete(_close_all(run.clients))    # whatever the earlier checks said
    sessions = run.need('sessions', 'stall lines')
    want = set(sessions.values())

    def ours(l):
        return l.kind == 'txn' and l.get('session') in want

    found = run.log.wait(ours, CLOSE_WAIT, count=run.n, interval=0.05)
    took = time.monotonic() - t0
    time.sleep(0.3)                       # a duplicate would come right behind
    found = [l for _t, l in run.log.lines() if ours(l)]
    say('%d txn lines %.2f s after closing the clients' % (len(found), took))
    check(len(found) >= run.n, '%d txn lines within %d s' % (len(found), CLOSE_WAIT), '%d' % run.n)
    per = {}
    for l in found:
        per.setdefault(l['session'], []).append(l)
    dups = [s for s, ls in per.items() if len(ls) > 1]
    check(not dups, '%d sessions with more than one txn line, e.g. %s' % (len(dups), dups[:3]),
          'each session exactly once')
    eq(len(per), run.n, 'sessions with a txn line')
    outcomes = {}
    for l in found:
        outcomes[l.get('outcome')] = outcomes.get(l.get('outcome'), 0) + 1
    eq(outcomes, {'ended-after-354': run.n}, 'outcomes')
    bad = [l.raw for l in found if l.get('stalled') != 'yes' or l.get('stall_warnings') != '1']
    check(not bad, '%d txn lines without stalled=yes stall_warnings=1, e.g. %s' % (len(bad), bad[:1]),
          'every one stalled=yes stall_warnings=1')
    for port, s in sessions.items():
        l = per[s][0]
        check(l.get('client', '').endswith(':%d' % port), 'session %s client=%s' % (s, l.get('client')),
              'client port %d' % port)
    conns = [l for _t, l in run.log.lines() if l.kind == 'conn' and l.get('session') in want]
    note('%d conn lines' % len(conns))


def check_gauges_back(run):
    deadline = time.monotonic() + 10
    while True:
        m = run.metrics()
        if (m.value('smtptrace_transactions_in_data') == 0 and m.value('smtptrace_transactions_stalled') == 0
                and m.value('smtptrace_connections_open') == 0) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    eq(m.value('smtptrace_transactions_in_data'), 0, 'smtptrace_transactions_in_data')
    eq(m.value('smtptrace_transactions_stalled'), 0, 'smtptrace_transactions_stalled')
    eq(m.value('smtptrace_stalls_total'), run.n, 'smtptrace_stalls_total')
    eq(m.value('smtptrace_transactions_total', outcome='ended-after-354'), run.n,
       'smtptrace_transactions_total{outcome="ended-after-354"}')
    eq(m.value('smtptrace_connections_open'), 0, 'smtptrace_connections_open')
    check(m.value('smtptrace_connections_total') >= run.n,
          'smtptrace_connections_total %g' % m.value('smtptrace_connections_total'), '>= %d' % run.n)
    degraded = {dict(k).get('kind'): v for k, v in m.labelled('smtptrace_degraded_total').items() if v}
    eq(degraded, {}, 'non-zero smtptrace_degraded_total')
    doc = get_json(run.http_port, '/transactions')
    eq(doc.get('count'), 0, '/transactions count after the close')
    st = proc_status_kib(run.inst.milter_proc.pid)
    run.figures['rss_after_kib'] = st.get('VmRSS')
    run.figures['hwm_kib'] = st.get('VmHWM')
    say('milter memory after the close: VmRSS %.1f MiB, VmHWM %.1f MiB'
        % (st['VmRSS'] / 1024, st['VmHWM'] / 1024))
    check(st['VmHWM'] < MEMORY_BOUND_MIB * 1024, 'VmHWM %.1f MiB' % (st['VmHWM'] / 1024),
          'under %d MiB' % MEMORY_BOUND_MIB)
    check(run.inst.milter_running(), 'the milter exited (%s)' % run.inst.milter_proc.poll(), 'running')


def check_postfix_held_all(run):
    held = run.figures.get('smtpd_held')
    check(held is not None and held >= run.n, 'smtpd processes while held: %s' % held,
          'at least %d' % run.n)
    lines = run.inst.maillog_lines()
    limit = [l.raw for l in lines if 'process limit' in l.text]
    check(not limit, '%d "process limit" lines, e.g. %s' % (len(limit), limit[:1]), 'none')
    warn = [l.raw for l in lines if re.search(r'\b(warning|fatal|panic):', l.text)]
    check(not warn, '%d Postfix warnings, e.g. %s' % (len(warn), warn[:2]), 'none')
    lost = [l for l in lines if re.search(r'lost connection after DATA', l.text)]
    eq(len(lost), run.n, '"lost connection after DATA" lines in the maillog')


CHECKS = [
    check_setup_sessions,
    check_stall_lines,
    check_transactions_listed,
    check_gauges_in_data,
    check_memory_bounded,
    check_close_all_reported,
    check_gauges_back,
    check_postfix_held_all,
]


def smtpd_count(inst):
    """Processes named smtpd whose parent is this instance's Postfix master."""
    master = inst._master_pid()
    n = 0
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as fh:
                st = fh.read()
        except OSError:
            continue
        comm = st[st.find('(') + 1:st.rfind(')')]
        ppid = int(st[st.rfind(')') + 2:].split()[1])
        if comm == 'smtpd' and ppid == master:
            n += 1
    return n


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description='smtptrace: N connections held in DATA')
    ap.add_argument('-n', type=int, default=N_DEFAULT, help='connections (default %d)' % N_DEFAULT)
    ap.add_argument('-v', action='store_true', help='more notes and tracebacks')
    args = ap.parse_args(argv)
    set_verbose(args.v)
    n = args.n
    t_all = time.monotonic()
    # Our N client sockets, and the milter (which inherits this limit) holds one socket
    # per Postfix smtpd plus its own.
    nofile = raise_nofile(4 * n + 1024)
    note('RLIMIT_NOFILE %s' % (nofile,))
    http_port = free_port()
    extra = ('stall: { warn_after = %d; repeat_every = 0; };\n'
             'metrics: { http_listen = "127.0.0.1:%d"; };\n' % (WARN_AFTER, http_port))
    main_cf = {
        # smtpd's maxproc in the harness's master.cf is "-": this is its limit.
        'default_process_limit': max(600, n + 100),
        'smtpd_client_connection_count_limit': 0,
        'smtpd_client_connection_rate_limit': 0,
        'smtpd_client_message_rate_limit': 0,
    }
    inst = Instance(milter=True, smtpd_timeout=SMTPD_TIMEOUT, timeout_tolerance=1,
                    main_cf=main_cf, milter_config_extra=extra)
    try:
        inst.start()
        inst.wait_milter_listening(http_port)
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        status = start_failed('concurrency', e)
        inst.stop()
        return status
    run = Run(inst, http_port, n)
    try:
        passed, failed = run_cases(CHECKS, run, (HarnessError, OSError, MetricsError, KeyError,
                                                 ValueError), what='check', show_rest=False)
    finally:
        try:
            run.loop.run_until_complete(_close_all(run.clients))
        finally:
            run.loop.close()
            run.log.stop()
            inst.stop()
    f = run.figures
    print('figures: %d sessions set up in %.2f s; worst stall lateness %.0f ms wall clock, %s ms '
          'milter; milter VmRSS idle %.1f MiB, held %.1f MiB, after %.1f MiB, peak %.1f MiB '
          '(bound %d MiB); whole run %.1f s'
          % (n, f.get('setup_s', -1), f.get('late_wall_ms', -1), f.get('late_milter_ms', '?'),
             (f.get('rss_idle_kib') or 0) / 1024, (f.get('rss_held_kib') or 0) / 1024,
             (f.get('rss_after_kib') or 0) / 1024, (f.get('hwm_kib') or 0) / 1024,
             MEMORY_BOUND_MIB, time.monotonic() - t_all))
    return summary('concurrency', passed, failed)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
