"""invoke sql: the SQL migrate / rollback run, as a psql script; run with psql it gives the runner's indexes;
as a DBA reads it, no comment pointing at a header it leaves out."""

import subprocess

import pytest

from support import (ALL_IDS, EXPECTED_INDEXDEFS, applied_ids, assert_all_built, assert_none_built, clean_env,
                     index_defs, invoke)

UNREACHABLE = "postgresql://nobody:pw@127.0.0.1:1/nowhere"


def run_psql(server, db, script, tmp_path):
    path = tmp_path / "review.sql"
    path.write_text(script)
    return subprocess.run([server.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.conninfo, "-f", str(path)],
                          capture_output=True, text=True, env=clean_env())


def creates(script):
    return [line.split()[3] for line in script.splitlines() if line.startswith("CREATE INDEX CONCURRENTLY")]


def drops(script):
    return [line.split()[-1].rstrip(";") for line in script.splitlines() if line.startswith("DROP INDEX")]


def test_sql_run_with_psql_gives_the_indexes_migrate_builds(db, server, tmp_path):
    result = invoke("sql", env=clean_env(DATABASE_URL=UNREACHABLE))  # no database consulted, so none reached
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert creates(script) == list(EXPECTED_INDEXDEFS)
    assert script.count("SET statement_timeout = 0;") == 3 and script.count("SET lock_timeout = '10min';") == 3
    psql = run_psql(server, db, script, tmp_path)
    assert psql.returncode == 0, psql.stderr
    with db.connect() as conn:
        assert index_defs(conn) == {name: (definition, True) for name, definition in EXPECTED_INDEXDEFS.items()}
        assert applied_ids(conn) == set()
    # The runner finds them identical to its own: it records them instead of building.
    migrate = invoke("migrate", "--dsn", db.url)
    assert migrate.returncode == 0, migrate.stderr
    assert migrate.stdout.count("recorded as applied") == 3 and "building" not in migrate.stdout
    with db.connect() as conn:
        assert_all_built(conn)


@pytest.mark.slow
def test_sql_rollback_run_with_psql_drops_them(db, server, tmp_path):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    script = invoke("sql", "--rollback").stdout
    assert drops(script) == list(reversed(EXPECTED_INDEXDEFS))
    assert run_psql(server, db, script, tmp_path).returncode == 0
    with db.connect() as conn:
        assert index_defs(conn) == {}
    assert invoke("rollback", "--all", "--yes", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        assert_none_built(conn)


@pytest.mark.slow
def test_sql_with_dsn_prints_what_migrate_would_run_there(db, server, tmp_path):
    fresh = invoke("sql", "--dsn", db.url)
    assert fresh.returncode == 0, fresh.stderr
    assert creates(fresh.stdout) == list(EXPECTED_INDEXDEFS)
    with db.connect() as conn:  # read-only: not even yoyo's tables
        assert conn.execute("SELECT to_regclass('_yoyo_migration')").fetchone()[0] is None

    assert invoke("migrate", "--dsn", db.url).returncode == 0
    assert invoke("rollback", "--dsn", db.url).returncode == 0  # drops upload_cust_date_status_cov
    with db.connect() as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'drift_cust_date_sev_cov'::regclass")
    pending = invoke("sql", "--dsn", db.url).stdout
    assert "-- applied, claim_cust_date_outcome_cov valid: nothing to run" in pending
    assert "drift_cust_date_sev_cov is INVALID" in pending
    assert drops(pending) == ["drift_cust_date_sev_cov"]
    assert creates(pending) == ["drift_cust_date_sev_cov", "upload_cust_date_status_cov"]
    assert pending.index("DROP INDEX") < pending.index("CREATE INDEX")
    assert drops(invoke("sql", "--rollback", "--dsn", db.url).stdout) == ["drift_cust_date_sev_cov"]
    assert run_psql(server, db, pending, tmp_path).returncode == 0
    with db.connect() as conn:
        assert index_defs(conn) == {name: (definition, True) for name, definition in EXPECTED_INDEXDEFS.items()}
        assert applied_ids(conn) == ALL_IDS - {"0003.upload_cust_date_status_cov"}
    done = invoke("sql", "--dsn", db.url).stdout
    assert creates(done) == [] and "migrate only records it as applied" in done


def test_sql_all_ignores_the_dsn(db):
    result = invoke("sql", "--all", "--dsn", UNREACHABLE)
    assert result.returncode == 0, result.stderr
    assert creates(result.stdout) == list(EXPECTED_INDEXDEFS)


def test_sql_with_an_unreachable_dsn_fails_in_one_line(db):
    result = invoke("sql", "--dsn", UNREACHABLE)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: cannot connect") and len(result.stderr.strip().splitlines()) == 1
    assert ":pw@" not in result.stderr


def test_sql_prints_the_files_of_the_migrations_folder_given(migrations_copy):
    forward = migrations_copy / "0001.claim_cust_date_outcome_cov.sql"
    forward.write_text(forward.read_text().replace("SET lock_timeout = '10min';", "SET lock_timeout = '7min';"))
    result = invoke("sql", "--migrations", str(migrations_copy))
    assert result.returncode == 0, result.stderr
    assert "SET lock_timeout = '7min';" in result.stdout and "SET lock_timeout = '10min';" in result.stdout


def test_the_script_keeps_no_comment_whose_header_it_dropped():
    result = invoke("sql")
    assert result.returncode == 0, result.stderr
    assert "squawk-ignore" not in result.stdout and "see above" not in result.stdout, result.stdout
    assert result.stdout.count("CREATE INDEX CONCURRENTLY") == 3
    assert "no CREATE INDEX says IF NOT EXISTS, on purpose" in result.stdout
