"""`invoke new --dsn` (issue 23): the new pair checked against a database before any file is written, as
migrate's pre-flight would check it (the table, its columns, the name), with the existing indexes it
would make redundant (the redundancy report's logic); read-only."""

import pytest

from live import unchanged_snapshot
from support import invoke

EXAMPLE = ("new", "claim_cust_payer_date_cov", "--table", "upstream_claimrecord", "--columns",
           "customer_id, payer, decided_date DESC", "--include", "id")  # docs/migration-files.md's example


def files(folder):
    return sorted(path.name for path in folder.iterdir())


def test_new_dsn_names_the_indexes_the_docs_example_duplicates(db, migrations_copy):
    with db.connect() as conn:
        before = unchanged_snapshot(conn)
    result = invoke(*EXAMPLE, "--dsn", db.url, "--migrations", str(migrations_copy))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("database: ") and lines[0].endswith("(from --dsn)")
    assert lines[1] == ("checked: upstream_claimrecord and its columns exist, claim_cust_payer_date_cov is free; "
                        "existing indexes it would make redundant (for the DBA to weigh; nothing is dropped):")
    assert lines[2].startswith("  claim_payer_payment_idx (customer_id, payer, decided_date DESC) on "
                               "upstream_claimrecord, ")
    assert lines[2].endswith(": a prefix of claim_cust_payer_date_cov, same order")
    assert any(line.startswith("  upstream_claimrecord_customer_id_idx (customer_id)") for line in lines)
    assert "0004.claim_cust_payer_date_cov.sql" in files(migrations_copy)
    with db.connect() as conn:
        assert unchanged_snapshot(conn) == before  # read-only


@pytest.mark.parametrize("args, problem", [
    (("--table", "upstream_claimrecord", "--columns", "customer_id, payer_name"),
     "table upstream_claimrecord has no column payer_name; nothing was written"),
    (("--table", "upstream_claim", "--columns", "customer_id"),
     "table upstream_claim does not exist (search_path of role "),
    (("--table", "upstream_claimrecord", "--columns", "customer_id, outcome"),
     "x_taken_cov already exists there, foreign: `CREATE INDEX x_taken_cov ON upstream_claimrecord USING btree "
     "(payer)`; choose another name; nothing was written"),
])
def test_new_dsn_refuses_what_migrate_would_and_writes_nothing(db, migrations_copy, args, problem):
    with db.connect() as conn:
        conn.execute("CREATE INDEX x_taken_cov ON upstream_claimrecord (payer)")
    before = files(migrations_copy)
    result = invoke("new", "x_taken_cov", *args, "--dsn", db.url, "--migrations", str(migrations_copy))
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {problem}"), line
    assert files(migrations_copy) == before


def test_new_without_dsn_consults_no_database(migrations_copy):
    result = invoke(*EXAMPLE, "--migrations", str(migrations_copy))
    assert result.returncode == 0 and "database:" not in result.stdout and "checked:" not in result.stdout
