#!/usr/bin/env python3
"""smtptrace-milter as a daemon, the way an init script or an operator starts it.

-n config checks, detaching with a pid file, -u user:group (socket handed
over, privileges dropped), SIGTERM, start-up failures. Needs root (for -u).
Prints one line per case and "daemon: N passed, M failed".
"""
import os
import pwd
import grp
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get('SMTPTRACE_MILTER') or os.path.join(TOP, 'build', 'smtptrace-milter')


class Fail(Exception):
    pass


def check(cond, got, want):
    if not cond:
        raise Fail('got %s, want %s' % (got, want))


def run(args, timeout=20):
    r = subprocess.run([BIN] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def alive(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            return 'State:\tZ' not in f.read()
    except FileNotFoundError:
        return False


def wait_gone(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def case_config_check_ok():
    rc, out, _ = run(['-n', '-c', os.path.join(TOP, 'conf', 'smtptrace.conf')])
    check(rc == 0 and out == 'configuration OK\n', 'exit %d %r' % (rc, out), 'exit 0, "configuration OK"')


def case_config_check_errors(d):
    conf = os.path.join(d, 'bad.conf')
    with open(conf, 'w') as f:
        f.write('socket = "inet:8895@127.0.0.1";\nlog: { format = "xml"; };\nbogus = 1;\n')
    rc, out, err = run(['-n', '-c', conf])
    check(rc == 1, 'exit %d' % rc, 'exit 1')
    check('%s:2: log.format: "xml" is not one of: kv, json' % conf in err, repr(err), 'file:line: message')
    check('%s:3: unknown key \'bogus\'' % conf in err, repr(err), 'every error, with its line')
    rc, _, err = run(['-n', '-c', conf.replace('bad', 'missing')])
    check(rc == 1 and 'cannot read' in err, 'exit %d %r' % (rc, err), 'a missing -c file is an error')


def case_detach_user_and_sigterm(d):
    # as under systemd's RuntimeDirectory: the socket's directory belongs to
    # the service user, who can then remove the socket when it stops
    os.chmod(d, 0o755)
    run_dir = os.path.join(d, 'run')
    os.mkdir(run_dir, 0o750)
    os.chown(run_dir, pwd.getpwnam('nobody').pw_uid, grp.getgrnam('nogroup').gr_gid)
    sock = os.path.join(run_dir, 'milter.sock')
    pidfile = os.path.join(d, 'milter.pid')
    conf = os.path.join(d, 'run.conf')
    with open(conf, 'w') as f:
        f.write('socket = "unix:%s";\nsocket_umask = "007";\n' % sock)
    rc, out, err = run(['-c', conf, '-P', pidfile, '-u', 'nobody:nogroup'])
    check(rc == 0, 'exit %d %r' % (rc, err), 'exit 0 once the daemon is ready')
    pid = int(open(pidfile).read())
    try:
        check(alive(pid), 'pid %d not running' % pid, 'a running daemon')
        st = os.stat(sock)
        check(stat.S_ISSOCK(st.st_mode), 'mode %o' % st.st_mode, 'a socket')
        check(st.st_uid == pwd.getpwnam('nobody').pw_uid and st.st_gid == grp.getgrnam('nogroup').gr_gid,
              'owner %d:%d' % (st.st_uid, st.st_gid), 'nobody:nogroup')
        check(stat.S_IMODE(st.st_mode) == 0o770, 'mode %o' % stat.S_IMODE(st.st_mode), '0770 (umask 007)')
        with open('/proc/%d/status' % pid) as f:
            uids = [l for l in f if l.startswith('Uid:')][0].split()[1:]
        check(set(uids) == {str(pwd.getpwnam('nobody').pw_uid)}, 'uids %s' % uids, 'all uids nobody')
        check(os.getppid() != pid and os.getsid(pid) == pid, 'sid %d' % os.getsid(pid), 'its own session')
        os.kill(pid, signal.SIGTERM)
        check(wait_gone(pid, 15), 'still running 15 s after SIGTERM', 'stopped')
        check(not os.path.exists(sock), 'socket still there', 'the socket removed')
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def case_startup_failure_reported(d):
    sock = os.path.join(d, 'fail.sock')
    conf = os.path.join(d, 'fail.conf')
    with open(conf, 'w') as f:
        f.write('socket = "unix:%s";\n' % sock)
    rc, _, err = run(['-c', conf, '-P', os.path.join(d, 'no', 'such', 'dir', 'pid')])
    check(rc == 1, 'exit %d' % rc, 'exit 1 when the pid file cannot be written')
    check('cannot open pid file' in err, repr(err), 'the reason on stderr')
    check(not os.path.exists(sock), 'socket left behind', 'no socket left')
    rc, _, err = run(['-c', conf, '-u', 'no-such-user-here'])
    check(rc == 1 and err.startswith('-u: no such user'), 'exit %d %r' % (rc, err),
          'exit 1, "-u: no such user" (the flag named, not the file)')


def case_bad_flags():
    rc, _, _ = run(['-Z'])
    check(rc == 2, 'exit %d' % rc, 'exit 2 on an unknown flag')
    rc, _, err = run(['-n', '-p', 'unix:relative.sock'])
    check(rc == 1 and 'absolute path' in err, 'exit %d %r' % (rc, err), '-p checked like the file')
    rc, out, _ = run(['-V'])
    check(rc == 0 and out.startswith('smtptrace-milter '), repr(out), 'the version')


def case_socket_path_not_a_socket(d):
    """A typo in the socket path must never delete the file it names."""
    victim = os.path.join(d, 'main.cf')
    with open(victim, 'w') as f:
        f.write('myhostname = mx.test\n')
    rc, _, err = run(['-f', '-p', 'unix:%s' % victim])
    check(rc == 1, 'exit %d' % rc, 'exit 1')
    check('not a socket' in err, repr(err), 'the reason on stderr')
    check(os.path.exists(victim) and open(victim).read() == 'myhostname = mx.test\n',
          'the file gone or changed', 'the file untouched')


def start_daemon(d, name, extra=()):
    sock = os.path.join(d, name + '.sock')
    pidfile = os.path.join(d, name + '.pid')
    rc, _, err = run(['-p', 'unix:%s' % sock, '-P', pidfile] + list(extra))
    check(rc == 0, 'exit %d %r' % (rc, err), 'the first instance running')
    return sock, pidfile, int(open(pidfile).read())


def case_second_instance_refused(d):
    """A second instance with the same socket and pid file stops before it touches
    the first one's: the socket and the pid file stay the first one's."""
    sock, pidfile, pid = start_daemon(d, 'twice')
    try:
        ino = os.stat(sock).st_ino
        rc, _, err = run(['-f', '-p', 'unix:%s' % sock, '-P', pidfile])
        check(rc == 1 and 'already running (pid %d)' % pid in err, 'exit %d %r' % (rc, err),
              'exit 1, "already running (pid %d)"' % pid)
        # the same socket without the pid file: the live socket is refused too
        rc, _, err = run(['-f', '-p', 'unix:%s' % sock])
        check(rc == 1 and 'in use' in err, 'exit %d %r' % (rc, err), 'exit 1, "in use"')
        check(alive(pid), 'the first instance gone', 'still running')
        check(os.path.exists(sock) and os.stat(sock).st_ino == ino, 'its socket replaced or gone',
              'the first instance\'s socket')
        check(int(open(pidfile).read()) == pid, 'pid file %r' % open(pidfile).read(), 'still %d' % pid)
        os.kill(pid, signal.SIGTERM)
        check(wait_gone(pid, 15), 'still running 15 s after SIGTERM', 'stopped')
        check(not os.path.exists(sock) and not os.path.exists(pidfile), 'socket or pid file left',
              'both removed by the instance that made them')
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def case_stale_socket_replaced(d):
    """A socket left by a killed instance (nobody listens) is replaced."""
    sock, pidfile, pid = start_daemon(d, 'stale')
    os.kill(pid, signal.SIGKILL)
    check(wait_gone(pid, 10), 'still running', 'killed')
    check(os.path.exists(sock), 'no socket left', 'a stale socket')
    sock2, pidfile2, pid2 = start_daemon(d, 'stale')
    try:
        check(pid2 != pid and alive(pid2), 'pid %d' % pid2, 'a new instance')
    finally:
        os.kill(pid2, signal.SIGTERM)
        wait_gone(pid2, 15)


def case_flags_not_truncated(d):
    """Flags go through the checks of the file: a 295-character -P is an error, not a
    shorter pid file."""
    long_pid = os.path.join(d, 'p' * 290)
    rc, _, err = run(['-n', '-P', long_pid])
    check(rc == 1 and '-P: longer than 255 bytes' in err, 'exit %d %r' % (rc, err),
          'exit 1, "-P: longer than 255 bytes"')
    rc, _, err = run(['-n', '-p', 'inet:80@'])
    check(rc == 1 and err.startswith('-p: '), 'exit %d %r' % (rc, err), 'exit 1, "-p: ..." (empty host)')
    rc, _, err = run(['-n', '-c', d])
    check(rc == 1 and 'is a directory' in err, 'exit %d %r' % (rc, err), 'exit 1, "is a directory"')


def read_notify(sock, want, seconds=10):
    """Datagrams from the milter's sd_notify until one holds `want`; all of them."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if want in got[-1]:
            return got
    raise Fail('got %r, want a datagram with %s' % (got, want))


def start_foreground(d, name, conf_text, env=None):
    conf = os.path.join(d, name + '.conf')
    with open(conf, 'w') as f:
        f.write(conf_text)
    log = open(os.path.join(d, name + '.log'), 'w+')
    proc = subprocess.Popen([BIN, '-f', '-c', conf], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, env=env)
    return proc, conf, log


def log_text(log):
    log.flush()
    with open(log.name) as f:
        return f.read()


def wait_log(log, needle, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if needle in log_text(log):
            return
        time.sleep(0.05)
    raise Fail('got log %r, want a line with %r' % (log_text(log)[-600:], needle))


def case_notify_readiness(d):
    """Type=notify: READY=1 once serving, RELOADING=1/READY=1 around a SIGUSR1 reload,
    STOPPING=1 at SIGTERM, on a NOTIFY_SOCKET of the test's own."""
    path = os.path.join(d, 'notify.sock')
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    sock = os.path.join(d, 'notify-milter.sock')
    proc, _, log = start_foreground(d, 'notify', 'socket = "unix:%s";\n' % sock, env)
    try:
        got = read_notify(ns, 'READY=1')
        check(os.path.exists(sock), 'READY=1 before the socket exists', 'the socket open first')
        check(any('STATUS=observing on unix:%s' % sock in g for g in got), repr(got), 'a STATUS line')
        proc.send_signal(signal.SIGUSR1)
        got = read_notify(ns, 'READY=1')
        check(any('RELOADING=1' in g for g in got), repr(got), 'RELOADING=1 then READY=1')
        proc.send_signal(signal.SIGTERM)
        read_notify(ns, 'STOPPING=1')
        check(proc.wait(15) == 0, 'exit %s' % proc.returncode, 'exit 0')
    finally:
        if proc.poll() is None:
            proc.kill()
        ns.close()
        log.close()


def case_reload(d):
    """SIGUSR1 re-reads the file: live keys change, keys bound at start-up are reported
    and kept, a broken file keeps everything and logs file:line: message."""
    sock = os.path.join(d, 'reload.sock')
    proc, conf, log = start_foreground(
        d, 'reload', 'socket = "unix:%s";\nheader: { name = "X-Before"; };\n' % sock)
    try:
        wait_log(log, 'starting smtptrace-milter')
        with open(conf, 'w') as f:
            f.write('socket = "unix:%s.other";\nheader: { name = "X-After"; };\n' % sock)
        proc.send_signal(signal.SIGUSR1)
        wait_log(log, 'reloaded %s (header X-After' % conf)
        text = log_text(log)
        check('reload: socket: "unix:%s" is now "unix:%s.other" in %s, which takes a restart'
              % (sock, sock, conf) in text, repr(text[-500:]), 'the socket change reported and kept')
        check(os.path.exists(sock) and not os.path.exists(sock + '.other'), 'socket moved',
              'still on the first socket')
        with open(conf, 'w') as f:
            f.write('socket = "unix:%s";\nheader: { name = "X Broken"; };\nbogus = 1;\n' % sock)
        proc.send_signal(signal.SIGUSR1)
        wait_log(log, 'the running configuration stays')
        text = log_text(log)
        check('reload: %s:2: header.name: "X Broken" is not a header field name' % conf in text,
              repr(text[-600:]), 'file:line: message for each error')
        check('reload: %s:3: unknown key \'bogus\'' % conf in text, repr(text[-600:]),
              'every error')
        check(proc.poll() is None, 'exited %s' % proc.returncode, 'still running')
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


CASES = [case_config_check_ok, case_config_check_errors, case_detach_user_and_sigterm,
         case_startup_failure_reported, case_bad_flags, case_socket_path_not_a_socket,
         case_second_instance_refused, case_stale_socket_replaced, case_flags_not_truncated,
         case_notify_readiness, case_reload]


def main():
    passed = failed = 0
    if os.geteuid() != 0:
        print('FAIL setup: got uid %d, want root (for -u)' % os.geteuid())
        print('daemon: 0 passed, 1 failed')
        return 1
    with tempfile.TemporaryDirectory(prefix='smtptrace-daemon.') as d:
        for case in CASES:
            name = case.__name__[5:]
            try:
                case(d) if case.__code__.co_argcount else case()
            except (Fail, OSError, ValueError, subprocess.SubprocessError) as e:
                failed += 1
                print('FAIL %s: %s' % (name, e))
            else:
                passed += 1
                print('ok   %s' % name)
    print('daemon: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
