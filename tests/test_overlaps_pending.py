"""The redundancy report while our indexes are not built (issue 23): after `rollback --all` (or before the
first migrate) status must not say the covering indexes "make" anything redundant: they would, once
migrated."""

import json

from support import invoke

MAKE = "existing indexes the covering indexes make redundant"
WOULD = "existing indexes the covering indexes not built yet would make redundant once migrated"


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
