"""Where each new kind runs (issue 18, point 10): with --jobs, unique indexes of plain columns build
side by side, anything with an expression or a WHERE and every constraint one at a time (and a line
why); on a partitioned table a CHECK is added and validated (recursing into the partitions, its data
check reading them), a foreign key too on PostgreSQL 18, and what PostgreSQL or the per-partition
build cannot do is refused in pre-flight with the reason, exit 2, nothing changed. (Citus:
tests/test_kinds_citus.py.)"""

import pytest

from kinds import next_migrations, remove_drift_duplicates
from live import unchanged_snapshot
from support import invoke
from test_partitioned import partitioned_template, pdb  # noqa: F401 (fixtures)

HEADER = "-- {what}\n-- transactional: false\nSET statement_timeout = 0;\nSET lock_timeout = '2s';\n"


def write(folder, name, forward, rollback):
    (folder / f"{name}.sql").write_text(HEADER.format(what="forward") + forward)
    (folder / f"{name}.rollback.sql").write_text(HEADER.format(what="rollback") + rollback)


def only(folder, *keep: str):
    """Leave migrations/ and the examples named in `keep` in the folder."""
    for path in folder.iterdir():
        if path.name[:4] in ("0004", "0005", "0006", "0007") and not path.name.startswith(keep):
            path.unlink()
    (folder / "app_queries.sql").unlink()
    return folder


def server_major(db) -> int:
    with db.connect() as conn:
        return conn.info.server_version // 10000


def test_jobs_builds_unique_plain_indexes_side_by_side(db, tmp_path):
    if server_major(db) < 14:
        pytest.skip("--jobs builds one at a time before PostgreSQL 14")
    folder = only(next_migrations(tmp_path / "migrations"), "0005")
    with db.connect() as conn:
        remove_drift_duplicates(conn)
    result = invoke("migrate", "--jobs", "2", "--dsn", db.url, "--migrations", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "one index at a time" not in result.stdout and "built drift_event_unique in" in result.stdout


def test_jobs_runs_constraints_and_partial_indexes_one_at_a_time(db, tmp_path):
    if server_major(db) < 14:
        pytest.skip("--jobs builds one at a time before PostgreSQL 14")
    folder = next_migrations(tmp_path / "migrations")
    with db.connect() as conn:
        remove_drift_duplicates(conn)
    result = invoke("migrate", "--jobs", "3", "--dsn", db.url, "--migrations", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("--jobs 3: building one index at a time: upload_status_valid, drift_event_unique are constraints: an "
            "ALTER TABLE's brief lock, and a VALIDATE's scan, whose snapshot every concurrent build would wait for"
            in result.stdout)
    only(folder, "0007")
    assert invoke("rollback", "--to", "0003", "--yes", "--dsn", db.url, "--migrations", str(folder)).returncode == 0
    partial = invoke("migrate", "--jobs", "3", "--dsn", db.url, "--migrations", str(folder))
    assert partial.returncode == 0 and ("upload_processing_cov has an expression or a WHERE, and PostgreSQL makes "
                                        "every concurrent build wait for the snapshots of such a one") in partial.stdout


CLAIM_CHECK = ("ALTER TABLE upstream_claimrecord ADD CONSTRAINT claim_billed_nonnegative CHECK (billed_amount >= 0) "
               "NOT VALID;\nALTER TABLE upstream_claimrecord VALIDATE CONSTRAINT claim_billed_nonnegative;\n",
               "ALTER TABLE upstream_claimrecord DROP CONSTRAINT IF EXISTS claim_billed_nonnegative;\n")
CLAIM_FK = ("ALTER TABLE upstream_claimrecord ADD CONSTRAINT claim_upload_fk FOREIGN KEY (upload_id) REFERENCES "
            "upstream_upload (id) NOT VALID;\nALTER TABLE upstream_claimrecord VALIDATE CONSTRAINT claim_upload_fk;\n",
            "ALTER TABLE upstream_claimrecord DROP CONSTRAINT IF EXISTS claim_upload_fk;\n")


def test_a_check_on_a_partitioned_table(pdb, tmp_path):
    folder = only(next_migrations(tmp_path / "migrations"))
    write(folder, "0004.claim_billed_nonnegative", *CLAIM_CHECK)
    with pdb.connect() as conn:  # a violating row in one partition: the data check reads the partitions
        conn.execute("UPDATE upstream_claimrecord SET billed_amount = -1 WHERE id = (SELECT min(id) FROM "
                     "upstream_claimrecord)")
    stopped = invoke("migrate", "--dsn", pdb.url, "--migrations", str(folder))
    assert stopped.returncode == 2 and "0004.claim_billed_nonnegative: 1 rows of upstream_claimrecord violate" \
        in stopped.stderr, stopped.stderr
    with pdb.connect() as conn:
        conn.execute("UPDATE upstream_claimrecord SET billed_amount = 1 WHERE billed_amount < 0")
    migrated = invoke("migrate", "--dsn", pdb.url, "--migrations", str(folder))
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    with pdb.connect() as conn:
        # On the parent and, inherited, on every partition: all validated.
        rows = conn.execute("SELECT count(*), bool_and(convalidated) FROM pg_constraint "
                            "WHERE conname = 'claim_billed_nonnegative'").fetchone()
        partitions = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                  "'upstream_claimrecord'::regclass").fetchone()[0]
        assert rows == (partitions + 1, True)
    verified = invoke("verify", "--dsn", pdb.url, "--migrations", str(folder))
    assert verified.returncode == 0 and "pass  constraint claim_billed_nonnegative: on upstream_claimrecord, " \
        "validated, once" in verified.stdout, verified.stdout + verified.stderr
    assert invoke("rollback", "--dsn", pdb.url, "--migrations", str(folder)).returncode == 0
    with pdb.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'claim_billed_nonnegative'"
                            ).fetchone()[0] == 0


def test_a_foreign_key_on_a_partitioned_table(pdb, tmp_path):
    folder = only(next_migrations(tmp_path / "migrations"))
    write(folder, "0004.claim_upload_fk", *CLAIM_FK)
    with pdb.connect() as conn:
        conn.execute("ALTER TABLE upstream_claimrecord DROP CONSTRAINT upstream_claimrecord_upload_id_fkey")
        before = unchanged_snapshot(conn)
    result = invoke("migrate", "--dsn", pdb.url, "--migrations", str(folder))
    if server_major(pdb) < 18:
        assert result.returncode == 2, result.stdout + result.stderr
        assert ("error: 0004.claim_upload_fk: the foreign key claim_upload_fk: upstream_claimrecord is "
                "partitioned, and PostgreSQL before 18 cannot add a foreign key NOT VALID to a partitioned table "
                f"(this server is {server_major(pdb)})") in result.stderr
        with pdb.connect() as conn:
            assert unchanged_snapshot(conn) == before
        return
    assert result.returncode == 0, result.stdout + result.stderr
    with pdb.connect() as conn:
        assert conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'claim_upload_fk' AND conrelid = "
                            "'upstream_claimrecord'::regclass").fetchone() == (True,)
    assert invoke("verify", "--dsn", pdb.url, "--migrations", str(folder)).returncode == 0


def test_what_a_partitioned_table_cannot_take_is_refused_with_the_reason(pdb, tmp_path):
    folder = only(next_migrations(tmp_path / "migrations"))
    write(folder, "0004.claim_denied_recent",
          "CREATE INDEX CONCURRENTLY claim_denied_recent ON upstream_claimrecord (customer_id, decided_date DESC) "
          "WHERE outcome = 'DENIED';\n", "DROP INDEX CONCURRENTLY IF EXISTS claim_denied_recent;\n")
    write(folder, "0005.claim_unique_line",
          "CREATE UNIQUE INDEX CONCURRENTLY claim_unique_line ON upstream_claimrecord (upload_id, id, decided_date);\n",
          "DROP INDEX CONCURRENTLY IF EXISTS claim_unique_line;\n")
    write(folder, "0006.claim_unique_line",
          "ALTER TABLE upstream_claimrecord ADD CONSTRAINT claim_unique_line UNIQUE USING INDEX claim_unique_line;\n",
          "CREATE UNIQUE INDEX CONCURRENTLY claim_unique_line_twin ON upstream_claimrecord (upload_id, id, "
          "decided_date);\nALTER TABLE upstream_claimrecord DROP CONSTRAINT IF EXISTS claim_unique_line;\n"
          "ALTER INDEX claim_unique_line_twin RENAME TO claim_unique_line;\n")
    with pdb.connect() as conn:
        before = unchanged_snapshot(conn)
    for command in (("migrate",), ("migrate", "--dry-run"), ("sql", "--dsn", pdb.url)):
        result = invoke(*command, *(("--dsn", pdb.url) if command[0] == "migrate" else ()),
                        "--migrations", str(folder))
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines == [
            "error: 0004.claim_denied_recent: the index claim_denied_recent: upstream_claimrecord is partitioned, where "
            "migrate builds plain indexes only (no UNIQUE, WHERE, expression, collation or operator class), partition "
            "by partition: it compares and verifies each partition's index by its key columns alone",
            "error: 0005.claim_unique_line: the unique index claim_unique_line: upstream_claimrecord is partitioned, "
            "where "
            "migrate builds plain indexes only (no UNIQUE, WHERE, expression, collation or operator class), partition "
            "by partition: it compares and verifies each partition's index by its key columns alone",
            "error: 0006.claim_unique_line: the UNIQUE constraint claim_unique_line: upstream_claimrecord is "
            "partitioned, and PostgreSQL cannot add a constraint USING INDEX to a partitioned table"]
    with pdb.connect() as conn:
        assert unchanged_snapshot(conn) == before
