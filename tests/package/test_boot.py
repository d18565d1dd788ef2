#!/usr/bin/env python3
"""The package under a real systemd: a throw-away container of this machine.

A build machine has no systemd as PID 1, so the unit cannot be started on
it. systemd-nspawn can boot one: this machine's own root, read-only under
an overlay on a tmpfs (nothing it writes reaches the disk), in a private
network namespace (only its own loopback), with a probe service as the
only unit asked for. In there, as root, the probe:
  - installs the .deb: the postinst creates the user and enables and starts
    the unit; it is active only after READY=1 (Type=notify);
  - runs a milter transaction on the default socket (inet, loopback), and
    finds the milter's lines in the journal (syslog through /dev/log);
  - with metrics on: /metrics over HTTP and the text file under
    /var/lib/prometheus/node-exporter (ReadWritePaths), mode 0644;
  - `systemctl reload`: same main pid, still active, a transaction after;
  - installs the .deb again (the upgrade path): the unit restarted;
  - a unix socket in /run/smtptrace (RuntimeDirectory): a transaction;
  - `dpkg --purge`: the unit stopped and gone.
Everything in the unit's sandbox is in force (PrivateUsers, the system
call filter, ProtectProc, ...), except IPAddressDeny/Allow where the
kernel or cgroup setup gives no BPF firewall (this VM's hybrid cgroups):
the probe reports whether a connection to a non-loopback address of its
own was refused. Needs root, systemd-nspawn (systemd-container) and
overlayfs; prints one line per step and "boot: N passed, M failed".
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_unit import Fail, check  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NSPAWN = shutil.which('systemd-nspawn')

PROBE_UNIT = """[Unit]
Description=smtptrace package probe
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
StandardOutput=file:/probe/out/probe.log
StandardError=inherit
Environment=DEBIAN_FRONTEND=noninteractive
ExecStart=/usr/bin/python3 /probe/lib/boot_probe.py /probe/smtptrace.deb
"""


def available():
    """None if the boot check can run here, else why not."""
    if os.geteuid() != 0:
        return 'not root'
    if NSPAWN is None:
        return 'no systemd-nspawn (package systemd-container)'
    with open('/proc/filesystems') as f:
        if 'overlay' not in f.read():
            return 'no overlayfs'
    return None


def boot(deb, workdir, timeout=180):
    """Boot the container, run the probe; returns its log lines."""
    t, root, out = (os.path.join(workdir, n) for n in ('t', 'root', 'out'))
    for d in (t, root, out):
        os.makedirs(d)
    mounted = []
    try:
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1g', 'tmpfs', t], check=True)
        mounted.append(t)
        os.makedirs(os.path.join(t, 'u'))
        os.makedirs(os.path.join(t, 'w'))
        subprocess.run(['mount', '-t', 'overlay', 'overlay', '-o',
                        'lowerdir=/,upperdir=%s/u,workdir=%s/w' % (t, t), root], check=True)
        mounted.append(root)
        with open(os.path.join(root, 'etc/systemd/system/smtptrace-probe.service'), 'w') as f:
            f.write(PROBE_UNIT)
        r = subprocess.run([NSPAWN, '-q', '-D', root, '-M', 'smtptrace-probe', '--register=no',
                            '--link-journal=no', '--keep-unit', '--private-network',
                            '--bind-ro=%s:/probe/smtptrace.deb' % deb,
                            '--bind-ro=%s:/probe/lib' % HERE,
                            '--bind=%s:/probe/out' % out,
                            '-b', '--', 'systemd.unit=smtptrace-probe.service'],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        log = os.path.join(out, 'probe.log')
        if not os.path.exists(log):
            tail = r.stdout.decode(errors='replace')[-1500:]
            raise Fail('the probe did not run (nspawn exit %d): %s' % (r.returncode, tail))
        with open(log) as f:
            return f.read().splitlines()
    finally:
        for m in reversed(mounted):
            subprocess.run(['umount', '-l', m])


def case_boot_under_systemd(ctx):
    """One case for test_package: every probe step must pass."""
    from test_package import deb_path
    lines = boot(deb_path(), os.path.join(ctx.tmp, 'boot'))
    steps = [l for l in lines if l.startswith(('PROBE ', 'NOTE '))]
    for s in steps:
        print('     ' + s)
    failed = [s for s in steps if s.startswith('PROBE FAIL')]
    check(steps and not failed, '; '.join(failed) or 'no step ran', 'every step ok')


def main():
    why = available()
    if why:
        print('skip: %s' % why)
        print('boot: 0 passed, 0 failed, 1 skipped')
        return 0
    from test_package import deb_path
    if not os.path.isfile(deb_path()):
        print('FAIL: no %s (make deb)' % deb_path())
        print('boot: 0 passed, 1 failed')
        return 1
    with tempfile.TemporaryDirectory(prefix='smtptrace-boot.') as d:
        lines = boot(deb_path(), d)
    passed = failed = 0
    for l in lines:
        if l.startswith(('PROBE ', 'NOTE ')):
            print(l)
        passed += l.startswith('PROBE ok')
        failed += l.startswith('PROBE FAIL')
    print('boot: %d passed, %d failed' % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == '__main__':
    sys.exit(main())
