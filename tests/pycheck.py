"""pycheck.py - the one check harness of the Python tests (tests/cli,
tests/ext through extcheck.py, sql-tests/two_connections.py): counted
checks that print one line each and let the run go on, and the summary
line "NAME: N checks, M failed" with the exit status.

A script outside tests/ puts this folder on sys.path first (see
path_of_harness in the users)."""

checks = 0
failures = 0
# A passed check shows its detail too (a script whose details are long
# dumps turns this off).
detail_on_ok = True


def check(ok, what, detail=""):
    """Counts one check; prints "ok - what (detail)" or "FAIL - what: detail"."""
    global checks, failures
    checks += 1
    if ok:
        print("ok - %s%s" % (what, (" (%s)" % (detail,)) if detail and detail_on_ok else ""))
    else:
        failures += 1
        print("FAIL - %s%s" % (what, (": %s" % (detail,)) if detail else ""))
    return ok


def eq(got, want, what):
    """got == want; both are shown when they differ."""
    ok = got == want
    return check(ok, what, "" if ok else "got %.300r, want %.300r" % (got, want))


def summary(name):
    """Prints "NAME: N checks, M failed"; returns the exit status."""
    print("%s: %d checks, %d failed" % (name, checks, failures))
    return 1 if failures else 0
