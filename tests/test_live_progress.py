"""Progress while `invoke migrate` builds: phases advance and a session holding the build up is
named by pid, through the plain output a CI log gets; the terminal display (rich) rendered."""

import io
import re

import psycopg
import pytest
from rich.console import Console

from live import Running
from support import CLAIM_INDEX, assert_all_built
from upstream_indexes import index_events
from upstream_indexes.backends import Backend
from upstream_indexes.live import LiveDisplay
from upstream_indexes.watchdog import Snapshot

COPIES = 80  # the test template's 30k claims x 80: 2.4M rows, a build of seconds
COPY_CLAIMS = """INSERT INTO upstream_claimrecord (customer_id, upload_id, payer, cpt, cpt_group, submitted_date,
                   decided_date, outcome, modifier_codes, diagnosis_codes, processed_at, updated_at)
                 SELECT customer_id, upload_id, payer, cpt, cpt_group, submitted_date, decided_date, outcome,
                        modifier_codes, diagnosis_codes, processed_at, updated_at
                 FROM upstream_claimrecord, generate_series(1, %(copies)s) LIMIT %(limit)s"""


def grow_claims(db) -> None:
    """Copy the demo claims COPIES times. Without the table's other indexes and FK triggers
    (this database is the test's own), so loading takes seconds too."""
    with db.connect() as conn:
        conn.execute("""DO $$ DECLARE i regclass; BEGIN
                          FOR i IN SELECT indexrelid::regclass FROM pg_index
                                   WHERE indrelid = 'upstream_claimrecord'::regclass AND NOT indisprimary LOOP
                            EXECUTE format('DROP INDEX %s', i);
                          END LOOP; END $$""")
        conn.execute("SET session_replication_role = replica")
        conn.execute(COPY_CLAIMS, {"copies": COPIES - 1, "limit": None})


@pytest.mark.slow
def test_migrate_shows_phases_advancing_and_names_each_blocker(db):
    grow_claims(db)
    writer = psycopg.connect(db.conninfo, autocommit=True)
    reader = psycopg.connect(db.conninfo, autocommit=True)
    try:
        # An uncommitted write: the build waits for it before it starts.
        writer.execute("BEGIN")
        writer.execute(COPY_CLAIMS, {"copies": 1, "limit": 1})
        writer_pid = writer.info.backend_pid
        run = Running("migrate", "--dsn", db.url)
        first_wait = run.wait_for_line(f"waiting for pid {writer_pid}", timeout=120).string
        assert first_wait.startswith(f"  {CLAIM_INDEX}: waiting for writers before build: waiting for pid")
        assert "idle in transaction" in first_wait and "INSERT INTO upstream_claimrecord" in first_wait

        # A snapshot older than the build's: the build waits for it once it has built everything.
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT 1")
        writer.execute("COMMIT")
        reader_pid = reader.info.backend_pid
        second_wait = run.wait_for_line(f"waiting for pid {reader_pid}", timeout=120).string
        assert second_wait.startswith(f"  {CLAIM_INDEX}: waiting for old snapshots: waiting for pid")
        reader.execute("COMMIT")
        result = run.finish()
        assert result.returncode == 0, result.stderr
    finally:
        writer.close()
        reader.close()

    lines = result.stdout.splitlines()
    phases = [line.split(": ", 2)[1].split(" (")[0] for line in lines if line.startswith(f"  {CLAIM_INDEX}: ")]
    assert phases[0] == "waiting for writers before build" and phases[-1] == "waiting for old snapshots"
    between = phases[1:-1]
    assert len(set(between)) >= 2, phases  # the build's own phases, each once, in order
    assert all(p.startswith(("building index", "index validation", "waiting for writers before validation"))
               for p in between), phases
    assert any(line.startswith(f"0001.{CLAIM_INDEX}: built {CLAIM_INDEX} in") for line in lines)
    with db.connect() as conn:
        assert_all_built(conn)


# --- the terminal display ----------------------------------------------------

def snapshot(phase, blocker=None, **counts):
    values = dict(blocks_done=None, blocks_total=None, tuples_done=None, tuples_total=None)
    values.update(counts)
    return Snapshot(elapsed=2.5, phase=phase, waiting_seconds=7 if blocker else 0, blocker=blocker, **values)


def test_terminal_display_shows_counts_and_the_blocker():
    out = io.StringIO()
    reporter = LiveDisplay(out, Console(file=out, force_terminal=True, width=160))
    blocker = Backend(pid=4242, role="app", state="idle in transaction", age_seconds=31, query="BEGIN")
    with index_events.statements(reporter, CLAIM_INDEX):
        reporter.emit(index_events.Progress(CLAIM_INDEX, snapshot("building index: scanning table", blocks_done=500,
                                                            blocks_total=1000)))
        reporter._live.refresh()
        scanning = out.getvalue()
        reporter.emit(index_events.Progress(CLAIM_INDEX, snapshot("waiting for old snapshots", blocker=blocker)))
        reporter._live.refresh()
    assert "building index: scanning table" in scanning and "500 of 1,000 blocks" in scanning and "2.5s" in scanning
    waiting = out.getvalue()[len(scanning):]
    assert "waiting 7s for pid 4242 (app, idle in transaction, open 31s)" in waiting
    # the blocker stays in the scroll-back as a line of its own
    assert f"  {CLAIM_INDEX}: waiting for old snapshots: waiting for pid 4242" in waiting


def test_terminal_display_fits_80_columns():
    """Issue 15: at 80 columns the index name was cut and the phase wrapped onto unindented lines."""
    out = io.StringIO()
    reporter = LiveDisplay(out, Console(file=out, force_terminal=True, width=80, color_system=None))
    index = "upload_cust_date_status_cov"  # the longest name, with the longest phase
    blocker = Backend(pid=4242, role="app_reporting", state="idle in transaction", age_seconds=31,
                      query="SELECT count(*) FROM upstream_upload WHERE customer_id = 7 AND status = 'failed'")
    with index_events.statements(reporter, index):
        reporter.emit(index_events.Progress(index, snapshot("waiting for readers before marking dead", blocks_done=500,
                                                      blocks_total=1000)))
        reporter._live.refresh()
        reporter.emit(index_events.Progress(index, snapshot("building index: loading tuples in tree", blocker=blocker,
                                                      tuples_done=5, tuples_total=10)))
        reporter._live.refresh()
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).replace("\r", "\n")
    lines = [line for line in screen.splitlines() if line.strip()]
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert any(f"  {index}: waiting for readers before marking dead" in line for line in lines), "\n".join(lines)
    assert any(f"  {index}: building index: loading tuples in tree" in line for line in lines), "\n".join(lines)
    # a wrapped line goes on indented: no line of the display starts at column 0
    assert all(line.startswith("  ") for line in lines), "\n".join(lines)
