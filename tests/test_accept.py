"""invoke accept (Flyway's repair): a reviewed edit to an applied migration's files is recorded as
applied (its new sha256); an edit that changes the index's definition is refused."""

import pytest

from support import assert_ok, assert_refused, invoke

DRIFT = "0002.drift_cust_date_sev_cov"


def recorded_sha256(db, migration_id):
    with db.connect() as conn:
        row = conn.execute("SELECT sha256 FROM _upstream_indexes_checksum WHERE migration_id = %s",
                           [migration_id]).fetchone()
    return row and row[0]


@pytest.mark.slow
def test_accept_records_a_reviewed_edit_and_refuses_a_changed_definition(db, migrations_copy):
    folder = ("--migrations", str(migrations_copy))
    assert_refused(invoke("accept", "0002", "--dsn", db.url, *folder), f"{DRIFT} is not applied")
    assert_ok(invoke("migrate", "--dsn", db.url, *folder))
    unchanged = assert_ok(invoke("accept", "0002", "--dsn", db.url, *folder))
    assert "nothing to accept: its files are as applied" in unchanged.stdout

    old = recorded_sha256(db, DRIFT)
    rollback_file = migrations_copy / f"{DRIFT}.rollback.sql"
    rollback_file.write_text(rollback_file.read_text().replace("without blocking writes", "without blocking any write"))
    assert_refused(invoke("migrate", "--dsn", db.url, *folder), "changed after it was applied", lines=2)
    accepted = assert_ok(invoke("accept", "0002", "--dsn", db.url, *folder))
    new = recorded_sha256(db, DRIFT)
    assert new != old
    assert f"sha256 {old} -> {new}" in accepted.stdout, accepted.stdout
    assert "nothing to migrate" in assert_ok(invoke("migrate", "--dsn", db.url, *folder)).stdout
    assert_ok(invoke("status", "--dsn", db.url, *folder))

    forward = migrations_copy / f"{DRIFT}.sql"
    forward.write_text(forward.read_text().replace("severity) INCLUDE (id)", "severity DESC) INCLUDE (id)"))
    assert_refused(invoke("accept", DRIFT, "--dsn", db.url, *folder),
                   f"{DRIFT}: not accepted: the catalog's drift_cust_date_sev_cov is foreign")
    assert recorded_sha256(db, DRIFT) == new
