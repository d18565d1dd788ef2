#!/usr/bin/env python3
"""The Debian package and make install / uninstall, as an operator uses them.

  - the version in debian/changelog is milter/version.h's; Build-Depends
    has the Makefile's DEPS_BUILD;
  - `make deb` builds build/deb/smtptrace_VERSION_amd64.deb and leaves
    nothing outside build/deb (not in the parent directory, not in debian/);
  - `dpkg-deb -c` lists every expected path; the conffile; no dependency on
    or mention of Postfix;
  - lintian: no error and no warning (informational tags are printed);
  - `dpkg -i` on this machine: the files, the smtptrace system user, the
    unit enabled but nothing started (no systemd as PID 1 here: the
    postinst starts the unit only when /run/systemd/system exists),
    `smtptrace-milter -n` from /usr/sbin as root and as smtptrace, the
    man pages found, the installed unit verified and scored;
  - `dpkg --purge`: every file and /etc/smtptrace gone, the unit no longer
    enabled, the user kept (as Debian keeps system users: see
    debian/smtptrace.postrm); Postfix's configuration untouched. The purge
    runs even when a check before it failed;
  - `make install DESTDIR=... PREFIX=/usr/local`, then `make uninstall`:
    exactly the expected files, then none (the shared directories such as
    usr/local/bin stay, empty); a changed configuration is kept and said
    so; an existing one is never replaced;
  - the unit cases of test_unit.py (score, verify, directives, sandbox);
  - test_boot.py: the package in a container booted with systemd as PID 1
    (install starts the unit, transactions, metrics, reload, upgrade,
    purge), when systemd-nspawn is there (DEPS_PACKAGE installs it).
Needs root (dpkg -i). The install and purge cases are skipped when
smtptrace is already installed here, so an operator's copy is never
touched. Prints one line per case and "package: N passed, M failed".
"""
import grp
import hashlib
import os
import pwd
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_boot  # noqa: E402
import test_unit  # noqa: E402
from test_unit import Fail, check, sh, TOP  # noqa: E402

DEB_DIR = os.path.join(TOP, 'build', 'deb')
SYSTEM_FILES = ['/usr/sbin/smtptrace-milter', '/usr/bin/smtptrace-explain', '/usr/bin/smtptrace-top',
                '/lib/systemd/system/smtptrace.service', '/etc/smtptrace/smtptrace.conf',
                '/usr/lib/sysusers.d/smtptrace.conf']
ENABLED_LINK = '/etc/systemd/system/multi-user.target.wants/smtptrace.service'
POSTFIX_FILES = ['/etc/postfix/main.cf', '/etc/postfix/master.cf']
TEXTFILE_DIR = '/var/lib/prometheus/node-exporter'


def version():
    with open(os.path.join(TOP, 'milter', 'version.h')) as f:
        m = re.search(r'#define SMTPTRACE_VERSION "([^"]+)"', f.read())
    if not m:
        raise Fail('no SMTPTRACE_VERSION in milter/version.h')
    return m.group(1)


def deb_path():
    return os.path.join(DEB_DIR, 'smtptrace_%s_amd64.deb' % version())


def man_pages():
    pages = []
    for d, ext in (('milter', '.1'), ('conf', '.5'), ('milter', '.8')):
        for n in sorted(os.listdir(os.path.join(TOP, d))):
            if n.endswith(ext):
                pages.append((ext[1:], n))
    return pages


def expected_package_files():
    files = set(SYSTEM_FILES) | {
        '/usr/share/smtptrace/prometheus/smtptrace.rules.yml',
        '/usr/share/smtptrace/prometheus/smtptrace.rules.test.yml',
        '/usr/share/smtptrace/prometheus/smtptrace-dashboard.json',
        '/usr/share/doc/smtptrace/README.md.gz',
        '/usr/share/doc/smtptrace/README.prometheus.md.gz',
        '/usr/share/doc/smtptrace/changelog.gz',
        '/usr/share/doc/smtptrace/copyright',
        '/usr/share/lintian/overrides/smtptrace'}
    for sec, name in man_pages():
        files.add('/usr/share/man/man%s/%s.gz' % (sec, name))
    return files


def expected_install_files(prefix='/usr/local'):
    files = {prefix + '/sbin/smtptrace-milter', prefix + '/bin/smtptrace-explain',
             prefix + '/bin/smtptrace-top',
             prefix + '/lib/systemd/system/smtptrace.service', '/etc/smtptrace/smtptrace.conf',
             prefix + '/share/smtptrace/prometheus/smtptrace.rules.yml',
             prefix + '/share/smtptrace/prometheus/smtptrace.rules.test.yml',
             prefix + '/share/smtptrace/prometheus/smtptrace-dashboard.json',
             prefix + '/share/doc/smtptrace/README.md',
             prefix + '/share/doc/smtptrace/README.prometheus.md'}
    for sec, name in man_pages():
        files.add('%s/share/man/man%s/%s' % (prefix, sec, name))
    return files


def tree(root):
    """(files, directories) under root, as absolute paths inside it."""
    files, dirs = set(), set()
    for d, subdirs, names in os.walk(root):
        rel = '/' + os.path.relpath(d, root) if d != root else ''
        for s in subdirs:
            dirs.add(rel + '/' + s)
        for n in names:
            files.add(rel + '/' + n)
    return files, dirs


def deb_list():
    rc, out, err = sh(['dpkg-deb', '-c', deb_path()])
    if rc != 0:
        raise Fail('dpkg-deb -c: %s' % err)
    entries = {}
    for line in out.splitlines():
        f = line.split(None, 5)
        name = f[5].split(' -> ')[0]
        entries[name[1:].rstrip('/') or '/'] = f[0]
    return entries


def installed_status():
    rc, out, _ = sh(['dpkg-query', '-W', '-f=${Status}', 'smtptrace'])
    return out.strip() if rc == 0 else ''


def milter_processes():
    pids = []
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                if os.readlink('/proc/%s/exe' % p) == '/usr/sbin/smtptrace-milter':
                    pids.append(int(p))
            except OSError:
                pass
    return pids


def digest(path):
    try:
        with open(path, 'rb') as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


# ---- source ---------------------------------------------------------------

def case_version_agrees(ctx):
    rc, out, err = sh(['dpkg-parsechangelog', '-S', 'Version'])
    check(rc == 0 and out.strip() == version(), 'debian/changelog %r' % out.strip(),
          'milter/version.h %s' % version())


def case_build_depends_from_makefile(ctx):
    with open(os.path.join(TOP, 'Makefile')) as f:
        m = re.search(r'^DEPS_BUILD\s*=\s*((?:.*\\\n)*.*)$', f.read(), re.M)
    deps = set(m.group(1).replace('\\\n', ' ').split()) - {'gcc', 'make'}  # build-essential
    rc, out, err = sh(['dpkg-checkbuilddeps'])   # also: they are installed
    check(rc == 0, err.strip(), 'build dependencies satisfied')
    with open(os.path.join(TOP, 'debian', 'control')) as f:
        control = f.read()
    bd = re.search(r'^Build-Depends:((?:.*\n)(?:[ \t].*\n)*)', control, re.M).group(1)
    have = {re.sub(r'\s*\(.*', '', x.strip()) for x in bd.split(',') if x.strip()}
    missing = deps - have
    check(not missing, 'missing %s' % sorted(missing), 'DEPS_BUILD in Build-Depends')
    check('debhelper-compat (= 13)' in bd, bd.split(), 'debhelper-compat (= 13)')


# ---- build ----------------------------------------------------------------

def debian_artefacts():
    return [p for p in ('debian/smtptrace', 'debian/.debhelper', 'debian/files',
                        'debian/build', 'debian/debhelper-build-stamp',
                        'debian/smtptrace.substvars')
            if os.path.lexists(os.path.join(TOP, p))]


def case_make_deb(ctx):
    parent = os.path.dirname(TOP)
    before = {n for n in os.listdir(parent) if n.startswith('smtptrace')}
    artefacts_before = debian_artefacts()
    t0 = time.monotonic()
    rc, out, err = sh(['make', '-s', '--no-print-directory', 'deb'], timeout=600)
    ctx.build_log = out + err
    check(rc == 0, 'exit %d: %s' % (rc, (out + err)[-800:]), 'make deb exit 0')
    print('     built in %.1f s' % (time.monotonic() - t0))
    check(os.path.isfile(deb_path()), sorted(os.listdir(DEB_DIR)), os.path.basename(deb_path()))
    after = {n for n in os.listdir(parent) if n.startswith('smtptrace')}
    check(after == before, 'new in %s: %s' % (parent, sorted(after - before)), 'nothing')
    check(debian_artefacts() == artefacts_before, debian_artefacts(), 'no build files in debian/')
    check(not os.path.exists(os.path.join(DEB_DIR, 'smtptrace-' + version())),
          'the build copy left', 'removed')


def case_contents(ctx):
    entries = deb_list()
    missing = expected_package_files() - set(entries)
    check(not missing, 'missing %s' % sorted(missing), 'every expected path')
    for p in ('/usr/sbin/smtptrace-milter', '/usr/bin/smtptrace-explain'):
        check(entries[p] == '-rwxr-xr-x', '%s %s' % (p, entries[p]), '-rwxr-xr-x')
    check(entries['/etc/smtptrace/smtptrace.conf'] == '-rw-r--r--',
          entries['/etc/smtptrace/smtptrace.conf'], '-rw-r--r--')
    extra = {p for p, mode in entries.items() if not mode.startswith('d')} - expected_package_files()
    check(not extra, 'unexpected %s' % sorted(extra), 'no other file')
    with tempfile.TemporaryDirectory() as d:
        rc, out, err = sh(['dpkg-deb', '-e', deb_path(), d])
        check(rc == 0, err, 'dpkg-deb -e')
        with open(os.path.join(d, 'conffiles')) as f:
            check(f.read().split() == ['/etc/smtptrace/smtptrace.conf'], 'conffiles',
                  '/etc/smtptrace/smtptrace.conf only')
        with open(os.path.join(d, 'control')) as f:
            control = f.read()
        scripts = ''
        for n in ('preinst', 'postinst', 'prerm', 'postrm'):
            if os.path.exists(os.path.join(d, n)):
                with open(os.path.join(d, n)) as f:
                    scripts += f.read()
    relations = re.findall(r'^(?:Pre-Depends|Depends|Recommends|Suggests|Enhances|Breaks|'
                           r'Conflicts|Replaces):.*$', control, re.M)
    check('postfix' not in ' '.join(relations).lower(), relations, 'no relation to Postfix')
    check('postfix' not in re.sub(r'^\s*#.*$', '', scripts, flags=re.M).lower(),
          'a maintainer script touches postfix', 'none')
    check(re.search(r'^Version: %s$' % re.escape(version()), control, re.M),
          'control', 'Version: ' + version())
    check('systemd-sysusers' in scripts and '[ -d /run/systemd/system ]' in scripts,
          'postinst', 'systemd-sysusers, and starts only where systemd runs')


def case_lintian(ctx):
    changes = os.path.join(DEB_DIR, 'smtptrace_%s_amd64.changes' % version())
    rc, out, err = sh(['lintian', '--info', '--pedantic', changes], timeout=300)
    tags = [l for l in out.splitlines() if re.match(r'^[EWIPX]: ', l)]
    for t in tags:
        print('     ' + t)
    bad = [t for t in tags if t[0] in 'EW']
    check(not bad, '%d errors or warnings' % len(bad), 'no E: or W: tag')
    check(rc == 0, 'lintian exit %d %s' % (rc, err.strip()[-300:]), 'exit 0')


# ---- install and purge on this machine --------------------------------------

def case_install(ctx):
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    ctx.installed = True
    rc, out, err = sh(['dpkg', '-i', deb_path()], env=env, timeout=300)
    check(rc == 0, 'dpkg -i exit %d: %s' % (rc, (out + err)[-600:]), 'exit 0')
    check(installed_status() == 'install ok installed', installed_status(), 'installed')
    for p in SYSTEM_FILES:
        check(os.path.exists(p), 'no ' + p, p)
    pw = pwd.getpwnam('smtptrace')
    check(pw.pw_uid < 1000 and pw.pw_shell.endswith('nologin'),
          '%d %s' % (pw.pw_uid, pw.pw_shell), 'a system user with nologin')
    check(grp.getgrgid(pw.pw_gid).gr_name == 'smtptrace', pw.pw_gid, 'group smtptrace')
    check(os.path.islink(ENABLED_LINK), 'no ' + ENABLED_LINK, 'the unit enabled')
    check(not os.path.isdir('/run/systemd/system'), '/run/systemd/system exists',
          'no systemd here (else the postinst would have started it)')
    check(not milter_processes(), 'running: %s' % milter_processes(), 'nothing started')


def case_installed_programs_work(ctx):
    rc, out, err = sh(['/usr/sbin/smtptrace-milter', '-n'])
    check(rc == 0 and out == 'configuration OK\n', 'exit %d %r %r' % (rc, out, err),
          'configuration OK')
    rc, out, err = sh(['setpriv', '--reuid=smtptrace', '--regid=smtptrace', '--clear-groups',
                       '/usr/sbin/smtptrace-milter', '-n', '-c', '/etc/smtptrace/smtptrace.conf'])
    check(rc == 0 and out == 'configuration OK\n', 'as smtptrace: exit %d %r %r' % (rc, out, err),
          'configuration OK')
    rc, out, err = sh(['/usr/sbin/smtptrace-milter', '-V'])
    check(out.strip() == 'smtptrace-milter ' + version(), out.strip(), version())
    rc, out, err = sh(['/usr/bin/smtptrace-explain', '421'])
    check(rc == 0 and out.startswith('421:'), 'exit %d %r' % (rc, out[:80]), '421: ...')
    for sec, name in man_pages():
        rc, out, err = sh(['man', '-w', sec, name.rsplit('.', 1)[0]])
        check(rc == 0 and out.startswith('/usr/share/man/'), '%s: %r' % (name, out + err),
              'found under /usr/share/man')


def case_installed_unit(ctx):
    unit = '/lib/systemd/system/smtptrace.service'
    rc, out, err = sh(['systemd-analyze', 'verify', unit])
    check(rc == 0 and not (out + err).strip(), 'exit %d %r' % (rc, (out + err).strip()[:400]),
          'verify: exit 0, no message')
    rc, out, err = sh(['systemd-analyze', 'security', '--offline=yes', '--no-pager', unit])
    m = re.search(r'Overall exposure level for smtptrace\.service: ([0-9.]+)', out)
    check(m and float(m.group(1)) <= test_unit.MAX_SCORE, m and m.group(1),
          'at most %.1f' % test_unit.MAX_SCORE)


def case_purge(ctx):
    files = set(p for p, mode in deb_list().items() if not mode.startswith('d'))
    planted = None
    if os.path.isdir(TEXTFILE_DIR) and not os.path.exists(TEXTFILE_DIR + '/smtptrace.prom'):
        planted = TEXTFILE_DIR + '/smtptrace.prom'
        with open(planted, 'w') as f:
            f.write('# left by the milter\n')
    rc, out, err = sh(['dpkg', '--purge', 'smtptrace'], timeout=300)
    check(rc == 0, 'dpkg --purge exit %d: %s' % (rc, (out + err)[-600:]), 'exit 0')
    check(installed_status() in ('', 'unknown ok not-installed'), installed_status(),
          'not installed')
    left = sorted(p for p in files if os.path.lexists(p))
    check(not left, 'left %s' % left, 'every packaged file gone')
    for p in ('/etc/smtptrace', ENABLED_LINK, '/usr/share/smtptrace', '/usr/share/doc/smtptrace'):
        check(not os.path.lexists(p), p + ' left', p + ' gone')
    if planted:
        check(not os.path.exists(planted), planted + ' left', 'the metrics text file gone')
    # kept on purge, as Debian keeps system users (debian/smtptrace.postrm)
    check(pwd.getpwnam('smtptrace').pw_name == 'smtptrace', 'no user', 'user smtptrace kept')


def case_postfix_untouched(ctx):
    now = {p: digest(p) for p in POSTFIX_FILES}
    check(now == ctx.postfix_before, 'changed: %s' % [p for p in now if now[p] !=
                                                     ctx.postfix_before[p]], 'unchanged')


# ---- make install / uninstall into a DESTDIR ------------------------------------

def case_install_uninstall_destdir(ctx):
    root = os.path.join(ctx.tmp, 'destdir')
    test_unit.make_install(ctx.build, 'DESTDIR=' + root, 'PREFIX=/usr/local')
    files, _ = tree(root)
    want = expected_install_files()
    check(files == want, 'missing %s, extra %s' % (sorted(want - files), sorted(files - want)),
          'exactly the expected files')
    with open(os.path.join(root, 'usr/local/lib/systemd/system/smtptrace.service')) as f:
        check('ExecStart=/usr/local/sbin/smtptrace-milter -f' in f.read(), 'unit',
              'ExecStart=/usr/local/sbin/smtptrace-milter')
    rc, out, err = sh(['make', '-s', '--no-print-directory', 'BUILD=' + ctx.build, 'uninstall',
                       'DESTDIR=' + root, 'PREFIX=/usr/local'])
    check(rc == 0, 'uninstall exit %d %s' % (rc, err), 'exit 0')
    files, dirs = tree(root)
    check(not files, 'left %s' % sorted(files), 'no file left')
    nonempty = [d for d in dirs if os.listdir(root + d)]
    mine = [d for d in dirs if 'smtptrace' in d]
    check(not mine, 'left %s' % mine, "smtptrace's own directories removed")
    print('     left behind: %d empty shared directories (%s)' % (
        len(dirs) - len(nonempty), ', '.join(sorted(d for d in dirs if not os.listdir(root + d)))))


def case_uninstall_keeps_changed_config(ctx):
    root = os.path.join(ctx.tmp, 'destdir-conf')
    conf = os.path.join(root, 'etc', 'smtptrace', 'smtptrace.conf')
    test_unit.make_install(ctx.build, 'DESTDIR=' + root)
    with open(conf, 'a') as f:
        f.write('# changed by the operator\n')
    test_unit.make_install(ctx.build, 'DESTDIR=' + root)
    with open(conf) as f:
        check(f.read().endswith('# changed by the operator\n'), 'replaced', 'kept by install')
    rc, out, err = sh(['make', '-s', '--no-print-directory', 'BUILD=' + ctx.build, 'uninstall',
                       'DESTDIR=' + root])
    check(rc == 0 and os.path.exists(conf), 'exit %d, exists %s' % (rc, os.path.exists(conf)),
          'exit 0, the changed file kept')
    check('kept ' + conf in out, repr(out[-200:]), 'a message naming it')
    files, _ = tree(root)
    check(files == {'/etc/smtptrace/smtptrace.conf'}, sorted(files), 'only the configuration')


def main():
    if os.geteuid() != 0:
        print('FAIL setup: got uid %d, want root (dpkg -i)' % os.geteuid())
        print('package: 0 passed, 1 failed')
        return 1
    # A SIGTERM (a CI time limit) still runs the purge in the finally below,
    # and does not interrupt it: subprocess.run kills its child on any
    # exception, which would leave dpkg half done.
    state = {'cleanup': False, 'term': 0}

    def on_term(sig, frame):
        state['term'] = sig
        if not state['cleanup']:
            sys.exit(128 + sig)
    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    passed = failed = skipped = 0
    with tempfile.TemporaryDirectory(prefix='smtptrace-package.') as d:
        ctx = test_unit.Context(d)
        ctx.installed = False
        ctx.postfix_before = {p: digest(p) for p in POSTFIX_FILES}
        p, f = test_unit.run_cases([case_version_agrees, case_build_depends_from_makefile,
                                    case_make_deb], ctx)
        passed, failed = passed + p, failed + f
        if os.path.isfile(deb_path()):
            p, f = test_unit.run_cases([case_contents, case_lintian], ctx)
            passed, failed = passed + p, failed + f
            present = [x for x in SYSTEM_FILES + ['/etc/smtptrace'] if os.path.lexists(x)]
            status = installed_status()
            if status not in ('', 'unknown ok not-installed') or present:
                skipped += 6
                print('skip install, programs, unit, purge, postfix, boot: smtptrace is already '
                      'here (%s) and is not touched' % (status or ', '.join(present)))
            else:
                try:
                    p, f = test_unit.run_cases([case_install, case_installed_programs_work,
                                                case_installed_unit], ctx)
                    passed, failed = passed + p, failed + f
                finally:
                    if ctx.installed:
                        state['cleanup'] = True
                        p, f = test_unit.run_cases([case_purge, case_postfix_untouched], ctx)
                        passed, failed = passed + p, failed + f
                        state['cleanup'] = False
                        if state['term']:
                            sys.exit(128 + state['term'])
                why = test_boot.available()
                if why:
                    skipped += 1
                    print('skip boot_under_systemd: %s' % why)
                else:
                    p, f = test_unit.run_cases([test_boot.case_boot_under_systemd], ctx)
                    passed, failed = passed + p, failed + f
        p, f = test_unit.run_cases([case_install_uninstall_destdir,
                                    case_uninstall_keeps_changed_config] + test_unit.CASES, ctx)
        passed, failed = passed + p, failed + f
    print('     %.0f s in all' % (time.monotonic() - t0))
    print('package: %d passed, %d failed%s' % (passed, failed,
                                                ', %d skipped' % skipped if skipped else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
