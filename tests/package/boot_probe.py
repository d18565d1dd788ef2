#!/usr/bin/env python3
"""Runs inside the container test_boot.py boots (systemd as PID 1, root).

Usage: boot_probe.py PATH-TO-DEB. Prints "PROBE ok STEP" or "PROBE FAIL
STEP: why" per step, "NOTE ..." for what is reported but not required, and
the commands' output in between.
"""
import os
import pwd
import socket
import subprocess
import sys
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_unit import milter_transaction  # noqa: E402

DEB = sys.argv[1] if len(sys.argv) > 1 else '/probe/smtptrace.deb'
CONF = '/etc/smtptrace/smtptrace.conf'
TEXTFILE_DIR = '/var/lib/prometheus/node-exporter'
SOCK = '/run/smtptrace/milter.sock'


def sh(*args):
    r = subprocess.run(list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    print('$ %s -> exit %d\n%s' % (' '.join(args), r.returncode, r.stdout.rstrip()), flush=True)
    return r


def show(prop):
    return sh('systemctl', 'show', 'smtptrace', '-p', prop, '--value').stdout.strip()


def want(cond, got):
    if not cond:
        raise AssertionError(got)


def step(name, f):
    try:
        f()
    except Exception as e:       # a probe step reports every failure as one line
        traceback.print_exc(file=sys.stdout)
        print('PROBE FAIL %s: %r' % (name, e), flush=True)
    else:
        print('PROBE ok %s' % name, flush=True)


def inet():
    return socket.create_connection(('127.0.0.1', 8895))


def unix():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCK)
    return s


def write_conf(text):
    with open(CONF, 'w') as f:
        f.write(text)


def install_starts_it():
    want(sh('dpkg', '-i', DEB).returncode == 0, 'dpkg -i failed')
    want(sh('systemctl', 'is-enabled', 'smtptrace').stdout.strip() == 'enabled', 'not enabled')
    want(show('ActiveState') == 'active', 'not active after the postinst')
    want(show('Type') == 'notify', 'Type')


def transaction_and_journal():
    milter_transaction(inet)
    time.sleep(0.5)
    log = sh('journalctl', '-u', 'smtptrace', '--no-pager', '-o', 'cat').stdout
    want('starting smtptrace-milter' in log and 'kind=txn' in log, 'no milter lines in the journal')


def metrics():
    os.makedirs(TEXTFILE_DIR, exist_ok=True)
    os.chown(TEXTFILE_DIR, pwd.getpwnam('smtptrace').pw_uid, -1)
    write_conf('metrics: { textfile = "%s/smtptrace.prom"; textfile_interval = 1; '
               'http_listen = "127.0.0.1:9754"; };\n' % TEXTFILE_DIR)
    want(sh('systemctl', 'restart', 'smtptrace').returncode == 0, 'restart failed')
    with urllib.request.urlopen('http://127.0.0.1:9754/metrics', timeout=10) as r:
        want(r.status == 200 and b'smtptrace_' in r.read(), 'no metrics')
    deadline = time.monotonic() + 10
    path = TEXTFILE_DIR + '/smtptrace.prom'
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.2)
    want(os.stat(path).st_mode & 0o777 == 0o644, 'text file mode %o' % os.stat(path).st_mode)


def reload_keeps_pid():
    pid = show('MainPID')
    want(sh('systemctl', 'reload', 'smtptrace').returncode == 0, 'reload failed')
    time.sleep(0.5)
    want(show('MainPID') == pid and show('ActiveState') == 'active', 'pid changed or inactive')
    milter_transaction(inet)


def upgrade_restarts():
    pid = show('MainPID')
    want(sh('dpkg', '-i', DEB).returncode == 0, 'dpkg -i (again) failed')
    want(show('ActiveState') == 'active' and show('MainPID') != pid, 'not restarted')


def unix_socket():
    write_conf('socket = "unix:%s";\n' % SOCK)
    want(sh('systemctl', 'restart', 'smtptrace').returncode == 0, 'restart failed')
    sh('ls', '-la', '/run/smtptrace')
    milter_transaction(unix)


def ip_filter_note():
    sh('ip', 'addr', 'add', '192.0.2.1/32', 'dev', 'lo')
    write_conf('metrics: { http_listen = "0.0.0.0:9754"; };\n')
    sh('systemctl', 'restart', 'smtptrace')
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(('192.0.2.1', 9754))
        print('NOTE IPAddressDeny not in force here: 192.0.2.1 (loopback-routed, not '
              'localhost) reached the metrics listener (%s)' % show('IPIngressBytes'))
    except OSError:
        print('NOTE IPAddressDeny in force: 192.0.2.1 refused')
    finally:
        s.close()


def purge_stops_it():
    want(sh('dpkg', '--purge', 'smtptrace').returncode == 0, 'purge failed')
    want(show('ActiveState') in ('inactive', 'failed', ''), 'still ' + show('ActiveState'))
    want(not os.path.exists('/lib/systemd/system/smtptrace.service'), 'unit left')


def main():
    # This machine's image (built like a Docker image) has a policy-rc.d that
    # forbids every service start in maintainer scripts; a Debian system has
    # none. Removed in the container's overlay only, never on the host.
    if os.path.exists('/usr/sbin/policy-rc.d'):
        os.unlink('/usr/sbin/policy-rc.d')
        print('NOTE removed /usr/sbin/policy-rc.d in the container (it refuses every start)')
    step('install: user, unit enabled and started (READY=1)', install_starts_it)
    step('transaction on inet loopback, lines in the journal', transaction_and_journal)
    step('metrics over HTTP and the text file', metrics)
    step('reload: same pid, still serving', reload_keeps_pid)
    step('reinstall restarts the unit', upgrade_restarts)
    step('unix socket in /run/smtptrace', unix_socket)
    ip_filter_note()
    sh('journalctl', '-u', 'smtptrace', '--no-pager', '-p', 'warning')
    sh('systemd-analyze', 'security', '--no-pager', 'smtptrace')
    step('purge stops and removes it', purge_stops_it)
    return 0


if __name__ == '__main__':
    sys.exit(main())
