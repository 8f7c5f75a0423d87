"""Index builds: the write stall while each index is built, and the build
cost by maintenance setting.

Stall, writers running (writer.py), on the same data in the same run:
- plain: CREATE INDEX without CONCURRENTLY of each migration's definition, which
  blocks its table's writes for the whole build (once per size);
- then rounds, in which each arm builds every index and drops it again:
  bare, the statement a DBA types in psql (CREATE INDEX CONCURRENTLY of the same
  definition, one plain connection, the server's settings); ours,
  `runner.migrate` (what `invoke migrate` does, its default build settings); at
  some sizes also ours with --parallel-workers 0. The arms take turns at going
  first (round 2 starts with the second arm, ...), so none always meets the
  warmer cache or the next checkpoint, and each of ours is compared with the
  bare statement of its own round.

Plain builds run first (then are dropped): all read a table the demo load has
just written, so all find it in the OS cache.
"""

import math
import statistics
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from upstream_indexes import events, index_events, runner, settings
from upstream_indexes.config import Target
from upstream_indexes.db import connect
from upstream_indexes.errors import ToolError
from upstream_indexes.migrations import IndexMigration
from upstream_indexes.lines import LinePrinter

from . import waits
from .writer import Writers

PROBE_INDEX = "bench_build_probe"
MARGIN_S = 1.0  # seconds of writes a timeline keeps before its first build and after its last


@dataclass(frozen=True)
class Arm:
    """One way of building every index in the rounds."""

    mode: str  # plain | bare | ours | ours_0_workers
    label: str
    parallel_workers: int | None = None  # ours: --parallel-workers; None: `invoke migrate`'s default
    jobs: int = 1  # ours: --jobs


PLAIN, BARE = "plain", "bare"
PLAIN_ARM = Arm(PLAIN, "plain CREATE INDEX")
BARE_ARM = Arm(BARE, "bare CREATE INDEX CONCURRENTLY")
OURS_ARM = Arm("ours", "invoke migrate")
NO_WORKERS_ARM = Arm("ours_0_workers", "invoke migrate --parallel-workers 0", parallel_workers=0)


@dataclass(frozen=True)
class Window:
    """When one index was being built, in time.monotonic() seconds."""

    migration: IndexMigration
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class StallRun:
    """One arm building all indexes while writers run: the build windows; `load` holds every write,
    the writers' backend pids and the wait samples (shared by the runs of one round-robin)."""

    mode: str  # plain | bare | ours | ours_0_workers | rollback
    windows: list[Window]
    load: Writers
    origin: float  # time.monotonic() when the writers were all running
    quiet_until: float  # the first build under this load: the writes before it are the baseline
    round: int | None = None  # the rounds: 1, 2, ...
    jobs: int = 1  # ours: `invoke migrate --jobs`
    whole_s: float | None = None  # ours: the whole runner.migrate call; bare: the statements one after another

    @property
    def span(self) -> tuple[float, float]:
        """From the start of the first build to the end of the last."""
        return min(w.started for w in self.windows), max(w.ended for w in self.windows)


class BuildTimes:
    """A listener to the runner: when each build started (its first attempt) and ended, by its events;
    and each drop of a rollback."""

    def __init__(self):
        self.started: dict[str, float] = {}
        self.built: dict[str, float] = {}
        self.dropping: dict[str, float] = {}
        self.rolled_back: dict[str, float] = {}

    def emit(self, event: events.Event) -> None:
        if isinstance(event, index_events.BuildStarted):
            self.started.setdefault(event.migration_id, time.monotonic())
        elif isinstance(event, index_events.Built):
            self.built[event.migration_id] = time.monotonic()
        elif isinstance(event, index_events.Dropping):
            self.dropping[event.migration_id] = time.monotonic()
        elif isinstance(event, index_events.RolledBack):
            self.rolled_back[event.migration_id] = time.monotonic()

    def window(self, m: IndexMigration) -> Window:
        if m.id not in self.started or m.id not in self.built:
            raise ToolError(f"the runner did not build {m.index} (was it built already?)")
        return Window(m, self.started[m.id], self.built[m.id])

    def drop_window(self, m: IndexMigration) -> Window:
        """From Dropping to RolledBack: the drop and yoyo's record."""
        if m.id not in self.dropping or m.id not in self.rolled_back:
            raise ToolError(f"the runner did not roll back {m.index}")
        return Window(m, self.dropping[m.id], self.rolled_back[m.id])


class EchoedPrinter(LinePrinter):
    """The runner's plain lines, echoed indented."""

    def __init__(self, echo):
        super().__init__()
        self.echo = echo

    def line(self, text: str) -> None:
        self.echo(f"    runner: {text}")


def create_index(m: IndexMigration, name: str, concurrently: bool) -> sql.Composed:
    """The migration's definition as CREATE INDEX [CONCURRENTLY] under `name`."""
    definition_tail = m.definition.split(f" ON {m.table} ", 1)[1]  # USING btree (...) INCLUDE (...)
    return sql.SQL("CREATE INDEX {}{} ON {} {}").format(
        sql.SQL("CONCURRENTLY ") if concurrently else sql.SQL(""), sql.Identifier(name),
        sql.Identifier(m.table), sql.SQL(definition_tail))


def _timed_statements(target: Target, statements: list[tuple[IndexMigration, sql.Composable]]) -> list[Window]:
    """Each statement on one plain connection, one after another, timed."""
    windows = []
    with connect(target) as conn:
        for m, statement in statements:
            started = time.monotonic()
            conn.execute(statement)
            windows.append(Window(m, started, time.monotonic()))
    return windows


def stall(target: Target, files: list[IndexMigration], arms: list[Arm], count: int, jobs: int | None,
          rate: float, lead_s: float, echo) -> list[StallRun]:
    """Under one write load, one after another: the plain builds; `count` rounds in which each arm builds
    every index, round r starting with arm r (mod the arms), the others following in turn; with `jobs`,
    one `runner.migrate --jobs N`. Each build but the last is dropped again before the next."""
    steps = [(PLAIN_ARM, None)] + [(arm, number) for number in range(1, count + 1)
                                   for arm in arms[(number - 1) % len(arms):] + arms[:(number - 1) % len(arms)]]
    if jobs:
        steps.append((Arm("ours", f"invoke migrate --jobs {jobs}", jobs=jobs), None))
    built = []
    with Writers(target, tables(files), rate) as writers:
        origin = time.monotonic()
        time.sleep(lead_s)
        for step, (arm, number) in enumerate(steps, 1):
            echo(f"  {f'round {number}/{count}: ' if number else ''}{arm.label}, writers running ...")
            started = time.monotonic()
            windows = _build_all(target, files, arm, echo)
            built.append((arm, number, windows, time.monotonic() - started))
            if step < len(steps):
                _drop_all(target, files, arm, echo)
            time.sleep(lead_s)
    quiet_until = built[0][2][0].started
    return [StallRun(arm.mode, windows, writers, origin, quiet_until, number, arm.jobs, whole_s)
            for arm, number, windows, whole_s in built]


def _build_all(target: Target, files: list[IndexMigration], arm: Arm, echo) -> list[Window]:
    """Every index built by the arm: its build windows."""
    if arm.mode in (PLAIN, BARE):
        return _timed_statements(target, [(m, create_index(m, m.index, concurrently=arm.mode == BARE))
                                          for m in files])
    times = BuildTimes()
    runner.migrate(target, events.Listeners(times, EchoedPrinter(echo)),
                   runner.MigrateOptions(jobs=arm.jobs, build_settings=build_settings(arm.parallel_workers)))
    return [times.window(m) for m in files]


def _drop_all(target: Target, files: list[IndexMigration], arm: Arm, echo) -> None:
    """Drop what the arm built: by hand (plain: DROP INDEX, which a partitioned index needs; bare:
    CONCURRENTLY), or ours as `invoke rollback --all`."""
    if arm.mode in (PLAIN, BARE):
        drop = sql.SQL("DROP INDEX CONCURRENTLY {}" if arm.mode == BARE else "DROP INDEX {}")
        _timed_statements(target, [(m, drop.format(sql.Identifier(m.index))) for m in files])
    else:
        roll_back_all(target, echo)


def build_settings(parallel_workers: int | None = None) -> tuple[tuple[str, str], ...]:
    """The build session's settings as `invoke migrate [--parallel-workers N]` takes them from this checkout."""
    return settings.load().build_settings({"max-parallel-maintenance-workers": parallel_workers})


def roll_back_all(target: Target, echo) -> None:
    """`invoke rollback --all`: the next runner.migrate builds every index again."""
    runner.rollback(target, EchoedPrinter(echo), everything=True)


def whole_migrate(runs: list[StallRun]) -> dict:
    """Each whole runner.migrate of every index (its default settings) against the bare statements of the
    same definitions one after another: in a round against that round's, after the rounds (--jobs N)
    against the rounds' median; and the worst write on any table from the first build's start to the last
    one's end (with --jobs N builds overlap: a write may meet several)."""
    bare = {run.round: run.whole_s for run in runs if run.mode == BARE}
    bare_median = statistics.median(bare.values()) if bare else None  # none on a partitioned table
    rows = []
    for run in [r for r in runs if r.mode == OURS_ARM.mode]:
        start, end = run.span
        latencies = [w.latency for writes in run.load.writes.values() for w in writes
                     if w.started < end and w.ended > start]
        against = bare.get(run.round, bare_median)
        rows.append({"jobs": run.jobs, "round": run.round, "whole_s": round(run.whole_s, 4),
                     "builds_span_s": round(end - start, 4), "bare_s": against and round(against, 4),
                     "ratio_to_bare": against and round(run.whole_s / against, 2),
                     "max_write_ms": round(1000 * max(latencies), 2) if latencies else None,
                     "writes_during_builds": len(latencies),
                     "failed_writes": sum(not w.ok for writes in run.load.writes.values() for w in writes
                                          if w.started < end and w.ended > start)})
    return {"bare_median_s": bare_median and round(bare_median, 4), "runs": rows}


def runner_rollback(target: Target, files: list[IndexMigration], rate: float, lead_s: float, echo) -> StallRun:
    """`runner.rollback` of every index (`invoke rollback --all`) while writers run: on a partitioned
    table a plain DROP INDEX of the parent, which takes ACCESS EXCLUSIVE on it and every partition."""
    times = BuildTimes()
    with Writers(target, tables(files), rate) as writers:
        origin = time.monotonic()
        time.sleep(lead_s)
        runner.rollback(target, events.Listeners(times, EchoedPrinter(echo)), everything=True)
        time.sleep(lead_s)
    windows = [times.drop_window(m) for m in files]
    return StallRun("rollback", windows, writers, origin, windows[0].started)


def tables(files: list[IndexMigration]) -> list[str]:
    return list(dict.fromkeys(m.table for m in files))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def stall_rows(run: StallRun) -> list[dict]:
    """Per index: the build time and its table's writes while it was built.

    Latencies are of the writes that overlapped the build (a write blocked by
    it ends after it); "completed" counts the writes that finished inside it.
    The baseline is the median write latency before the load's first build.
    Each write over waits.SLOW_MS comes with the wait events sampled while it
    ran; `checkpoints` says what the checkpointer did during the build.
    """
    rows = []
    for window in run.windows:
        table = window.migration.table
        writes = run.load.writes[table]
        overlapping = [w for w in writes if w.started < window.ended and w.ended > window.started]
        baseline = [w.latency for w in writes if w.ended < run.quiet_until]
        latencies = [w.latency for w in overlapping]
        completed = sum(window.started <= w.ended <= window.ended for w in writes)
        rows.append({
            "index": window.migration.index,
            "table": table,
            "mode": run.mode,
            "round": run.round,
            "build_s": round(window.seconds, 4),
            "writes_completed_during_build": completed,
            "write_rate_during_build_per_s": round(completed / window.seconds, 1),
            # None: no write overlapped the build (a build shorter than the writers' period).
            "latency_ms": {name: round(1000 * percentile(latencies, p), 2) if latencies else None
                           for name, p in (("p50", 50), ("p99", 99), ("max", 100))},
            "writes_during_build": len(overlapping),
            "baseline_p50_ms": round(1000 * statistics.median(baseline), 2) if baseline else None,
            "failed_writes": sum(not w.ok for w in overlapping),
            "slow_writes": waits.slow_writes(writes, run.load.pids[table], run.load.samples, window.started,
                                             window.ended),
            "checkpoints": waits.checkpoints(run.load.samples, window.started, window.ended),
        })
    return rows


def timeline(run: StallRun) -> dict:
    """Every write and build window, in seconds since the writers were all running (for the JSON and charts);
    one round's runs share their writes, so each run's timeline holds the writes from its first build's
    start to its last one's end, with a margin of `MARGIN_S` either side."""
    start, end = run.span
    keep = [(table, [w for w in writes if start - MARGIN_S <= w.started <= end + MARGIN_S])
            for table, writes in run.load.writes.items()]
    return {
        "mode": run.mode,
        "round": run.round,
        "windows": [{"index": w.migration.index, "table": w.migration.table,
                     "start_s": round(w.started - run.origin, 4), "end_s": round(w.ended - run.origin, 4)}
                    for w in run.windows],
        "writes": {table: {"start_s": [round(w.started - run.origin, 4) for w in writes],
                           "latency_ms": [round(1000 * w.latency, 3) for w in writes],
                           "kind": "".join(w.kind[0] for w in writes),
                           "failed": sum(not w.ok for w in writes)}
                   for table, writes in keep},
    }


MEASURES = {"build_s": lambda row: row["build_s"], "p99_ms": lambda row: row["latency_ms"]["p99"],
            "max_ms": lambda row: row["latency_ms"]["max"]}


def against_bare(rows: list[dict]) -> list[dict]:
    """Per arm (the bare statement too) and index, over the rounds: each measure's values by round, and
    for ours the ratio of each to the bare statement's in the same round (a round where either has no
    value, e.g. no write during a short build, gives no ratio)."""
    bare = {(row["index"], row["round"]): row for row in rows if row["mode"] == BARE}
    compared = []
    for mode in dict.fromkeys(row["mode"] for row in rows if row["round"] is not None):
        for index in dict.fromkeys(row["index"] for row in rows):
            mine = [row for row in rows if row["mode"] == mode and row["index"] == index]
            entry = {"mode": mode, "index": index, "rounds": len(mine)}
            for name, measure in MEASURES.items():
                values = [measure(row) for row in mine]
                ratios = [measure(row) / measure(bare[(index, row["round"])]) for row in mine
                          if measure(row) is not None and measure(bare[(index, row["round"])])]
                entry[name] = {"values": values, "median": _median(values),
                               "ratios": [round(r, 3) for r in ratios], "median_ratio": _median(ratios)}
            compared.append(entry)
    return compared


def slow_write_summary(rows: list[dict]) -> list[dict]:
    """Per arm, over all its builds: the writes during them, the slow ones, the wait events they met (by how
    many slow writes met each), and the checkpoints."""
    summary = []
    for mode in dict.fromkeys(row["mode"] for row in rows):
        mine = [row for row in rows if row["mode"] == mode]
        slow = [write for row in mine for write in row["slow_writes"]]
        checkpoints = [row["checkpoints"] for row in mine]
        summary.append({"mode": mode, "builds": len(mine),
                        "writes_during_builds": sum(row["writes_during_build"] for row in mine),
                        "slow_writes": len(slow), "waits": waits.summary(slow),
                        "checkpoints_counted": sum(c["counted"] or 0 for c in checkpoints),
                        "checkpoints_started": sum(c["started"] for c in checkpoints),
                        "builds_with_checkpoint_running": sum(bool(c["running"]) for c in checkpoints)})
    return summary


def _median(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 4) if present else None


def build_cost(target: Target, files: list[IndexMigration], maintenance: list[dict], reps: int) -> list[dict]:
    """Quiet build times (no writers) of each definition, plain and CONCURRENTLY, per maintenance setting
    (the bench session SETs them for both kinds of build)."""
    rows = []
    with connect(target) as conn:
        for setting in maintenance:
            for name, value in setting.items():
                conn.execute("SELECT set_config(%s, %s, false)", [name, str(value)])
            for m in files:
                times = {mode: [_timed_probe(conn, m, mode == "concurrent") for _ in range(reps)]
                         for mode in ("plain", "concurrent")}
                plain, concurrent = (statistics.median(times[mode]) for mode in ("plain", "concurrent"))
                rows.append({"settings": setting, "index": m.index, "plain_s": round(plain, 4),
                             "concurrent_s": round(concurrent, 4), "ratio": round(concurrent / plain, 2),
                             "reps": reps})
        conn.execute("RESET ALL")
    return rows


def _timed_probe(conn: psycopg.Connection, m: IndexMigration, concurrently: bool) -> float:
    """Build the migration's definition under a probe name, timed, then drop it."""
    started = time.monotonic()
    conn.execute(create_index(m, PROBE_INDEX, concurrently))
    seconds = time.monotonic() - started
    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(PROBE_INDEX)))
    return seconds
