"""Bad input: each gets one clear error line (one per problem), exit code 2, no
traceback, no password in the output, and the database exactly as it was,
without even yoyo's bookkeeping tables."""

import socket
import time

import pytest
from psycopg import sql

from live import unchanged_snapshot
from support import ALL_IDS, applied_ids, assert_all_built, assert_refused, clean_env, invoke
from upstream_indexes import embedded
from upstream_indexes.config import DEFAULT_CONNECT_TIMEOUT, Target, connect_kwargs
from upstream_indexes.paths import ROOT
from upstream_indexes.redaction import redact
from upstream_indexes.errors import ConnectionProblem

SECRET = "Wr0ng-s3cret-pw"
BOOKKEEPING = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock", "_upstream_indexes_checksum")


def assert_no_bookkeeping(conn):
    present = conn.execute("SELECT array_agg(t) FILTER (WHERE to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) t",
                           [list(BOOKKEEPING)]).fetchone()[0]
    assert present is None


# --- connecting ----------------------------------------------------------------

def test_unreachable_host(db):
    result = invoke("migrate", "--dsn", f"postgresql://app:{SECRET}@127.0.0.1:1/{db.name}")
    assert_refused(result, "cannot connect", '"127.0.0.1", port 1 failed: Connection refused')
    assert SECRET not in result.stdout + result.stderr


def test_wrong_password(db, server, role):
    name, _ = role
    with db.connect() as conn:
        before = unchanged_snapshot(conn)
    result = invoke("migrate", "--dsn", server.url(db.name, name, SECRET))
    assert_refused(result, "cannot connect", f'password authentication failed for user "{name}"')
    assert SECRET not in result.stdout + result.stderr
    assert "***" in result.stdout.splitlines()[0]
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before


def test_unknown_database(server):
    result = invoke("migrate", "--dsn", server.url("no_such_database"))
    assert_refused(result, "cannot connect", 'database "no_such_database" does not exist')


@pytest.mark.parametrize("dsn, fragment", [
    (f"host=localhost password={SECRET} port", "malformed DSN in --dsn (not shown: it may hold a password): a word "
                                               "without '='"),
    (f"postgresql://app:{SECRET}@localhost:notaport/db", "malformed DSN in --dsn (not shown: it may hold a password): "
                                                         "a port that is not a number"),
])
def test_malformed_dsn(dsn, fragment):
    result = invoke("migrate", "--dsn", dsn)
    assert_refused(result, fragment)
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("task", ["migrate", "status", "verify", "rollback"])
def test_empty_dsn_is_refused_not_the_demo(task):
    result = invoke(task, "--dsn", "")
    assert_refused(result, "--dsn is empty")
    assert "embedded" not in result.stdout


@pytest.fixture
def silent_port():
    """A loopback port whose listener accepts connections (the kernel's backlog) and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize("query, env, seconds", [("", {"PGCONNECT_TIMEOUT": "2"}, 2),
                                                 ("?connect_timeout=1", {"PGCONNECT_TIMEOUT": "30"}, 1)])
def test_no_answer_names_the_server_and_the_limit(silent_port, query, env, seconds):
    started = time.monotonic()
    result = invoke("status", "--dsn", f"postgresql://app:s3cret@127.0.0.1:{silent_port}/appdb{query}",
                    env=clean_env(**env))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f'error: cannot connect: no answer from server at "127.0.0.1", port {silent_port} within {seconds}s '
        "(connect_timeout in the DSN, else PGCONNECT_TIMEOUT, else 10)")
    assert time.monotonic() - started < 30 + seconds  # the limit it names is the one it kept


def test_the_default_is_ten_seconds_and_documented(monkeypatch):
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    assert DEFAULT_CONNECT_TIMEOUT == 10
    assert connect_kwargs(Target("host=h dbname=d", "--dsn"))["connect_timeout"] == 10
    assert "connect_timeout" not in connect_kwargs(Target("host=h dbname=d connect_timeout=3", "--dsn"))
    assert "waits 10 s for the server to answer" in (ROOT / "docs" / "topology.md").read_text()


@pytest.mark.parametrize("text", [
    f"postgresql://app:{SECRET}@db.example:5432/upstream",
    f"postgresql://app@db.example/upstream?sslmode=require&password={SECRET}",
    f"host=db.example password={SECRET} dbname=upstream",
    f"host=db.example password='{SECRET} x' dbname=upstream",
    # a blocking session's query as the runner names it (pg_stat_activity.query, cut at 80 characters)
    f"pid 42 (dba, idle in transaction, open 9s): \"ALTER ROLE app PASSWORD '{SECRET}' VALID UNTIL 'infinity'\"",
    f"pid 42 (dba, active, open 1s): \"CREATE ROLE app LOGIN ENCRYPTED PASSWORD '{SECRET}",
])
def test_no_spelling_of_a_password_survives_redaction(text):
    assert SECRET not in redact(text)
    assert "***" in redact(text)


# --- pre-flight: nothing is created, not even yoyo's tables ------------------

@pytest.mark.parametrize("change, fragment", [
    ("ALTER TABLE upstream_upload RENAME TO upstream_upload_old", "table upstream_upload does not exist"),
    ("ALTER TABLE upstream_driftevent DROP COLUMN severity", "table upstream_driftevent has no column severity"),
])
def test_missing_table_or_column(db, change, fragment):
    with db.connect() as conn:
        conn.execute(change)
        before = unchanged_snapshot(conn)
    assert_refused(invoke("migrate", "--dsn", db.url), fragment)
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before
        assert_no_bookkeeping(conn)


def test_status_without_the_tables_is_exit_2_like_migrate(db):
    with db.connect() as conn:
        conn.execute("ALTER TABLE upstream_claimrecord RENAME TO upstream_claimrecord_old")
    migrate = invoke("migrate", "--dsn", db.url)
    status = invoke("status", "--dsn", db.url)
    assert_refused(status, "table upstream_claimrecord does not exist")
    migrate_line = [line for line in migrate.stderr.splitlines() if "upstream_claimrecord" in line]
    assert migrate_line == status.stderr.strip().splitlines(), (migrate.stderr, status.stderr)


def test_read_only_session(db):
    with db.connect() as conn:
        before = unchanged_snapshot(conn)
    result = invoke("migrate", "--dsn", f"{db.conninfo} options='-c default_transaction_read_only=on'")
    assert_refused(result, "is read-only (default_transaction_read_only)")
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before
        assert_no_bookkeeping(conn)


def test_foreign_index_under_our_name(db):
    with db.connect() as conn:
        conn.execute("CREATE INDEX drift_cust_date_sev_cov ON upstream_driftevent (customer_id, created_at)")
        before = unchanged_snapshot(conn)
    result = invoke("migrate", "--dsn", db.url)
    assert_refused(result, "drift_cust_date_sev_cov exists with another definition: found `CREATE INDEX "
                           "drift_cust_date_sev_cov ON upstream_driftevent USING btree (customer_id, created_at)`, "
                           "ours is `CREATE INDEX drift_cust_date_sev_cov ON upstream_driftevent USING btree "
                           "(customer_id, created_at DESC, severity) INCLUDE (id)`", "nothing was changed", lines=2)
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before
        assert_no_bookkeeping(conn)


def test_role_that_does_not_own_the_tables(db, server, role):
    name, password = role
    with db.connect() as conn:
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(name)))
        before = unchanged_snapshot(conn)
        # PostgreSQL 15+ also denies CREATE on schema public to new roles: a second problem, a line of its own.
        public_create_denied = conn.info.server_version >= 150000
    result = invoke("migrate", "--dsn", server.url(db.name, name, password))
    bookkeeping = f"role {name} cannot create the bookkeeping tables in schema public"
    assert_refused(result, *(f"role {name} cannot create indexes on {table}: it is owned by"
                             for table in ("upstream_claimrecord", "upstream_driftevent", "upstream_upload")),
                   *[bookkeeping] * public_create_denied, lines=3 + public_create_denied)
    assert (bookkeeping in result.stderr) == public_create_denied
    assert password not in result.stdout + result.stderr
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before
        assert_no_bookkeeping(conn)


# --- migration files -----------------------------------------------------------

@pytest.mark.parametrize("text, edited, fragment", [
    ("-- transactional: false", "-- transactional: no",  # yoyo itself would crash with a KeyError
     "0002.drift_cust_date_sev_cov.sql: line 2: `-- transactional: no` must be `true` or `false`"),
    ("CONCURRENTLY drift", "CONCURRENTLY IF NOT EXISTS drift",  # would skip an INVALID leftover silently
     "0002.drift_cust_date_sev_cov.sql: statement 3: CREATE INDEX ... IF NOT EXISTS would silently skip the INVALID "
     "index"),
])
def test_malformed_migration_file_is_refused_before_connecting(db, migrations_copy, text, edited, fragment):
    forward = migrations_copy / "0002.drift_cust_date_sev_cov.sql"
    forward.write_text(forward.read_text().replace(text, edited))
    with db.connect() as conn:
        before = unchanged_snapshot(conn)
    result = invoke("migrate", "--dsn", db.url, "--migrations", str(migrations_copy))
    assert_refused(result, fragment)
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before
        assert_no_bookkeeping(conn)


@pytest.mark.slow
def test_applied_file_edited_afterwards_is_refused(db, migrations_copy):
    assert invoke("migrate", "--dsn", db.url, "--migrations", str(migrations_copy)).returncode == 0
    rollback = migrations_copy / "0002.drift_cust_date_sev_cov.rollback.sql"
    applied = rollback.read_text()
    rollback.write_text(applied.replace("without blocking writes", "without blocking any write"))
    with db.connect() as conn:
        before = unchanged_snapshot(conn)

    for command in (["migrate"], ["rollback", "--all"]):
        result = invoke(*command, "--dsn", db.url, "--migrations", str(migrations_copy))
        assert_refused(result, "0002.drift_cust_date_sev_cov changed after it was applied",
                       "0002.drift_cust_date_sev_cov.rollback.sql", "nothing was changed", lines=2)
    status = invoke("status", "--dsn", db.url, "--migrations", str(migrations_copy))
    assert status.returncode == 4, status.stdout
    assert "0002.drift_cust_date_sev_cov changed after it was applied" in status.stdout
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before

    rollback.write_text(applied)
    again = invoke("migrate", "--dsn", db.url, "--migrations", str(migrations_copy))
    assert again.returncode == 0 and "nothing to migrate" in again.stdout, again.stdout + again.stderr
    with db.connect() as conn:
        assert_all_built(conn)
        assert applied_ids(conn) == ALL_IDS


# Nothing listens on port 1: had the command tried the database, the error would be a connection's.
NOWHERE = "postgresql://app@127.0.0.1:1/appdb"


@pytest.mark.parametrize("args, message", [
    (("migrate", "--to", "0009"), "error: --to 0009: no such migration; the migrations are 0001."),
    (("rollback", "--to", "0009"), "error: --to 0009: no such migration; the migrations are 0001."),
    (("accept", "0009"), "error: accept 0009: no such migration; the migrations are 0001."),
    (("migrate", "--json", "--to", "0009"), "error: --to 0009: no such migration"),
])
def test_an_unknown_migration_is_refused_before_the_database_line(args, message):
    result = invoke(*args, "--dsn", NOWHERE)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "database:" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_malformed_file_is_refused_before_the_database_line(migrations_copy):
    path = migrations_copy / "0001.claim_cust_date_outcome_cov.sql"
    path.write_text(path.read_text().replace("-- transactional: false", "-- transactional: no"))
    # No --dsn and no database variables: the embedded demo would be the choice, and is not started.
    result = invoke("status", "--migrations", str(migrations_copy), env=clean_env())
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "" and result.stderr.startswith("error: 0001.claim_cust_date_outcome_cov.sql: line 2")


# --- the embedded demo server ----------------------------------------------------

@pytest.mark.parametrize("task, scale, fragment", [
    ("db.reset", "lots", "--scale must be a number"),
    ("db.seed", "-1", "--scale must be a number"),
    ("db.seed", "0", "--scale must be a number above 0 and at most 100"),
])
def test_bad_demo_scale_is_refused_before_the_server_starts(task, scale, fragment):
    assert_refused(invoke(task, "--scale", scale), fragment)


@pytest.mark.parametrize("scale", ["0", "-1", "lots", "1000"])
def test_every_bad_scale_gets_the_same_words(scale):
    assert_refused(invoke("db.seed", "--scale", scale),
                   f"--scale must be a number above 0 and at most 100 (1.0 = 3M claims), not {scale!r}")


def test_embedded_server_that_cannot_start_is_one_line(tmp_path):
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")  # a data directory without its files, as after a bad copy
    with pytest.raises(ConnectionProblem) as refused:
        embedded.start(pgdata)
    message = str(refused.value)
    assert message.startswith(f"cannot start the embedded server in {pgdata}: ") and "\n" not in message, message
