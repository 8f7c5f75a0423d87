"""Errors the tool reports as one line and an exit code, never a traceback.

The exit codes, shared by every task, are EXIT_CODES below: each code with its one-line meaning.
docs/running.md ("Exit codes") says each case in full and the README in short; a test checks that both
tables list these codes, in this order, each row opening with its meaning here (tests/test_docs.py).
"""

EXIT_OK = 0
EXIT_FAILED = 1  # what finished stays finished and recorded; the failed index's INVALID leftover is dropped
EXIT_CANNOT_RUN = 2  # nothing was changed (usage errors too: invoke's own, made exit 2 by tasks.py)
EXIT_BLOCKED = 3  # the blocker is named; the server that stopped answering too (NoAnswer, WatchdogLost)
EXIT_INTERRUPTED = 130  # within about a second (db.interruptible); what was left in ToolError.report
# status: bits of its exit code (1 and 4 together: 5)
STATUS_WORK_TO_DO = EXIT_FAILED
STATUS_NEEDS_HUMAN = 4

EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_FAILED: "a check failed, `status` found work, or a step failed part-way",
    EXIT_CANNOT_RUN: "could not run, nothing changed",
    EXIT_BLOCKED: "gave up waiting",
    STATUS_NEEDS_HUMAN: "`status`: a human must decide",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


INTERRUPTED = "interrupted; run `invoke status` to see what was left"


class ToolError(Exception):
    """A failure with a message for the operator and the exit code to end with; `report`, when the
    command got far enough to say what it left (its --json)."""

    exit_code = EXIT_CANNOT_RUN

    def __init__(self, message: str, exit_code: int | None = None, report=None):
        super().__init__(message)
        self.report = report
        if exit_code is not None:
            self.exit_code = exit_code


class ConnectionProblem(ToolError):
    """The server could not be reached or refused us."""


class PreflightProblem(ToolError):
    """The database is not in a state the migrations can run against."""


class MigrationFileProblem(ToolError):
    """A file in migrations/ breaks the header grammar or changed after apply."""


class GrammarError(MigrationFileProblem):
    """A statement that is not one of the forms grammar.py recognises (the caller adds the file's name)."""


class StepFailed(ToolError):
    """A build or drop failed part-way for a reason other than waiting: cancelled, a server error."""

    exit_code = EXIT_FAILED


class BlockedProblem(ToolError):
    """Another session kept a build waiting past --max-wait on every try (or a built index past
    --max-wait-after-build)."""

    exit_code = EXIT_BLOCKED


# --- what ends a migrate, rollback or accept: each type says it in its own words ---------------------

NOTHING_CHANGED = "nothing was changed"


class Refused(ToolError):
    """A plan with a refusal in it runs nothing: each refusal's reason, one line each."""

    def __init__(self, reasons: list[str], rollback: bool = False):
        super().__init__("\n".join(reasons) + f"\n{NOTHING_CHANGED}"
                         + (" (rollback --force drops it anyway)" if rollback else ""))


class FilesEdited(MigrationFileProblem):
    """Applied migrations whose files changed since (ledger.edited's lines): refused before any plan."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems) + f"\n{NOTHING_CHANGED}")


class BadBuildSetting(PreflightProblem):
    """The server refused a build setting (pyproject.toml, --parallel-workers, --maintenance-work-mem)."""

    def __init__(self, name: str, value: str, cause: str):
        super().__init__(f"settings: {name} = {value!r}: {cause}")


class KeptNotApplied(ToolError):
    """rollback --to names a migration that is not applied."""

    def __init__(self, reference: str, migration_id: str):
        super().__init__(f"--to {reference}: {migration_id} is not applied; rollback --to keeps it applied and "
                         "rolls back the ones after it (--all rolls back everything)")


class NothingApplied(ToolError):
    """accept names a migration that is not applied."""

    def __init__(self, migration_id: str):
        super().__init__(f"{migration_id} is not applied: nothing to accept (migrate records its sha256)")


class EditNotInCatalog(ToolError):
    """accept: the catalog's index is not what the edited file builds."""

    def __init__(self, migration_id: str, index: str, state: str, found: str | None, definition: str):
        shown = f"`{found}`" if found else state
        super().__init__(f"{migration_id}: not accepted: the catalog's {index} is {state} ({shown}), the edited "
                         f"file builds `{definition}`; {NOTHING_CHANGED}")


class NotStamped(ToolError):
    """stamp: the catalog holds no valid index of the migration's definition (and no --force)."""

    def __init__(self, migration_id: str, table: str, definition: str, index: str, state: str):
        super().__init__(f"{migration_id}: not stamped: no valid index of its definition on {table} (`{definition}`; "
                         f"{index} is {state}); stamp records only what exists: build it with `invoke migrate`, or "
                         f"pass --force to record it anyway; {NOTHING_CHANGED}")


class LostConnection(StepFailed):
    """The server went away mid-step (a crash, a cut network): what it did with the step is for the next run to find."""

    @classmethod
    def during(cls, migration_id: str, direction: str, index: str, cause: str, command: str) -> "LostConnection":
        return cls(f"{migration_id}: lost the connection to the server during the {direction} of {index} ({cause}); "
                   f"the server may finish or abort it; run `invoke {command}` again: it waits for a build still "
                   "running, records a finished one, or drops an INVALID leftover and starts again")

    @classmethod
    def before_cleanup(cls, failed: StepFailed, cause: str) -> "LostConnection":
        return cls(f"{failed}; then lost the connection ({cause}) before dropping its INVALID leftover: "
                   "`invoke migrate` drops it first")


class SessionLost(LostConnection):
    """A session of ours besides the build's ended mid-run (a DBA's pg_terminate_backend, an idle
    timeout, a cut connection): the ledger's (yoyo's), or the one holding the migrator lock."""

    @classmethod
    def ledger(cls, cause: str, command: str) -> "SessionLost":
        return cls(f"lost the ledger's session (yoyo's, which writes the records; {cause}): what was recorded "
                   f"stays recorded; run `invoke {command}` again: it goes on from what the catalog shows (an "
                   "index built but not recorded is recorded, an INVALID leftover dropped)")

    @classmethod
    def migrator_lock(cls, migration_id: str, direction: str, index: str, pid: int, command: str) -> "SessionLost":
        return cls(f"{migration_id}: the {direction} of {index} is done but not recorded: the session holding the "
                   f"migrator lock (pid {pid}) has ended (a DBA, an idle timeout, a lost connection), so another "
                   f"migrator may be running; run `invoke {command}` again: it records what was done")


class WatchdogLost(LostConnection):
    """The watchdog's connection failed and it could not connect again: the wait it watched was ended,
    never left running without --max-wait."""

    exit_code = EXIT_BLOCKED

    def __init__(self, subject: str, cause: str, ended: str, command: str):
        super().__init__(f"{subject}: the watchdog lost its connection and could not connect again ({cause}); "
                         f"without it --max-wait could not end the wait, so {ended}; run `invoke {command}` again "
                         "once the server answers: it waits for a build still running, records a finished one, or "
                         "drops an INVALID leftover and starts again")


class NoAnswer(BlockedProblem):
    """A quick look of a wait (db.answered_within) got no answer in time."""

    def __init__(self, seconds: float, what: str):
        super().__init__(f"no answer from the server within {seconds:g}s while {what}: the server, or the network "
                         "to it, stopped answering without closing the connection (a proxy or a route that drops "
                         "packets); every session of ours to it was closed; run the command again once it answers")


class MigratorBusy(BlockedProblem):
    """Another migrate or rollback kept the migrator lock (or yoyo's lock) past --max-wait."""

    def __init__(self, holder: str, max_wait: float):
        super().__init__(f"{holder} still holds the migrator lock after {max_wait:g}s (--max-wait); nothing was "
                         "changed; run it again once that one has finished, or give --max-wait more time")


class CancelledByAnother(StepFailed):
    """Another session (a DBA's pg_cancel_backend) cancelled a statement of ours."""

    def __init__(self, migration_id: str, direction: str, index: str, cause: str):
        super().__init__(f"{migration_id}: {direction} of {index} was cancelled by another session ({cause})")


# A build's sort out of temporary file space: the operator's levers.
TEMP_SPACE_HINT = ("the build's sort ran out of temporary file space: give it more memory (maintenance_work_mem, "
                   "e.g. PGOPTIONS='-c maintenance_work_mem=1GB'), a tablespace with room (temp_tablespaces), "
                   "or a higher temp_file_limit")


class StatementFailed(StepFailed):
    """A statement of a build or drop failed on the server (the temporary file space hint when that ran out);
    `sqlstate` and `cause`: the server's code and message, for a caller that words it otherwise."""

    def __init__(self, migration_id: str, direction: str, cause: str, out_of_temp_space: bool = False,
                 sqlstate: str | None = None):
        super().__init__(f"{migration_id}: {direction} failed: {cause}"
                         + (f"; {TEMP_SPACE_HINT}" if out_of_temp_space else ""))
        self.sqlstate, self.cause = sqlstate, cause


class DataProblem(ToolError):
    """The data does not allow a migration yet (datachecks.py): duplicate keys for a unique index, rows
    violating a constraint; found before any change, each finding a line."""

    def __init__(self, findings: list[str]):
        super().__init__("\n".join(findings) + f"\n{NOTHING_CHANGED} (--skip-data-checks skips these checks)")


class DuplicateDuringBuild(StepFailed):
    """A unique build met a key two rows hold, written after the check for duplicates."""

    def __init__(self, migration_id: str, index: str, cause: str):
        super().__init__(f"{migration_id}: the unique build of {index} met a key more than one row holds, written "
                         f"since the check for duplicates ({cause}); its INVALID index was dropped and nothing "
                         "recorded: remove the duplicate, then run `invoke migrate` again")


class ViolatedAtValidate(StepFailed):
    """VALIDATE met rows violating the constraint, written after the data check (before the ADD)."""

    def __init__(self, migration_id: str, table: str, name: str, cause: str):
        super().__init__(f"{migration_id}: VALIDATE found rows of {table} that violate {name}, written since the "
                         f"pre-check ({cause}); the NOT VALID constraint was dropped and nothing recorded: correct "
                         "those rows, then run `invoke migrate` again")


class NotValidAfterBuild(StepFailed):
    """The build's statements (or a constraint's) ended without an error, yet it is not valid."""

    def __init__(self, index: str, state: str):
        super().__init__(f"{index} is {state} after its build; run `invoke status`")


class CatalogStepBlocked(BlockedProblem):
    """A catalog-only statement's short lock_timeout ran out on every attempt within --max-wait."""

    def __init__(self, migration_id: str, statement: str, blocker: str, table: str, lock_timeout: str,
                 max_wait: float, command: str):
        super().__init__(f"{migration_id}: `{statement}` not run: {blocker} held the lock it needs on {table} past "
                         f"its lock_timeout of {lock_timeout} on every attempt within --max-wait {max_wait:g}s (each "
                         "attempt gave up rather than let the table's queries queue behind it); end or wait out that "
                         f"session, then run `invoke {command}` again")


class ValidateBlocked(BlockedProblem):
    """VALIDATE waited for its lock past --max-wait on every attempt."""

    def __init__(self, name: str, blocker: str, max_wait: float, attempts: int):
        super().__init__(f"{name} not validated: {blocker} kept VALIDATE waiting more than {max_wait:g}s on each "
                         f"of {attempts} attempts; it stays NOT VALID (new rows are checked); end or wait out that "
                         "session, then run `invoke migrate` again: it validates it")


class TwinBlocked(BlockedProblem):
    """A promotion's rollback: the build of its twin index waited past a limit."""

    def __init__(self, migration_id: str, twin: str, name: str, blocker: str, limit: str):
        super().__init__(f"{migration_id}: {twin} not built: {blocker} kept it waiting past {limit}; the "
                         f"constraint {name} is untouched; run `invoke rollback` again once that session has ended")


class BuildBlocked(BlockedProblem):
    """A session kept a build waiting (before building) past --max-wait on every attempt."""

    def __init__(self, index: str, blocker: str, max_wait: float, attempts: int):
        super().__init__(f"{index} not built: {blocker} kept it waiting more than {max_wait:g}s on each of "
                         f"{attempts} attempts; no INVALID index was left; end or wait out that session, then run "
                         "`invoke migrate` again")


class GaveUpAfterBuild(BlockedProblem):
    """A built index's wait to become valid was ended (--max-wait-after-build, the file's lock_timeout)."""

    def __init__(self, index: str, table: str, phase: str | None, blocker: str, limit: str):
        super().__init__(f"{index} not built: it was built and only waiting ({phase}) to become valid, for "
                         f"{blocker} (a wait that blocks no reads or writes, only DDL and VACUUM on {table}); "
                         f"{limit} ended the wait: the build was cancelled, its INVALID index dropped, and not "
                         "retried (that session would hold up a new build the same way); once that session has "
                         "ended, run `invoke migrate` again, which builds it from the start (or give "
                         "--max-wait-after-build more time, or leave it out: no limit)")


class LeftoverBlocked(BlockedProblem):
    """The DROP INDEX CONCURRENTLY of a failed build's INVALID leftover waited past --max-wait."""

    def __init__(self, index: str, table: str, blocker: str, max_wait: float):
        super().__init__(f"{index} is left INVALID: DROP INDEX CONCURRENTLY waited more than {max_wait:g}s for "
                         f"{blocker}, which holds a lock on {table}; no query uses an INVALID index; end or wait "
                         "out that session, then run `invoke migrate` again: it drops the leftover first")


class PartitionLeftoversBlocked(BlockedProblem):
    """The drop of a partitioned table's INVALID partition indexes (a failed build's) waited past --max-wait."""

    def __init__(self, indexes: list[str], blocker: str, max_wait: float):
        super().__init__(f"{', '.join(indexes)} left INVALID: DROP INDEX CONCURRENTLY waited more than "
                         f"{max_wait:g}s for {blocker}; no query uses an INVALID index; run `invoke migrate` again "
                         "once that session has ended")


class DropBlocked(BlockedProblem):
    """A rollback's drop waited too long: --max-wait, or on a partitioned table the short lock_timeout of its
    plain DROP INDEX (`partition_lock_timeout`)."""

    def __init__(self, index: str, blocker: str, max_wait: float, partition_lock_timeout: str | None):
        if partition_lock_timeout is None:
            statement, bound = "DROP INDEX CONCURRENTLY", f"{max_wait:g}s"
        else:
            statement = "DROP INDEX"
            bound = (f"its lock_timeout of {partition_lock_timeout} (a partitioned index: a plain DROP INDEX, "
                     "which would stop the table's reads and writes while it waits)")
        super().__init__(f"{index} not dropped: {statement} waited more than {bound} for {blocker}; it is still "
                         "recorded as applied (`invoke status` shows whether it is valid or INVALID now); run "
                         "`invoke rollback` again once that session has ended")


class StandbyBehind(BlockedProblem):
    """--max-replica-lag: a standby stayed behind for longer than --max-wait."""

    def __init__(self, standby: str, max_lag: float, max_wait: float):
        super().__init__(f"{standby}: still over --max-replica-lag {max_lag:g}s after waiting {max_wait:g}s "
                         "(--max-wait); what was built is recorded, the next indexes were not started; run "
                         "`invoke migrate` again once the standby has caught up")


class OrphanOutlasted(BlockedProblem):
    """A CREATE INDEX of our name in another backend (a killed run's) did not end within --max-wait."""

    def __init__(self, index: str, builder: str, pid: int, max_wait: float, command: str):
        super().__init__(f"{index}: the CREATE INDEX in {builder} did not end within {max_wait:g}s (--max-wait); "
                         f"it is not ours to stop: once it ends (or a DBA runs SELECT pg_cancel_backend({pid})), run "
                         f"`invoke {command}` again: it takes over what that build left")
