"""invoke accept (Flyway's repair): a reviewed edit to an applied migration's files is recorded as
applied (its new sha256); an edit that changes the index's definition is refused; migrate's refusal of
an edited file and status name `invoke accept`, and the docs no longer say to UPDATE the checksum by hand."""

import pytest

from support import assert_ok, assert_refused, invoke
from upstream_indexes.paths import ROOT

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


DRIFT_FORWARD = "0002.drift_cust_date_sev_cov.sql"


@pytest.mark.slow
def test_the_refusal_and_status_name_invoke_accept(db, migrations_copy):
    folder = ("--migrations", str(migrations_copy))
    assert invoke("migrate", "--dsn", db.url, *folder).returncode == 0
    path = migrations_copy / DRIFT_FORWARD
    path.write_text(path.read_text().replace("-- Safety:", "-- Safety (reviewed):"))

    refused = invoke("migrate", "--dsn", db.url, *folder)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "error: 0002.drift_cust_date_sev_cov changed after it was applied" in refused.stderr
    assert refused.stderr.splitlines()[0].endswith("`invoke accept 0002`"), refused.stderr
    status = invoke("status", "--dsn", db.url, *folder)
    assert status.returncode & 4 and "`invoke accept 0002`" in status.stdout, status.stdout

    accepted = invoke("accept", "0002", "--dsn", db.url, *folder)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert invoke("status", "--dsn", db.url, *folder).returncode == 0


def test_the_docs_say_accept_not_update():
    faults = (ROOT / "docs" / "faults.md").read_text()
    row = next(line for line in faults.splitlines() if line.startswith("| An applied migration file was edited"))
    assert "invoke accept" in row and "_upstream_indexes_checksum" not in row and "UPDATE" not in row.replace(
        "no hand-written `UPDATE`", "")
