"""A run's output: <stem>.json (everything, every write included), <stem>.md
(the summary docs/performance.md quotes) and three PNG charts beside them."""

import datetime
import json
from pathlib import Path

from . import charts

REQUIRED_KEYS = ("meta", "plan", "scales", "queries", "build_cost", "tool_overhead")


def stem(report: dict) -> str:
    """<date>-pg<major>[-quick]-scale<N>: runs of one day, server and size do not overwrite each other."""
    meta, plan = report["meta"], report["plan"]
    date = datetime.date.fromisoformat(meta["started_at"][:10]).isoformat()
    return (f"{date}-pg{meta['postgresql']['major']}{'-quick' if plan['quick'] else ''}"
            f"{'-partitioned' if plan.get('partitioned') else ''}-scale{plan['scale']:g}")


def write(report: dict, out_dir: Path, echo=print) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = stem(report)
    report["charts"] = charts.draw(report, out_dir, name)
    (out_dir / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    summary = out_dir / f"{name}.md"
    summary.write_text(markdown(report))
    echo(f"wrote {out_dir / name}.json, {summary.name} and {len(report['charts'])} charts")
    return summary


def markdown(report: dict) -> str:
    meta, plan = report["meta"], report["plan"]
    machine, pg = meta["machine"], meta["postgresql"]
    settings = pg["settings"]
    lines = [
        f"# Benchmark {stem(report)}",
        "",
        f"- Command: `{meta['command']}` (commit {(meta['git']['commit'] or 'unknown')[:10]}"
        f"{', uncommitted changes' if meta['git']['dirty'] else ''}), {meta['duration_s']:.0f} s in all",
        f"- Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB memory, "
        f"load average {meta['load_average_start'][0]:.1f} at the start, {meta['load_average_end'][0]:.1f} at the end",
        f"- Server: {pg['version'].split(' on ')[0]}; shared_buffers {settings.get('shared_buffers')}, "
        f"maintenance_work_mem {settings.get('maintenance_work_mem')}, max_parallel_maintenance_workers "
        f"{settings.get('max_parallel_maintenance_workers')}, fsync {settings.get('fsync')}, "
        f"synchronous_commit {settings.get('synchronous_commit')}",
        f"- Data: the demo generator at scales {', '.join(f'{s:g}' for s in (e['scale'] for e in report['scales']))}"
        " (1.0 = 3M claims, 1M drift events, 300k uploads, 2,000 customers of skewed sizes), VACUUM ANALYZE after loading",
        "",
        "Times depend on the machine and its load; compare them within this run. Shared buffers, heap fetches "
        "and writes completed do not.",
        "",
    ]
    lines += _queries_section(report)
    lines += _stall_section(report)
    lines += _whole_section(report)
    lines += _build_section(report)
    lines += _overhead_section(report)
    lines += _rollback_section(report)
    lines += [
        "## How it was measured",
        "",
        f"- Query cost: each query of `verify/app_queries.sql`, EXPLAIN (ANALYZE, BUFFERS) EXECUTE for the smallest "
        f"customer with rows, the median and the largest (by rows in the query's table), custom plans forced; "
        f"one warm-up run, then the median of {plan['query_reps']}. After: `runner.migrate`, then, once no other "
        "session of the database holds a snapshot, VACUUM (ANALYZE, INDEX_CLEANUP ON): a plain VACUUM skips index "
        "cleanup when few pages hold dead rows and leaves those pages to heap fetches. Ratios are before / after.",
        f"- Write stall: one writer process per table, {plan['write_rate']:g} writes/s each, alternating an insert "
        "and an update of a random row (`benchmarks/sql/writes.sql`), paced (no catch-up burst after a stall), "
        f"from {plan['lead_s']:g} s before the first build to {plan['lead_s']:g} s after the last. Plain: the bench "
        "runs each migration's definition as CREATE INDEX without CONCURRENTLY, then drops them; concurrent: "
        "`runner.migrate`, what `invoke migrate` does. Latencies are of the writes on the index's table that "
        "overlapped its build; 'done' counts those that completed inside it.",
        f"- Build cost, quiet: no writers; each definition built {plan['build_reps']} time(s) per setting, plain and "
        "CONCURRENTLY, under a probe name, then dropped; the bench session SETs the two settings (the runner "
        "sets neither: it builds with the server's or the role's defaults, e.g. `ALTER ROLE ... SET "
        "maintenance_work_mem`, or `PGOPTIONS='-c maintenance_work_mem=1GB' invoke migrate` when the DSN "
        "sets no options of its own).",
        f"- Tool overhead: whole `python -m invoke` processes, {plan['tool_reps']} runs each, every index "
        "already built.",
        "",
    ]
    return "\n".join(lines)


def _queries_section(report: dict) -> list[str]:
    lines = [
        "## Query cost before and after the migration",
        "",
        "| query | customer (rows) | before: plan | after: plan | shared buffers | heap fetches after | "
        "time ms | planner used the covering index |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["queries"]:
        before, after = row["before"], row["after"]
        lines.append(
            f"| {row['query']} | {row['customer']} ({row['customer_rows']:,}) | {_plan(before)} | {_plan(after)} | "
            f"{before['shared_buffers']:g} → {after['shared_buffers']:g} ({_times(row['buffers_ratio'])}) | "
            f"{after['heap_fetches']:g} | {before['execution_ms']:.3f} → {after['execution_ms']:.3f} "
            f"({_times(row['time_ratio'])}) | {'yes' if after['index_only_on_expected'] else 'no'} |")
    lines += ["", f"![shared buffers per query before and after]({report['charts']['buffers']})", ""]
    return lines


def _stall_section(report: dict) -> list[str]:
    lines = [
        "## Write stall while each index is built",
        "",
        "| scale | index | table rows | build s plain / ours | writes done plain / ours | "
        "p50 ms plain / ours | p99 ms plain / ours | max ms plain / ours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in report["scales"]:
        rows = {t["table_name"]: t["row_count"] for t in entry["tables"]}
        for plain, ours in _pairs(entry["stall"]):
            lines.append(
                f"| {entry['scale']:g} | {plain['index']} | {rows[plain['table']]:,} | "
                f"{plain['build_s']:.2f} / {ours['build_s']:.2f} | "
                f"{plain['writes_completed_during_build']} / {ours['writes_completed_during_build']} | "
                + " | ".join(f"{format_ms(plain['latency_ms'][k])} / {format_ms(ours['latency_ms'][k])}"
                             for k in ("p50", "p99", "max")) + " |")
    lines += ["", "'ours' is `runner.migrate` (CREATE INDEX CONCURRENTLY); its build time is the runner's whole "
              "step for that index (yoyo, the SETs, the build, the record).", "",
              f"![write latency during the builds]({report['charts']['write_latency']})", "",
              f"![worst write stall by table size]({report['charts']['stall_growth']})", ""]
    return lines


def _whole_section(report: dict) -> list[str]:
    lines = [
        "## Whole migrate against the plain builds",
        "",
        "| scale | plain builds, sum s | migrate --jobs | whole migrate s | / plain sum | max write ms, any table |",
        "|---|---|---|---|---|---|",
    ]
    for entry in report["scales"]:
        whole = entry["whole_migrate"]
        for row in whole["runs"]:
            lines.append(f"| {entry['scale']:g} | {whole['plain_sum_s']:.2f} | {row['jobs']} | {row['whole_s']:.2f} | "
                         f"{row['ratio_to_plain_sum']:.2f}x | {format_ms(row['max_write_ms'])} |")
    lines += ["", "Whole migrate: the `runner.migrate` call from start to end (pre-flight, lock, yoyo, every "
              "build and record), writers running; the plain builds are the CREATE INDEX of the same definitions "
              "in the same run, one after another, writers running. --jobs runs come after the --jobs 1 run and "
              "an `invoke rollback --all`, on the same data.", ""]
    return lines


def _build_section(report: dict) -> list[str]:
    largest = report["scales"][-1]
    lines = [
        "## Build cost",
        "",
        f"Under the write load, scale {largest['scale']:g} (from the stall runs above):",
        "",
        "| index | plain s | ours s | ours / plain | index size |",
        "|---|---|---|---|---|",
    ]
    for plain, ours in _pairs(largest["stall"]):
        size = largest["index_bytes"][plain["index"]]
        lines.append(f"| {plain['index']} | {plain['build_s']:.2f} | {ours['build_s']:.2f} | "
                     f"{ours['build_s'] / plain['build_s']:.2f} | {size / 2**20:.1f} MB |")
    if not report["build_cost"]:  # --partitioned: CONCURRENTLY cannot build on a partitioned table
        return lines + ["", "Quiet builds by setting: not measured (`--partitioned`).", ""]
    lines += ["", "Quiet (no writers), by setting, median of the builds:", "",
              "| maintenance_work_mem | max_parallel_maintenance_workers | index | plain s | CONCURRENTLY s | ratio |",
              "|---|---|---|---|---|---|"]
    for row in report["build_cost"]:
        s = row["settings"]
        lines.append(f"| {s['maintenance_work_mem']} | {s['max_parallel_maintenance_workers']} | {row['index']} | "
                     f"{row['plain_s']:.3f} | {row['concurrent_s']:.3f} | {row['ratio']:.2f} |")
    return lines + [""]


def _overhead_section(report: dict) -> list[str]:
    lines = ["## Tool overhead", "", "| command | median s | min s | max s | exit codes |", "|---|---|---|---|---|"]
    for row in report["tool_overhead"]:
        if row["available"]:
            lines.append(f"| `{row['command']}` | {row['median_s']:.2f} | {row['min_s']:.2f} | {row['max_s']:.2f} | "
                         f"{', '.join(map(str, row['exit_codes']))} |")
        else:
            lines.append(f"| `{row['command']}` | not measured: {row['note']} | | | |")
    return lines + [""]


def _rollback_section(report: dict) -> list[str]:
    """--partitioned: `runner.rollback` of every index while the writers run (largest scale)."""
    if not report.get("rollback"):
        return []
    lines = ["## Rollback under the write load", "",
             "| index | table | drop s | writes done during it | p50 ms | p99 ms | max ms | median ms before |",
             "|---|---|---|---|---|---|---|---|"]
    for row in report["rollback"]:
        lines.append(f"| {row['index']} | {row['table']} | {row['build_s']:.3f} | "
                     f"{row['writes_completed_during_build']} | "
                     + " | ".join(format_ms(row["latency_ms"][k]) for k in ("p50", "p99", "max"))
                     + f" | {format_ms(row['baseline_p50_ms'])} |")
    return lines + ["", "The drop's time is the runner's whole step (the DROP, yoyo's record); on a partitioned "
                    "table it is a plain DROP INDEX of the parent, ACCESS EXCLUSIVE on the table and every "
                    "partition.", ""]


def _pairs(stall: list[dict]) -> list[tuple[dict, dict]]:
    """(plain, concurrent) rows of the same index, in build order."""
    ours = {row["index"]: row for row in stall if row["mode"] == "concurrent"}
    return [(row, ours[row["index"]]) for row in stall if row["mode"] == "plain"]


def _plan(side: dict) -> str:
    return f"{side['node']} ({side['index']})" if side["index"] else str(side["node"])


def format_ms(value: float | None) -> str:
    return f"{value:,.1f}" if value is not None else "-"


def _times(ratio: float | None) -> str:
    return f"{ratio:g}x" if ratio is not None else "-"
