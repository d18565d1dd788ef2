"""Pure parsers for what the e2e tests inspect: milter log lines, Postfix maillog lines,
messages captured by smtp-sink, and the X-SMTP-Trace header value.

No I/O here except reading a file path handed in; everything else takes strings.
"""

import json
import re

# "smtptrace[1234]: 4ABCDEF12: kind=txn session=... key=value ..."
_PREFIX_RE = re.compile(r'^(?P<ident>[^\s\[\]]+)\[(?P<pid>\d+)\]: (?P<rest>.*)$')
_QID_RE = re.compile(r'^(?P<qid>[0-9A-Za-z]+): (?P<rest>.*)$')
_KEY_RE = re.compile(r'[A-Za-z0-9_.\-]+')
_SIMPLE_ESCAPES = {'"': '"', '\\': '\\', 'r': '\r', 'n': '\n', 't': '\t',
                   'a': '\a', 'b': '\b', 'f': '\f', 'v': '\v', '0': '\0', "'": "'"}


class ParseError(ValueError):
    """A line or header that does not follow the documented format."""


def _decode_quoted(text, pos):
    """Decode a C-escaped double-quoted string starting at text[pos] == '"'.

    Returns (value, position after the closing quote). \\xHH becomes chr(0xHH).
    """
    assert text[pos] == '"'
    out = []
    i = pos + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return ''.join(out), i + 1
        if c == '\\':
            if i + 1 >= len(text):
                break
            e = text[i + 1]
            if e == 'x':
                hexpart = text[i + 2:i + 4]
                if len(hexpart) != 2 or not all(h in '0123456789abcdefABCDEF' for h in hexpart):
                    raise ParseError('bad \\x escape at column %d' % i)
                out.append(chr(int(hexpart, 16)))
                i += 4
                continue
            if e in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[e])
                i += 2
                continue
            raise ParseError('unknown escape \\%s at column %d' % (e, i))
        out.append(c)
        i += 1
    raise ParseError('unterminated quoted value starting at column %d' % pos)


def parse_kv(text):
    """Parse 'k=v k2="quoted \\"v\\"" ...' into an ordered dict.

    Values are bare (no space) or double-quoted with C escapes. Raises ParseError on
    anything else, so a test can tell a malformed line from a missing field.
    """
    fields = {}
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] == ' ':
            i += 1
        if i >= n:
            break
        m = _KEY_RE.match(text, i)
        if not m or m.end() >= n or text[m.end()] != '=':
            raise ParseError('expected key=value at column %d: %r' % (i, text[i:i + 40]))
        key = m.group(0)
        i = m.end() + 1
        if i < n and text[i] == '"':
            value, i = _decode_quoted(text, i)
            if i < n and text[i] != ' ':
                raise ParseError('junk after quoted value of %s at column %d' % (key, i))
        else:
            j = text.find(' ', i)
            if j < 0:
                j = n
            value = text[i:j]
            if '"' in value or '\\' in value:
                raise ParseError('unquoted value of %s contains a quote or backslash' % key)
            i = j
        if key in fields:
            raise ParseError('duplicate key %s' % key)
        fields[key] = value
    return fields


def _json_value_as_text(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, dict):
        return ','.join('%s:%s' % (k, _json_value_as_text(x)) for k, x in v.items())
    if isinstance(v, list):
        return ','.join(_json_value_as_text(x) for x in v)
    return str(v)


class LogLine:
    """One line of the milter's stderr log.

    ident/pid from the "smtptrace[PID]: " prefix, qid ("NOQUEUE" or a queue id) when the
    line has one, fields = the key=value pairs (or the JSON object's members), kind =
    fields['kind'] when present. Lines that are not key=value (start-up messages) have
    fields == {} and parse_error set when they looked like kv but were malformed.
    """

    def __init__(self, raw):
        self.raw = raw
        self.ident = None
        self.pid = None
        self.qid = None
        self.fields = {}
        self.parse_error = None
        self.json = None
        rest = raw
        m = _PREFIX_RE.match(raw)
        if m:
            self.ident = m.group('ident')
            self.pid = int(m.group('pid'))
            rest = m.group('rest')
        self.text = rest
        if rest.startswith('{'):
            try:
                obj = json.loads(rest)
            except ValueError as e:
                self.parse_error = 'bad JSON: %s' % e
                return
            if isinstance(obj, dict):
                # Same shape as the kv format: strings; a nested object such as the
                # timeline becomes "name:ms,name:ms"; true/false/null as in JSON.
                self.json = obj
                self.fields = {k: _json_value_as_text(v) for k, v in obj.items()}
                qkey = 'queue_id' if 'queue_id' in obj else 'qid'
                if qkey in obj:
                    # the kv format's "NOQUEUE" is null (or "") in JSON
                    self.qid = obj[qkey] or 'NOQUEUE'
            return
        m = _QID_RE.match(rest)
        if m and '=' not in m.group('qid'):
            self.qid = m.group('qid')
            rest = m.group('rest')
        if 'kind=' not in rest:
            return
        try:
            self.fields = parse_kv(rest)
        except ParseError as e:
            self.parse_error = str(e)

    @property
    def kind(self):
        return self.fields.get('kind')

    def get(self, key, default=None):
        return self.fields.get(key, default)

    def __getitem__(self, key):
        return self.fields[key]

    def __contains__(self, key):
        return key in self.fields

    def timeline(self):
        """timeline=connect:0,helo:12,... -> {'connect': 0, 'helo': 12, ...} (ordered)."""
        return parse_timeline(self.fields.get('timeline', ''))

    def __repr__(self):
        return 'LogLine(%r)' % self.raw


def parse_timeline(text):
    out = {}
    if not text:
        return out
    # "connect:0,helo:12" in a log line; "connect:0, helo:12" in the header
    for item in text.split(','):
        name, sep, ms = item.strip().partition(':')
        if not sep:
            raise ParseError('bad timeline item %r' % item)
        out[name] = int(ms)
    return out


# ---- Postfix maillog ----------------------------------------------------------------

# "Nov 30 11:39:00 mx postfix/smtpd[123]: 4ABCDEF12: client=unknown[127.0.0.1]:40000"
# (Postfix 3.7 maillog_file uses this syslog-like layout; newer ones may use ISO dates.)
_MAILLOG_RE = re.compile(r'^(?P<stamp>.*?) (?P<host>\S+) (?P<prog>[\w./-]+)\[(?P<pid>\d+)\]: (?P<text>.*)$')


class MaillogLine:
    def __init__(self, raw):
        self.raw = raw
        m = _MAILLOG_RE.match(raw)
        self.prog = m.group('prog') if m else None
        self.text = m.group('text') if m else raw
        m2 = re.match(r'^([0-9A-F]{6,}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{10,}): (.*)$', self.text)
        self.qid = m2.group(1) if m2 else None
        self.msg = m2.group(2) if m2 else self.text

    def __repr__(self):
        return 'MaillogLine(%r)' % self.raw


# ---- Messages captured by smtp-sink -------------------------------------------------

class Field:
    """One header field: name, value (unfolded: the line breaks of folding removed, the
    leading whitespace of continuation lines kept) and the physical lines as delivered."""

    def __init__(self, name, value, lines):
        self.name = name
        self.value = value
        self.lines = lines

    def __repr__(self):
        return 'Field(%r, %r)' % (self.name, self.value)


def split_fields(lines):
    fields = []
    for line in lines:
        if line[:1] in (' ', '\t') and fields:
            f = fields[-1]
            f.lines.append(line)
            f.value += line
            continue
        name, sep, value = line.partition(':')
        if not sep:
            raise ParseError('not a header line: %r' % line[:80])
        fields.append(Field(name, value[1:] if value.startswith(' ') else value, [line]))
    return fields


class Message:
    """A message file written by smtp-sink -d.

    smtp-sink puts its own records first (X-Client-Addr, X-Client-Proto, X-Helo-Args,
    X-Mail-Args, X-Rcpt-Args..., then a three-line "Received: ... (smtp-sink) ..." header),
    followed by the message as Postfix relayed it. sink_fields are smtp-sink's records,
    fields the message's own headers in delivered order.
    """

    def __init__(self, path, data):
        self.path = path
        self.raw = data
        text = data.decode('utf-8', 'surrogateescape').replace('\r\n', '\n')
        head, sep, body = text.partition('\n\n')
        self.body = body
        all_fields = split_fields(head.split('\n')) if head else []
        cut = 0
        for idx, f in enumerate(all_fields):
            if f.name.lower() == 'received' and '(smtp-sink)' in f.value:
                cut = idx + 1
                break
        self.sink_fields = all_fields[:cut]
        self.fields = all_fields[cut:]

    @classmethod
    def from_file(cls, path):
        with open(path, 'rb') as fh:
            return cls(path, fh.read())

    def names(self):
        return [f.name for f in self.fields]

    def get_all(self, name):
        return [f for f in self.fields if f.name.lower() == name.lower()]

    def get(self, name):
        found = self.get_all(name)
        return found[0].value if found else None

    def sink(self, name):
        return [f.value for f in self.sink_fields if f.name.lower() == name.lower()]

    def headers(self):
        """[(name, unfolded value), ...] in delivered order."""
        return [(f.name, f.value) for f in self.fields]

    def __repr__(self):
        return 'Message(%r, %r)' % (self.path, self.names())


# ---- X-SMTP-Trace header value --------------------------------------------------------

def _unfold_ws(value):
    """RFC 5322 unfolding: drop each line break that is followed by white space."""
    return re.sub(r'\r?\n(?=[ \t])', '', value)


def _percent_decode(text):
    """%HH to the byte; the bytes read as UTF-8 (surrogateescape for the rest)."""
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == '%' and re.fullmatch(r'[0-9A-Fa-f]{2}', text[i + 1:i + 3] or ''):
            raw.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(text[i].encode('utf-8', 'surrogateescape'))
            i += 1
    return raw.decode('utf-8', 'surrogateescape')


def parse_trace_header(value):
    """Parse "mx.test; session=...; txn=1; client=\"...\"; ..." (already unfolded or not).

    Returns (authserv_id, {key: value}). Quoted-strings are read as RFC 5322 does
    (quoted-pairs undone), then percent-decoded: the milter writes every byte outside
    printable ASCII, and '%' itself, as %HH, so the value comes back exactly (as a str
    decoded from UTF-8 with surrogateescape for other bytes).
    """
    text = _unfold_ws(value).strip()
    sid, sep, rest = text.partition(';')
    authserv_id = sid.strip()
    items = {}
    i = 0
    n = len(rest)
    while i < n:
        while i < n and rest[i] in ' \t':
            i += 1
        if i >= n:
            break
        m = _KEY_RE.match(rest, i)
        if not m or m.end() >= n or rest[m.end()] != '=':
            raise ParseError('expected key=value at %r' % rest[i:i + 40])
        key = m.group(0)
        i = m.end() + 1
        if i < n and rest[i] == '"':
            out = []
            i += 1
            while True:
                if i >= n:
                    raise ParseError('unterminated quoted-string for %s' % key)
                c = rest[i]
                if c == '"':
                    i += 1
                    break
                if c == '\\' and i + 1 < n:
                    out.append(rest[i + 1])      # RFC 5322 quoted-pair
                    i += 2
                    continue
                out.append(c)
                i += 1
            val = _percent_decode(''.join(out))
        else:
            j = i
            while j < n and rest[j] not in '; \t':
                j += 1
            val = rest[i:j]
            i = j
        while i < n and rest[i] in ' \t':
            i += 1
        if i < n:
            if rest[i] != ';':
                raise ParseError('expected ";" after %s, got %r' % (key, rest[i:i + 20]))
            i += 1
        if key in items:
            raise ParseError('duplicate item %s' % key)
        items[key] = val
    return authserv_id, items
