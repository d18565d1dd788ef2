#!/usr/bin/env python3
"""The systemd unit as `make install` renders it, checked offline.

There is no systemd as PID 1 on a build machine or in CI, so the unit is
never started here. What can be checked without it:
  - `systemd-analyze security --offline=yes` scores it at most 1.5;
  - `systemd-analyze verify` says nothing (binaries and man pages found);
  - the directives the milter relies on are there (Type=notify, reload,
    ordering before Postfix, the sandbox lines the score asks for);
  - the milter run as the unit runs it, under strace, while it serves a
    milter session on an inet and on a unix socket, /metrics and
    /transactions, writes the metrics text file, reloads on SIGUSR1 and
    stops on SIGTERM: every system call it makes is in the unit's
    SystemCallFilter, every socket in RestrictAddressFamilies, no
    writable-and-executable mapping (MemoryDenyWriteExecute), no /proc
    file but its own (ProcSubset=pid), no file written but those its
    configuration names, and READY=1 sent by the main process
    (NotifyAccess=main).
Prints one line per case and "unit-file: N passed, M failed".
"""
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_SCORE = 1.5


class Fail(Exception):
    pass


def check(cond, got, want):
    if not cond:
        raise Fail('got %s, want %s' % (got, want))


def sh(args, timeout=120, env=None, cwd=TOP):
    r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=env, cwd=cwd)
    return r.returncode, r.stdout.decode(errors='replace'), r.stderr.decode(errors='replace')


def make_install(build, *assignments):
    """make install with these VAR=value assignments; BUILD is the object dir."""
    rc, out, err = sh(['make', '-s', '--no-print-directory', 'BUILD=' + build, 'install']
                      + list(assignments), timeout=300)
    if rc != 0:
        raise Fail('make install %s: exit %d: %s' % (' '.join(assignments), rc,
                                                     (out + err).strip()[-600:]))


class Context:
    """One temporary directory and object dir for all cases; renders once."""

    def __init__(self, tmp, build=None):
        self.tmp = tmp
        self.build = build or os.path.join(tmp, 'obj')
        self._package_root = None
        self._prefix_root = None

    def package_root(self):
        """DESTDIR with the package's layout: /usr, units in /lib/systemd/system."""
        if self._package_root is None:
            root = os.path.join(self.tmp, 'pkgroot')
            make_install(self.build, 'DESTDIR=' + root, 'PREFIX=/usr',
                         'UNITDIR=/lib/systemd/system')
            self._package_root = root
        return self._package_root

    def prefix_root(self):
        """No DESTDIR: everything under a temporary prefix, so the unit's
        ExecStart= names a binary that exists (for verify)."""
        if self._prefix_root is None:
            root = os.path.join(self.tmp, 'prefix')
            make_install(self.build, 'PREFIX=' + root + '/usr', 'SYSCONFDIR=' + root + '/etc')
            self._prefix_root = root
        return self._prefix_root


def unit_text(path):
    with open(path) as f:
        return f.read()


def directives(text):
    """{key: [values]} of the [Service]/[Unit]/[Install] lines."""
    d = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in '#;[' or '=' not in line:
            continue
        k, v = line.split('=', 1)
        d.setdefault(k.strip(), []).append(v.strip())
    return d


def score(root):
    rc, out, err = sh(['systemd-analyze', 'security', '--offline=yes', '--root=' + root,
                       '--no-pager', 'smtptrace.service'])
    m = re.search(r'Overall exposure level for smtptrace\.service: ([0-9.]+)', out)
    if rc != 0 or m is None:
        raise Fail('systemd-analyze security: exit %d: %s' % (rc, (out + err)[-400:]))
    return float(m.group(1)), out


# ---- cases -------------------------------------------------------------

def case_security_score(ctx):
    s, out = score(ctx.package_root())
    bad = [l for l in out.splitlines() if l.startswith('✗')]
    print('     exposure %.1f; still open: %s' % (
        s, '; '.join(re.sub(r'\s{2,}.*', '', l[2:]) for l in bad) or 'nothing'))
    check(s <= MAX_SCORE, 'exposure %.1f' % s, 'at most %.1f' % MAX_SCORE)


def case_verify(ctx):
    root = ctx.prefix_root()
    unit = os.path.join(root, 'usr', 'lib', 'systemd', 'system', 'smtptrace.service')
    env = dict(os.environ, MANPATH=os.path.join(root, 'usr', 'share', 'man'))
    rc, out, err = sh(['systemd-analyze', 'verify', unit], env=env)
    check(rc == 0 and not (out + err).strip(), 'exit %d %r' % (rc, (out + err).strip()[:500]),
          'exit 0, no message')


def case_rendered_paths(ctx):
    root = ctx.package_root()
    text = unit_text(os.path.join(root, 'lib', 'systemd', 'system', 'smtptrace.service'))
    d = directives(text)
    check('@' not in ''.join(d.get('ExecStart', []) + d.get('ExecStartPre', [])),
          d.get('ExecStart'), 'placeholders filled in')
    check(d.get('ExecStart') == ['/usr/sbin/smtptrace-milter -f -c /etc/smtptrace/smtptrace.conf'],
          d.get('ExecStart'), '/usr/sbin/smtptrace-milter -f -c /etc/smtptrace/smtptrace.conf')
    local = ctx.prefix_root()
    text = unit_text(os.path.join(local, 'usr', 'lib', 'systemd', 'system', 'smtptrace.service'))
    want = local + '/usr/sbin/smtptrace-milter -f -c ' + local + '/etc/smtptrace/smtptrace.conf'
    check(directives(text).get('ExecStart') == [want], directives(text).get('ExecStart'), want)


def case_directives(ctx):
    d = directives(unit_text(os.path.join(ctx.package_root(), 'lib', 'systemd', 'system',
                                          'smtptrace.service')))
    want = {
        'Type': 'notify', 'NotifyAccess': 'main', 'User': 'smtptrace',
        'ExecReload': '/bin/kill -USR1 $MAINPID',
        'ProtectClock': 'yes', 'ProtectKernelLogs': 'yes', 'ProtectHostname': 'yes',
        'ProtectProc': 'invisible', 'ProcSubset': 'pid', 'RestrictSUIDSGID': 'yes',
        'RestrictRealtime': 'yes', 'PrivateMounts': 'yes', 'PrivateUsers': 'yes',
        'DevicePolicy': 'closed', 'IPAddressDeny': 'any', 'IPAddressAllow': 'localhost',
        'ProtectSystem': 'strict', 'NoNewPrivileges': 'yes', 'CapabilityBoundingSet': '',
        'SystemCallErrorNumber': 'EPERM',
    }
    for k, v in want.items():
        check(d.get(k) == [v], '%s=%s' % (k, d.get(k)), '%s=%s' % (k, v))
    before = ' '.join(d.get('Before', [])).split()
    for u in ('postfix.service', 'postfix@-.service'):
        check(u in before, 'Before=%s' % before, 'Before= with %s' % u)
    check(d.get('SystemCallFilter') == ['@system-service', '~@privileged @resources'],
          d.get('SystemCallFilter'), '@system-service, then ~@privileged @resources')
    check(d.get('RestrictAddressFamilies') == ['AF_UNIX AF_INET AF_INET6'],
          d.get('RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6')


# ---- what the milter does, against what the unit allows ------------------

def syscall_groups():
    """{'@name': set of members (names and @groups)} from systemd-analyze."""
    rc, out, err = sh(['systemd-analyze', 'syscall-filter', '--no-pager'])
    if rc != 0:
        raise Fail('systemd-analyze syscall-filter: exit %d %s' % (rc, err))
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith('@'):
            cur = groups.setdefault(line.strip(), set())
        elif cur is not None and line.strip() and not line.strip().startswith('#'):
            cur.add(line.strip())
    return groups


def expand(groups, names, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if n.startswith('@'):
            if n not in seen:
                seen.add(n)
                out |= expand(groups, groups.get(n, ()), seen)
        else:
            out.add(n)
    return out


def unit_allowed_syscalls(d):
    """The allow list the unit's SystemCallFilter= lines give, in order."""
    groups = syscall_groups()
    allowed = None
    for v in d.get('SystemCallFilter', []):
        deny = v.startswith('~')
        names = expand(groups, v.lstrip('~').split())
        if deny:
            allowed = (allowed if allowed is not None else expand(groups, ['@known'])) - names
        else:
            allowed = (allowed or set()) | names
    return allowed or set()


# libmilter's wire protocol, as much as one transaction needs.
SMFIP_NR = {b'C': 0x1000, b'H': 0x2000, b'M': 0x4000, b'R': 0x8000, b'T': 0x10000,
            b'L': 0x80, b'N': 0x40000, b'B': 0x80000}
PROTO_OFFER = 0x800 | sum(SMFIP_NR.values())      # RCPT_REJ and every no-reply bit


def mpkt(cmd, data=b''):
    return struct.pack('!I', len(data) + 1) + cmd + data


def mread(sock):
    head = b''
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            raise Fail('milter closed the connection')
        head += chunk
    n = struct.unpack('!I', head)[0]
    body = b''
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise Fail('milter closed the connection')
        body += chunk
    return body[:1], body[1:]


def milter_transaction(connect):
    """One message through the milter: negotiate to end of message."""
    s = connect()
    s.settimeout(10)
    try:
        s.sendall(mpkt(b'O', struct.pack('!III', 6, 0x1 | 0x10 | 0x100, PROTO_OFFER)))
        cmd, data = mread(s)
        check(cmd == b'O' and len(data) >= 12, cmd, 'an O (negotiate) reply')
        proto = struct.unpack('!III', data[:12])[2]
        steps = [(b'C', b'client.test\x004' + struct.pack('!H', 40000) + b'127.0.0.1\x00'),
                 (b'H', b'client.test\x00'), (b'M', b'<a@example.test>\x00'),
                 (b'R', b'<b@example.test>\x00'), (b'T', b''),
                 (b'L', b'Subject\x00package test\x00'), (b'N', b''),
                 (b'B', b'hello\r\n')]
        for c, payload in steps:
            s.sendall(mpkt(c, payload))
            if not proto & SMFIP_NR[c]:
                r, _ = mread(s)
                check(r == b'c', '%r after %r' % (r, c), "'c' (continue)")
        s.sendall(mpkt(b'E'))
        actions = []
        while True:
            r, payload = mread(s)
            actions.append(r)
            if r in b'acrtyd':
                break
        check(actions[-1] in (b'c', b'a'), actions, 'continue or accept at end of message')
        check(b'h' in actions or b'i' in actions, actions, 'a header added')
        s.sendall(mpkt(b'Q'))
    finally:
        s.close()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def notify_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.settimeout(10)
    return s


def notify_wait(s, want):
    """Messages until one contains `want`; returns the sender's pid."""
    deadline = time.monotonic() + 10
    seen = []
    while time.monotonic() < deadline:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        seen.append(msg.decode(errors='replace'))
        if want.encode() in msg.split(b'\n'):
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    return struct.unpack('iII', cdata[:12])[0]
            raise Fail('no sender credentials on %r' % want)
    raise Fail('notify messages %r, want %s' % (seen, want))


def child_of(pid, binary):
    """The child of strace that runs binary: strace also forks short-lived children of
    its own at start (to probe ptrace), which must not be taken for the milter."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
                kids = [int(k) for k in f.read().split()]
            for kid in kids:
                with open('/proc/%d/cmdline' % kid, 'rb') as f:
                    argv0 = f.read().split(b'\0')[0].decode(errors='replace')
                if os.path.basename(argv0) == os.path.basename(binary):
                    return kid
        except OSError:
            pass
        time.sleep(0.05)
    raise Fail('strace started no milter')


def traced_run(binary, d, conf, name, connect, http_port=None, textfile=None):
    """The milter under strace -f, as the unit runs it (-f, NOTIFY_SOCKET)."""
    trace = os.path.join(d, name + '.strace')
    nsock_path = os.path.join(d, name + '.notify')
    nsock = notify_socket(nsock_path)
    env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'NOTIFY_SOCKET': nsock_path}
    p = subprocess.Popen(['strace', '-f', '-qq', '-o', trace, binary, '-f', '-c', conf],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env)
    try:
        milter_pid = child_of(p.pid, binary)
        sender = notify_wait(nsock, 'READY=1')
        check(sender == milter_pid, 'READY=1 from pid %d' % sender,
              'from the main process %d (NotifyAccess=main)' % milter_pid)
        milter_transaction(connect)
        if http_port:
            for path in ('/metrics', '/transactions'):
                with urllib.request.urlopen('http://127.0.0.1:%d%s' % (http_port, path),
                                            timeout=10) as r:
                    check(r.status == 200, r.status, '200 for ' + path)
        if textfile:
            deadline = time.monotonic() + 10
            while not os.path.exists(textfile) and time.monotonic() < deadline:
                time.sleep(0.1)
            check(os.path.exists(textfile), 'no ' + textfile, 'the metrics text file')
        os.kill(milter_pid, signal.SIGUSR1)
        notify_wait(nsock, 'RELOADING=1')
        notify_wait(nsock, 'READY=1')
        os.kill(milter_pid, signal.SIGTERM)
        notify_wait(nsock, 'STOPPING=1')
        out, _ = p.communicate(timeout=30)
        check(p.returncode == 0, 'exit %d: %s' % (p.returncode, out.decode()[-300:]), 'exit 0')
    finally:
        nsock.close()
        if p.poll() is None:
            p.kill()
            p.wait()
    with open(trace) as f:
        return f.read().splitlines()


SYSCALL = re.compile(r'^\d+\s+([a-z_0-9]+)\((.*)')
WRITE_FLAGS = re.compile(r'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC')


def audit(lines, allowed, writable):
    """Problems in one strace log against the unit's limits."""
    problems = set()
    for line in lines:
        m = SYSCALL.match(line)
        if not m:
            continue
        name, args = m.groups()
        if name not in allowed:
            problems.add('system call %s (not in SystemCallFilter)' % name)
        if name == 'socket':
            fam = args.split(',', 1)[0]
            if fam not in ('AF_UNIX', 'AF_INET', 'AF_INET6'):
                problems.add('socket(%s) (not in RestrictAddressFamilies)' % fam)
        if name in ('mmap', 'mprotect', 'pkey_mprotect') and 'PROT_WRITE' in args \
                and 'PROT_EXEC' in args:
            problems.add('%s writable and executable (MemoryDenyWriteExecute)' % name)
        path = re.search(r'"([^"]*)"', args)
        path = path.group(1) if path else ''
        if path.startswith('/proc/') and not re.match(r'/proc/(self|thread-self|\d+)(/|$)', path):
            problems.add('reads %s (ProcSubset=pid hides it)' % path)
        writes = (name in ('open', 'openat', 'creat') and WRITE_FLAGS.search(args)) or \
            name in ('rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'mkdir',
                     'mkdirat', 'chmod', 'fchmodat', 'bind') and path.startswith('/')
        if writes and path and not any(path == w or path.startswith(w.rstrip('/') + '/')
                                       for w in writable):
            problems.add('%s %s (not a path its configuration names)' % (name, path))
    return sorted(problems)


def case_sandbox_allows_what_the_milter_does(ctx):
    root = ctx.package_root()
    binary = os.path.join(root, 'usr', 'sbin', 'smtptrace-milter')
    d = directives(unit_text(os.path.join(root, 'lib', 'systemd', 'system', 'smtptrace.service')))
    allowed = unit_allowed_syscalls(d)
    # syslog through /dev/log (not on this machine) adds these calls
    for n in ('socket', 'connect', 'sendto', 'sendmsg'):
        check(n in allowed, n, 'allowed (syslog)')
    run = os.path.join(ctx.tmp, 'run')
    os.makedirs(run, exist_ok=True)
    problems = []

    conf_check = os.path.join(run, 'check.strace')
    rc, out, err = sh(['strace', '-f', '-qq', '-o', conf_check, binary, '-n', '-c',
                       os.path.join(root, 'etc', 'smtptrace', 'smtptrace.conf')])
    check(rc == 0, 'ExecStartPre exit %d %s' % (rc, err), 'exit 0')
    with open(conf_check) as f:
        problems += audit(f.read().splitlines(), allowed, [])

    mport, hport = free_port(), free_port()
    textfile = os.path.join(run, 'textfile', 'smtptrace.prom')
    os.makedirs(os.path.dirname(textfile))
    inet_conf = os.path.join(run, 'inet.conf')
    with open(inet_conf, 'w') as f:
        f.write('socket = "inet:%d@127.0.0.1";\nlog: { ident = "smtptrace-pkgtest"; };\n'
                'metrics: { textfile = "%s"; textfile_interval = 1; '
                'http_listen = "127.0.0.1:%d"; };\n' % (mport, textfile, hport))
    lines = traced_run(binary, run, inet_conf, 'inet',
                       lambda: socket.create_connection(('127.0.0.1', mport)),
                       http_port=hport, textfile=textfile)
    problems += audit(lines, allowed, [os.path.dirname(textfile)])

    sock = os.path.join(run, 'sock', 'milter.sock')
    os.makedirs(os.path.dirname(sock))
    unix_conf = os.path.join(run, 'unix.conf')
    with open(unix_conf, 'w') as f:
        f.write('socket = "unix:%s";\nlog: { ident = "smtptrace-pkgtest"; };\n' % sock)

    def unix_connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        return s
    lines = traced_run(binary, run, unix_conf, 'unix', unix_connect)
    problems += audit(lines, allowed, [os.path.dirname(sock)])
    check(not problems, '; '.join(sorted(set(problems))), 'nothing the unit forbids')


CASES = [case_security_score, case_verify, case_rendered_paths, case_directives,
         case_sandbox_allows_what_the_milter_does]


def run_cases(cases, ctx):
    passed = failed = 0
    for case in cases:
        name = case.__name__[5:]
        t0 = time.monotonic()
        try:
            case(ctx)
        except (Fail, OSError, ValueError, subprocess.SubprocessError) as e:
            failed += 1
            print('FAIL %s: %s' % (name, e), flush=True)
        else:
            passed += 1
            print('ok   %s (%.1f s)' % (name, time.monotonic() - t0), flush=True)
    return passed, failed


def main():
    with tempfile.TemporaryDirectory(prefix='smtptrace-unit.') as d:
        passed, failed = run_cases(CASES, Context(d))
    print('unit-file: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
