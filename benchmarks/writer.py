"""The write load during index builds: one process per table, inserting and
updating rows at a steady rate and timing every write.

A process of its own (not a thread), so that neither the GIL nor the runner's
threads add to the latencies it records. Writes alternate insert / update on
rows picked uniformly at random (benchmarks/sql/writes.sql). The writer is
paced, not flat out: after a stall it carries on at its rate instead of
bursting to catch up, so "writes completed during the build" compares builds
fairly, and a blocked write shows the whole stall as its own latency. The
wait sampler (waits.py) runs beside them, started and stopped with them.
"""

import multiprocessing
import random
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from upstream_indexes.config import Target, connect_kwargs
from upstream_indexes.errors import ToolError

from . import bench_sql, waits

KINDS = ("insert", "update")
APPLICATION_NAME = "upstream-indexes bench writer"
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Write:
    started: float  # time.monotonic(), comparable across processes (CLOCK_MONOTONIC)
    latency: float  # seconds
    kind: str  # insert | update
    ok: bool

    @property
    def ended(self) -> float:
        return self.started + self.latency


def _write_loop(conninfo: dict, table: str, rate: float, seed: int, ready, stop, results) -> None:
    """The child process: prepare, signal ready, write until stopped, send the writes back."""
    try:
        conn = psycopg.connect(**conninfo, autocommit=True)
        conn.execute(bench_sql("writes"))
        max_id = conn.execute(sql.SQL("SELECT max(id) FROM {}").format(sql.Identifier(table))).fetchone()[0]
        statements = {kind: sql.SQL("EXECUTE {}(%s)").format(sql.Identifier(f"{table}_{kind}")) for kind in KINDS}
        # EXECUTE is a utility statement: its argument is bound client-side, still as a parameter.
        cursor = psycopg.ClientCursor(conn)
        pid = conn.info.backend_pid  # whose wait events the sampler (waits.py) records
    except psycopg.Error as exc:
        results.send(("error", f"writer on {table} could not start: {exc}".strip()))
        return
    rng = random.Random(seed)
    period = 1.0 / rate
    writes = []
    ready.set()
    due = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if now < due:
            stop.wait(due - now)
            continue
        kind = KINDS[len(writes) % len(KINDS)]
        started = time.monotonic()
        try:
            cursor.execute(statements[kind], [rng.randint(1, max_id)])
            ok = True
        except psycopg.Error:
            ok = False
        ended = time.monotonic()
        writes.append((started, ended - started, kind, ok))
        due = max(due + period, ended)
    conn.close()
    results.send(("ok", (pid, writes)))


class Writers:
    """Context manager: one writer process per table, and the wait sampler's (waits.py), running from
    enter (once all are ready) to exit; then `writes`, `pids` and `samples` hold what they recorded."""

    def __init__(self, target: Target, tables: list[str], rate: float, seed: int = 1):
        self._context = multiprocessing.get_context("spawn")
        self._stop = self._context.Event()
        conninfo = connect_kwargs(target)
        writer = {**conninfo, "application_name": APPLICATION_NAME}
        self._children = [self._child(f"writer on {table}", _write_loop, writer, table, rate, seed + number)
                          for number, table in enumerate(tables)]
        self._children.append(self._child("wait sampler", waits.sample_loop,
                                          {**conninfo, "application_name": waits.APPLICATION_NAME},
                                          APPLICATION_NAME))
        self._tables = tables
        self.writes: dict[str, list[Write]] = {}
        self.pids: dict[str, int] = {}  # each table's writer's backend pid
        self.samples: waits.Samples | None = None

    def _child(self, name: str, loop, *args) -> tuple:
        ready = self._context.Event()
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=loop, name=name, daemon=True,
                                        args=(*args, ready, self._stop, sender))
        return name, process, ready, receiver

    def __enter__(self) -> "Writers":
        for _, process, _, _ in self._children:
            process.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        for name, process, ready, receiver in self._children:
            while not ready.wait(0.1):
                if receiver.poll() or not process.is_alive() or time.monotonic() > deadline:
                    self._stop.set()
                    raise ToolError(self._failure(name, receiver))
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        reported = []
        for name, process, _, receiver in self._children:
            if receiver.poll(START_TIMEOUT_S):
                status, payload = receiver.recv()
                if status == "ok":
                    reported.append(payload)
                elif exc[0] is None:
                    raise ToolError(payload)
            process.join(5)
        if exc[0] is None and len(reported) != len(self._children):
            raise ToolError("a writer or the wait sampler ended without reporting")
        if exc[0] is None:
            *writers, self.samples = reported
            for table, (pid, writes) in zip(self._tables, writers):
                self.pids[table] = pid
                self.writes[table] = [Write(*row) for row in writes]

    @staticmethod
    def _failure(name: str, receiver) -> str:
        if receiver.poll():
            return receiver.recv()[1]
        return f"{name} did not start within {START_TIMEOUT_S}s"
