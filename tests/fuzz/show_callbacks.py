#!/usr/bin/env python3
"""Print a fuzz_callbacks input as the operations it performs.

    python3 tests/fuzz/show_callbacks.py tests/fuzz/crashes/fuzz_callbacks/rcpt-after-data

Mirrors the reads of tests/fuzz/fuzz_callbacks.c (read_config, op and the
op_* functions) and of fz_* in fuzz_common.c: change it with them.
Each line: the context (0-2), the operation, its arguments.
"""

import sys

OPS = ["negotiate", "connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body",
       "eom", "abort", "close", "unknown", "macro", "macro", "ms", "tens", "due",
       "transactions", "metrics", "refuse", "reload", "seconds"]
MACROS = ["i", "{rcpt_mailer}", "{rcpt_host}", "{rcpt_addr}", "{auth_authen}",
          "{tls_version}", "j"]
HEADERS = ["Subject", "X-SMTP-Trace", "x-smtp-trace", "X-Other-Trace", "Received"]


class Reader:
    def __init__(self, data):
        self.b = data
        self.i = 0

    def left(self):
        return len(self.b) - self.i

    def u8(self):
        if self.i >= len(self.b):
            return 0
        self.i += 1
        return self.b[self.i - 1]

    def u16(self):
        return self.u8() << 8 | self.u8()

    def u32(self):
        return self.u16() << 16 | self.u16()

    def bool(self):
        return self.u8() & 1

    def below(self, n):
        if n == 0:
            return 0
        if n <= 256:
            return self.u8() % n
        if n <= 65536:
            return self.u16() % n
        return self.u32() % n

    def str(self, cap, maxlen):
        want = self.u8()
        if want >= 248:
            want = 248 + self.u16() % (maxlen + 1)
        want = min(want, maxlen, self.left(), cap - 1)
        v = self.b[self.i:self.i + want]
        self.i += want
        return v.split(b"\0")[0]

    def arg(self, cap):
        k = self.below(8)
        if k == 0:
            return None
        if k == 1:
            return b"<user@example.org>"
        return self.str(cap, cap - 1)


def config(r):
    cfg = {"header.enable": r.below(4) != 0, "skip_authenticated": bool(r.bool()),
           "explain": bool(r.bool()), "format": "json" if r.bool() else "kv"}
    cfg["data_timeout"] = 1 + r.below(600)
    cfg["timeout_tolerance"] = r.below(cfg["data_timeout"])
    cfg["warn_after"] = 1 + r.below(120)
    cfg["repeat_every"] = r.below(120)
    cfg["header.name"] = "X-Other-Trace" if r.below(4) == 0 else "X-SMTP-Trace"
    return cfg


def connect(r):
    host = r.arg(300)
    kind = r.below(5)
    if kind == 1:
        port, addr = r.u16(), r.u32()
        where = "AF_INET port %d addr %08x" % (port, addr)
    elif kind == 2:
        r.u16()
        where = "AF_INET6 " + bytes(r.u8() for _ in range(16)).hex()
    elif kind == 3:
        where = "AF_UNIX %r" % r.str(108, 100)
    elif kind == 4:
        fam = r.u16()
        for _ in range(30):
            r.u8()
        where = "family %d" % fam
    else:
        where = "hostaddr NULL"
    return "%r %s" % (host, where)


def argv(r):
    k = r.below(6)
    if k == 0:
        return "argv NULL"
    if k == 1:
        return "argv {NULL}"
    if k == 2:
        return "%r %r" % (r.arg(300), r.arg(300))
    return repr(r.arg(300))


def macro(r):
    k = r.below(7)
    how = r.below(8)
    name = MACROS[k]
    if how == 0:
        return name + " removed"
    if k == 1 and how < 5:
        return "%s=%r" % (name, ["error", "smtp", "local", ""][how - 1])
    if k == 2 and how < 4:
        return "%s=5.%d.%d" % (name, r.below(10), r.below(1000))
    return "%s=%r" % (name, r.str(301, 300))


def operation(r, op):
    if op == "negotiate":
        f0 = 0x1FF if r.bool() else r.u32()
        f1 = 0x1FFFFF if r.bool() else r.u32()
        r.u32()
        r.u32()
        return "f0=%#x f1=%#x" % (f0, f1)
    if op == "connect":
        return connect(r)
    if op in ("helo", "unknown"):
        return repr(r.arg(300))
    if op in ("mail", "rcpt"):
        return argv(r)
    if op == "header":
        value = r.arg(1100)
        pick = r.below(8)
        return "%r: %r" % (HEADERS[pick] if pick < 5 else r.arg(300), value)
    if op == "body":
        n = r.u8() if r.bool() else r.u16()
        return "%d bytes%s" % (n, ", chunk NULL" if r.below(16) == 0 else "")
    if op == "macro":
        return macro(r)
    if op == "ms":
        return "+%d ms" % r.u8()
    if op == "tens":
        return "+%d ms" % (r.u16() * 10)
    if op == "seconds":
        return "+%d s" % r.u16()
    if op == "transactions":
        return "limit %d" % r.below(4)
    if op == "refuse":
        return "header edits refused: %s" % (r.below(4) == 0)
    if op == "reload":
        return str(config(r))
    return ""


def main():
    with open(sys.argv[1], "rb") as f:
        r = Reader(f.read())
    print("config", config(r))
    print("clock starts at", r.u32())
    steps = 0
    while r.left() > 0 and steps < 2000:
        c = r.below(3)
        op = OPS[r.below(len(OPS))]
        print(c, op, operation(r, op))
        steps += 1
    print("then every context with a session is closed")


if __name__ == "__main__":
    main()
