"""Waiting without losing work (issue 13): a finished build is never thrown away for waiting; the
build settings reach the build; the progress lines say how far a phase is and how long it has left.

A REPEATABLE READ transaction (live.Holder) makes CREATE INDEX CONCURRENTLY wait "for old snapshots"
after it has built its index: --max-wait no longer cancels that wait, only --max-wait-after-build (or
the migration file's own lock_timeout) ends it, and then without a retry.
"""

import io
import os
import json
import threading

import psycopg
import pytest

from live import SNAPSHOT_WAIT, Holder, Running, build_phase, wait_until
from support import (CLAIM_INDEX, CLAIMS, assert_all_built, assert_none_built, clean_env, index_oid, invalid_index_count,
                     invoke,
                     settings_env)
from upstream_indexes import index_events
from upstream_indexes.backends import Backend
from upstream_indexes.config import Target
from upstream_indexes.live import LiveDisplay
from upstream_indexes.watchdog import Pace, Snapshot, Watchdog
from upstream_indexes.lines import LinePrinter

def no_build_after_a_finished_one(output: str) -> bool:
    """The claim index, once built and cancelled while it only waited, is not built again. (A wait before
    a build, cancelled by --max-wait and retried, may come first: that one had built nothing.)"""
    lines = output.splitlines()
    finished = [i for i, line in enumerate(lines) if f"{CLAIM_INDEX} was built and only waiting" in line]
    return len(finished) == 1 and not any(f"building {CLAIM_INDEX} on" in line for line in lines[finished[0]:])


@pytest.mark.slow
def test_snapshot_held_past_max_wait_does_not_cancel_the_built_index(db):
    """The old policy cancelled the claim build once it had waited --max-wait for old snapshots, dropped
    it and built it again (four builds of the 142 MB index in the bench's held-snapshot run). Now it is
    built once: the same index (oid) and the same build backend wait on, named, until the holder ends."""
    holder = Holder(db.connect())
    run = Running("migrate", "--dsn", db.url, "--max-wait", "1", "--backoff", "0.1", "--json")
    with db.connect() as conn:
        pid = wait_until(lambda: build_phase(conn, CLAIMS, SNAPSHOT_WAIT), "the claim build to wait for old snapshots")
        oid = index_oid(conn, CLAIM_INDEX)
        # With --json the human lines are on stderr.
        told = wait_until(lambda: next((line for line in run.stderr if "is built and only waits" in line), None),
                          "the line saying the built index only waits")
        # Past --max-wait (the line comes after it): the same build, the same index, still waiting.
        assert build_phase(conn, CLAIMS, SNAPSHOT_WAIT) == pid and index_oid(conn, CLAIM_INDEX) == oid
        holder.release()
        result = run.finish()
        assert result.returncode == 0, result.stdout + result.stderr
        assert index_oid(conn, CLAIM_INDEX) == oid
        assert_all_built(conn)
    assert f"for pid {holder.pid} (" in told and "it blocks no reads or writes" in told
    assert "--max-wait (1s, the wait before a build) does not cancel it" in told
    assert "waiting until that session ends" in told
    # Nothing cancelled once the index was built: no build after the line (a wait before the build,
    # cancelled by --max-wait 1 and retried, may come before it: that one had built nothing).
    after = result.stderr[result.stderr.index("is built and only waits"):]
    assert f"building {CLAIM_INDEX} on" not in after and "cancelled" not in after
    report = json.loads(result.stdout)
    assert [(i["index"], i["action"]) for i in report["indexes"]] == [
        (CLAIM_INDEX, "built"), ("drift_cust_date_sev_cov", "built"), ("upload_cust_date_status_cov", "built")]


@pytest.mark.slow
def test_the_migration_files_lock_timeout_ends_a_wait_after_the_build_without_a_retry(db, migrations_copy):
    """The file's lock_timeout bounds every single lock wait, the wait for an old snapshot too; there
    it ends a built index's wait: exit 3, saying so, its leftover dropped, no second build."""
    claim_file = migrations_copy / "0001.claim_cust_date_outcome_cov.sql"
    claim_file.write_text(claim_file.read_text().replace("SET lock_timeout = '10min';", "SET lock_timeout = '2s';"))
    holder = Holder(db.connect())
    result = invoke("migrate", "--dsn", db.url, "--migrations", str(migrations_copy), "--max-wait", "1",
                    "--retries", "2")
    with db.connect() as conn:
        left = (invalid_index_count(conn), index_oid(conn, CLAIM_INDEX))
    holder.release()
    assert result.returncode == 3, result.stdout + result.stderr
    [error] = result.stderr.strip().splitlines()
    assert error.startswith(f"error: {CLAIM_INDEX} not built: it was built and only waiting (waiting for old "
                            f"snapshots) to become valid, for pid {holder.pid} ("), error
    assert "the migration file's lock_timeout ended the wait" in error and "not retried" in error
    assert no_build_after_a_finished_one(result.stdout), result.stdout
    assert left == (0, None)


@pytest.mark.slow
def test_max_wait_after_build_ends_the_wait_and_says_what_holds_it(db):
    holder = Holder(db.connect())
    result = invoke("migrate", "--dsn", db.url, "--max-wait", "1", "--max-wait-after-build", "2", "--retries", "3")
    with db.connect() as conn:
        assert_none_built(conn)
    holder.release()
    assert result.returncode == 3, result.stdout + result.stderr
    assert "waiting up to --max-wait-after-build 2s" in result.stdout
    [error] = result.stderr.strip().splitlines()
    assert f"for pid {holder.pid} (" in error and "--max-wait-after-build 2s ended the wait" in error
    assert "blocks no reads or writes, only DDL and VACUUM on upstream_claimrecord" in error
    assert "run `invoke migrate` again" in error
    assert no_build_after_a_finished_one(result.stdout), result.stdout


@pytest.mark.parametrize("value", ["0", "soon", "-1"])
def test_max_wait_after_build_must_be_a_positive_number(db, value):
    result = invoke("migrate", "--dsn", db.url, "--max-wait-after-build", value)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: --max-wait-after-build must be a number >= 0.1, not {value!r}"
    with db.connect() as conn:
        assert_none_built(conn)


# --- build settings -------------------------------------------------------------

SETTINGS_FILE = 'max-parallel-maintenance-workers = 2\nmaintenance-work-mem = "64MB"'


def sets_before_each_build(script: str) -> list[list[str]]:
    """The build settings' SETs the script puts before each CREATE INDEX."""
    found, pending = [], []
    for line in script.splitlines():
        if line.startswith(("SET maintenance_work_mem", "SET max_parallel_maintenance_workers")):
            pending.append(line)
        elif line.startswith("CREATE INDEX CONCURRENTLY"):
            found.append(pending)
            pending = []
    return found


@pytest.mark.slow
def test_sql_prints_the_build_settings_flags_over_the_file_over_the_defaults(tmp_path):
    default = invoke("sql")  # both settings the server's: no SET of either, so nothing to take back
    assert sets_before_each_build(default.stdout) == [[]] * 3
    assert default.stdout.count("RESET ALL;") == 0
    from_file = invoke("sql", env=settings_env(tmp_path, SETTINGS_FILE))
    assert from_file.stdout.count("RESET ALL;") == 3
    assert sets_before_each_build(from_file.stdout) == [[
        "SET maintenance_work_mem = '64MB';", "SET max_parallel_maintenance_workers = '2';"]] * 3
    flags = invoke("sql", "--parallel-workers", "0", "--maintenance-work-mem", "1GB",
                   env=settings_env(tmp_path, SETTINGS_FILE))
    assert sets_before_each_build(flags.stdout) == [[
        "SET maintenance_work_mem = '1GB';", "SET max_parallel_maintenance_workers = '0';"]] * 3
    bad = invoke("sql", "--maintenance-work-mem", "lots")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "error: --maintenance-work-mem must be a size such as 1GB or 512MB, not 'lots'"


# A table whose index build scans slowly (each row's key costs 5 ms, in whichever process computes it), big
# enough in pages for three parallel workers once min_parallel_table_scan_size is 0; the sort is quick.
SLOW_SCAN_SETUP = """
CREATE FUNCTION slow_key(int4) RETURNS int4 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$ BEGIN PERFORM pg_sleep(0.005); RETURN $1; END $$;
CREATE TABLE app_report (n int4) WITH (fillfactor = 10);
INSERT INTO app_report SELECT i FROM generate_series(1, 600) AS i;
"""
SLOW_MIGRATION = """-- Test: an index whose build scans slowly, to watch the build's parallel workers.
-- transactional: false
CREATE INDEX CONCURRENTLY app_report_slow ON app_report USING btree (slow_key(n));
"""
SLOW_ROLLBACK = """-- Test: drops app_report_slow.
-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS app_report_slow;
"""


@pytest.fixture
def slow_scan(db, tmp_path):
    """The slow table in the test's database, and a migrations folder building its index."""
    with db.connect() as conn:
        conn.execute(SLOW_SCAN_SETUP)
        conn.execute(psycopg.sql.SQL("ALTER DATABASE {} SET min_parallel_table_scan_size = 0").format(
            psycopg.sql.Identifier(db.name)))
    folder = tmp_path / "slow-migrations"
    folder.mkdir()
    (folder / "0001.app_report_slow.sql").write_text(SLOW_MIGRATION)
    (folder / "0001.app_report_slow.rollback.sql").write_text(SLOW_ROLLBACK)
    return folder


def parallel_workers_of_the_build(conn, run: Running) -> set[int]:
    """Every parallel worker seen in pg_stat_activity with the build's backend as its leader_pid, polled
    from the build's start until migrate ends."""
    workers: set[int] = set()
    while run.process.poll() is None:
        workers |= {pid for (pid,) in conn.execute(
            "SELECT w.pid FROM pg_stat_progress_create_index AS p JOIN pg_stat_activity AS w ON w.leader_pid = p.pid"
            " WHERE p.relid = 'app_report'::regclass AND w.backend_type = 'parallel worker'")}
    return workers


@pytest.mark.parametrize("flags, expected", [
    # The file's 2 workers at 1GB would launch two: the flag's 1 launches one.
    (("--parallel-workers", "1", "--maintenance-work-mem", "1GB"), 1),
    # The file's 64MB allows one worker (PostgreSQL gives each participant 32MB at least): 96MB allows two.
    (("--maintenance-work-mem", "96MB"), 2),
], ids=["parallel-workers", "maintenance-work-mem"])
@pytest.mark.slow
def test_build_settings_are_the_builds_own(db, slow_scan, tmp_path, flags, expected):
    """Seen on the build itself: the parallel workers it launches (pg_stat_activity.leader_pid, 13+)
    follow from both settings; and the runner's sessions keep no setting afterwards."""
    with db.connect() as conn:
        if conn.info.server_version < 130000:
            pytest.skip("pg_stat_activity.leader_pid is PostgreSQL 13+")
        run = Running("migrate", "--dsn", db.url, "--migrations", str(slow_scan), *flags,
                      env=settings_env(tmp_path, SETTINGS_FILE))
        workers = parallel_workers_of_the_build(conn, run)
        result = run.finish()
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(workers) == expected, workers
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'app_report_slow'::regclass"
                            ).fetchone()[0] is True


@pytest.mark.slow
@pytest.mark.parametrize("database_workers", [0, 2])
def test_without_a_flag_or_setting_the_build_takes_the_servers_workers(db, slow_scan, database_workers):
    """Issue 22: by default the build's session sets no max_parallel_maintenance_workers and takes the
    server's (here the database's), as a bare CREATE INDEX CONCURRENTLY does; its 1GB allows two."""
    with db.connect() as conn:
        if conn.info.server_version < 130000:
            pytest.skip("pg_stat_activity.leader_pid is PostgreSQL 13+")
        for name, value in (("max_parallel_maintenance_workers", str(database_workers)),
                            ("maintenance_work_mem", "1GB")):
            conn.execute(psycopg.sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                psycopg.sql.Identifier(db.name), psycopg.sql.Identifier(name), psycopg.sql.Literal(value)))
        run = Running("migrate", "--dsn", db.url, "--migrations", str(slow_scan),
                      env=clean_env(UPSTREAM_INDEXES_SETTINGS=os.devnull))
        workers = parallel_workers_of_the_build(conn, run)
        result = run.finish()
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(workers) == database_workers, workers


# --- how far a phase is, and the time left ---------------------------------------

def test_the_watcher_gives_the_time_left_while_the_table_is_scanned(db, slow_scan):
    """A real build watched as migrate watches it: while it scans the table, blocks done of total and,
    once the pace is known, the seconds left."""
    builder = db.connect()
    builder.execute("SET max_parallel_maintenance_workers = 0")  # the leader alone counts the blocks
    snapshots: list[Snapshot] = []

    def build():
        builder.execute("CREATE INDEX CONCURRENTLY app_report_slow ON app_report (slow_key(n))")

    thread = threading.Thread(target=build, daemon=True)
    with Watchdog(Target(db.conninfo, "test"), builder.info.backend_pid, 60, snapshots.append):
        thread.start()
        thread.join(120)
    builder.close()
    scanning = [s for s in snapshots if s.phase == "building index: scanning table" and s.counter]
    assert scanning, [s.phase for s in snapshots]
    timed = [s for s in scanning if s.seconds_left is not None]
    assert timed and all(s.counter[2] == "blocks" and s.counter[0] < s.counter[1] for s in timed), scanning
    # 600 rows at 5 ms each: the first estimate is seconds, not minutes.
    assert 0 < timed[0].seconds_left < 30, timed[0]


def snapshot(phase, elapsed=2.5, seconds_left=None, blocker=None, **counts):
    values = dict(blocks_done=None, blocks_total=None, tuples_done=None, tuples_total=None)
    values.update(counts)
    return Snapshot(elapsed=elapsed, phase=phase, waiting_seconds=0, blocker=blocker, seconds_left=seconds_left,
                    **values)


def test_pace_gives_the_time_left_from_the_phase_so_far():
    pace = Pace()
    scanning = "building index: scanning table"
    assert pace.seconds_left(scanning, 10.0, (100, 1000, "blocks")) is None  # the phase's first look
    assert pace.seconds_left(scanning, 12.0, (300, 1000, "blocks")) == pytest.approx(7.0)  # 100 blocks/s
    assert pace.seconds_left("building index: loading tuples in tree", 13.0, (0, 50, "tuples")) is None
    assert pace.seconds_left("building index: sorting live tuples", 14.0, None) is None


def test_plain_lines_show_the_count_and_time_left_every_ten_seconds():
    out = io.StringIO()
    reporter = LinePrinter(out)
    scanning = "building index: scanning table"
    with index_events.statements(reporter, CLAIM_INDEX):
        for snap in (snapshot(scanning, elapsed=1.0, blocks_done=0, blocks_total=40_000),
                     snapshot(scanning, elapsed=5.0, seconds_left=20, blocks_done=7_000,
                              blocks_total=40_000),  # under 10 s since the last line
                     snapshot(scanning, elapsed=11.5, seconds_left=83, blocks_done=12_000, blocks_total=40_000),
                     snapshot("building index: sorting live tuples", elapsed=30.0),
                     snapshot("building index: sorting live tuples", elapsed=45.0)):  # no counter: said once
            reporter.emit(index_events.Progress(CLAIM_INDEX, snap))
    assert out.getvalue().splitlines() == [
        f"  {CLAIM_INDEX}: {scanning} (1.0s; 0 of 40,000 blocks)",
        f"  {CLAIM_INDEX}: {scanning} (11.5s; 12,000 of 40,000 blocks, 1m 23s left)",
        f"  {CLAIM_INDEX}: building index: sorting live tuples (30.0s)",
    ]


def test_terminal_display_shows_the_time_left():
    from rich.console import Console

    out = io.StringIO()
    reporter = LiveDisplay(out, Console(file=out, force_terminal=True, width=80))
    with index_events.statements(reporter, CLAIM_INDEX):
        reporter.emit(index_events.Progress(CLAIM_INDEX, snapshot("building index: loading tuples in tree",
                                                            seconds_left=3725, tuples_done=1_500_000,
                                                            tuples_total=3_000_000)))
        reporter._live.refresh()
    assert "1,500,000 of 3,000,000 tuples, 1h 02m left" in out.getvalue()


def test_a_wait_after_the_build_is_told_apart_from_one_before():
    blocker = Backend(pid=4242, role="app", state="idle in transaction", age_seconds=31, query="BEGIN")
    assert not snapshot("waiting for writers before build", blocker=blocker).built
    assert not snapshot(None).built and not snapshot("building index: scanning table").built
    assert snapshot("waiting for old snapshots", blocker=blocker).built
    assert snapshot("waiting for writers before validation").built
    assert snapshot("waiting for old snapshots (3 shard commands on workers; x on w:1)").built  # Citus
    assert not snapshot("running (3 shard commands on workers; a shard on w:1)").built


# --- the bench's held-snapshot scenario ----------------------------------------------

@pytest.mark.bench
@pytest.mark.slow
def test_held_snapshot_bench_counts_one_build_per_index(db, tmp_path):
    """`invoke bench --held-snapshot` at a tiny scale, the snapshot held past --max-wait: its report
    counts one attempt and one index oid per index, and the claim build's wait after its build."""
    # --max-wait 3: past deadlock_timeout (1s), after which an autovacuum of the freshly loaded tables
    # that holds up the build's lock gives way; with 1 it was once cancelled and retried under load.
    result = invoke("bench", "--held-snapshot", "--scale", "0.004", "--hold", "6", "--max-wait", "3",
                    "--dsn", db.url, "--i-know-this-writes", "--out", str(tmp_path), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    (report_path,) = tmp_path.glob("*-held-snapshot-scale0.004.json")
    report = json.loads(report_path.read_text())
    assert report["migrate"]["exit_code"] == 0 and report["migrate"]["retries"] == 0
    rows = {row["index"]: row for row in report["indexes"]}
    assert [row["attempts"] for row in rows.values()] == [1, 1, 1]
    claim = rows[CLAIM_INDEX]
    assert claim["builds_seen"] == 1 and SNAPSHOT_WAIT in claim["phases_seen"][0]
    assert claim["waiting_after_build_s"] > 3  # past --max-wait, and not cancelled
    assert any("is built and only waits" in line for line in report["migrate"]["output"])
    assert f"| {CLAIM_INDEX} | built | 1 | 1 |" in report_path.with_suffix(".md").read_text()
