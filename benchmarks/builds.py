"""Index builds: the write stall while each index is built, by the real runner
(`runner.migrate`, what `invoke migrate` does: CREATE INDEX CONCURRENTLY)
and by a plain CREATE INDEX of the same definition, on the same data in the
same run; and the build time of both under maintenance settings.

Plain builds run first (then are dropped), the runner second: both read a
table the demo load has just written, so both find it in the OS cache.
"""

import math
import statistics
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from upstream_indexes import events, runner
from upstream_indexes.config import Target
from upstream_indexes.db import connect
from upstream_indexes.errors import ToolError
from upstream_indexes.migrations import IndexMigration
from upstream_indexes.lines import LinePrinter

from .writer import Write, Writers

PROBE_INDEX = "bench_build_probe"


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
    """One way of building all indexes while writers run: the build windows and every write."""

    mode: str  # plain | concurrent
    windows: list[Window]
    writes: dict[str, list[Write]]  # per table
    origin: float  # time.monotonic() when the writers were all running
    jobs: int = 1  # concurrent: `invoke migrate --jobs`
    whole_s: float | None = None  # concurrent: the whole runner.migrate call

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
        if isinstance(event, events.BuildStarted):
            self.started.setdefault(event.migration_id, time.monotonic())
        elif isinstance(event, events.Built):
            self.built[event.migration_id] = time.monotonic()
        elif isinstance(event, events.Dropping):
            self.dropping[event.migration_id] = time.monotonic()
        elif isinstance(event, events.RolledBack):
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


def plain_builds(target: Target, files: list[IndexMigration], rate: float, lead_s: float) -> StallRun:
    """CREATE INDEX (no CONCURRENTLY) of each migration's definition while writers run; then drop them."""
    windows = []
    with connect(target) as conn:
        with Writers(target, tables(files), rate) as writers:
            origin = time.monotonic()
            time.sleep(lead_s)
            for m in files:
                started = time.monotonic()
                conn.execute(m.definition)  # the migration's own definition, CONCURRENTLY removed
                windows.append(Window(m, started, time.monotonic()))
            time.sleep(lead_s)
        for m in files:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(m.index)))
    return StallRun("plain", windows, writers.writes, origin)


def runner_builds(target: Target, files: list[IndexMigration], rate: float, lead_s: float, echo,
                  jobs: int = 1) -> StallRun:
    """`runner.migrate` (what `invoke migrate --jobs N` does) while writers run."""
    times = BuildTimes()
    with Writers(target, tables(files), rate) as writers:
        origin = time.monotonic()
        time.sleep(lead_s)
        started = time.monotonic()
        runner.migrate(target, events.Listeners(times, EchoedPrinter(echo)), runner.MigrateOptions(jobs=jobs))
        whole_s = time.monotonic() - started
        time.sleep(lead_s)
    return StallRun("concurrent", [times.window(m) for m in files], writers.writes, origin, jobs, whole_s)


def roll_back_all(target: Target, echo) -> None:
    """`invoke rollback --all`: the next runner.migrate builds every index again."""
    runner.rollback(target, EchoedPrinter(echo), everything=True)


def whole_migrate(plain: StallRun, runs: list[StallRun]) -> dict:
    """The whole runner.migrate of every index, by --jobs, against the sum of the plain builds of the
    same definitions in the same run; and the worst write on any table from the first build's start
    to the last one's end (with --jobs N builds overlap: a write may meet several)."""
    plain_sum = sum(w.seconds for w in plain.windows)
    rows = []
    for run in runs:
        start, end = run.span
        latencies = [w.latency for writes in run.writes.values() for w in writes
                     if w.started < end and w.ended > start]
        rows.append({"jobs": run.jobs, "whole_s": round(run.whole_s, 4), "builds_span_s": round(end - start, 4),
                     "ratio_to_plain_sum": round(run.whole_s / plain_sum, 2),
                     "max_write_ms": round(1000 * max(latencies), 2) if latencies else None,
                     "writes_during_builds": len(latencies),
                     "failed_writes": sum(not w.ok for writes in run.writes.values() for w in writes)})
    return {"plain_sum_s": round(plain_sum, 4), "runs": rows}


def runner_rollback(target: Target, files: list[IndexMigration], rate: float, lead_s: float, echo) -> StallRun:
    """`runner.rollback` of every index (`invoke rollback --all`) while writers run: on a partitioned
    table a plain DROP INDEX of the parent, which takes ACCESS EXCLUSIVE on it and every partition."""
    times = BuildTimes()
    with Writers(target, tables(files), rate) as writers:
        origin = time.monotonic()
        time.sleep(lead_s)
        runner.rollback(target, events.Listeners(times, EchoedPrinter(echo)), everything=True)
        time.sleep(lead_s)
    return StallRun("rollback", [times.drop_window(m) for m in files], writers.writes, origin)


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
    The baseline is the median write latency before the first build.
    """
    first_build = min(w.started for w in run.windows)
    rows = []
    for window in run.windows:
        writes = run.writes[window.migration.table]
        overlapping = [w for w in writes if w.started < window.ended and w.ended > window.started]
        baseline = [w.latency for w in writes if w.ended < first_build]
        latencies = [w.latency for w in overlapping]
        completed = sum(window.started <= w.ended <= window.ended for w in writes)
        rows.append({
            "index": window.migration.index,
            "table": window.migration.table,
            "mode": run.mode,
            "build_s": round(window.seconds, 4),
            "writes_completed_during_build": completed,
            "write_rate_during_build_per_s": round(completed / window.seconds, 1),
            # None: no write overlapped the build (a build shorter than the writers' period).
            "latency_ms": {name: round(1000 * percentile(latencies, p), 2) if latencies else None
                           for name, p in (("p50", 50), ("p99", 99), ("max", 100))},
            "baseline_p50_ms": round(1000 * statistics.median(baseline), 2) if baseline else None,
            "failed_writes": sum(not w.ok for w in overlapping),
        })
    return rows


def timeline(run: StallRun) -> dict:
    """Every write and build window, in seconds since the writers were all running (for the JSON and charts)."""
    return {
        "mode": run.mode,
        "windows": [{"index": w.migration.index, "table": w.migration.table,
                     "start_s": round(w.started - run.origin, 4), "end_s": round(w.ended - run.origin, 4)}
                    for w in run.windows],
        "writes": {table: {"start_s": [round(w.started - run.origin, 4) for w in writes],
                           "latency_ms": [round(1000 * w.latency, 3) for w in writes],
                           "kind": "".join(w.kind[0] for w in writes),
                           "failed": sum(not w.ok for w in writes)}
                   for table, writes in run.writes.items()},
    }


def build_cost(target: Target, files: list[IndexMigration], settings: list[dict], reps: int) -> list[dict]:
    """Quiet build times (no writers) of each definition, plain and CONCURRENTLY, per maintenance setting.

    The runner sets neither setting, so it builds with the server's (or the
    role's) defaults; here the bench session SETs them for both kinds of build.
    """
    rows = []
    with connect(target) as conn:
        for setting in settings:
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
    definition_tail = m.definition.split(f" ON {m.table} ", 1)[1]  # USING btree (...) INCLUDE (...)
    statement = sql.SQL("CREATE INDEX {}{} ON {} {}").format(
        sql.SQL("CONCURRENTLY ") if concurrently else sql.SQL(""), sql.Identifier(PROBE_INDEX),
        sql.Identifier(m.table), sql.SQL(definition_tail))
    started = time.monotonic()
    conn.execute(statement)
    seconds = time.monotonic() - started
    conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(PROBE_INDEX)))
    return seconds
