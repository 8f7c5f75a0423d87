"""The run's PNG charts (matplotlib, no display needed): write latency over
time during both kinds of build, the worst write stall by table size, and
shared buffers per query before and after."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

PLAIN_NUMBERS = FuncFormatter(lambda value, _: f"{value:g}")

COLOURS = {"plain": "tab:red", "concurrent": "tab:blue"}
LABELS = {"plain": "plain CREATE INDEX", "concurrent": "invoke migrate (CONCURRENTLY)"}
SHORT_LABELS = {"plain": "plain CREATE INDEX", "concurrent": "invoke migrate"}
SHADE_ALPHA = 0.12
MARGIN_S = 1.0  # seconds shown before and after a build


def draw(report: dict, out_dir: Path, stem: str) -> dict[str, str]:
    """Draw every chart into out_dir; return their file names by kind."""
    names = {}
    for kind, painter in (("write_latency", _write_latency), ("stall_growth", _stall_growth), ("buffers", _buffers)):
        figure = painter(report)
        names[kind] = f"{stem}-{kind.replace('_', '-')}.png"
        figure.savefig(out_dir / names[kind], dpi=110)
        plt.close(figure)
    return names


def _write_latency(report: dict):
    """Per index: its table's write latencies around its build, plain and ours, aligned at the build's start."""
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
                       label=f"{SHORT_LABELS[mode]} build")
            ax.plot([p[0] for p in points], [p[1] for p in points], ".", markersize=3, color=COLOURS[mode],
                    label=f"{LABELS[mode]}: build {window['end_s'] - window['start_s']:.2f} s")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(PLAIN_NUMBERS)
        ax.set_title(f"{index}: writes on {window['table']} (scale {largest['scale']:g})", fontsize=10)
        ax.set_ylabel("write latency, ms")
        # Both shades start at 0 s: where both builds ran they overlap into a third shade.
        both = Patch(facecolor=COLOURS["plain"], alpha=SHADE_ALPHA, hatch="", edgecolor="none")
        handles, labels = ax.get_legend_handles_labels()
        ax.legend([*handles, (both, Patch(facecolor=COLOURS["concurrent"], alpha=SHADE_ALPHA, edgecolor="none"))],
                  [*labels, "both builds (overlapping shades)"], fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since the build started (shaded: the build)")
    figure.tight_layout()
    return figure


def _stall_growth(report: dict):
    """Worst write latency during each build against its table's rows, per index and kind of build."""
    figure, ax = plt.subplots(figsize=(8, 4.5))
    indexes = list(dict.fromkeys(row["index"] for row in report["scales"][0]["stall"]))
    markers = dict(zip(indexes, "osD^v"))
    for mode in ("plain", "concurrent"):
        for index in indexes:
            points = []
            for entry in report["scales"]:
                rows = {t["table_name"]: t["row_count"] for t in entry["tables"]}
                row = next(r for r in entry["stall"] if r["mode"] == mode and r["index"] == index)
                if row["latency_ms"]["max"] is not None:
                    points.append((rows[row["table"]], row["latency_ms"]["max"]))
            if not points:
                continue
            ax.plot(*zip(*points), marker=markers[index], color=COLOURS[mode],
                    linestyle="-" if mode == "plain" else "--", label=f"{index}, {LABELS[mode]}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PLAIN_NUMBERS)
    ax.set_xlabel("rows in the indexed table")
    ax.set_ylabel("worst write latency during the build, ms")
    ax.set_title("Write stall by table size", fontsize=10)
    ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


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
