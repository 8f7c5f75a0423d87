"""Tool overhead: wall time of whole `invoke` processes, as a user runs them,
against the bench database with every index already built."""

import os
import re
import statistics
import subprocess
import sys
import time

from upstream_indexes.config import Target
from upstream_indexes.paths import ROOT

# label -> invoke arguments; `invoke --list` is the floor (Python, invoke, the package imports).
COMMANDS = {
    "invoke --list (startup only)": ["--list"],
    "invoke migrate (nothing pending)": ["migrate"],
    "invoke status": ["status"],
    "invoke verify": ["verify"],  # hook: measured once the verify task exists
}


def measure(target: Target, reps: int) -> list[dict]:
    # The database goes in through DATABASE_URL, so no password shows on a command line.
    env = {**os.environ, "DATABASE_URL": target.conninfo}
    listed = _run(["--list"], env).stdout
    rows = []
    for label, args in COMMANDS.items():
        if args[0] != "--list" and not re.search(rf"^\s+{re.escape(args[0])}\b", listed, re.MULTILINE):
            rows.append({"command": label, "available": False, "note": f"no `invoke {args[0]}` task in this checkout"})
            continue
        runs = []
        for _ in range(reps):
            started = time.monotonic()
            result = _run(args, env)
            runs.append((time.monotonic() - started, result.returncode))
        seconds = [s for s, _ in runs]
        rows.append({"command": label, "available": True, "reps": reps,
                     "median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3),
                     "max_s": round(max(seconds), 3), "exit_codes": sorted({code for _, code in runs})})
    return rows


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
