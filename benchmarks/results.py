"""A run's output: <stem>.json (everything, every write included), <stem>.md
(the summary docs/performance.md quotes) and PNG charts beside them."""

import datetime
import json
import statistics
from pathlib import Path

from . import charts
from .waits import SLOW_MS

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
        f"load average (1, 5, 15 min) {_load(meta['load_average_start'])} at the start, "
        f"{_load(meta['load_average_end'])} at the end",
        f"- Server: {pg['version'].split(' on ')[0]}; shared_buffers {settings.get('shared_buffers')}, "
        f"maintenance_work_mem {settings.get('maintenance_work_mem')}, max_parallel_maintenance_workers "
        f"{settings.get('max_parallel_maintenance_workers')}, fsync {settings.get('fsync')}, "
        f"synchronous_commit {settings.get('synchronous_commit')}",
        f"- Data: the demo generator at scales {', '.join(f'{s:g}' for s in (e['scale'] for e in report['scales']))}"
        " (1.0 = 3M claims, 1M drift events, 300k uploads, 2,000 customers of skewed sizes), VACUUM ANALYZE after loading",
        "",
        "Times depend on the machine and its load: the claims are ratios to the bare statement of the same "
        "round; the seconds and milliseconds are this machine's, in this run. Shared buffers, heap fetches "
        "and writes completed do not depend on the machine.",
        "",
    ]
    lines += _queries_section(report)
    lines += _stall_section(report)
    lines += _whole_section(report)
    lines += per_build_section(report)
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
        f"from {plan['lead_s']:g} s before the first build to {plan['lead_s']:g} s after the last, and "
        f"{plan['lead_s']:g} s after each drop between the arms. Plain: each migration's definition "
        "as CREATE INDEX without CONCURRENTLY, then dropped. Rounds: the bare CREATE INDEX CONCURRENTLY of each "
        "definition on one plain connection with the server's settings, and `runner.migrate` (what `invoke "
        "migrate` does) with its default build settings, at the two largest sizes also with "
        f"--parallel-workers 0; {plan.get('rounds')} rounds, arm r first in round r; each arm's indexes dropped "
        "(DROP INDEX CONCURRENTLY; ours: `runner.rollback`) before the next arm. Latencies are of the writes on "
        "the index's table that overlapped its build; 'done' counts those that completed inside it. A sampler "
        "process reads the writers' wait events and the checkpointer in pg_stat_activity every few ms "
        "(`benchmarks/sql/wait_samples.sql`) and the checkpoint counter (pg_stat_checkpointer, before 17 "
        "pg_stat_bgwriter) every tenth time.",
        f"- Build cost, quiet: no writers; each definition built {plan['build_reps']} time(s) per setting, plain and "
        "CONCURRENTLY, under a probe name, then dropped; the bench session SETs the two settings.",
        f"- Tool overhead: whole processes, {plan['tool_reps']} turns, each turn every command once in a rotated "
        "order, every index already built; each command divided by `yoyo apply` (nothing to do, the same "
        "database and migrations/) of its own turn.",
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


MODE_LABELS = {"plain": "plain CREATE INDEX", "bare": "bare CREATE INDEX CONCURRENTLY", "ours": "invoke migrate",
               "ours_0_workers": "invoke migrate --parallel-workers 0"}
MEASURE_LABELS = {"build_s": "build", "p99_ms": "p99 write", "max_ms": "worst write"}


def _stall_section(report: dict) -> list[str]:
    rounds = report["plan"].get("rounds")
    lines = [
        "## Ours against the bare statement, writers running",
        "",
        f"Each arm built every index and dropped it again, {rounds} rounds, the arms taking turns at going first; "
        "each of ours is divided by the bare statement of its own round. Median of the rounds' ratios "
        "(lowest–highest):",
        "",
        "| scale | index | table rows | arm | build | p99 write | worst write |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in report["scales"]:
        rows = {t["table_name"]: t["row_count"] for t in entry["tables"]}
        table = {row["index"]: row["table"] for row in entry["stall"]}
        for row in entry["against_bare"]:
            if row["mode"] != "bare":
                lines.append(f"| {entry['scale']:g} | {row['index']} | {rows[table[row['index']]]:,} | "
                             f"{MODE_LABELS[row['mode']]} | "
                             + " | ".join(_ratio_cell(row[name]["ratios"]) for name in MEASURE_LABELS) + " |")
    lines += ["", "All indexes and rounds of a size together: the median of every (index, round) pair's ratio, and "
              "in how many of the pairs ours was the higher:", "",
              "| scale | arm | pairs | build | p99 write | worst write |", "|---|---|---|---|---|---|"]
    for entry in report["scales"]:
        for mode in dict.fromkeys(row["mode"] for row in entry["against_bare"] if row["mode"] != "bare"):
            mine = [row for row in entry["against_bare"] if row["mode"] == mode]
            cells = []
            for name in MEASURE_LABELS:
                ratios = [ratio for row in mine for ratio in row[name]["ratios"]]
                cells.append(f"{statistics.median(ratios):.2f}x, {sum(r > 1 for r in ratios)} of {len(ratios)} above"
                             if ratios else "-")
            lines.append(f"| {entry['scale']:g} | {MODE_LABELS[mode]} | {sum(row['rounds'] for row in mine)} | "
                         + " | ".join(cells) + " |")
    lines += ["", "The same builds in this machine's seconds and milliseconds: median of the rounds (lowest–highest):",
              "", "| scale | index | arm | build s | p99 write ms | worst write ms |", "|---|---|---|---|---|---|"]
    for entry in report["scales"]:
        for row in entry["against_bare"]:
            lines.append(f"| {entry['scale']:g} | {row['index']} | {MODE_LABELS[row['mode']]} | "
                         + " | ".join(_value_cell(row[name]["values"], "{:.2f}" if name == "build_s" else "{:,.1f}")
                                      for name in MEASURE_LABELS) + " |")
    lines += ["", "'invoke migrate' is `runner.migrate` in the bench's process with the build settings `invoke "
              "migrate` takes by default; its build is the runner's step from BuildStarted to Built (the build "
              "connection, its SETs, the watcher, the statement); the bare statement is the CREATE INDEX "
              "CONCURRENTLY alone on an open connection. p99 and worst write: the writes on the index's table "
              "that overlapped its build.", "",
              f"![write latency during the builds]({report['charts']['write_latency']})", "",
              f"![ours against the bare statement, by size]({report['charts']['ratio_to_bare']})", "",
              f"![worst write by table size]({report['charts']['stall_growth']})", ""]
    return lines + _slow_section(report) + _plain_section(report)


def _slow_section(report: dict) -> list[str]:
    lines = [
        f"## Writes over {SLOW_MS:g} ms and what they waited on",
        "",
        "Every build of the rounds (and the plain builds); for each slow write the wait events its backend "
        f"showed in pg_stat_activity while it ran, sampled about every "
        f"{_interval(report)} ms; 'CPU': running, no wait event; 'Client:ClientRead': the write's time went "
        "outside the server (the writer process or the machine). Counted by slow writes that met each event. "
        "Checkpoints: the counter's increase during the builds, the checkpoints seen starting during them "
        "(the checkpointer leaving its idle wait: full-page writes then swell the WAL), and the builds during "
        "which a checkpoint ran (a spread checkpoint runs most of the time under a steady write load).",
        "",
        "| scale | arm | builds | writes during them | over 20 ms | waits met (slow writes) | checkpoints counted "
        "/ started | builds with a checkpoint running |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in report["scales"]:
        for row in entry["slow_writes"]:
            met = ", ".join(f"{event} {count}" for event, count in row["waits"].items()) or "-"
            lines.append(f"| {entry['scale']:g} | {MODE_LABELS[row['mode']]} | {row['builds']} | "
                         f"{row['writes_during_builds']} | {row['slow_writes']} ({_share(row)}) | {met} | "
                         f"{row['checkpoints_counted']} "
                         f"/ {row['checkpoints_started']} | {row['builds_with_checkpoint_running']} |")
    return lines + [""]


def _plain_section(report: dict) -> list[str]:
    """What CONCURRENTLY is for: a plain CREATE INDEX stops its table's writes for the whole build."""
    lines = [
        "## A plain CREATE INDEX against the bare CREATE INDEX CONCURRENTLY",
        "",
        "| scale | index | plain: build s | plain: worst write ms | plain: writes done | bare CIC: worst write ms, "
        "median | bare CIC: writes done, median |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in report["scales"]:
        bare = {}
        for row in entry["stall"]:
            if row["mode"] == "bare":
                bare.setdefault(row["index"], []).append(row)
        for row in entry["stall"]:
            if row["mode"] == "plain":
                theirs = bare.get(row["index"], [])
                worst = _median([r["latency_ms"]["max"] for r in theirs])
                done = _median([r["writes_completed_during_build"] for r in theirs])
                lines.append(f"| {entry['scale']:g} | {row['index']} | {row['build_s']:.2f} | "
                             f"{format_ms(row['latency_ms']['max'])} | {row['writes_completed_during_build']} | "
                             f"{format_ms(worst)} | {'-' if done is None else f'{done:g}'} |")
    return lines + [""]


def _whole_section(report: dict) -> list[str]:
    lines = [
        "## Whole migrate against the bare statements",
        "",
        "| scale | migrate --jobs | round | whole migrate s | bare statements s | / bare | worst write ms, any table |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in report["scales"]:
        for row in entry["whole_migrate"]["runs"]:
            lines.append(f"| {entry['scale']:g} | {row['jobs']} | {row['round'] or 'after the rounds'} | "
                         f"{row['whole_s']:.2f} | {_seconds(row['bare_s'])} | {format_ratio(row['ratio_to_bare'])} | "
                         f"{format_ms(row['max_write_ms'])} |")
    lines += ["", "Whole migrate: the `runner.migrate` call from start to end (pre-flight, locks, yoyo, every "
              "build and record), writers running; bare statements: the three CREATE INDEX CONCURRENTLY on one "
              "connection, one after another (connecting included), in the same round; --jobs N after the "
              "rounds, against the rounds' median.", ""]
    return lines


def per_build_section(report: dict) -> list[str]:
    """The per-build overhead's tables (overhead.per_build): ours, and another checkout's if it took turns."""
    overhead = report.get("per_build_overhead")
    if not overhead:
        return []
    against = overhead.get("against")
    lines = [
        f"## Per-build overhead: `invoke migrate --to {overhead['migration']}` against the bare statement",
        "",
        f"Scale {report['scales'][0]['scale']:g}, no writers. Ours: the whole `python -m invoke migrate --to "
        f"{overhead['migration']} --json` process; bare: connect, CREATE INDEX CONCURRENTLY of "
        f"{overhead['index']}, disconnect. Each dropped again after; "
        + (f"each round runs the bare statement, ours and {against['checkout']}'s in a rotated order."
           if against else "alternating which goes first."),
        "",
        *_per_build_table("this checkout" if against else None, overhead),
        *(_per_build_table(against["checkout"], against) if against else []),
        "Start: Python, the imports and the settings (the process's wall time less the run's own "
        "duration_s); before the build: connect, pre-flight, the migrator lock, the plan, yoyo's tables "
        "and lock; build: BuildStarted to Built (the build connection, its SETs, the watcher, the "
        "statement); after it: the records, closing; in the run: before the build and after it (the run's "
        "own time around the build step; the start is what the commands with nothing to do measure).", ""]
    return lines


def _per_build_table(label: str | None, arm: dict) -> list[str]:
    lines = [f"{label}:", ""] if label else []
    lines += ["| round | ours s | bare s | ours − bare s | ours / bare | ours: start s | before the build s | "
              "build s | after it s | in the run s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for row in [*arm["rounds"], {"round": "median", **arm["median"]}]:
        in_run = row.get("in_run_s")  # results of runs before it was measured have none
        lines.append(f"| {row['round']} | {row['ours_s']:.3f} | {row['bare_s']:.3f} | {row['overhead_s']:.3f} | "
                     f"{row['ratio']:.2f}x | {row['start_s']:.3f} | {row['before_build_s']:.3f} | "
                     f"{row['build_s']:.3f} | {row['after_build_s']:.3f} | "
                     f"{'-' if in_run is None else f'{in_run:.3f}'} |")
    return lines + [""]


def _build_section(report: dict) -> list[str]:
    largest = report["scales"][-1]
    sizes = ", ".join(f"{name} {size / 2**20:.1f} MB" for name, size in largest["index_bytes"].items())
    lines = ["## Build cost", "", f"Index sizes at scale {largest['scale']:g}: {sizes}.", ""]
    if not report["build_cost"]:  # --partitioned: CONCURRENTLY cannot build on a partitioned table
        return lines + ["Quiet builds by setting: not measured (`--partitioned`).", ""]
    lines += ["Quiet (no writers), by setting, median of the builds:", "",
              "| maintenance_work_mem | max_parallel_maintenance_workers | index | plain s | CONCURRENTLY s | ratio |",
              "|---|---|---|---|---|---|"]
    for row in report["build_cost"]:
        s = row["settings"]
        lines.append(f"| {s['maintenance_work_mem']} | {s['max_parallel_maintenance_workers']} | {row['index']} | "
                     f"{row['plain_s']:.3f} | {row['concurrent_s']:.3f} | {row['ratio']:.2f} |")
    return lines + [""]


def _overhead_section(report: dict) -> list[str]:
    lines = ["## Tool overhead against `yoyo apply`", "",
             "| command | wall s, median | wall s, min | / yoyo apply | CPU s, median | / yoyo apply | exit codes |",
             "|---|---|---|---|---|---|---|"]
    for row in report["tool_overhead"]:
        lines.append(f"| `{row['command']}` | {row['median_s']:.3f} | {row['min_s']:.3f} | "
                     f"{format_ratio(row['ratio_to_yoyo'])} | {row['cpu_median_s']:.3f} | "
                     f"{format_ratio(row['cpu_ratio_to_yoyo'])} | {', '.join(map(str, row['exit_codes']))} |")
    return lines + ["", "Ratios: the median of each turn's ratio to `yoyo apply` of the same turn. CPU: user + system "
                    "seconds of the process, less disturbed than wall time by the machine's other load.", ""]


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


def _plan(side: dict) -> str:
    return f"{side['node']} ({side['index']})" if side["index"] else str(side["node"])


def format_ms(value: float | None) -> str:
    return f"{value:,.1f}" if value is not None else "-"


def _times(ratio: float | None) -> str:
    return f"{ratio:g}x" if ratio is not None else "-"


def format_ratio(ratio: float | None) -> str:
    return f"{ratio:.2f}x" if ratio is not None else "-"


def _ratio_cell(ratios: list[float]) -> str:
    """The median ratio (lowest–highest)."""
    if not ratios:
        return "-"
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f})"


def _value_cell(values: list, pattern: str) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    median = pattern.format(statistics.median(present))
    return median + (f" ({pattern.format(min(present))}–{pattern.format(max(present))})" if len(present) > 1 else "")


def _median(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _seconds(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _interval(report: dict) -> str:
    intervals = [entry.get("wait_sample_interval_ms") for entry in report["scales"]]
    present = [i for i in intervals if i is not None]
    return f"{statistics.median(present):.0f}" if present else "-"


def _share(row: dict) -> str:
    """The slow writes' share of the writes during the builds."""
    return f"{100 * row['slow_writes'] / row['writes_during_builds']:.1f} %" if row["writes_during_builds"] else "-"


def _load(average: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in average)
