"""`invoke stamp` (issue 23): Alembic's stamp, Flyway's baseline, Django's --fake. A migration is recorded as
applied without building, only when the catalog holds a valid index of its definition (under another name:
renamed to ours first), or with --force and a line saying what it skipped."""

import pytest

from live import unchanged_snapshot
from support import CLAIM_INDEX, applied_ids, index_oid, invoke

CLAIM = "0001.claim_cust_date_outcome_cov"
OUR_KEYS = "ON upstream_claimrecord (customer_id, decided_date DESC, outcome) INCLUDE (id)"


@pytest.mark.slow
def test_an_index_built_by_hand_under_another_name_is_renamed_and_recorded(db):
    with db.connect() as conn:
        conn.execute(f"CREATE INDEX claims_by_hand {OUR_KEYS}")
        built = index_oid(conn, "claims_by_hand")
    result = invoke("stamp", "0001", "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"{CLAIM}: claims_by_hand is a valid index of its definition, renamed to {CLAIM_INDEX} (ALTER INDEX ... "
        "RENAME: blocks no reads or writes): recorded as applied, nothing built")
    with db.connect() as conn:
        assert index_oid(conn, CLAIM_INDEX) == built and index_oid(conn, "claims_by_hand") is None  # the same index
        assert applied_ids(conn) == {CLAIM}
    migrated = invoke("migrate", "--dsn", db.url)
    assert migrated.returncode == 0 and f"building {CLAIM_INDEX}" not in migrated.stdout, migrated.stdout
    assert "recorded" in invoke("history", "--dsn", db.url).stdout.splitlines()[1]
    assert invoke("verify", "--dsn", db.url).returncode == 0


def test_a_restored_index_of_our_name_is_only_recorded(db):
    with db.connect() as conn:
        conn.execute(f"CREATE INDEX {CLAIM_INDEX} {OUR_KEYS}")
    result = invoke("stamp", CLAIM, "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (f"{CLAIM}: {CLAIM_INDEX} is a valid index of its definition: "
                                              "recorded as applied, nothing built")
    again = invoke("stamp", "0001", "--dsn", db.url)
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == f"{CLAIM}: nothing to stamp: it is recorded as applied"


def test_no_valid_index_of_its_definition_is_refused_and_changes_nothing(db):
    with db.connect() as conn:
        conn.execute("CREATE INDEX claims_almost ON upstream_claimrecord (customer_id, decided_date DESC, outcome)")
        before = unchanged_snapshot(conn)
    result = invoke("stamp", "0001", "--dsn", db.url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {CLAIM}: not stamped: no valid index of its definition on "
                                    "upstream_claimrecord (")
    assert "pass --force to record it anyway; nothing was changed" in result.stderr
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before


def test_force_records_it_and_says_what_it_skipped(db):
    result = invoke("stamp", "0002", "--force", "--dsn", db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith(
        "0002.drift_cust_date_sev_cov: --force: recorded as applied without a valid index of its definition "
        "(drift_cust_date_sev_cov is missing); nothing was built or checked")
    with db.connect() as conn:
        assert applied_ids(conn) == {"0002.drift_cust_date_sev_cov"}


def test_an_unknown_migration_is_refused_before_connecting():
    result = invoke("stamp", "0009", "--dsn", "postgresql://app@127.0.0.1:1/appdb")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: stamp 0009: no such migration")
