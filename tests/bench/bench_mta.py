#!/usr/bin/env python3
"""make bench-mta: what smtptrace costs Postfix, measured with smtp-source.

Three configurations, each a private loopback Postfix + smtp-sink from
tests/harness/instance.py:

  no milter            Postfix alone (the baseline)
  smtptrace            the milter with the harness's config (default settings,
                       header on, log lines to the harness's milter.log)
  smtptrace+metrics    the same plus metrics.http_listen on a free loopback port,
                       scraped (GET /metrics) once a second while it runs, and
                       stall watching made eager: stall { warn_after = 1;
                       repeat_every = 1; } (the watchdog always runs; this makes
                       it arm a 1 s deadline per DATA and report any upload slower
                       than that)

Options (environment):

  BENCH_READER=SECONDS  also poll GET /transactions (every open session: what
                        smtptrace-top shows) every SECONDS (e.g. 0.5) during each run of
                        every configuration that has metrics.http_listen; its polls, the
                        rows they listed and how long they took are printed
  BENCH_MILTER_BEFORE=PATH  another smtptrace-milter binary (e.g. one built before a
                        change): "before" copies of the two milter configurations run
                        with it, interleaved with the others in the same rounds, so a
                        change's cost is read within one run (the machine swings +-30 %
                        between runs)

The milter is attached as README recommends: smtpd_milters = { inet:127.0.0.1:PORT,
default_action=accept } (the shipped socket default is loopback TCP;
BENCH_MILTER_TRANSPORT=unix uses the harness's unix socket instead).

Each instance is started once and kept for every round. Restarting per round
would add a cold start (Postfix spawning smtpd, cleanup and smtp processes,
the milter's first threads) to every measurement, spend ~1 s per start in a
3-minute budget, and hide how the milter's CPU and RSS evolve over thousands of
messages. Instead every configuration gets an untimed warm-up run first. Idle
instances cost nothing measurable while another one runs.

Rounds: in every round each configuration gets one run, interleaved, the order
rotated by one per round, so a slow spell of the (shared, noisy) machine hits
all configurations rather than one. MILTER-FACTS.md: figures swing +-30 %
between runs; compare within one run.

One run: smtp-source -s SESSIONS -m MESSAGES -l SIZE (one message per
connection, like an MX receiving from many clients; no -d) against
127.0.0.1:smtp_port. smtp-source without -A exits non-zero at the first reply
that is not 2xx, and it sends the next message of a session only after the
250 to the final dot, so its wall time is the time for Postfix to ACCEPT all
messages (250 after DATA): that is the figure in the table (messages/s). Then,
untimed, the bench waits until smtp-sink holds one file per message and
Postfix's queue is empty (everything relayed to the sink), so no delivery
backlog leaks into the next configuration's run; the end-to-end rate (start to
last message in the sink) is shown too. A configuration that does not deliver
all its messages makes the exit status 1; nothing else is asserted.

CPU: the milter's utime+stime from /proc/PID/stat (all its threads) before and
after each run, per 1,000 messages; "machine" is the busy time of both CPUs from
/proc/stat over the run (smtp-source, Postfix, smtp-sink, the milter, this
script), per 1,000 messages. RSS: the milter's VmRSS after the last round and
its VmHWM (peak).

Environment: BENCH_MESSAGES (2000), BENCH_ROUNDS (3), BENCH_SESSIONS (20),
BENCH_SIZE (4096 bytes of body), BENCH_WARMUP (200), BENCH_MILTER_TRANSPORT
(inet), BENCH_READER, BENCH_MILTER_BEFORE (above). Run as root (Postfix). Ends
with "bench-mta: done".
"""
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, 'tests'))

from harness.instance import HarnessError, Instance, free_port  # noqa: E402

SMTP_SOURCE = '/usr/sbin/smtp-source'
MESSAGES = int(os.environ.get('BENCH_MESSAGES', '2000'))
ROUNDS = int(os.environ.get('BENCH_ROUNDS', '3'))
SESSIONS = int(os.environ.get('BENCH_SESSIONS', '20'))
SIZE = int(os.environ.get('BENCH_SIZE', '4096'))
WARMUP = int(os.environ.get('BENCH_WARMUP', '200'))
TRANSPORT = os.environ.get('BENCH_MILTER_TRANSPORT', 'inet')
READER = float(os.environ.get('BENCH_READER', '0') or 0)
BEFORE = os.environ.get('BENCH_MILTER_BEFORE', '')
PAUSE = 0.5      # seconds between runs, after sync
CLK_TCK = os.sysconf('SC_CLK_TCK')
QUEUE_SUBDIRS = ('maildrop', 'incoming', 'active', 'deferred', 'hold', 'corrupt')

# Fair to every configuration: no injection throttling (the harness sets it too),
# enough smtpd processes for SESSIONS (default_process_limit 100 unless more are
# needed), no DNS anywhere (the harness: no peername lookup, DNS disabled,
# numeric bracketed relayhost). smtpd_timeout 60 s: the harness's 5 s is for
# its stall tests; under load a session must not time out.
MAIN_CF = {
    'in_flow_delay': '0',
    'default_process_limit': str(max(100, SESSIONS * 2)),
    'smtpd_peername_lookup': 'no',
    'smtp_dns_support_level': 'disabled',
}
SMTPD_TIMEOUT = 60


class Config:
    def __init__(self, name, milter, extra='', http_port=None, milter_path=None):
        self.name = name
        self.milter = milter
        self.extra = extra
        self.http_port = http_port
        self.milter_path = milter_path   # None: the harness's ($SMTPTRACE_MILTER)
        self.inst = None
        self.rates = []          # accepted messages/s per round
        self.e2e = []            # delivered messages/s per round
        self.milter_cpu = []     # seconds per run
        self.machine_cpu = []    # seconds per run
        self.sent = 0            # messages sent so far (warm-up included)
        self.failed = []         # not all delivered: exit 1
        self.warnings = []       # figures suspect, printed only
        self.scrapes = 0
        self.last_metrics = ''
        self.polls = []          # (seconds, rows listed, sessions open) per /transactions poll
        self.poll_errors = 0


def proc_cpu(pid):
    """utime + stime of a process (all threads) in seconds."""
    with open('/proc/%d/stat' % pid) as fh:
        fields = fh.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_mem(pid):
    """(VmRSS, VmHWM) in KiB."""
    out = {}
    with open('/proc/%d/status' % pid) as fh:
        for line in fh:
            if line.startswith(('VmRSS:', 'VmHWM:')):
                k, v = line.split(':', 1)
                out[k] = int(v.split()[0])
    return out.get('VmRSS', 0), out.get('VmHWM', 0)


def machine_busy():
    """Busy CPU seconds of the whole machine, from /proc/stat (not idle, not iowait)."""
    with open('/proc/stat') as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)) / CLK_TCK


def sink_count(inst):
    try:
        return sum(1 for e in os.scandir(inst.sink_dir) if e.is_file())
    except FileNotFoundError:
        return 0


def queue_count(inst):
    n = 0
    for sub in QUEUE_SUBDIRS:
        for _root, _dirs, files in os.walk(os.path.join(inst.queue_dir, sub)):
            n += len(files)
    return n


def maillog_tail(inst, lines=5):
    try:
        with open(inst.maillog_path, errors='replace') as fh:
            return ''.join(fh.readlines()[-lines:])
    except OSError as e:
        return '(%s)' % e


class Scraper(threading.Thread):
    """GET /metrics once a second while a run of the metrics configuration lasts."""

    def __init__(self, cfg):
        super().__init__(daemon=True)
        self.cfg = cfg
        self.stop_evt = threading.Event()

    def run(self):
        url = 'http://127.0.0.1:%d/metrics' % self.cfg.http_port
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    self.cfg.last_metrics = r.read().decode('utf-8', 'replace')
                    self.cfg.scrapes += 1
            except OSError as e:
                self.cfg.warnings.append('scrape %s: %s' % (url, e))
            if self.stop_evt.wait(1.0):
                return


class Reader(threading.Thread):
    """GET /transactions every READER seconds while a run lasts (what smtptrace-top does)."""

    def __init__(self, cfg):
        super().__init__(daemon=True)
        self.cfg = cfg
        self.stop_evt = threading.Event()

    def run(self):
        url = 'http://127.0.0.1:%d/transactions' % self.cfg.http_port
        while True:
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    doc = json.loads(r.read().decode('utf-8'))
                # "open": every session (a milter before it listed only those in DATA)
                self.cfg.polls.append((time.monotonic() - t0, doc.get('count', 0),
                                       doc.get('open')))
            except (OSError, ValueError) as e:
                self.cfg.poll_errors += 1
                self.cfg.warnings.append('poll %s: %s' % (url, e))
            if self.stop_evt.wait(max(0.0, READER - (time.monotonic() - t0))):
                return


def one_run(cfg, count, tag):
    """Send `count` messages through cfg's instance; wait until all are in the sink.
    Returns (accept_seconds, delivered_seconds, milter_cpu_s, machine_cpu_s), or None."""
    inst = cfg.inst
    pid = inst.milter_proc.pid if cfg.milter else None
    expect = cfg.sent + count
    scraper = Scraper(cfg) if cfg.http_port else None
    reader = Reader(cfg) if cfg.http_port and READER > 0 else None
    argv = [SMTP_SOURCE, '-4', '-s', str(SESSIONS), '-m', str(count), '-l', str(SIZE),
            '-M', 'client.bench.test', '-f', 'sender@bench.test', '-t', 'rcpt@example.test',
            '-N', '127.0.0.1:%d' % inst.smtp_port]
    # Start from a quiet machine: flush the dirty pages the previous run left
    # (smtp-sink's files) so their writeback is not charged to this run.
    os.sync()
    time.sleep(PAUSE)
    cpu0 = proc_cpu(pid) if pid else 0.0
    busy0 = machine_busy()
    if scraper:
        scraper.start()
    if reader:
        reader.start()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=max(60, count / 10))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out += b'\n(smtp-source timed out: killed)'
    t_accept = time.monotonic() - t0
    sent_ok = proc.returncode == 0
    cfg.sent = expect          # what Postfix may have queued; the sink count is checked below
    # Relaying to the local sink keeps up within a second or two; 60 s is generous.
    # After a failed smtp-source, only what it got accepted can arrive: 5 s.
    deadline = time.monotonic() + (60 if sent_ok else 5)
    while True:
        n_sink = sink_count(inst)
        if n_sink >= expect and queue_count(inst) == 0:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    t_deliv = time.monotonic() - t0
    busy1 = machine_busy()
    cpu1 = proc_cpu(pid) if pid else 0.0
    if scraper:
        scraper.stop_evt.set()
        scraper.join()
    if reader:
        reader.stop_evt.set()
        reader.join()
    n_sink = sink_count(inst)
    if not sent_ok or n_sink != expect:
        cfg.failed.append('%s %s: smtp-source exit %s, %d of %d messages in the sink, %d in the '
                          'queue\n  smtp-source: %s\n  maillog tail:\n%s'
                          % (cfg.name, tag, proc.returncode, n_sink - (expect - count), count,
                             queue_count(inst), out.decode(errors='replace').strip()[-400:],
                             maillog_tail(inst)))
        return None
    if cfg.milter and not inst.milter_running():
        cfg.warnings.append('%s %s: the milter is no longer running (Postfix went on '
                            'without it: default_action=accept)' % (cfg.name, tag))
    return t_accept, t_deliv, cpu1 - cpu0, busy1 - busy0


def count_log_kinds(inst):
    counts = {}
    try:
        with open(inst.milter_log_path, 'rb') as fh:
            for line in fh:
                i = line.find(b' kind=')
                if i >= 0:
                    k = line[i + 6:].split(b' ', 1)[0].decode(errors='replace')
                    counts[k] = counts.get(k, 0) + 1
    except OSError:
        pass
    return counts


def metric_value(text, name):
    total = None
    for line in text.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in (' ', '{'):
            try:
                total = (total or 0) + float(line.rsplit(None, 1)[1])
            except (ValueError, IndexError):
                pass
    return total


def main():
    if os.geteuid() != 0:
        print('bench-mta: must run as root (it starts private Postfix instances)', file=sys.stderr)
        return 1
    if not os.access(SMTP_SOURCE, os.X_OK):
        print('bench-mta: %s missing (apt-get install postfix)' % SMTP_SOURCE, file=sys.stderr)
        return 1
    t_start = time.monotonic()
    def metrics_extra(port):
        return ('stall: { warn_after = 1; repeat_every = 1; };\n'
                'metrics: { http_listen = "127.0.0.1:%d"; };\n' % port)

    http_port = free_port()
    configs = [
        Config('no milter', False),
        Config('smtptrace', True),
        Config('smtptrace+metrics+stall', True, metrics_extra(http_port), http_port),
    ]
    if BEFORE:
        if not os.access(BEFORE, os.X_OK):
            print('bench-mta: BENCH_MILTER_BEFORE=%s is not an executable' % BEFORE, file=sys.stderr)
            return 1
        before_port = free_port()
        configs += [
            Config('before: smtptrace', True, milter_path=BEFORE),
            Config('before: +metrics+stall', True, metrics_extra(before_port), before_port,
                   milter_path=BEFORE),
        ]
    print('bench-mta: smtp-source -s %d -m %d -l %d (one message per connection), %d rounds, '
          'configurations interleaved (order rotated per round), instances kept across rounds, '
          'milter over %s; %d CPUs'
          % (SESSIONS, MESSAGES, SIZE, ROUNDS, TRANSPORT, os.cpu_count() or 0))
    milter_bin = os.environ.get('SMTPTRACE_MILTER') or os.path.join(TOP, 'build', 'smtptrace-milter')
    print('milter: %s%s' % (milter_bin, '; before: %s' % BEFORE if BEFORE else ''))
    if READER > 0:
        print('a reader polls GET /transactions every %.2f s in each run of the configurations '
              'with metrics' % READER)
    print('rate = messages / smtp-source wall time = all accepted (250 after DATA); '
          'each run then waits until smtp-sink has them all')
    rc = 0
    try:
        for cfg in configs:
            cfg.inst = Instance(milter=cfg.milter, milter_transport=TRANSPORT,
                                smtpd_timeout=SMTPD_TIMEOUT, main_cf=MAIN_CF,
                                milter_config_extra=cfg.extra, milter_path=cfg.milter_path)
            cfg.inst.start()
        if WARMUP > 0:
            for cfg in configs:
                if one_run(cfg, WARMUP, 'warm-up') is None:
                    break
        for rnd in range(ROUNDS):
            if any(c.failed for c in configs):
                break
            order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
            line = []
            for cfg in order:
                r = one_run(cfg, MESSAGES, 'round %d' % (rnd + 1))
                if r is None:
                    break
                t_acc, t_del, mcpu, bcpu = r
                cfg.rates.append(MESSAGES / t_acc)
                cfg.e2e.append(MESSAGES / t_del)
                cfg.milter_cpu.append(mcpu)
                cfg.machine_cpu.append(bcpu)
                line.append('%s %.0f/s' % (cfg.name, MESSAGES / t_acc))
            print('round %d: %s' % (rnd + 1, ', '.join(line)), flush=True)

        mem = {}
        kinds = {}
        for cfg in configs:
            if cfg.milter and cfg.inst.milter_running():
                mem[cfg.name] = proc_mem(cfg.inst.milter_proc.pid)
                kinds[cfg.name] = count_log_kinds(cfg.inst)
    finally:
        for cfg in configs:
            if cfg.inst is not None:
                cfg.inst.stop()

    base = statistics.median(configs[0].rates) if configs[0].rates else None
    base_e2e = statistics.median(configs[0].e2e) if configs[0].e2e else None
    print()
    hdr = ('%-24s' % 'configuration' + ''.join('%9s' % ('round%d' % (i + 1)) for i in range(ROUNDS))
           + '%9s %6s %9s %6s %10s %11s %13s' % ('median', 'ratio', 'e2e med', 'ratio',
                                                    'milter CPU', 'machine CPU', 'milter RSS'))
    print(hdr)
    print('%-24s' % '' + ' ' * 9 * ROUNDS + '%9s %6s %9s %6s %10s %11s %13s'
          % ('msg/s', '', 'msg/s', '', 's/1k msg', 's/1k msg', 'MiB (peak)'))
    for cfg in configs:
        rates = ''.join('%9.0f' % r for r in cfg.rates) + ' ' * 9 * (ROUNDS - len(cfg.rates))
        med = statistics.median(cfg.rates) if cfg.rates else float('nan')
        ratio = med / base if base else float('nan')
        e2e = statistics.median(cfg.e2e) if cfg.e2e else float('nan')
        e2e_ratio = e2e / base_e2e if base_e2e else float('nan')
        n = MESSAGES * len(cfg.rates)
        mach = sum(cfg.machine_cpu) / n * 1000 if n else float('nan')
        if cfg.milter:
            mcpu = '%10.3f' % (sum(cfg.milter_cpu) / n * 1000) if n else '%10s' % '?'
            rss, hwm = mem.get(cfg.name, (0, 0))
            rss_s = '%6.1f (%4.1f)' % (rss / 1024, hwm / 1024) if rss else '%13s' % 'gone'
        else:
            mcpu, rss_s = '%10s' % '-', '%13s' % '-'
        print('%-24s%s%9.0f %6.2f %9.0f %6.2f %s %11.3f %s' % (cfg.name, rates, med, ratio, e2e,
                                                               e2e_ratio, mcpu, mach, rss_s))
    print('ratio: median / no milter\'s median; e2e: messages / time until the last one was '
          'in smtp-sink; CPU: busy seconds per 1,000 messages')
    print()
    for cfg in configs:
        if cfg.name in kinds:
            k = kinds[cfg.name]
            print('%s: milter log %s' % (cfg.name, ', '.join('%s=%d' % kv for kv in sorted(k.items()))
                                        or 'empty'))
        if cfg.http_port:
            tx = metric_value(cfg.last_metrics, 'smtptrace_transactions_total')
            print('%s: %d scrapes of /metrics, last smtptrace_transactions_total %s'
                  % (cfg.name, cfg.scrapes, '%.0f' % tx if tx is not None else '?'))
        if cfg.polls:
            took = sorted(p[0] for p in cfg.polls)
            opened = [p[2] for p in cfg.polls if p[2] is not None]
            print('%s: %d polls of /transactions (%d failed): %.1f ms median, %.1f ms max; '
                  'rows listed %.1f on average, %d at most%s'
                  % (cfg.name, len(cfg.polls), cfg.poll_errors, took[len(took) // 2] * 1000,
                     took[-1] * 1000, sum(p[1] for p in cfg.polls) / len(cfg.polls),
                     max(p[1] for p in cfg.polls),
                     '; sessions open up to %d' % max(opened) if opened else
                     ' (only those in DATA: no "open")'))
    print('messages per configuration: %d timed + %d warm-up; wall %.0f s'
          % (MESSAGES * min(len(c.rates) for c in configs), WARMUP, time.monotonic() - t_start))
    for cfg in configs:
        for w in cfg.warnings[:5]:
            print('WARNING: %s' % w)
        for f in cfg.failed:
            print('FAILED: %s' % f)
            rc = 1
    if rc:
        print('bench-mta: a configuration did not deliver all its messages')
        return 1
    print('bench-mta: done')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except HarnessError as e:
        print('bench-mta: harness: %s' % e, file=sys.stderr)
        sys.exit(1)
