"""Versions the tool treats differently (docs/versions.md), each on a real server of that version.

PostgreSQL 14.0 to 14.3 could build corrupt indexes with CREATE INDEX
CONCURRENTLY (fixed in 14.4): on a real 14.3 (the pinned npm package, started
here whatever server the session runs on) migrate refuses to build and verify
warns about indexes built there.
"""

import subprocess

import pytest

from support import TEST_SCALE, clean_env, index_defs, invoke, json_report, pinned_server_or_skip
from upstream_indexes import demo, versions
from upstream_indexes.paths import MIGRATIONS_DIR


@pytest.fixture(scope="module")
def server_14_3(tmp_path_factory):
    """A throwaway PostgreSQL 14.3. Without npm (and no cached copy) the tests are skipped,
    except in CI (CI set), where that is a failure."""
    with pinned_server_or_skip("14.3", tmp_path_factory.mktemp("pg14.3")) as server:
        yield server


@pytest.fixture(scope="module")
def template_14_3(server_14_3):
    name = server_14_3.create_database()
    with server_14_3.connect(name) as conn:
        assert conn.info.server_version == 140003
        demo.load(conn, TEST_SCALE)
    return name


@pytest.fixture
def db_14_3(server_14_3, template_14_3):
    """A demo database of its own on 14.3: the server and the database's name."""
    name = server_14_3.create_database(template_14_3)
    yield server_14_3, name
    server_14_3.drop_database(name)


def build_by_hand(server, name):
    """The indexes as a DBA would have built them there: psql -f each migration file."""
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if not path.name.endswith(".rollback.sql"):
            subprocess.run([server.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.conninfo(name),
                            "-f", str(path)], check=True, capture_output=True, env=clean_env())


def test_the_buggy_range_is_14_0_to_14_3():
    assert [versions.has_cic_corruption_bug(v) for v in (130023, 140000, 140003, 140004, 180001)] == \
        [False, True, True, False, False]


@pytest.mark.npm
@pytest.mark.pg
@pytest.mark.slow
def test_migrate_on_14_3_refuses_to_build_naming_the_bug_and_the_fix(db_14_3):
    server, name = db_14_3
    result = invoke("migrate", "--dsn", server.url(name))
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "PostgreSQL 14.3 can build corrupt indexes with CREATE INDEX CONCURRENTLY" in errors[0]
    assert "fixed in 14.4" in errors[0] and "REINDEX INDEX CONCURRENTLY" in errors[0]
    assert "Traceback" not in result.stderr
    with server.connect(name) as conn:  # nothing changed: no index, not even yoyo's tables
        assert index_defs(conn) == {}
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%yoyo%'").fetchone()[0] == 0


@pytest.mark.npm
@pytest.mark.pg
@pytest.mark.slow
def test_sql_on_14_3_refuses_the_build_but_prints_the_rollback(db_14_3):
    server, name = db_14_3
    build = invoke("sql", "--dsn", server.url(name))
    assert build.returncode == 2 and "fixed in 14.4" in build.stderr
    build_by_hand(server, name)
    drop = invoke("sql", "--rollback", "--dsn", server.url(name))
    assert drop.returncode == 0, drop.stderr


@pytest.mark.npm
@pytest.mark.pg
@pytest.mark.slow
def test_rollback_on_14_3_is_allowed(db_14_3):
    """Dropping is not affected by the bug: the way out must stay open."""
    server, name = db_14_3
    result = invoke("rollback", "--all", "--dsn", server.url(name))
    assert result.returncode == 0, result.stderr
    assert "nothing to roll back" in result.stdout


@pytest.mark.npm
@pytest.mark.pg
@pytest.mark.slow
def test_verify_on_14_3_warns_that_concurrently_built_indexes_need_a_check(db_14_3):
    server, name = db_14_3
    build_by_hand(server, name)
    result = invoke("verify", "--dsn", server.url(name))
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warn  server version: ")]
    assert len(warnings) == 1, result.stdout
    assert "PostgreSQL 14.3" in warnings[0] and "fixed in 14.4" in warnings[0]
    assert "pg_amcheck --heapallindexed" in warnings[0] and "rebuild" in warnings[0]
    assert [line for line in result.stdout.splitlines() if line.startswith("fail  ")] == []

    strict = invoke("verify", "--strict", "--json", "--dsn", server.url(name))
    assert strict.returncode == 1
    report = json_report(strict)
    assert [c for c in report["checks"] if c["status"] == "fail"] == [
        {"script": "server", "check": "server version", "status": "fail",
         "message": versions.cic_corruption_warning(140003), "data": None}]  # data: --traffic's only


@pytest.mark.slow
def test_verify_on_the_session_server_has_no_version_warning(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    result = invoke("verify", "--strict", "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "server version" not in result.stdout
