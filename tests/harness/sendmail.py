"""A private, throw-away Sendmail 8.17 on 127.0.0.1 for smtptrace's end-to-end tests,
beside the installed Postfix (sendmail-bin conflicts with postfix: it is never installed).

    from harness.sendmail import SendmailInstance
    with SendmailInstance(datablock_timeout=5) as inst:     # milter attached by default
        ... smtpclient.SMTPClient('127.0.0.1', inst.smtp_port) ...
        msg = inst.wait_delivered(queue_id=qid)           # parsed message from smtp-sink
        line = inst.wait_milter_line(lambda l: l.qid == qid and l.kind == 'txn')

The Sendmail binaries come from the Debian packages sendmail-bin, sendmail-base,
sendmail-cf and libwrap0, fetched with `apt-get download` and unpacked with `dpkg -x`
into a cache, REPO/build/sendmail-root/ (ensure_root(); `make deps-sendmail` or
`python3 -m harness.sendmail --fetch` from tests/; ~1.5 s with the package mirror). With
the cache, Sendmail's own part of start() (namespace, .cf, maps, daemon) takes ~0.2 s;
the milters' sockets ~0.25 s each.
The unpacked sendmail binary is made 0755 there: it is setgid, and a setgid binary run
by root ignores LD_LIBRARY_PATH (needed for the unpacked libwrap.so.0).

What runs, all under one temp dir DIR (chmod 0755, removed at stop unless SMTPTRACE_KEEP=1):

  smtp-sink     127.0.0.1:sink_port, -h sink.test (not Sendmail's own name: "mail loops
                back to me"), one file per message in DIR/sink/
  the milter    build/smtptrace-milter -f -c DIR/smtptrace.conf, socket DIR/milter.sock
                (or a loopback port), its log lines in DIR/milter.log, with
                mta.data_timeout = Sendmail's Timeout.datablock
  a namespace   `unshare --uts --mount --propagation private` running this module with
                --namespace: host name mx.test, DIR/etc/hosts and DIR/etc/resolv.conf
                (nameserver 127.0.0.1) bind-mounted on /etc/hosts and /etc/resolv.conf,
                a private tmpfs /dev (null, zero, random, urandom, tty) whose /dev/log it
                receives itself (unix datagrams) and writes to DIR/maillog as a syslog
                daemon would ("Dec  1 22:21:29 mx sm-mta[PID]: ..."). Sendmail qualifies
                gethostname() before it reads its .cf: an undotted name costs 60 s.
  Sendmail      DIR/sendmail.cf built with m4 from DIR/sendmail.mc and the unpacked
                macros, every path inside DIR; started with `nsenter` into the namespace,
                `sendmail -bD -L sm-mta -C DIR/sendmail.cf` (foreground, as Debian names
                its daemon in the log), listening on 127.0.0.1:smtp_port, relaying
                everything not local (SMART_HOST esmtp:[127.0.0.1], port sink_port) to
                the sink; queue DIR/mqueue; ready when DIR/sendmail.pid exists.
                Recipients in DIR/access (access_db, DEFAULT_ACCESS; built with makemap -C
                DIR/sendmail.cf) are refused at RCPT by check_rcpt: To: entries refuse only
                with FEATURE(blocklist_recipients), else they just grant relaying. Mail to
                a user of mx.test that does not exist is refused as "550 5.1.1 ... User
                unknown" (local mailer, F=w); DIR/aliases is built by sendmail -bi in the
                namespace.
                INPUT_MAIL_FILTER(smtptrace, S=unix:DIR/milter.sock, F=, T=...).

Optional: test milters (tests/milter/test_milter.c) before / after smtptrace, as in
instance.py. Only processes started here are stopped, by PID. Python 3 standard library.
"""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

from .instance import (Instance, HarnessError, REPO, SMTP_SINK, free_port, _tail,
                       _wait_smtp_banner, _wait_listening)

ROOT = os.path.join(REPO, 'build', 'sendmail-root')
PACKAGES = ['sendmail-bin', 'sendmail-base', 'sendmail-cf', 'libwrap0']
# the shared libraries sendmail-bin needs besides libwrap0, and m4 for the .cf
# (ordinary packages: `make deps-sendmail` installs the missing ones)
LIB_PACKAGES = ['m4', 'libdb5.3', 'libldap-2.5-0', 'liblockfile1', 'libnsl2', 'libsasl2-2',
                'libssl3']
SENDMAIL = 'usr/libexec/sendmail/sendmail'
MAKEMAP = 'usr/libexec/sendmail/makemap'
CF_DIR = 'usr/share/sendmail/cf'
LIB_DIR = 'usr/lib/x86_64-linux-gnu'
STAMP = '.smtptrace-complete'
HOSTNAME = 'mx.test'
SINK_NAME = 'sink.test'
LOG_TAG = 'sm-mta'
UNSHARE = '/usr/bin/unshare'
NSENTER = '/usr/bin/nsenter'

# Recipients refused by check_rcpt (access_db): the milter never sees them.
DEFAULT_ACCESS = {
    'To:blocked@example.test': 'ERROR:5.2.1:550 Mailbox disabled for this recipient',
    'To:blocked2@example.test': 'ERROR:5.2.1:550 Mailbox disabled for this recipient',
}


# ---- the unpacked packages ------------------------------------------------------------

def root_ready(root=ROOT):
    return os.path.exists(os.path.join(root, STAMP))


def _run(cmd, cwd=None, timeout=120):
    r = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode('utf-8', 'replace')


def ensure_root(root=ROOT, fetch=True, say=None):
    """The unpacked Sendmail tree: `root` when complete, else (fetch) downloaded and unpacked
    into a sibling temp dir and renamed into place. Needs the Debian package mirror."""
    if root_ready(root):
        return root
    if not fetch:
        raise HarnessError('no Sendmail tree in %s: run make deps-sendmail' % root)
    if os.geteuid() != 0:
        raise HarnessError('fetching the Sendmail packages needs root (apt-get download)')
    if shutil.which('m4') is None:
        raise HarnessError('m4 is missing: apt-get install m4 (make deps-sendmail)')
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix='sendmail-root.', dir=parent)
    try:
        debs = os.path.join(work, 'debs')
        tree = os.path.join(work, 'root')
        os.mkdir(debs)
        os.chmod(work, 0o755)
        os.chmod(debs, 0o777)        # apt-get download as _apt, not "unsandboxed as root"
        rc, out = _run(['apt-get', 'download', '-q'] + PACKAGES, cwd=debs)
        if rc != 0 and 'Unable to locate package' in out:
            _run(['apt-get', 'update', '-qq'], timeout=600)
            rc, out = _run(['apt-get', 'download', '-q'] + PACKAGES, cwd=debs)
        if rc != 0:
            raise HarnessError('apt-get download %s failed (%d):\n%s'
                               % (' '.join(PACKAGES), rc, out.strip()))
        names = sorted(f for f in os.listdir(debs) if f.endswith('.deb'))
        for name in names:
            rc, out = _run(['dpkg', '-x', os.path.join(debs, name), tree])
            if rc != 0:
                raise HarnessError('dpkg -x %s failed: %s' % (name, out.strip()))
        binary = os.path.join(tree, SENDMAIL)
        if not os.path.exists(binary):
            raise HarnessError('no %s in the unpacked packages' % SENDMAIL)
        os.chmod(binary, 0o755)      # drop setgid: LD_LIBRARY_PATH must count
        with open(os.path.join(tree, STAMP), 'w') as fh:
            fh.write('%s\n' % '\n'.join(names))
        if os.path.exists(root):     # an incomplete earlier attempt
            shutil.rmtree(root)
        os.rename(tree, root)
        if say:
            say('unpacked %s into %s' % (', '.join(names), root))
        return root
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sendmail_version(root=ROOT):
    """The Debian version of the unpacked sendmail-bin, e.g. "8.17.1.9-2+deb12u2"."""
    try:
        with open(os.path.join(root, STAMP)) as fh:
            for line in fh:
                m = re.match(r'sendmail-bin_([^_]+)_', line)
                if m:
                    return m.group(1).replace('%3a', ':')
    except OSError:
        pass
    return '?'


# ---- Sendmail's log ----------------------------------------------------------------------

# "Dec  1 22:21:29 mx sm-mta[4753]: 5B1MLTqu004753: from=<a@example.test>, size=..."
_SYSLOG_RE = re.compile(r'^(?P<stamp>\w{3} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) '
                        r'(?P<prog>[\w./-]+)\[(?P<pid>\d+)\]: (?P<text>.*)$')
# Sendmail's queue ids: 14 characters (8 of date, time and sequence, then the pid's
# digits, more when the pid has more than 6)
_QID_RE = re.compile(r'^([0-9A-Za-z]{8}\d{6,}): (.*)$')


class SendmailLine:
    """One line of DIR/maillog: prog, pid, text (after "prog[pid]: "), qid and msg."""

    def __init__(self, raw):
        self.raw = raw
        m = _SYSLOG_RE.match(raw)
        self.prog = m.group('prog') if m else None
        self.pid = int(m.group('pid')) if m else None
        self.text = m.group('text') if m else raw
        m2 = _QID_RE.match(self.text)
        self.qid = m2.group(1) if m2 else None
        self.msg = m2.group(2) if m2 else self.text

    def __repr__(self):
        return 'SendmailLine(%r)' % self.raw


# ---- the namespace: host name, /etc files, /dev/log ------------------------------------

def namespace_main(dirpath, hostname):
    """Run inside `unshare --uts --mount --propagation private`: set the host name,
    bind the private /etc files, mount a private /dev, then receive /dev/log until
    SIGTERM, writing each message to DIR/maillog with the host's short name."""
    socket.sethostname(hostname)
    for name in ('hosts', 'resolv.conf'):
        subprocess.run(['mount', '--bind', os.path.join(dirpath, 'etc', name), '/etc/' + name],
                       check=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'mode=0755,size=1m', 'smtptrace-dev', '/dev'],
                   check=True)
    for name, major, minor in (('null', 1, 3), ('zero', 1, 5), ('full', 1, 7),
                               ('random', 1, 8), ('urandom', 1, 9), ('tty', 5, 0)):
        os.mknod('/dev/' + name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod('/dev/' + name, 0o666)
    os.symlink('/proc/self/fd', '/dev/fd')
    for i, name in enumerate(('stdin', 'stdout', 'stderr')):
        os.symlink('/proc/self/fd/%d' % i, '/dev/' + name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind('/dev/log')
    os.chmod('/dev/log', 0o666)
    short = hostname.split('.')[0]

    def stop(*_):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    with open(os.path.join(dirpath, 'maillog'), 'ab') as out:
        open(os.path.join(dirpath, 'namespace.ready'), 'w').close()
        while True:
            data = sock.recv(65536)
            # glibc: "<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG"
            m = re.match(rb'^<\d{1,3}>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)$', data, re.S)
            if m:
                data = m.group(1) + b' ' + short.encode() + b' ' + m.group(2)
            out.write(data.rstrip(b'\n').replace(b'\n', b' ') + b'\n')
            out.flush()


# ---- the instance ------------------------------------------------------------------------

class SendmailInstance(Instance):
    """Sendmail + smtp-sink (+ the milter) on loopback. See the module docstring.

    milter, milter_path, milter_args, milter_transport, log_format, milter_config_extra,
    keep, start_timeout, milters_before, milters_after, test_milter_path:
                    as in instance.Instance
    datablock_timeout  seconds: Sendmail's Timeout.datablock (its data timeout; 1 h by
                    default), also the milter's mta.data_timeout
    timeout_tolerance  mta.timeout_tolerance (seconds)
    access          dict access(5) key -> action (default DEFAULT_ACCESS)
    mc_extra        list of extra .mc lines (before the MAILER lines)
    allow_bogus_helo   confALLOW_BOGUS_HELO (default False: Sendmail's own default)
    max_message_size   bytes: confMAX_MESSAGE_SIZE (default: none, Sendmail's own)
    milter_flags    F= of INPUT_MAIL_FILTER (default "": mail flows when the milter is down)
    root            the unpacked packages (default REPO/build/sendmail-root)
    fetch           fetch and unpack them when missing (default True)
    """

    def __init__(self, milter=True, milter_path=None, milter_args=(), milter_transport='unix',
                 log_format='kv', datablock_timeout=5, timeout_tolerance=1,
                 access=None, mc_extra=(), allow_bogus_helo=False, max_message_size=None,
                 milter_flags='',
                 milter_config_extra='', keep=None, start_timeout=20,
                 milters_before=(), milters_after=(), test_milter_path=None,
                 root=None, fetch=True):
        Instance.__init__(self, milter=milter, milter_path=milter_path, milter_args=milter_args,
                          milter_transport=milter_transport, log_format=log_format,
                          smtpd_timeout=datablock_timeout, timeout_tolerance=timeout_tolerance,
                          milter_config_extra=milter_config_extra, keep=keep,
                          start_timeout=start_timeout, milters_before=milters_before,
                          milters_after=milters_after, test_milter_path=test_milter_path)
        self.datablock_timeout = int(datablock_timeout)
        self.access = dict(DEFAULT_ACCESS if access is None else access)
        self.mc_extra = list(mc_extra)
        self.allow_bogus_helo = allow_bogus_helo
        self.max_message_size = max_message_size
        self.milter_flags = milter_flags
        self.root = root or ROOT
        self.fetch = fetch
        self.ns_proc = None
        self.sendmail_proc = None
        self.sendmail_pid = None
        self.start_seconds = None     # from start() to the pid file

    # ---- paths --------------------------------------------------------------------------

    @property
    def cf_path(self):
        return os.path.join(self.dir, 'sendmail.cf')

    @property
    def mc_path(self):
        return os.path.join(self.dir, 'sendmail.mc')

    @property
    def pid_path(self):
        return os.path.join(self.dir, 'sendmail.pid')

    @property
    def queue_dir(self):
        return os.path.join(self.dir, 'mqueue')

    @property
    def etc_dir(self):
        return os.path.join(self.dir, 'etc')

    def _env(self):
        env = dict(os.environ)
        env['LD_LIBRARY_PATH'] = os.path.join(self.root, LIB_DIR)
        env.pop('SMTPTRACE_KEEP', None)
        return env

    # ---- start / stop -------------------------------------------------------------------

    def start(self):
        t0 = time.monotonic()
        if os.geteuid() != 0:
            raise HarnessError('the Sendmail harness must run as root (namespaces, port, queue)')
        for tool in (SMTP_SINK, UNSHARE, NSENTER):
            if not os.access(tool, os.X_OK):
                raise HarnessError('%s is missing' % tool)
        if self.use_milter and not os.access(self.milter_path, os.X_OK):
            raise HarnessError('milter binary %s not found: run make first' % self.milter_path)
        if (self.milters_before or self.milters_after) and not os.access(self.test_milter_path, os.X_OK):
            raise HarnessError('test milter binary %s not found: make build/test-milter'
                               % self.test_milter_path)
        ensure_root(self.root, fetch=self.fetch)
        self.dir = tempfile.mkdtemp(prefix='smtptrace-sendmail.')
        os.chmod(self.dir, 0o755)
        ports = set()
        for attr in ('smtp_port', 'sink_port') + (('milter_port',) if self.milter_transport == 'inet' else ()):
            p = free_port()
            while p in ports:
                p = free_port()
            ports.add(p)
            setattr(self, attr, p)
        try:
            self._start_sink()
            if self.use_milter:
                self._write_milter_config()
                self._start_milter()
            for name in self.milters_before + self.milters_after:
                self._start_test_milter(name)
            self._write_files()
            self._start_namespace()
            self._build_cf()
            self._start_sendmail()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _start_sink(self):
        import pwd
        pw = pwd.getpwnam('postfix')
        os.mkdir(self.sink_dir, 0o755)
        os.chown(self.sink_dir, pw.pw_uid, pw.pw_gid)
        self._sink_log_fh = open(os.path.join(self.dir, 'sink.log'), 'ab')
        self.sink_proc = subprocess.Popen(
            [SMTP_SINK, '-u', 'postfix', '-h', SINK_NAME, '-d', os.path.join(self.sink_dir, '%M.'),
             '127.0.0.1:%d' % self.sink_port, '256'],
            stdin=subprocess.DEVNULL, stdout=self._sink_log_fh, stderr=subprocess.STDOUT,
            cwd=self.dir)
        _wait_smtp_banner(self.sink_port, time.monotonic() + self.start_timeout, self.sink_proc)

    def _milter_socket_sendmail(self):
        if self.milter_transport == 'inet':
            return 'inet:%d@127.0.0.1' % self.milter_port
        return 'unix:%s' % self.milter_socket

    def mc_text(self):
        """The .mc: every path inside DIR; see the module docstring."""
        d, cf = self.dir, os.path.join(self.root, CF_DIR)
        sink_args = 'TCP $h %d' % self.sink_port
        lines = [
            'divert(-1)dnl',
            '# written by tests/harness/sendmail.py',
            'divert(0)dnl',
            "include(`%s/m4/cf.m4')dnl" % cf,
            "VERSIONID(`smtptrace test instance')dnl",
            # no OSTYPE file fits (linux.m4 makes procmail the local mailer): name one
            "define(`__OSTYPE__', `smtptrace-test')dnl",
            "define(`confPID_FILE', `%s/sendmail.pid')dnl" % d,
            "define(`QUEUE_DIR', `%s/mqueue')dnl" % d,
            "define(`STATUS_FILE', `%s/statistics')dnl" % d,
            "define(`ALIAS_FILE', `%s/aliases')dnl" % d,
            "define(`HELP_FILE', `%s/etc/mail/helpfile')dnl" % self.root,
            "define(`confCW_FILE', `-o %s/local-host-names')dnl" % d,
            "define(`confCT_FILE', `-o %s/trusted-users')dnl" % d,
            "define(`confCR_FILE', `-o %s/relay-domains')dnl" % d,
            "define(`confDEAD_LETTER_DROP', `%s/dead.letter')dnl" % d,
            "define(`confSERVICE_SWITCH_FILE', `%s/service.switch')dnl" % d,
            "define(`confHOSTS_FILE', `%s/etc/hosts')dnl" % d,
            "define(`confHOST_STATUS_DIRECTORY', `')dnl",
            "define(`confDONT_PROBE_INTERFACES', `True')dnl",
            "define(`confTO_IDENT', `0')dnl",
            "define(`confAUTH_MECHANISMS', `')dnl",
            "define(`confQUEUE_LA', `100')dnl",
            "define(`confREFUSE_LA', `200')dnl",
            "define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl",
            "define(`confTO_DATABLOCK', `%ds')dnl" % self.datablock_timeout,
            "define(`confLOG_LEVEL', `9')dnl",
            "define(`SMART_HOST', `esmtp:[127.0.0.1]')dnl",
        ] + ["define(`%s_MAILER_ARGS', `%s')dnl" % (m, sink_args)
             for m in ('SMTP', 'ESMTP', 'SMTP8', 'DSMTP', 'RELAY')] + [
            "define(`LOCAL_MAILER_FLAGS', `SPhn9')dnl",
            "FEATURE(`no_default_msa')dnl",
            "FEATURE(`nocanonify')dnl",
            "FEATURE(`accept_unresolvable_domains')dnl",
            "FEATURE(`access_db', `hash -T<TMPF> -o %s/access')dnl" % d,
            # To: entries refuse recipients only with this feature
            "FEATURE(`blocklist_recipients')dnl",
            "DAEMON_OPTIONS(`Family=inet, Name=MTA, Addr=127.0.0.1, Port=%d')dnl" % self.smtp_port,
        ]
        if self.max_message_size is not None:
            lines.append("define(`confMAX_MESSAGE_SIZE', `%d')dnl" % self.max_message_size)
        if self.allow_bogus_helo:
            lines.append("define(`confALLOW_BOGUS_HELO', `True')dnl")
        filters = []
        for name in self.milters_before:
            filters.append((name.lower(), 'unix:%s' % self.test_milter_socket(name)))
        if self.use_milter:
            filters.append(('smtptrace', self._milter_socket_sendmail()))
        for name in self.milters_after:
            filters.append((name.lower(), 'unix:%s' % self.test_milter_socket(name)))
        for name, sock in filters:
            lines.append("INPUT_MAIL_FILTER(`%s', `S=%s, F=%s, T=C:10s;S:30s;R:30s;E:5m')dnl"
                         % (name, sock, self.milter_flags))
        lines += self.mc_extra
        lines += ["MAILER(`local')dnl", "MAILER(`smtp')dnl"]
        return '\n'.join(lines) + '\n'

    def _write_files(self):
        d = self.dir
        os.mkdir(self.etc_dir, 0o755)
        os.mkdir(self.queue_dir, 0o700)
        files = {
            'etc/hosts': '127.0.0.1\tlocalhost\n127.0.0.1\t%s %s\n::1\tlocalhost %s %s\n'
                         % (HOSTNAME, HOSTNAME.split('.')[0], HOSTNAME, HOSTNAME.split('.')[0]),
            'etc/resolv.conf': 'nameserver 127.0.0.1\n',
            'service.switch': 'hosts\tfiles\naliases\tfiles\n',
            'local-host-names': '%s\n' % HOSTNAME,
            'trusted-users': '',
            'relay-domains': '',
            'statistics': '',
            'aliases': 'postmaster: root\nMAILER-DAEMON: postmaster\n',
            'access': ''.join('%s\t%s\n' % kv for kv in self.access.items()),
            'sendmail.mc': self.mc_text(),
        }
        for name, text in files.items():
            with open(os.path.join(d, name), 'w') as fh:
                fh.write(text)
            os.chmod(os.path.join(d, name), 0o644)

    def _start_namespace(self):
        env = dict(os.environ)
        env['PYTHONPATH'] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self._ns_log_fh = open(os.path.join(self.dir, 'namespace.log'), 'ab')
        self.ns_proc = subprocess.Popen(
            [UNSHARE, '--uts', '--mount', '--propagation', 'private', sys.executable, '-m',
             'harness.sendmail', '--namespace', self.dir, HOSTNAME],
            stdin=subprocess.DEVNULL, stdout=self._ns_log_fh, stderr=subprocess.STDOUT,
            cwd=self.dir, env=env)
        ready = os.path.join(self.dir, 'namespace.ready')
        deadline = time.monotonic() + self.start_timeout
        while not os.path.exists(ready):
            if self.ns_proc.poll() is not None:
                raise HarnessError('the namespace exited with status %s:\n%s'
                                   % (self.ns_proc.returncode,
                                      _tail(os.path.join(self.dir, 'namespace.log'))))
            if time.monotonic() >= deadline:
                raise HarnessError('the namespace did not come up')
            time.sleep(0.01)

    def in_namespace(self, args, timeout=60):
        """Run a command in Sendmail's namespace; returns (status, output)."""
        r = subprocess.run([NSENTER, '--target', str(self.ns_proc.pid), '--uts', '--mount', '--']
                           + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, env=self._env(),
                           cwd=self.dir)
        return r.returncode, r.stdout.decode('utf-8', 'replace')

    def _build_cf(self):
        cf = os.path.join(self.root, CF_DIR)
        with open(self.mc_path) as src, open(self.cf_path, 'w') as out:
            r = subprocess.run(['m4', '-D_CF_DIR_=%s/' % cf], stdin=src, stdout=out,
                               stderr=subprocess.PIPE, timeout=30)
        if r.returncode != 0 or r.stderr.strip():
            raise HarnessError('m4 %s: %s' % (self.mc_path, r.stderr.decode(errors='replace').strip()))
        os.chmod(self.cf_path, 0o644)
        makemap = os.path.join(self.root, MAKEMAP)
        sendmail = os.path.join(self.root, SENDMAIL)
        with open(os.path.join(self.dir, 'access')) as src:
            r = subprocess.run([makemap, '-C', self.cf_path, 'hash', os.path.join(self.dir, 'access')],
                               stdin=src, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=self._env(), timeout=30)
        if r.returncode != 0:
            raise HarnessError('makemap access: %s' % r.stdout.decode(errors='replace').strip())
        rc, out = self.in_namespace([sendmail, '-bi', '-C', self.cf_path])
        if rc != 0:
            raise HarnessError('newaliases (sendmail -bi): %s' % out.strip())

    def _start_sendmail(self):
        sendmail = os.path.join(self.root, SENDMAIL)
        self._sendmail_log_fh = open(os.path.join(self.dir, 'sendmail.out'), 'ab')
        # nsenter execs sendmail: the Popen pid is Sendmail's daemon pid
        self.sendmail_proc = subprocess.Popen(
            [NSENTER, '--target', str(self.ns_proc.pid), '--uts', '--mount', '--',
             sendmail, '-bD', '-L', LOG_TAG, '-C', self.cf_path],
            stdin=subprocess.DEVNULL, stdout=self._sendmail_log_fh, stderr=subprocess.STDOUT,
            cwd=self.dir, env=self._env())
        deadline = time.monotonic() + self.start_timeout
        while True:
            pid = self._pid_from_file()
            if pid is not None:
                break
            if self.sendmail_proc.poll() is not None:
                raise HarnessError('sendmail exited with status %s:\n%s\nmaillog:\n%s'
                                   % (self.sendmail_proc.returncode,
                                      _tail(os.path.join(self.dir, 'sendmail.out')),
                                      _tail(self.maillog_path)))
            if time.monotonic() >= deadline:
                raise HarnessError('sendmail wrote no pid file within %ss; maillog:\n%s'
                                   % (self.start_timeout, _tail(self.maillog_path)))
            time.sleep(0.01)
        if pid != self.sendmail_proc.pid:
            raise HarnessError('the pid file says %d, the process started is %d'
                               % (pid, self.sendmail_proc.pid))
        self.sendmail_pid = pid
        _wait_listening(self.smtp_port, deadline, self.sendmail_proc, 'sendmail')

    def _pid_from_file(self):
        """Line 1 of the pid file, once the file is whole (line 2 is the command line)."""
        try:
            with open(self.pid_path) as fh:
                lines = fh.read().split('\n')
            if len(lines) >= 2 and lines[1].strip():
                return int(lines[0])
        except (OSError, ValueError):
            pass
        return None

    def stop(self):
        """Stop Sendmail and the namespace (by PID), then the milter, the sink and the
        temp dir (Instance.stop)."""
        if self.sendmail_proc is not None:
            self._stop_proc(self.sendmail_proc, signal.SIGTERM)
            self.sendmail_proc = None
        if self.ns_proc is not None:
            self._stop_proc(self.ns_proc, signal.SIGTERM)
            self.ns_proc = None
        for attr in ('_sendmail_log_fh', '_ns_log_fh'):
            fh = getattr(self, attr, None)
            if fh:
                fh.close()
            setattr(self, attr, None)
        # libmilter takes up to 5 s to leave smfi_main after SIGTERM: signal every
        # milter first, then wait for them together (Instance.stop finds them gone)
        milters = [p for p in [self.milter_proc] + list(self.test_milter_procs.values())
                   if p is not None and p.poll() is None]
        for p in milters:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for p in milters:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        Instance.stop(self)

    def sendmail_running(self):
        return self.sendmail_proc is not None and self.sendmail_proc.poll() is None

    # ---- Sendmail's log -----------------------------------------------------------------

    maillog_line = SendmailLine

    def queue_id(self, message_id=None, timeout=10):
        """The queue id of the message with this Message-ID: Sendmail's
        "QID: from=<..>, size=N, ..., msgid=<ID>, ..." line."""
        mid = message_id.strip()
        if not mid.startswith('<'):
            mid = '<%s>' % mid
        line, _ = self.wait_maillog(r'^\S+: from=<.*, msgid=%s,' % re.escape(mid), timeout)
        return line.qid

    def wait_delivered(self, queue_id=None, pred=None, timeout=15):
        """Wait for one delivered message and return it parsed. queue_id: waits for
        Sendmail's "QID: to=<...>, ..., stat=Sent (...)", then picks the file whose
        Received: header says "id QID"; pred: any Message -> bool."""
        deadline = time.monotonic() + timeout
        if queue_id is not None:
            self.wait_maillog(r'^%s: to=<.*, stat=Sent' % re.escape(queue_id), timeout)
            qrx = re.compile(r'\bid %s\b' % re.escape(queue_id))
            qpred = lambda m: any(qrx.search(f.value) for f in m.get_all('Received'))  # noqa: E731
            userpred = pred
            pred = (lambda m: qpred(m) and userpred(m)) if userpred else qpred
        if pred is None:
            raise ValueError('wait_delivered needs queue_id or pred')
        return Instance.wait_delivered(self, pred=pred, timeout=max(0.1, deadline - time.monotonic()))


def main(argv=None):
    """python3 -m harness.sendmail [--fetch] [--no-milter] (from tests/): --fetch unpacks
    the packages into REPO/build/sendmail-root (make deps-sendmail); otherwise start an
    instance, keep its temp dir and wait (Ctrl-C stops it), for poking at it by hand.
    --namespace is for the harness itself."""
    import argparse
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument('--fetch', action='store_true')
    ap.add_argument('--namespace', nargs=2, metavar=('DIR', 'HOSTNAME'), help=argparse.SUPPRESS)
    ap.add_argument('--no-milter', action='store_true')
    ap.add_argument('--datablock-timeout', type=int, default=5)
    args = ap.parse_args(argv)
    if args.namespace:
        namespace_main(*args.namespace)
        return 0
    if args.fetch:
        if root_ready():
            print('deps-sendmail: %s is there (sendmail-bin %s)' % (ROOT, sendmail_version()))
            return 0
        try:
            ensure_root(say=lambda m: print('deps-sendmail: %s' % m))
        except (HarnessError, OSError, subprocess.SubprocessError) as e:
            sys.stderr.write('deps-sendmail: %s\n' % e)
            return 1
        return 0
    inst = SendmailInstance(milter=not args.no_milter, datablock_timeout=args.datablock_timeout,
                            keep=True)
    with inst:
        print('dir %s\nsmtp 127.0.0.1:%d\nsink 127.0.0.1:%d\nstarted in %.2f s'
              % (inst.dir, inst.smtp_port, inst.sink_port, inst.start_seconds))
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
