"""The tool's own cost, as a user meets it: whole processes, timed from outside.

- measure: commands with nothing to do (every index built) against `yoyo apply`
  with nothing to do on the same database, the floor a yoyo user knows; each
  repetition runs every command once, in a rotated order, and each command is
  compared with the `yoyo apply` of its own repetition.
- per_build: one `invoke migrate --to <first migration> --json` against the bare
  statement a DBA runs (connect, CREATE INDEX CONCURRENTLY, disconnect), quiet,
  in alternating rounds; the --json events say where our extra time goes.

`python -m benchmarks.overhead` runs either on its own, against another commit in the same turns
(main(); `invoke bench` runs both in its larger run).
"""

import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from upstream_indexes import demo
from upstream_indexes.config import Target
from upstream_indexes.db import connect
from upstream_indexes.errors import ToolError
from upstream_indexes.migrations import IndexMigration
from upstream_indexes.paths import MIGRATIONS_DIR, ROOT

from . import RESULTS_DIR, builds

YOYO = "yoyo apply (nothing to do)"
# The libraries every invoke command of ours stands on, imported and nothing else.
FLOOR = "Python, invoke and psycopg imported (the floor)"
# label -> the command ("invoke ..." runs as `python -m invoke ...`). The floors of every invoke command:
# FLOOR, then `--version` (Python and invoke alone), then `--list` (tasks.py and what its help imports).
COMMANDS = {
    YOYO: None,  # its own script, with a config file: see _yoyo_command
    FLOOR: [sys.executable, "-c", "import invoke.main, psycopg"],
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
            commands |= {f"{label}, {against.name}": (args, against) for label, args in COMMANDS.items()
                         if args and args[0] == "invoke"}
        for root in {root for _, root in commands.values()}:
            _compile(root)
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


def per_build(target: Target, m: IndexMigration, rounds: int, echo, against: Path | None = None) -> dict:
    """`invoke migrate --to <m> --json` against the bare statement, `rounds` times each, taking turns at
    going first; no writers. `against`: another checkout (main()), whose `invoke migrate` takes its turn
    in the same rounds. Every index is rolled back first (the stall runs leave them built), and each
    build is dropped again after it.

    Our time splits by the --json report: `start` is the process's wall time less the run's duration_s
    (Python, the imports, the settings), `before_build` the run up to BuildStarted (connect, pre-flight,
    the locks, the plan, yoyo's tables), `build` BuildStarted to Built (the build connection, its SETs,
    the watcher, the statements), `after_build` the rest (the record, closing); `in_run` is before_build
    and after_build: the run's own time around the build step (the process start is what the commands
    with nothing to do measure)."""
    builds.roll_back_all(target, echo)
    env = {**os.environ, "DATABASE_URL": target.conninfo}
    checkouts = {"ours": ROOT} | ({against.name: against} if against is not None else {})
    arms = ["bare", *checkouts]
    for root in checkouts.values():
        _compile(root)
    rows: dict[str, list[dict]] = {name: [] for name in checkouts}
    for number in range(1, rounds + 1):
        first = (number - 1) % len(arms)
        timed = {arm: _bare_once(target, m) if arm == "bare" else _ours_once(target, m, env, echo, checkouts[arm])
                 for arm in arms[first:] + arms[:first]}
        for name in checkouts:
            row = {"round": number, **timed["bare"], **timed[name]}
            row["overhead_s"] = round(row["ours_s"] - row["bare_s"], 4)
            row["ratio"] = round(row["ours_s"] / row["bare_s"], 3)
            rows[name].append(row)
    result = {"migration": m.id, "index": m.index, **_medians(rows["ours"])}
    if against is not None:
        result["against"] = {"checkout": against.name, **_medians(rows[against.name])}
    return result


def _medians(rows: list[dict]) -> dict:
    parts = ("ours_s", "bare_s", "overhead_s", "ratio", "start_s", "before_build_s", "build_s", "after_build_s",
             "in_run_s")
    return {"rounds": rows, "median": {part: round(statistics.median(row[part] for row in rows), 4)
                                       for part in parts}}


def _bare_once(target: Target, m: IndexMigration) -> dict:
    started = time.monotonic()
    with connect(target) as conn:
        conn.execute(builds.create_index(m, m.index, concurrently=True))
    seconds = time.monotonic() - started
    with connect(target) as conn:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY {}").format(sql.Identifier(m.index)))
    return {"bare_s": round(seconds, 4)}


def _ours_once(target: Target, m: IndexMigration, env: dict, echo, root: Path = ROOT) -> dict:
    started = time.monotonic()
    done = _run(["invoke", "migrate", "--to", m.id, "--json"], env, root)
    seconds = time.monotonic() - started
    report = json.loads(done.stdout)
    if report["exit_code"] != 0:
        raise ToolError(f"invoke migrate --to {m.id} exited {report['exit_code']}: {report['error']}")
    at = {entry["event"]: entry["at_s"] for entry in report["events"]}
    builds.roll_back_all(target, echo)
    build = at["Built"] - at["BuildStarted"]
    return {"ours_s": round(seconds, 4), "start_s": round(seconds - report["duration_s"], 4),
            "before_build_s": at["BuildStarted"], "build_s": round(build, 4),
            "after_build_s": round(report["duration_s"] - at["Built"], 4),
            "in_run_s": round(report["duration_s"] - build, 4)}


def main(argv: list[str] | None = None) -> None:
    """`python -m benchmarks.overhead --against REV`: this checkout's commands with nothing to do against
    those of the commit REV (`git archive`), and `yoyo apply`, in the same turns; writes
    results/<date>-overhead-against-<REV>.md. With --per-build: one build's overhead over the bare statement
    (per_build) on the bench's demo data at --scale, REV's `invoke migrate` in the same rounds if given;
    writes results/<date>-overhead-per-build-scale<N>.md."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--against", help="a commit, branch or tag of this repository (required without "
                                          "--per-build)")
    parser.add_argument("--reps", type=int, default=9, help="turns (default 9)")
    parser.add_argument("--dsn", help="the database (default: as invoke chooses it, e.g. the embedded demo; "
                                      "--per-build: as `invoke bench` chooses it)")
    parser.add_argument("--per-build", action="store_true",
                        help="measure one build's overhead over the bare statement instead")
    parser.add_argument("--scale", type=float, default=0.25,
                        help="--per-build: the demo data's size, 1.0 = 3M claims (default 0.25); kept after the "
                             "run, and not loaded again by the next run of the same scale")
    parser.add_argument("--rounds", type=int, default=5, help="--per-build: rounds (default 5)")
    args = parser.parse_args(argv)
    if not args.per_build and not args.against:
        parser.error("--against is required (or --per-build)")
    if args.reps < 1 or args.rounds < 1:
        parser.error("--reps and --rounds must be at least 1")
    try:
        if args.per_build:
            args.scale = demo.check_scale(args.scale)
        with _checkout(args.against) as tree:
            lines, path = (_per_build_file if args.per_build else _against_file)(args, tree)
    except ToolError as exc:
        sys.exit(f"error: {exc}")
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines) + f"\nwrote {path}")


@contextmanager
def _checkout(rev: str | None) -> Iterator[Path | None]:
    """The tree of commit `rev` (`git archive`) in a scratch folder, removed on the way out; None for None."""
    if rev is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="upstream-bench-against-") as scratch:
        tree = Path(scratch) / rev.replace("/", "-")
        tree.mkdir()
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True)
        if archive.returncode:
            raise ToolError(f"git archive {rev}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        yield tree


def _compile(root: Path) -> None:
    """The checkout's bytecode, as pip writes a wheel's (and yoyo's) when it installs it: where
    PYTHONDONTWRITEBYTECODE (or, before tasks.py undid it, invoke) writes none, each timed process would
    compile what it imports from source."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "src", "tasks.py"], cwd=root, check=True,
                   stdout=subprocess.DEVNULL)


def _against_file(args, tree: Path) -> tuple[list[str], Path]:
    from upstream_indexes import runner
    from upstream_indexes.embedded import choose_target
    from upstream_indexes.lines import LinePrinter

    target = choose_target(args.dsn)
    runner.migrate(target, LinePrinter(sys.stdout))  # every index built: the commands have nothing to do
    load_before = os.getloadavg()
    rows = measure(target, args.reps, against=tree)
    lines = [f"# Tool overhead: this checkout ({_head()}) against {args.against}", "",
             f"`python -m benchmarks.overhead --against {args.against} --reps {args.reps}`, {_when(load_before)} "
             "Whole processes, every index built; each turn runs every command once in a rotated order; the ratio "
             "is to `yoyo apply` of the same turn (medians of those ratios). CPU: user + system seconds of the "
             "process, less disturbed than wall time by the machine's other load.", "",
             "| command | wall s, median | wall s, min | / yoyo apply | CPU s, median | / yoyo apply |",
             "|---|---|---|---|---|---|"]
    lines += [f"| `{row['command']}` | {row['median_s']:.3f} | {row['min_s']:.3f} | {row['ratio_to_yoyo']:.2f}x | "
              f"{row['cpu_median_s']:.3f} | {row['cpu_ratio_to_yoyo']:.2f}x |" for row in rows]
    return lines, RESULTS_DIR / f"{_today()}-overhead-against-{args.against.replace('/', '-')}.md"


def _per_build_file(args, tree: Path | None) -> tuple[list[str], Path]:
    """The bench's demo data at --scale (loaded as `invoke bench` loads it, unless already there), then
    per_build; its tables as results.py writes them in the bench's summary."""
    from upstream_indexes import migrations

    from . import results
    from .sandbox import holds, open_sandbox, reload

    sandbox = open_sandbox(args.dsn, allow_shared=False)
    print(sandbox.describe())
    if holds(sandbox, args.scale):
        print(f"scale {args.scale:g}: the demo data is loaded already (kept by an earlier run)")
    else:
        print(f"scale {args.scale:g}: loading the demo data ...")
        reload(sandbox, args.scale)
    first = migrations.load()[0]
    load_before = os.getloadavg()
    print(f"per-build overhead: `invoke migrate --to {first.id}` against the bare statement ({args.rounds} rounds"
          + (f", and {args.against}'s" if tree else "") + ") ...")
    report = {"scales": [{"scale": args.scale}], "per_build_overhead": per_build(sandbox.target, first, args.rounds,
                                                                                  print, against=tree)}
    command = (f"python -m benchmarks.overhead --per-build --scale {args.scale:g} --rounds {args.rounds}"
               + (f" --against {args.against}" if tree else ""))
    lines = [f"# Per-build overhead: this checkout ({_head()})" + (f" and {args.against}" if tree else ""), "",
             f"`{command}`, {_when(load_before)} The demo data is kept in the bench's schema "
             f"({sandbox.database}, schema upstream_bench) for the next run.", "",
             *results.per_build_section(report)]
    return lines, RESULTS_DIR / f"{_today()}-overhead-per-build-scale{args.scale:g}.md"


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()


def _today() -> str:
    return datetime.date.today().isoformat()


def _when(load_before: tuple[float, ...]) -> str:
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; load average (1, 5, 15 min) "
            f"{', '.join(f'{v:.1f}' for v in load_before)} before, "
            f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} after.")


if __name__ == "__main__":
    main()
