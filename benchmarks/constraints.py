"""The constraint kinds against Django's way (issue 18, point 11), in one run, on the demo data with
the app's write load on the claims (writer.py):

- the CHECK the app already has, `submitted_date <= decided_date`, dropped, then added back both ways:
  Django's single ALTER TABLE ... ADD CONSTRAINT ... CHECK (an ACCESS EXCLUSIVE lock held for the
  whole scan), and `runner.migrate` of benchmarks/migrations/0001 (the data check, ADD ... NOT VALID,
  VALIDATE): the worst write during each step;
- what the data pre-checks cost against the work they guard: that CHECK's violation check against
  its VALIDATE; the claims' foreign key to their uploads (dropped, added back by 0002) likewise; the
  drift events' duplicate keys (examples/next-migrations/0005, after the demo's duplicates are
  removed) against the unique CREATE INDEX CONCURRENTLY.

    invoke bench --constraints [--scale 1.0]

Writes results/<date>-pg<major>-constraints-scale<N>.json and .md.
"""

import datetime
import json
import statistics
import time
from pathlib import Path

from psycopg import sql

from upstream_indexes import datachecks, events, index_events, migrations, runner
from upstream_indexes.db import connect
from upstream_indexes.paths import ROOT

from . import BENCH_DIR, RESULTS_DIR
from .builds import EchoedPrinter
from .run import _meta, plan_for
from .sandbox import drop_data, open_sandbox, reload
from .writer import Writers

DEFAULT_SCALE = 1.0
WRITE_RATE = 50  # writes per second on the claims (inserts and updates), as in the build benchmark
LEAD_S = 2.0  # writes before and after each step, so that each step's window is surrounded by normal ones
CHECK = "claim_submitted_before_decided"
CHECK_SQL = "CHECK (submitted_date <= decided_date)"
CLAIMS = "upstream_claimrecord"
MIGRATIONS = BENCH_DIR / "migrations"
EXAMPLES = ROOT / "examples" / "next-migrations"


class StepTimes:
    """A listener to the runner: when each of a constraint migration's steps ran, by its events."""

    def __init__(self):
        self.windows: dict[str, tuple[float, float]] = {}  # "<migration> <step>" -> (started, ended)
        self._validating: float | None = None

    def emit(self, event: events.Event) -> None:
        now = time.monotonic()
        if isinstance(event, index_events.DataChecked):
            self.windows[f"{event.migration_id} data check"] = (now - event.seconds, now)
        elif isinstance(event, index_events.CatalogStepRan):
            self.windows[f"{event.migration_id} ADD ... NOT VALID"] = (now - event.seconds, now)
        elif isinstance(event, index_events.Validating):
            self._validating = now
        elif isinstance(event, index_events.Validated):
            self.windows[f"{event.migration_id} VALIDATE"] = (self._validating, now)


def _during(writes, window: tuple[float, float]) -> dict:
    """The writes that overlapped `window`: how many, the worst and the median latency (ms)."""
    started, ended = window
    overlapping = [w for w in writes if w.started < ended and w.ended > started]
    latencies = [w.latency * 1000 for w in overlapping]
    return {"seconds": round(ended - started, 3), "writes": len(overlapping),
            "worst_write_ms": round(max(latencies), 1) if latencies else None,
            "median_write_ms": round(statistics.median(latencies), 1) if latencies else None,
            "failed_writes": sum(not w.ok for w in overlapping)}


def _timed(conn, statement) -> tuple[float, float]:
    started = time.monotonic()
    conn.execute(statement)
    return started, time.monotonic()


def run(dsn: str | None, scale: float | None, allow_shared: bool, out_dir: Path | None, echo=print) -> Path:
    scale = scale or DEFAULT_SCALE
    sandbox = open_sandbox(dsn, allow_shared)
    echo(sandbox.describe())
    meta = _meta(sandbox, plan_for(False, scale), dsn, scale)
    meta["command"] = f"invoke bench --constraints --scale {scale:g}" + (" --dsn <an empty database>" if dsn else "")
    echo(f"scale {scale:g}: loading the demo data ...")
    reload(sandbox, scale)
    unique = next(m for m in migrations.load(EXAMPLES) if m.id == "0005.drift_event_unique")
    result = {"meta": meta, "scale": scale, "write_rate": WRITE_RATE}
    with connect(sandbox.target) as conn:
        result["claims"] = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(CLAIMS))).fetchone()[0]
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(CLAIMS), sql.Identifier(CHECK)))
        conn.execute("ALTER TABLE upstream_claimrecord DROP CONSTRAINT upstream_claimrecord_upload_id_fkey")
        echo(f"  {result['claims']:,} claims; the CHECK both ways, with {WRITE_RATE} writes/s on the claims ...")
        times = StepTimes()
        with Writers(sandbox.target, [CLAIMS], WRITE_RATE) as writers:
            time.sleep(LEAD_S)
            django = _timed(conn, sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} " + CHECK_SQL).format(
                sql.Identifier(CLAIMS), sql.Identifier(CHECK)))
            time.sleep(LEAD_S)
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(CLAIMS),
                                                                            sql.Identifier(CHECK)))
            time.sleep(LEAD_S)
            started = time.monotonic()
            runner.migrate(sandbox.target, events.Listeners(times, EchoedPrinter(echo)), directory=MIGRATIONS)
            ours = (started, time.monotonic())
            time.sleep(LEAD_S)
        writes = writers.writes[CLAIMS]
        check_id, fk_id = "0001.claim_submitted_before_decided", "0002.claim_upload_fk"
        result["check"] = {
            "django_add_constraint": _during(writes, django),
            "migrate_whole": _during(writes, ours),
            **{step: _during(writes, times.windows[f"{check_id} {step}"])
               for step in ("data check", "ADD ... NOT VALID", "VALIDATE")},
            "outside_any_step": _during([w for w in writes if not any(
                w.started < e and w.ended > s for s, e in [django, ours])], (writes[0].started, writes[-1].ended)),
        }
        result["foreign_key"] = {step: _during(writes, times.windows[f"{fk_id} {step}"])
                                 for step in ("data check", "ADD ... NOT VALID", "VALIDATE")}
        echo("  the unique index on drift events: its duplicate check against its build ...")
        conn.execute("DELETE FROM upstream_driftevent AS newer USING upstream_driftevent AS older WHERE newer.id > "
                     "older.id AND (newer.customer_id, newer.report_run_id, newer.payer, newer.cpt_group, "
                     "newer.drift_type) = (older.customer_id, older.report_run_id, older.payer, older.cpt_group, "
                     "older.drift_type)")
        conn.execute("VACUUM ANALYZE upstream_driftevent")
        result["drift_events"] = conn.execute("SELECT count(*) FROM upstream_driftevent").fetchone()[0]
        checked = datachecks.run(conn, unique)
        build = _timed(conn, unique.statements[-1].sql)
        result["unique"] = {"data_check_s": round(checked.seconds, 3), "build_s": round(build[1] - build[0], 3)}
        # psycopg can still write the results before the sandbox is emptied
    drop_data(sandbox)
    return write(result, out_dir or RESULTS_DIR, echo)


def write(result: dict, out_dir: Path, echo) -> Path:
    meta = result["meta"]
    date = datetime.date.fromisoformat(meta["started_at"][:10]).isoformat()
    name = f"{date}-pg{meta['postgresql']['major']}-constraints-scale{result['scale']:g}"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    check, fk, unique = result["check"], result["foreign_key"], result["unique"]
    ms = lambda value: "-" if value is None else f"{value:,.0f} ms"

    def row(label: str, step: dict) -> str:
        return (f"| {label} | {step['seconds']:.2f} s | {step['writes']} | {ms(step['worst_write_ms'])} | "
                f"{ms(step['median_write_ms'])} | {step['failed_writes']} |")

    lines = [
        f"# Constraints {name}",
        "",
        f"- Command: `{meta['command']}` (commit {(meta['git']['commit'] or 'unknown')[:10]}"
        f"{', uncommitted changes' if meta['git']['dirty'] else ''})",
        f"- Machine: {meta['machine']['nproc']} CPUs, load average {meta['load_average_start'][0]:.1f} at the start; "
        f"{meta['postgresql']['version'].split(' on ')[0]}",
        f"- {result['claims']:,} claims, {result['drift_events']:,} drift events (duplicates removed); "
        f"{result['write_rate']} writes/s on the claims (inserts and updates, writer.py) throughout.",
        "",
        f"## `{CHECK_SQL}` on the claims, added back both ways",
        "",
        "| step | took | writes during it | worst write | median write | failed writes |",
        "|---|---|---|---|---|---|",
        row("Django: ALTER TABLE ... ADD CONSTRAINT ... CHECK", check["django_add_constraint"]),
        row("invoke migrate, all of it", check["migrate_whole"]),
        row("  its data check (violating rows)", check["data check"]),
        row("  ADD ... NOT VALID", check["ADD ... NOT VALID"]),
        row("  VALIDATE", check["VALIDATE"]),
        row("writes outside both", check["outside_any_step"]),
        "",
        "## What the data pre-checks cost against the work they guard",
        "",
        "| migration | data check | the work it guards |",
        "|---|---|---|",
        f"| the CHECK on {result['claims']:,} claims | {check['data check']['seconds']:.2f} s | VALIDATE "
        f"{check['VALIDATE']['seconds']:.2f} s |",
        f"| the foreign key of {result['claims']:,} claims to their uploads | {fk['data check']['seconds']:.2f} s | "
        f"VALIDATE {fk['VALIDATE']['seconds']:.2f} s (worst write {ms(fk['VALIDATE']['worst_write_ms'])}) |",
        f"| the unique index on {result['drift_events']:,} drift events | {unique['data_check_s']:.2f} s | CREATE "
        f"UNIQUE INDEX CONCURRENTLY {unique['build_s']:.2f} s |",
        "",
    ]
    summary = out_dir / f"{name}.md"
    summary.write_text("\n".join(lines))
    echo(f"wrote {out_dir / name}.json and {summary.name}")
    return summary
