"""What the end-to-end test scripts share: failed expectations, the helpers that raise
them, progress notes, and the loop that runs the cases and prints one line for each.

A case is a function named case_NAME (or check_NAME, ...) taking one argument (the
instance, or the script's object around it). It passes when it returns and fails by
raising Fail ("got X, want Y") -- through check() and eq() -- or one of the exception
types the script passes to run_cases(). The output:

    ok   NAME                                    (with " (1.2 s)" under -v)
    FAIL NAME: got X, want Y
    FAIL NAME: got HarnessError: first line, want the case to run
         | further lines of the message          (under -v, then the traceback)
    LABEL: N passed, M failed                    (summary(), the last line)
"""

import sys
import time
import traceback

_verbose = False
_show_limit = 160


class Fail(Exception):
    """A failed expectation: str() is "got X, want Y"."""


def set_verbose(on):
    """-v: note() prints, the ok lines carry the case's time, errors their traceback."""
    global _verbose
    _verbose = bool(on)


def verbose():
    return _verbose


def set_show_limit(limit):
    """How many characters show() keeps when it is given no limit (default 160)."""
    global _show_limit
    _show_limit = limit


def check(cond, got, want):
    if not cond:
        raise Fail('got %s, want %s' % (got, want))


def eq(got, want, what, fmt=None):
    """got == want, or Fail "got WHAT=got, want WHAT=want", the values shown with fmt
    (default show())."""
    fmt = fmt or show
    check(got == want, '%s=%s' % (what, fmt(got)), '%s=%s' % (what, fmt(want)))


def show(v, limit=None):
    """v (repr() unless a str) on one ASCII line: backslash, tab, CR and LF escaped,
    non-ASCII as backslash escapes, cut after `limit` characters (default: set_show_limit)."""
    if limit is None:
        limit = _show_limit
    s = v if isinstance(v, str) else repr(v)
    s = s.replace('\\', '\\\\').replace('\t', '\\t').replace('\r', '\\r').replace('\n', '\\n')
    s = s.encode('ascii', 'backslashreplace').decode('ascii')
    return s if len(s) <= limit else s[:limit] + '...(%d chars)' % len(s)


def say(msg):
    """A progress line, always printed: "     . msg"."""
    sys.stdout.write('     . %s\n' % msg)
    sys.stdout.flush()


def note(msg):
    """A progress line printed only under -v."""
    if _verbose:
        say(msg)


def run_cases(cases, arg, errors, what='case', show_rest=True):
    """Run each case(arg) in order and print its ok or FAIL line; returns (passed, failed).

    A case's name is its function name without the "WHAT_" prefix. Fail is a failure;
    so is an exception of a type in `errors` ("got TYPE: message, want the WHAT to run",
    with show_rest the message's further lines as "     | ..." lines, under -v then the
    traceback). Any other exception propagates."""
    passed = failed = 0
    prefix = what + '_'
    for case in cases:
        name = case.__name__[len(prefix):]
        t = time.monotonic()
        try:
            case(arg)
        except Fail as e:
            failed += 1
            print('FAIL %s: %s' % (name, e))
        except errors as e:
            failed += 1
            msg = str(e).strip().split('\n')
            print('FAIL %s: got %s: %s, want the %s to run' % (name, type(e).__name__, msg[0], what))
            if show_rest:
                for extra in msg[1:]:
                    print('     | %s' % extra)
            if _verbose:
                traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print('ok   %s' % name + (' (%.1f s)' % (time.monotonic() - t) if _verbose else ''))
        sys.stdout.flush()
    return passed, failed


def start_failed(label, exc):
    """The instance did not start: "FAIL start: ..." and the last line; returns 1."""
    print('FAIL start: got %s, want a running instance' % str(exc).strip().replace('\n', ' | '))
    return summary(label, 0, 1)


def summary(label, passed, failed, started=None):
    """The last line, "LABEL: N passed, M failed" (under -v after the whole run's time,
    when `started` is its time.monotonic()); returns the exit status."""
    if started is not None and _verbose:
        print('(%.1f s)' % (time.monotonic() - started))
    print('%s: %d passed, %d failed' % (label, passed, failed))
    return 1 if failed else 0
