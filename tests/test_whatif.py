"""What-if plans before a build (`invoke whatif`, `invoke migrate --dry-run`): each pending index
created hypothetically by HypoPG, the catalogue's queries planned without and with it, nothing
built and nothing left in the session.

HypoPG on the test servers: PostgreSQL 18 (the embedded server) from scripts/hypopg-build (the
test server finds it in the cache, tests/support.py); 15 from Debian's postgresql-15-hypopg.
Without it these tests skip, unless UPSTREAM_INDEXES_HYPOPG=required (set by .ci/run), which makes
that a failure.
"""

import dataclasses
import os
from pathlib import Path

import pytest

from support import EXPECTED_INDEXDEFS, assert_none_built, invoke, json_report, missing
from topology import PGBOUNCER, assert_pool_clean, start_pooler, start_standby
from upstream_indexes import app_queries, migrations, whatif

NEW_INDEX = "claim_cust_payer_date_cov"  # as tests/test_new_index.py makes it
NEW_ARGS = ("new", NEW_INDEX, "--table", "upstream_claimrecord", "--columns", "customer_id, payer, decided_date desc",
            "--include", "id")
QUERIES = {index: [q.name for q in app_queries.load() if q.expected_index == index] for index in EXPECTED_INDEXDEFS}


@pytest.fixture
def hypopg_db(db):
    """The test database with CREATE EXTENSION hypopg (a superuser's step, as on a production server)."""
    with db.connect() as conn:
        if not conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()[0]:
            missing("HypoPG is not installed on this server: scripts/hypopg-build (PostgreSQL 18), apt-get install "
                    "postgresql-15-hypopg (15)", "UPSTREAM_INDEXES_HYPOPG")
        conn.execute("CREATE EXTENSION hypopg")
    return db


def events(result, kind: str) -> list[dict]:
    """The --json report's events of one kind (the report valid by docs/report.schema.json)."""
    assert "Traceback" not in result.stdout + result.stderr
    doc = json_report(result)
    return [e for e in doc["events"] if e["event"] == kind]


def assert_nothing_built(db) -> None:
    with db.connect() as conn:
        assert_none_built(conn)
        assert conn.execute("SELECT to_regclass('_yoyo_migration') IS NULL").fetchone()[0]


def test_dry_run_plans_each_pending_index_hypothetically(hypopg_db):
    result = invoke("migrate", "--dry-run", "--json", "--dsn", hypopg_db.url)
    assert result.returncode == 0, result.stderr
    planned = {e["plans"]["index"]: e["plans"] for e in events(result, "WhatIfPlanned")}
    assert list(planned) == list(EXPECTED_INDEXDEFS)
    for index, plans in planned.items():
        assert plans["problem"] is None and plans["size_bytes"] > 0
        assert [q["query"] for q in plans["queries"]] == QUERIES[index]
        for query in plans["queries"]:
            # With the index the plan reads it as the app needs: index-only, cheaper than without it.
            assert (query["uses_index"], query["node"]) == (True, "Index Only Scan"), query
            assert query["cost_after"] < query["cost_before"], query
            assert index not in query["plan_before"] and f"using {index}" in query["plan_after"], query
        assert f"what-if: {index} on {plans['table']}, estimated " in result.stderr
    [done] = events(result, "WhatIfDone")
    assert (done["used"], done["planned"], done["unproven"]) == (8, 8, [])
    lines = result.stderr.splitlines()
    assert lines.index("0001.claim_cust_date_outcome_cov: migrate builds claim_cust_date_outcome_cov on "
                       "upstream_claimrecord") < lines.index("dry run: nothing was changed")
    assert "  latest_claims (customer " in result.stderr and "Index Only Scan using claim_cust_date_outcome_cov, " \
        "estimated cost " in result.stderr
    assert_nothing_built(hypopg_db)


@pytest.mark.slow
def test_whatif_plans_only_the_pending_indexes(hypopg_db):
    assert invoke("migrate", "--to", "0002", "--dsn", hypopg_db.url).returncode == 0
    result = invoke("whatif", "--require-plan", "--dsn", hypopg_db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0001." not in result.stdout and "0002." not in result.stdout
    assert "0003.upload_cust_date_status_cov: what-if: upload_cust_date_status_cov on upstream_upload" in result.stdout
    for query in QUERIES["upload_cust_date_status_cov"]:
        assert f"  {query} (customer " in result.stdout
    assert result.stdout.rstrip().endswith("3 of 3 catalogue queries would use the pending index they expect")

    assert invoke("migrate", "--dsn", hypopg_db.url).returncode == 0
    nothing = invoke("whatif", "--dsn", hypopg_db.url)
    assert nothing.returncode == 0 and "what-if: no index is pending: nothing to plan" in nothing.stdout


@pytest.mark.slow
def test_whatif_of_a_fourth_index_made_with_new(hypopg_db, migrations_copy, tmp_path):
    made = invoke(*NEW_ARGS, "--migrations", str(migrations_copy))
    assert made.returncode == 0, made.stderr
    folder = ("--migrations", str(migrations_copy))

    # Not in the catalogue yet: estimated, nothing to plan; --require-plan wants a query to prove it.
    alone = invoke("whatif", "--dsn", hypopg_db.url, *folder)
    assert alone.returncode == 0, alone.stderr
    assert f"0004.{NEW_INDEX}: what-if: {NEW_INDEX} on upstream_claimrecord, estimated " in alone.stdout
    assert f"  no catalogue query expects it: nothing to plan (add one to verify/app_queries.sql with " \
           f"`-- expect: {NEW_INDEX}`)" in alone.stdout
    required = invoke("whatif", "--require-plan", "--dsn", hypopg_db.url, *folder)
    assert required.returncode == 1, required.stdout + required.stderr
    assert required.stderr.strip().splitlines() == [
        f"error: --require-plan: {NEW_INDEX}: no catalogue query expects it (add one to verify/app_queries.sql "
        f"with `-- expect: {NEW_INDEX}`)", "error: nothing was changed"]

    # The catalogue entry `invoke new` printed, added to a copy of the catalogue: planned, and used.
    entry = made.stdout.split("for example:\n\n", 1)[1].split("\nthen run", 1)[0]
    catalogue = tmp_path / "app_queries.sql"
    catalogue.write_text(app_queries.CATALOGUE.read_text() + "\n" + entry)
    result = invoke("whatif", "--require-plan", "--dsn", hypopg_db.url, *folder, "--catalogue", str(catalogue))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  claim_cust_payer_date_list (customer " in result.stdout
    assert f"Index Only Scan using {NEW_INDEX}, estimated cost " in result.stdout
    assert result.stdout.rstrip().endswith("9 of 9 catalogue queries would use the pending index they expect")
    assert_nothing_built(hypopg_db)


@pytest.mark.slow
def test_require_plan_refuses_an_index_the_planner_would_not_use(hypopg_db, migrations_copy):
    """The claim index with its key columns the wrong way round: no catalogue query can use it."""
    forward = migrations_copy / "0001.claim_cust_date_outcome_cov.sql"
    forward.write_text(forward.read_text().replace("(customer_id, decided_date DESC, outcome)",
                                                   "(outcome, decided_date DESC, customer_id)"))
    folder = ("--migrations", str(migrations_copy))
    shown = invoke("whatif", "--dsn", hypopg_db.url, *folder)
    assert shown.returncode == 0, shown.stderr
    assert "  latest_claims (customer " in shown.stdout and \
           "NOT using claim_cust_date_outcome_cov: the plan stays " in shown.stdout
    assert shown.stdout.rstrip().endswith("of 8 catalogue queries would use the pending index they expect; not "
                                          "shown to serve: claim_cust_date_outcome_cov")

    for command in (("whatif",), ("migrate", "--dry-run"), ("migrate",)):
        refused = invoke(*command, "--require-plan", "--dsn", hypopg_db.url, *folder)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        errors = refused.stderr.strip().splitlines()
        assert errors[-1] == "error: nothing was changed"
        assert errors[0].startswith("error: --require-plan: claim_cust_date_outcome_cov: latest_claims would not use "
                                    "it (its plan: ")
        assert "dry run: nothing was changed" not in refused.stdout
        assert_nothing_built(hypopg_db)


def test_without_hypopg_one_line_and_the_dry_run_goes_on(db):
    """No CREATE EXTENSION hypopg in this database: one line how, the rest of the dry run as it was."""
    result = invoke("migrate", "--dry-run", "--dsn", db.url)
    assert result.returncode == 0, result.stderr
    # Each migration's line, then every statement it would run, indented (issue 18).
    lines = [line for line in result.stdout.splitlines() if not line.startswith("    ")]
    skipped = [line for line in lines if line.startswith("what-if: ")]
    assert len(skipped) == 1 and skipped[0].startswith("what-if: skipped: HypoPG ")
    assert "CREATE EXTENSION hypopg" in skipped[0] and f"database {db.name}" in skipped[0]
    assert lines[1:4] == [f"{m.id}: migrate builds {m.index} on {m.table}" for m in migrations.load()]
    assert "    CREATE INDEX CONCURRENTLY claim_cust_date_outcome_cov ON upstream_claimrecord" in result.stdout
    assert lines[4:] == [skipped[0], "dry run: nothing was changed"]

    required = invoke("migrate", "--dry-run", "--require-plan", "--dsn", db.url)
    assert required.returncode == 2, required.stdout + required.stderr
    [error] = required.stderr.strip().splitlines()
    assert error.startswith("error: --require-plan: cannot plan the pending indexes: HypoPG ") and \
        error.endswith("; nothing was changed")
    assert_nothing_built(db)


def test_a_catalogue_that_is_not_there_or_not_one_is_one_line(tmp_path):
    missing_file = invoke("whatif", "--catalogue", str(tmp_path / "nope.sql"), "--dsn", "postgresql://x@127.0.0.1:1/x")
    assert (missing_file.returncode, missing_file.stderr.strip()) == (2, f"error: --catalogue: no such file: "
                                                                         f"{tmp_path / 'nope.sql'}")
    malformed = tmp_path / "app_queries.sql"
    malformed.write_text("-- name: latest_claims\nSELECT 1;\n")
    result = invoke("whatif", "--catalogue", str(malformed), "--dsn", "postgresql://x@127.0.0.1:1/x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["error: app_queries.sql: 1 `-- name:` headers but 0 well-formed "
                                                  "entries (-- name / -- expect / -- description, then PREPARE "
                                                  "<name>(bigint) AS ...;)"]


def test_the_install_line_names_debians_package_on_15_and_the_source_elsewhere():
    """The line of a server without HypoPG at all (tests/test_traffic.py has one from npm, 16) names
    the way for its major: production's 15 has Debian's package."""
    assert whatif.install_hint(150018) == "install Debian's postgresql-15-hypopg (apt-get install postgresql-15-hypopg)"
    assert whatif.install_hint(180006).startswith("build it from source against this server's pg_config")


def test_unique_and_partial_definitions_and_a_refused_one(hypopg_db, tmp_path):
    """Whatever a migration's CREATE INDEX says, HypoPG is given it as it is: a UNIQUE partial index
    is planned (issue 18's kinds), an index HypoPG cannot make is a line of its own; the session holds
    no hypothetical index afterwards, and its transactions are read-write again."""
    [upload] = [m for m in migrations.load() if m.table == "upstream_upload"]
    unique_partial = dataclasses.replace(
        upload, id="0004.upload_failed_file_uq", index="upload_failed_file_uq",
        definition="CREATE UNIQUE INDEX upload_failed_file_uq ON upstream_upload USING btree (customer_id, filename) "
                   "WHERE status = 'failed'")
    refused = dataclasses.replace(upload, id="0005.upload_status_gin", index="upload_status_gin",
                                  definition="CREATE INDEX upload_status_gin ON upstream_upload USING gin (status)")
    catalogue = tmp_path / "app_queries.sql"
    catalogue.write_text("-- name: failed_upload_by_file\n-- expect: upload_failed_file_uq\n"
                         "-- Upload check: has this customer's file failed before?\n"
                         "PREPARE failed_upload_by_file(bigint) AS\nSELECT customer_id, filename\nFROM upstream_upload\n"
                         "WHERE customer_id = $1 AND filename = 'claims.csv' AND status = 'failed';\n")
    with hypopg_db.connect() as conn:
        found = whatif.plans(conn, "public", [unique_partial, refused], app_queries.load(catalogue))
        assert conn.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone()[0] == 0
        assert conn.read_only is None
    [query] = found[0].queries
    assert found[0].problem is None and found[0].size_bytes > 0
    assert query.uses_index and query.node in ("Index Only Scan", "Index Scan"), query
    assert found[1].problem and "gin" in found[1].problem and found[1].size_bytes is None
    assert found[1].unproven == [f"upload_status_gin: HypoPG could not create it ({found[1].problem})"]


@pytest.mark.skipif(not Path(PGBOUNCER).exists() and os.environ.get("CI") != "true",
                    reason="PgBouncer is not installed (apt-get install pgbouncer; .ci/run does)")
@pytest.mark.topology
def test_whatif_through_a_transaction_pooler_leaves_nothing(hypopg_db, server, tmp_path):
    """Read-only and in one transaction: it works through a transaction pool, and no server connection
    of the pool keeps a hypothetical index, a setting or a prepared statement."""
    pooler = start_pooler(server, tmp_path / "pgbouncer", "transaction", pool_size=2)
    try:
        result = invoke("whatif", "--require-plan", "--dsn", pooler.conninfo(hypopg_db.name))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "8 of 8 catalogue queries would use the pending index they expect" in result.stdout
        assert_pool_clean(pooler, hypopg_db, 2)
    finally:
        pooler.stop()


@pytest.mark.topology
@pytest.mark.slow
def test_whatif_on_a_hot_standby(hypopg_db, server, tmp_path):
    """The what-if on a standby, where a DBA plans without touching the primary: HypoPG makes up its
    hypothetical indexes' object ids there; everything else only reads."""
    standby = start_standby(server, tmp_path / "standby")
    try:
        result = invoke("whatif", "--require-plan", "--dsn", standby.conninfo(hypopg_db.name))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "8 of 8 catalogue queries would use the pending index they expect" in result.stdout
    finally:
        standby.stop()
