"""The ledger (yoyo behind one module): a run that fails after it took the migrator lock leaves
none of its connections behind, and a build runs the very text whose sha256 it records."""

import io

import pytest
from yoyo.migrations import read_sql_migration

from conftest import Database
from upstream_indexes import ledger, migrations, runner
from upstream_indexes.config import APPLICATION_NAME, Target
from upstream_indexes.errors import ToolError
from upstream_indexes.paths import MIGRATIONS_DIR
from upstream_indexes.report import Reporter


def our_connections(db: Database) -> list[tuple]:
    """The server backends this process (the tool, in-process) still has open on the test's database."""
    with db.connect() as conn:
        return conn.execute("SELECT pid, state, query FROM pg_stat_activity "
                            "WHERE datname = current_database() AND application_name = %s "
                            "AND pid <> pg_backend_pid()", [APPLICATION_NAME]).fetchall()


def test_a_run_that_fails_inside_the_ledger_closes_every_connection(db, monkeypatch):
    """The bookkeeping tables exist (one index applied); a DBA's transaction holds yoyo's lock table,
    so the run fails after it took the migrator lock and opened yoyo's backend, on its first look at
    yoyo_lock (lock_timeout from PGOPTIONS, as an operator would set it)."""
    target = Target(db.conninfo, "test")
    runner.migrate(target, Reporter(io.StringIO()), to="0001")
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=1s")
    with db.connect() as dba, dba.transaction():
        dba.execute("LOCK TABLE yoyo_lock IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(ToolError, match="lock timeout") as failed:
            runner.migrate(target, Reporter(io.StringIO()))
        # Checked while the error (and everything its traceback holds) is still alive.
        assert our_connections(db) == [], failed.value


def test_a_build_runs_the_text_that_was_read_and_checksummed(migrations_copy):
    """An edit to the file after the run read it changes neither the checksum nor the SQL it runs."""
    first = migrations.load(migrations_copy)[0]
    first.path.write_text(first.path.read_text().replace(first.index, "edited_meanwhile"))
    statements = ledger.statements(first, "apply")
    assert any(first.index in s for s in statements)
    assert not any("edited_meanwhile" in s for s in statements)
    assert ledger.statements(first, "rollback") == ledger.split(first.rollback_sql)


def test_the_text_is_split_as_yoyos_reader_splits_the_file():
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        assert ledger.split(path.read_text(encoding="utf-8")) == read_sql_migration(str(path))[2], path.name
