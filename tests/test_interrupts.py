"""Every wait bounded, every wait interruptible.

--max-wait bounds the wait for another migrator's lock, naming it. Ctrl-C (SIGINT to the invoke
process) ends each wait at once with exit 130 and the `interrupted` line: the wait for the migrator
lock, a build waiting on a writer, the wait for a killed run's orphaned build (one build at a time, and
in a --jobs thread), and a build or a lock wait behind a network that went silent (tests/proxy.py
stalls: the server never answers the cancel). The next run converges.
"""

import re
import signal
import time
from contextlib import closing

import pytest
from psycopg.conninfo import make_conninfo

from live import WRITERS_WAIT, Holder, Running, backends_gone, wait_until, waiting_claim_build
from proxy import Proxy
from support import CLAIM_INDEX, CLAIMS, assert_all_built, error_lines, invoke, migrate_converges
from upstream_indexes import ledger
from upstream_indexes.config import Target
from upstream_indexes.errors import MigratorBusy

# Ctrl-C ends a wait within about a second (docs/running.md); this bound only tells an ended wait
# from one waited out (each of these would last a minute or more), with room for a loaded machine.
ENDED_AT_ONCE_SECONDS = 5


def interrupt(run: Running):
    """SIGINT, as Ctrl-C in a terminal sends it; the run's result and how long it took to end."""
    sent = time.monotonic()
    run.process.send_signal(signal.SIGINT)
    result = run.finish(timeout=120)
    return result, time.monotonic() - sent


def assert_interrupted(result, took: float, wait: str) -> None:
    assert result.returncode == 130, result.stdout + result.stderr
    assert error_lines(result) == ["error: interrupted; run `invoke status` to see what was left"]
    assert took < ENDED_AT_ONCE_SECONDS, took
    print(f"Ctrl-C in {wait}: exit 130 after {took:.2f}s")


@pytest.mark.slow
def test_max_wait_bounds_the_wait_for_another_migrator_and_names_it(db):
    with db.connect() as conn:
        holder = Holder(db.connect(), write_table=CLAIMS)
        first = Running("migrate", "--dsn", db.url)
        waiting_claim_build(conn, WRITERS_WAIT)
        locker = conn.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()[0]
        second = invoke("migrate", "--dsn", db.url, "--max-wait", "2", timeout=60)
        holder.release()
        assert first.finish().returncode == 0
    assert second.returncode == 3, second.stdout + second.stderr
    [error] = error_lines(second)
    assert re.match(rf"error: the migrator in pid {locker} \(upstream-indexes, from (local socket|127\.0\.0\.1), "
                    r"connected \d+s\) still holds", error), error
    assert error.endswith(" still holds the migrator lock after 2s (--max-wait); nothing was changed; run it again "
                          "once that one has finished, or give --max-wait more time"), error
    assert "building" not in second.stdout


@pytest.mark.slow
def test_ctrl_c_in_the_wait_for_another_migrator(db):
    with db.connect() as conn:
        holder = Holder(db.connect(), write_table=CLAIMS)
        first = Running("migrate", "--dsn", db.url)
        waiting_claim_build(conn, WRITERS_WAIT)
        second = Running("migrate", "--dsn", db.url)
        second.wait_for_line("waiting for the migrator in pid")
        result, took = interrupt(second)
        holder.release()
        assert first.finish().returncode == 0
        assert_all_built(conn)
    assert_interrupted(result, took, "the wait for another migrator")


@pytest.mark.slow
def test_ctrl_c_while_a_build_waits(db):
    with db.connect() as conn:
        holder = Holder(db.connect(), write_table=CLAIMS)
        run = Running("migrate", "--dsn", db.url)
        waiting_claim_build(conn, WRITERS_WAIT)
        result, took = interrupt(run)
        holder.release()
    assert_interrupted(result, took, "a build's wait")
    migrate_converges(db.url, db.connect)


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "3"])
def test_ctrl_c_in_the_wait_for_an_orphaned_build(db, jobs):
    """A killed run's build waits for a snapshot; the next run waits for it (in a --jobs thread with
    --jobs 3, which before ignored Ctrl-C until --max-wait ended)."""
    with db.connect() as conn:
        if jobs != "1" and conn.info.server_version < 140000:
            pytest.skip("--jobs builds side by side on PostgreSQL 14+ only")
        holder = Holder(db.connect())
        killed = Running("migrate", "--dsn", db.url)
        orphan = waiting_claim_build(conn)
        killed.kill()
        run = Running("migrate", "--dsn", db.url, "--jobs", jobs, "--max-wait", "600")
        run.wait_for_line(rf"CREATE INDEX for {CLAIM_INDEX} is still running in pid {orphan}")
        result, took = interrupt(run)
        holder.release()
        wait_until(lambda: backends_gone(conn, orphan), "the orphaned build to end")
    assert_interrupted(result, took, f"the wait for an orphaned build (--jobs {jobs})")
    migrate_converges(db.url, db.connect)


@pytest.mark.slow
@pytest.mark.parametrize("wait", ["a build's wait", "the wait for another migrator"])
def test_ctrl_c_behind_a_silent_network(db, server, wait):
    """The network to the server stops carrying packets, then Ctrl-C: the cancel never gets an
    answer, every connection is closed on our side, and the run ends at once all the same."""
    proxy = Proxy(server.admin_conninfo)
    try:
        through_proxy = make_conninfo(db.conninfo, host="127.0.0.1", port=str(proxy.port))
        with db.connect() as conn:
            holder = Holder(db.connect(), write_table=CLAIMS)
            first = Running("migrate", "--dsn", db.url if wait != "a build's wait" else through_proxy)
            build = waiting_claim_build(conn, WRITERS_WAIT)
            run = first
            if wait == "the wait for another migrator":
                run = Running("migrate", "--dsn", through_proxy)
                run.wait_for_line("waiting for the migrator in pid")
            proxy.stall()
            result, took = interrupt(run)
            proxy.close()
            holder.release()
            if run is not first:
                assert first.finish().returncode == 0
            wait_until(lambda: backends_gone(conn, build), "the build to end")
    finally:
        proxy.close()
    assert_interrupted(result, took, f"{wait} behind a silent network")
    migrate_converges(db.url, db.connect)


def test_max_wait_bounds_the_wait_for_yoyos_own_lock_and_names_its_holder(db):
    """yoyo's lock row, held by another yoyo (`yoyo apply` by hand) while ours is taken: one line, exit 3."""
    backend = ledger._backend(Target(db.conninfo, "test"))
    with closing(backend.connection):
        backend.init_database()
        with db.connect() as other:
            other.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 4242)")
        with pytest.raises(MigratorBusy) as refused, ledger._yoyo_lock(backend, timeout=1):
            pass
    assert refused.value.exit_code == 3
    assert str(refused.value).startswith("yoyo in process 4242 (since ")
    assert "still holds the migrator lock after 1s (--max-wait)" in str(refused.value)
