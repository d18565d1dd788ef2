"""A private, throw-away mail system on 127.0.0.1 for smtptrace's end-to-end tests.

    from harness.instance import Instance
    with Instance(smtpd_timeout=5) as inst:          # milter attached by default
        ... swaks --server 127.0.0.1:%d % inst.smtp_port ...
        msg = inst.wait_delivered(queue_id=qid)     # parsed message from smtp-sink
        line = inst.wait_milter_line(lambda l: l.qid == qid and l.kind == 'txn')

What runs, all under one temp dir DIR (chmod 0755, removed at stop unless
SMTPTRACE_KEEP=1 is set in the environment):

  smtp-sink     127.0.0.1:sink_port, -u postfix, one file per message in DIR/sink/
  the milter    build/smtptrace-milter -f -c DIR/smtptrace.conf, socket DIR/milter.sock,
                stderr (its log lines) in DIR/milter.log
  Postfix       config DIR/etc, queue DIR/queue, data DIR/data, log DIR/maillog,
                smtpd (not chrooted) on 127.0.0.1:smtp_port, relaying everything to
                [127.0.0.1]:sink_port; recipients listed in DIR/etc/rcpt_access are
                rejected by check_recipient_access.

Optional, all off by default (tests/e2e/test_truth.py uses them):
  test milters  build/test-milter (tests/milter/test_milter.c) as NAME, socket DIR/NAME.sock
                (lower case), log DIR/NAME.log, listed before or after smtptrace in
                smtpd_milters, each with default_action=accept
  limits/checks message_size_limit; header_checks and body_checks (regexp tables written
                to DIR/etc/header_checks, DIR/etc/body_checks); smtpd_data_restrictions
                with check_sender_access on DIR/etc/data_access

Only processes started here are stopped, by PID (Postfix via `postfix -c DIR/etc stop`).
Python 3 standard library only.
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

from .parse import LogLine, MaillogLine, Message

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
DEFAULT_MILTER = os.path.join(REPO, 'build', 'smtptrace-milter')
TEST_MILTER_NAME = 'test-milter'

POSTFIX = '/usr/sbin/postfix'
SMTP_SINK = '/usr/sbin/smtp-sink'

# Recipients Postfix itself rejects, in access(5) syntax. Postfix answers RCPT with
# "554 5.7.1 <blocked@example.test>: Recipient address rejected: Access denied".
DEFAULT_RCPT_ACCESS = {
    'blocked@example.test': 'REJECT 5.7.1 Access denied',
    'blocked2@example.test': 'REJECT 5.7.1 Access denied',
}


class HarnessError(RuntimeError):
    pass


def free_port():
    """A currently free TCP port on 127.0.0.1 (the kernel's choice; never 25)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _tail(path, lines=20):
    try:
        with open(path, 'r', errors='replace') as fh:
            return ''.join(fh.readlines()[-lines:])
    except OSError as e:
        return '(%s)' % e


def complete_lines(path):
    """The complete lines of a log file still being written (a last line without its
    newline is left for the next read); [] when the file is not there yet."""
    try:
        with open(path, 'rb') as fh:
            text = fh.read().decode('utf-8', 'surrogateescape')
    except FileNotFoundError:
        return []
    return text.split('\n')[:-1]


def _wait_smtp_banner(port, deadline, proc=None):
    """Poll until something on 127.0.0.1:port sends a 220 greeting; then QUIT."""
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise HarnessError('process exited with status %s while waiting for port %d' % (proc.returncode, port))
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=2) as s:
                data = s.recv(512)
                if data.startswith(b'220'):
                    try:
                        s.sendall(b'QUIT\r\n')
                        s.recv(512)
                    except OSError:
                        pass
                    return
                last = data
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise HarnessError('no SMTP greeting on 127.0.0.1:%d (last: %r)' % (port, last))


def port_listening(port):
    """True when something listens on 127.0.0.1:port (or 0.0.0.0:port), read from
    /proc/net/tcp: no connection is made, so no daemon sees a probe session."""
    want = {'0100007F:%04X' % port, '00000000:%04X' % port}
    try:
        with open('/proc/net/tcp') as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                if len(parts) > 3 and parts[3] == '0A' and parts[1] in want:
                    return True
    except OSError:
        pass
    return False


def _wait_listening(port, deadline, proc=None, what='port'):
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise HarnessError('%s exited with status %s while waiting for port %d' % (what, proc.returncode, port))
        if port_listening(port):
            return
        time.sleep(0.05)
    raise HarnessError('nothing listens on 127.0.0.1:%d (%s)' % (port, what))


class Instance:
    """Postfix + smtp-sink (+ the milter) on loopback. See the module docstring.

    milter          attach the milter (smtpd_milters) and start it (default True)
    milter_path     binary (default $SMTPTRACE_MILTER or REPO/build/smtptrace-milter)
    milter_args     extra command-line arguments for the milter (e.g. ['-v'])
    milter_transport  "unix" (DIR/milter.sock, the default) or "inet" (a loopback port).
                    Seen with libmilter 8.17.1: on a unix socket, when Postfix sends a
                    session's no-reply events and closes before libmilter reads them,
                    poll() gives POLLIN|POLLHUP and libmilter's mi_rd_cmd() ends the
                    session on the HUP: the milter gets only xxfi_close. Over TCP the
                    close is POLLIN (+RDHUP) and every event is still read.
    log_format      "kv" or "json" (log.format in the milter's config)
    smtpd_timeout   seconds; also written as mta.data_timeout in the milter's config
    timeout_tolerance   mta.timeout_tolerance (seconds)
    main_cf         dict of extra main.cf settings (override the defaults here),
                    e.g. {'default_process_limit': 200}
    master_cf_extra list of extra master.cf lines
    rcpt_access     dict address -> access(5) action (default DEFAULT_RCPT_ACCESS)
    milter_config_extra  text appended to smtptrace.conf
    keep            keep the temp dir at stop (default: $SMTPTRACE_KEEP is set and not "0")
    milters_before, milters_after
                    names of test milters (tests/milter/test_milter.c) to start and list
                    before / after smtptrace in smtpd_milters, e.g. ['Before']: each acts
                    only on a header "X-Test-NAME: reject|tempfail|discard" (default none)
    test_milter_path  the test milter's binary (default $SMTPTRACE_TEST_MILTER, else
                    test-milter beside the smtptrace milter's binary, else REPO/build/test-milter)
    message_size_limit  bytes (main.cf message_size_limit; default: Postfix's own)
    header_checks, body_checks
                    lists of regexp(5) table lines, e.g. ['/^Subject:.*REJECTME/ REJECT no'],
                    written to DIR/etc/header_checks / body_checks (default: none)
    data_access     dict sender -> access(5) action; sets smtpd_data_restrictions =
                    check_sender_access texthash:DIR/etc/data_access (default: none)
    """

    def __init__(self, milter=True, milter_path=None, milter_args=(), milter_transport='unix',
                 log_format='kv',
                 smtpd_timeout=5, timeout_tolerance=1, main_cf=None, master_cf_extra=(),
                 rcpt_access=None, milter_config_extra='', keep=None, start_timeout=20,
                 milters_before=(), milters_after=(), test_milter_path=None,
                 message_size_limit=None, header_checks=None, body_checks=None,
                 data_access=None):
        self.use_milter = milter
        self.milter_path = milter_path or os.environ.get('SMTPTRACE_MILTER') or DEFAULT_MILTER
        self.milter_args = list(milter_args)
        if milter_transport not in ('unix', 'inet'):
            raise ValueError('milter_transport must be "unix" or "inet"')
        self.milter_transport = milter_transport
        self.milter_port = None
        self.log_format = log_format
        self.smtpd_timeout = int(smtpd_timeout)
        self.timeout_tolerance = int(timeout_tolerance)
        self.extra_main_cf = dict(main_cf or {})
        self.master_cf_extra = list(master_cf_extra)
        self.rcpt_access = dict(DEFAULT_RCPT_ACCESS if rcpt_access is None else rcpt_access)
        self.milter_config_extra = milter_config_extra
        if keep is None:
            keep = os.environ.get('SMTPTRACE_KEEP', '') not in ('', '0')
        self.keep = keep
        self.start_timeout = start_timeout
        self.milters_before = list(milters_before)
        self.milters_after = list(milters_after)
        names = [n.lower() for n in self.milters_before + self.milters_after]
        for n in names:
            if not re.fullmatch(r'[a-z0-9][a-z0-9-]*', n) or n == 'milter':
                raise ValueError('bad test milter name %r' % n)
        if len(set(names)) != len(names):
            raise ValueError('test milter names must differ')
        self.test_milter_path = test_milter_path or os.environ.get('SMTPTRACE_TEST_MILTER')
        if not self.test_milter_path:
            beside = os.path.join(os.path.dirname(self.milter_path), TEST_MILTER_NAME)
            self.test_milter_path = (beside if os.access(beside, os.X_OK)
                                     else os.path.join(REPO, 'build', TEST_MILTER_NAME))
        self.message_size_limit = message_size_limit
        self.header_checks = None if header_checks is None else list(header_checks)
        self.body_checks = None if body_checks is None else list(body_checks)
        self.data_access = None if data_access is None else dict(data_access)
        self.test_milter_procs = {}      # name -> Popen
        self._test_milter_log_fhs = []

        self.dir = None
        self.smtp_port = None
        self.sink_port = None
        self.sink_proc = None
        self.milter_proc = None
        self.postfix_started = False
        self.milter_returncode = None
        self._milter_log_fh = None
        self._sink_log_fh = None

    # ---- paths --------------------------------------------------------------------

    @property
    def config_dir(self):
        return os.path.join(self.dir, 'etc')

    @property
    def queue_dir(self):
        return os.path.join(self.dir, 'queue')

    @property
    def data_dir(self):
        return os.path.join(self.dir, 'data')

    @property
    def sink_dir(self):
        return os.path.join(self.dir, 'sink')

    @property
    def maillog_path(self):
        return os.path.join(self.dir, 'maillog')

    @property
    def milter_log_path(self):
        return os.path.join(self.dir, 'milter.log')

    @property
    def milter_socket(self):
        return os.path.join(self.dir, 'milter.sock')

    @property
    def milter_config(self):
        return os.path.join(self.dir, 'smtptrace.conf')

    # ---- start / stop ---------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        if os.geteuid() != 0:
            raise HarnessError('the e2e harness runs Postfix and must run as root')
        for tool in (POSTFIX, SMTP_SINK):
            if not os.access(tool, os.X_OK):
                raise HarnessError('%s is missing (apt-get install postfix)' % tool)
        if self.use_milter and not os.access(self.milter_path, os.X_OK):
            raise HarnessError('milter binary %s not found: run make first' % self.milter_path)
        if (self.milters_before or self.milters_after) and not os.access(self.test_milter_path, os.X_OK):
            raise HarnessError('test milter binary %s not found: make build/test-milter'
                               % self.test_milter_path)
        self.dir = tempfile.mkdtemp(prefix='smtptrace-e2e.')
        os.chmod(self.dir, 0o755)
        self._check_parents_reachable()
        self.smtp_port = free_port()
        self.sink_port = free_port()
        while self.sink_port == self.smtp_port:
            self.sink_port = free_port()
        if self.milter_transport == 'inet':
            self.milter_port = free_port()
            while self.milter_port in (self.smtp_port, self.sink_port):
                self.milter_port = free_port()
        try:
            self._start_sink()
            if self.use_milter:
                self._write_milter_config()
                self._start_milter()
            for name in self.milters_before + self.milters_after:
                self._start_test_milter(name)
            self._write_postfix_config()
            self._start_postfix()
        except BaseException:
            self.stop()
            raise
        return self

    def _check_parents_reachable(self):
        path = self.dir
        while True:
            st = os.stat(path)
            if not st.st_mode & stat.S_IXOTH:
                raise HarnessError('%s is not searchable by user postfix (mode %o)' % (path, st.st_mode & 0o7777))
            parent = os.path.dirname(path)
            if parent == path:
                return
            path = parent

    def _start_sink(self):
        import pwd
        pw = pwd.getpwnam('postfix')
        os.mkdir(self.sink_dir, 0o755)
        os.chown(self.sink_dir, pw.pw_uid, pw.pw_gid)
        # -d TEMPLATE: strftime(TEMPLATE) + a random hex suffix, one file per message;
        # "%M." gives sink/MM.<hex>. The trailing argument (listen backlog) is mandatory.
        self._sink_log_fh = open(os.path.join(self.dir, 'sink.log'), 'ab')
        self.sink_proc = subprocess.Popen(
            [SMTP_SINK, '-u', 'postfix', '-d', os.path.join(self.sink_dir, '%M.'),
             '127.0.0.1:%d' % self.sink_port, '256'],
            stdin=subprocess.DEVNULL, stdout=self._sink_log_fh, stderr=subprocess.STDOUT,
            cwd=self.dir)
        _wait_smtp_banner(self.sink_port, time.monotonic() + self.start_timeout, self.sink_proc)

    @property
    def milter_socket_libmilter(self):
        """The milter's socket in libmilter's syntax (the config's socket = ...)."""
        if self.milter_transport == 'inet':
            return 'inet:%d@127.0.0.1' % self.milter_port
        return 'unix:%s' % self.milter_socket

    @property
    def milter_socket_postfix(self):
        """The same socket in Postfix's syntax (smtpd_milters)."""
        if self.milter_transport == 'inet':
            return 'inet:127.0.0.1:%d' % self.milter_port
        return 'unix:%s' % self.milter_socket

    def _write_milter_config(self):
        text = (
            '# written by tests/harness/instance.py\n'
            'socket = "%s";\n'
            # a string: libconfig has no octal literals (the contract's "socket_umask = 0;"
            # is rejected by the milter with "expected a string of octal digits").
            'socket_umask = "0";\n'
            'log: { format = "%s"; ident = "smtptrace"; facility = "mail"; };\n'
            'header: { enable = true; name = "X-SMTP-Trace"; authserv_id = "mx.test";'
            ' skip_authenticated = false; };\n'
            'mta: { data_timeout = %d; timeout_tolerance = %d; };\n'
            % (self.milter_socket_libmilter, self.log_format, self.smtpd_timeout,
               self.timeout_tolerance))
        if 'stall:' not in self.milter_config_extra:
            # the milter refuses a stall warning that could never come before the
            # MTA's data timeout; tests that watch stalls set their own
            text += 'stall: { warn_after = %d; };\n' % max(1, self.smtpd_timeout - 1)
        if self.milter_config_extra:
            text += self.milter_config_extra.rstrip('\n') + '\n'
        with open(self.milter_config, 'w') as fh:
            fh.write(text)

    def _start_milter(self):
        self._milter_log_fh = open(self.milter_log_path, 'ab')
        self.milter_proc = subprocess.Popen(
            [self.milter_path, '-f', '-c', self.milter_config] + self.milter_args,
            stdin=subprocess.DEVNULL, stdout=self._milter_log_fh, stderr=subprocess.STDOUT,
            cwd=self.dir)
        deadline = time.monotonic() + self.start_timeout
        if self.milter_transport == 'inet':
            _wait_listening(self.milter_port, deadline, self.milter_proc, 'the milter')
            return
        self._wait_unix_socket(self.milter_socket, self.milter_proc, self.milter_log_path,
                               deadline, 'milter')

    @staticmethod
    def _wait_unix_socket(path, proc, log_path, deadline, what):
        # Wait for the socket file. libmilter binds then listens at once; a short grace
        # period covers the gap. A probe connection is avoided on purpose: the milter
        # would see a session that never negotiates.
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise HarnessError('%s exited with status %s at start:\n%s'
                                   % (what, proc.returncode, _tail(log_path)))
            try:
                if stat.S_ISSOCK(os.stat(path).st_mode):
                    time.sleep(0.2)
                    mode = stat.S_IMODE(os.stat(path).st_mode)
                    if mode & 0o006 != 0o006:
                        raise HarnessError('%s socket mode is %o; user postfix cannot connect '
                                           '(socket_umask = 0 should give 777)' % (what, mode))
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise HarnessError('%s socket %s did not appear:\n%s' % (what, path, _tail(log_path)))

    # ---- test milters (tests/milter/test_milter.c) -------------------------------------

    def test_milter_socket(self, name):
        return os.path.join(self.dir, '%s.sock' % name.lower())

    def test_milter_log_path(self, name):
        return os.path.join(self.dir, '%s.log' % name.lower())

    def _start_test_milter(self, name):
        fh = open(self.test_milter_log_path(name), 'ab')
        self._test_milter_log_fhs.append(fh)
        proc = subprocess.Popen(
            [self.test_milter_path, '-p', 'unix:%s' % self.test_milter_socket(name), '-n', name],
            stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, cwd=self.dir)
        self.test_milter_procs[name] = proc
        self._wait_unix_socket(self.test_milter_socket(name), proc, self.test_milter_log_path(name),
                               time.monotonic() + self.start_timeout, 'test milter %s' % name)

    def test_milter_log_text(self, name):
        try:
            with open(self.test_milter_log_path(name), 'rb') as fh:
                return fh.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def main_cf_settings(self):
        d = self.dir
        cf = {
            'compatibility_level': '3.6',
            'config_directory': self.config_dir,
            'queue_directory': self.queue_dir,
            'data_directory': self.data_dir,
            'mail_owner': 'postfix',
            'setgid_group': 'postdrop',
            'myhostname': 'mx.test',
            'mydomain': 'test',
            'myorigin': '$myhostname',
            'mydestination': '',
            'local_recipient_maps': '',
            'alias_maps': '',
            'alias_database': '',
            'inet_interfaces': '127.0.0.1',
            'inet_protocols': 'ipv4',
            'mynetworks': '127.0.0.0/8',
            'relayhost': '[127.0.0.1]:%d' % self.sink_port,
            'smtpd_peername_lookup': 'no',
            'smtp_dns_support_level': 'disabled',
            'in_flow_delay': '0',
            'smtpd_timeout': '%ds' % self.smtpd_timeout,
            'smtpd_client_port_logging': 'yes',
            'smtpd_recipient_restrictions':
                'check_recipient_access texthash:%s, permit_mynetworks, reject_unauth_destination'
                % os.path.join(self.config_dir, 'rcpt_access'),
            'maillog_file': self.maillog_path,
            'maillog_file_prefixes': d,
            'biff': 'no',
            'smtputf8_enable': 'yes',
        }
        milters = ['{ unix:%s, default_action=accept }' % self.test_milter_socket(n)
                   for n in self.milters_before]
        if self.use_milter:
            milters.append('{ %s, default_action=accept }' % self.milter_socket_postfix)
        milters += ['{ unix:%s, default_action=accept }' % self.test_milter_socket(n)
                    for n in self.milters_after]
        if milters:
            cf['smtpd_milters'] = ', '.join(milters)
            cf['milter_protocol'] = '6'
        if self.message_size_limit is not None:
            cf['message_size_limit'] = str(int(self.message_size_limit))
        if self.header_checks is not None:
            cf['header_checks'] = 'regexp:%s' % os.path.join(self.config_dir, 'header_checks')
        if self.body_checks is not None:
            cf['body_checks'] = 'regexp:%s' % os.path.join(self.config_dir, 'body_checks')
        if self.data_access is not None:
            cf['smtpd_data_restrictions'] = ('check_sender_access texthash:%s'
                                             % os.path.join(self.config_dir, 'data_access'))
        for k, v in self.extra_main_cf.items():
            cf[k] = str(v)
        return cf

    def _master_cf(self):
        # service type private unpriv chroot wakeup maxproc command
        # chroot is "n" everywhere: the milter socket lives outside any chroot.
        lines = [
            '127.0.0.1:%d inet n - n - - smtpd' % self.smtp_port,
            'pickup    unix  n - n 60  1 pickup',
            'cleanup   unix  n - n -   0 cleanup',
            'qmgr      unix  n - n 300 1 qmgr',
            'rewrite   unix  - - n -   - trivial-rewrite',
            'bounce    unix  - - n -   0 bounce',
            'defer     unix  - - n -   0 bounce',
            'trace     unix  - - n -   0 bounce',
            'verify    unix  - - n -   1 verify',
            'flush     unix  n - n 1000? 0 flush',
            'proxymap  unix  - - n -   - proxymap',
            'smtp      unix  - - n -   - smtp',
            'relay     unix  - - n -   - smtp',
            'showq     unix  n - n -   - showq',
            'error     unix  - - n -   - error',
            'retry     unix  - - n -   - error',
            'discard   unix  - - n -   - discard',
            'local     unix  - n n -   - local',
            'anvil     unix  - - n -   1 anvil',
            'scache    unix  - - n -   1 scache',
            'postlog   unix-dgram n - n - 1 postlogd',
        ]
        return '\n'.join(lines + self.master_cf_extra) + '\n'

    def _write_postfix_config(self):
        os.mkdir(self.config_dir, 0o755)
        os.mkdir(self.queue_dir, 0o755)      # root-owned; data_dir is left to Postfix
        with open(os.path.join(self.config_dir, 'main.cf'), 'w') as fh:
            fh.write('# written by tests/harness/instance.py\n')
            for k, v in self.main_cf_settings().items():
                fh.write('%s = %s\n' % (k, v))
        with open(os.path.join(self.config_dir, 'master.cf'), 'w') as fh:
            fh.write(self._master_cf())
        with open(os.path.join(self.config_dir, 'rcpt_access'), 'w') as fh:
            for addr, action in self.rcpt_access.items():
                fh.write('%s %s\n' % (addr, action))
        for fname, lines in (('header_checks', self.header_checks), ('body_checks', self.body_checks)):
            if lines is not None:
                with open(os.path.join(self.config_dir, fname), 'w') as fh:
                    fh.write('# written by tests/harness/instance.py\n')
                    for line in lines:
                        fh.write(line.rstrip('\n') + '\n')
        if self.data_access is not None:
            with open(os.path.join(self.config_dir, 'data_access'), 'w') as fh:
                for addr, action in self.data_access.items():
                    fh.write('%s %s\n' % (addr, action))

    def _postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, '-c', self.config_dir] + list(args),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)

    def _start_postfix(self):
        r = self._postfix('check')
        if r.returncode != 0:
            raise HarnessError('postfix check failed (%d):\n%s\nmaillog:\n%s'
                               % (r.returncode, r.stdout.decode(errors='replace'), _tail(self.maillog_path)))
        r = self._postfix('start')
        if r.returncode != 0:
            raise HarnessError('postfix start failed (%d):\n%s\nmaillog:\n%s'
                               % (r.returncode, r.stdout.decode(errors='replace'), _tail(self.maillog_path)))
        self.postfix_started = True
        # No probe connection: it would be a session in the milter's log.
        _wait_listening(self.smtp_port, time.monotonic() + self.start_timeout, what='Postfix')

    def _master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, 'pid', 'master.pid')) as fh:
                return int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        """Stop Postfix, the milter and the sink (by PID), then remove the temp dir."""
        errors = []
        if self.postfix_started:
            pid = self._master_pid()
            try:
                r = self._postfix('stop')
                if r.returncode != 0:
                    errors.append('postfix stop: %s' % r.stdout.decode(errors='replace').strip())
            except subprocess.TimeoutExpired:
                errors.append('postfix stop timed out')
            if pid:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and os.path.exists('/proc/%d' % pid):
                    time.sleep(0.05)
            self.postfix_started = False
        if self.milter_proc is not None:
            self.milter_returncode = self._stop_proc(self.milter_proc, signal.SIGTERM)
            self.milter_proc = None
        for name in list(self.test_milter_procs):
            self._stop_proc(self.test_milter_procs.pop(name), signal.SIGTERM)
        if self.sink_proc is not None:
            self._stop_proc(self.sink_proc, signal.SIGTERM)
            self.sink_proc = None
        for fh in [self._milter_log_fh, self._sink_log_fh] + self._test_milter_log_fhs:
            if fh:
                fh.close()
        self._milter_log_fh = self._sink_log_fh = None
        self._test_milter_log_fhs = []
        if self.dir and os.path.isdir(self.dir):
            if self.keep:
                sys.stderr.write('SMTPTRACE_KEEP: kept %s\n' % self.dir)
            else:
                for _ in range(20):
                    shutil.rmtree(self.dir, ignore_errors=True)
                    if not os.path.exists(self.dir):
                        break
                    time.sleep(0.1)
        if errors:
            sys.stderr.write('harness: %s\n' % '; '.join(errors))

    @staticmethod
    def _stop_proc(proc, sig, grace=5):
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(grace)
        return proc.returncode

    def wait_milter_listening(self, port, timeout=10):
        """Wait until the milter listens on 127.0.0.1:port (its metrics.http_listen)."""
        deadline = time.monotonic() + timeout
        while not port_listening(port):
            if time.monotonic() >= deadline or not self.milter_running():
                raise HarnessError('the milter does not listen on 127.0.0.1:%d' % port)
            time.sleep(0.05)

    def milter_running(self):
        return self.milter_proc is not None and self.milter_proc.poll() is None

    # ---- milter log -----------------------------------------------------------------

    def milter_log_text(self):
        try:
            with open(self.milter_log_path, 'rb') as fh:
                return fh.read().decode('utf-8', 'surrogateescape')
        except FileNotFoundError:
            return ''

    def milter_lines(self):
        """All complete lines of the milter's log, parsed (LogLine)."""
        return [LogLine(l) for l in complete_lines(self.milter_log_path)]

    def wait_milter_line(self, pred, timeout=10, count=1):
        """Poll the milter log until `count` lines satisfy pred; return the first (or the list
        when count > 1). Raises HarnessError on timeout, with the log's tail."""
        deadline = time.monotonic() + timeout
        while True:
            found = [l for l in self.milter_lines() if pred(l)]
            if len(found) >= count:
                return found[0] if count == 1 else found[:count]
            if time.monotonic() >= deadline:
                raise HarnessError('timed out after %ss waiting for a milter log line; tail:\n%s'
                                   % (timeout, _tail(self.milter_log_path, 8)))
            time.sleep(0.05)

    # ---- Postfix maillog ------------------------------------------------------------

    maillog_line = MaillogLine      # how a line of the MTA's log is parsed

    def maillog_lines(self):
        return [self.maillog_line(l) for l in complete_lines(self.maillog_path)]

    def wait_maillog(self, pattern, timeout=10):
        """Poll the maillog until a line's text matches regex `pattern`; return
        (MaillogLine, match)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.maillog_lines():
                m = rx.search(line.text)
                if m:
                    return line, m
            if time.monotonic() >= deadline:
                raise HarnessError('timed out after %ss waiting for maillog /%s/; tail:\n%s'
                                   % (timeout, pattern, _tail(self.maillog_path, 8)))
            time.sleep(0.05)

    def queue_id(self, message_id=None, client_port=None, timeout=10):
        """The queue id Postfix logged for a message, found by its Message-ID
        ("QID: message-id=<...>", cleanup) or by the client's source port
        ("QID: client=unknown[127.0.0.1]:PORT", smtpd; smtpd_client_port_logging = yes)."""
        if message_id is not None:
            mid = message_id.strip()
            if not mid.startswith('<'):
                mid = '<%s>' % mid
            line, _ = self.wait_maillog(r'^[0-9A-Za-z]+: message-id=%s$' % re.escape(mid), timeout)
            return line.qid
        if client_port is not None:
            line, _ = self.wait_maillog(r'^[0-9A-Za-z]+: client=\S*\[127\.0\.0\.1\]:%d$' % client_port, timeout)
            return line.qid
        raise ValueError('queue_id needs message_id or client_port')

    def maillog_for(self, qid):
        return [l for l in self.maillog_lines() if l.qid == qid]

    # ---- delivered messages -----------------------------------------------------------

    def sink_files(self):
        out = []
        for root, _dirs, files in os.walk(self.sink_dir):
            for name in files:
                out.append(os.path.join(root, name))
        return sorted(out, key=lambda p: os.stat(p).st_mtime)

    def delivered(self):
        """Every message smtp-sink has written so far, parsed (Message)."""
        msgs = []
        for p in self.sink_files():
            try:
                msgs.append(Message.from_file(p))
            except (OSError, ValueError):
                pass
        return msgs

    def wait_delivered(self, queue_id=None, pred=None, timeout=15):
        """Wait for one delivered message and return it parsed.

        queue_id: waits for Postfix's "QID: to=<...>, relay=..., status=sent" (the sink has
        then answered 250 to the final dot), then picks the file whose Received: header
        says "id QID". pred: any Message -> bool. The file must be stable for 100 ms.
        """
        deadline = time.monotonic() + timeout
        if queue_id is not None:
            self.wait_maillog(r'^%s: to=<.*status=sent' % re.escape(queue_id), timeout)
            qrx = re.compile(r'\bid %s\b' % re.escape(queue_id))
            qpred = lambda m: any(qrx.search(f.value) for f in m.get_all('Received'))
            userpred = pred
            pred = (lambda m: qpred(m) and userpred(m)) if userpred else qpred
        if pred is None:
            raise ValueError('wait_delivered needs queue_id or pred')
        while True:
            for p in self.sink_files():
                try:
                    size = os.stat(p).st_size
                    msg = Message.from_file(p)
                except (OSError, ValueError):
                    continue
                if pred(msg):
                    time.sleep(0.1)
                    if os.stat(p).st_size == size:
                        return msg
            if time.monotonic() >= deadline:
                raise HarnessError('timed out after %ss waiting for a delivered message (%d in sink)'
                                   % (timeout, len(self.sink_files())))
            time.sleep(0.05)


def main(argv=None):
    """python3 -m harness.instance [--no-milter] [--keep]: start an instance and wait
    (Ctrl-C stops it). For poking at it by hand."""
    import argparse
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument('--no-milter', action='store_true')
    ap.add_argument('--smtpd-timeout', type=int, default=5)
    ap.add_argument('--log-format', default='kv')
    args = ap.parse_args(argv)
    inst = Instance(milter=not args.no_milter, smtpd_timeout=args.smtpd_timeout,
                    log_format=args.log_format, keep=True)
    with inst:
        print('dir %s\nsmtp 127.0.0.1:%d\nsink 127.0.0.1:%d' % (inst.dir, inst.smtp_port, inst.sink_port))
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == '__main__':
    main()
