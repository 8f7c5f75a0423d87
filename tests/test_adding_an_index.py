"""The team's next index: `invoke new` writes a fourth migration pair, and every task covers it:
lint, migrate, status, verify (derived from migrations/, not a list of three), sql,
django-state and rollback. verify/expected.sql, the psql scripts' copy of what verify checks,
stays generated from the files. With --dsn, `invoke new` checks the pair against the database first."""

import pytest

from live import unchanged_snapshot
from support import EXPECTED_INDEXDEFS, index_defs, invoke
from upstream_indexes import app_queries, expected, migrations

NEW_INDEX = "claim_cust_payer_date_cov"
NEW_ARGS = ("new", NEW_INDEX, "--table", "upstream_claimrecord", "--columns", "customer_id, payer, decided_date desc",
            "--include", "id")


def test_expected_sql_is_generated_from_the_migrations_and_the_catalogue():
    assert expected.EXPECTED_SQL.read_text() == expected.render(migrations.load(), app_queries.load()), \
        "verify/expected.sql is stale: run `invoke expected`"


def test_new_writes_the_next_pair_in_the_house_style(migrations_copy, tmp_path):
    result = invoke(*NEW_ARGS, "--migrations", str(migrations_copy))
    assert result.returncode == 0, result.stdout + result.stderr
    forward = migrations_copy / f"0004.{NEW_INDEX}.sql"
    assert forward.exists() and forward.with_name(f"0004.{NEW_INDEX}.rollback.sql").exists()
    assert (f"CREATE INDEX CONCURRENTLY {NEW_INDEX} ON upstream_claimrecord USING btree "
            "(customer_id, payer, decided_date DESC) INCLUDE (id);") in forward.read_text()
    # What to add to the catalogue, in its format: the catalogue parser takes it as it is.
    entry = result.stdout.split("for example:\n\n", 1)[1].split("\nthen run", 1)[0]
    catalogue = tmp_path / "app_queries.sql"
    catalogue.write_text(entry)
    [query] = app_queries.load(catalogue)
    assert query.expected_index == NEW_INDEX and query.table == "upstream_claimrecord"
    assert "rewrote" not in result.stdout  # verify/expected.sql is this checkout's, not the copy's
    linted = invoke("lint", "--migrations", str(migrations_copy))
    assert linted.returncode == 1 and "header TODO: " in linted.stdout  # until its author fills them in


@pytest.mark.parametrize("args, problem", [
    (("new", "Claim-Index", "--table", "t", "--columns", "a"), "NAME: 'Claim-Index' is not a lower-case SQL identifier"),
    (("new", "x_cov", "--table", "t", "--columns", "a sideways"), "--columns: 'a sideways' is not `<column> [ASC|DESC]"),
    (("new", "x_cov", "--table", "t", "--columns", "a, b", "--include", "a"), "--columns/--include: a column named twice in a, b, a"),
    (("new", "drift_cust_date_sev_cov", "--table", "t", "--columns", "a"),
     "NAME: drift_cust_date_sev_cov is already built by 0002.drift_cust_date_sev_cov"),
])
def test_new_refuses_bad_input_and_writes_nothing(migrations_copy, args, problem):
    before = sorted(path.name for path in migrations_copy.iterdir())
    result = invoke(*args, "--migrations", str(migrations_copy))
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {problem}"), line
    assert sorted(path.name for path in migrations_copy.iterdir()) == before


@pytest.mark.slow
def test_every_task_covers_a_fourth_index(db, migrations_copy):
    assert invoke(*NEW_ARGS, "--migrations", str(migrations_copy)).returncode == 0
    folder = ("--migrations", str(migrations_copy))

    migrated = invoke("migrate", "--dsn", db.url, *folder)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert f"built {NEW_INDEX} in" in migrated.stdout
    with db.connect() as conn:
        assert set(index_defs(conn)) >= set(EXPECTED_INDEXDEFS)
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                            [NEW_INDEX]).fetchone()[0] is True

    status = invoke("status", "--dsn", db.url, *folder)
    assert status.returncode == 0 and f"0004.{NEW_INDEX}" in status.stdout, status.stdout + status.stderr

    verified = invoke("verify", "--dsn", db.url, *folder)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"pass  index {NEW_INDEX}: on upstream_claimrecord, valid" in verified.stdout
    assert "pass  index count: 4 indexes of our names" in verified.stdout
    assert f"warn  coverage {NEW_INDEX}: no app query exercises it" in verified.stdout
    strict = invoke("verify", "--strict", "--dsn", db.url, *folder)
    assert strict.returncode == 1 and f"fail  coverage {NEW_INDEX}" in strict.stdout, strict.stdout

    assert f"CREATE INDEX CONCURRENTLY {NEW_INDEX}" in invoke("sql", *folder).stdout
    assert f'name="{NEW_INDEX}"' in invoke("django-state", "--after", "0018_x", *folder).stdout

    with db.connect() as conn:
        conn.execute(f"DROP INDEX {NEW_INDEX}")
    dropped = invoke("verify", "--dsn", db.url, *folder)
    assert dropped.returncode == 1, dropped.stdout + dropped.stderr
    assert f"fail  index {NEW_INDEX}: expected on upstream_claimrecord, found no index of this name" in dropped.stdout
    # The checkout's own migrations/ knows three: verify there passes; it is the folder that counts.
    assert invoke("verify", "--dsn", db.url).returncode == 0

    assert invoke("migrate", "--dsn", db.url, *folder).returncode == 0
    assert invoke("verify", "--dsn", db.url, *folder).returncode == 0

    rolled_back = invoke("rollback", "--dsn", db.url, *folder)
    assert rolled_back.returncode == 0 and f"dropping {NEW_INDEX}" in rolled_back.stdout, rolled_back.stdout
    with db.connect() as conn:
        assert set(index_defs(conn)) == set(EXPECTED_INDEXDEFS)


# --- invoke new --dsn: the pair checked against a database before it is written (read-only) ---------

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
