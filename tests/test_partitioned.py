"""A partitioned claim table (`invoke db.reset --partitioned`'s demo): migrate builds the claim index
ON ONLY the parent, each partition's concurrently, and attaches each; a SIGKILL mid-way converges on
the next run; status counts partitions; verify checks every partition's index and the pruned plans;
rollback drops the parent (a plain DROP INDEX, bounded by a short lock_timeout).

The kinds of issue 18 there: a CHECK added NOT VALID and validated (its data check reading the
partitions), a foreign key on PostgreSQL 18; what cannot be built there refused in pre-flight with the reason.
"""

import re
import time

import psycopg
import pytest

from kinds import next_migrations, only, server_major, write
from live import Holder, Running, unchanged_snapshot, wait_until
from support import (ALL_IDS, CLAIM_INDEX, CLAIMS, TEST_SCALE, Database, applied_ids, invoke, json_report,
                     scratch_database)
from upstream_indexes import demo
from upstream_indexes.catalog import IndexState, State
from upstream_indexes.migrations import load
from upstream_indexes.partitions import Do, Part, PartitionIndex, index_name
from upstream_indexes.planner import Step, migrate_action, rollback_plan

DEFINITION = "USING btree (customer_id, decided_date DESC, outcome) INCLUDE (id)"


@pytest.fixture(scope="module")
def partitioned_template(server) -> str:
    with scratch_database(server) as database:
        with database.connect() as conn:
            demo.load(conn, TEST_SCALE, partitioned=True)
        yield database.name


@pytest.fixture
def pdb(server, partitioned_template) -> Database:
    with scratch_database(server, partitioned_template) as database:
        yield database


def partitions(conn) -> list[str]:
    """The claim table's partitions in bound order (as migrate builds them)."""
    return [row[0] for row in conn.execute(
        "SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid"
        " WHERE h.inhparent = %s::regclass ORDER BY pg_get_expr(c.relpartbound, c.oid)", [CLAIMS])]


def partition_indexes(conn) -> dict[str, tuple[str, bool, bool]]:
    """Per partition: the index of our name there, whether it is valid, whether it is attached to ours."""
    rows = conn.execute(
        "SELECT t.relname, c.relname, i.indisvalid,"
        "       EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = c.oid AND h.inhparent = to_regclass(%s))"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
        " WHERE c.relname LIKE %s", [CLAIM_INDEX, CLAIM_INDEX + "\\_upstream%"]).fetchall()
    return {table: (index, valid, attached) for table, index, valid, attached in rows}


def parent_valid(conn) -> bool | None:
    row = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [CLAIM_INDEX]).fetchone()
    return row and row[0]


def assert_converged(conn) -> None:
    parts = partitions(conn)
    assert parent_valid(conn) is True
    assert partition_indexes(conn) == {p: (index_name(CLAIM_INDEX, p), True, True) for p in parts}
    assert conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0] == 0
    assert applied_ids(conn) == ALL_IDS


def test_partition_index_names_are_deterministic_and_fit_63_bytes():
    assert index_name(CLAIM_INDEX, "upstream_claimrecord_2026_03") == f"{CLAIM_INDEX}_upstream_claimrecord_2026_03"
    long = index_name(CLAIM_INDEX, "upstream_claimrecord_archive_partition_2026_03")
    assert len(long.encode()) == 63 and long == index_name(CLAIM_INDEX, "upstream_claimrecord_archive_partition_2026_03")
    assert re.fullmatch(r"claim_cust_date_outcome_cov_upstream_claimrecord_archi_[0-9a-f]{8}", long)
    assert long != index_name(CLAIM_INDEX, "upstream_claimrecord_archive_partition_2026_04")
    assert len(index_name(CLAIM_INDEX, "ä" * 40).encode()) <= 63


def partitioned_state(parent: State, *parts: Part) -> IndexState:
    """The claim index on a table of len(parts) partitions p1, p2, ... in those states."""
    claim = load()[0]
    return IndexState(claim, parent, schema="public", partitions=tuple(
        PartitionIndex("public", f"p{n}", index_name(claim.index, f"p{n}"), part,
                       problem="another definition" if part == Part.FOREIGN else None)
        for n, part in enumerate(parts, start=1)))


def planned(action) -> list[tuple[str, str | None]]:
    return [(s.do.value, s.partition and s.partition.partition) for s in action.partition_steps]


def test_planner_resumes_from_any_partition_state():
    fresh = migrate_action(partitioned_state(State.ABSENT, Part.MISSING, Part.MISSING), False)
    assert fresh.step == Step.BUILD_PARTITIONS
    assert planned(fresh) == [("create-parent", None), ("build", "p1"), ("attach", "p1"), ("build", "p2"),
                              ("attach", "p2")]
    # Killed part-way: p1 done, p2 built but not attached, p3 an INVALID leftover, p4 not started.
    resumed = migrate_action(partitioned_state(State.INVALID, Part.DONE, Part.BUILT, Part.INVALID, Part.MISSING),
                             False)
    assert resumed.step == Step.BUILD_PARTITIONS and "1 of 4 partitions' indexes attached" in resumed.reason
    assert planned(resumed) == [("attach", "p2"), ("drop-leftover", "p3"), ("build", "p3"), ("attach", "p3"),
                                ("build", "p4"), ("attach", "p4")]
    assert migrate_action(partitioned_state(State.VALID, Part.DONE), True).step == Step.UNCHANGED
    assert migrate_action(partitioned_state(State.VALID, Part.DONE), False).step == Step.RECORD
    refused = migrate_action(partitioned_state(State.INVALID, Part.DONE, Part.FOREIGN), False)
    assert refused.step == Step.REFUSE and "partition p2 of upstream_claimrecord: another definition" in refused.reason

    [drop] = rollback_plan([partitioned_state(State.INVALID, Part.DONE, Part.INVALID, Part.BUILT)],
                           {"0001.claim_cust_date_outcome_cov"})
    assert drop.step == Step.DROP
    assert [s.do for s in drop.partition_steps] == [Do.DROP_PARENT, Do.DROP_LEFTOVER, Do.DROP_LEFTOVER]


@pytest.mark.slow
def test_migrate_builds_every_partition_then_sql_status_verify_agree(pdb):
    with pdb.connect() as conn:
        parts = partitions(conn)
    assert len(parts) >= 25  # a month each over two years and a bit

    script = invoke("sql", "--dsn", pdb.url, "--parallel-workers", "1")
    assert script.returncode == 0, script.stderr
    assert f'CREATE INDEX IF NOT EXISTS "{CLAIM_INDEX}" ON ONLY "public"."{CLAIMS}" {DEFINITION};' in script.stdout
    # One build session for the whole expansion: the build settings before all of it, RESET ALL after.
    claim_part = script.stdout.split("-- 0001.")[1].split("-- 0002.")[0]
    assert claim_part.index("SET max_parallel_maintenance_workers = '1';") < claim_part.index('ON ONLY "public"')
    assert claim_part.rstrip().endswith("RESET ALL;")
    for p in parts:
        assert (f'CREATE INDEX CONCURRENTLY "{index_name(CLAIM_INDEX, p)}" ON "public"."{p}" {DEFINITION};'
                in script.stdout)
        assert (f'ALTER INDEX "public"."{CLAIM_INDEX}" ATTACH PARTITION "public"."{index_name(CLAIM_INDEX, p)}";'
                in script.stdout)

    run = invoke("migrate", "--dsn", pdb.url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"partition {parts[-1]} ({len(parts)} of {len(parts)} to build)" in run.stdout
    with pdb.connect() as conn:
        assert_converged(conn)

    status = invoke("status", "--dsn", pdb.url)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"partitions {len(parts)}/{len(parts)} done" in status.stdout

    verify = invoke("verify", "--dsn", pdb.url)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"and on all {len(parts)} partitions" in verify.stderr + verify.stdout
    out = verify.stdout + verify.stderr
    # A pass, or on some days a warning: the current month's partition may be too small for an index
    # to beat a sequential scan (verify's "on this data the planner prefers ..."); never a failure.
    scanned = re.search(r"(pass|warn)  plan monthly_claim_trend: .*Index Only Scan on claim_cust_date_outcome_cov"
                        rf".*; (\d+) of {len(parts)} partitions scanned", out)
    assert scanned, out
    scanned = int(scanned.group(2))
    assert scanned < len(parts)  # pruned to the last six months and this one

    again = invoke("migrate", "--dsn", pdb.url)
    assert again.returncode == 0 and "nothing to migrate" in again.stdout


@pytest.mark.slow
def test_sigkill_mid_way_then_migrate_converges(pdb):
    """Killed while a partition's build waits for a writer: some partitions attached, one INVALID
    leftover (its backend ended), the rest missing. status and verify say so; the next run converges."""
    with pdb.connect() as conn:
        parts = partitions(conn)
    stuck = parts[4]
    with psycopg.connect(pdb.conninfo) as writer:  # a transaction that wrote to one partition, still open
        writer.execute(f"LOCK TABLE {stuck} IN ROW EXCLUSIVE MODE")
        run = Running("migrate", "--dsn", pdb.url, "--max-wait", "300")
        run.wait_for_line(rf"partition {stuck} \(5 of")
        with pdb.connect() as conn:
            pid = wait_until(lambda: conn.execute(
                "SELECT pid FROM pg_stat_progress_create_index WHERE relid = %s::regclass", [stuck]).fetchone(),
                f"the build on {stuck} waiting for the writer")[0]
            run.kill()
            # The killed client's backend would go on once the writer ends: end it, as a crash would.
            conn.execute("SELECT pg_terminate_backend(%s)", [pid])
            wait_until(lambda: not conn.execute("SELECT FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone(),
                       "the orphaned build's backend to end")
            left = partition_indexes(conn)
            assert parent_valid(conn) is False
            assert {p: left[p] for p in parts[:4]} == {p: (index_name(CLAIM_INDEX, p), True, True) for p in parts[:4]}
            assert left[stuck] == (index_name(CLAIM_INDEX, stuck), False, False)
            assert not set(parts[5:]) & set(left)
        writer.rollback()

    status = invoke("status", "--dsn", pdb.url)
    assert status.returncode == 1
    assert re.search(rf"{CLAIM_INDEX}\s+INVALID .*partitions 4/{len(parts)} done", status.stdout), status.stdout

    # --json: the same state as data, each partition's index in the IndexStatus event.
    doc = json_report(invoke("status", "--json", "--dsn", pdb.url))
    [claim] = [e["state"] for e in doc["events"]
               if e["event"] == "IndexStatus" and e["state"]["migration"] == "0001.claim_cust_date_outcome_cov"]
    assert [p["state"] for p in claim["partitions"]][:6] == ["done"] * 4 + ["INVALID", "missing"]

    verify = invoke("verify", "--dsn", pdb.url)
    assert verify.returncode == 1
    out = verify.stdout + verify.stderr
    assert (f"{parts[5]}: no index attached (`invoke migrate` builds {index_name(CLAIM_INDEX, parts[5])})" in out), out
    assert f"{stuck}: no index attached" in out

    again = invoke("migrate", "--dsn", pdb.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"with 4 of {len(parts)} partitions' indexes attached" in again.stdout
    assert f"dropping the INVALID {index_name(CLAIM_INDEX, stuck)}" in again.stdout
    with pdb.connect() as conn:
        assert_converged(conn)
    assert invoke("verify", "--dsn", pdb.url).returncode == 0


@pytest.mark.slow
def test_rollback_drops_the_parent_with_a_bounded_lock_wait(pdb):
    assert invoke("migrate", "--dsn", pdb.url).returncode == 0
    assert invoke("rollback", "--to", "0001", "--yes", "--dsn", pdb.url).returncode == 0  # the other two
    script = invoke("sql", "--rollback", "--dsn", pdb.url)
    assert f'DROP INDEX IF EXISTS "public"."{CLAIM_INDEX}";' in script.stdout
    assert "SET lock_timeout = '2s';" in script.stdout

    # A report reading the table holds ACCESS SHARE: the DROP waits 2 s at most (lock_timeout), each
    # attempt, and stops (exit 3) naming it; the index stays valid, the writes went on.
    with psycopg.connect(pdb.conninfo, autocommit=True) as conn:
        holder = Holder(conn, read_table=CLAIMS)
        try:
            started = time.monotonic()
            blocked = invoke("rollback", "--dsn", pdb.url)
            took = time.monotonic() - started
        finally:
            holder.release()
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    assert f"not dropped: DROP INDEX waited more than its lock_timeout of 2s" in blocked.stderr
    assert f"pid {holder.pid}" in blocked.stderr
    assert took < 30
    with pdb.connect() as conn:
        assert parent_valid(conn) is True
        assert applied_ids(conn) == {"0001.claim_cust_date_outcome_cov"}

    done = invoke("rollback", "--dsn", pdb.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DROP INDEX (not CONCURRENTLY" in done.stdout
    with pdb.connect() as conn:
        assert parent_valid(conn) is None
        assert partition_indexes(conn) == {}
        assert applied_ids(conn) == set()


@pytest.mark.slow
def test_a_sub_partitioned_partition_is_refused_before_any_change(pdb):
    with pdb.connect() as conn:
        conn.execute(f"CREATE TABLE upstream_claimrecord_2030 PARTITION OF {CLAIMS}"
                     " FOR VALUES FROM ('2030-01-01') TO ('2031-01-01') PARTITION BY RANGE (decided_date)")
        before = unchanged_snapshot(conn)
        run = invoke("migrate", "--dsn", pdb.url)
        assert run.returncode == 2, run.stdout + run.stderr
        assert ("error: table upstream_claimrecord: partition upstream_claimrecord_2030 is itself partitioned "
                "(migrate builds on one level of partitions only)") in run.stderr
        assert "Traceback" not in run.stderr
        assert unchanged_snapshot(conn) == before


@pytest.mark.slow
def test_a_name_past_63_bytes_is_the_same_in_verify_and_migrate(pdb):
    """verify/indexes.sql computes the partition index name in SQL: it must name what migrate builds."""
    long_partition = "upstream_claimrecord_archived_before_the_partitioning_2030"
    with pdb.connect() as conn:
        conn.execute(f"CREATE TABLE {long_partition} PARTITION OF {CLAIMS}"
                     " FOR VALUES FROM ('2030-01-01') TO ('2031-01-01')")
        conn.execute(f"CREATE INDEX {CLAIM_INDEX} ON ONLY {CLAIMS} {DEFINITION}")  # as a killed run leaves it
    expected = index_name(CLAIM_INDEX, long_partition)
    assert len(expected.encode()) == 63

    verify = invoke("verify", "--dsn", pdb.url)
    assert verify.returncode == 1
    assert f"{long_partition}: no index attached (`invoke migrate` builds {expected})" in verify.stdout + verify.stderr

    run = invoke("migrate", "--dsn", pdb.url)
    assert run.returncode == 0, run.stdout + run.stderr
    with pdb.connect() as conn:
        assert_converged(conn)
        assert partition_indexes(conn)[long_partition][0] == expected


@pytest.mark.slow
def test_an_invalid_index_attached_by_someone_else_is_refused_with_the_repair(pdb):
    with pdb.connect() as conn:
        first = partitions(conn)[0]
        theirs = "their_claim_index"
        conn.execute(f"CREATE INDEX {CLAIM_INDEX} ON ONLY {CLAIMS} {DEFINITION}")
        conn.execute(f"CREATE INDEX CONCURRENTLY {theirs} ON {first} {DEFINITION}")
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [theirs])  # as a bug would
        conn.execute(f"ALTER INDEX {CLAIM_INDEX} ATTACH PARTITION {theirs}")
        before = unchanged_snapshot(conn)
        run = invoke("migrate", "--dsn", pdb.url)
        assert run.returncode == 2, run.stdout + run.stderr
        assert (f"error: partition {first} of {CLAIMS}: {theirs} is attached to {CLAIM_INDEX} but INVALID"
                in run.stderr)
        assert f"REINDEX INDEX CONCURRENTLY {theirs}" in run.stderr
        assert unchanged_snapshot(conn) == before


# --- the kinds of issue 18 on a partitioned table: a CHECK (a foreign key on 18); the rest refused ---

CLAIM_CHECK = ("ALTER TABLE upstream_claimrecord ADD CONSTRAINT claim_billed_nonnegative CHECK (billed_amount >= 0) "
               "NOT VALID;\nALTER TABLE upstream_claimrecord VALIDATE CONSTRAINT claim_billed_nonnegative;\n",
               "ALTER TABLE upstream_claimrecord DROP CONSTRAINT IF EXISTS claim_billed_nonnegative;\n")
CLAIM_FK = ("ALTER TABLE upstream_claimrecord ADD CONSTRAINT claim_upload_fk FOREIGN KEY (upload_id) REFERENCES "
            "upstream_upload (id) NOT VALID;\nALTER TABLE upstream_claimrecord VALIDATE CONSTRAINT claim_upload_fk;\n",
            "ALTER TABLE upstream_claimrecord DROP CONSTRAINT IF EXISTS claim_upload_fk;\n")


@pytest.mark.slow
def test_a_check_on_a_partitioned_table(pdb, tmp_path):
    folder = only(next_migrations(tmp_path / "migrations"))
    write(folder, "0004.claim_billed_nonnegative", *CLAIM_CHECK)
    with pdb.connect() as conn:  # a violating row in one partition: the data check reads the partitions
        conn.execute("UPDATE upstream_claimrecord SET billed_amount = -1 WHERE id = (SELECT min(id) FROM "
                     "upstream_claimrecord)")
    stopped = invoke("migrate", "--dsn", pdb.url, "--migrations", str(folder))
    assert stopped.returncode == 2 and "0004.claim_billed_nonnegative: 1 rows of upstream_claimrecord violate" \
        in stopped.stderr, stopped.stderr
    with pdb.connect() as conn:
        conn.execute("UPDATE upstream_claimrecord SET billed_amount = 1 WHERE billed_amount < 0")
    migrated = invoke("migrate", "--dsn", pdb.url, "--migrations", str(folder))
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    with pdb.connect() as conn:
        # On the parent and, inherited, on every partition: all validated.
        rows = conn.execute("SELECT count(*), bool_and(convalidated) FROM pg_constraint "
                            "WHERE conname = 'claim_billed_nonnegative'").fetchone()
        partitions = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                                  "'upstream_claimrecord'::regclass").fetchone()[0]
        assert rows == (partitions + 1, True)
    verified = invoke("verify", "--dsn", pdb.url, "--migrations", str(folder))
    assert verified.returncode == 0 and "pass  constraint claim_billed_nonnegative: on upstream_claimrecord, " \
        "validated, once" in verified.stdout, verified.stdout + verified.stderr
    assert invoke("rollback", "--dsn", pdb.url, "--migrations", str(folder)).returncode == 0
    with pdb.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'claim_billed_nonnegative'"
                            ).fetchone()[0] == 0


@pytest.mark.slow
def test_a_foreign_key_on_a_partitioned_table(pdb, tmp_path):
    folder = only(next_migrations(tmp_path / "migrations"))
    write(folder, "0004.claim_upload_fk", *CLAIM_FK)
    with pdb.connect() as conn:
        conn.execute("ALTER TABLE upstream_claimrecord DROP CONSTRAINT upstream_claimrecord_upload_id_fkey")
        before = unchanged_snapshot(conn)
    result = invoke("migrate", "--dsn", pdb.url, "--migrations", str(folder))
    if server_major(pdb) < 18:
        assert result.returncode == 2, result.stdout + result.stderr
        assert ("error: 0004.claim_upload_fk: the foreign key claim_upload_fk: upstream_claimrecord is "
                "partitioned, and PostgreSQL before 18 cannot add a foreign key NOT VALID to a partitioned table "
                f"(this server is {server_major(pdb)})") in result.stderr
        with pdb.connect() as conn:
            assert unchanged_snapshot(conn) == before
        return
    assert result.returncode == 0, result.stdout + result.stderr
    with pdb.connect() as conn:
        assert conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'claim_upload_fk' AND conrelid = "
                            "'upstream_claimrecord'::regclass").fetchone() == (True,)
    assert invoke("verify", "--dsn", pdb.url, "--migrations", str(folder)).returncode == 0


@pytest.mark.slow
def test_what_a_partitioned_table_cannot_take_is_refused_with_the_reason(pdb, tmp_path):
    folder = only(next_migrations(tmp_path / "migrations"))
    write(folder, "0004.claim_denied_recent",
          "CREATE INDEX CONCURRENTLY claim_denied_recent ON upstream_claimrecord (customer_id, decided_date DESC) "
          "WHERE outcome = 'DENIED';\n", "DROP INDEX CONCURRENTLY IF EXISTS claim_denied_recent;\n")
    write(folder, "0005.claim_unique_line",
          "CREATE UNIQUE INDEX CONCURRENTLY claim_unique_line ON upstream_claimrecord (upload_id, id, decided_date);\n",
          "DROP INDEX CONCURRENTLY IF EXISTS claim_unique_line;\n")
    write(folder, "0006.claim_unique_line",
          "ALTER TABLE upstream_claimrecord ADD CONSTRAINT claim_unique_line UNIQUE USING INDEX claim_unique_line;\n",
          "CREATE UNIQUE INDEX CONCURRENTLY claim_unique_line_twin ON upstream_claimrecord (upload_id, id, "
          "decided_date);\nALTER TABLE upstream_claimrecord DROP CONSTRAINT IF EXISTS claim_unique_line;\n"
          "ALTER INDEX claim_unique_line_twin RENAME TO claim_unique_line;\n")
    with pdb.connect() as conn:
        before = unchanged_snapshot(conn)
    for command in (("migrate",), ("migrate", "--dry-run"), ("sql", "--dsn", pdb.url)):
        result = invoke(*command, *(("--dsn", pdb.url) if command[0] == "migrate" else ()),
                        "--migrations", str(folder))
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines == [
            "error: 0004.claim_denied_recent: the index claim_denied_recent: upstream_claimrecord is partitioned, where "
            "migrate builds plain indexes only (no UNIQUE, WHERE, expression, collation or operator class), partition "
            "by partition: it compares and verifies each partition's index by its key columns alone",
            "error: 0005.claim_unique_line: the unique index claim_unique_line: upstream_claimrecord is partitioned, "
            "where "
            "migrate builds plain indexes only (no UNIQUE, WHERE, expression, collation or operator class), partition "
            "by partition: it compares and verifies each partition's index by its key columns alone",
            "error: 0006.claim_unique_line: the UNIQUE constraint claim_unique_line: upstream_claimrecord is "
            "partitioned, and PostgreSQL cannot add a constraint USING INDEX to a partitioned table"]
    with pdb.connect() as conn:
        assert unchanged_snapshot(conn) == before
