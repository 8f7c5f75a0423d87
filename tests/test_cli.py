"""invoke's command line: a usage error is exit 2 with one `error:` line naming it, no traceback;
a short flag means one thing in every task."""

import re

import pytest

from support import assert_refused, invoke


@pytest.mark.parametrize("args, fragment", [
    (["migrate", "--bogus"], "--bogus"),
    (["migrate", "--dsn"], "--dsn needs a value"),
    (["status", "--migrations"], "--migrations needs a value"),
    (["no-such-task"], "no-such-task"),
    (["migrate", "--json=yes"], "unknown task or flag 'yes'"),
])
def test_usage_error_exits_2_with_one_error_line(args, fragment):
    assert_refused(invoke(*args), fragment)


@pytest.mark.slow
def test_no_short_flag_means_two_things():
    meanings = {}
    for task in ("migrate", "rollback", "status", "verify", "sql", "lint", "django-state", "bench", "db.seed"):
        help_text = invoke("--help", task).stdout
        for short, long in re.findall(r"^\s+-(\w)(?: \w+)?, --([\w-]+)", help_text, re.M):
            meanings.setdefault(short, set()).add(long)
    assert all(len(longs) == 1 for longs in meanings.values()), meanings
