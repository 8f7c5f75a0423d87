"""`invoke bench`: load the demo data at three sizes into the bench's own
schema, and at each size measure the write stall of a plain CREATE INDEX,
then in alternating rounds of the bare CREATE INDEX CONCURRENTLY a DBA types
against the runner's builds (at the two largest sizes also without parallel
maintenance workers); at the smallest size the runner's per-build overhead
over the bare statement; at the largest the query cost before and after the
migration, the build cost by maintenance setting and the tool's own overhead
against `yoyo apply`. Writes results/<stem>.json, .md and charts.

Shared machines are noisy: compare numbers within one run (ratios to the bare
statement of the same round), read medians, and trust the counts that do not
depend on the machine (shared buffers, heap fetches, writes completed) before
the times.
"""

import datetime
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from upstream_indexes import catalog, demo, migrations
from upstream_indexes.db import connect
from upstream_indexes.paths import ROOT

from . import RESULTS_DIR, bench_sql, builds, overhead, queries, results, waits
from .sandbox import Sandbox, drop_data, open_sandbox, reload


QUIET_TIMEOUT_S = 60  # the longest wait for vacuum_ready.sql before VACUUM anyway
VACUUM_ATTEMPTS = 5

@dataclass(frozen=True)
class Plan:
    """What one run measures and how often. `scale` is the largest size; 1.0 = 3M claims."""

    scale: float
    quick: bool
    query_reps: int  # EXPLAIN ANALYZE runs per query and customer, after one warm-up run
    build_reps: int  # quiet builds per definition, kind and setting
    tool_reps: int  # runs of each invoke command
    lead_s: float  # writer time before the first and after the last build
    write_rate: float = 50.0  # writes per second per table
    stall_fractions: tuple[float, ...] = (0.25, 0.5, 1.0)  # the sizes, as fractions of `scale`
    partitioned: bool = False  # claims range-partitioned by month (demo/partitioned.sql); no build-cost runs
    rounds: int = 3  # alternating rounds of the bare statement and ours, at each size
    worker_sizes: int = 2  # at this many of the largest sizes the rounds add ours with --parallel-workers 0
    jobs: int = 3  # after the rounds, one `invoke migrate --jobs N` (it leaves the indexes built)
    build_settings: tuple[dict, ...] = field(default=(
        {"maintenance_work_mem": "64MB", "max_parallel_maintenance_workers": 0},
        {"maintenance_work_mem": "64MB", "max_parallel_maintenance_workers": 2},
        {"maintenance_work_mem": "1GB", "max_parallel_maintenance_workers": 0},
        {"maintenance_work_mem": "1GB", "max_parallel_maintenance_workers": 2},
    ))

    @property
    def scales(self) -> list[float]:
        """Above scale 1 the default run's smallest size (0.25) comes first: stalls compare from there."""
        sizes = [round(self.scale * fraction, 6) for fraction in self.stall_fractions]
        return [0.25, *sizes] if self.scale > 1 else sizes


FULL = Plan(scale=1.0, quick=False, query_reps=7, build_reps=3, tool_reps=7, lead_s=2.0)
QUICK = Plan(scale=0.1, quick=True, query_reps=3, build_reps=1, tool_reps=2, lead_s=0.5)


def plan_for(quick: bool, scale: float | None, partitioned: bool = False) -> Plan:
    plan = replace(QUICK if quick else FULL, partitioned=partitioned)
    if scale is not None:
        plan = replace(plan, scale=demo.check_scale(scale))
    return plan


def run(dsn: str | None, quick: bool, scale: float | None, allow_shared: bool, out_dir: Path | None,
        echo=print, partitioned: bool = False) -> Path:
    """The whole benchmark; returns the markdown summary's path."""
    plan = plan_for(quick, scale, partitioned)
    files = migrations.load()
    sandbox = open_sandbox(dsn, allow_shared)
    echo(sandbox.describe())
    started = time.monotonic()
    report = {"meta": _meta(sandbox, plan, dsn, scale), "plan": asdict(plan), "scales": []}
    for size in plan.scales:
        largest = size == plan.scales[-1]
        echo(f"scale {size:g}: loading the demo data ...")
        reload(sandbox, size, plan.partitioned)
        with connect(sandbox.target) as conn:
            entry = {"scale": size, "tables": _table_sizes(conn, builds.tables(files))}
            echo("  " + ", ".join(f"{t['table_name']} {t['row_count']:,} rows" for t in entry["tables"]))
            if largest:
                work = queries.workload(conn)
                echo(f"  query cost before the migration ({work.size} queries and customers, "
                     f"{plan.query_reps} runs each) ...")
                before = queries.measure(conn, work, plan.query_reps)
        _stall(sandbox, files, plan, entry, echo, workers=size in plan.scales[-plan.worker_sizes:])
        report["scales"].append(entry)
        if size == plan.scales[0] and not plan.partitioned:
            echo(f"  per-build overhead: `invoke migrate --to {files[0].id}` against the bare statement "
                 f"({plan.rounds} rounds, no writers) ...")
            report["per_build_overhead"] = overhead.per_build(sandbox.target, files[0], plan.rounds, echo)
        if largest:
            with connect(sandbox.target) as conn:
                entry["vacuum_attempts"] = _vacuum(conn, builds.tables(files))
                entry["index_bytes"] = {m.index: catalog.index_state(conn, m).size_bytes for m in files}
                echo("  query cost after the migration and VACUUM ...")
                report["queries"] = queries.compare(before, queries.measure(conn, work, plan.query_reps))
            # CREATE INDEX CONCURRENTLY cannot build on a partitioned table: no such comparison there.
            echo(f"  build cost by maintenance setting ({plan.build_reps} builds each) ...")
            report["build_cost"] = [] if plan.partitioned else builds.build_cost(
                sandbox.target, files, list(plan.build_settings), plan.build_reps)
            echo(f"  tool overhead against `yoyo apply`, nothing to do ({plan.tool_reps} alternating runs each) ...")
            report["tool_overhead"] = overhead.measure(sandbox.target, plan.tool_reps)
            if plan.partitioned:
                echo("  runner.rollback (on the partitioned table a plain DROP INDEX), writers running ...")
                report["rollback"] = builds.stall_rows(
                    builds.runner_rollback(sandbox.target, files, plan.write_rate, plan.lead_s, echo))
    drop_data(sandbox)
    report["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    report["meta"]["load_average_end"] = list(os.getloadavg())
    return results.write(report, out_dir or RESULTS_DIR, echo)


def _stall(sandbox: Sandbox, files: list, plan: Plan, entry: dict, echo, workers: bool) -> None:
    """Plain builds, the rounds of the bare statement against ours (and ours without parallel workers),
    then one `migrate --jobs N`, writers running; their rows, comparisons and timelines go into `entry`.
    On a partitioned table the bare statement cannot run (CONCURRENTLY builds no partitioned index):
    the rounds are ours only."""
    arms = ([builds.OURS_ARM] if plan.partitioned else [builds.BARE_ARM, builds.OURS_ARM]
            + ([builds.NO_WORKERS_ARM] if workers else []))
    echo(f"  plain CREATE INDEX, then {plan.rounds} rounds of {', '.join(arm.label for arm in arms)} in turn, "
         f"then migrate --jobs {plan.jobs} ...")
    plain, *runs, jobs_run = builds.stall(sandbox.target, files, arms, plan.rounds, plan.jobs, plan.write_rate,
                                          plan.lead_s, echo)
    rows = [row for run in runs for row in builds.stall_rows(run)]
    entry["stall"] = builds.stall_rows(plain) + rows
    entry["against_bare"] = builds.against_bare(rows)
    entry["slow_writes"] = builds.slow_write_summary(entry["stall"])
    entry["wait_sample_interval_ms"] = round(runs[0].load.samples.interval_ms, 2)
    entry["timelines"] = [builds.timeline(plain)] + [builds.timeline(run) for run in runs if run.round == 1]
    entry["whole_migrate"] = builds.whole_migrate([*runs, jobs_run])
    for row in entry["against_bare"]:
        if row["mode"] != builds.BARE:
            echo(f"    {row['mode']:15} {row['index']:28} against bare, median of {row['rounds']} rounds: "
                 + ", ".join(f"{label} {results.format_ratio(row[name]['median_ratio'])}"
                             for name, label in (("build_s", "build"), ("p99_ms", "p99"), ("max_ms", "worst write"))))
    for row in entry["slow_writes"]:
        echo(f"    {row['mode']:15} writes over {waits.SLOW_MS:g} ms during the builds: {row['slow_writes']} of "
             f"{row['writes_during_builds']}; waits {row['waits'] or '-'}; checkpoints {row['checkpoints_counted']}")


def _vacuum(conn: psycopg.Connection, tables: list[str]) -> dict:
    """VACUUM ANALYZE each table (the writers' dead rows and cleared visibility map bits) until
    every page is all-visible; return the attempts per table.

    Before each attempt, wait for sql/vacuum_ready.sql: another session's
    snapshot (autovacuum's ANALYZE too) or WAL not yet flushed keeps pages from
    becoming all-visible. INDEX_CLEANUP ON: with dead rows on under 2 % of the
    pages, a plain VACUUM (PostgreSQL 14+) skips index vacuuming, leaves their
    line pointers, and cannot mark those pages all-visible (measured: 47 heap
    fetches instead of 0 at scale 0.05).
    """
    conn.execute("SET synchronous_commit = on")  # VACUUM's own commits too: see demo.load
    attempts = {}
    for table in tables:
        for attempt in range(1, VACUUM_ATTEMPTS + 1):
            _wait_until_vacuum_ready(conn)
            conn.execute(sql.SQL("VACUUM (ANALYZE, INDEX_CLEANUP ON) {}").format(sql.Identifier(table)))
            if conn.execute(bench_sql("all_visible"), {"table": table}).fetchone()[0]:
                break
        attempts[table] = attempt
    return attempts


def _wait_until_vacuum_ready(conn: psycopg.Connection) -> None:
    started = time.monotonic()
    lsn = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
    while (not conn.execute(bench_sql("vacuum_ready"), {"lsn": lsn}).fetchone()[0]
           and time.monotonic() - started < QUIET_TIMEOUT_S):
        time.sleep(0.1)


def _table_sizes(conn: psycopg.Connection, tables: list[str]) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(bench_sql("table_sizes"), {"tables": tables}).fetchall()


def _meta(sandbox: Sandbox, plan: Plan, dsn: str | None, scale: float | None) -> dict:
    with connect(sandbox.target) as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            server = cur.execute(bench_sql("server_settings")).fetchone()
    command = ("invoke bench" + (" --quick" if plan.quick else "") + (" --partitioned" if plan.partitioned else "")
               + (f" --scale {scale:g}" if scale else ""))
    return {
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command + (" --dsn <an empty database>" if dsn else ""),
        "database": sandbox.describe(),
        "postgresql": {"version": server["version"], "major": server["version_num"] // 10000,
                       "settings": server["settings"]},
        "machine": _machine(),
        "load_average_start": list(os.getloadavg()),
        "git": _git(),
    }


def _machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal:")), 0)
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_model": cpu, "memory_gib": round(mem_kb / 2**20, 1),
            "os": platform.platform(), "python": platform.python_version()}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _git() -> dict:
    def git(*args):
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    # Earlier results in benchmarks/results/ do not make the code that measures "dirty".
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changed)}
