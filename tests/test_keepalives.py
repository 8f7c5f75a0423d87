"""Connections as libpq users expect them, and a server that goes silent noticed in bounded time.

Every session the tool opens carries one application_name (the DSN's or PGAPPNAME when given), and
TCP keepalives and tcp_user_timeout unless the DSN sets its own; a bad PGCONNECT_TIMEOUT is one line.
A network that stops carrying packets without closing anything (tests/proxy.py stalls) ends a build
and a wait in bounded time, with one line; the next run converges.
"""

import os
import socket
import time

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from live import WRITERS_WAIT, Holder, Running, backends_gone, wait_until, waiting_claim_build
from proxy import Proxy
from support import CLAIMS, clean_env, error_lines, invoke, migrate_converges
from upstream_indexes import ledger
from upstream_indexes.config import Target
from upstream_indexes.db import connect

# What a silent server may cost, at most (docs/topology.md): a look without an answer (10 s), the
# watchdog's attempt to connect again (the default connect_timeout, 10 s), the cancel it then sends
# (2 s); and the margin of a loaded machine.
SILENCE_BOUND_SECONDS = 45


@pytest.fixture
def proxy(server):
    proxy = Proxy(server.admin_conninfo)
    yield proxy
    proxy.close()


def through(proxy: Proxy, conninfo: str, **params: str) -> str:
    return make_conninfo(conninfo, host="127.0.0.1", port=str(proxy.port), **params)


def test_a_bad_pgconnect_timeout_is_one_error_line(db):
    result = invoke("status", "--dsn", db.url, env=clean_env(PGCONNECT_TIMEOUT="soon"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert error_lines(result) == ["error: PGCONNECT_TIMEOUT must be a whole number of seconds, not 'soon'"]


@pytest.mark.parametrize("dsn_name, pgappname, shown", [
    (None, None, "upstream-indexes"),
    ("deploy-42", None, "deploy-42"),
    (None, "deploy-43", "deploy-43"),
], ids=["ours", "the DSN's", "PGAPPNAME"])
def test_every_session_carries_one_application_name(db, dsn_name, pgappname, shown):
    """The runner's, the ledger's (yoyo's), the build's and the watchdog's: all four, while the build waits."""
    dsn = make_conninfo(db.conninfo, **({"application_name": dsn_name} if dsn_name else {}))
    env = clean_env(**({"PGAPPNAME": pgappname} if pgappname else {}))
    with db.connect() as conn:
        holder = Holder(db.connect(), write_table=CLAIMS)
        run = Running("migrate", "--dsn", dsn, env=env)
        waiting_claim_build(conn, WRITERS_WAIT)
        names = wait_until(lambda: (lambda rows: rows if len(rows) == 4 else None)(conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid NOT IN (pg_backend_pid(), %s)", [holder.pid]).fetchall()), "migrate's four sessions")
        holder.release()
        result = run.finish()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [name for (name,) in names] == [shown] * 4


def keepalive_options(conn: psycopg.Connection) -> dict[str, int]:
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        return {"keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                **{name: sock.getsockopt(socket.IPPROTO_TCP, option) for name, option in (
                    ("idle", socket.TCP_KEEPIDLE), ("interval", socket.TCP_KEEPINTVL), ("count", socket.TCP_KEEPCNT),
                    ("user_timeout_ms", socket.TCP_USER_TIMEOUT))}}


@pytest.mark.parametrize("dsn_params, expected", [
    ({}, {"keepalive": 1, "idle": 10, "interval": 5, "count": 2, "user_timeout_ms": 20000}),
    ({"keepalives_idle": "30", "keepalives_count": "4", "tcp_user_timeout": "0"},
     {"keepalive": 1, "idle": 30, "interval": 5, "count": 4, "user_timeout_ms": 0}),
], ids=["ours", "the DSN's"])
def test_keepalives_on_every_connection_unless_the_dsn_sets_them(db, proxy, dsn_params, expected):
    """Over TCP (libpq ignores them on a Unix socket): our connections and yoyo's."""
    target = Target(through(proxy, db.conninfo, **dsn_params), "test")
    with connect(target) as conn:
        assert keepalive_options(conn) == expected
    backend = ledger._backend(target)
    with backend.connection as conn:
        assert keepalive_options(conn) == expected


def noticed_in_bounded_time(took: float, during: str) -> None:
    assert took < SILENCE_BOUND_SECONDS, took
    print(f"silent network noticed during {during} in {took:.1f}s")


@pytest.mark.slow
def test_a_build_behind_a_silent_network_ends_in_bounded_time(db, proxy):
    """The network stops carrying packets while the claim build waits: the watchdog's look gets no
    answer, it cannot connect again, and not even a cancel gets through; every session of ours is
    closed and the run ends (exit 3), in bounded time. The server carries on with the build (its
    client is gone, it does not know): the next run records it."""
    with db.connect() as conn:
        holder = Holder(db.connect(), write_table=CLAIMS)
        run = Running("migrate", "--dsn", through(proxy, db.conninfo))
        build = waiting_claim_build(conn, WRITERS_WAIT)
        proxy.stall()
        stalled = time.monotonic()
        result = run.finish(timeout=2 * SILENCE_BOUND_SECONDS)
        took = time.monotonic() - stalled
        proxy.close()
        holder.release()
        wait_until(lambda: backends_gone(conn, build), "the build the server carried on with to end")
    assert result.returncode == 3, result.stdout + result.stderr
    [error] = error_lines(result)
    assert error.startswith("error: 0001.claim_cust_date_outcome_cov: apply of claim_cust_date_outcome_cov: the "
                            "watchdog lost its connection and could not connect again (no answer within 10s; then "
                            "cannot connect: "), error
    assert "every session of ours was closed" in error
    noticed_in_bounded_time(took, "a build")
    migrate_converges(db.url, db.connect)


@pytest.mark.slow
def test_a_wait_behind_a_silent_network_ends_in_bounded_time(db, proxy):
    """The network stops carrying packets while migrate waits for another migrator's lock: its next
    look gets no answer (10 s), and the run ends (exit 3), saying so."""
    with db.connect() as conn:
        holder = Holder(db.connect(), write_table=CLAIMS)
        first = Running("migrate", "--dsn", db.url)
        waiting_claim_build(conn, WRITERS_WAIT)
        second = Running("migrate", "--dsn", through(proxy, db.conninfo), "--max-wait", "600")
        second.wait_for_line("waiting for the migrator in pid")
        proxy.stall()
        stalled = time.monotonic()
        result = second.finish(timeout=2 * SILENCE_BOUND_SECONDS)
        took = time.monotonic() - stalled
        holder.release()
        assert first.finish().returncode == 0
    assert result.returncode == 3, result.stdout + result.stderr
    assert error_lines(result) == [
        "error: no answer from the server within 10s while waiting for the migrator lock: the server, or the "
        "network to it, stopped answering without closing the connection (a proxy or a route that drops packets); "
        "every session of ours to it was closed; run the command again once it answers"]
    noticed_in_bounded_time(took, "a wait")
    migrate_converges(db.url, db.connect)
