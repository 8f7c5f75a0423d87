"""--json: stdout is exactly one JSON document following docs/report.schema.json, on success and on
failure; the human lines go to stderr; no password anywhere."""

import signal
import uuid

import jsonschema
import pytest

from live import Holder, Running, waiting_claim_build
from support import CLAIM_INDEX, EXPECTED_INDEXDEFS, REPORT_SCHEMA, invoke, json_report

SECRET = "Js0n-s3cret-pw"


def by_index(doc) -> dict:
    return {entry["index"]: entry for entry in doc["indexes"]}


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(REPORT_SCHEMA)


@pytest.fixture
def url_with_password(db, server):
    """The test database through a role with a password, as an application would connect."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    with db.connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{SECRET}'")
    yield server.url(db.name, user=role, password=SECRET)
    with db.connect() as conn:
        conn.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
        conn.execute(f"DROP ROLE {role}")


@pytest.mark.slow
def test_migrate_status_rollback_json(url_with_password):
    url = url_with_password
    pending = invoke("status", "--json", "--dsn", url)
    doc = json_report(pending)
    assert doc["command"] == "status" and doc["exit_code"] == 1 and doc["error"] is None
    assert {(e["action"], e["final_state"], e["applied"], e["size_bytes"]) for e in doc["indexes"]} == {
        ("pending", "missing", False, None)}
    assert doc["database"]["source"] == "--dsn" and doc["database"]["demo"] is False
    assert "***" in doc["database"]["name"]

    migrate = invoke("migrate", "--json", "--dsn", url)
    doc = json_report(migrate)
    assert doc["command"] == "migrate" and doc["exit_code"] == 0 and doc["retries"] == 0
    assert list(by_index(doc)) == list(EXPECTED_INDEXDEFS)
    for entry in doc["indexes"]:
        assert (entry["action"], entry["final_state"], entry["applied"], entry["retries"]) == ("built", "valid", True, 0)
        assert entry["size_bytes"] > 0 and entry["duration_s"] >= 0
    # the human lines went to stderr
    assert migrate.stderr.startswith("database: ") and "built claim_cust_date_outcome_cov in" in migrate.stderr
    # and their events are in the report, typed: each build starts and ends, in order
    built = [(e["event"], e["index"]) for e in doc["events"] if e["event"] in ("BuildStarted", "Built")]
    assert built == [(kind, index) for index in EXPECTED_INDEXDEFS for kind in ("BuildStarted", "Built")]

    again = json_report(invoke("migrate", "--json", "--dsn", url))
    assert {e["action"] for e in again["indexes"]} == {"unchanged"}

    applied = json_report(invoke("status", "--json", "--dsn", url))
    assert applied["exit_code"] == 0
    assert {(e["action"], e["final_state"]) for e in applied["indexes"]} == {("applied", "valid")}
    assert applied["overlaps"]  # see test_overlaps.py for what they hold

    rollback = json_report(invoke("rollback", "--json", "--all", "--yes", "--dsn", url))
    assert rollback["command"] == "rollback" and "overlaps" not in rollback
    assert list(by_index(rollback)) == list(reversed(EXPECTED_INDEXDEFS))
    assert {(e["action"], e["final_state"], e["applied"]) for e in rollback["indexes"]} == {
        ("dropped", "missing", False)}

    for result in (pending, migrate):
        assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("args, code, message", [
    (["migrate", "--dsn", "postgresql://u:Js0n-s3cret-pw@127.0.0.1:1/x"], 2, "cannot connect"),
    (["status", "--dsn", "host=/nonexistent password='Js0n-s3cret-pw"], 2, "malformed DSN"),
    (["rollback", "--dsn", "postgresql://u:Js0n-s3cret-pw@127.0.0.1:1/x"], 2, "cannot connect"),
])
def test_a_failed_run_still_prints_one_json_document(args, code, message):
    result = invoke(*args, "--json")
    doc = json_report(result)
    assert result.returncode == code and doc["indexes"] == []
    assert doc["error"].startswith(message)
    assert (doc["database"] is None) == (message == "malformed DSN")  # no database chosen then
    assert result.stderr.startswith(("database: ", "error: ")) and f"error: {message}" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_ctrl_c_with_json_reports_the_invalid_index_left(db):
    with db.connect() as conn:
        holder = Holder(db.connect())
        run = Running("migrate", "--dsn", db.url, "--json")
        waiting_claim_build(conn)
        run.process.send_signal(signal.SIGINT)
        result = run.finish(60)
        holder.release()
    assert result.returncode == 130, result.stdout + result.stderr
    doc = json_report(result)
    assert doc["exit_code"] == 130 and "interrupted" in doc["error"]
    left = by_index(doc)
    assert left[CLAIM_INDEX]["final_state"] == "INVALID", doc["indexes"]
    assert left[CLAIM_INDEX]["size_bytes"] is not None and left[CLAIM_INDEX]["applied"] is False


def test_verify_json_error_is_one_message(db):
    with db.connect() as conn:
        conn.execute("ALTER TABLE upstream_claimrecord RENAME TO claims_old")
        conn.execute("ALTER TABLE upstream_upload RENAME TO uploads_old")
    result = invoke("verify", "--dsn", db.url, "--json")
    doc = json_report(result)
    assert result.returncode == 2 and "\n" not in doc["error"], doc["error"]
    assert "upstream_claimrecord" in doc["error"] and "upstream_upload" in doc["error"]
