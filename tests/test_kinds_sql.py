"""`invoke sql` and `invoke migrate --dry-run` show every statement of each kind as the runner sends
it (issue 18, points 1 and 7): a constraint's file step by step, the runner's own short lock_timeout
before each catalog-only statement; with --dsn only what is left (a NOT VALID constraint: its
VALIDATE; a promotion's rollback: from where it stands). Run with psql as it is, the script makes
what migrate makes: migrate then only records."""

import subprocess

import pytest

from kinds import next_migrations, remove_drift_duplicates
from support import applied_ids, clean_env, invoke

GUARD = ("-- the runner's bound on the wait for the next statement's lock (it retries within --max-wait)\n"
         "SET lock_timeout = '2s';\n")


def section(script: str, migration_id: str) -> str:
    """The part of the script under one migration's heading."""
    return script.split(f"-- {migration_id}: ", 1)[1].split("\n\n-- 0", 1)[0]


def test_sql_prints_each_kind_step_by_step(tmp_path):
    folder = next_migrations(tmp_path / "migrations")
    script = invoke("sql", "--migrations", str(folder), "--parallel-workers", "0").stdout
    check = section(script, "0004.upload_status_valid")
    add, validate = check.split("ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid", 1)
    assert add.endswith("SET statement_timeout = 0;\nSET lock_timeout = '2s';\n" + GUARD)
    assert ("NOT VALID;\nSET statement_timeout = 0;\nSET lock_timeout = '2s';\nSET lock_timeout = '10min';\n"
            in validate) and validate.rstrip().endswith("VALIDATE CONSTRAINT upload_status_valid;")
    assert GUARD + "ALTER TABLE upstream_driftevent ADD CONSTRAINT" in section(script, "0006.drift_event_unique")
    assert "max_parallel_maintenance_workers" not in check  # the build settings are an index build's
    assert "max_parallel_maintenance_workers = 0" in section(script, "0005.drift_event_unique").replace("'", "")
    rollback = invoke("sql", "--rollback", "--migrations", str(folder)).stdout
    promotion = section(rollback, "0006.drift_event_unique")
    assert promotion.index("CREATE UNIQUE INDEX CONCURRENTLY drift_event_unique_twin") < promotion.index(
        GUARD + "ALTER TABLE upstream_driftevent DROP CONSTRAINT") < promotion.index(
        "ALTER INDEX drift_event_unique_twin RENAME TO drift_event_unique;")


@pytest.mark.slow
def test_with_a_database_only_what_is_left_and_psql_makes_what_migrate_makes(db, server, tmp_path):
    folder = next_migrations(tmp_path / "migrations")
    with db.connect() as conn:
        remove_drift_duplicates(conn)
        conn.execute("ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid CHECK (status IN ('processing', "
                     "'success', 'failed', 'partial')) NOT VALID")
    dry = invoke("migrate", "--dry-run", "--dsn", db.url, "--migrations", str(folder))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    planned = dry.stdout.split("0004.upload_status_valid: upload_status_valid is NOT VALID", 1)[1].split("\n0005", 1)[0]
    assert "    ALTER TABLE upstream_upload VALIDATE CONSTRAINT upload_status_valid;" in planned
    assert "ADD CONSTRAINT" not in planned  # only what is left
    assert ("    CREATE UNIQUE INDEX CONCURRENTLY drift_event_unique ON upstream_driftevent (customer_id, "
            "report_run_id, payer, cpt_group, drift_type);") in dry.stdout
    script = tmp_path / "review.sql"
    script.write_text(invoke("sql", "--dsn", db.url, "--migrations", str(folder)).stdout)
    assert "ADD CONSTRAINT upload_status_valid" not in script.read_text()
    ran = subprocess.run([server.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.conninfo, "-f", str(script)],
                         capture_output=True, text=True, env=clean_env())
    assert ran.returncode == 0, ran.stderr
    migrated = invoke("migrate", "--dsn", db.url, "--migrations", str(folder))
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "building" not in migrated.stdout and "validating" not in migrated.stdout  # all there: only recorded
    with db.connect() as conn:
        assert len(applied_ids(conn)) == 7
