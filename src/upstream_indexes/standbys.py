"""The standby gate: after each build or drop, where each standby's replay stands; with
--max-replica-lag, before each next build, a wait until every standby is under it (at most
--max-wait). Lag is measured from the WAL marks the run noted (run.Run.wal_marks)."""

import time

import psycopg

from . import db, index_events, topology
from .errors import StandbyBehind
from .run import Run


def show_replay(run: Run, conn: psycopg.Connection) -> None:
    """After a build or drop: where each standby's replay stands (nothing without standbys)."""
    for replica in topology.replicas(conn, run.wal_marks):
        run.listener.emit(index_events.StandbyReplay(replica))


def wait_until_caught_up(run: Run, conn: psycopg.Connection) -> None:
    """With --max-replica-lag, after a build: wait until every standby's replay is under it, at most
    --max-wait seconds (then StandbyBehind: what is built stays built and recorded)."""
    limit = run.options.max_replica_lag
    if limit is None or not run.wal_marks:
        return
    started = time.monotonic()
    announced = None
    # A mark on each poll: a standby that stops replaying the app's own writes while we wait
    # shows a growing lag too.
    while behind := [r for r in _replicas(run, conn) if r.lag_seconds > limit]:
        if time.monotonic() - started > run.options.max_wait:
            raise StandbyBehind(behind[0].describe(), limit, run.options.max_wait)
        if behind[0].name != announced:
            announced = behind[0].name
            run.listener.emit(index_events.WaitingForStandby(behind[0], limit))
        db.pause(topology.REPLICA_POLL_SECONDS)


def _replicas(run: Run, conn: psycopg.Connection) -> list[topology.Replica]:
    with db.answered_within(conn, db.ANSWER_SECONDS, "waiting for the standbys to catch up"):
        run.wal_marks.append(topology.mark(conn))
        return topology.replicas(conn, run.wal_marks)
