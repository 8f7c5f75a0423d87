"""migrate's builds in plan order, up to --jobs at once and never two on one table, the standby gate
before each. The state the builds share is explicit (run.Run); each build beside others runs on a
ledger connection of its own (ledger.Ledger.beside)."""

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import psycopg

from . import run_events, standbys, versions
from .events import Listener
from .executor import Executor
from .ledger import Ledger
from .planner import Action
from .run import Run


def side_by_side(conn: psycopg.Connection, todo: list[Action], jobs: int, listener: Listener) -> int:
    """How many builds migrate runs at once: --jobs, unless the server would make them wait on each
    other (then one, and one line why).

    CREATE INDEX CONCURRENTLY waits, after each table scan, for every transaction with an older
    snapshot: before PostgreSQL 14 also the transactions of a concurrent build on another table,
    so side by side each would wait for the other's phases. 14 skips builds of indexes without an
    expression or WHERE (on either side) in those waits; 14.0-14.3 is refused in pre-flight.
    """
    if jobs == 1:
        return 1
    if conn.info.server_version < versions.SAFE_CIC_SKIPPED:
        listener.emit(run_events.OneAtATime(jobs, f"before PostgreSQL 14 (this server is "
                                              f"{versions.describe(conn.info.server_version)}) each CREATE INDEX "
                                              "CONCURRENTLY waits for the snapshots of every other one running, "
                                              "even on another table"))
        return 1
    if constraints := [a.state.migration.index for a in todo if not a.state.migration.kind.makes_index]:
        listener.emit(run_events.OneAtATime(jobs, f"{', '.join(constraints)} "
                                              f"{'is a constraint' if len(constraints) == 1 else 'are constraints'}: "
                                              "an ALTER TABLE's brief lock, and a VALIDATE's scan, whose snapshot "
                                              "every concurrent build would wait for"))
        return 1
    if uneasy := [a.state.migration.index for a in todo if not a.state.migration.plain_columns]:
        listener.emit(run_events.OneAtATime(jobs, f"{', '.join(uneasy)} has an expression or a WHERE, and PostgreSQL "
                                              "makes every concurrent build wait for the snapshots of such a one"))
        return 1
    return jobs


def apply_all(run: Run, book: Ledger, todo: list[Action], jobs: int) -> None:
    """Carry out the migrate actions in order, up to `jobs` at once, never two on one table.

    Each runs on a ledger connection of its own (yoyo's lock stays with ours) and is recorded as
    it ends. After a failure no further one starts; those running end as they would, then the
    first failure is raised. Ctrl-C cancels the running builds, as it cancels the one build of
    --jobs 1 (db.interruptible), and leaves what they left for the next run."""
    if jobs == 1:
        executor = Executor(run, book)
        for action in todo:
            standbys.wait_until_caught_up(run, book.connection)
            executor.apply(action)
        return
    pending = list(todo)
    running: dict[Future, str] = {}  # each running action's table
    failures: list[BaseException] = []
    with ThreadPoolExecutor(jobs, thread_name_prefix="build") as pool:
        while pending or running:
            while pending and not failures and len(running) < jobs:
                action = next((a for a in pending if a.state.migration.table not in running.values()), None)
                if action is None:
                    break
                pending.remove(action)
                standbys.wait_until_caught_up(run, book.connection)
                running[pool.submit(_apply_beside, run, book, action)] = action.state.migration.table
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                del running[future]
                if future.exception() is not None:
                    failures.append(future.exception())
    if failures:
        raise failures[0]


def _apply_beside(run: Run, book: Ledger, action: Action) -> None:
    """One action on a ledger connection of its own (a --jobs thread)."""
    with book.beside() as own:
        Executor(run, own).apply(action)
