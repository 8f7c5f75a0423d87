"""The new kinds on a Citus cluster (issue 18, point 10): on a distributed table migrate builds plain
indexes only; a unique or partial index, a CHECK, a foreign key or a promotion is refused in
pre-flight, each with the reason (Citus propagates them to every shard under locks of its own, which
this tool neither bounds nor verifies), exit 2, nothing changed. Needs the Citus build, as
tests/test_citus.py (which says when these skip)."""

import os

import pytest

import citus_cluster
from kinds import next_migrations
from support import invoke

SCALE = 0.002  # a few thousand claims: only the pre-flight runs


@pytest.fixture(scope="module")
def cluster() -> citus_cluster.Cluster:
    if os.environ.get("PGHOST"):
        pytest.skip("the Citus tests start their own PostgreSQL 18 cluster; PGHOST names another server")
    build = citus_cluster.pginstall()
    if build is None:
        message = "Citus is not built: run scripts/citus-build (it caches the build outside the repo)"
        if os.environ.get("UPSTREAM_INDEXES_CITUS") == "required":
            pytest.fail(message + "; UPSTREAM_INDEXES_CITUS=required")
        pytest.skip(message)
    cluster = citus_cluster.start(build)
    try:
        citus_cluster.load_demo(cluster, SCALE)
        yield cluster
    finally:
        cluster.stop()


def test_the_new_kinds_are_refused_on_distributed_tables_with_the_reason(cluster, tmp_path):
    folder = next_migrations(tmp_path / "migrations")
    with cluster.coordinator.connect() as conn:
        before = conn.execute("SELECT count(*) FROM pg_class").fetchone()[0]
    result = invoke("migrate", "--dsn", cluster.url, "--migrations", str(folder))
    assert result.returncode == 2, result.stdout + result.stderr
    reason = ("is distributed by Citus, where migrate builds plain indexes only (no UNIQUE, WHERE, expression, "
              "collation or operator class, no constraint): Citus propagates those to every shard under locks of its "
              "own, which this tool neither bounds nor verifies")
    assert result.stderr.strip().splitlines() == [
        f"error: 0004.upload_status_valid: the CHECK constraint upload_status_valid: upstream_upload {reason}",
        f"error: 0005.drift_event_unique: the unique index drift_event_unique: upstream_driftevent {reason}",
        f"error: 0006.drift_event_unique: the UNIQUE constraint drift_event_unique: upstream_driftevent {reason}",
        f"error: 0007.upload_processing_cov: the index upload_processing_cov: upstream_upload {reason}"]
    with cluster.coordinator.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_class").fetchone()[0] == before  # nothing changed
    # The covering indexes alone still build there.
    built = invoke("migrate", "--dsn", cluster.url, "--migrations", str(folder), "--to", "0003")
    assert built.returncode == 2 and "0004.upload_status_valid" in built.stderr  # the pre-flight reads every file
