"""What-if plans before a build (`invoke whatif`, `invoke migrate --dry-run`): each pending index
created hypothetically by HypoPG, the catalogue's queries planned without and with it, nothing
built and nothing left in the session; `invoke whatif --json` (one document, also for a refusal and
a usage error); the what-if under --target and on a partitioned table.

HypoPG on the test servers: PostgreSQL 18 (the embedded server) from scripts/hypopg-build (the
test server finds it in the cache, tests/support.py); 15 from Debian's postgresql-15-hypopg.
Without it these tests skip, unless UPSTREAM_INDEXES_HYPOPG=required (set by .ci/run), which makes
that a failure.
"""

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from support import (CLAIM_INDEX, EXPECTED_INDEXDEFS, TEST_SCALE, assert_none_built, invoke, json_report, missing,
                     scratch_database, settings_env)
from kinds import EXAMPLES, examples, remove_drift_duplicates, write
from topology import PGBOUNCER, assert_pool_clean, start_pooler, start_standby
from upstream_indexes import app_queries, demo, migrations, whatif

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
            before, after = query["before"], query["after"]
            assert (query["uses_index"], after["node"], after["index"]) == (True, "Index Only Scan", index), query
            assert after["cost"] < before["cost"], query
            assert before["index"] != index and index not in before["scans"], query
            assert f"using {index}" in after["scans"], query
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


def reverse_claim_keys(folder: Path) -> None:
    """The claim index with its key columns the wrong way round: no catalogue query can use it."""
    forward = folder / f"0001.{CLAIM_INDEX}.sql"
    forward.write_text(forward.read_text().replace("(customer_id, decided_date DESC, outcome)",
                                                   "(outcome, decided_date DESC, customer_id)"))


@pytest.mark.slow
def test_require_plan_refuses_an_index_the_planner_would_not_use(hypopg_db, migrations_copy):
    """The claim index with its key columns the wrong way round: no catalogue query can use it."""
    reverse_claim_keys(migrations_copy)
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
    assert query.uses_index and query.after.node in ("Index Only Scan", "Index Scan"), query
    assert found[1].problem and "gin" in found[1].problem and found[1].size_bytes is None
    assert found[1].unproven == [f"upload_status_gin: HypoPG could not create it ({found[1].problem})"]


# The migration kinds (issue 18): examples/next-migrations after the three covering indexes

CHECK_LINE = "0004.upload_status_valid: no what-if: a CHECK constraint builds no index"
PROMOTION_LINE = ("0006.drift_event_unique: no what-if: a UNIQUE constraint USING INDEX builds no index (it takes "
                  "drift_event_unique as built)")
UNIQUE_DEFINITION = ("CREATE UNIQUE INDEX drift_event_unique ON upstream_driftevent USING btree (customer_id, "
                     "report_run_id, payer, cpt_group, drift_type)")


def catalogue_entry(name: str, index: str, select: str) -> str:
    """One app_queries.sql entry expecting `index` (its SELECT reads $1 as the customer id)."""
    return f"\n-- name: {name}\n-- expect: {index}\n-- A test's query.\nPREPARE {name}(bigint) AS\n{select};\n"


def kinds_pending(db) -> None:
    """The three covering indexes built, the demo's duplicate drift-event keys merged (migrate's data check
    for 0005 asks it): the next migrations are what migrate would do."""
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    with db.connect() as conn:
        remove_drift_duplicates(conn)


def assert_kinds_not_applied(db) -> None:
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname IN ('upload_status_valid', "
                            "'drift_event_unique', 'drift_run_fk')").fetchone()[0] == 0
        assert conn.execute("SELECT to_regclass('drift_event_unique') IS NULL AND "
                            "to_regclass('upload_processing_cov') IS NULL").fetchone()[0]


def test_whatif_of_the_next_migrations_plans_the_unique_and_partial_indexes(hypopg_db):
    """The unique and the partial index created hypothetically as their files write them (without
    CONCURRENTLY); the partial one planned for the folder's own catalogue query (whose WHERE implies its
    predicate) and sized by the rows that predicate keeps; the CHECK and the promotion one line each, in
    migration order. --require-plan passes: a unique index needs no query (as for verify), a constraint
    nothing."""
    kinds_pending(hypopg_db)
    folder = ("--migrations", str(EXAMPLES))
    result = invoke("whatif", "--dsn", hypopg_db.url, *folder)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()[1:]  # after the database line
    assert lines[0] == CHECK_LINE
    assert lines[1].startswith("0005.drift_event_unique: what-if: drift_event_unique on upstream_driftevent, "
                               "estimated ") and lines[1].endswith(" (HypoPG)")
    assert lines[2] == ("  no catalogue query expects it: a unique index enforces its key, it need serve no query "
                        "(as for verify)")
    assert lines[3] == PROMOTION_LINE
    assert lines[4].startswith("0007.upload_processing_cov: what-if: upload_processing_cov on upstream_upload, "
                               "estimated ")
    assert lines[5].startswith("  uploads_in_progress (customer ") and \
        "): Index Only Scan using upload_processing_cov, estimated cost " in lines[5]
    assert len(lines) == 7 and lines[6].endswith("1 of 1 catalogue queries would use the pending index they expect")

    required = invoke("whatif", "--json", "--require-plan", "--dsn", hypopg_db.url, *folder)
    doc = json_report(required)
    assert (required.returncode, doc["error"], doc["unproven"], doc["planned"], doc["used"]) == (0, None, [], 1, 1)
    assert doc["constraints"] == [
        {"migration_id": "0004.upload_status_valid", "constraint": "check", "index": None},
        {"migration_id": "0006.drift_event_unique", "constraint": "unique", "index": "drift_event_unique"}]
    unique, partial = doc["plans"]
    assert (unique["definition"], unique["unique"], unique["problem"], unique["queries"]) == (
        UNIQUE_DEFINITION, True, None, [])
    assert partial["definition"] == ("CREATE INDEX upload_processing_cov ON upstream_upload USING btree (customer_id, "
                                     "uploaded_at DESC) INCLUDE (id) WHERE status = 'processing'")
    assert (partial["unique"], partial["problem"]) == (False, None)
    [query] = partial["queries"]
    assert (query["query"], query["uses_index"], query["after"]["node"], query["after"]["index"]) == (
        "uploads_in_progress", True, "Index Only Scan", "upload_processing_cov"), query
    assert query["before"]["index"] == "upload_cust_date_status_cov" and query["after"]["cost"] < query["before"]["cost"]
    with hypopg_db.connect() as conn:
        full = conn.execute("SELECT pg_relation_size('upload_cust_date_status_cov')").fetchone()[0]
    # HypoPG sizes the partial index by the uploads its WHERE keeps (3 % of them): below the full index of
    # the same table, built; the unique one, on the whole table, above it.
    assert 0 < partial["size_bytes"] < full < unique["size_bytes"], (partial, full, unique)
    assert_kinds_not_applied(hypopg_db)


def test_dry_run_of_the_kinds_says_each_constraint_and_plans_each_index(hypopg_db, tmp_path):
    """migrate --dry-run --migrations: a WhatIfNoIndex event and line for each constraint (the examples'
    CHECK and promotion, and a foreign key), a WhatIfPlanned for each index, in migration order; a query
    expecting the unique index planned with it; --require-plan passes."""
    kinds_pending(hypopg_db)
    folder = shutil.copytree(EXAMPLES, tmp_path / "next")
    write(folder, "0008.drift_run_fk",
          "ALTER TABLE upstream_driftevent ADD CONSTRAINT drift_run_fk FOREIGN KEY (report_run_id) REFERENCES "
          "upstream_reportrun (id) NOT VALID;\nALTER TABLE upstream_driftevent VALIDATE CONSTRAINT drift_run_fk;\n",
          "ALTER TABLE upstream_driftevent DROP CONSTRAINT IF EXISTS drift_run_fk;\n")
    with (folder / "app_queries.sql").open("a") as catalogue:
        catalogue.write(catalogue_entry("drift_event_by_key", "drift_event_unique",
                                        "SELECT id\nFROM upstream_driftevent\nWHERE customer_id = $1 AND report_run_id = 1 "
                                        "AND payer = 'Payer 1' AND cpt_group = 'LAB' AND drift_type = 'PAYMENT_AMOUNT'"))
    result = invoke("migrate", "--dry-run", "--require-plan", "--json", "--dsn", hypopg_db.url,
                    "--migrations", str(folder))
    assert result.returncode == 0, result.stderr
    whatif_events = [e for e in json_report(result)["events"] if e["event"].startswith("WhatIf")]
    assert [(e["event"], e.get("migration_id") or e.get("plans", {}).get("migration_id")) for e in whatif_events] == [
        ("WhatIfNoIndex", "0004.upload_status_valid"), ("WhatIfPlanned", "0005.drift_event_unique"),
        ("WhatIfNoIndex", "0006.drift_event_unique"), ("WhatIfPlanned", "0007.upload_processing_cov"),
        ("WhatIfNoIndex", "0008.drift_run_fk"), ("WhatIfDone", None)]
    assert (whatif_events[4]["constraint"], whatif_events[4]["index"]) == ("foreign key", None)
    [by_key] = whatif_events[1]["plans"]["queries"]
    assert by_key["uses_index"] and by_key["after"]["index"] == "drift_event_unique", by_key
    assert (whatif_events[-1]["used"], whatif_events[-1]["planned"], whatif_events[-1]["unproven"]) == (2, 2, [])
    for line in (CHECK_LINE, PROMOTION_LINE, "0008.drift_run_fk: no what-if: a FOREIGN KEY constraint builds no index",
                 "  drift_event_by_key (customer "):
        assert sum(shown.startswith(line) for shown in result.stderr.splitlines()) == 1, line
    assert "dry run: nothing was changed" in result.stderr
    assert_kinds_not_applied(hypopg_db)


def test_constraints_alone_need_no_hypopg_to_pass_require_plan(db, tmp_path):
    """A folder whose pending migrations are constraints only: nothing to plan, so HypoPG (not created in
    this database) is not asked for; one line for the CHECK, exit 0 under --require-plan."""
    folder = examples(tmp_path / "next", "0004")
    result = invoke("whatif", "--require-plan", "--dsn", db.url, "--migrations", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[1:] == [
        CHECK_LINE, "what-if: no index is pending: nothing to plan (`invoke verify` proves the built ones)"]


@pytest.mark.slow
def test_require_plan_still_refuses_an_unproven_unique_or_partial_index(hypopg_db, tmp_path):
    """The constraints ask nothing, but an index a query expects must be shown used: the partial index by
    a query whose WHERE does not imply its predicate ('failed' uploads, not 'processing'), the unique
    index by a query it cannot serve; whatif, migrate --dry-run and migrate each exit 1, one line per
    index, nothing changed (not the CHECK either)."""
    kinds_pending(hypopg_db)
    folder = shutil.copytree(EXAMPLES, tmp_path / "next")
    catalogue = folder / "app_queries.sql"
    catalogue.write_text(catalogue.read_text().replace("status = 'processing'", "status = 'failed'") + catalogue_entry(
        "drift_events_by_date", "drift_event_unique",
        "SELECT id, customer_id, created_at\nFROM upstream_driftevent\nWHERE customer_id = $1\nORDER BY created_at DESC\n"
        "LIMIT 10"))
    for command in (("whatif",), ("migrate", "--dry-run"), ("migrate",)):
        refused = invoke(*command, "--require-plan", "--dsn", hypopg_db.url, "--migrations", str(folder))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        errors = refused.stderr.strip().splitlines()
        assert len(errors) == 3 and errors[-1] == "error: nothing was changed", errors
        assert errors[0].startswith("error: --require-plan: drift_event_unique: drift_events_by_date would not use "
                                    "it (its plan: ")
        assert errors[1].startswith("error: --require-plan: upload_processing_cov: uploads_in_progress would not use "
                                    "it (its plan: ")
        assert_kinds_not_applied(hypopg_db)


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


# invoke whatif --json (docs/json.md)

def test_whatif_json_carries_each_index_and_query(hypopg_db):
    """Per index its definition and HypoPG's estimated size; per query the plan node, index, scans and cost
    before and after, and whether it uses its index."""
    files = {m.index: m for m in migrations.load()}
    result = invoke("whatif", "--json", "--dsn", hypopg_db.url)
    doc = json_report(result)  # one document, valid, its exit code the process's
    assert (result.returncode, doc["command"], doc["error"], doc["warning"]) == (0, "whatif", None, None)
    assert doc["hypopg"] and (doc["planned"], doc["used"], doc["unproven"]) == (8, 8, [])
    assert [plans["index"] for plans in doc["plans"]] == list(EXPECTED_INDEXDEFS)
    for plans in doc["plans"]:
        m = files[plans["index"]]
        assert (plans["migration_id"], plans["table"], plans["definition"]) == (m.id, m.table, m.definition)
        assert "CONCURRENTLY" not in plans["definition"]
        assert plans["size_bytes"] > 0 and plans["partitions"] is None and plans["problem"] is None
        assert [q["query"] for q in plans["queries"]] == QUERIES[m.index]
        for query in plans["queries"]:
            before, after = query["before"], query["after"]
            assert query["uses_index"] is True and query["customer"] > 0
            assert (after["node"], after["index"]) == ("Index Only Scan", m.index), query
            assert before["node"] and before["index"] != m.index and m.index not in before["scans"], query
            assert after["cost"] < before["cost"], query
    # The human lines went to stderr, as for the other commands.
    assert result.stderr.startswith("database: ") and "8 of 8 catalogue queries would use" in result.stderr


def test_nothing_pending_is_an_empty_document(hypopg_db):
    assert invoke("migrate", "--dsn", hypopg_db.url).returncode == 0
    doc = json_report(invoke("whatif", "--json", "--dsn", hypopg_db.url))
    assert (doc["exit_code"], doc["hypopg"], doc["warning"], doc["planned"], doc["plans"]) == (0, None, None, 0, [])


def test_a_refused_plan_still_carries_its_plans(hypopg_db, migrations_copy):
    """--require-plan's exit 1: the document says why (error) and shows what the planner would do."""
    reverse_claim_keys(migrations_copy)
    result = invoke("whatif", "--json", "--require-plan", "--dsn", hypopg_db.url, "--migrations", str(migrations_copy))
    doc = json_report(result)
    assert result.returncode == 1
    assert doc["error"].startswith(f"--require-plan: {CLAIM_INDEX}: latest_claims would not use it")
    assert doc["error"].endswith("; nothing was changed")
    assert doc["unproven"] == [CLAIM_INDEX] and doc["used"] < doc["planned"] == 8
    claims = doc["plans"][0]
    assert "(outcome, decided_date DESC, customer_id)" in claims["definition"]
    latest = next(q for q in claims["queries"] if q["query"] == "latest_claims")
    assert latest["uses_index"] is False and latest["after"]["index"] != CLAIM_INDEX
    assert result.stderr.strip().splitlines()[-1] == "error: nothing was changed"
    assert_nothing_built(hypopg_db)


def test_without_hypopg_a_warning_and_with_require_plan_the_error(db):
    """No CREATE EXTENSION hypopg: the one line is the document's warning (exit 0); --require-plan makes it
    the error (exit 2)."""
    shown = invoke("whatif", "--json", "--dsn", db.url)
    doc = json_report(shown)
    assert (shown.returncode, doc["error"], doc["hypopg"], doc["plans"]) == (0, None, None, [])
    assert doc["warning"].startswith("HypoPG ") and "CREATE EXTENSION hypopg" in doc["warning"]
    assert f"what-if: skipped: {doc['warning']}" in shown.stderr

    required = invoke("whatif", "--json", "--require-plan", "--dsn", db.url)
    doc = json_report(required)
    assert required.returncode == 2
    assert doc["error"] == f"--require-plan: cannot plan the pending indexes: {doc['warning']}; nothing was changed"
    assert required.stderr.strip().splitlines()[-1] == f"error: {doc['error']}"


@pytest.mark.parametrize("args, message", [
    (["--frob"], "unknown task or flag '--frob'"),
    (["--dsn"], "--dsn needs a value"),
    (["--catalogue", "/nonexistent/app_queries.sql"], "--catalogue: no such file: /nonexistent/app_queries.sql"),
    (["--migrations", "/nonexistent"], "--migrations: no such folder"),
], ids=["unknown flag", "flag without value", "no such catalogue", "no such folder"])
def test_a_usage_error_under_json_is_one_document(args, message):
    result = invoke("whatif", "--json", *args)
    doc = json_report(result)
    assert result.returncode == 2 and doc["command"] == "whatif" and doc["database"] is None
    assert message in doc["error"] and doc["plans"] == []
    assert result.stderr.splitlines() == [f"error: {doc['error']}" + (" (`invoke --list`, `invoke --help TASK`)"
                                                                       if args[0] in ("--frob", "--dsn") else "")]


# The what-if under the runner's other modes

def test_dry_run_json_refused_by_require_plan_lists_what_it_would_do(hypopg_db, migrations_copy):
    """The document of a dry run --require-plan refuses: the error, each pending migration as the dry
    run saw it, the what-if's events (their plans valid by the schema's whatif_index), no DryRunDone."""
    reverse_claim_keys(migrations_copy)
    result = invoke("migrate", "--dry-run", "--require-plan", "--json", "--dsn", hypopg_db.url,
                    "--migrations", str(migrations_copy))
    doc = json_report(result)
    assert result.returncode == 1 and doc["error"].startswith(f"--require-plan: {CLAIM_INDEX}: latest_claims would "
                                                              "not use it")
    assert [(e["migration"], e["action"], e["final_state"]) for e in doc["indexes"]] == [
        (m.id, "pending", "missing") for m in migrations.load(migrations_copy)]
    kinds = [e["event"] for e in doc["events"]]
    assert kinds.count("WhatIfPlanned") == 3 and "WhatIfDone" in kinds and "DryRunDone" not in kinds
    [claims] = [e["plans"] for e in doc["events"]
                if e["event"] == "WhatIfPlanned" and e["plans"]["index"] == CLAIM_INDEX]
    assert not all(q["uses_index"] for q in claims["queries"])
    assert_nothing_built(hypopg_db)


def test_whatif_of_a_named_target_uses_its_database_and_folder(hypopg_db, migrations_copy, tmp_path):
    """--target staging: its dsn-env's database and its migrations folder (a fourth index `invoke new`
    wrote there), under --json too; an unknown target is one document, exit 2."""
    assert invoke(*NEW_ARGS, "--migrations", str(migrations_copy)).returncode == 0
    env = settings_env(tmp_path, '[tool.upstream-indexes.targets.staging]\ndsn-env = "STAGING_DATABASE_URL"\n'
                       f'migrations = "{migrations_copy.name}"', STAGING_DATABASE_URL=hypopg_db.url,
                       DATABASE_URL="postgresql://nobody@127.0.0.1:1/x")
    result = invoke("whatif", "--json", "--target", "staging", env=env)
    doc = json_report(result)
    assert result.returncode == 0, result.stderr
    assert doc["database"]["source"] == "STAGING_DATABASE_URL, --target staging"
    assert [p["index"] for p in doc["plans"]][-1] == NEW_INDEX and len(doc["plans"]) == 4

    unknown = invoke("whatif", "--json", "--target", "qa", env=env)
    doc = json_report(unknown)
    assert unknown.returncode == 2 and doc["database"] is None and doc["plans"] == []
    assert doc["error"].startswith("--target qa: no such target in ")


@pytest.fixture(scope="module")
def unanalyzed_partitioned_template(server) -> str:
    """The partitioned demo as production has it: the partitions analyzed (autovacuum does that), their
    parent never (autovacuum never analyzes a partitioned table): its pg_class.reltuples is -1."""
    name = server.create_database()
    with server.connect(name) as conn:
        conn.execute("SET synchronous_commit = on")  # as demo.load: the visibility map for index-only scans
        with conn.transaction():
            conn.execute(demo.schema_sql())
            conn.execute(demo.partitioned_sql())
            conn.execute("SELECT set_config('demo.scale', %s, true)", [str(TEST_SCALE)])
            conn.execute(demo.seed_sql())
            conn.execute(demo.indexes_sql())
        for (table,) in conn.execute("SELECT oid::regclass::text FROM pg_class WHERE relkind = 'r' AND "
                                     "relnamespace = 'public'::regnamespace").fetchall():
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("CREATE EXTENSION hypopg")
        assert conn.execute("SELECT reltuples FROM pg_class WHERE oid = 'upstream_claimrecord'::regclass"
                            ).fetchone()[0] < 0
    yield name
    server.drop_database(name)


@pytest.mark.slow
def test_whatif_on_a_partitioned_table_sizes_the_partitions_indexes(server, unanalyzed_partitioned_template):
    """HypoPG takes the parent's CREATE INDEX and plans each partition with it; its size is the sum of
    its estimates for the partitions' indexes (the parent's own reads the parent's reltuples: 8 kB
    here), held against what migrate then builds. The lines count partitions, not list them."""
    with scratch_database(server, unanalyzed_partitioned_template) as pdb:
        with pdb.connect() as conn:
            partitions = conn.execute("SELECT count(*) FROM pg_inherits "
                                      "WHERE inhparent = 'upstream_claimrecord'::regclass").fetchone()[0]
        result = invoke("whatif", "--json", "--require-plan", "--dsn", pdb.url)
        doc = json_report(result)
        assert result.returncode == 0, result.stderr
        claims = doc["plans"][0]
        assert (claims["index"], claims["partitions"], claims["problem"]) == (CLAIM_INDEX, partitions, None)
        for query in claims["queries"]:
            assert query["uses_index"] and query["after"]["index"] == CLAIM_INDEX, query
            assert f"using {CLAIM_INDEX} on " in query["after"]["scans"] and " partitions of upstream_claimrecord" \
                in query["after"]["scans"], query
        assert f"estimated {claims['size_bytes'] / 1024 / 1024:.1f} MB over {partitions} partitions (HypoPG)" \
            in result.stderr
        assert "upstream_claimrecord_20" not in result.stderr  # no partition listed by name
        assert max(len(line) for line in result.stderr.splitlines()) < 400

        assert invoke("migrate", "--dsn", pdb.url).returncode == 0
        built = json_report(invoke("status", "--json", "--dsn", pdb.url))["indexes"][0]
        assert built["index"] == CLAIM_INDEX
        # HypoPG's estimates run high (docs/proof.md: about twice); the parent's own said 8 kB.
        assert built["size_bytes"] <= claims["size_bytes"] <= 3 * built["size_bytes"], (claims, built)
