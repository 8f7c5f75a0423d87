"""The runner's events (issue 10, part 3), without a database: every listener gets every event in
order, and the plain renderer gives the exact lines `invoke migrate` / `rollback` / `status` /
`accept` printed before there were events (the end-to-end tests assert on many of them)."""

import io

from upstream_indexes import events as ev, index_events, run_events, status_events
from upstream_indexes.catalog import Citus, CitusTable, IndexState, State
from upstream_indexes.backends import Backend
from upstream_indexes.ledger import LogEntry
from upstream_indexes.jsonreport import EventLog
from upstream_indexes.migrations import load
from upstream_indexes.overlaps import Overlap
from upstream_indexes.paths import MIGRATIONS_DIR, ROOT
from upstream_indexes.watchdog import Snapshot
from upstream_indexes.lines import LinePrinter, plain_lines
from upstream_indexes.topology import Replica
from upstream_indexes.whatif import IndexPlans, Plan, QueryPlan

CLAIMS, DRIFT, _ = load(MIGRATIONS_DIR)
BLOCKER = Backend(pid=4242, role="app", state="idle in transaction", age_seconds=31, query="BEGIN")
STANDBY = Replica("standby1", "127.0.0.1", "streaming", True, 4096, 2.25)


def snapshot(phase, elapsed=1.25, blocker=None):
    return Snapshot(elapsed=elapsed, phase=phase, blocks_done=None, blocks_total=None, tuples_done=None,
                    tuples_total=None, waiting_seconds=3 if blocker else 0, blocker=blocker)


# A migrate whose first build waits past --max-wait, is retried and built; then a rollback.
SCRIPT = [
    (run_events.WaitingForMigrator(77, "upstream-indexes", None, 12),
     ["waiting for the migrator in pid 77 (upstream-indexes, from local socket, connected 12s) to finish"]),
    (run_events.StaleYoyoLockRemoved(66, "2026-12-01 03:00:00"),
     ["removing a stale yoyo lock left by pid 66 at 2026-12-01 03:00:00 (no migrator holds the advisory lock)"]),
    (index_events.BuildStarted(CLAIMS.id, CLAIMS.index, CLAIMS.table, 1, 2),
     ["0001.claim_cust_date_outcome_cov: building claim_cust_date_outcome_cov on upstream_claimrecord ..."]),
    (index_events.StatementsStarted(CLAIMS.index), []),
    (index_events.Progress(CLAIMS.index, snapshot(None)), []),
    (index_events.Progress(CLAIMS.index, snapshot("waiting for writers before build", blocker=BLOCKER)),
     ["  claim_cust_date_outcome_cov: waiting for writers before build: waiting for "
      "pid 4242 (app, idle in transaction, open 31s): 'BEGIN'"]),
    (index_events.Progress(CLAIMS.index, snapshot("waiting for writers before build", 2.5, blocker=BLOCKER)), []),
    (index_events.StatementsEnded(CLAIMS.index), []),
    (index_events.BuildCancelled(CLAIMS.id, 1.0, BLOCKER.describe()),
     ["0001.claim_cust_date_outcome_cov: waited more than 1s for pid 4242 (app, idle in transaction, open 31s): "
      "'BEGIN': build cancelled"]),
    (index_events.DroppingLeftover(IndexState(CLAIMS, State.INVALID)),
     ["0001.claim_cust_date_outcome_cov: claim_cust_date_outcome_cov is INVALID (left by a failed or cancelled "
      "build): dropping it with DROP INDEX CONCURRENTLY"]),
    (index_events.Retrying(CLAIMS.id, 0.5), ["0001.claim_cust_date_outcome_cov: retrying in 0.5s"]),
    (index_events.BuildStarted(CLAIMS.id, CLAIMS.index, CLAIMS.table, 2, 2),
     ["0001.claim_cust_date_outcome_cov: building claim_cust_date_outcome_cov on upstream_claimrecord ... "
      "(attempt 2 of 2)"]),
    (index_events.StatementsStarted(CLAIMS.index), []),
    (index_events.ServerNotice(CLAIMS.index, "NOTICE", "hello"), ["  claim_cust_date_outcome_cov: server NOTICE: hello"]),
    (index_events.Progress(CLAIMS.index, snapshot("building index: scanning table")),
     ["  claim_cust_date_outcome_cov: building index: scanning table (1.2s)"]),
    (index_events.Progress(CLAIMS.index, snapshot("waiting for old snapshots", 2.5, blocker=BLOCKER)),
     ["  claim_cust_date_outcome_cov: waiting for old snapshots: waiting for "
      "pid 4242 (app, idle in transaction, open 31s): 'BEGIN'"]),
    (index_events.BuiltIndexWaits(CLAIMS.id, CLAIMS.index, CLAIMS.table, "waiting for old snapshots", BLOCKER.describe(),
                        1.0, None),
     ["0001.claim_cust_date_outcome_cov: claim_cust_date_outcome_cov is built and only waits (waiting for old "
      "snapshots) for pid 4242 (app, idle in transaction, open 31s): 'BEGIN' before it becomes valid; it blocks "
      "no reads or writes (only DDL and VACUUM on upstream_claimrecord), so --max-wait (1s, the wait before a "
      "build) does not cancel it: waiting until that session ends (Ctrl-C stops it: the next `invoke migrate` "
      "drops the INVALID index and builds it again)"]),
    (index_events.StatementsEnded(CLAIMS.index), []),
    (index_events.Built(CLAIMS.id, CLAIMS.index, 3.04, 5 * 1024 * 1024),
     ["0001.claim_cust_date_outcome_cov: built claim_cust_date_outcome_cov in 3.0s (5.0 MB)"]),
    (index_events.StandbyReplay(STANDBY),
     ["  standby standby1 (127.0.0.1, streaming): replay 2.2s behind, 4096 bytes of WAL to replay"]),
    (index_events.WaitingForStandby(STANDBY, 1.0),
     ["waiting for standby standby1 (127.0.0.1, streaming): replay 2.2s behind, 4096 bytes of WAL to replay "
      "to be under --max-replica-lag 1s before the next build"]),
    (index_events.Recorded(DRIFT.id, DRIFT.index),
     ["0002.drift_cust_date_sev_cov: drift_cust_date_sev_cov already exists, valid and identical to ours "
      "(built by hand, or by a run that was killed): recorded as applied"]),
    (index_events.Rebuilding(DRIFT.id, DRIFT.index),
     ["0002.drift_cust_date_sev_cov: recorded as applied but drift_cust_date_sev_cov is missing: building it again"]),
    (index_events.BuildingPartitions(CLAIMS.id, "upstream_claimrecord is partitioned (28 partitions): ..."),
     ["0001.claim_cust_date_outcome_cov: upstream_claimrecord is partitioned (28 partitions): ..."]),
    (index_events.PartitionStatement(CLAIMS.index, "claim_cust_date_outcome_cov: partition p1 (1 of 28 to build): building x"),
     ["  claim_cust_date_outcome_cov: partition p1 (1 of 28 to build): building x"]),
    (index_events.WaitingForOrphan(DRIFT.id, DRIFT.index, 99, 60.0),
     ["0002.drift_cust_date_sev_cov: a CREATE INDEX for drift_cust_date_sev_cov is still running in pid 99 "
      "(left by a killed run, or a DBA's): waiting up to 60s (--max-wait) for it to end"]),
    (index_events.OrphanEnded(DRIFT.id, DRIFT.index, "valid"),
     ["0002.drift_cust_date_sev_cov: that build ended; drift_cust_date_sev_cov is now valid"]),
    (index_events.WatchdogReconnected(DRIFT.index, "terminating connection due to administrator command"),
     ["  drift_cust_date_sev_cov: the watchdog's connection failed (terminating connection due to administrator "
      "command); connected again: it watches on, --max-wait holds"]),
    (run_events.MigratorLockLost(77, "terminating connection due to administrator command"),
     ["the session holding the migrator lock (pid 77) ended during the run (terminating connection due to "
      "administrator command): another migrator may have started meanwhile (`invoke status` shows where each "
      "index stands)"]),
    (index_events.BuiltIndexWaits(DRIFT.id, DRIFT.index, DRIFT.table, "waiting for old snapshots", BLOCKER.describe(),
                        1.0, 30.0),
     ["0002.drift_cust_date_sev_cov: drift_cust_date_sev_cov is built and only waits (waiting for old "
      "snapshots) for pid 4242 (app, idle in transaction, open 31s): 'BEGIN' before it becomes valid; it blocks "
      "no reads or writes (only DDL and VACUUM on upstream_driftevent), so --max-wait (1s, the wait before a "
      "build) does not cancel it: waiting up to --max-wait-after-build 30s"]),
    (index_events.WaitAfterBuildEnded(DRIFT.id, DRIFT.index, "waiting for old snapshots", BLOCKER.describe(),
                            "--max-wait-after-build 30s"),
     ["0002.drift_cust_date_sev_cov: drift_cust_date_sev_cov was built and only waiting (waiting for old "
      "snapshots) for pid 4242 (app, idle in transaction, open 31s): 'BEGIN'; --max-wait-after-build 30s ended "
      "the wait: build cancelled"]),
    (run_events.OneAtATime(3, "a reason"), ["--jobs 3: building one index at a time: a reason"]),
    (run_events.MigrateDone(12.34), ["migrate: done in 12.3s"]),
    (run_events.NothingToMigrate(3, None), ["nothing to migrate: all 3 migrations applied, their indexes valid"]),
    (run_events.NothingToMigrate(2, DRIFT.id),
     ["nothing to migrate: all 2 migrations up to 0002.drift_cust_date_sev_cov applied, their indexes valid"]),
    (run_events.Planned(CLAIMS.id, "absent: build it"), ["0001.claim_cust_date_outcome_cov: absent: build it"]),
    (run_events.Planned(CLAIMS.id, "absent: build it", ("SET lock_timeout = '10min';", "-- a comment\nCREATE INDEX x;")),
     ["0001.claim_cust_date_outcome_cov: absent: build it", "    SET lock_timeout = '10min';", "    -- a comment",
      "    CREATE INDEX x;"]),
    (run_events.WhatIfPlanned(IndexPlans(CLAIMS.id, CLAIMS.index, CLAIMS.table, CLAIMS.definition, 14286848, None, None, (
        QueryPlan("latest_claims", 1, True,
                  Plan("Index Scan", "claim_cust_decdate_idx",
                       "Index Scan Backward using claim_cust_decdate_idx on upstream_claimrecord", 10.67),
                  Plan("Index Only Scan", CLAIMS.index,
                       "Index Only Scan using claim_cust_date_outcome_cov on upstream_claimrecord", 0.69)),
        QueryPlan("denied_claims", 1, False, Plan("Seq Scan", None, "Seq Scan on upstream_claimrecord", 812.5),
                  Plan("Index Scan", "claim_cust_outcome_idx",
                       "Index Scan using claim_cust_outcome_idx on upstream_claimrecord", 12.0))))),
     ["0001.claim_cust_date_outcome_cov: what-if: claim_cust_date_outcome_cov on upstream_claimrecord, estimated "
      "13.6 MB (HypoPG)",
      "  latest_claims (customer 1): Index Only Scan using claim_cust_date_outcome_cov, estimated cost 10.67 -> 0.69 "
      "(before: Index Scan Backward using claim_cust_decdate_idx on upstream_claimrecord)",
      "  denied_claims (customer 1): NOT using claim_cust_date_outcome_cov: the plan stays Index Scan using "
      "claim_cust_outcome_idx on upstream_claimrecord, estimated cost 812.50 -> 12.00"]),
    (run_events.WhatIfPlanned(IndexPlans(DRIFT.id, DRIFT.index, DRIFT.table, DRIFT.definition, None, None, "hypopg: nope",
                                 ())),
     ["0002.drift_cust_date_sev_cov: what-if: HypoPG could not create drift_cust_date_sev_cov: hypopg: nope"]),
    # The kinds (issue 18): a unique index no query expects, and the constraints, which build no index.
    (run_events.WhatIfPlanned(IndexPlans("0005.drift_event_unique", "drift_event_unique", DRIFT.table,
                                 "CREATE UNIQUE INDEX drift_event_unique ON upstream_driftevent USING btree (customer_id)",
                                 1363968, None, None, (), True)),
     ["0005.drift_event_unique: what-if: drift_event_unique on upstream_driftevent, estimated 1.3 MB (HypoPG)",
      "  no catalogue query expects it: a unique index enforces its key, it need serve no query (as for verify)"]),
    (run_events.WhatIfNoIndex("0004.upload_status_valid", "check", None),
     ["0004.upload_status_valid: no what-if: a CHECK constraint builds no index"]),
    (run_events.WhatIfNoIndex("0006.drift_event_unique", "unique", "drift_event_unique"),
     ["0006.drift_event_unique: no what-if: a UNIQUE constraint USING INDEX builds no index (it takes "
      "drift_event_unique as built)"]),
    (run_events.WhatIfDone("1.4.0", 1, 2, (CLAIMS.index, DRIFT.index)),
     ["what-if (HypoPG 1.4.0; estimates, nothing built): 1 of 2 catalogue queries would use the pending index they "
      "expect; not shown to serve: claim_cust_date_outcome_cov, drift_cust_date_sev_cov"]),
    (run_events.WhatIfSkipped("HypoPG is not installed on this server"),
     ["what-if: skipped: HypoPG is not installed on this server"]),
    (run_events.DryRunDone(), ["dry run: nothing was changed"]),
    (index_events.Dropping(CLAIMS.id, CLAIMS.index),
     ["0001.claim_cust_date_outcome_cov: dropping claim_cust_date_outcome_cov ..."]),
    (index_events.RolledBack(CLAIMS.id, 0.26), ["0001.claim_cust_date_outcome_cov: rolled back in 0.3s"]),
    (run_events.NothingToRollBack(None), ["nothing to roll back: no migration is applied"]),
    (run_events.NothingToRollBack(CLAIMS.id),
     ["nothing to roll back: no migration after 0001.claim_cust_date_outcome_cov is applied"]),
    # A CHECK (issue 18): its data checked, added NOT VALID after a retry, validated.
    (index_events.DataChecked("0004.upload_status_valid", "rows of upstream_upload that violate upload_status_valid", 0.42),
     ["0004.upload_status_valid: no rows of upstream_upload that violate upload_status_valid (0.4s)"]),
    (index_events.LockRetry("0004.upload_status_valid", BLOCKER.describe(), "2s", 5.0),
     ["0004.upload_status_valid: pid 4242 (app, idle in transaction, open 31s): 'BEGIN' held the lock past 2s: "
      "gave up, so that no query queues behind it; retrying in 5s"]),
    (index_events.CatalogStepRan("0004.upload_status_valid", "ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid "
                       "CHECK (status IN ('processing')) NOT VALID", "2s", 7.02),
     ["0004.upload_status_valid: ALTER TABLE upstream_upload ADD CONSTRAINT upload_status_valid CHECK (status IN "
      "('processing')) NOT VALID (7.0s; catalog only, its lock waited for at most 2s)"]),
    (index_events.Validating("0004.upload_status_valid", "upload_status_valid", "upstream_upload", 300000),
     ["0004.upload_status_valid: validating upload_status_valid: a scan of upstream_upload (~300,000 rows) under "
      "SHARE UPDATE EXCLUSIVE, which blocks no reads or writes ..."]),
    (index_events.Validated("0004.upload_status_valid", "upload_status_valid", 1.26),
     ["0004.upload_status_valid: validated upload_status_valid in 1.3s"]),
]

STATUS = [
    (status_events.FileEdited("0001: edited since it was applied"), ["0001: edited since it was applied"]),
    (status_events.IndexStatus(IndexState(CLAIMS, State.VALID, size_bytes=2048), True,
                    LogEntry(CLAIMS.id, "apply", "2026-12-01 03:00:00", "ci", "box", "role app"), None),
     [f"{CLAIMS.id:40} applied  {CLAIMS.index:30} valid    2.0 kB",
      "  applied 2026-12-01 03:00:00 UTC by ci@box (role app)"]),
    (status_events.IndexStatus(IndexState(DRIFT, State.INVALID, shards_valid=1, shards_total=2, bad_shards=("s1: INVALID",)),
                    False, None, "foreign: refuse"),
     [f"{DRIFT.id:40} pending  {DRIFT.index:30} INVALID  -, shards 1/2 valid", "  shard s1: INVALID",
      "  foreign: refuse"]),
    (status_events.Overlaps(()), []),
    (status_events.Overlaps((Overlap("old_idx", CLAIMS.table, "(customer_id)", 1024, CLAIMS.index, "same", [], True),)),
     ["existing indexes the covering indexes make redundant (for the DBA to weigh; nothing is dropped):",
      "  old_idx (customer_id) on upstream_claimrecord, 1.0 kB: a prefix of claim_cust_date_outcome_cov, "
      "same order; a foreign key's index (Django's db_index)"]),
    (status_events.Logged(LogEntry(CLAIMS.id, "rollback", "2026-12-02 09:12:40", "dba", "bastion", None)),
     [f"{CLAIMS.id:40} rolled back 2026-12-02 09:12:40 UTC by dba@bastion"]),
    (status_events.HistoryDone(2), ["history: 2 entries, oldest first"]),
    (status_events.NothingToStamp(CLAIMS.id), [f"{CLAIMS.id}: nothing to stamp: it is recorded as applied"]),
    (status_events.Stamped(CLAIMS.id, CLAIMS.index, "by_hand_idx"),
     [f"{CLAIMS.id}: by_hand_idx is a valid index of its definition, renamed to {CLAIMS.index} (ALTER INDEX ... "
      "RENAME: blocks no reads or writes): recorded as applied, nothing built"]),
    (status_events.StampForced(CLAIMS.id, CLAIMS.index, "missing"),
     [f"{CLAIMS.id}: --force: recorded as applied without a valid index of its definition ({CLAIMS.index} is "
      f"missing); nothing was built or checked, and `invoke status` and `invoke migrate` still see {CLAIMS.index} "
      "as missing"]),
    (status_events.StatusDone(False, False), ["status: all applied and valid"]),
    (status_events.StatusDone(True, True), ["status: migrate has work to do, a human must decide"]),
    (status_events.StatusDone(False, True), ["status: a human must decide"]),
    (status_events.NothingToAccept(CLAIMS.id, "0123456789abcdef"),
     ["0001.claim_cust_date_outcome_cov: nothing to accept: its files are as applied (sha256 0123456789ab)"]),
    (status_events.Accepted(CLAIMS.id, (CLAIMS.path.name, CLAIMS.rollback_path.name), None, "beef"),
     ["0001.claim_cust_date_outcome_cov: accepted the edited 0001.claim_cust_date_outcome_cov.sql and "
      "0001.claim_cust_date_outcome_cov.rollback.sql: sha256 none recorded -> beef"]),
    (run_events.CitusCoordinator(Citus(True, 2, (CitusTable("upstream_claimrecord", "distributed", "customer_id", 32),
                                         CitusTable("upstream_upload", "reference", None, 1)))),
     ["citus: coordinator with 2 workers; upstream_claimrecord distributed by customer_id in 32 shards: each "
      "index is built and dropped through the coordinator on every shard"]),
]


class Recorder:
    def __init__(self):
        self.events = []

    def emit(self, event):
        self.events.append(event)


def test_every_listener_gets_every_event_in_order_and_the_plain_lines_are_todays():
    recorder, out = Recorder(), io.StringIO()
    listeners = ev.Listeners(recorder, LinePrinter(out))
    for event, _ in SCRIPT + STATUS:
        listeners.emit(event)
    assert recorder.events == [event for event, _ in SCRIPT + STATUS]
    # Progress lines once per phase or blocker of a build (the third look repeats the second).
    assert out.getvalue().splitlines() == [line for _, lines in SCRIPT + STATUS for line in lines]


def test_the_plain_lines_are_redacted():
    out = io.StringIO()
    LinePrinter(out).emit(status_events.FileEdited("see postgresql://app:s3cret@db/upstream"))
    assert "s3cret" not in out.getvalue()


def test_every_event_has_its_plain_text_in_the_one_renderer():
    """A new event type without a case in lines.plain_lines' families would print nothing: each is in the script."""
    scripted = {type(event) for event, _ in SCRIPT + STATUS}
    defined = {cls for family in (run_events, index_events, status_events) for cls in vars(family).values()
               if isinstance(cls, type) and issubclass(cls, ev.Event) and cls is not ev.Event}
    assert defined == scripted
    silent = {type(event) for event, lines in SCRIPT + STATUS if not plain_lines(event) and not lines}
    assert silent == {index_events.StatementsStarted, index_events.StatementsEnded, index_events.Progress,
                      status_events.Overlaps}


def test_the_runner_says_nothing_but_events():
    """No English in the runner: it reports by events only (and the benchmark reads them, not text)."""
    run_modules = ("runner", "scheduler", "executor", "watched", "standbys", "preflight", "sessions", "run")
    for path in [ROOT / "src" / "upstream_indexes" / f"{name}.py" for name in run_modules] + [ROOT / "benchmarks" / "builds.py"]:
        source = path.read_text()
        assert ".line(" not in source.replace("def line(", "") and "print(" not in source, path


def test_the_json_report_gets_each_event_as_data_and_each_phase_once():
    log = EventLog()
    for event, _ in SCRIPT[:9]:
        log.emit(event)
    log.emit(status_events.FileEdited("see postgresql://app:s3cret@db/upstream"))
    assert [entry["event"] for entry in log.entries] == [
        "WaitingForMigrator", "StaleYoyoLockRemoved", "BuildStarted", "Progress", "Progress", "BuildCancelled",
        "FileEdited"]
    assert log.entries[2] == {"at_s": log.entries[2]["at_s"], "event": "BuildStarted", "migration_id": CLAIMS.id,
                              "index": CLAIMS.index, "table": CLAIMS.table, "attempt": 1, "attempts": 2}
    assert log.entries[4]["snapshot"]["blocker"]["pid"] == 4242
    assert "s3cret" not in str(log.entries)
