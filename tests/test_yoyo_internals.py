"""Each yoyo internal ledger.py relies on, exercised on its own against a real server, so that a yoyo
release that changes one fails here (CI), not in a deploy. pyproject.toml caps yoyo-migrations below
its next major; raising the cap means running this file on the new release first.

What ledger.py uses: parse_metadata_from_sql_comments (ledger.split), Migration (_yoyo_migration:
its id and hash), DatabaseURI and PostgresqlPsycopgBackend (_backend), and of the backend:
connection, copy(), init_database(), ensure_internal_schema_updated(), lock() and break_lock(),
transaction(), mark_one() / unmark_one() / log_migration(); plus the columns of yoyo's tables that
queries/*.sql read (_yoyo_migration, _yoyo_log, yoyo_lock)."""

import os
from contextlib import closing

import psycopg
import pytest
from yoyo.migrations import parse_metadata_from_sql_comments

from support import index_defs
from upstream_indexes import catalog, ledger
from upstream_indexes.config import APPLICATION_NAME, Target
from upstream_indexes.migrations import load
from upstream_indexes.paths import MIGRATIONS_DIR

CLAIMS = load(MIGRATIONS_DIR)[0]


@pytest.fixture
def backend(db):
    """yoyo's backend on the test database, as ledger.opened makes it: tables created and up to date."""
    backend = ledger._backend(Target(db.conninfo, "test"))
    with closing(backend.connection):
        backend.init_database()
        ledger._ensure_checksum_table(backend.connection)
        backend.ensure_internal_schema_updated()
        yield backend


def test_parse_metadata_from_sql_comments_returns_the_sql_after_the_leading_comments():
    directives, comment, sql = parse_metadata_from_sql_comments(
        "-- what and why\n-- transactional: false\n-- depends: 0001.x\n\nCREATE INDEX a ON t (c);\nSELECT 1;\n")
    assert directives == {"transactional": "false", "depends": "0001.x"}
    assert comment.strip() == "what and why"
    assert sql == "CREATE INDEX a ON t (c);\nSELECT 1;\n"
    # ledger.split: a migration file's statements, its header (the directives) gone.
    statements = ledger.split(CLAIMS.forward_sql)
    assert "-- transactional: false" in CLAIMS.forward_sql and not any("transactional:" in s for s in statements)
    assert "CREATE INDEX CONCURRENTLY" in statements[-1]


def test_a_migration_is_keyed_by_its_id_for_the_records():
    migration = ledger._yoyo_migration(CLAIMS)
    assert migration.id == CLAIMS.id and migration.use_transactions is False
    assert migration.hash  # what mark_one records


def test_database_uri_and_the_backend_connect_with_our_conninfo(db, backend):
    assert isinstance(backend.connection, psycopg.Connection)
    info = backend.connection.info
    assert (info.dbname, info.parameter_status("application_name")) == (db.name, APPLICATION_NAME)
    assert backend.migration_table == ledger.MIGRATION_TABLE


def test_init_database_creates_the_tables_and_columns_our_queries_read(backend):
    read = {"_yoyo_migration": {"migration_id", "migration_hash", "applied_at_utc"},
            "_yoyo_log": {"id", "migration_id", "operation", "created_at_utc", "username", "hostname", "comment"},
            "yoyo_lock": {"locked", "ctime", "pid"},
            "_yoyo_version": {"version"}}
    for table, columns in read.items():
        found = {row[0] for row in backend.connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", [table])}
        assert columns <= found, (table, found)


def test_lock_writes_our_pid_and_break_lock_removes_it(backend):
    with ledger._yoyo_lock(backend):
        rows = catalog.fetch(backend.connection, "yoyo_lock", {})
        assert [row["pid"] for row in rows] == [os.getpid()] and rows[0]["ctime"] is not None
        with backend.copy() as other:
            other.break_lock()
        assert catalog.fetch(backend.connection, "yoyo_lock", {}) == []
    assert catalog.fetch(backend.connection, "yoyo_lock", {}) == []


def test_copy_is_another_session_closed_on_the_way_out(backend):
    with backend.copy() as other:
        assert other.connection.info.backend_pid != backend.connection.info.backend_pid
    assert other.connection.closed


def test_a_copied_connection_runs_each_statement_outside_a_transaction(db, backend):
    """Ledger.build_connection: a copy() of the backend's connection, in autocommit, so that the forward
    file's CREATE INDEX CONCURRENTLY (which fails inside a transaction block) runs as the file says."""
    book = ledger.Ledger(backend, [CLAIMS])
    for direction, built in (("apply", True), ("rollback", False)):
        with book.build_connection() as build:
            for statement in ledger.statements(CLAIMS, direction):
                build.execute(statement)
        with db.connect() as conn:
            assert (CLAIMS.index in index_defs(conn)) is built
            if built:
                assert index_defs(conn)[CLAIMS.index][1] is True  # valid


def test_mark_unmark_and_log_in_a_transaction_write_what_status_reads(db, backend):
    book = ledger.Ledger(backend, [CLAIMS])
    book.record(CLAIMS, "apply", started=0)
    with db.connect() as conn:
        assert ledger.applied_ids(conn) == {CLAIMS.id}
        assert ledger.recorded_checksums(conn) == {CLAIMS.id: CLAIMS.checksum}
        [entry] = ledger.history(conn)
        assert (entry.migration, entry.operation) == (CLAIMS.id, "apply")
        assert entry.os_user and entry.host and entry.note.startswith("role "), entry
    book.forget(CLAIMS, started=0)
    with db.connect() as conn:
        assert ledger.applied_ids(conn) == set() and ledger.recorded_checksums(conn) == {}
        assert [e.operation for e in ledger.history(conn)] == ["apply", "rollback"]
