"""What a rollback's cancelled DROP INDEX CONCURRENTLY leaves (issue 23): the drop marks the index INVALID
before it waits, so a cancel leaves it INVALID and still recorded as applied. The next migrate must call it
that, not "left by a failed or cancelled build", then drop and build it."""

from live import Holder
from support import assert_all_built, invoke

CLAIM_INDEX = "claim_cust_date_outcome_cov"
LEFT = f"{CLAIM_INDEX} is INVALID (left by a cancelled DROP INDEX CONCURRENTLY of a rollback)"


def test_the_next_migrate_names_a_cancelled_drop(db):
    assert invoke("migrate", "--dsn", db.url).returncode == 0
    # A session that has read the claims: the drop marks the index INVALID, then waits for it, past --max-wait.
    holder = Holder(db.connect(), read_table="upstream_claimrecord")
    try:
        stopped = invoke("rollback", "--to", "0001", "--dsn", db.url, "--yes")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        cancelled = invoke("rollback", "--dsn", db.url, "--max-wait", "1")
        assert cancelled.returncode == 3, cancelled.stdout + cancelled.stderr
    finally:
        holder.release()
    with db.connect() as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass",
                            [CLAIM_INDEX]).fetchone() == (False,)

    planned = invoke("migrate", "--dry-run", "--dsn", db.url)
    assert f"0001.{CLAIM_INDEX}: {LEFT}: migrate drops it, then builds it" in planned.stdout, planned.stdout
    again = invoke("migrate", "--dsn", db.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"0001.{CLAIM_INDEX}: {LEFT}: dropping it with DROP INDEX CONCURRENTLY" in again.stdout, again.stdout
    assert "failed or cancelled build" not in again.stdout
    with db.connect() as conn:
        assert_all_built(conn)
