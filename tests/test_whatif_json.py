"""`invoke whatif --json`: one JSON document (docs/report.schema.json, docs/json.md) carrying each
pending index as HypoPG planned it (its definition, estimated size, and per query the plan node,
index and cost before and after), the missing-HypoPG line as a warning (with --require-plan the
error, exit 2), a --require-plan refusal with its plans, and a usage error as one document too."""

import pytest

from support import EXPECTED_INDEXDEFS, invoke
from test_json_reports import report
from test_whatif import QUERIES, assert_nothing_built, hypopg_db  # noqa: F401 (a fixture)
from upstream_indexes import migrations

MIGRATIONS = {m.index: m for m in migrations.load()}


def test_whatif_json_carries_each_index_and_query(hypopg_db):
    result = invoke("whatif", "--json", "--dsn", hypopg_db.url)
    doc = report(result)  # one document, valid, its exit code the process's
    assert (result.returncode, doc["command"], doc["error"], doc["warning"]) == (0, "whatif", None, None)
    assert doc["hypopg"] and (doc["planned"], doc["used"], doc["unproven"]) == (8, 8, [])
    assert [plans["index"] for plans in doc["plans"]] == list(EXPECTED_INDEXDEFS)
    for plans in doc["plans"]:
        m = MIGRATIONS[plans["index"]]
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
    doc = report(invoke("whatif", "--json", "--dsn", hypopg_db.url))
    assert (doc["exit_code"], doc["hypopg"], doc["warning"], doc["planned"], doc["plans"]) == (0, None, None, 0, [])


def test_a_refused_plan_still_carries_its_plans(hypopg_db, migrations_copy):
    """--require-plan's exit 1: the document says why (error) and shows what the planner would do."""
    forward = migrations_copy / "0001.claim_cust_date_outcome_cov.sql"
    forward.write_text(forward.read_text().replace("(customer_id, decided_date DESC, outcome)",
                                                   "(outcome, decided_date DESC, customer_id)"))
    result = invoke("whatif", "--json", "--require-plan", "--dsn", hypopg_db.url, "--migrations", str(migrations_copy))
    doc = report(result)
    assert result.returncode == 1
    assert doc["error"].startswith("--require-plan: claim_cust_date_outcome_cov: latest_claims would not use it")
    assert doc["error"].endswith("; nothing was changed")
    assert doc["unproven"] == ["claim_cust_date_outcome_cov"] and doc["used"] < doc["planned"] == 8
    claims = doc["plans"][0]
    assert "(outcome, decided_date DESC, customer_id)" in claims["definition"]
    latest = next(q for q in claims["queries"] if q["query"] == "latest_claims")
    assert latest["uses_index"] is False and latest["after"]["index"] != "claim_cust_date_outcome_cov"
    assert result.stderr.strip().splitlines()[-1] == "error: nothing was changed"
    assert_nothing_built(hypopg_db)


def test_without_hypopg_a_warning_and_with_require_plan_the_error(db):
    shown = invoke("whatif", "--json", "--dsn", db.url)
    doc = report(shown)
    assert (shown.returncode, doc["error"], doc["hypopg"], doc["plans"]) == (0, None, None, [])
    assert doc["warning"].startswith("HypoPG ") and "CREATE EXTENSION hypopg" in doc["warning"]
    assert f"what-if: skipped: {doc['warning']}" in shown.stderr

    required = invoke("whatif", "--json", "--require-plan", "--dsn", db.url)
    doc = report(required)
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
    doc = report(result)
    assert result.returncode == 2 and doc["command"] == "whatif" and doc["database"] is None
    assert message in doc["error"] and doc["plans"] == []
    assert result.stderr.splitlines() == [f"error: {doc['error']}" + (" (`invoke --list`, `invoke --help TASK`)"
                                                                       if args[0] in ("--frob", "--dsn") else "")]
