"""What tests/e2e/test_faults.py needs beside the harness: a milter that can be killed,
restarted and started under odd conditions, bulk SMTP load, and a raw milter client.

    from harness.faults import FaultInstance, MilterClient, BulkSessions, smtp_source
    inst = FaultInstance(main_cf={...}, milter_config_extra='...')
    inst.start()
    inst.kill_milter()                                  # SIGKILL; the unix socket stays
    inst.restart_milter(env={'LD_PRELOAD': so}, nofile=32, wrapper=[...])
    mark = inst.mark(); ... inst.milter_lines_since(mark), inst.maillog_since(mark)
    rc, out, secs = smtp_source(inst, sessions=10, messages=300, sender='k@example.test')
    b = BulkSessions(inst.smtp_port, 2000); b.open_all(); b.finish_all(); b.close()
    with MilterClient(inst.milter_socket) as m: m.negotiate(); m.connect(...); ...

FaultInstance is tests/harness/instance.py's Instance with only the milter's start
changed (a command wrapper, extra environment, a descriptor limit) and milter-only use
(postfix=False: no Postfix, no smtp-sink, for a raw milter client). Only processes
started here are stopped, by PID. Python 3 standard library only.
"""

import asyncio
import os
import re
import resource
import signal
import socket
import stat
import struct
import subprocess
import time

from .instance import Instance, HarnessError, _wait_listening
from .smtpclient import read_reply_async

SMTP_SOURCE = '/usr/sbin/smtp-source'
HOST = '127.0.0.1'


class FaultInstance(Instance):
    """Instance plus a milter that can be killed and restarted under other conditions.

    postfix         start Postfix and smtp-sink (default True); False: the milter only
    milter_wrapper  argv put before the milter's own (e.g. ['unshare', '--mount', ...])
    milter_env      extra environment for the milter (e.g. LD_PRELOAD)
    milter_nofile   RLIMIT_NOFILE (soft and hard) for the milter, set in the child
    """

    def __init__(self, *args, postfix=True, milter_wrapper=(), milter_env=None,
                 milter_nofile=None, **kw):
        Instance.__init__(self, *args, **kw)
        self.with_postfix = postfix
        self.milter_wrapper = list(milter_wrapper)
        self.milter_env = dict(milter_env or {})
        self.milter_nofile = milter_nofile
        self.milter_starts = 0

    # ---- without Postfix ------------------------------------------------------------

    def _start_sink(self):
        if self.with_postfix:
            Instance._start_sink(self)
        else:
            os.mkdir(self.sink_dir, 0o755)

    def _write_postfix_config(self):
        if self.with_postfix:
            Instance._write_postfix_config(self)

    def _start_postfix(self):
        if self.with_postfix:
            Instance._start_postfix(self)

    # ---- the milter -----------------------------------------------------------------

    def milter_command(self):
        return self.milter_wrapper + [self.milter_path, '-f', '-c', self.milter_config] + self.milter_args

    def _start_milter(self):
        if self._milter_log_fh is not None:
            self._milter_log_fh.close()
        self._milter_log_fh = open(self.milter_log_path, 'ab')
        env = dict(os.environ)
        env.update(self.milter_env)
        nofile = self.milter_nofile

        def limit():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.milter_proc = subprocess.Popen(
            self.milter_command(), stdin=subprocess.DEVNULL, stdout=self._milter_log_fh,
            stderr=subprocess.STDOUT, cwd=self.dir, env=env, preexec_fn=limit)
        self.milter_starts += 1
        deadline = time.monotonic() + self.start_timeout
        if self.milter_transport == 'inet':
            _wait_listening(self.milter_port, deadline, self.milter_proc, 'the milter')
            return
        self._wait_unix_socket(self.milter_socket, self.milter_proc, self.milter_log_path,
                               deadline, 'milter')

    def kill_milter(self, sig=signal.SIGKILL, timeout=10):
        """Send sig to the milter (by PID) and reap it; returns its exit status."""
        proc = self.milter_proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError('the milter (pid %d) did not exit within %d s of signal %d'
                               % (proc.pid, timeout, sig))
        return proc.returncode

    def stop_milter(self):
        """SIGTERM, as the harness does at stop (SIGKILL after 5 s); returns the status."""
        if self.milter_proc is None:
            return None
        rc = self._stop_proc(self.milter_proc, signal.SIGTERM, grace=15)
        return rc

    def restart_milter(self, wrapper=(), env=None, nofile=None, config_extra=None):
        """Stop the milter if it runs, then start a new one on the same socket with
        these conditions (the defaults: none). config_extra replaces the text appended
        to smtptrace.conf (None: keep it). Returns the new process's PID."""
        if self.milter_running():
            self.stop_milter()
        self.milter_wrapper = list(wrapper)
        self.milter_env = dict(env or {})
        self.milter_nofile = nofile
        if config_extra is not None:
            self.milter_config_extra = config_extra
            self._write_milter_config()
        self._start_milter()
        return self.milter_proc.pid

    def milter_pid(self):
        return self.milter_proc.pid if self.milter_running() else None

    # ---- logs since a point ----------------------------------------------------------

    def mark(self):
        """(milter log lines, maillog lines) so far: pass to *_since()."""
        return (len(self.milter_lines()), len(self.maillog_lines()))

    def milter_lines_since(self, mark):
        return self.milter_lines()[mark[0]:]

    def maillog_since(self, mark):
        return self.maillog_lines()[mark[1]:]

    def wait_milter_since(self, mark, pred, timeout=10, count=1):
        """Poll until `count` lines after mark satisfy pred; returns them all (maybe
        fewer on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [l for l in self.milter_lines_since(mark) if pred(l)]
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def delivered_where(self, pred):
        out = []
        for p in self.sink_files():
            try:
                from .parse import Message
                m = Message.from_file(p)
            except (OSError, ValueError):
                continue
            if pred(m):
                out.append(m)
        return out


# ---- what Postfix logged that means a client was refused ----------------------------------

_REFUSED_RX = re.compile(r'\bmilter-reject\b|\breject:|\bmilter-discard\b|status=(deferred|bounced)'
                         r'|\b[45]\d\d [45]\.\d{1,3}\.\d{1,3}\b')


def refusals(maillog_lines):
    """Maillog lines that say a client or a delivery was refused, tempfailed or deferred."""
    return [l.raw for l in maillog_lines if _REFUSED_RX.search(l.text)]


def milter_warnings(maillog_lines):
    """Postfix's warnings about the milter (connect refused, lost connection, timeouts)."""
    return [l.raw for l in maillog_lines if 'warning:' in l.text and 'milter' in l.text.lower()]


# ---- smtp-source ------------------------------------------------------------------------

def smtp_source(inst, sessions, messages, sender, recipient='b@example.test', length=1000,
                helo='source.faults.test', timeout=120, wait=True):
    """Postfix's smtp-source against the instance: `messages` messages over `sessions`
    parallel sessions, a new connection for each message. With wait, returns (exit
    status, output, seconds); else the Popen (stdout/stderr to a pipe)."""
    cmd = [SMTP_SOURCE, '-s', str(sessions), '-m', str(messages), '-l', str(length),
           '-M', helo, '-f', sender, '-t', recipient, '%s:%d' % (HOST, inst.smtp_port)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    proc.t0 = t0
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode('utf-8', 'replace'), time.monotonic() - t0


# ---- many SMTP sessions at once (asyncio) ----------------------------------------------

class Session:
    def __init__(self, i):
        self.i = i
        self.port = None
        self.writer = None
        self.reader = None
        self.t_start = None
        self.t_greeting = None
        self.t354 = None
        self.t_done = None
        self.final = None          # the reply to the final dot, e.g. "250 2.0.0 Ok: queued as X"
        self.error = None
        self.stage = 'connect'

    @property
    def qid(self):
        m = re.search(r'queued as ([0-9A-Za-z]+)', self.final or '')
        return m.group(1) if m else None


class BulkSessions:
    """n SMTP sessions driven by one asyncio loop: open_all() takes each to 354 (all at
    once: each waits for no other), finish_all() sends the message, the final dot and
    QUIT, close_all() drops whatever is still open. helo is a format with the index."""

    def __init__(self, port, n, helo='bulk%d.faults.test', sender='bulk@example.test',
                 recipient='b@example.test', body_size=600, hold=0.0, connect_limit=None):
        self.port = port
        self.n = n
        self.helo = helo
        self.sender = sender
        self.recipient = recipient
        self.body_size = body_size
        self.hold = hold
        self.sessions = [Session(i) for i in range(n)]
        self.loop = asyncio.new_event_loop()
        self.connect_limit = connect_limit

    def _message(self, s):
        head = ('From: <%s>\r\nTo: <%s>\r\nSubject: bulk %d\r\nMessage-ID: <bulk-%d-%d@faults.test>\r\n\r\n'
                % (self.sender, self.recipient, s.i, os.getpid(), s.i))
        line = b'The quick brown fox jumps over the lazy dog. 0123456789\r\n'
        body = line * max(1, self.body_size // len(line))
        return head.encode() + body

    async def _open(self, s, sem):
        async def go():
            s.t_start = time.monotonic()
            s.reader, s.writer = await asyncio.open_connection(HOST, self.port)
            s.port = s.writer.get_extra_info('sockname')[1]
            s.stage = 'the 220 greeting'
            await read_reply_async(s.reader, 220)
            s.t_greeting = time.monotonic()
            for cmd, code in (('EHLO ' + (self.helo % s.i), 250),
                              ('MAIL FROM:<%s>' % self.sender, 250),
                              ('RCPT TO:<%s>' % self.recipient, 250),
                              ('DATA', 354)):
                s.stage = 'the reply to ' + cmd.split()[0]
                s.writer.write(cmd.encode() + b'\r\n')
                await read_reply_async(s.reader, code)
            s.t354 = time.monotonic()
            s.stage = 'in DATA'
        try:
            if sem is not None:
                async with sem:
                    await go()
            else:
                await go()
        except Exception as e:       # recorded per session
            s.error = 'waiting for %s: %s %s' % (s.stage, type(e).__name__, e)

    async def _finish(self, s):
        if s.t354 is None or s.writer is None:
            return
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
            s.stage = 'the reply to the final dot'
            s.writer.write(self._message(s) + b'.\r\n')
            lines = await read_reply_async(s.reader, 250)
            s.final = lines[-1]
            s.t_done = time.monotonic()
            s.stage = 'the reply to QUIT'
            s.writer.write(b'QUIT\r\n')
            await read_reply_async(s.reader, 221)
            s.stage = 'done'
        except Exception as e:
            s.error = 'waiting for %s: %s %s' % (s.stage, type(e).__name__, e)
        finally:
            s.writer.close()

    async def _gather(self, coros, timeout):
        await asyncio.wait_for(asyncio.gather(*coros), timeout)

    def open_all(self, timeout=120):
        sem = asyncio.Semaphore(self.connect_limit) if self.connect_limit else None
        self.loop.run_until_complete(self._gather([self._open(s, sem) for s in self.sessions], timeout))
        return [s for s in self.sessions if s.t354 is not None]

    def finish_all(self, timeout=120):
        self.loop.run_until_complete(self._gather([self._finish(s) for s in self.sessions], timeout))
        return [s for s in self.sessions if s.t_done is not None]

    def run_through(self, timeout=120):
        """Each session all the way on its own: 354, hold, message, QUIT (no barrier)."""
        async def one(s):
            await self._open(s, None)
            await self._finish(s)
        self.loop.run_until_complete(self._gather([one(s) for s in self.sessions], timeout))
        return [s for s in self.sessions if s.t_done is not None]

    def close_all(self):
        async def close():
            for s in self.sessions:
                if s.writer is not None and not s.writer.is_closing():
                    s.writer.close()
            for s in self.sessions:
                if s.writer is not None:
                    try:
                        await asyncio.wait_for(s.writer.wait_closed(), 5)
                    except Exception:
                        pass
        self.loop.run_until_complete(close())

    def close(self):
        try:
            self.close_all()
        finally:
            self.loop.close()

    def errors(self):
        out = {}
        for s in self.sessions:
            if s.error:
                out[s.error] = out.get(s.error, 0) + 1
        return out


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ---- a raw milter-protocol client (Sendmail milter protocol, version 6) ----------------------

SMFIP_NR_CONN = 0x1000
SMFIP_NR_HELO = 0x2000
SMFIP_NR_MAIL = 0x4000
SMFIP_NR_RCPT = 0x8000
SMFIP_NR_DATA = 0x10000
SMFIP_NR_UNKN = 0x20000
SMFIP_NR_EOH = 0x40000
SMFIP_NR_BODY = 0x80000
SMFIP_NR_HDR = 0x80
SMFIP_SKIP = 0x400
SMFIP_RCPT_REJ = 0x800
SMFIP_HDR_LEADSPC = 0x100000
# What Postfix 3.7 offers (every step and no-reply flag, SKIP, RCPT_REJ, HDR_LEADSPC).
OFFER_PROTOCOL = 0x1FFFFF
OFFER_ACTIONS = 0x1FF
NR_NAMES = [(SMFIP_NR_CONN, 'NR_CONN'), (SMFIP_NR_HELO, 'NR_HELO'), (SMFIP_NR_MAIL, 'NR_MAIL'),
            (SMFIP_NR_RCPT, 'NR_RCPT'), (SMFIP_NR_DATA, 'NR_DATA'), (SMFIP_NR_UNKN, 'NR_UNKN'),
            (SMFIP_NR_HDR, 'NR_HDR'), (SMFIP_NR_EOH, 'NR_EOH'), (SMFIP_NR_BODY, 'NR_BODY')]
FINAL_REPLIES = b'acdrty4f'     # accept, continue, discard, reject, tempfail, replycode, ...


class MilterError(Exception):
    pass


class MilterClient:
    """Speaks the MTA's side of the milter protocol on a unix (or inet) socket.

    Each send_* method sends one command and, unless the negotiated no-reply flag says
    the milter will not answer, reads replies up to a final one (continue, accept, ...),
    returning [(code char, data bytes)]. A missing reply raises MilterError (timeout)."""

    def __init__(self, address, timeout=5):
        if isinstance(address, tuple):
            self.sock = socket.create_connection(address, timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        self.timeout = timeout
        self.protocol = 0
        self.actions = 0
        self.version = None
        self.log = []              # [('>', cmd) | ('<', reply code)]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _send(self, cmd, data=b''):
        self.log.append(('>', cmd))
        self.sock.sendall(struct.pack('>I', len(data) + 1) + cmd.encode() + data)

    def _recv_exact(self, n):
        buf = b''
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                raise MilterError('no reply within %g s (after %s)'
                                  % (self.timeout, ' '.join('%s%s' % x for x in self.log[-6:])))
            if not chunk:
                raise MilterError('the milter closed the connection (after %s)'
                                  % ' '.join('%s%s' % x for x in self.log[-6:]))
            buf += chunk
        return buf

    def read_packet(self):
        (n,) = struct.unpack('>I', self._recv_exact(4))
        if n < 1 or n > 1 << 24:
            raise MilterError('bad packet length %d' % n)
        body = self._recv_exact(n)
        code = body[:1]
        self.log.append(('<', code.decode('latin-1')))
        return code, body[1:]

    def read_until_final(self):
        got = []
        while True:
            code, data = self.read_packet()
            got.append((code.decode('latin-1'), data))
            if code in FINAL_REPLIES:
                return got

    def _command(self, cmd, data, noreply_flag):
        self._send(cmd, data)
        if noreply_flag and self.protocol & noreply_flag:
            return []
        return self.read_until_final()

    # ---- the commands ---------------------------------------------------------------

    def negotiate(self, version=6, actions=OFFER_ACTIONS, protocol=OFFER_PROTOCOL):
        self._send('O', struct.pack('>III', version, actions, protocol))
        code, data = self.read_packet()
        if code != b'O' or len(data) < 12:
            raise MilterError('negotiation reply %r %r' % (code, data[:40]))
        self.version, self.actions, self.protocol = struct.unpack('>III', data[:12])
        return self.version, self.actions, self.protocol

    def noreply_names(self):
        return [name for bit, name in NR_NAMES if self.protocol & bit]

    def macros(self, stage, pairs):
        """SMFIC_MACRO for the command letter `stage` (no reply)."""
        data = stage.encode()
        for k, v in pairs:
            data += k.encode() + b'\0' + v.encode() + b'\0'
        self._send('D', data)

    def connect(self, hostname, addr='127.0.0.1', port=40000):
        data = hostname.encode() + b'\0' + b'4' + struct.pack('>H', port) + addr.encode() + b'\0'
        return self._command('C', data, SMFIP_NR_CONN)

    def helo(self, name):
        return self._command('H', name.encode() + b'\0', SMFIP_NR_HELO)

    def mail(self, sender):
        return self._command('M', ('<%s>' % sender).encode() + b'\0', SMFIP_NR_MAIL)

    def rcpt(self, rcpt):
        return self._command('R', ('<%s>' % rcpt).encode() + b'\0', SMFIP_NR_RCPT)

    def data(self):
        return self._command('T', b'', SMFIP_NR_DATA)

    def header(self, name, value):
        return self._command('L', name.encode() + b'\0' + value.encode() + b'\0', SMFIP_NR_HDR)

    def eoh(self):
        return self._command('N', b'', SMFIP_NR_EOH)

    def body(self, chunk):
        return self._command('B', chunk, SMFIP_NR_BODY)

    def eom(self, chunk=b''):
        """SMFIC_BODYEOB, with body bytes in the packet when chunk is given; always
        answered (header edits, then a final reply)."""
        return self._command('E', chunk, 0)

    def quit(self):
        self._send('Q')


# ---- small helpers -----------------------------------------------------------------------

def unix_socket_state(path):
    """'missing', 'not a socket', 'listening' (a connect succeeds) or 'stale'; and the
    file's (inode, ctime in ns), or None. (A new socket may get the freed inode number
    back: the ctime tells the files apart.)"""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 'missing', None
    ident = (st.st_ino, st.st_ctime_ns)
    if not stat.S_ISSOCK(st.st_mode):
        return 'not a socket', ident
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return 'listening', ident
    except OSError:
        return 'stale', ident
    finally:
        s.close()


def mount_tmpfs(path, size='64k'):
    """Mount a small tmpfs at path; returns None, or the error text when not permitted."""
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s,mode=0755' % size, 'tmpfs', path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return None if r.returncode == 0 else (r.stdout.decode(errors='replace').strip() or 'exit %d' % r.returncode)


def umount(path):
    subprocess.run(['umount', path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def is_mountpoint(path):
    try:
        return os.path.ismount(path)
    except OSError:
        return False


def private_dev_wrapper(script_dir, log_kind):
    """argv that runs the milter in a private mount namespace whose /dev is a tmpfs with
    null, zero, random, urandom (bound from the real /dev) and a "log" that is: 'devnull'
    (/dev/null bound over it: a character device, connect() fails), 'none' (absent), or
    an absolute path bound over it (e.g. a datagram socket of the caller's that nobody
    reads).
    The wrapper execs the milter: its PID is the milter's."""
    script = os.path.join(script_dir, 'nodevlog.sh')
    with open(script, 'w') as fh:
        fh.write('#!/bin/sh\n'
                 '# written by tests/harness/faults.py: a private /dev for the milter\n'
                 'set -e\n'
                 'real=$(mktemp -d)\n'
                 'mount --bind /dev "$real"\n'
                 'mount -t tmpfs -o size=64k,mode=0755 devtmp /dev\n'
                 'for n in null zero random urandom; do\n'
                 '  : > /dev/$n; mount --bind "$real/$n" /dev/$n\n'
                 'done\n'
                 'case "$SMTPTRACE_DEVLOG" in\n'
                 'devnull) : > /dev/log; mount --bind "$real/null" /dev/log ;;\n'
                 '/*) : > /dev/log; mount --bind "$SMTPTRACE_DEVLOG" /dev/log ;;\n'
                 'esac\n'
                 'umount -l "$real"; rmdir "$real"\n'
                 'exec "$@"\n')
    os.chmod(script, 0o755)
    return ['env', 'SMTPTRACE_DEVLOG=%s' % log_kind, 'unshare', '--mount', '--propagation',
            'private', script]


def devlog_state(pid=None):
    """What /dev/log is, seen from the process pid's mount namespace (or ours)."""
    path = '/proc/%d/root/dev/log' % pid if pid else '/dev/log'
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 'absent'
    except OSError as e:
        return 'unreachable (%s)' % e.strerror
    if stat.S_ISSOCK(st.st_mode):
        return 'a socket'
    if stat.S_ISCHR(st.st_mode):
        return 'a character device (%d,%d)' % (os.major(st.st_rdev), os.minor(st.st_rdev))
    return 'mode %o' % st.st_mode


def stuck_connections(port, n, half=False):
    """n TCP connections to 127.0.0.1:port that send nothing (or, with half, the first
    half of a request line and no end of headers). Returns the sockets (still open)."""
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((HOST, port))
        except BlockingIOError:
            pass
        socks.append(s)
    if half:
        time.sleep(0.2)
        for s in socks:
            try:
                s.send(b'GET /metr')
            except OSError:
                pass
    return socks


def slow_reader(port, path, rcvbuf=2048):
    """A connection that sends a whole request and never reads the answer, with a small
    receive buffer so the server cannot hand it all over. Returns the socket."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect((HOST, port))
    s.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' % path).encode())
    return s


def closed_by_peer(s):
    """True when the server has closed (or reset) this connection: a peek reads EOF or
    an error. Does not consume data."""
    try:
        s.setblocking(False)
        data = s.recv(1, socket.MSG_PEEK)
        return data == b''
    except BlockingIOError:
        return False
    except OSError:
        return True
