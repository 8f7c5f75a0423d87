"""`invoke history` (issue 23): yoyo's whole log in the terminal, oldest first, as Alembic's `history` and
Flyway's `info` show it; `status` shows each migration's latest entry only. Read-only."""

import json

import pytest

from live import unchanged_snapshot
from support import invoke


@pytest.mark.slow
def test_history_shows_every_entry_oldest_first(db):
    empty = invoke("history", "--dsn", db.url)
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.splitlines()[1:] == [
        "history: nothing logged: no migrate or rollback has run against this database"]

    for args in (("migrate",), ("rollback",), ("migrate",)):
        assert invoke(*args, "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        before = unchanged_snapshot(conn)
    result = invoke("history", "--dsn", db.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("database: ")
    entries = [line.split()[:2] for line in lines[1:-1]]
    assert entries == [["0001.claim_cust_date_outcome_cov", "applied"], ["0002.drift_cust_date_sev_cov", "applied"],
                       ["0003.upload_cust_date_status_cov", "applied"],
                       ["0003.upload_cust_date_status_cov", "rolled"],
                       ["0003.upload_cust_date_status_cov", "applied"]], result.stdout
    assert all(" UTC by " in line and "(role " in line for line in lines[1:-1])
    assert lines[-1] == "history: 5 entries, oldest first"
    # The same log as status --json's, in the same order.
    log = json.loads(invoke("status", "--json", "--dsn", db.url).stdout)["history"]
    assert [(e["migration"], e["at_utc"]) for e in log] == [
        (line.split()[0], " ".join(line.split()[2:4]) if "rolled" not in line else " ".join(line.split()[3:5]))
        for line in lines[1:-1]]
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before


def test_history_of_an_unreachable_server_is_one_line():
    result = invoke("history", "--dsn", "postgresql://app@127.0.0.1:1/appdb")
    assert result.returncode == 2 and result.stderr.startswith("error: cannot connect: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
