"""Files are checked before any connection (issue 23; docs/running.md): a migration that --to or accept
names and that does not exist, or a malformed file, is one error line, printed before any database line,
with no connection made and no embedded server started."""

import pytest

from support import clean_env, invoke

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
