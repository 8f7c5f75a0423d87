"""Every fault of the new kinds, caused for real (issue 18, points 3 and 5): a duplicate written
during a unique build; rows violating a CHECK written after the pre-check; cancel or kill during a
unique build, between ADD ... NOT VALID and VALIDATE, during VALIDATE, during a promotion and its
rollback. After each, the next migrate (or rollback) ends with everything valid and recorded (or
taken back); a constraint of ours left NOT VALID is validated, never re-added."""

import json

import jsonschema
import pytest

from upstream_indexes import index_events
from upstream_indexes.jsonreport import SCHEMA_PATH
from upstream_indexes.watchdog import VALIDATING, Snapshot

from kinds import examples, remove_drift_duplicates
from live import Holder, Running, wait_until
from support import applied_ids, invoke

SLOW_CHECK = """-- A CHECK whose VALIDATE takes seconds on the test data (a few ms per row): room to act during it.
-- transactional: false
SET statement_timeout = 0;
SET lock_timeout = '2s';
ALTER TABLE upstream_upload ADD CONSTRAINT upload_slow_check CHECK (upstream_slow_true(row_count)) NOT VALID;
SET lock_timeout = '10min';
ALTER TABLE upstream_upload VALIDATE CONSTRAINT upload_slow_check;
"""
SLOW_CHECK_ROLLBACK = """-- Drops the slow CHECK.
-- transactional: false
SET lock_timeout = '2s';
ALTER TABLE upstream_upload DROP CONSTRAINT IF EXISTS upload_slow_check;
"""
SLOW_TRUE = ("CREATE FUNCTION upstream_slow_true(integer) RETURNS boolean LANGUAGE sql VOLATILE "
             "AS $$ SELECT pg_sleep(0.003) IS NOT NULL $$")


def state(db, folder, migration_id: str) -> str:
    doc = json.loads(invoke("status", "--json", "--dsn", db.url, "--migrations", str(folder)).stdout)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))  # NOT VALID too
    return next(i["final_state"] for i in doc["indexes"] if i["migration"] == migration_id)


def ours_running(conn, text: str) -> int | None:
    """The pid of a backend of ours running a statement containing `text` (not waiting for a lock)."""
    row = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'upstream-indexes' "
                       "AND state = 'active' AND wait_event_type IS DISTINCT FROM 'Lock' AND query ILIKE %s",
                       [f"%{text}%"]).fetchone()
    return row[0] if row else None


def constraint(conn, name: str) -> tuple | None:
    return conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s", [name]).fetchone()


@pytest.fixture
def slow(db, tmp_path):
    """A folder of one migration: a slow CHECK (0004)."""
    folder = examples(tmp_path / "migrations")
    (folder / "0004.upload_slow_check.sql").write_text(SLOW_CHECK)
    (folder / "0004.upload_slow_check.rollback.sql").write_text(SLOW_CHECK_ROLLBACK)
    with db.connect() as conn:
        conn.execute(SLOW_TRUE)
    return folder


def migrate_slow(db, folder) -> Running:
    return Running("migrate", "--dsn", db.url, "--migrations", str(folder), "--skip-data-checks")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cancel", "kill"])
def test_stopped_during_validate_the_next_migrate_validates_it(db, slow, how):
    run = migrate_slow(db, slow)
    with db.connect() as conn:
        pid = wait_until(lambda: ours_running(conn, "VALIDATE CONSTRAINT upload_slow_check"), "VALIDATE to run")
        if how == "kill":  # the migrator dies, and so does its VALIDATE (a crash, a DBA's pg_terminate_backend)
            run.kill()
        conn.execute(f"SELECT {'pg_cancel_backend' if how == 'cancel' else 'pg_terminate_backend'}(%s)", [pid])
        wait_until(lambda: not ours_running(conn, "VALIDATE CONSTRAINT"), "VALIDATE to end")
        assert constraint(conn, "upload_slow_check") == (False,)  # NOT VALID: new rows checked already
    if how == "cancel":
        result = run.finish()
        assert result.returncode == 1, result.stdout + result.stderr
        assert "cancelled by another session" in result.stderr
    assert state(db, slow, "0004.upload_slow_check") == "NOT VALID"
    status = invoke("status", "--dsn", db.url, "--migrations", str(slow))
    assert status.returncode == 1 and "0004.upload_slow_check" in status.stdout and "NOT VALID" in status.stdout
    again = invoke("migrate", "--dsn", db.url, "--migrations", str(slow), "--skip-data-checks")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "ADD CONSTRAINT" not in again.stdout and "validated upload_slow_check in" in again.stdout
    with db.connect() as conn:
        assert constraint(conn, "upload_slow_check") == (True,)
        assert "0004.upload_slow_check" in applied_ids(conn)


@pytest.mark.slow
def test_killed_between_add_and_validate_the_next_migrate_validates_it(db, slow):
    run = migrate_slow(db, slow)
    run.wait_for_line(r"0004.upload_slow_check: ALTER TABLE upstream_upload ADD CONSTRAINT upload_slow_check .* NOT "
                      r"VALID \(")
    run.kill()
    with db.connect() as conn:  # its VALIDATE, if it had begun, ends with the run
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = 'upstream-indexes' AND pid <> pg_backend_pid()")
        wait_until(lambda: not ours_running(conn, "VALIDATE CONSTRAINT"), "no VALIDATE of ours")
        assert constraint(conn, "upload_slow_check") == (False,)
    dry = invoke("migrate", "--dsn", db.url, "--migrations", str(slow), "--skip-data-checks", "--dry-run")
    assert "0004.upload_slow_check: upload_slow_check is NOT VALID" in dry.stdout and "migrate validates it" in dry.stdout
    again = invoke("migrate", "--dsn", db.url, "--migrations", str(slow), "--skip-data-checks")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "removing a stale yoyo lock" in again.stdout and "validated upload_slow_check" in again.stdout
    with db.connect() as conn:
        assert constraint(conn, "upload_slow_check") == (True,) and "0004.upload_slow_check" in applied_ids(conn)


@pytest.mark.slow
def test_killed_during_validate_which_the_server_finishes(db, slow):
    """SIGKILL of the migrator alone: the server's VALIDATE runs on and commits; the next migrate (waiting for
    its lock meanwhile, if need be) records it."""
    run = migrate_slow(db, slow)
    run.wait_for_line(r"^  upload_slow_check: validating \(\d+\.\ds\)$")  # its progress: the time it has taken
    run.kill()
    again = invoke("migrate", "--dsn", db.url, "--migrations", str(slow), "--skip-data-checks")
    assert again.returncode == 0, again.stdout + again.stderr
    with db.connect() as conn:
        assert constraint(conn, "upload_slow_check") == (True,) and "0004.upload_slow_check" in applied_ids(conn)


@pytest.mark.slow
def test_a_duplicate_written_during_the_unique_build(db, tmp_path):
    """The pre-check cannot see an uncommitted duplicate; the build waits for its writer, then meets it:
    the key PostgreSQL names is shown, the INVALID index dropped, nothing recorded, exit 1."""
    folder = examples(tmp_path / "migrations", "0005")
    with db.connect() as conn:
        remove_drift_duplicates(conn)
    writer = db.connect()
    writer.execute("BEGIN")
    key = writer.execute("INSERT INTO upstream_driftevent (customer_id, report_run_id, payer, cpt_group, drift_type, "
                         "baseline_value, current_value, delta_value, severity, confidence, baseline_start, "
                         "baseline_end, current_start, current_end, created_at) SELECT customer_id, report_run_id, "
                         "payer, cpt_group, drift_type, 0, 0, 0, 0, 0, baseline_start, baseline_end, current_start, "
                         "current_end, now() FROM upstream_driftevent ORDER BY id LIMIT 1 "
                         "RETURNING customer_id, report_run_id").fetchone()
    run = Running("migrate", "--dsn", db.url, "--migrations", str(folder))
    run.wait_for_line(r"0005.drift_event_unique: no duplicate keys of drift_event_unique")
    with db.connect() as conn:
        wait_until(lambda: conn.execute("SELECT 1 FROM pg_stat_progress_create_index WHERE phase = "
                                        "'waiting for writers before build'").fetchone(), "the build to wait")
    writer.execute("COMMIT")
    writer.close()
    result = run.finish()
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: 0005.drift_event_unique: the unique build of drift_event_unique met a key "
                                    "more than one row holds, written since the check for duplicates (")
    assert f"Key (customer_id, report_run_id, payer, cpt_group, drift_type)=({key[0]}, {key[1]}, " in result.stderr
    assert "its INVALID index was dropped and nothing recorded" in result.stderr
    with db.connect() as conn:
        assert conn.execute("SELECT to_regclass('drift_event_unique')").fetchone()[0] is None
        assert "0005.drift_event_unique" not in applied_ids(conn)


@pytest.mark.slow
def test_rows_violating_a_check_written_after_the_pre_check(db, tmp_path):
    """An uncommitted violating row: the pre-check cannot see it, and ADD waits for its writer (retried under
    its short lock_timeout); committed, VALIDATE meets it: the NOT VALID constraint is dropped, exit 1."""
    folder = examples(tmp_path / "migrations", "0004")
    writer = db.connect()
    writer.execute("BEGIN")
    bad = writer.execute("UPDATE upstream_upload SET status = 'uploading' WHERE id = 5 RETURNING id").fetchone()[0]
    run = Running("migrate", "--dsn", db.url, "--migrations", str(folder), "--backoff", "0.5")
    run.wait_for_line(r"held the lock past 2s: gave up")
    writer.execute("COMMIT")
    writer.close()
    result = run.finish()
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: 0004.upload_status_valid: VALIDATE found rows of upstream_upload that "
                                    "violate upload_status_valid, written since the pre-check (")
    assert "the NOT VALID constraint was dropped and nothing recorded" in result.stderr
    with db.connect() as conn:
        assert constraint(conn, "upload_status_valid") is None
        assert "0004.upload_status_valid" not in applied_ids(conn)
    stopped = invoke("migrate", "--dsn", db.url, "--migrations", str(folder))
    assert stopped.returncode == 2 and f'{{"id": {bad}, "status": "uploading"}}' in stopped.stderr


@pytest.mark.slow
def test_killed_during_a_unique_build_the_next_migrate_converges(db, tmp_path):
    folder = examples(tmp_path / "migrations", "0005", "0006")
    with db.connect() as conn:
        remove_drift_duplicates(conn)
    holder = Holder(db.connect(), write_table="upstream_driftevent")  # the build waits for it, before building
    run = Running("migrate", "--dsn", db.url, "--migrations", str(folder))
    with db.connect() as conn:
        wait_until(lambda: conn.execute("SELECT 1 FROM pg_stat_progress_create_index WHERE phase = "
                                        "'waiting for writers before build'").fetchone(), "the unique build to wait")
    run.kill()  # the server's build goes on once the holder ends
    holder.release()
    again = invoke("migrate", "--dsn", db.url, "--migrations", str(folder))
    assert again.returncode == 0, again.stdout + again.stderr
    found = json.loads(invoke("status", "--json", "--dsn", db.url, "--migrations", str(folder)).stdout)
    assert found["exit_code"] == 0 and {i["final_state"] for i in found["indexes"]} == {"valid"}


@pytest.mark.slow
def test_killed_during_a_promotion_and_its_rollback(db, tmp_path):
    folder = examples(tmp_path / "migrations", "0005", "0006")
    with db.connect() as conn:
        remove_drift_duplicates(conn)
    assert invoke("migrate", "--dsn", db.url, "--migrations", str(folder), "--to", "0005").returncode == 0
    # The promotion waits for its lock behind a reader of the table; killed there: nothing was changed.
    holder = Holder(db.connect(), read_table="upstream_driftevent")
    run = Running("migrate", "--dsn", db.url, "--migrations", str(folder), "--to", "0006", "--backoff", "0.5")
    run.wait_for_line(r"0006.drift_event_unique: .* held the lock past 2s: gave up")
    run.kill()
    holder.release()
    assert state(db, folder, "0006.drift_event_unique") == "missing"
    assert invoke("migrate", "--dsn", db.url, "--migrations", str(folder), "--to", "0006").returncode == 0
    assert state(db, folder, "0006.drift_event_unique") == "valid"
    # Its rollback: the twin built, then the DROP CONSTRAINT waits behind a reader; killed there. (A READ
    # COMMITTED reader, idle in its transaction: it holds no snapshot the twin's concurrent build would wait for.)
    reader = db.connect()
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM upstream_driftevent")
    run = Running("rollback", "--dsn", db.url, "--migrations", str(folder))
    run.wait_for_line(r"0006.drift_event_unique: built drift_event_unique_twin")
    run.wait_for_line(r"0006.drift_event_unique: .* held the lock past 2s: gave up")
    run.kill()
    reader.execute("COMMIT")
    reader.close()
    with db.connect() as conn:
        assert constraint(conn, "drift_event_unique") == (True,)
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'drift_event_unique_twin'::regclass"
                            ).fetchone() == (True,)
    again = invoke("rollback", "--dsn", db.url, "--migrations", str(folder))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "building drift_event_unique_twin" not in again.stdout  # went on from where it stopped
    with db.connect() as conn:
        assert constraint(conn, "drift_event_unique") is None
        assert conn.execute("SELECT to_regclass('drift_event_unique_twin')").fetchone()[0] is None
        assert conn.execute("SELECT indisunique AND indisvalid FROM pg_index "
                            "WHERE indexrelid = 'drift_event_unique'::regclass").fetchone() == (True,)
        assert "0006.drift_event_unique" not in applied_ids(conn) and "0005.drift_event_unique" in applied_ids(conn)


def test_validate_shows_its_elapsed_time_every_ten_seconds():
    """PostgreSQL reports no progress of a VALIDATE: the line says how long it has run, again every 10 s."""
    news = index_events.PhaseNews()
    looks = [Snapshot(elapsed, VALIDATING, None, None, None, None, 0, None) for elapsed in (0.3, 5.0, 10.4, 12.0, 20.5)]
    assert [look.elapsed for look in looks if news(index_events.Progress("upload_status_valid", look))] == [0.3, 10.4, 20.5]
