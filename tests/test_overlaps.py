"""The redundancy report in `invoke status`: existing indexes whose key columns lead one of ours,
computed from the catalog (not from names), with their sizes; information only, nothing dropped; while
ours are not built, what they would make redundant once migrated."""

import json

import pytest

from support import invoke
from upstream_indexes.grammar import parse
from upstream_indexes.overlaps import covering_keys, equality_prefix

# What the demo schema (the upstream app's indexes) holds: index -> (covered by, order, equality columns, FK index)
DEMO_OVERLAPS = {
    "claim_cust_decdate_idx": ("claim_cust_date_outcome_cov", "mixed", ["customer_id"], False),
    "upstream_claimrecord_customer_id_idx": ("claim_cust_date_outcome_cov", "same", [], True),
    "drift_cust_created_idx": ("drift_cust_date_sev_cov", "same", [], False),
    "upstream_driftevent_customer_id_idx": ("drift_cust_date_sev_cov", "same", [], True),
    "upload_cust_date_idx": ("upload_cust_date_status_cov", "mixed", ["customer_id"], False),
    "upstream_upload_customer_id_idx": ("upload_cust_date_status_cov", "same", [], True),
}


def overlaps(db) -> dict:
    doc = json.loads(invoke("status", "--json", "--dsn", db.url).stdout)
    return {o["index"]: (o["covered_by"], o["order"], o["equality_columns"], o["foreign_key"])
            for o in doc["overlaps"]}


@pytest.mark.slow
def test_status_reports_the_demo_schemas_overlaps_before_and_after_migrate(db):
    assert overlaps(db) == DEMO_OVERLAPS  # before: what the new indexes will make redundant
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    assert overlaps(db) == DEMO_OVERLAPS  # after: the same, and never our own indexes
    with db.connect() as conn:
        sizes = dict(conn.execute("SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
                                  [list(DEMO_OVERLAPS)]).fetchall())
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = ANY(%s)",
                            [list(DEMO_OVERLAPS)]).fetchone()[0] == len(DEMO_OVERLAPS)  # nothing dropped
    doc = json.loads(invoke("status", "--json", "--dsn", db.url).stdout)
    assert {o["index"]: o["size_bytes"] for o in doc["overlaps"]} == sizes
    human = invoke("status", "--dsn", db.url).stdout
    assert "existing indexes the covering indexes make redundant (for the DBA to weigh; nothing is dropped):" in human
    assert ("  drift_cust_created_idx (customer_id, created_at DESC) on upstream_driftevent, " in human
            and ": a prefix of drift_cust_date_sev_cov, same order\n" in human)
    assert ("claim_cust_decdate_idx (customer_id, decided_date) on upstream_claimrecord" in human
            and "other direction after customer_id: a scan serves its order once customer_id is fixed by equality"
            in human)


@pytest.mark.slow
def test_what_counts_comes_from_the_catalog(db):
    with db.connect() as conn:
        for statement in (
            # counted
            "CREATE INDEX x_reverse ON upstream_claimrecord (customer_id DESC, decided_date)",
            "CREATE INDEX x_same ON upstream_claimrecord (customer_id, decided_date DESC)",
            "CREATE INDEX x_full ON upstream_claimrecord (customer_id, decided_date DESC, outcome)",
            "CREATE INDEX x_include_ours ON upstream_claimrecord (customer_id) INCLUDE (outcome)",
            # not: they answer what ours cannot, or enforce something
            "CREATE INDEX x_include_other ON upstream_claimrecord (customer_id) INCLUDE (payer)",
            "CREATE INDEX x_partial ON upstream_claimrecord (customer_id) WHERE outcome = 'DENIED'",
            "CREATE INDEX x_expression ON upstream_claimrecord (customer_id, (decided_date + 1))",
            "CREATE INDEX x_opclass ON upstream_claimrecord (customer_id, decided_date DESC, outcome text_pattern_ops)",
            'CREATE INDEX x_collation ON upstream_claimrecord (customer_id, decided_date DESC, outcome COLLATE "C")',
            "CREATE INDEX x_hash ON upstream_claimrecord USING hash (customer_id)",
            "CREATE INDEX x_longer ON upstream_claimrecord (customer_id, decided_date DESC, outcome, payer)",
            "CREATE UNIQUE INDEX x_unique ON upstream_upload (customer_id, uploaded_at DESC, id)",
        ):
            conn.execute(statement)
        conn.execute("DROP INDEX drift_cust_created_idx")
    found = overlaps(db)
    added = {name: found[name][1:3] for name in found if name.startswith("x_")}
    assert added == {"x_reverse": ("reverse", []), "x_same": ("same", []), "x_full": ("same", []),
                     "x_include_ours": ("same", [])}
    assert "drift_cust_created_idx" not in found


MAKE = "existing indexes the covering indexes make redundant"
WOULD = "existing indexes the covering indexes not built yet would make redundant once migrated"


@pytest.mark.slow
def test_status_after_rollback_all_says_would_not_make(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    built = invoke("status", "--dsn", db.url)
    assert MAKE in built.stdout and WOULD not in built.stdout, built.stdout

    rolled_back = invoke("rollback", "--all", "--yes", "--dsn", db.url)
    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    after = invoke("status", "--dsn", db.url)
    assert MAKE not in after.stdout, after.stdout
    assert WOULD in after.stdout and "  drift_cust_created_idx (customer_id, created_at DESC)" in after.stdout
    doc = json.loads(invoke("status", "--json", "--dsn", db.url).stdout)
    assert doc["overlaps"] and not any(overlap["built"] for overlap in doc["overlaps"])


def keys(statement):
    return covering_keys(parse(statement).index)


def test_key_options_and_the_equality_prefix():
    assert keys("CREATE INDEX CONCURRENTLY i ON t USING btree (a, b DESC, c) INCLUDE (id)") == (["a", "b", "c"],
                                                                                              [0, 3, 0])
    assert keys("CREATE INDEX CONCURRENTLY i ON t (a NULLS FIRST, b DESC NULLS LAST)") == (["a", "b"], [2, 1])
    assert keys('CREATE INDEX CONCURRENTLY i ON t (a, lower(b), c COLLATE "C", d text_pattern_ops)') == (
        ["a", None, None, None], [0, 0, 0, 0])
    assert equality_prefix([0, 3], [0, 3, 0]) == 0  # same directions
    assert equality_prefix([3, 0], [0, 3, 0]) == 0  # all reversed: a backward scan
    assert equality_prefix([0, 0], [0, 3, 0]) == 1  # (a, b) against (a, b DESC): once a is fixed
    assert equality_prefix([0, 0, 0], [0, 3, 0]) == 2  # (a, b, c) against (a, b DESC, c)
    assert equality_prefix([2], [0]) == 1  # NULLS FIRST against ASC: equality lookups only
