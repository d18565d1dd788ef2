#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets to tests/fuzz/corpus/TARGET/.

    python3 tests/fuzz/make_corpus.py          (from the top of the tree)

The seeds come from the tree's own data: reply lines from tests/data/
replies.tsv, configuration files (conf/, tests/unit/test_config.c's cases),
real Postfix, Sendmail and smtptrace logs from tests/data/postfix-3.7/ and
sendmail-8.17/. For the two
targets that read a binary encoding (fuzz_render, fuzz_callbacks), the
Encoder below writes what their fz_* reads expect, in the same order: if a
target changes the order of its reads, change its writer here and run the
script again (old seeds stay valid inputs, only less to the point).
Files already in the corpus that this script does not write (reproducers
of fixed bugs, moved there from tests/fuzz/crashes/) are kept.
"""

import os
import shutil

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(TOP, "tests", "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


class Encoder:
    """The bytes that make tests/fuzz/fuzz_common.c's fz_* return given values."""

    def __init__(self):
        self.b = bytearray()

    def u8(self, v):
        self.b.append(v & 0xFF)

    def u16(self, v):
        self.u8(v >> 8)
        self.u8(v)

    def u32(self, v):
        self.u16(v >> 16)
        self.u16(v & 0xFFFF)

    def bool(self, v):
        self.u8(1 if v else 0)

    def below(self, n, v):
        assert 0 <= v < n
        if n <= 256:
            self.u8(v)
        elif n <= 65536:
            self.u16(v)
        else:
            self.u32(v)

    def str(self, s, maxlen):
        b = s.encode() if isinstance(s, str) else s
        assert len(b) <= maxlen and b"\0" not in b
        if len(b) < 248:
            self.u8(len(b))
        else:
            self.u8(248)
            self.u16(len(b) - 248)
        self.b += b

    # fuzz_render.c
    def str_or_null(self, s, maxlen):
        if s is None:
            self.u8(0)
        else:
            self.u8(1)
            self.str(s, maxlen)

    def time(self, t):
        if t is None:
            self.u8(0)
        else:
            self.u8(1)
            self.u32(t)
            self.u8(0)

    # fuzz_callbacks.c
    def arg(self, s, cap):
        if s is None:
            self.u8(0)
        else:
            self.u8(2)
            self.str(s, cap - 1)


# ---- fuzz_reply -----------------------------------------------------------------

def reply_seeds():
    with open(os.path.join(TOP, "tests", "data", "replies.tsv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t")[0] for line in f][1:]
    step = max(1, len(rows) // 24)
    for i, row in enumerate(rows[::step][:24]):
        write("fuzz_reply", "replies-%02d" % i, row)
    write("fuzz_reply", "multi-line", "550-5.1.1 The email account that you tried to reach\n"
          "550-5.1.1 does not exist. Please try\n550 5.1.1 double-checking the recipient's\0"
          "452 4.2.2 garbage after")
    write("fuzz_reply", "code-later", "550-Mailbox unavailable\n550 5.7.1 policy\0\n\n")
    write("fuzz_reply", "qmail", "Remote host said: 553 sorry, that domain isn't in my list "
          "(#5.7.1)\0said: 250 ok")
    write("fuzz_reply", "three-digit-subject", "550 5.100.100 <a@b>: nope\r\0timeout after DATA")
    write("fuzz_reply", "events", "Dec  1 10:00:00 mx postfix/smtpd[1]: lost connection after "
          "END-OF-MESSAGE from x[192.0.2.1]\0dsn=4.4.2")


# ---- fuzz_config ----------------------------------------------------------------

CONFIGS = {
    "full": "socket = \"inet:8891@127.0.0.1\";\nsocket_umask = \"022\";\n"
            "log: { facility = \"local3\"; format = \"json\"; ident = \"st\"; };\n"
            "header: { name = \"X-Trace\"; authserv_id = \"mx.example\";"
            " skip_authenticated = true; enable = false; explain = true; };\n"
            "mta: { data_timeout = 10; timeout_tolerance = 0; };\n"
            "stall: { warn_after = 9; repeat_every = 0; };\n"
            "metrics: { textfile = \"/var/lib/x.prom\"; textfile_interval = 5;"
            " http_listen = \"[::1]:9754\"; };\n",
    "unix": "socket = \"unix:/var/spool/postfix/smtptrace/milter.sock\";\nuser = \"smtptrace:mail\";\n"
            "pidfile = \"/run/smtptrace.pid\";\nmilter_timeout = 10;\n",
    "listen4": "metrics: { http_listen = \"127.0.0.1:9754\"; };\nsocket = \"inet6:8895@::1\";\n",
    "unknown-key": "nosuch = 1;\n",
    "unknown-section": "extra: { a = 1; };\nlog: { header: { a = 1; }; };\n",
    "types": "socket = 5;\nheader: {\n  enable = \"yes\";\n};\nmta: { data_timeout = \"300\"; };\n",
    "ranges": "mta: { data_timeout = 0; };\nstall: { warn_after = 86401; repeat_every = -1; };\n",
    "choices": "log: { format = \"xml\"; facility = \"kern\"; };\n",
    "umask": "socket_umask = \" -0\";\n",
    "syntax": "socket = \"/tmp/x\";\nuser = ;\n",
    "header-name": "header: { name = \"X Trace\"; authserv_id = \"a;b\"; };\n",
    "cross-key": "mta: {\n data_timeout = 5;\n timeout_tolerance = 5;\n};\nstall: { warn_after = 4; };\n",
    "cross-key-absent": "mta: { data_timeout = 1; };\n",
    "sockets": "inet:99999@127.0.0.1\nunix:run/x.sock\ninet:80@\ninet:80\n/abs/path\n"
               "local:/x\ntcp:25\ninet6:0025@[::1]\n",
    "listens": "127.0.0.1:9754\n[::1]:80\n127.0.0.1:+80\n::1:80\n[127.0.0.1]:1\n1.2.3.4:65536\n",
    "long-string": "log: { ident = \"" + "i" * 70 + "\"; };\nuser = \"" + "u" * 300 + "\";\n",
    "escapes": "user = \"a\\\"b\\\\c\\x41\\n\";\n",
    "int64": "milter_timeout = 9223372036854775807L;\nmta: { data_timeout = 0x10; };\n",
}


def config_seeds():
    shutil.copy(os.path.join(TOP, "conf", "smtptrace.conf"),
                os.path.join(OUT, "fuzz_config", "smtptrace.conf"))
    for name, text in CONFIGS.items():
        write("fuzz_config", name, text)


# ---- fuzz_logreader -------------------------------------------------------------

LOGS = [
    # (directory under tests/data, file, flags, chunk seed, largest chunk, window/cap)
    ("postfix-3.7", "normal.log", 0x00, 1, 6, 0xFF),
    ("postfix-3.7", "timeout_after_354.log", 0x01, 7, 2, 0x80),
    ("postfix-3.7", "refused_then_second_transaction.log", 0x08, 3, 3, 0x03),
    ("postfix-3.7", "no_valid_recipients.log", 0x02, 9, 0, 0x05),
    ("postfix-3.7", "header_checks_reject.log", 0x21, 5, 1, 0x10),
    ("postfix-3.7", "over_size_limit.log", 0x10, 2, 4, 0xFF),
    ("postfix-3.7", "before_milter_rejects_then_mail.log", 0x09, 11, 5, 0x21),
    ("postfix-3.7", "refused_then_rset.log", 0x04, 4, 4, 0xFE),
    ("postfix-3.7", "bdat.log", 0x0A, 13, 3, 0x07),
    ("postfix-3.7", "milter.log", 0x08, 17, 5, 0x02),
    ("sendmail-8.17", "normal.log", 0x08, 19, 5, 0xFF),
    ("sendmail-8.17", "timeout_after_354.log", 0x00, 23, 3, 0x09),
    ("sendmail-8.17", "all_refused_by_access_db.log", 0x0B, 29, 6, 0x80),
    ("sendmail-8.17", "hostile_helo.log", 0x01, 31, 2, 0x11),
]


def logreader_seeds():
    for sub, name, flags, seed, chunk, window in LOGS:
        path = os.path.join(TOP, "tests", "data", sub, name)
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            lines = [line for line in f if not line.startswith(b"#")]
        write("fuzz_logreader", "%s-%s" % (sub.split("-")[0], name.replace(".log", "")),
              bytes([flags, seed, chunk, window]) + b"".join(lines))
    write("fuzz_logreader", "no-final-newline",
          bytes([0, 1, 0, 0]) + b"Dec  1 mx postfix/smtpd[1]: timeout after DATA from x[192.0.2.1]")
    # issue 8 item 7: --log --json gave a long line's last piece as "input"
    write("fuzz_logreader", "long-line-json-input",
          bytes([5, 0, 6, 0]) + b"550 5.1.1 <a@b>: User unknown\n")


# ---- fuzz_render ----------------------------------------------------------------

def outcome_count():
    """OUTCOME__COUNT: the entries of milter/outcome.def."""
    with open(os.path.join(TOP, "milter", "outcome.def"), encoding="utf-8") as f:
        return sum(1 for line in f if line.startswith("OUTCOME("))


def render_seed(client, addr, helos, sender, rcpts, qid, phases, outcome, value, max_):
    e = Encoder()
    e.str("5f1c0a9e3b7d2c41", 30)
    e.time(1000)
    e.bool(True)                        # connected
    e.str_or_null(client, 400)
    e.str_or_null(addr, 100)
    e.bool(True)
    e.u16(41234)
    e.time(1000)
    e.below(4, len(helos))
    for h in helos:
        e.str_or_null(h, 400)
        e.time(1012)
    e.bool(True)                        # TLS at HELO
    e.str_or_null("TLSv1.3", 60)
    e.bool(False)                       # no TLS first seen at MAIL
    e.below(3, 1)                       # one MAIL
    e.str_or_null(sender, 400)
    e.str_or_null(None, 400)            # no AUTH
    e.time(1031)
    e.below(13, len(rcpts))
    for addr_, status, text in rcpts:
        e.str_or_null(addr_, 400)
        e.bool(status is not None)
        if status is not None:
            e.str_or_null(status, 50)
        e.str_or_null(text, 400)
        e.time(1045)
    e.str_or_null(qid, 50)
    for at in phases:
        e.bool(at is not None)
        if at is not None:
            e.time(at)
    e.u16(3)                            # headers
    e.u32(1500)                         # header bytes
    e.u32(10244)                        # body bytes
    e.below(4, 0)
    e.u8(7)                             # stall warnings
    e.u8(1)                             # unknown commands
    e.below(outcome_count(), outcome % outcome_count())
    e.time(3301)
    # the stall view
    e.str("5f1c0a9e3b7d2c41", 30)
    e.u8(1)
    e.str(qid or "", 50)
    e.str("unknown[192.0.2.7]:41234", 200)
    e.str(helos[-1] if helos else "", 200)
    e.str(sender[:200], 200)
    e.u16(1)
    e.time(1060)
    e.time(45000)
    e.u8(2)
    e.str("mx.example.org", 300)        # authserv-id
    e.below(80, 12)                     # "X-SMTP-Trace"
    e.bool(True)                        # header.explain
    e.str_or_null(value, 1500)
    e.below(8, 0)
    e.below(2000, max_)
    e.below(600, 17)
    return bytes(e.b)


def render_seeds():
    phases = [1000, 1012, 1031, 1045, 1060, 3280, 3280, 3281, 3301, None, None]
    stalled = [1000, 1012, 1031, 1045, 1060, None, None, None, None, 301000, 301000]
    write("fuzz_render", "accepted", render_seed(
        "[192.0.2.7]", "192.0.2.7", ["client.example"], "<a@example.org>",
        [("<b@example.org>", None, None),
         ("<blocked@example.org>", "5.7.1", "Recipient address rejected: Access denied")],
        "4Xb2Lq0Zz1", phases, 0, "plain", 512))
    write("fuzz_render", "utf8", render_seed(
        "mx.exämple.org", "2001:db8::1", ["jös.example", "ünïcode.example"],
        "<jörg@exämple.org>", [("<ü@b>", "5.1.1", "Usér unknown \"quoted\"\t\\")],
        "4Xb2Lq0Zz2", stalled, 3, "caf\u00e9 \u20ac 😀 " * 20, 37))
    write("fuzz_render", "hostile", render_seed(
        "a" * 399, "192.0.2.255", ["\x01\x02; x=\"y\"\r\n\tz", "%41 %zz %"],
        "<" + "s" * 300 + ">", [("<r%d@x>" % i, "5.%d.%d" % (i, i), "t=" * 100) for i in range(12)],
        "Q:\"\\", stalled, 6, b"\xff\xfe" * 700 + b"\x80", 1499))
    write("fuzz_render", "empty", render_seed(
        "", "", [], "", [], None, [None] * 11, 9, None, 0))


# ---- fuzz_callbacks ------------------------------------------------------------

OP = {"negotiate": 0, "connect": 1, "helo": 2, "mail": 3, "rcpt": 4, "data": 5, "header": 6,
      "eoh": 7, "body": 8, "eom": 9, "abort": 10, "close": 11, "unknown": 12, "macro": 13,
      "ms": 15, "tens": 16, "due": 17, "transactions": 18, "metrics": 19, "refuse": 20,
      "reload": 21, "seconds": 22}
MACRO = {"i": 0, "{rcpt_mailer}": 1, "{rcpt_host}": 2, "{rcpt_addr}": 3, "{auth_authen}": 4,
         "{tls_version}": 5, "j": 6}


class Script(Encoder):
    def config(self, header=True, json=False, data_timeout=300, tolerance=2, warn=30, repeat=60,
               other_name=False):
        self.below(4, 1 if header else 0)
        self.bool(False)                # skip_authenticated
        self.bool(True)                 # explain
        self.bool(json)
        self.below(600, data_timeout - 1)
        self.below(data_timeout, tolerance)
        self.below(120, warn - 1)
        self.below(120, repeat)
        self.below(4, 0 if other_name else 1)

    def op(self, c, name, *args, **kw):
        self.below(3, c)
        self.below(23, OP[name])
        getattr(self, "op_" + name, lambda *a, **k: None)(*args, **kw)

    def op_negotiate(self):
        self.bool(True)
        self.bool(True)
        self.u32(0)
        self.u32(0)

    def op_connect(self, host, ip4=None, port=25):
        self.arg(host, 300)
        self.below(5, 1)
        self.u16(port)
        self.u32(ip4 or 0xC0000207)

    def op_helo(self, name):
        self.arg(name, 300)

    def op_mail(self, addr):
        self.below(6, 3)
        self.arg(addr, 300)

    op_rcpt = op_mail

    def op_header(self, name, value):
        self.arg(value, 1100)
        names = ["Subject", "X-SMTP-Trace", "x-smtp-trace", "X-Other-Trace", "Received"]
        if name in names:
            self.below(8, names.index(name))
        else:
            self.below(8, 5)
            self.arg(name, 300)

    def op_body(self, n):
        self.bool(False)
        self.u16(n)
        self.below(16, 1)

    def op_unknown(self, cmd):
        self.arg(cmd, 300)

    def op_macro(self, name, value):
        k = MACRO[name]
        self.below(7, k)
        if value is None:
            self.below(8, 0)
        elif k == 1 and value in ("error", "smtp", "local", ""):
            self.below(8, ["error", "smtp", "local", ""].index(value) + 1)
        else:
            self.below(8, 7)
            self.str(value, 300)

    def op_ms(self, n):
        self.u8(n)

    def op_tens(self, n):
        self.u16(n)

    op_seconds = op_tens

    def op_transactions(self, limit):
        self.below(4, limit)

    def op_refuse(self, on):
        self.below(4, 0 if on else 1)

    def op_reload(self, **kw):
        self.config(**kw)


def session(s, c, rcpts=(("<b@example.org>", None),), content=True, eom=True):
    s.op(c, "negotiate")
    s.op(c, "connect", "client.example", 0xC0000207 + c, 40000 + c)
    s.op(c, "helo", "client.example")
    s.op(c, "macro", "i", "4Xb2Lq0Zz%d" % c)
    s.op(c, "mail", "<a@example.org>")
    for addr, status in rcpts:
        s.op(c, "macro", "{rcpt_mailer}", "error" if status else "smtp")
        if status:
            s.op(c, "macro", "{rcpt_host}", status)
            s.op(c, "macro", "{rcpt_addr}", "Recipient address rejected: Access denied")
        s.op(c, "rcpt", addr)
    s.op(c, "data")
    if content:
        s.op(c, "header", "Subject", "hi")
        s.op(c, "header", "X-SMTP-Trace", "forged; outcome=accepted")
        s.op(c, "eoh")
        s.op(c, "body", 100)
    if eom:
        s.op(c, "eom")


def callbacks_seeds():
    s = Script()
    s.config()
    s.u32(1000)
    session(s, 0)
    s.op(0, "close")
    write("fuzz_callbacks", "accepted", bytes(s.b))

    s = Script()
    s.config(json=True, data_timeout=10, tolerance=1, warn=2, repeat=1)
    s.u32(5000)
    session(s, 0, content=False, eom=False)
    s.op(0, "tens", 300)
    s.op(0, "due")
    s.op(0, "transactions", 0)
    s.op(0, "metrics")
    s.op(0, "tens", 200)
    s.op(0, "due")
    s.op(0, "abort")
    s.op(0, "close")
    write("fuzz_callbacks", "stalled-timeout", bytes(s.b))

    s = Script()
    s.config(warn=3, repeat=0)
    s.u32(0)
    session(s, 0, rcpts=(("<x@example.org>", "5.7.1"), ("<y@example.org>", "5.1.1")),
            content=False, eom=False)
    s.op(0, "abort")
    s.op(0, "mail", "<a2@example.org>")
    s.op(0, "rcpt", "<b@example.org>")
    s.op(0, "data")
    s.op(0, "tens", 500)
    s.op(0, "due")
    s.op(0, "abort")
    s.op(0, "helo", "again.example")
    s.op(0, "unknown", "XCLIENT")
    s.op(0, "close")
    write("fuzz_callbacks", "rejects-refused", bytes(s.b))

    s = Script()
    s.config(warn=1, repeat=2)
    s.u32(77)
    for c in range(3):
        session(s, c, content=False, eom=False)
    s.op(1, "tens", 150)
    s.op(0, "due")
    s.op(2, "header", "Subject", "late")
    s.op(1, "reload", warn=5, json=True, other_name=True)
    s.op(0, "tens", 300)
    s.op(0, "due")
    s.op(0, "transactions", 2)
    s.op(2, "eoh")
    s.op(2, "refuse", True)
    s.op(2, "eom")
    s.op(1, "negotiate")
    s.op(0, "metrics")
    write("fuzz_callbacks", "three-at-once", bytes(s.b))

    s = Script()
    s.config(header=True)
    s.u32(9)
    s.op(0, "connect", None)
    s.op(0, "macro", "{tls_version}", "TLSv1.3")
    s.op(0, "macro", "{auth_authen}", "jörg")
    s.op(0, "mail", "<jörg@exämple.org>")
    s.op(0, "rcpt", None)
    s.op(0, "data")
    s.op(0, "data")
    s.op(0, "body", 0)
    s.op(0, "eom")
    s.op(0, "eom")
    s.op(0, "close")
    s.op(0, "close")
    write("fuzz_callbacks", "odd-order", bytes(s.b))


def main():
    for t in ("fuzz_render", "fuzz_callbacks", "fuzz_reply", "fuzz_config", "fuzz_logreader"):
        os.makedirs(os.path.join(OUT, t), exist_ok=True)
    reply_seeds()
    config_seeds()
    logreader_seeds()
    render_seeds()
    callbacks_seeds()
    for t in sorted(os.listdir(OUT)):
        print("%-16s %3d seeds" % (t, len(os.listdir(os.path.join(OUT, t)))))


if __name__ == "__main__":
    main()
