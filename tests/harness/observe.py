"""What the stall and concurrency tests watch: the milter's HTTP listener (/metrics,
/transactions), its Prometheus text, its log as it grows, and its process.

    from harness.observe import http_get, Metrics, LogFollower, proc_status_kib
    status, ctype, body = http_get(port, '/metrics')
    m = Metrics(body.decode())              # parsed with prometheus_client's own parser
    m.value('smtptrace_stalls_total')       # 0.0 when the sample is absent (default)
    m.value('smtptrace_transactions_total', outcome='accepted')
    f = LogFollower(inst.milter_log_path)   # new complete lines since the last poll,
    for t, line in f.poll(): ...            # each with the monotonic time it was first seen

Metrics needs python3-prometheus-client (Debian's /usr/bin/python3 has it); the rest is
the standard library. Nothing here starts or stops a process.
"""

import http.client
import json
import os
import threading
import time

from .parse import LogLine


def http_get(port, path, method='GET', body=None, host='127.0.0.1', timeout=10):
    """One HTTP request on a fresh connection. Returns (status, content type, body bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {}
        if body is not None:
            headers['Content-Type'] = 'text/plain'
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, r.getheader('Content-Type', ''), data
    finally:
        conn.close()


def get_json(port, path='/transactions', timeout=10):
    status, ctype, data = http_get(port, path, timeout=timeout)
    if status != 200:
        raise ValueError('GET %s: HTTP %d %r' % (path, status, data[:200]))
    return json.loads(data.decode('utf-8'))


class MetricsError(ValueError):
    pass


class Metrics:
    """A Prometheus text document parsed by prometheus_client.parser.

    The whole document must parse, and every sample line in it must come out of the
    parser as one sample (so a line the parser skipped or merged is an error too).
    samples: {(sample name, ((label, value), ...) sorted): float}.
    """

    def __init__(self, text):
        from prometheus_client.parser import text_string_to_metric_families
        self.text = text
        try:
            self.families = list(text_string_to_metric_families(text))
        except Exception as e:       # the parser raises ValueError and friends
            raise MetricsError('prometheus_client cannot parse the document: %s: %s'
                               % (type(e).__name__, e)) from None
        self.samples = {}
        n = 0
        for fam in self.families:
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                if key in self.samples:
                    raise MetricsError('sample %s%s appears twice' % (s.name, dict(key[1])))
                self.samples[key] = float(s.value)
                n += 1
        lines = [l for l in text.split('\n') if l.strip() and not l.startswith('#')]
        if n != len(lines):
            raise MetricsError('%d sample lines but the parser gave %d samples' % (len(lines), n))

    def family_names(self):
        return {f.name for f in self.families}

    def has(self, name, **labels):
        return (name, tuple(sorted(labels.items()))) in self.samples

    def value(self, name, default=0.0, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def labelled(self, name):
        """{labels dict as a sorted tuple: value} of every sample with this name."""
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}


def get_metrics(port, timeout=10):
    status, ctype, data = http_get(port, '/metrics', timeout=timeout)
    if status != 200:
        raise MetricsError('GET /metrics: HTTP %d %r' % (status, data[:200]))
    return Metrics(data.decode('utf-8'))


class LogFollower:
    """Reads a growing log file incrementally; each complete line is parsed once (LogLine)
    and stamped with time.monotonic() of the poll that first saw it.

    poll() returns the new [(t_seen, LogLine)]; lines() all seen so far. With start(),
    a daemon thread polls every `interval` s (lines() and wait() are then thread-safe)."""

    def __init__(self, path, interval=0.02):
        self.path = path
        self.interval = interval
        self._offset = 0
        self._partial = b''
        self._seen = []
        self._lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()

    def poll(self):
        with self._lock:
            try:
                with open(self.path, 'rb') as fh:
                    fh.seek(self._offset)
                    data = fh.read()
            except FileNotFoundError:
                return []
            now = time.monotonic()
            self._offset += len(data)
            data = self._partial + data
            cut = data.rfind(b'\n') + 1
            self._partial = data[cut:]
            new = [(now, LogLine(l.decode('utf-8', 'surrogateescape')))
                   for l in data[:cut].split(b'\n')[:-1]]
            self._seen.extend(new)
            return new

    def lines(self):
        with self._lock:
            return list(self._seen)

    def wait(self, pred, timeout, count=1, interval=None):
        """Poll until `count` seen lines satisfy pred(line); returns [(t_seen, line)]
        (all matches so far, maybe fewer than count on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            if self._thread is None:
                self.poll()
            found = [(t, l) for t, l in self.lines() if pred(l)]
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            time.sleep(interval or self.interval)

    def start(self):
        def run():
            while not self._stop.is_set():
                self.poll()
                self._stop.wait(self.interval)
        self._thread = threading.Thread(target=run, name='log-follower', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._thread = None
        self.poll()


def proc_status_kib(pid, keys=('VmRSS', 'VmHWM')):
    """{key: kibibytes} from /proc/PID/status (missing keys left out)."""
    out = {}
    with open('/proc/%d/status' % pid) as fh:
        for line in fh:
            name, _, rest = line.partition(':')
            if name in keys:
                out[name] = int(rest.split()[0])
    return out


def proc_threads(pid):
    with open('/proc/%d/status' % pid) as fh:
        for line in fh:
            if line.startswith('Threads:'):
                return int(line.split()[1])
    return None


def proc_fds(pid):
    try:
        return len(os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return None
