"""What the slow writes waited on, and the checkpoints during each build.

A sampler process (started with the writers, writer.Writers) reads the
writers' backends and the checkpointer in pg_stat_activity every few
milliseconds (sql/wait_samples.sql), and the checkpoint counter
(pg_stat_checkpointer on PostgreSQL 17+, pg_stat_bgwriter before) every
tenth time. A write slower than SLOW_MS is then attributed to the wait
events its backend showed while it ran, and a build to the checkpoints
counted, started and running during it.

A process of its own, as the writers are: its polling must not delay the
bench's clock or the runner's threads. Times are time.monotonic()
(CLOCK_MONOTONIC), comparable with the writers'. Every arm of a run is
sampled the same way, so the sampler's own load is the same for each.
"""

import bisect
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import psycopg

from . import bench_sql

APPLICATION_NAME = "upstream-indexes bench wait sampler"
SLOW_MS = 20.0  # a write slower than this is attributed to its wait events
INTERVAL_S = 0.005
COUNTER_EVERY = 10  # samples between reads of the checkpoint counter
IDLE_CHECKPOINTER = "Activity:CheckpointerMain"
NOT_IN_SERVER = "Client:ClientRead"  # the backend waits for the client: the time went outside the server


@dataclass(frozen=True)
class Samples:
    """What the sampler saw: times in time.monotonic() seconds."""

    waits: dict[int, list[tuple[float, str]]]  # writer backend pid -> (time, wait event or "CPU")
    checkpointer: list[tuple[float, str]]  # (time, the checkpointer's wait event)
    checkpoints: list[tuple[float, int]]  # (time, checkpoints started so far)
    seconds: float  # from the first sample to the last

    @property
    def interval_ms(self) -> float | None:
        """The mean time between two samples."""
        return 1000 * self.seconds / (len(self.checkpointer) - 1) if len(self.checkpointer) > 1 else None


def sample_loop(conninfo: dict, writer_name: str, ready, stop, results) -> None:
    """The sampler process: sample until stopped, then send the Samples back."""
    try:
        conn = psycopg.connect(**conninfo, autocommit=True)
        counter = bench_sql("checkpoints" if conn.info.server_version >= 170000 else "checkpoints_before_17")
        query = bench_sql("wait_samples")
    except psycopg.Error as exc:
        results.send(("error", f"wait sampler could not start: {exc}".strip()))
        return
    waits: dict[int, list[tuple[float, str]]] = defaultdict(list)
    checkpointer: list[tuple[float, str]] = []
    checkpoints: list[tuple[float, int]] = []
    ready.set()
    first = due = time.monotonic()
    taken = 0
    while not stop.is_set():
        now = time.monotonic()
        if now < due:
            stop.wait(due - now)
            continue
        try:
            if taken % COUNTER_EVERY == 0:
                checkpoints.append((time.monotonic(), conn.execute(counter).fetchone()[0]))
            before = time.monotonic()
            rows = conn.execute(query, {"writer": writer_name}).fetchall()
        except psycopg.Error as exc:
            results.send(("error", f"wait sampler failed: {exc}".strip()))
            return
        at = (before + time.monotonic()) / 2
        for pid, is_checkpointer, wait in rows:
            (checkpointer if is_checkpointer else waits[pid]).append((at, wait))
        taken += 1
        due = max(due + INTERVAL_S, time.monotonic())
    conn.close()
    results.send(("ok", Samples(dict(waits), checkpointer, checkpoints, time.monotonic() - first)))


def _between(series: list[tuple[float, object]], start: float, end: float) -> list:
    """The values of a time-ordered series sampled from start to end."""
    times = [t for t, _ in series]
    return [value for _, value in series[bisect.bisect_left(times, start):bisect.bisect_right(times, end)]]


def slow_writes(writes: list, pid: int, samples: Samples, start: float, end: float) -> list[dict]:
    """Each write on one table that overlapped [start, end] and took over SLOW_MS: its latency, kind,
    and the wait events its backend showed while it ran (sample counts)."""
    series = samples.waits.get(pid, [])
    return [{"latency_ms": round(1000 * w.latency, 2), "kind": w.kind, "at_s": round(w.started - start, 3),
             "waits": dict(Counter(_between(series, w.started, w.ended)).most_common())}
            for w in writes if w.started < end and w.ended > start and 1000 * w.latency > SLOW_MS]


def checkpoints(samples: Samples, start: float, end: float) -> dict:
    """The checkpointer during [start, end]: `counted`, how many checkpoints the counter added; `started`,
    how often it was seen leaving its idle wait for a checkpoint (when full-page writes make the WAL
    surge); `running`, whether it was seen in a checkpoint at all (under a steady write load a spread
    checkpoint runs most of the time)."""
    times = [t for t, _ in samples.checkpoints]
    counts = [count for _, count in samples.checkpoints]
    counted = None
    if counts:
        counted = (counts[min(bisect.bisect_left(times, end), len(counts) - 1)]
                   - counts[max(0, bisect.bisect_right(times, start) - 1)])
    # From the last sample before the window, so that a start at its very beginning counts.
    seen = [t for t, _ in samples.checkpointer]
    waits = [wait for _, wait in samples.checkpointer[max(0, bisect.bisect_left(seen, start) - 1):
                                                     bisect.bisect_right(seen, end)]]
    return {"counted": counted,
            "started": sum(a == IDLE_CHECKPOINTER != b for a, b in zip(waits, waits[1:])),
            "running": any(wait != IDLE_CHECKPOINTER for wait in waits) if waits else None}


def summary(slow: list[dict]) -> dict[str, int]:
    """For a set of slow writes: each wait event by the number of those writes that met it (most first);
    "no sample" counts the writes no sample fell into."""
    met = Counter()
    for write in slow:
        met.update(set(write["waits"]) or {"no sample"})
    return dict(met.most_common())
