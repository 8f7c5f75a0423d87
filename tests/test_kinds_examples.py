"""The app's next migrations, hand-written (examples/next-migrations/: the CHECK on upload status,
the drift-event unique index and its promotion, a partial index on uploads), through migrate,
status, verify and rollback on the demo data (issue 18, "Done when"): the duplicate keys the demo's
drift events hold and a violating upload each stop migrate before any change (exit 2, counted,
shown); once the data allows it everything is built, valid, proven by verify (invoke and psql), and
rollback takes it all back, a promotion's rollback leaving its unique index as it was."""

import json

import pytest

import jsonschema

from kinds import EXAMPLE_IDS, drift_duplicates, next_migrations, psql_verify, remove_drift_duplicates
from support import ALL_IDS, applied_ids, invoke
from upstream_indexes.jsonreport import SCHEMA_PATH

pytestmark = pytest.mark.slow  # each test migrates a database, some several times

SCHEMA = json.loads(SCHEMA_PATH.read_text())


def states(db, folder) -> tuple[dict, int]:
    doc = json.loads(invoke("status", "--json", "--dsn", db.url, "--migrations", str(folder)).stdout)
    jsonschema.validate(doc, SCHEMA)  # each kind, each constraint state, as docs/report.schema.json has them
    return {i["migration"]: (i["final_state"], i["applied"]) for i in doc["indexes"]}, doc["exit_code"]


def our_objects(conn) -> dict:
    """The examples' indexes (valid or not) and constraints (validated or not) as the catalog has them."""
    indexes = dict(conn.execute("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                "WHERE c.relname IN ('drift_event_unique', 'upload_processing_cov', "
                                "'drift_event_unique_twin')").fetchall())
    constraints = dict(conn.execute("SELECT conname, convalidated FROM pg_constraint "
                                    "WHERE conname IN ('upload_status_valid', 'drift_event_unique')").fetchall())
    return {"indexes": indexes, "constraints": constraints}


NOTHING = {"indexes": {}, "constraints": {}}


def test_the_next_migrations_on_the_demo(db, server, tmp_path):
    folder = next_migrations(tmp_path / "migrations")
    found, code = states(db, folder)
    assert code == 1 and all(found[i] == ("missing", False) for i in EXAMPLE_IDS)

    # The demo's drift events hold duplicate keys: nothing changes, exit 2, how many and five of them.
    with db.connect() as conn:
        duplicates = drift_duplicates(conn)
    assert duplicates > 0
    stopped = invoke("migrate", "--dsn", db.url, "--migrations", str(folder))
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    [line, last] = stopped.stderr.strip().splitlines()
    assert line.startswith("error: 0005.drift_event_unique: ") and "keys of the unique index drift_event_unique are " \
        "each held by more than one row of upstream_driftevent" in line
    assert line.count(" rows; ") == 4 and "CREATE UNIQUE INDEX CONCURRENTLY would fail after its whole scan" in line
    assert last == "error: nothing was changed (--skip-data-checks skips these checks)"
    with db.connect() as conn:
        assert applied_ids(conn) == set() and our_objects(conn) == NOTHING  # not even the covering indexes

    # An upload in a status the CHECK refuses: 0004 stops, exit 2, the row shown.
    with db.connect() as conn:
        remove_drift_duplicates(conn)
        conn.execute("UPDATE upstream_upload SET status = 'uploading' WHERE id IN (3, 7)")
    stopped = invoke("migrate", "--dsn", db.url, "--migrations", str(folder))
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    assert ("error: 0004.upload_status_valid: 2 rows of upstream_upload violate CHECK (status IN ('processing', "
            "'success', 'failed', 'partial')), e.g. {\"id\": 3, \"status\": \"uploading\"}; {\"id\": 7, \"status\": "
            "\"uploading\"}: added NOT VALID it would already refuse the app's next update of each") in stopped.stderr
    with db.connect() as conn:
        assert applied_ids(conn) == set() and our_objects(conn) == NOTHING

    # Once the data allows it: all of it, valid, recorded, proven.
    with db.connect() as conn:
        conn.execute("UPDATE upstream_upload SET status = 'failed' WHERE id IN (3, 7)")
    migrated = invoke("migrate", "--dsn", db.url, "--migrations", str(folder))
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "0004.upload_status_valid: no rows of upstream_upload that violate upload_status_valid" in migrated.stdout
    assert "0004.upload_status_valid: validated upload_status_valid in " in migrated.stdout
    assert ("0006.drift_event_unique: ALTER TABLE upstream_driftevent ADD CONSTRAINT drift_event_unique UNIQUE USING "
            "INDEX drift_event_unique (") in migrated.stdout
    found, code = states(db, folder)
    assert code == 0 and all(state == ("valid", True) for state in found.values())
    with db.connect() as conn:
        assert our_objects(conn) == {"indexes": {"drift_event_unique": True, "upload_processing_cov": True},
                                     "constraints": {"upload_status_valid": True, "drift_event_unique": True}}
        assert applied_ids(conn) == ALL_IDS | set(EXAMPLE_IDS)
        conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")  # for --deep
    verified = invoke("verify", "--strict", "--deep", "--dsn", db.url, "--migrations", str(folder))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for check in ("index drift_event_unique: on upstream_driftevent, valid, ready and live, unique,",
                  "index upload_processing_cov: on upstream_upload, valid, ready and live, definition USING btree "
                  "(customer_id, uploaded_at DESC) INCLUDE (id) WHERE status = 'processing'",
                  "constraint upload_status_valid: on upstream_upload, validated, once,",
                  "constraint drift_event_unique: on upstream_driftevent, validated, once, definition UNIQUE USING "
                  "INDEX drift_event_unique (index drift_event_unique, valid)",
                  "plan uploads_in_progress: Index Only Scan on upload_processing_cov",
                  "deep drift_event_unique: amcheck", "deep upload_processing_cov: amcheck"):
        assert f"pass  {check}" in verified.stdout, check
    by_psql = psql_verify(server, db, folder, tmp_path)
    assert by_psql.returncode == 0 and "WARNING" not in by_psql.stderr, by_psql.stderr
    assert invoke("migrate", "--dsn", db.url, "--migrations", str(folder)).stdout.splitlines()[-1].startswith(
        "nothing to migrate")

    # Rollback: the promotion's leaves 0005's unique index as it was (unique, valid, not a constraint) ...
    rolled_back = invoke("rollback", "--to", "0005", "--yes", "--dsn", db.url, "--migrations", str(folder))
    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    with db.connect() as conn:
        assert our_objects(conn) == {"indexes": {"drift_event_unique": True},
                                     "constraints": {"upload_status_valid": True}}
        assert conn.execute("SELECT indisunique FROM pg_index WHERE indexrelid = 'drift_event_unique'::regclass"
                            ).fetchone()[0]
    found, code = states(db, folder)
    assert code == 1 and found["0005.drift_event_unique"] == ("valid", True)
    assert found["0006.drift_event_unique"] == ("missing", False)
    assert invoke("verify", "--dsn", db.url, "--migrations", str(folder)).returncode == 1  # 0006, 0007 missing
    # ... and the rest goes too.
    rolled_back = invoke("rollback", "--to", "0003", "--yes", "--dsn", db.url, "--migrations", str(folder))
    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    with db.connect() as conn:
        assert our_objects(conn) == NOTHING and applied_ids(conn) == ALL_IDS
