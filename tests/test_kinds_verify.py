"""verify proves each kind (issue 18, points 6 and 8), through invoke and psql: a partial index by the
catalogue queries whose WHERE implies its predicate (and fails one that cannot use it); a constraint
that exists once, validated, with our definition (and fails one NOT VALID, or checked twice under
another name); the redundancy report, in which a partial index makes no full index redundant and
a unique index or a constraint's is never reported."""

import json

import pytest

from kinds import next_migrations, psql_verify, remove_drift_duplicates
from support import invoke

pytestmark = pytest.mark.slow  # each test migrates a database, some several times


@pytest.fixture
def migrated(db, tmp_path):
    folder = next_migrations(tmp_path / "migrations")
    with db.connect() as conn:
        remove_drift_duplicates(conn)
    result = invoke("migrate", "--dsn", db.url, "--migrations", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def test_a_partial_index_needs_a_query_whose_where_implies_its_predicate(db, server, migrated, tmp_path):
    catalogue = migrated / "app_queries.sql"
    catalogue.write_text(catalogue.read_text().replace("AND status = 'processing'", "AND status = 'failed'"))
    verified = invoke("verify", "--dsn", db.url, "--migrations", str(migrated))
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert "fail  plan uploads_in_progress: expected an Index Only Scan on upload_processing_cov, found " \
        in verified.stdout
    by_psql = psql_verify(server, db, migrated, tmp_path, ["plans.sql"])
    assert by_psql.returncode == 3 and "fail: plan uploads_in_progress: expected an Index Only Scan on " \
        "upload_processing_cov" in by_psql.stderr


@pytest.mark.parametrize("statements, failure", [
    (["ALTER TABLE upstream_upload DROP CONSTRAINT upload_status_valid",
      "ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid CHECK (status IN ('processing', 'success', "
      "'failed', 'partial')) NOT VALID"],
     "constraint upload_status_valid: expected validated, found NOT VALID: the rows written before it was added are "
     "not checked (`invoke migrate` validates it)"),
    (["ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_check CHECK (status::text = ANY (ARRAY['processing', "
      "'success', 'failed', 'partial']))"],
     "constraint upload_status_valid: expected once, found the same check constraint also as upload_status_check"),
    (["ALTER TABLE upstream_driftevent DROP CONSTRAINT drift_event_unique"],
     "constraint drift_event_unique: expected on upstream_driftevent, found no constraint of this name there"),
])
def test_a_constraint_not_validated_twice_or_missing_fails(db, server, migrated, tmp_path, statements, failure):
    with db.connect() as conn:
        for statement in statements:
            conn.execute(statement)
    verified = invoke("verify", "--dsn", db.url, "--migrations", str(migrated))
    assert verified.returncode == 1 and f"fail  {failure}" in verified.stdout, verified.stdout + verified.stderr
    by_psql = psql_verify(server, db, migrated, tmp_path, ["constraints.sql"])
    assert by_psql.returncode == 3 and f"fail: {failure}" in by_psql.stderr, by_psql.stderr


def test_the_redundancy_report_knows_partial_and_unique_indexes(db, migrated):
    doc = json.loads(invoke("status", "--json", "--dsn", db.url, "--migrations", str(migrated)).stdout)
    covering = {(o["index"], o["covered_by"]) for o in doc["overlaps"]}
    # The partial index covers nothing: (customer_id) and (customer_id, uploaded_at) are served by the full one.
    assert not [pair for pair in covering if pair[1] == "upload_processing_cov"]
    assert ("upload_cust_date_idx", "upload_cust_date_status_cov") in covering
    # Unique indexes and constraints' indexes are never reported redundant, ours or the app's.
    reported = {index for index, _ in covering}
    assert not reported & {"drift_event_unique", "upload_unique_customer_file_hash", "upstream_upload_pkey"}
    # The unique index covers what its key leads with, like any full index.
    assert ("upstream_driftevent_customer_id_idx", "drift_event_unique") in covering
