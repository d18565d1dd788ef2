#!/usr/bin/python3
"""smtptrace end-to-end fault tests: each fault tried against the real milter, a private
Postfix on 127.0.0.1 (smtpd_milters with default_action=accept) and smtp-sink.

    /usr/bin/python3 tests/e2e/test_faults.py [-k SUBSTRING] [-v] [-n SESSIONS]
        [--failalloc build/tests/faults/failalloc.so]       (as root; make faults)

SMTPTRACE_MILTER=PATH picks the milter binary (default build/smtptrace-milter); the
LD_PRELOAD shim (tests/faults/failalloc.c) defaults to tests/faults/failalloc.so beside
the milter's build directory. One instance for all cases: Postfix with its process limit
raised (sessions + 200) and no anvil limits, the milter with metrics on a loopback port
and a text file written every second. A case that needs other conditions restarts the
milter under them (same socket) and leaves the normal one running when it ends.

  killed_under_load     smtp-source sends 300 messages over 10 sessions; the milter gets
                        SIGKILL when a third are logged; every message is delivered, none
                        refused; a new milter on the same (stale) socket marks the next one
  sessions_2000         2,000 SMTP sessions held in DATA at once, then all finished: all
                        queued and delivered, one txn line each, the milter up (time, RSS)
  fd_limit              the milter with RLIMIT_NOFILE 32 and 60 sessions at once holding
                        2 s in DATA: all delivered, none refused, the milter up, and it
                        says (once, not per message) that it ran out of descriptors
  out_of_memory         calloc in smtptrace's own code fails while a trigger file exists
                        (LD_PRELOAD shim): mail delivered, degraded{kind="no-memory"}
                        counted, one log line; then every allocation of its own code
                        (/metrics too); after the trigger the next message is observed
  metrics_file_trouble  metrics.textfile's directory removed, then a full 64 KiB tmpfs:
                        the milter observes on, logs each failure once, writes again after
  no_syslog_socket      the milter where /dev/log is absent, and where it is /dev/null (a
                        private mount namespace): it starts, serves, its lines reach stderr
  stuck_syslog_socket   /dev/log a datagram socket nobody reads (a hung syslog daemon):
                        every message must still be answered within a second
  stuck_metrics_clients 200 idle or half-request HTTP connections and one reader that
                        never reads /transactions (300 sessions in DATA): mail timelines
                        normal, at most 256 HTTP connections held, freed at the timeout,
                        and a fresh client still gets /metrics within the timeout
  eom_with_body         a raw milter-protocol client: EOM carrying body bytes is answered
                        (and a body chunk then an empty EOM), one txn line accepted each

Each case prints "ok   name" or "FAIL name: got X, want Y" with its figures as
"     . ..." lines before it; the last line is "faults: N passed, M failed" after the run
time. SMTPTRACE_KEEP=1 keeps the temp dir.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir)))

from harness.instance import HarnessError, free_port, REPO                      # noqa: E402
from harness.faults import (FaultInstance, BulkSessions, MilterClient, MilterError,   # noqa: E402
                            smtp_source, refusals, milter_warnings, raise_nofile,
                            unix_socket_state, mount_tmpfs, umount, is_mountpoint,
                            private_dev_wrapper, devlog_state, stuck_connections, slow_reader,
                            closed_by_peer, SMFIP_NR_BODY)
from harness.observe import (http_get, get_metrics, Metrics, MetricsError,      # noqa: E402
                             proc_status_kib, proc_threads, proc_fds)
from harness import smtpclient as sc                                            # noqa: E402
from harness.cases import (Fail, check, eq, show, say, note, set_verbose,       # noqa: E402
                           run_cases, start_failed, summary)

HOST = '127.0.0.1'
HEADER = 'X-SMTP-Trace'
SESSIONS_DEFAULT = 2000
SMTPD_TIMEOUT = 120
TEXTFILE_INTERVAL = 1
HTTP_CONNECTION_LIMIT = 256     # milter/httpd.c: HTTPD_CONNECTIONS_MAX
HTTP_TIMEOUT = 5                # milter/httpd.c: HTTPD_IDLE_TIMEOUT_S
LOG_WAIT = 10

_seq = [0]


def unique(tag):
    _seq[0] += 1
    return '%s-%d-%d' % (tag, os.getpid(), _seq[0])


class Env:
    def __init__(self, inst, args, http_port, prom_dir):
        self.inst = inst
        self.args = args
        self.http_port = http_port
        self.prom_dir = prom_dir
        self.prom_path = os.path.join(prom_dir, 'smtptrace.prom')
        self.failalloc = args.failalloc
        self.figures = {}

    # ---- the milter ---------------------------------------------------------------

    def normal_milter(self, force=False):
        """The milter under normal conditions, running (restarted when it is not)."""
        inst = self.inst
        if (force or not inst.milter_running() or inst.milter_wrapper or inst.milter_env
                or inst.milter_nofile is not None):
            inst.restart_milter()
            inst.wait_milter_listening(self.http_port)
        return inst.milter_proc.pid

    def metrics(self, timeout=10):
        try:
            return get_metrics(self.http_port, timeout=timeout)
        except MetricsError as e:
            raise Fail('got %s, want a /metrics document prometheus_client parses' % e) from None

    # ---- one message ---------------------------------------------------------------

    def send(self, tag, timeout=30):
        """One message through Postfix with a unique HELO and Message-ID; returns
        (helo, message-id, queue id). Fails unless the final reply is 250."""
        helo = unique(tag) + '.faults.test'
        mid = '<%s@faults.test>' % unique(tag)
        data = sc.build_message([('From', '<a@example.test>'), ('To', '<b@example.test>'),
                                 ('Subject', 'faults %s' % tag), ('Message-ID', mid)], size=800)
        c = sc.SMTPClient(HOST, self.inst.smtp_port, timeout=timeout)
        try:
            c.ehlo(helo)
            c.mail('a@example.test')
            c.rcpt('b@example.test')
            c.data()
            c.send_body(data)
            r = c.end_data()
            c.quit()
        finally:
            c.close()
        check(r.code == 250, 'final reply %s' % r.text, '250')
        m = re.search(r'queued as ([0-9A-Za-z]+)', r.text)
        return helo, mid, m.group(1) if m else None

    def observed(self, helo, qid, pid=None, timeout=LOG_WAIT):
        """The message was observed normally: its txn line (outcome accepted, from the
        milter with this pid when given) and the delivered copy with our header."""
        inst = self.inst
        try:
            line = inst.wait_milter_line(lambda l: l.kind == 'txn' and l.get('helo') == helo, timeout)
        except HarnessError:
            raise Fail('got no kind=txn line for helo=%s within %d s (milter %s), want one'
                       % (helo, timeout, 'running' if inst.milter_running() else 'not running')) from None
        eq(line.get('outcome'), 'accepted', 'outcome')
        if pid is not None:
            eq(line.pid, pid, 'pid of the milter that logged it')
        msg = self.delivered(qid)
        hdr = msg.get_all(HEADER)
        eq(len(hdr), 1, '%s headers on the delivered message' % HEADER)
        return line, msg

    def delivered(self, qid, timeout=30):
        try:
            return self.inst.wait_delivered(queue_id=qid, timeout=timeout)
        except HarnessError as e:
            raise Fail('got %s, want message %s delivered' % (str(e).split('\n')[0], qid)) from None

    def delivered_from(self, sender, want, timeout=60):
        """Wait until smtp-sink holds `want` messages with this envelope sender."""
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.inst.delivered_where(
                lambda m: any(sender in v for v in m.sink('X-Mail-Args')))
            if len(msgs) >= want or time.monotonic() >= deadline:
                return msgs
            time.sleep(0.2)

    def no_refusals(self, mark, what):
        bad = refusals(self.inst.maillog_since(mark))
        check(not bad, '%d maillog lines refusing or deferring %s, e.g. %s'
              % (len(bad), what, show(bad[0], 300) if bad else ''), 'none')


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as fh:
        f = fh.read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK')


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * q))] if v else float('nan')


# ---- 1. killed under load ------------------------------------------------------------------

def case_killed_under_load(env):
    """SIGKILL in the middle of smtp-source's 300 messages: none lost, none refused; then
    a new process on the same, stale, socket marks the next message again."""
    inst = env.inst
    old_pid = env.normal_milter()
    n, sessions = 300, 10
    sender = unique('kill') + '@example.test'
    mark = inst.mark()

    def ours(l):
        return l.kind == 'txn' and sender in l.get('from', '')

    # count our txn lines as the log grows (re-reading the whole log would be too slow)
    with open(inst.milter_log_path, 'rb') as fh:
        fh.seek(0, os.SEEK_END)
        offset = fh.tell()
    needle = ('kind=txn ').encode()
    seen = 0
    proc = smtp_source(inst, sessions, n, sender, wait=False)
    t0 = proc.t0
    killed_at = None
    while proc.poll() is None:
        with open(inst.milter_log_path, 'rb') as fh:
            fh.seek(offset)
            data = fh.read()
        cut = data.rfind(b'\n') + 1
        offset += cut
        seen += len([l for l in data[:cut].split(b'\n') if needle in l and sender.encode() in l])
        if seen >= n // 3:
            rc = inst.kill_milter(signal.SIGKILL)
            killed_at = time.monotonic() - t0
            break
        time.sleep(0.005)
    out, _ = proc.communicate(timeout=120)
    src_time = time.monotonic() - t0
    out = out.decode('utf-8', 'replace').strip()
    check(killed_at is not None, 'smtp-source finished (status %s) before %d messages were logged'
          % (proc.returncode, n // 3), 'the milter killed in the middle of the run')
    eq(rc, -signal.SIGKILL, 'the killed milter\'s exit status')
    logged_before = len([l for l in inst.milter_lines_since(mark) if ours(l)])
    eq(proc.returncode, 0, 'smtp-source exit status (non-zero on any reply but 2xx/3xx; output %s)'
       % show(out, 200))
    msgs = env.delivered_from(sender, n)
    marked = len([m for m in msgs if m.get_all(HEADER)])
    warns = milter_warnings(inst.maillog_since(mark))
    say('smtp-source: %d messages over %d sessions in %.2f s; SIGKILL %.2f s in, after %d txn '
        'lines; delivered %d (%d with %s, %d without); %d Postfix warnings about the milter '
        '(e.g. %s)' % (n, sessions, src_time, killed_at, logged_before, len(msgs), marked, HEADER,
                       len(msgs) - marked, len(warns),
                       show(re.sub(r'^.*?warning: ', '', warns[0]), 110) if warns else '-'))
    eq(len(msgs), n, 'messages smtp-sink received from smtp-source')
    env.no_refusals(mark, 'these messages')

    state, ident = unix_socket_state(inst.milter_socket)
    eq(state, 'stale', 'the socket after SIGKILL')
    new_pid = env.normal_milter()
    state2, ident2 = unix_socket_state(inst.milter_socket)
    eq(state2, 'listening', 'the socket after the restart')
    check(ident2 != ident and new_pid != old_pid,
          'socket (inode, ctime) %s -> %s, pid %d -> %d' % (ident, ident2, old_pid, new_pid),
          'a new socket file and a new process')
    helo, _mid, qid = env.send('afterkill')
    line, _msg = env.observed(helo, qid, pid=new_pid)
    say('restarted: pid %d -> %d, the stale socket replaced (ctime +%.2f s); the next message %s '
        'has %s again' % (old_pid, new_pid, (ident2[1] - ident[1]) / 1e9, qid, HEADER))
    env.figures['killed'] = (n, sessions, src_time, killed_at, logged_before, len(msgs), marked, len(warns))


# ---- 2. many sessions at once --------------------------------------------------------------

def case_sessions_2000(env):
    """N SMTP sessions in DATA at once, then all finished: all queued and delivered, one
    txn line each, the milter up; time and RSS printed."""
    inst = env.inst
    n = env.args.sessions
    pid = env.normal_milter()
    sender = unique('s2k') + '@example.test'
    mark = inst.mark()
    rss0 = proc_status_kib(pid).get('VmRSS', 0)
    b = BulkSessions(inst.smtp_port, n, helo='s2k%d.faults.test', sender=sender, body_size=600)
    t0 = time.monotonic()
    try:
        try:
            b.open_all(timeout=120)
        except Exception as e:      # the overall timeout: the per-session errors say more
            note('open_all: %s' % e)
        t_open = time.monotonic() - t0
        in_data = [s for s in b.sessions if s.t354 is not None]
        st = proc_status_kib(pid)
        fds, threads = proc_fds(pid), proc_threads(pid)
        say('%d of %d sessions in DATA at once %.1f s after the start; the milter: VmRSS %.1f MiB '
            '(idle %.1f MiB), %s fds, %s threads'
            % (len(in_data), n, t_open, st.get('VmRSS', 0) / 1024, rss0 / 1024, fds, threads))
        for err, k in sorted(b.errors().items(), key=lambda x: -x[1])[:3]:
            say('%d sessions: %s' % (k, err))
        eq(len(in_data), n, 'sessions in DATA at the same time')
        b.finish_all(timeout=120)
        t_done = time.monotonic() - t0
    finally:
        b.close()
    done = [s for s in b.sessions if s.t_done is not None]
    ports = {s.port for s in done}
    lines = inst.wait_milter_since(mark, lambda l: l.kind == 'txn' and sender in l.get('from', ''),
                                   timeout=30, count=n)
    per_port = {}
    for l in lines:
        m = re.search(r':(\d+)$', l.get('client', ''))
        per_port.setdefault(int(m.group(1)) if m else None, []).append(l)
    msgs = env.delivered_from(sender, n, timeout=90)
    t_all = time.monotonic() - t0
    st = proc_status_kib(pid)
    say('%d queued (250) %.1f s after the start; %d txn lines; %d delivered %.1f s after the start; '
        'the milter after: VmRSS %.1f MiB, VmHWM %.1f MiB'
        % (len(done), t_done, len(lines), len(msgs), t_all, st.get('VmRSS', 0) / 1024,
           st.get('VmHWM', 0) / 1024))
    env.figures['sessions'] = (n, t_open, t_done, t_all, st.get('VmRSS', 0) / 1024, st.get('VmHWM', 0) / 1024)
    eq(len(done), n, 'sessions whose message was queued')
    eq(len(lines), n, 'kind=txn lines')
    dups = [p for p, ls in per_port.items() if len(ls) > 1]
    check(not dups, '%d client ports with more than one txn line' % len(dups), 'one each')
    eq(set(per_port), ports, 'the client ports of the txn lines vs the sessions\'')
    outcomes = {}
    for l in lines:
        outcomes[l.get('outcome')] = outcomes.get(l.get('outcome'), 0) + 1
    eq(outcomes, {'accepted': n}, 'outcomes')
    eq(len(msgs), n, 'messages delivered')
    env.no_refusals(mark, 'these messages')
    check(inst.milter_running(), 'the milter exited (%s)' % inst.milter_proc.poll(), 'running')


# ---- 3. the descriptor limit -----------------------------------------------------------------

FD_LOG_RX = re.compile(r'too many open files|file descriptor|descriptors|EMFILE|RLIMIT_NOFILE|nofile',
                       re.I)


def case_fd_limit(env):
    """RLIMIT_NOFILE 32 and 60 sessions at once (each 2 s in DATA): mail flows, none
    refused, the milter up, and the problem logged (not once per message)."""
    inst = env.inst
    limit, n, hold = 32, 60, 2.0
    try:
        pid = inst.restart_milter(nofile=limit)
        inst.wait_milter_listening(env.http_port)
        base = proc_fds(pid)
        sender = unique('fd') + '@example.test'
        mark = inst.mark()
        cpu0 = cpu_seconds(pid)
        b = BulkSessions(inst.smtp_port, n, helo='fd%d.faults.test', sender=sender, hold=hold)
        t0 = time.monotonic()
        try:
            b.run_through(timeout=150)
        finally:
            b.close()
        took = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        done = [s for s in b.sessions if s.t_done is not None]
        greet = [s.t_greeting - s.t_start for s in b.sessions if s.t_greeting]
        lines = inst.wait_milter_since(mark, lambda l: l.kind == 'txn' and sender in l.get('from', ''),
                                       timeout=5, count=n)
        msgs = env.delivered_from(sender, n)
        # the text file writer's "cannot write metrics file ...: Too many open files" (once,
        # when a write falls while the descriptors are gone) says nothing of the sessions
        side = [l.raw for l in inst.milter_lines_since(mark)
                if FD_LOG_RX.search(l.raw) and 'cannot write metrics file' in l.raw]
        fdlines = [l.raw for l in inst.milter_lines_since(mark)
                   if FD_LOG_RX.search(l.raw) and 'cannot write metrics file' not in l.raw]
        say('RLIMIT_NOFILE %d (%d descriptors open when idle), %d sessions at once holding %.0f s in '
            'DATA: %d queued in %.1f s; wait for the 220 greeting median %.1f s, max %.1f s; '
            '%d observed (txn lines), %d delivered; milter CPU %.1f s during the run; %d log lines '
            'about descriptors (and %d from the metrics file writer)'
            % (limit, base, n, hold, len(done), took, pct(greet, 0.5), max(greet or [0]), len(lines),
               len(msgs), cpu, len(fdlines), len(side)))
        env.figures['fd'] = (limit, base, n, len(done), took, pct(greet, 0.5), max(greet or [0]),
                             len(lines), len(msgs), cpu, len(fdlines), len(side))
        errs = b.errors()
        check(not errs, 'session errors %s' % errs, 'none')
        eq(len(done), n, 'messages queued')
        eq(len(msgs), n, 'messages delivered')
        env.no_refusals(mark, 'these messages')
        check(inst.milter_running(), 'the milter exited (%s)' % inst.milter_proc.poll(), 'running')
        check(1 <= len(fdlines) <= max(1, n // 10),
              '%d log lines about the descriptor limit (%.1f s of milter CPU in %.1f s: '
              'libmilter retries accept() on EMFILE at once, without a word)' % (len(fdlines), cpu, took),
              'at least one, and not one per message (at most %d)' % max(1, n // 10))
    finally:
        env.normal_milter()


# ---- 4. out of memory ------------------------------------------------------------------------

def case_out_of_memory(env):
    """Allocation failures in smtptrace's own code (LD_PRELOAD shim, trigger file): mail
    delivered, never refused; degraded{kind="no-memory"} counted, one log line; after the
    trigger the next message is observed normally."""
    inst = env.inst
    so = env.failalloc
    check(so and os.path.exists(so), 'no shim at %s' % so, 'the failalloc shim (make faults builds it)')
    trigger = os.path.join(inst.dir, 'oom.trigger')
    count_file = os.path.join(inst.dir, 'oom.count')

    def injected():
        try:
            with open(count_file) as fh:
                return int(fh.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    try:
        pid = inst.restart_milter(env={'LD_PRELOAD': so, 'FAILALLOC_TRIGGER': trigger,
                                       'FAILALLOC_COUNT': count_file})
        inst.wait_milter_listening(env.http_port)
        mark = inst.mark()
        # phase 1: calloc, the session at negotiate (a callback)
        with open(trigger, 'w') as fh:
            fh.write('calloc\n')
        k = 10
        sender = unique('oom') + '@example.test'
        b = BulkSessions(inst.smtp_port, k, helo='oom%d.faults.test', sender=sender)
        try:
            b.run_through(timeout=60)
        finally:
            b.close()
        done = [s for s in b.sessions if s.t_done is not None]
        m = env.metrics()
        nomem = m.value('smtptrace_degraded_total', kind='no-memory')
        n1 = injected()
        msgs = env.delivered_from(sender, k)
        unmarked = len([x for x in msgs if not x.get_all(HEADER)])
        # phase 2: every allocation of smtptrace's own code, /metrics included
        with open(trigger, 'w') as fh:
            fh.write('malloc calloc realloc\n')
        try:
            st, _ct, body = http_get(env.http_port, '/metrics', timeout=10)
            during = 'HTTP %d %s' % (st, show(body[:40].decode('utf-8', 'replace')))
        except (OSError, http_client_errors()) as e:
            during = 'no answer (%s)' % type(e).__name__
        sender2 = unique('oom2') + '@example.test'
        b2 = BulkSessions(inst.smtp_port, 3, helo='oomall%d.faults.test', sender=sender2)
        try:
            b2.run_through(timeout=60)
        finally:
            b2.close()
        done2 = [s for s in b2.sessions if s.t_done is not None]
        msgs2 = env.delivered_from(sender2, 3)
        n2 = injected()
        os.unlink(trigger)
        m = env.metrics()
        nomem2 = m.value('smtptrace_degraded_total', kind='no-memory')
        helo, _mid, qid = env.send('afteroom')
        env.observed(helo, qid, pid=pid)
        oomlines = [l.raw for l in inst.milter_lines_since(mark) if 'out of memory' in l.raw]
        say('calloc failing: %d messages queued, %d delivered (%d without %s), %d allocations '
            'failed, degraded{no-memory} %g; every allocation of its own code failing: %d queued, '
            '%d delivered, GET /metrics -> %s; %d failed in all, degraded{no-memory} %g; %d log '
            'line(s) "%s"; after: the next message observed'
            % (len(done), len(msgs), unmarked, HEADER, n1, nomem, len(done2), len(msgs2), during,
               n2, nomem2, len(oomlines), show(re.sub(r'^\S+ ', '', oomlines[0]), 90) if oomlines else '-'))
        env.figures['oom'] = (k, len(msgs), n1, nomem, len(msgs2), during, n2, nomem2, len(oomlines))
        eq(len(done), k, 'messages queued while calloc failed')
        eq(len(msgs), k, 'messages delivered while calloc failed')
        eq(len(done2), 3, 'messages queued while every allocation failed')
        eq(len(msgs2), 3, 'messages delivered while every allocation failed')
        env.no_refusals(mark, 'messages during the trigger')
        check(n1 >= k, '%d injected failures for %d sessions' % (n1, k), 'at least one per session')
        eq(nomem, n1, 'smtptrace_degraded_total{kind="no-memory"} vs the failures injected in callbacks')
        check(nomem2 >= nomem, 'degraded{no-memory} %g after, %g before' % (nomem2, nomem), 'not less')
        eq(len(oomlines), 1, 'log lines about running out of memory')
        check(inst.milter_running(), 'the milter exited (%s)' % inst.milter_proc.poll(), 'running')
    finally:
        try:
            os.unlink(trigger)
        except FileNotFoundError:
            pass
        env.normal_milter()


def http_client_errors():
    import http.client
    return http.client.HTTPException


# ---- 5. the metrics text file ---------------------------------------------------------------

def wait_prom(env, newer_than=None, timeout=5):
    """Wait for the text file (written after newer_than, a time.time()); returns its parsed
    Metrics, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = os.stat(env.prom_path)
            if newer_than is None or st.st_mtime > newer_than:
                with open(env.prom_path) as fh:
                    return Metrics(fh.read())
        except (OSError, MetricsError):
            pass
        time.sleep(0.1)
    return None


def write_failures(env, mark):
    return [l.raw for l in env.inst.milter_lines_since(mark) if 'cannot write metrics file' in l.raw]


def fill_up(path):
    """Write zeros to path until the file system is full; returns the bytes written."""
    n = 0
    with open(path, 'wb', buffering=0) as fh:
        chunk = b'\0' * 4096
        while True:
            try:
                w = fh.write(chunk)
            except OSError:
                break
            if not w:
                break
            n += w
        for size in (512, 64, 1):       # the last bytes of a block
            while True:
                try:
                    n += fh.write(b'\0' * size)
                except OSError:
                    break
    return n


def case_metrics_file_trouble(env):
    """metrics.textfile's directory removed, then on a full tmpfs: the milter keeps
    observing, logs each failure once (not every interval), writes again afterwards."""
    inst = env.inst
    pid = env.normal_milter()
    check(wait_prom(env) is not None, 'no %s' % env.prom_path, 'the text file written')
    # the directory goes away
    mark = inst.mark()
    os.unlink(env.prom_path)
    os.rmdir(env.prom_dir)
    t_gone = time.monotonic()
    helo, _mid, qid = env.send('nodir')
    env.observed(helo, qid, pid=pid)
    time.sleep(max(0, 4 * TEXTFILE_INTERVAL + 0.5 - (time.monotonic() - t_gone)))
    gone_lines = write_failures(env, mark)
    gone_s = time.monotonic() - t_gone
    os.mkdir(env.prom_dir, 0o755)
    t_back = time.time()
    back = wait_prom(env, newer_than=t_back - 1, timeout=3 * TEXTFILE_INTERVAL + 2)
    back_s = time.time() - t_back
    say('directory removed for %.1f s (%d intervals): %d "cannot write" line(s) (%s); a message '
        'observed meanwhile; directory back: the file again after %.1f s'
        % (gone_s, int(gone_s / TEXTFILE_INTERVAL), len(gone_lines),
           show(re.sub(r'^\S+ ', '', gone_lines[0]), 110) if gone_lines else '-', back_s))
    env.figures['nodir'] = (gone_s, len(gone_lines), back_s)
    eq(len(gone_lines), 1, 'log lines while the directory was gone (%.0f intervals)' % gone_s)
    check(back is not None, 'no valid text file %.0f s after the directory came back' % back_s,
          'written again')
    check(inst.milter_running(), 'the milter exited', 'running')

    # a full disk
    err = mount_tmpfs(env.prom_dir, '64k')
    if err is not None:
        say('skip metrics_file_trouble/full_disk: cannot mount a tmpfs here (%s)' % err)
        env.figures['full'] = None
        return
    filler = os.path.join(env.prom_dir, 'filler')
    try:
        first = wait_prom(env, timeout=3 * TEXTFILE_INTERVAL + 2)
        check(first is not None, 'no text file on the fresh tmpfs', 'written there')
        mark = inst.mark()
        filled = fill_up(filler)
        t_full = time.monotonic()
        helo, _mid, qid = env.send('diskfull')
        env.observed(helo, qid, pid=pid)
        time.sleep(max(0, 4 * TEXTFILE_INTERVAL + 0.5 - (time.monotonic() - t_full)))
        full_lines = write_failures(env, mark)
        full_s = time.monotonic() - t_full
        leftovers = [f for f in os.listdir(env.prom_dir) if '.tmp.' in f]
        os.unlink(filler)
        t_free = time.time()
        again = wait_prom(env, newer_than=t_free, timeout=3 * TEXTFILE_INTERVAL + 2)
        again_s = time.time() - t_free
        say('64 KiB tmpfs filled (%d bytes of filler) for %.1f s: %d "cannot write" line(s) (%s), '
            '%d temporary files left; a message observed meanwhile; space freed: the file again '
            'after %.1f s' % (filled, full_s, len(full_lines),
                              show(re.sub(r'^\S+ ', '', full_lines[0]), 110) if full_lines else '-',
                              len(leftovers), again_s))
        env.figures['full'] = (filled, full_s, len(full_lines), again_s)
        eq(len(full_lines), 1, 'log lines while the disk was full (%.0f intervals)' % full_s)
        check('No space left' in full_lines[0], 'the line %s' % show(full_lines[0]), 'it names ENOSPC')
        eq(leftovers, [], 'temporary files left on the full disk')
        check(again is not None, 'no new text file %.0f s after space was freed' % again_s, 'written again')
        check(inst.milter_running(), 'the milter exited', 'running')
    finally:
        if is_mountpoint(env.prom_dir):
            umount(env.prom_dir)


# ---- 6. no syslog socket ------------------------------------------------------------------------

def case_no_syslog_socket(env):
    """The milter where /dev/log is absent, and where it is /dev/null (private mount
    namespace): it starts, serves, mail flows, its lines reach stderr under -f."""
    inst = env.inst
    host = devlog_state()
    seen = []
    try:
        for kind in ('none', 'devnull'):
            mark = inst.mark()
            pid = inst.restart_milter(wrapper=private_dev_wrapper(inst.dir, kind))
            inst.wait_milter_listening(env.http_port)
            state = devlog_state(pid)
            helo, _mid, qid = env.send('nolog-' + kind)
            line, _msg = env.observed(helo, qid, pid=pid)
            started = [l for l in inst.milter_lines_since(mark) if l.pid == pid and 'starting' in l.raw]
            mine = [l for l in inst.milter_lines_since(mark) if l.pid == pid]
            seen.append('%s: /dev/log %s, %d lines on stderr' % (kind, state, len(mine)))
            eq(state, 'absent' if kind == 'none' else 'a character device (1,3)', '/dev/log as the milter sees it')
            eq(len(started), 1, '"starting" lines on stderr from pid %d' % pid)
            check(inst.milter_running(), 'the milter exited', 'running')
        say('this machine: /dev/log %s; the milter in a private mount namespace with %s; each '
            'started, marked and logged a message, lines on stderr' % (host, '; '.join(seen)))
        env.figures['syslog'] = (host, seen)
    finally:
        env.normal_milter()


def case_stuck_syslog_socket(env):
    """/dev/log a datagram socket nobody reads (a hung syslog daemon): every message must
    still be answered at once."""
    inst = env.inst
    path = os.path.join(inst.dir, 'stuck-log')
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    stop = threading.Event()
    drained = [0]

    def drain():
        rx.settimeout(0.2)
        while not stop.is_set():
            try:
                rx.recv(65536)
                drained[0] += 1
            except socket.timeout:
                pass
            except OSError:
                return

    drainer = None
    try:
        pid = inst.restart_milter(wrapper=private_dev_wrapper(inst.dir, path))
        inst.wait_milter_listening(env.http_port)
        times = []
        stuck_at = None
        for i in range(20):
            t = time.monotonic()
            try:
                env.send('stucklog', timeout=5)
            except (OSError, sc.SMTPError) as e:
                stuck_at = (i + 1, type(e).__name__)
                break
            times.append(time.monotonic() - t)
        qlen = open('/proc/sys/net/unix/max_dgram_qlen').read().strip()
        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        say('/dev/log a datagram socket nobody reads (max_dgram_qlen %s): %d messages answered '
            '(slowest %.2f s)%s' % (qlen, len(times), max(times or [0]),
                                    '; message %d got no reply within 5 s (%s)' % stuck_at if stuck_at else ''))
        env.figures['stucklog'] = (qlen, len(times), stuck_at)
        check(stuck_at is None, 'message %d of 20 unanswered after 5 s: the milter blocks in syslog() '
              'once the log socket\'s queue is full (pid %d)' % (stuck_at[0], pid) if stuck_at else '',
              'every message answered within 5 s')
        check(max(times) < 1.0, 'the slowest message took %.2f s' % max(times), 'under 1 s')
    finally:
        if drainer is None:
            drainer = threading.Thread(target=drain, daemon=True)
            drainer.start()
        try:
            env.normal_milter()
        finally:
            stop.set()
            drainer.join(2)
            rx.close()


# ---- 7. stuck /metrics clients ----------------------------------------------------------------

def http_conns_accepted(port):
    """Server-side ESTABLISHED connections on 127.0.0.1:port that the server accepted (a
    connection still in the listen queue has inode 0 in /proc/net/tcp)."""
    n = 0
    local = '0100007F:%04X' % port
    with open('/proc/net/tcp') as fh:
        next(fh)
        for line in fh:
            p = line.split()
            if p[1] == local and p[3] == '01' and p[9] != '0':
                n += 1
    return n


def case_stuck_metrics_clients(env):
    """200 HTTP connections that send nothing or half a request, one that never reads a
    large /transactions: mail timelines stay normal, the connection limit and timeout
    hold, a fresh client still gets /metrics within the timeout."""
    inst = env.inst
    env.normal_milter()
    held_n, silent_n, half_n = 300, 100, 100
    long_helo = 'h%d-' + 'x' * 200 + '.faults.test'
    held = BulkSessions(inst.smtp_port, held_n, helo=long_helo,
                        sender=unique('held') + '-' + 'y' * 150 + '@example.test')
    socks = []
    slow = None
    try:
        held.open_all(timeout=60)
        in_data = len([s for s in held.sessions if s.t354])
        _st, _ct, body = http_get(env.http_port, '/transactions', timeout=10)
        size = len(body)
        slow = slow_reader(env.http_port, '/transactions')
        socks = stuck_connections(env.http_port, silent_n)
        socks += stuck_connections(env.http_port, half_n, half=True)
        t_stuck = time.monotonic()
        time.sleep(0.5)
        accepted = http_conns_accepted(env.http_port)
        # mail while they hang
        mark = inst.mark()
        rtts = []
        for i in range(10):
            t = time.monotonic()
            env.send('flow')
            rtts.append(time.monotonic() - t)
        lines = inst.wait_milter_since(mark, lambda l: l.kind == 'txn' and l.get('helo', '').startswith('flow-'),
                                       count=10)
        gaps = [l.timeline().get('eom', 10 ** 6) - l.timeline().get('data', 0) for l in lines]
        # a fresh client, within the timeout
        t = time.monotonic()
        try:
            st, _ct, mbody = http_get(env.http_port, '/metrics', timeout=HTTP_TIMEOUT + 3)
            fresh = 'HTTP %d after %.1f s' % (st, time.monotonic() - t)
            fresh_ok = st == 200
        except Exception as e:
            fresh = 'no answer within %d s (%s)' % (HTTP_TIMEOUT + 3, type(e).__name__)
            fresh_ok = False
        # the idle ones are closed at the timeout
        time.sleep(max(0.0, t_stuck + HTTP_TIMEOUT + 1.5 - time.monotonic()))
        since = time.monotonic() - t_stuck
        closed = sum(closed_by_peer(s) for s in socks)
        max_accepted = max(accepted, http_conns_accepted(env.http_port))
        # the held sessions finish while the stuck clients are still there
        t = time.monotonic()
        held.finish_all(timeout=60)
        held_done = [s for s in held.sessions if s.t_done]
        held_s = time.monotonic() - t
        # then the stuck clients go, and a fresh client is served at once
        for s in socks:
            s.close()
        socks = []
        t = time.monotonic()
        try:
            st, _ct, _b = http_get(env.http_port, '/metrics', timeout=HTTP_TIMEOUT + 5)
            after = 'HTTP %d after %.1f s' % (st, time.monotonic() - t)
        except Exception as e:
            after = 'no answer (%s)' % type(e).__name__
        got = 0
        slow.settimeout(HTTP_TIMEOUT + 5)
        try:
            while True:
                d = slow.recv(65536)
                if not d:
                    break
                got += len(d)
        except OSError:
            pass
        say('%d sessions held in DATA (/transactions %d bytes); %d idle + %d half-request '
            'connections + 1 reader that never reads: %d accepted by the milter (limit %d), %d of '
            'the %d closed by it %.0f s later (timeout %d s)'
            % (in_data, size, silent_n, half_n, max_accepted, HTTP_CONNECTION_LIMIT, closed,
               silent_n + half_n, since, HTTP_TIMEOUT))
        say('meanwhile 10 messages: SMTP time median %.3f s, max %.3f s; eom - data in the timeline '
            'max %d ms; the %d held sessions finished in %.1f s; fresh GET /metrics: %s; after the '
            'stuck clients closed: %s; the slow reader got %d bytes in the end'
            % (pct(rtts, 0.5), max(rtts), max(gaps or [-1]), len(held_done), held_s, fresh, after, got))
        env.figures['http'] = (in_data, size, max_accepted, closed, since, max(rtts), max(gaps or [-1]),
                               len(held_done), fresh, after)
        eq(len(lines), 10, 'txn lines of the 10 messages')
        check(max(gaps) < 1000, 'eom - data up to %d ms' % max(gaps), 'under 1000 ms')
        check(max(rtts) < 1.0, 'a message took %.2f s' % max(rtts), 'under 1 s each')
        eq(len(held_done), held_n, 'held sessions finished')
        check(max_accepted <= HTTP_CONNECTION_LIMIT, '%d HTTP connections accepted' % max_accepted,
              'at most %d' % HTTP_CONNECTION_LIMIT)
        check(closed >= silent_n, '%d of the stuck connections closed %.0f s on' % (closed, since),
              'at least the %d idle ones closed at the %d s timeout' % (silent_n, HTTP_TIMEOUT))
        check(inst.milter_running(), 'the milter exited', 'running')
        check(fresh_ok, 'fresh GET /metrics: %s, with %d stuck connections (%d accepted at a time, '
              'each batch freed only at the %d s timeout, so a client queued behind them waits '
              'about %d s)' % (fresh, silent_n + half_n + 1, HTTP_CONNECTION_LIMIT, HTTP_TIMEOUT,
                               -(-(silent_n + half_n + 1) // HTTP_CONNECTION_LIMIT) * HTTP_TIMEOUT),
              'an answer within the %d s timeout' % HTTP_TIMEOUT)
    finally:
        for s in socks:
            s.close()
        if slow is not None:
            slow.close()
        held.close()


# ---- 8. an EOM packet carrying body bytes --------------------------------------------------------

def raw_transaction(env, helo, body_chunks, eom_bytes):
    """One transaction by the raw client; returns (negotiated no-reply names, the EOM
    replies, seconds the EOM reply took)."""
    with MilterClient(env.inst.milter_socket, timeout=5) as mc:
        ver, _act, proto = mc.negotiate()
        nr = mc.noreply_names()
        mc.macros('C', [('j', 'mx.test'), ('{daemon_name}', 'raw')])
        mc.connect('raw.client.test', '127.0.0.1', 40000 + _seq[0] % 20000)
        mc.helo(helo)
        mc.macros('M', [('i', 'RAWQID%d' % _seq[0])])
        mc.mail('raw@example.test')
        mc.rcpt('b@example.test')
        mc.data()
        mc.header('Subject', 'raw milter client')
        mc.header('From', '<raw@example.test>')
        mc.eoh()
        for chunk in body_chunks:
            mc.body(chunk)
        t = time.monotonic()
        try:
            replies = mc.eom(eom_bytes)
        except MilterError as e:
            raise Fail('got %s, want an answer to the EOM within 5 s (negotiated no-reply: %s)'
                       % (e, ','.join(nr) or 'none')) from None
        took = time.monotonic() - t
        mc.quit()
        check(not proto & SMFIP_NR_BODY, 'negotiated no-reply stages %s (protocol 0x%x)' % (nr, proto),
              'no SMFIP_NR_BODY: libmilter hands body bytes in an EOM packet to the body '
              'callback, and a no-reply there leaves the EOM unanswered')
        return ver, nr, replies, took


def case_eom_with_body(env):
    """A raw milter-protocol client: EOM carrying body bytes is answered, and so is a
    body chunk then an empty EOM; one txn line (accepted) for each."""
    inst = env.inst
    pid = env.normal_milter()
    body = b'Hello in the EOM packet itself.\r\n' * 3
    shown = []
    for what, chunks, eom in (('body in the EOM packet', [], body),
                              ('a body chunk, then an empty EOM', [body], b'')):
        helo = unique('raweom') + '.test'
        ver, nr, replies, took = raw_transaction(env, helo, chunks, eom)
        codes = ''.join(c for c, _d in replies)
        eq(codes[-1:], 'c', 'the final reply to the EOM (%s)' % what)
        check(set(codes[:-1]) <= set('imh'), 'replies %s' % codes, 'header edits, then continue')
        try:
            line = inst.wait_milter_line(lambda l: l.kind == 'txn' and l.get('helo') == helo, LOG_WAIT)
        except HarnessError:
            raise Fail('got no kind=txn line for helo=%s, want one (%s)' % (helo, what)) from None
        eq(line.get('outcome'), 'accepted', 'outcome (%s)' % what)
        eq(line.get('body_bytes'), str(len(body)), 'body_bytes (%s)' % what)
        eq(len([l for l in inst.milter_lines() if l.kind == 'txn' and l.get('helo') == helo]), 1,
           'txn lines (%s)' % what)
        shown.append('%s: replies %s in %.0f ms, txn line outcome=accepted body_bytes=%s'
                     % (what, ' '.join(codes), took * 1000, line.get('body_bytes')))
    say('protocol version %d, no-reply stages negotiated: %s' % (ver, ','.join(nr) or 'none'))
    for s in shown:
        say(s)
    check(inst.milter_running() and inst.milter_proc.pid == pid, 'the milter exited', 'running')
    env.figures['eom'] = (ver, nr, shown)


CASES = [
    case_killed_under_load,
    case_sessions_2000,
    case_fd_limit,
    case_out_of_memory,
    case_metrics_file_trouble,
    case_no_syslog_socket,
    case_stuck_syslog_socket,
    case_stuck_metrics_clients,
    case_eom_with_body,
]


def default_failalloc(milter_path):
    """tests/faults/failalloc.so in the milter's build directory."""
    return os.path.join(os.path.dirname(os.path.abspath(milter_path)), 'tests', 'faults', 'failalloc.so')


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description='smtptrace: faults, end to end')
    ap.add_argument('-k', metavar='SUBSTRING', help='run only the cases whose name contains this')
    ap.add_argument('-v', action='store_true', help='more notes and tracebacks')
    ap.add_argument('-n', '--sessions', type=int, default=SESSIONS_DEFAULT,
                    help='concurrent sessions in sessions_2000 (default %d)' % SESSIONS_DEFAULT)
    ap.add_argument('--failalloc', help='the LD_PRELOAD shim (default: beside the milter binary)')
    args = ap.parse_args(argv)
    set_verbose(args.v)
    t_all = time.monotonic()
    milter = os.environ.get('SMTPTRACE_MILTER') or os.path.join(REPO, 'build', 'smtptrace-milter')
    args.failalloc = os.path.abspath(args.failalloc or default_failalloc(milter))
    # our client sockets, and Postfix and the milter inherit this limit
    nofile = raise_nofile(4 * args.sessions + 1024)
    note('RLIMIT_NOFILE %s' % (nofile,))
    cases = [c for c in CASES if not args.k or args.k in c.__name__]
    http_port = free_port()
    main_cf = {
        'default_process_limit': args.sessions + 200,
        'smtpd_client_connection_count_limit': 0,
        'smtpd_client_connection_rate_limit': 0,
        'smtpd_client_message_rate_limit': 0,
    }
    inst = FaultInstance(milter=True, smtpd_timeout=SMTPD_TIMEOUT, timeout_tolerance=1, main_cf=main_cf)
    inst.start_timeout = 30
    # the text file's directory: its own temp dir (removed, remounted by metrics_file_trouble)
    prom_parent = tempfile.mkdtemp(prefix='smtptrace-faults-prom.')
    os.chmod(prom_parent, 0o755)
    prom_dir = os.path.join(prom_parent, 'prom')
    try:
        os.mkdir(prom_dir, 0o755)
        inst.milter_config_extra = (
            'stall: { warn_after = %d; repeat_every = 0; };\n'
            'metrics: { http_listen = "127.0.0.1:%d"; textfile = "%s"; textfile_interval = %d; };\n'
            % (SMTPD_TIMEOUT - 20, http_port, os.path.join(prom_dir, 'smtptrace.prom'), TEXTFILE_INTERVAL))
        inst.start()
        inst.wait_milter_listening(http_port)
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        status = start_failed('faults', e)
        inst.stop()
        shutil.rmtree(prom_parent, ignore_errors=True)
        return status
    env = Env(inst, args, http_port, prom_dir)
    try:
        passed, failed = run_cases(cases, env, (HarnessError, OSError, MetricsError, KeyError,
                                                ValueError, MilterError, sc.SMTPError,
                                                subprocess.SubprocessError))
    finally:
        if is_mountpoint(prom_dir):
            umount(prom_dir)
        inst.stop()
        shutil.rmtree(prom_parent, ignore_errors=True)
    print('faults: run time %.1f s' % (time.monotonic() - t_all))
    return summary('faults', passed, failed)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
