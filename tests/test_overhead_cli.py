"""`python -m benchmarks.overhead`: its bad arguments end in one line, exit 2 for a flag argparse
refuses, before any database is touched."""

import subprocess
import sys

import pytest

from upstream_indexes.paths import ROOT


def overhead(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.overhead", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args, code, said", [
    ((), 2, "overhead.py: error: --against is required (or --per-build)"),
    (("--per-build", "--rounds", "0"), 2, "overhead.py: error: --reps and --rounds must be at least 1"),
    (("--per-build", "--scale", "0"), 1, "error: --scale must be a number above 0 and at most 100"),
    (("--against", "no-such-revision"), 1, "error: git archive no-such-revision: "),
])
def test_a_bad_argument_is_one_error_line(args, code, said):
    done = overhead(*args)
    assert done.returncode == code, done.stderr
    assert done.stderr.splitlines()[-1].startswith(said), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
