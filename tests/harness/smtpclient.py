"""A small raw-socket SMTP client for the behaviours swaks cannot produce on cue:
pausing after 354, abandoning an upload, stalling until the server times out.

    c = SMTPClient('127.0.0.1', port)          # reads the 220 greeting
    c.ehlo('client.test'); c.mail('a@example.test'); c.rcpt('b@example.test')
    c.data()                                    # expects 354
    c.send_body(build_message(...))             # raw bytes, dot-stuffed by the caller's helper
    reply = c.end_data()                        # sends CRLF.CRLF, returns Reply(250, ...)
    c.quit()

Every reply is a Reply(code, lines); expect() raises SMTPError on an unexpected code.
`c.local_port` is the client's source port (Postfix logs it with smtpd_client_port_logging).
"""

import socket
import time


class SMTPError(Exception):
    def __init__(self, message, reply=None):
        Exception.__init__(self, message)
        self.reply = reply


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines

    @property
    def text(self):
        return '\n'.join(self.lines)

    def __str__(self):
        return self.text

    def __repr__(self):
        return 'Reply(%r, %r)' % (self.code, self.lines)


def build_message(headers=(), body='Hello from the smtptrace e2e tests.\n', size=None):
    """An RFC 5322 message as CRLF bytes. headers: [(name, value)]. size: pad the body
    with lines of text to about this many bytes."""
    lines = ['%s: %s' % (n, v) for n, v in headers] + ['']
    lines += body.rstrip('\n').split('\n')
    text = '\r\n'.join(lines) + '\r\n'
    if size is not None:
        filler = 'The quick brown fox jumps over the lazy dog. 0123456789\r\n'
        while len(text) < size:
            text += filler
    return text.encode('utf-8')


def dot_stuff(data):
    """Escape leading dots (RFC 5321 4.5.2) in CRLF-terminated bytes."""
    out = data.replace(b'\r\n.', b'\r\n..')
    if out.startswith(b'.'):
        out = b'.' + out
    return out


class SMTPClient:
    def __init__(self, host, port, timeout=30, read_greeting=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        # No Nagle: the final dot must not wait ~40 ms for the ACK of the body (that
        # would show up in the milter's upload_ms).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.local_port = self.sock.getsockname()[1]
        self._buf = b''
        self.transcript = []         # [('>', line) | ('<', line)]
        self.closed = False
        self.greeting = self.read_reply() if read_greeting else None

    # ---- low level ----------------------------------------------------------------

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8', 'surrogateescape')
        self.sock.sendall(data)

    def send_line(self, line):
        if isinstance(line, str):
            line = line.encode('utf-8', 'surrogateescape')
        shown = line if len(line) <= 120 else line[:100] + b'...(%d bytes)' % len(line)
        self.transcript.append(('>', shown.decode('utf-8', 'replace')))
        self.send_raw(line + b'\r\n')

    def _read_line(self, timeout=None):
        """One line without CRLF, or None on EOF."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        while b'\n' not in self._buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b'\n')
        return line.rstrip(b'\r').decode('utf-8', 'replace')

    def read_reply(self, timeout=None):
        """Read one (possibly multi-line) reply. Raises SMTPError on EOF before any line."""
        lines = []
        while True:
            line = self._read_line(timeout)
            if line is None:
                if lines:
                    break
                raise SMTPError('connection closed by server')
            self.transcript.append(('<', line))
            lines.append(line)
            if len(line) < 4 or line[3] != '-':
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            raise SMTPError('malformed reply %r' % lines)
        return Reply(code, lines)

    def command(self, line):
        self.send_line(line)
        return self.read_reply()

    @staticmethod
    def expect(reply, *codes):
        if reply.code not in codes:
            raise SMTPError('got %d, want %s: %s' % (reply.code, '/'.join(map(str, codes)), reply.text), reply)
        return reply

    # ---- commands -----------------------------------------------------------------

    def ehlo(self, name):
        return self.expect(self.command('EHLO ' + name if isinstance(name, str) else b'EHLO ' + name), 250)

    def helo(self, name):
        return self.expect(self.command('HELO ' + name), 250)

    def mail(self, addr):
        return self.expect(self.command('MAIL FROM:<%s>' % addr), 250)

    def rcpt(self, addr, codes=(250,)):
        return self.expect(self.command('RCPT TO:<%s>' % addr), *codes)

    def rset(self):
        return self.expect(self.command('RSET'), 250)

    def data(self):
        """DATA; expects 354. Returns the 354 reply."""
        return self.expect(self.command('DATA'), 354)

    def bdat(self, data, last=False, timeout=None):
        """BDAT (RFC 3030 CHUNKING): "BDAT <size>[ LAST]" then exactly those bytes, no
        dot-stuffing and no final dot. Returns the reply (250 for a chunk; for LAST, the
        reply to the whole message)."""
        if isinstance(data, str):
            data = data.encode('utf-8', 'surrogateescape')
        self.send_line('BDAT %d%s' % (len(data), ' LAST' if last else ''))
        self.transcript.append(('>', '(%d bytes of chunk)' % len(data)))
        self.send_raw(data)
        return self.read_reply(timeout)

    def send_body(self, data):
        """Send message bytes (dot-stuffed here) without the terminating dot."""
        data = dot_stuff(data)
        self.transcript.append(('>', '(%d bytes of message)' % len(data)))
        self.send_raw(data)

    def end_data(self, timeout=None):
        """Send the final <CRLF>.<CRLF> (the body must end with CRLF) and read the reply."""
        self.send_line(b'.')
        return self.read_reply(timeout)

    def quit(self):
        try:
            r = self.command('QUIT')
        except (OSError, SMTPError):
            r = None
        self.close()
        return r

    def close(self):
        if not self.closed:
            try:
                self.sock.close()
            finally:
                self.closed = True

    def wait_for_close(self, timeout=60):
        """Send nothing; read until the server closes. Returns (text received, seconds)."""
        start = time.monotonic()
        got = self._buf
        self._buf = b''
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SMTPError('server did not close within %ss (got %r)' % (timeout, got))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except ConnectionResetError:
                chunk = b''
            if not chunk:
                break
            got += chunk
        elapsed = time.monotonic() - start
        text = got.decode('utf-8', 'replace')
        for line in text.splitlines():
            self.transcript.append(('<', line))
        self.close()
        return text, elapsed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


# ---- whole scenarios ------------------------------------------------------------------

class Result:
    """What a scenario did: the client's source port, every reply, and timings."""

    def __init__(self, client):
        self.local_port = client.local_port
        self.client = client
        self.replies = {}
        self.final = None          # the reply to the final dot, or to nothing
        self.server_said = None    # what a stalled client got before the close
        self.elapsed = None

    @property
    def transcript(self):
        return self.client.transcript


def _open(host, port, helo, mail_from, rcpts, timeout=30):
    c = SMTPClient(host, port, timeout=timeout)
    res = Result(c)
    res.replies['ehlo'] = c.ehlo(helo)
    res.replies['mail'] = c.mail(mail_from)
    res.replies['rcpt'] = [c.command('RCPT TO:<%s>' % r) for r in rcpts]
    return c, res


def send_with_pause(host, port, helo, mail_from, rcpts, message, pause=0.0, quit=True):
    """Full transaction; after 354, sleep `pause` seconds, then send the whole message
    and the final dot. Returns Result with final = reply to the dot."""
    c, res = _open(host, port, helo, mail_from, rcpts)
    try:
        res.replies['data'] = c.data()
        t0 = time.monotonic()
        if pause:
            time.sleep(pause)
        c.send_body(message)
        res.final = c.end_data()
        res.elapsed = time.monotonic() - t0
        if quit:
            c.quit()
    finally:
        c.close()
    return res


def abandon_after_354(host, port, helo, mail_from, rcpts, message, part=0.5, delay=0.2):
    """After 354 send the first `part` (fraction) of the message, wait `delay` seconds,
    then close the socket without the final dot."""
    c, res = _open(host, port, helo, mail_from, rcpts)
    try:
        res.replies['data'] = c.data()
        c.send_body(message[:max(1, int(len(message) * part))])
        time.sleep(delay)
    finally:
        c.close()
    return res


def stall_after_354(host, port, helo, mail_from, rcpts, message, part=0.5, timeout=60):
    """After 354 send part of the message, then say nothing until the server closes.
    Returns Result with server_said (e.g. "421 4.4.2 mx.test Error: timeout exceeded")
    and elapsed = seconds from the last byte sent to the close."""
    c, res = _open(host, port, helo, mail_from, rcpts)
    try:
        res.replies['data'] = c.data()
        c.send_body(message[:max(1, int(len(message) * part))])
        res.server_said, res.elapsed = c.wait_for_close(timeout)
    finally:
        c.close()
    return res


async def read_reply_async(reader, code):
    """One reply from an asyncio StreamReader (continuation lines joined into the list);
    ConnectionError when the server closed or the last line is not `code`. For tests
    that hold hundreds of sessions at once in one event loop."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError('connection closed by the server after %r' % lines)
        line = line.rstrip(b'\r\n').decode('utf-8', 'replace')
        lines.append(line)
        if len(line) < 4 or line[3] != '-':
            break
    if not lines[-1].startswith(str(code)):
        raise ConnectionError('got %r, want %d' % (lines, code))
    return lines
