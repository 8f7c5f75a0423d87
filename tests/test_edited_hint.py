"""An applied migration whose files were edited (issue 23): migrate's refusal and status's line name the
way out a Flyway user looks for, `invoke accept`, and `invoke accept` then clears both; the docs no longer
tell a DBA to UPDATE our checksum table by hand."""

from support import invoke
from upstream_indexes.paths import ROOT

FORWARD = "0002.drift_cust_date_sev_cov.sql"


def test_the_refusal_and_status_name_invoke_accept(db, migrations_copy):
    folder = ("--migrations", str(migrations_copy))
    assert invoke("migrate", "--dsn", db.url, *folder).returncode == 0
    path = migrations_copy / FORWARD
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
