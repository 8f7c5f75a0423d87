"""The write stall and build time of the three builds on a Citus cluster
against a single node, at the same rows: a plain CREATE INDEX of each
migration's definition and `runner.migrate` (CREATE INDEX CONCURRENTLY), each
while one writer per table inserts and updates rows (benchmarks/writer.py),
as `invoke bench` measures them on one server.

    scripts/citus-build && python -m benchmarks.citus [--scale 0.1] [--rate 20]

Starts its own servers and stops them: a single embedded PostgreSQL 18 and a
Citus 14 coordinator with two workers (tests/citus_cluster.py; the demo tables
distributed by demo/citus.sql, 8 shards), all on this machine, durability off
on every one (fsync, synchronous_commit, full_page_writes), the demo data at
--scale loaded into each. Writes results/<date>-citus-scale<N>.md and .json.
"""

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

from upstream_indexes import demo, migrations
from upstream_indexes.config import Target
from upstream_indexes.paths import ROOT

from . import RESULTS_DIR, builds

sys.path.insert(0, str(ROOT / "tests"))  # the servers the tests start: one code path for both
import citus_cluster  # noqa: E402
import support  # noqa: E402

LEAD_S = 1.0  # writer time before the first and after the last build


def measure(target: Target, files, rate: float, echo) -> list[dict]:
    """The plain builds, then `runner.migrate`, under one write load."""
    return [row for run in builds.stall(target, files, [], 0, 1, rate, LEAD_S, echo) for row in builds.stall_rows(run)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="demo data size, 1.0 = 3M claims (default 0.1)")
    parser.add_argument("--rate", type=float, default=20.0, help="writes per second per table (default 20)")
    args = parser.parse_args()
    build = citus_cluster.pginstall()
    if build is None:
        sys.exit("error: Citus is not built: run scripts/citus-build first")
    files = migrations.load()
    rows = {}
    # The embedded server stops and deletes its data when this process exits.
    server = support.start_server(Path(tempfile.mkdtemp(prefix="upstream-citus-bench-")))
    name = server.create_database()
    with server.connect(name) as conn:
        demo.load(conn, args.scale)
    print(f"single node: demo data at scale {args.scale} loaded")
    rows["single node"] = measure(Target(server.conninfo(name), "single node"), files, args.rate, print)
    cluster = citus_cluster.start(build)
    try:
        citus_cluster.load_demo(cluster, args.scale)
        print(f"citus: demo data at scale {args.scale} loaded and distributed")
        rows["citus"] = measure(Target(cluster.coordinator.conninfo(), "citus"), files, args.rate, print)
    finally:
        cluster.stop()

    stem = f"{datetime.date.today().isoformat()}-citus-scale{args.scale:g}"
    report = {"scale": args.scale, "write_rate_per_table": args.rate, "shards": 8, "workers": 2,
              "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "rows": rows}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS_DIR / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {RESULTS_DIR / stem}.md and .json")


def markdown(report: dict) -> str:
    lines = [f"# Citus (coordinator + {report['workers']} workers, {report['shards']} shards) against a single node",
             "",
             f"Demo data at scale {report['scale']} on each; one writer per table at "
             f"{report['write_rate_per_table']:g} writes/s (insert, update); measured {report['measured_at']} "
             "by `python -m benchmarks.citus`. All servers on one machine, durability off.",
             "",
             "| where | index | build | build s | writes done during it | worst write ms | p50 write ms | "
             "p50 before ms | failed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for where, rows in report["rows"].items():
        for row in rows:
            lines.append(f"| {where} | {row['index']} | {row['mode']} | {row['build_s']:.2f} | "
                         f"{row['writes_completed_during_build']} | {row['latency_ms']['max']} | "
                         f"{row['latency_ms']['p50']} | {row['baseline_p50_ms']} | {row['failed_writes']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
