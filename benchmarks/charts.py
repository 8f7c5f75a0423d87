"""The run's PNG charts (matplotlib, no display needed): write latency around
each build by every arm, ours against the bare statement by size (ratios),
the worst write by table size, and shared buffers per query before and
after."""

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

PLAIN_NUMBERS = FuncFormatter(lambda value, _: f"{value:g}")

COLOURS = {"plain": "tab:red", "bare": "tab:gray", "ours": "tab:blue", "ours_0_workers": "tab:green"}
LABELS = {"plain": "plain CREATE INDEX", "bare": "bare CREATE INDEX CONCURRENTLY", "ours": "invoke migrate",
          "ours_0_workers": "invoke migrate --parallel-workers 0"}
MEASURES = {"build_s": "build time", "p99_ms": "p99 write", "max_ms": "worst write"}
MARKERS = "osD^v"
SHADE_ALPHA = 0.12
MARGIN_S = 1.0  # seconds shown before and after a build


def draw(report: dict, out_dir: Path, stem: str) -> dict[str, str]:
    """Draw every chart into out_dir; return their file names by kind."""
    names = {}
    for kind, painter in (("write_latency", _write_latency), ("ratio_to_bare", _ratio_to_bare),
                          ("stall_growth", _stall_growth), ("buffers", _buffers)):
        figure = painter(report)
        names[kind] = f"{stem}-{kind.replace('_', '-')}.png"
        figure.savefig(out_dir / names[kind], dpi=110)
        plt.close(figure)
    return names


def _write_latency(report: dict):
    """Per index: its table's write latencies around its build by each arm (the rounds' first), aligned at
    the build's start."""
    largest = report["scales"][-1]
    timelines = {t["mode"]: t for t in largest["timelines"]}
    indexes = [w["index"] for w in timelines["plain"]["windows"]]
    figure, axes = plt.subplots(len(indexes), 1, figsize=(9, 3 * len(indexes)), squeeze=False)
    for ax, index in zip(axes[:, 0], indexes):
        for mode, timeline in timelines.items():
            window = next(w for w in timeline["windows"] if w["index"] == index)
            writes = timeline["writes"][window["table"]]
            points = [(start - window["start_s"], latency)
                      for start, latency in zip(writes["start_s"], writes["latency_ms"])
                      if window["start_s"] - MARGIN_S <= start <= window["end_s"] + MARGIN_S]
            ax.axvspan(0, window["end_s"] - window["start_s"], color=COLOURS[mode], alpha=SHADE_ALPHA,
                       label=f"{LABELS[mode]} build")
            ax.plot([p[0] for p in points], [p[1] for p in points], ".", markersize=3, color=COLOURS[mode],
                    label=f"{LABELS[mode]}: build {window['end_s'] - window['start_s']:.2f} s")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(PLAIN_NUMBERS)
        ax.set_title(f"{index}: writes on {window['table']} (scale {largest['scale']:g}, round 1)", fontsize=10)
        ax.set_ylabel("write latency, ms")
        # Every shade starts at 0 s: where several builds ran they overlap into mixed shades.
        handles, labels = ax.get_legend_handles_labels()
        overlap = tuple(Patch(facecolor=COLOURS[mode], alpha=SHADE_ALPHA, edgecolor="none") for mode in timelines)
        ax.legend([*handles, overlap], [*labels, "several builds (overlapping shades)"], fontsize=7,
                  loc="upper right")
    axes[-1, 0].set_xlabel("seconds since the build started (shaded: the build)")
    figure.tight_layout()
    return figure


def _ratio_to_bare(report: dict):
    """Per measure: ours / the bare statement of the same round, median and range over the rounds, against
    the rows of the index's table; one line per arm and index."""
    figure, axes = plt.subplots(1, len(MEASURES), figsize=(13, 4.2), squeeze=False)
    for ax, (name, title) in zip(axes[0], MEASURES.items()):
        for (mode, index), points in _series(report, lambda row: row[name]["ratios"]).items():
            if mode != "bare":
                _ranges(ax, points, marker=MARKERS[_index_number(report, index)], color=COLOURS[mode],
                        linestyle="--" if mode == "ours_0_workers" else "-", label=f"{index}, {LABELS[mode]}")
        ax.axhline(1.0, color=COLOURS["bare"], linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(PLAIN_NUMBERS)
        ax.set_title(f"{title}: ours / bare CREATE INDEX CONCURRENTLY", fontsize=9)
        ax.set_xlabel("rows in the indexed table")
    axes[0, 0].set_ylabel("ratio, median of the rounds (bars: lowest–highest)")
    axes[0, -1].legend(fontsize=6)
    figure.tight_layout()
    return figure


def _stall_growth(report: dict):
    """Per index: the worst write during its build against its table's rows, by arm (median of the rounds,
    bars: lowest–highest; plain: its one build)."""
    indexes = list(dict.fromkeys(row["index"] for row in report["scales"][0]["stall"]))
    figure, axes = plt.subplots(1, len(indexes), figsize=(4.5 * len(indexes), 4.2), squeeze=False)
    worst = {**_series(report, lambda row: row["max_ms"]["values"]), **_plain_worst(report)}
    for ax, index in zip(axes[0], indexes):
        for mode in LABELS:
            _ranges(ax, worst.get((mode, index), []), marker="o", color=COLOURS[mode], label=LABELS[mode])
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(PLAIN_NUMBERS)
            axis.set_minor_formatter(PLAIN_NUMBERS)
        ax.set_title(index, fontsize=9)
        ax.set_xlabel("rows in the indexed table")
    axes[0, 0].set_ylabel("worst write during the build, ms")
    axes[0, -1].legend(fontsize=7)
    figure.tight_layout()
    return figure


def _ranges(ax, points: list[tuple[int, list]], **style) -> None:
    """Each point's median, with a bar from its lowest to its highest value (None values left out)."""
    points = [(x, [v for v in values if v is not None]) for x, values in points]
    points = [(x, statistics.median(v), min(v), max(v)) for x, v in points if v]
    if not points:
        return
    xs, medians, low, high = zip(*points)
    ax.errorbar(xs, medians, yerr=[[m - lo for m, lo in zip(medians, low)], [hi - m for m, hi in zip(medians, high)]],
                capsize=3, **style)


def _series(report: dict, values) -> dict[tuple[str, str], list[tuple[int, list]]]:
    """(mode, index) -> [(rows in the index's table, values(row))], one per size, from the rounds."""
    series: dict[tuple[str, str], list] = {}
    for entry in report["scales"]:
        rows = {t["table_name"]: t["row_count"] for t in entry["tables"]}
        table = {row["index"]: row["table"] for row in entry["stall"]}
        for row in entry["against_bare"]:
            series.setdefault((row["mode"], row["index"]), []).append((rows[table[row["index"]]], values(row)))
    return series


def _plain_worst(report: dict) -> dict[tuple[str, str], list[tuple[int, list]]]:
    """("plain", index) -> [(rows in its table, [its one build's worst write])], one per size."""
    series: dict[tuple[str, str], list] = {}
    for entry in report["scales"]:
        rows = {t["table_name"]: t["row_count"] for t in entry["tables"]}
        for row in entry["stall"]:
            if row["mode"] == "plain":
                series.setdefault(("plain", row["index"]), []).append((rows[row["table"]], [row["latency_ms"]["max"]]))
    return series


def _index_number(report: dict, index: str) -> int:
    return list(dict.fromkeys(row["index"] for row in report["scales"][0]["stall"])).index(index)


def _buffers(report: dict):
    """Shared buffers per query and customer, before and after, side by side (log scale)."""
    rows = report["queries"]
    figure, ax = plt.subplots(figsize=(max(8, 0.55 * len(rows)), 4.5))
    positions = range(len(rows))
    width = 0.4
    ax.bar([p - width / 2 for p in positions], [max(r["before"]["shared_buffers"], 0.5) for r in rows], width,
           label="before", color="tab:gray")
    ax.bar([p + width / 2 for p in positions], [max(r["after"]["shared_buffers"], 0.5) for r in rows], width,
           label="after the migration", color="tab:green")
    ax.set_xticks(list(positions), [f"{r['query']}\n{r['customer']}" for r in rows], rotation=60, ha="right",
                  fontsize=7)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN_NUMBERS)
    ax.set_ylabel("shared buffers hit + read (median)")
    ax.set_title(f"Buffers per query, scale {report['scales'][-1]['scale']:g}", fontsize=10)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure
