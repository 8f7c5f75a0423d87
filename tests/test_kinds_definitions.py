"""Definitions compared as PostgreSQL canonicalises them (issue 18, point 2): an index or constraint
of ours written in another spelling (the catalog's own, Django's quoting, explicit defaults) is
ours for status, migrate, verify and the DBA's psql alike; a different one is foreign for all of
them, with what differs."""

import json

import pytest

from kinds import EXAMPLE_IDS, next_migrations, psql_verify, remove_drift_duplicates
from support import invoke

pytestmark = pytest.mark.slow  # each test migrates a database, some several times

SPELLED_OTHERWISE = [
    # The catalog's spelling of 0004, 0005 (explicit defaults) and 0007, Django's quoting.
    'ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid CHECK ((("status")::text = ANY '
    "((ARRAY['processing'::character varying, 'success'::character varying, 'failed'::character varying, "
    "'partial'::character varying])::text[])))",
    'CREATE UNIQUE INDEX drift_event_unique ON public.upstream_driftevent USING btree ("customer_id" ASC NULLS LAST, '
    'report_run_id, payer COLLATE "default" text_ops, cpt_group, drift_type)',
    "ALTER TABLE upstream_driftevent ADD CONSTRAINT drift_event_unique UNIQUE USING INDEX drift_event_unique",
    'CREATE INDEX upload_processing_cov ON upstream_upload ("customer_id", "uploaded_at" DESC NULLS FIRST) '
    "INCLUDE (id) WHERE ((status)::text = 'processing'::text)",
]


@pytest.fixture
def folder(tmp_path):
    return next_migrations(tmp_path / "migrations")


def test_ours_in_any_spelling(db, server, folder, tmp_path):
    with db.connect() as conn:
        remove_drift_duplicates(conn)
        for statement in SPELLED_OTHERWISE:
            conn.execute(statement)
    status = json.loads(invoke("status", "--json", "--dsn", db.url, "--migrations", str(folder)).stdout)
    assert {i["migration"]: i["final_state"] for i in status["indexes"] if i["migration"] in EXAMPLE_IDS} == {
        i: "valid" for i in EXAMPLE_IDS}
    assert status["exit_code"] == 1  # migrate has work to do (the covering indexes, the records); nothing foreign
    migrated = invoke("migrate", "--dsn", db.url, "--migrations", str(folder))
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    for migration_id in EXAMPLE_IDS:
        assert f"{migration_id}: " in migrated.stdout
        assert f"{migration_id}: building" not in migrated.stdout
    verified = invoke("verify", "--strict", "--dsn", db.url, "--migrations", str(folder))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert ("pass  constraint upload_status_valid: on upstream_upload, validated, once, definition CHECK (status IN "
            "('processing', 'success', 'failed', 'partial'))") in verified.stdout
    assert ("pass  constraint drift_event_unique: on upstream_driftevent, validated, once, definition UNIQUE USING "
            "INDEX drift_event_unique (index drift_event_unique, valid)") in verified.stdout
    assert "pass  index upload_processing_cov: on upstream_upload, valid, ready and live, definition" in verified.stdout
    assert "pass  plan uploads_in_progress: Index Only Scan on upload_processing_cov" in verified.stdout
    by_psql = psql_verify(server, db, folder, tmp_path)
    assert by_psql.returncode == 0, by_psql.stderr
    assert "WARNING" not in by_psql.stderr


FOREIGN = [
    ("CREATE INDEX upload_processing_cov ON upstream_upload (customer_id, uploaded_at DESC) INCLUDE (id) "
     "WHERE status = 'failed'",
     "upload_processing_cov", "WHERE: found ((status)::text = 'failed'::text), ours status = 'processing'"),
    ("ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid CHECK (status IN ('processing', 'success')) "
     "NOT VALID",
     "upload_status_valid", "CHECK (((status)::text = ANY ((ARRAY['processing'::character varying, "
                            "'success'::character varying])::text[]))), ours CHECK (status IN ('processing', 'success', "
                            "'failed', 'partial'))"),
    ("CREATE INDEX drift_event_unique ON upstream_driftevent (customer_id, report_run_id, payer, cpt_group, "
     "lower(drift_type))", "drift_event_unique",
     "not unique, ours is unique; key 5: found lower((drift_type)::text), ours drift_type"),
]


@pytest.mark.parametrize("statement, name, difference", FOREIGN)
def test_another_definition_is_foreign_for_all(db, server, folder, tmp_path, statement, name, difference):
    with db.connect() as conn:
        conn.execute(statement)
    status = invoke("status", "--dsn", db.url, "--migrations", str(folder))
    assert status.returncode & 4, status.stdout
    assert f"{name} exists with another definition" in status.stdout and difference in status.stdout
    migrated = invoke("migrate", "--dsn", db.url, "--migrations", str(folder))
    assert migrated.returncode == 2 and difference in migrated.stderr, migrated.stderr
    assert "nothing was changed" in migrated.stderr
    verified = invoke("verify", "--dsn", db.url, "--migrations", str(folder))
    assert verified.returncode == 1 and difference in verified.stdout, verified.stdout
    by_psql = psql_verify(server, db, folder, tmp_path, ["indexes.sql" if statement.startswith("CREATE") else "constraints.sql"])
    assert by_psql.returncode == 3 and difference in by_psql.stderr, by_psql.stderr
