"""The tool's own cost, as a user meets it: whole processes, timed from outside.

- measure: commands with nothing to do (every index built) against `yoyo apply`
  with nothing to do on the same database, the floor a yoyo user knows; each
  repetition runs every command once, in a rotated order, and each command is
  compared with the `yoyo apply` of its own repetition.
- per_build: one `invoke migrate --to <first migration> --json` against the bare
  statement a DBA runs (connect, CREATE INDEX CONCURRENTLY, disconnect), quiet,
  in alternating rounds; the --json events say where our extra time goes.
"""

import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlencode

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from upstream_indexes.config import Target
from upstream_indexes.db import connect
from upstream_indexes.errors import ToolError
from upstream_indexes.migrations import IndexMigration
from upstream_indexes.paths import MIGRATIONS_DIR, ROOT

from . import builds

YOYO = "yoyo apply (nothing to do)"
# label -> the command after `python -m`. The floors of every invoke command: `--version` is Python and
# invoke alone, `--list` adds tasks.py (and what it imports for the help).
COMMANDS = {
    YOYO: None,  # its own script, with a config file: see _yoyo_command
    "invoke --version (Python and invoke)": ["invoke", "--version"],
    "invoke --list (tasks.py too)": ["invoke", "--list"],
    "invoke migrate (nothing pending)": ["invoke", "migrate"],
    "invoke status": ["invoke", "status"],
    "invoke verify": ["invoke", "verify"],
}


def measure(target: Target, reps: int, against: Path | None = None) -> list[dict]:
    """Every command `reps` times, in turns; per command its wall and CPU times (user + system: on a
    loaded machine the less disturbed of the two) and the median of their ratios to `yoyo apply` in
    the same turn. `against`: another checkout (main()), whose invoke commands run in the same turns."""
    # The database goes in through DATABASE_URL (yoyo: a config file), so no password shows on a command line.
    env = {**os.environ, "DATABASE_URL": target.conninfo}
    with tempfile.TemporaryDirectory(prefix="upstream-bench-yoyo-") as scratch:
        commands = {label: (args or _yoyo_command(target, Path(scratch)), ROOT) for label, args in COMMANDS.items()}
        if against is not None:
            commands |= {f"{label}, {against.name}": (args, against) for label, args in COMMANDS.items() if args}
        # Each checkout's modules byte-compiled first, as pip compiles a wheel's (and yoyo's) when it installs
        # it: else PYTHONDONTWRITEBYTECODE, where set, would time compiling them on every run.
        for root in {root for _, root in commands.values()}:
            compileall.compile_dir(root / "src", quiet=1)
        labels = list(commands)
        runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label in labels}
        for rep in range(reps):
            first = rep % len(labels)
            for label in labels[first:] + labels[:first]:
                runs[label].append(_timed(*commands[label], env))
    rows = []
    for label in labels:
        wall, cpu = ([run[i] for run in runs[label]] for i in (0, 1))
        floor_wall, floor_cpu = ([run[i] for run in runs[YOYO]] for i in (0, 1))
        rows.append({"command": label, "reps": reps, "median_s": round(statistics.median(wall), 3),
                     "min_s": round(min(wall), 3), "max_s": round(max(wall), 3),
                     "ratio_to_yoyo": round(statistics.median(s / f for s, f in zip(wall, floor_wall)), 2),
                     "cpu_median_s": round(statistics.median(cpu), 3),
                     "cpu_ratio_to_yoyo": round(statistics.median(s / f for s, f in zip(cpu, floor_cpu)), 2),
                     "exit_codes": sorted({run[2] for run in runs[label]})})
    return rows


def _yoyo_command(target: Target, scratch: Path) -> list[str]:
    """`yoyo apply --batch` of migrations/ on the target, its URL in a config file only we can read."""
    params = {k: str(v) for k, v in conninfo_to_dict(target.conninfo or "").items()}
    database = params.pop("dbname", "")
    url = f"postgresql+psycopg:///{quote(database)}?{urlencode(params)}"
    config = scratch / "yoyo.ini"
    config.touch(mode=0o600)
    # configparser interpolates %: the URL's escapes are doubled.
    config.write_text(f"[DEFAULT]\ndatabase = {url.replace('%', '%%')}\nbatch_mode = on\nverbosity = 0\n")
    return [str(Path(sys.executable).with_name("yoyo")), "apply", "--config", str(config), "--batch",
            str(MIGRATIONS_DIR)]


def _timed(command: list[str], root: Path, env: dict) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and exit code of one run."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    done = _run(command, env, root)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return time.monotonic() - started, cpu, done.returncode


def _run(command: list[str], env: dict, root: Path = ROOT) -> subprocess.CompletedProcess:
    """`command` in the checkout `root` (its own package first on the path); "invoke" as `python -m invoke`."""
    if command[0] == "invoke":
        command = [sys.executable, "-m", *command]
    return subprocess.run(command, cwd=root, env={**env, "PYTHONPATH": str(root / "src")}, capture_output=True,
                          text=True, timeout=600)


def per_build(target: Target, m: IndexMigration, rounds: int, echo) -> dict:
    """`invoke migrate --to <m> --json` against the bare statement, `rounds` times each, alternating which
    goes first; no writers. Every index is rolled back first (the stall runs leave them built), and each
    build is dropped again after it.

    Our time splits by the --json report: `start` is the process's wall time less the run's duration_s
    (Python, the imports, the settings), `before_build` the run up to BuildStarted (connect, pre-flight,
    the locks, the plan, yoyo's tables), `build` BuildStarted to Built (the build connection, its SETs,
    the watcher, the statements), `after_build` the rest (the record, closing)."""
    builds.roll_back_all(target, echo)
    env = {**os.environ, "DATABASE_URL": target.conninfo}
    rows = []
    for number in range(1, rounds + 1):
        row = {"round": number}
        for arm in ("bare", "ours") if number % 2 else ("ours", "bare"):
            row.update(_bare_once(target, m) if arm == "bare" else _ours_once(target, m, env, echo))
        row["overhead_s"] = round(row["ours_s"] - row["bare_s"], 4)
        row["ratio"] = round(row["ours_s"] / row["bare_s"], 3)
        rows.append(row)
    parts = ("ours_s", "bare_s", "overhead_s", "ratio", "start_s", "before_build_s", "build_s", "after_build_s")
    return {"migration": m.id, "index": m.index, "rounds": rows,
            "median": {part: round(statistics.median(row[part] for row in rows), 4) for part in parts}}


def _bare_once(target: Target, m: IndexMigration) -> dict:
    started = time.monotonic()
    with connect(target) as conn:
        conn.execute(builds.create_index(m, m.index, concurrently=True))
    seconds = time.monotonic() - started
    with connect(target) as conn:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY {}").format(sql.Identifier(m.index)))
    return {"bare_s": round(seconds, 4)}


def _ours_once(target: Target, m: IndexMigration, env: dict, echo) -> dict:
    started = time.monotonic()
    done = _run(["invoke", "migrate", "--to", m.id, "--json"], env)
    seconds = time.monotonic() - started
    report = json.loads(done.stdout)
    if report["exit_code"] != 0:
        raise ToolError(f"invoke migrate --to {m.id} exited {report['exit_code']}: {report['error']}")
    at = {entry["event"]: entry["at_s"] for entry in report["events"]}
    builds.roll_back_all(target, echo)
    return {"ours_s": round(seconds, 4), "start_s": round(seconds - report["duration_s"], 4),
            "before_build_s": at["BuildStarted"], "build_s": round(at["Built"] - at["BuildStarted"], 4),
            "after_build_s": round(report["duration_s"] - at["Built"], 4)}


def main() -> None:
    """`python -m benchmarks.overhead --against REV`: this checkout's commands with nothing to do against
    those of the commit REV (`git archive`), and `yoyo apply`, in the same turns; writes
    results/<date>-overhead-against-<REV>.md."""
    import argparse
    import datetime

    from upstream_indexes import runner
    from upstream_indexes.embedded import choose_target
    from upstream_indexes.lines import LinePrinter

    from . import RESULTS_DIR

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="a commit, branch or tag of this repository")
    parser.add_argument("--reps", type=int, default=9, help="turns (default 9)")
    parser.add_argument("--dsn", help="the database (default: as invoke chooses it, e.g. the embedded demo)")
    args = parser.parse_args()
    target = choose_target(args.dsn)
    runner.migrate(target, LinePrinter(sys.stdout))  # every index built: the commands have nothing to do
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="upstream-bench-against-") as scratch:
        tree = Path(scratch) / args.against.replace("/", "-")
        tree.mkdir()
        archive = subprocess.run(["git", "archive", args.against], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        rows = measure(target, args.reps, against=tree)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    lines = [f"# Tool overhead: this checkout ({commit.stdout.strip()}) against {args.against}", "",
             f"`python -m benchmarks.overhead --against {args.against} --reps {args.reps}`, "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; load average (1, 5, 15 min) "
             f"{', '.join(f'{v:.1f}' for v in load_before)} before, "
             f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} after. Whole processes, every index built; "
             f"each turn runs every command once in a rotated order; the ratio is to `yoyo apply` of the same "
             "turn (medians of those ratios). CPU: user + system seconds of the process, less disturbed than wall "
             "time by the machine's other load.", "",
             "| command | wall s, median | wall s, min | / yoyo apply | CPU s, median | / yoyo apply |",
             "|---|---|---|---|---|---|"]
    lines += [f"| `{row['command']}` | {row['median_s']:.3f} | {row['min_s']:.3f} | {row['ratio_to_yoyo']:.2f}x | "
              f"{row['cpu_median_s']:.3f} | {row['cpu_ratio_to_yoyo']:.2f}x |" for row in rows]
    path = RESULTS_DIR / f"{datetime.date.today().isoformat()}-overhead-against-{args.against.replace('/', '-')}.md"
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines) + f"\nwrote {path}")


if __name__ == "__main__":
    main()
