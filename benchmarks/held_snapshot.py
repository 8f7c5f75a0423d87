"""The held-snapshot scenario (issue 13): a REPEATABLE READ transaction holds an
old snapshot for `hold` seconds while `invoke migrate --max-wait` builds the
three indexes (the defaults: HELD_SNAPSHOT_* in benchmarks/__init__.py). The
claim build finishes its index and then waits "for old snapshots" until that
transaction ends. The runner used to cancel it there,
drop it and build it again (four builds of the claim index at scale 1); it
must now build each index exactly once.

    invoke bench --held-snapshot [--scale S] [--hold SECONDS] [--max-wait SECONDS]

Counts the builds per index two ways: the attempts `invoke migrate --json`
reports (retries + 1), and the distinct index oids (one per CREATE INDEX) a
sampler saw in pg_stat_progress_create_index, with the phases it saw them in.
Writes results/<date>-pg<major>-held-snapshot-scale<N>.json and .md.
"""

import datetime
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from upstream_indexes import migrations
from upstream_indexes.db import connect
from upstream_indexes.paths import ROOT
from upstream_indexes.watchdog import built

from . import HELD_SNAPSHOT_SCALE, RESULTS_DIR, bench_sql
from .run import _meta, plan_for
from .sandbox import drop_data, open_sandbox, reload

SAMPLE_SECONDS = 0.05


class Sampler(threading.Thread):
    """Polls build_phases.sql until stopped: per table, every index oid seen and the phases it was seen in."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self.conn = connect(target)
        self.seen: dict[str, dict[int, dict]] = {}  # table -> index oid -> {"phases": [...], "waited_s": ...}
        self.stop = threading.Event()

    def run(self) -> None:
        with self.conn, self.conn.cursor(row_factory=dict_row) as cur:
            last = time.monotonic()
            while not self.stop.wait(SAMPLE_SECONDS):
                now, since_last = time.monotonic(), time.monotonic() - last
                last = now
                for row in cur.execute(bench_sql("build_phases")).fetchall():
                    build = self.seen.setdefault(row["table_name"], {}).setdefault(
                        row["index_oid"], {"phases": [], "waiting_after_build_s": 0.0})
                    if row["phase"] and row["phase"] not in build["phases"]:
                        build["phases"].append(row["phase"])
                    if row["waiting"] and built(row["phase"]):
                        build["waiting_after_build_s"] += since_last


def run(dsn: str | None, scale: float | None, hold_s: float, max_wait_s: float, allow_shared: bool,
        out_dir: Path | None, echo=print) -> Path:
    scale = scale or HELD_SNAPSHOT_SCALE
    files = migrations.load()
    sandbox = open_sandbox(dsn, allow_shared)
    echo(sandbox.describe())
    meta = _meta(sandbox, plan_for(False, scale), dsn, scale)
    meta["command"] = (f"invoke bench --held-snapshot --scale {scale:g} --hold {hold_s:g} --max-wait {max_wait_s:g}"
                       + (" --dsn <an empty database>" if dsn else ""))
    echo(f"scale {scale:g}: loading the demo data ...")
    reload(sandbox, scale)
    sampler = Sampler(sandbox.target)
    sampler.start()
    holder = psycopg.connect(sandbox.target.conninfo, autocommit=True)
    holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT 1")  # the snapshot, held from here
    echo(f"  a REPEATABLE READ transaction (pid {holder.info.backend_pid}) holds a snapshot for {hold_s:g}s; "
         f"invoke migrate --max-wait {max_wait_s:g} ...")
    started = time.monotonic()
    migrate = subprocess.Popen([sys.executable, "-m", "invoke", "migrate", "--json", "--dsn", sandbox.target.conninfo,
                                "--max-wait", f"{max_wait_s:g}"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    released = threading.Timer(hold_s, lambda: holder.execute("COMMIT"))
    released.start()
    stdout, stderr = migrate.communicate()
    migrate_s = time.monotonic() - started
    released.join()
    holder.close()
    sampler.stop.set()
    sampler.join()
    report = json.loads(stdout)
    rows = []
    for entry, m in zip(report["indexes"], files):
        seen = sampler.seen.get(m.table, {})
        rows.append({
            "index": entry["index"], "table": entry["table"], "action": entry["action"],
            "attempts": entry["retries"] + 1, "duration_s": entry["duration_s"], "size_bytes": entry["size_bytes"],
            "builds_seen": len(seen), "phases_seen": [b["phases"] for b in seen.values()],
            "waiting_after_build_s": round(sum(b["waiting_after_build_s"] for b in seen.values()), 1),
        })
        echo(f"    {m.index:28} attempts {rows[-1]['attempts']}  index oids seen {rows[-1]['builds_seen']}  "
             f"waited after its build {rows[-1]['waiting_after_build_s']:.1f}s")
    drop_data(sandbox)
    result = {"meta": meta, "scenario": {"hold_s": hold_s, "max_wait_s": max_wait_s, "scale": scale},
              "migrate": {"exit_code": migrate.returncode, "seconds": round(migrate_s, 2),
                          "retries": report["retries"], "output": stderr.splitlines()},
              "indexes": rows}
    return write(result, out_dir or RESULTS_DIR, echo)


def write(result: dict, out_dir: Path, echo) -> Path:
    meta = result["meta"]
    date = datetime.date.fromisoformat(meta["started_at"][:10]).isoformat()
    name = f"{date}-pg{meta['postgresql']['major']}-held-snapshot-scale{result['scenario']['scale']:g}"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    scenario, migrate = result["scenario"], result["migrate"]
    lines = [
        f"# Held snapshot {name}",
        "",
        f"- Command: `{meta['command']}` (commit {(meta['git']['commit'] or 'unknown')[:10]}"
        f"{', uncommitted changes' if meta['git']['dirty'] else ''})",
        f"- Machine: {meta['machine']['nproc']} CPUs, load average {meta['load_average_start'][0]:.1f} at the start; "
        f"{meta['postgresql']['version'].split(' on ')[0]}",
        f"- A REPEATABLE READ transaction held its snapshot for {scenario['hold_s']:g} s from just before "
        f"`invoke migrate --max-wait {scenario['max_wait_s']:g}` started.",
        f"- migrate: exit {migrate['exit_code']} in {migrate['seconds']:.1f} s, {migrate['retries']} retries.",
        "",
        "| index | action | attempts (--json retries + 1) | index oids seen building | waited after its build | "
        "build step |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['index']} | {r['action']} | {r['attempts']} | {r['builds_seen']} | "
              f"{r['waiting_after_build_s']:.1f} s | {r['duration_s']:.1f} s |" for r in result["indexes"]]
    lines += ["", "The runner's lines:", "", "```", *migrate["output"], "```", ""]
    summary = out_dir / f"{name}.md"
    summary.write_text("\n".join(lines))
    echo(f"wrote {out_dir / name}.json and {summary.name}")
    return summary
