"""What the operator reads: the plain lines of each event, redacted, on stdout (LinePrinter).
plain_lines is the one place where an event becomes text, a function per family of events (run_events.py,
index_events.py, status_events.py)."""

import sys
import threading
from typing import TextIO

from . import events as ev, index_events, run_events, status_events
from .catalog import invalid_origin
from .backends import Migrator
from .overlaps import Overlap
from .watchdog import Snapshot
from .redaction import redact


def human_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "-"
    size = float(size_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size_bytes} B"


def duration(seconds: float) -> str:
    """A time left as people read it: 45s, 3m 05s, 1h 02m."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def counted(snap: Snapshot) -> str:
    """How far a phase that counts is, and the time left at its pace so far: `1,200 of 4,000 blocks, 35s
    left`; empty in a phase that does not count (waiting, sorting)."""
    count = snap.counter
    if count is None:
        return ""
    done, total, unit = count
    left = f", {duration(snap.seconds_left)} left" if snap.seconds_left is not None else ""
    return f"{done:,} of {total:,} {unit}{left}"


def whatif_lines(plans) -> list[str]:
    """A pending index as the what-if saw it (a whatif.IndexPlans): its estimated size, then each
    catalogue query expecting it, with the index or without."""
    if plans.problem:
        return [f"{plans.migration_id}: what-if: HypoPG could not create {plans.index}: {plans.problem}"]
    over = f" over {plans.partitions} partitions" if plans.partitions else ""
    lines = [f"{plans.migration_id}: what-if: {plans.index} on {plans.table}, estimated "
             f"{human_size(plans.size_bytes)}{over} (HypoPG)"]
    for q in plans.queries:
        cost = f"estimated cost {q.before.cost:.2f} -> {q.after.cost:.2f}"
        lines.append(f"  {q.query} (customer {q.customer}): "
                     + (f"{q.after.node} using {plans.index}, {cost} (before: {q.before.scans})" if q.uses_index else
                        f"NOT using {plans.index}: the plan stays {q.after.scans}, {cost}"))
    if not plans.queries and plans.unique:
        lines.append("  no catalogue query expects it: a unique index enforces its key, it need serve no query "
                     "(as for verify)")
    elif not plans.queries:
        lines.append(f"  no catalogue query expects it: nothing to plan (add one to verify/app_queries.sql with "
                     f"`-- expect: {plans.index}`)")
    return lines


def overlap_line(overlap: Overlap) -> str:
    how = {"same": "same order", "reverse": "reverse order (a backward scan serves it)"}.get(overlap.order)
    if how is None:
        fixed = ", ".join(overlap.equality_columns)
        how = f"other direction after {fixed}: a scan serves its order once {fixed} is fixed by equality"
    note = "; a foreign key's index (Django's db_index)" if overlap.foreign_key else ""
    return (f"{overlap.index} {overlap.columns} on {overlap.table}, {human_size(overlap.size_bytes)}: "
            f"a prefix of {overlap.covered_by}, {how}{note}")


def _run_lines(event: ev.Event) -> list[str] | None:
    """The run as a whole: who holds the migrator lock, the plan, how it ended."""
    match event:
        case run_events.CitusCoordinator(citus):
            return [f"citus: coordinator with {citus.workers} workers; "
                    + ", ".join(f"{t.name} distributed by {t.distribution_column} in {t.shard_count} shards"
                                for t in citus.distributed)
                    + ": each index is built and dropped through the coordinator on every shard"]
        case run_events.WaitingForMigrator(pid, application_name, client_addr, connected_seconds):
            return [f"waiting for {Migrator(pid, application_name, client_addr, connected_seconds).describe()} "
                    "to finish"]
        case run_events.MigratorLockLost(pid, cause):
            return [f"the session holding the migrator lock (pid {pid}) ended during the run ({cause}): another "
                    "migrator may have started meanwhile (`invoke status` shows where each index stands)"]
        case run_events.StaleYoyoLockRemoved(pid, created):
            return [f"removing a stale yoyo lock left by pid {pid} at {created} "
                    "(no migrator holds the advisory lock)"]
        case run_events.NothingToMigrate(count, up_to):
            return [f"nothing to migrate: all {count} migrations" + (f" up to {up_to}" if up_to else "")
                    + " applied, their indexes valid"]
        case run_events.Planned(migration_id, reason, statements):
            return [f"{migration_id}: {reason}"] + [f"    {line}" for statement in statements
                                                     for line in statement.strip().splitlines()]
        case run_events.DryRunDone():
            return ["dry run: nothing was changed"]
        case run_events.OneAtATime(jobs, reason):
            return [f"--jobs {jobs}: building one index at a time: {reason}"]
        case run_events.MigrateDone(seconds):
            return [f"migrate: done in {seconds:.1f}s"]
        case run_events.NothingToRollBack(kept):
            return [f"nothing to roll back: no migration after {kept} is applied" if kept else
                    "nothing to roll back: no migration is applied"]
    return None  # not of this family


def _whatif_event_lines(event: ev.Event) -> list[str] | None:
    """migrate --dry-run's what-if (whatif.py)."""
    match event:
        case run_events.WhatIfSkipped(reason):
            return [f"what-if: skipped: {reason}"]
        case run_events.WhatIfNoIndex(migration_id, constraint, None):
            return [f"{migration_id}: no what-if: a {constraint.upper()} constraint builds no index"]
        case run_events.WhatIfNoIndex(migration_id, constraint, index):  # a promotion
            return [f"{migration_id}: no what-if: a {constraint.upper()} constraint USING INDEX builds no index "
                    f"(it takes {index} as built)"]
        case run_events.WhatIfPlanned(plans):
            return whatif_lines(plans)
        case run_events.WhatIfDone(hypopg, used, planned, unproven):
            if hypopg is None:
                return ["what-if: no index is pending: nothing to plan (`invoke verify` proves the built ones)"]
            return [f"what-if (HypoPG {hypopg}; estimates, nothing built): {used} of {planned} catalogue queries "
                    "would use the pending index they expect"
                    + (f"; not shown to serve: {', '.join(unproven)}" if unproven else "")]
    return None  # not of this family


def _build_lines(event: ev.Event) -> list[str] | None:
    """One index built or dropped: its attempts, its leftovers, its record."""
    match event:
        case index_events.BuildStarted(migration_id, index, table, attempt, attempts):
            return [f"{migration_id}: building {index} on {table} ..."
                    + (f" (attempt {attempt} of {attempts})" if attempt > 1 else "")]
        case index_events.Built(migration_id, index, seconds, size_bytes):
            return [f"{migration_id}: built {index} in {seconds:.1f}s ({human_size(size_bytes)})"]
        case index_events.BuildCancelled(migration_id, max_wait, blocker):
            return [f"{migration_id}: waited more than {max_wait:g}s for {blocker}: build cancelled"]
        case index_events.Retrying(migration_id, pause):
            return [f"{migration_id}: retrying in {pause:g}s"]
        case index_events.Recorded(migration_id, index):
            return [f"{migration_id}: {index} already exists, valid and identical to ours "
                    "(built by hand, or by a run that was killed): recorded as applied"]
        case index_events.Rebuilding(migration_id, index):
            return [f"{migration_id}: recorded as applied but {index} is missing: building it again"]
        case index_events.DroppingLeftover(state, recorded):
            return [f"{state.migration.id}: {state.migration.index} is INVALID ({invalid_origin(recorded)}): "
                    "dropping it with DROP INDEX CONCURRENTLY"
                    + (f" (Citus: {state.shards_valid} of {state.shards_total} shard indexes valid; "
                       f"not: {', '.join(state.bad_shards)})" if state.bad_shards else "")]
        case index_events.BuildingPartitions(migration_id, reason):
            return [f"{migration_id}: {reason}"]
        case index_events.PartitionStatement(index, note):
            return [f"  {note}"]
        case index_events.Dropping(migration_id, index):
            return [f"{migration_id}: dropping {index} ..."]
        case index_events.RolledBack(migration_id, seconds):
            return [f"{migration_id}: rolled back in {seconds:.1f}s"]
    return None  # not of this family


def _constraint_lines(event: ev.Event) -> list[str] | None:
    """One constraint's steps: its data check, its catalog-only statements, its VALIDATE."""
    match event:
        case index_events.DataChecked(migration_id, what, seconds):
            return [f"{migration_id}: no {what} ({seconds:.1f}s)"]
        case index_events.CatalogStepRan(migration_id, statement, lock_timeout, seconds):
            return [f"{migration_id}: {statement} ({seconds:.1f}s; catalog only, its lock waited for at most "
                    f"{lock_timeout})"]
        case index_events.LockRetry(migration_id, blocker, lock_timeout, pause):
            return [f"{migration_id}: {blocker} held the lock past {lock_timeout}: gave up, so that no query queues "
                    f"behind it; retrying in {pause:g}s"]
        case index_events.Validating(migration_id, name, table, rows):
            return [f"{migration_id}: validating {name}: a scan of {table}"
                    + (f" (~{rows:,} rows)" if rows is not None and rows >= 0 else "")
                    + " under SHARE UPDATE EXCLUSIVE, which blocks no reads or writes ..."]
        case index_events.Validated(migration_id, name, seconds):
            return [f"{migration_id}: validated {name} in {seconds:.1f}s"]
    return None  # not of this family


def _waiting_lines(event: ev.Event) -> list[str] | None:
    """While a build runs or waits: its watchdog, an orphaned build, the standbys."""
    match event:
        case index_events.WaitingForOrphan(migration_id, index, pid, max_wait):
            return [f"{migration_id}: a CREATE INDEX for {index} is still running in pid {pid} "
                    f"(left by a killed run, or a DBA's): waiting up to {max_wait:g}s "
                    "(--max-wait) for it to end"]
        case index_events.OrphanEnded(migration_id, index, state):
            return [f"{migration_id}: that build ended; {index} is now {state}"]
        case index_events.WatchdogReconnected(index, cause):
            return [f"  {index}: the watchdog's connection failed ({cause}); connected again: it watches on, "
                    "--max-wait holds"]
        case index_events.Progress(index, snap):
            if snap.blocker:
                return [f"  {index}: {snap.phase or 'waiting for a lock'}: waiting for {snap.blocker.describe()}"]
            count = counted(snap)
            return [f"  {index}: {snap.phase} ({snap.elapsed:.1f}s" + (f"; {count}" if count else "") + ")"
                    ] if snap.phase else []
        case index_events.BuiltIndexWaits(migration_id, index, table, phase, blocker, max_wait, max_wait_after_build):
            return [f"{migration_id}: {index} is built and only waits ({phase}) for {blocker} before it becomes "
                    f"valid; it blocks no reads or writes (only DDL and VACUUM on {table}), so --max-wait "
                    f"({max_wait:g}s, the wait before a build) does not cancel it: "
                    + ("waiting until that session ends (Ctrl-C stops it: the next `invoke migrate` drops the "
                       "INVALID index and builds it again)" if max_wait_after_build is None else
                       f"waiting up to --max-wait-after-build {max_wait_after_build:g}s")]
        case index_events.WaitAfterBuildEnded(migration_id, index, phase, blocker, limit):
            return [f"{migration_id}: {index} was built and only waiting ({phase}) for {blocker}; {limit} ended "
                    "the wait: build cancelled"]
        case index_events.ServerNotice(index, severity, message):
            return [f"  {index}: server {severity}: {message}"]
        case index_events.StandbyReplay(replica):
            return [f"  {replica.describe()}"]
        case index_events.WaitingForStandby(replica, max_lag):
            return [f"waiting for {replica.describe()} to be under --max-replica-lag {max_lag:g}s "
                    "before the next build"]
    return None  # not of this family


def _status_lines(event: ev.Event) -> list[str] | None:
    """status and history."""
    match event:
        case status_events.FileEdited(problem):
            return [problem]
        case status_events.IndexStatus(state, recorded, last_log, refusal):
            m = state.migration
            return ([f"{m.id:40} {'applied' if recorded else 'pending':8} {m.index:30} "
                     f"{state.state.value:8} {human_size(state.size_bytes)}"
                     + (f", shards {state.shards_valid}/{state.shards_total} valid"
                        if state.shards_total is not None else "")
                     + (f", partitions {state.partitions_done}/{len(state.partitions)} done"
                        if state.partitions is not None else "")]
                    + [f"  shard {shard}" for shard in state.bad_shards]
                    + ([f"  {last_log.describe()}"] if last_log else [])
                    + ([f"  {refusal}"] if refusal else []))
        case status_events.Overlaps(overlaps):
            built = [f"  {overlap_line(overlap)}" for overlap in overlaps if overlap.built]
            pending = [f"  {overlap_line(overlap)}" for overlap in overlaps if not overlap.built]
            return ((["existing indexes the covering indexes make redundant (for the DBA to weigh; "
                      "nothing is dropped):"] + built if built else [])
                    + (["existing indexes the covering indexes not built yet would make redundant once migrated "
                        "(nothing is dropped):"] + pending if pending else []))
        case status_events.Logged(entry):
            return [f"{entry.migration:40} {entry.describe()}"]
        case status_events.HistoryDone(entries):
            return [f"history: {entries} entries, oldest first" if entries else
                    "history: nothing logged: no migrate or rollback has run against this database"]
        case status_events.StatusDone(work_to_do, needs_human):
            return ["status: " + (", ".join(word for on, word in ((work_to_do, "migrate has work to do"),
                                                                   (needs_human, "a human must decide")) if on)
                                  or "all applied and valid")]
    return None  # not of this family


def _stamp_accept_lines(event: ev.Event) -> list[str] | None:
    """stamp and accept."""
    match event:
        case status_events.NothingToStamp(migration_id):
            return [f"{migration_id}: nothing to stamp: it is recorded as applied"]
        case status_events.Stamped(migration_id, index, found):
            return [f"{migration_id}: {found} is a valid index of its definition"
                    + (f", renamed to {index} (ALTER INDEX ... RENAME: blocks no reads or writes)" if found != index
                       else "")
                    + ": recorded as applied, nothing built"]
        case status_events.StampForced(migration_id, index, state):
            return [f"{migration_id}: --force: recorded as applied without a valid index of its definition "
                    f"({index} is {state}); nothing was built or checked, and `invoke status` and `invoke migrate` "
                    f"still see {index} as {state}"]
        case status_events.NothingToAccept(migration_id, checksum):
            return [f"{migration_id}: nothing to accept: its files are as applied (sha256 {checksum[:12]})"]
        case status_events.Accepted(migration_id, (forward, rollback), old, new):
            return [f"{migration_id}: accepted the edited {forward} and {rollback}: "
                    f"sha256 {old or 'none recorded'} -> {new}"]
    return None  # not of this family


# Each event family's text; a family's function answers None for an event not of it.
FAMILIES = (_run_lines, _whatif_event_lines, _build_lines, _constraint_lines, _waiting_lines, _status_lines,
            _stamp_accept_lines)


def plain_lines(event: ev.Event) -> list[str]:
    """The plain text of an event, a line each (none for the display-only ones)."""
    for family in FAMILIES:
        lines = family(event)
        if lines is not None:
            return lines
    return []  # StatementsStarted / StatementsEnded: for the live display only


class LinePrinter:
    """The plain listener: prints each event's lines; while builds run (several with --jobs, each
    emitting from its own thread), one line per phase change or new blocker of each."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out
        self._news = index_events.PhaseNews()
        self._lock = threading.RLock()  # whole lines, never two interleaved

    def line(self, text: str) -> None:
        with self._lock:
            print(redact(text), file=self.out, flush=True)

    def emit(self, event: ev.Event) -> None:
        with self._lock:
            if self._news(event):
                for text in plain_lines(event):
                    self.line(text)
