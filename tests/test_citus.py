"""The same migrations and proofs on a Citus 14 cluster: a coordinator and two
workers the tests start (tests/citus_cluster.py), the demo tables distributed
by customer_id (demo/citus.sql), `--dsn` at the coordinator.

Needs the Citus build of scripts/citus-build; without it these tests skip,
unless UPSTREAM_INDEXES_CITUS=required (set by .ci/run), which makes a missing
build a failure. They start their own PostgreSQL 18 servers, so a run against
another server (PGHOST set: `pg_virtualenv -v 15 pytest`) skips them.

The tests share one cluster (starting it and loading the data takes most of
their time) and run in file order: the first two leave no index, the others
all three built.

The kinds of issue 18 on a distributed table: refused in pre-flight, each with the reason.
"""

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
import subprocess
import threading

import psycopg
import pytest

import citus_cluster
from kinds import next_migrations
from live import Running, wait_until
from support import clean_env, invoke
from upstream_indexes.paths import ROOT, VERIFY_DIR

SCALE = 0.05  # 150k claims: shards large enough that the planner picks the covering indexes
INDEXES = {"claim_cust_date_outcome_cov": "upstream_claimrecord", "drift_cust_date_sev_cov": "upstream_driftevent",
           "upload_cust_date_status_cov": "upstream_upload"}
SHARDS = 8  # demo/citus.sql's citus.shard_count

pytestmark = pytest.mark.citus


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


def run(cluster, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return invoke(*args, "--dsn", cluster.url, **kwargs)


def shard_indexes(cluster) -> dict[str, list[tuple[str, bool]]]:
    """Asked of each worker directly: its shard indexes of our names, with validity, per logical index."""
    found = {name: [] for name in INDEXES}
    for worker in cluster.workers:
        with worker.connect() as conn:
            conn.execute("SET citus.show_shards_for_app_name_prefixes = '*'")  # shards are hidden otherwise
            for name in INDEXES:
                found[name] += conn.execute(
                    "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " WHERE c.relname ~ ('^' || %s || '_[0-9]+$')", [name]).fetchall()
    return found


def assert_built_everywhere(cluster) -> None:
    found = shard_indexes(cluster)
    assert {name: (len(rows), all(valid for _, valid in rows)) for name, rows in found.items()} == \
        {name: (SHARDS, True) for name in INDEXES}


def shard_of(cluster, table: str) -> tuple[str, citus_cluster.Node]:
    """The first shard of `table` and the worker holding it."""
    with cluster.coordinator.connect() as conn:
        shard, port = conn.execute(
            "SELECT shard_name(s.logicalrelid, s.shardid), n.nodeport FROM pg_dist_shard s"
            " JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n ON n.groupid = p.groupid"
            " WHERE s.logicalrelid = %s::regclass ORDER BY s.shardid LIMIT 1", [table]).fetchone()
    return shard, next(w for w in cluster.workers if w.port == port)


@contextmanager
def reading(worker: citus_cluster.Node, shard: str) -> Iterator[psycopg.Connection]:
    """An open transaction on `worker` that has read `shard`: repeatable read, so its snapshot lives as
    long as the transaction, as a long report's or pg_dump's does."""
    with worker.connect() as holder:
        holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with holder.transaction():
            holder.execute(f"SELECT count(*) FROM {shard}")
            yield holder


@pytest.mark.pg
@pytest.mark.slow
def test_migrate_verify_status_rollback(cluster):
    migrated = run(cluster, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "citus: coordinator with 2 workers; upstream_claimrecord distributed by customer_id in 8 shards" \
        in migrated.stdout
    assert_built_everywhere(cluster)

    verified = run(cluster, "verify", "--strict")
    assert verified.returncode == 0, verified.stdout
    assert "verify: 12 checks: 12 pass, 0 warn, 0 fail" in verified.stdout
    assert "and on all 8 shards (2 nodes)" in verified.stdout
    # The same files, with psql on the coordinator.
    psql = subprocess.run([cluster.bindir / "psql", "-X", "-v", "ON_ERROR_STOP=1", "-f", VERIFY_DIR / "indexes.sql",
                           "-f", VERIFY_DIR / "plans.sql", cluster.url], cwd=ROOT, capture_output=True, text=True,
                          env=clean_env(PGOPTIONS="-c upstream_indexes.strict=on"))
    assert psql.returncode == 0, psql.stderr
    assert psql.stderr.count("NOTICE:  pass: ") == 12

    status = run(cluster, "status")
    assert status.returncode == 0, status.stdout
    with cluster.workers[0].connect() as conn:
        conn.execute("SET citus.show_shards_for_app_name_prefixes = '*'")
        one_worker_bytes = conn.execute("SELECT sum(pg_relation_size(oid)) FROM pg_class"
                                        " WHERE relname ~ '^claim_cust_date_outcome_cov_[0-9]+$'").fetchone()[0]
    claim_line = next(line for line in status.stdout.splitlines() if "claim_cust_date_outcome_cov" in line)
    assert claim_line.endswith(", shards 8/8 valid")
    assert one_worker_bytes > 100_000  # the coordinator's own copy is empty (8 kB): the size is the shards'
    assert " 8.0 kB" not in claim_line
    # The indexes ours make redundant, summed over their shards too.
    overlap_lines = [line for line in status.stdout.splitlines() if line.startswith("  claim_cust_decdate_idx ")]
    assert len(overlap_lines) == 1 and ", 8.0 kB:" not in overlap_lines[0]

    rolled_back = run(cluster, "rollback", "--all", "--yes")
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert shard_indexes(cluster) == {name: [] for name in INDEXES}
    with cluster.coordinator.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = ANY(%s)", [list(INDEXES)]).fetchone()[0] == 0


@pytest.mark.pg
@pytest.mark.slow
def test_refused_on_a_worker(cluster):
    worker = cluster.workers[0]
    result = invoke("migrate", "--dsn", f"postgresql://postgres@127.0.0.1:{worker.port}/{citus_cluster.DATABASE}")
    assert result.returncode == 2
    assert "error: this is a Citus worker node: run against the coordinator" in result.stderr
    assert shard_indexes(cluster) == {name: [] for name in INDEXES}


@pytest.mark.pg
@pytest.mark.slow
def test_a_session_on_a_worker_holds_a_shard_build_past_max_wait(cluster):
    """A transaction on one worker that read a shard keeps its CREATE INDEX CONCURRENTLY (and then the
    DROP of its leftover) waiting: migrate cancels after --max-wait (or, once the shard indexes are built
    and only wait for its snapshot, --max-wait-after-build), names that session and worker, and leaves the
    index INVALID; verify and status name the bad shards; once it ends, migrate converges."""
    shard, worker = shard_of(cluster, "upstream_claimrecord")
    with reading(worker, shard) as holder:
        blocked = run(cluster, "migrate", "--max-wait", "2", "--max-wait-after-build", "2", "--retries", "0")
        assert blocked.returncode == 3, blocked.stdout + blocked.stderr
        holder_pid = holder.info.backend_pid
        assert f"waiting for pid {holder_pid} on 127.0.0.1:{worker.port}" in blocked.stdout
        assert "error: claim_cust_date_outcome_cov is left INVALID: DROP INDEX CONCURRENTLY waited more than 2s" \
            f" for pid {holder_pid} on 127.0.0.1:{worker.port}" in blocked.stderr

        verified = run(cluster, "verify")
        assert verified.returncode == 1
        claim_line = next(line for line in verified.stdout.splitlines()
                          if line.startswith("fail  index claim_cust_date_outcome_cov:"))
        bad_shard = shard.replace("upstream_claimrecord", "claim_cust_date_outcome_cov")
        assert f"{bad_shard} on 127.0.0.1:{worker.port}: INVALID" in claim_line
        status = run(cluster, "status")
        assert status.returncode == 1
        assert f"  shard {bad_shard} on 127.0.0.1:{worker.port}: INVALID" in status.stdout

    migrated = run(cluster, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "claim_cust_date_outcome_cov is INVALID (left by a failed or cancelled build): dropping it" \
        in migrated.stdout
    assert_built_everywhere(cluster)
    assert run(cluster, "verify", "--strict").returncode == 0


@pytest.mark.pg
@pytest.mark.slow
def test_a_shard_index_missing_while_the_others_are_valid(cluster):
    """A shard index dropped on a worker (by hand, or lost with a shard moved without it): the
    coordinator's index is still valid, so only the shards tell. Status and verify name it; migrate
    drops the index everywhere and builds it again."""
    shard, worker = shard_of(cluster, "upstream_driftevent")
    shard_index = shard.replace("upstream_driftevent", "drift_cust_date_sev_cov")
    with worker.connect() as conn:
        conn.execute(f"DROP INDEX {shard_index}")

    status = run(cluster, "status")
    assert status.returncode == 1
    assert re.search(r"drift_cust_date_sev_cov +INVALID", status.stdout)
    assert ", shards 7/8 valid" in status.stdout
    verified = run(cluster, "verify")
    assert verified.returncode == 1
    assert f"found 1 not: {shard_index} on 127.0.0.1:{worker.port}: missing" in verified.stdout

    migrated = run(cluster, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert_built_everywhere(cluster)
    assert run(cluster, "verify", "--strict").returncode == 0


@pytest.mark.pg
@pytest.mark.slow
def test_build_cancelled_on_one_worker_then_migrate_again(cluster):
    """Someone cancels the build of one shard on one worker mid-migrate: migrate stops (exit 1) and drops
    the leftover on every shard; the next migrate builds it with no manual step."""
    rolled_back = run(cluster, "rollback")  # the newest: upload_cust_date_status_cov
    assert rolled_back.returncode == 0, rolled_back.stderr
    shard, worker = shard_of(cluster, "upstream_upload")
    release = threading.Event()

    def hold_the_shard():
        # Keeps the shard's build waiting (phase: waiting for old snapshots) long enough to cancel it.
        with reading(worker, shard):
            release.wait(30)

    holding = threading.Thread(target=hold_the_shard)
    holding.start()
    try:
        migrating = Running("migrate", "--dsn", cluster.url)
        with worker.connect() as conn:
            conn.execute("SET citus.show_shards_for_app_name_prefixes = '*'")
            wait_until(lambda: conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_progress_create_index"
                                            " WHERE relid = %s::regclass", [shard]).fetchall(),
                       "the shard's build to start (and be cancelled)", timeout=30)
        release.set()
        result = migrating.finish()
    finally:
        release.set()
        holding.join()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: 0003.upload_cust_date_status_cov: apply of upload_cust_date_status_cov was cancelled by " \
           "another session (canceling statement due to user request" in result.stderr
    assert "upload_cust_date_status_cov is INVALID (left by a failed or cancelled build): dropping it" \
        in result.stdout
    assert shard_indexes(cluster)["upload_cust_date_status_cov"] == []

    migrated = run(cluster, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert_built_everywhere(cluster)
    assert run(cluster, "verify", "--strict").returncode == 0


@pytest.mark.pg
@pytest.mark.slow
def test_whatif_says_a_coordinator_cannot_plan_hypothetical_indexes(cluster, migrations_copy):
    """The shards' plans are made on the workers, where a hypothetical index of the coordinator's session
    does not exist (HypoPG or not): one line, and the dry run goes on."""
    made = invoke("new", "claim_cust_payer_date_cov", "--table", "upstream_claimrecord", "--columns",
                  "customer_id, payer", "--migrations", str(migrations_copy))
    assert made.returncode == 0, made.stderr
    result = run(cluster, "migrate", "--dry-run", "--migrations", str(migrations_copy))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "what-if: skipped: this is a Citus coordinator: the plans of distributed tables are made on the workers, "
        "where hypothetical indexes of this session do not exist", "dry run: nothing was changed"]


@pytest.mark.slow
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
