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
import stat
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(TOP, 'build', 'smtptrace-milter')


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
    check('cannot write pid file' in err, repr(err), 'the reason on stderr')
    check(not os.path.exists(sock), 'socket left behind', 'no socket left')
    rc, _, err = run(['-c', conf, '-u', 'no-such-user-here'])
    check(rc == 1 and 'no such user' in err, 'exit %d %r' % (rc, err), 'exit 1, "no such user"')


def case_bad_flags():
    rc, _, _ = run(['-Z'])
    check(rc == 2, 'exit %d' % rc, 'exit 2 on an unknown flag')
    rc, _, err = run(['-n', '-p', 'unix:relative.sock'])
    check(rc == 1 and 'absolute path' in err, 'exit %d %r' % (rc, err), '-p checked like the file')
    rc, out, _ = run(['-V'])
    check(rc == 0 and out.startswith('smtptrace-milter '), repr(out), 'the version')


CASES = [case_config_check_ok, case_config_check_errors, case_detach_user_and_sigterm,
         case_startup_failure_reported, case_bad_flags]


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
