"""Errors the tool reports as one line and an exit code, never a traceback.

Exit codes, shared by every task (docs/running.md, "Exit codes"):
  0  done / everything in order
  1  a check failed (verify), or status found work or trouble (see status),
     or a migrate / rollback step failed part-way (a build cancelled by
     another session, a server error): what finished stays finished and
     recorded, the failed index's INVALID leftover is dropped.
  2  could not run: bad input (a usage error too: unknown task or flag, a flag
     without its value; a bad setting; a rollback of several not confirmed), connection, missing table or column, missing
     privilege, a foreign index under our name, a malformed or edited
     migration file. Nothing was changed.
  3  gave up waiting: another session kept a build (or a drop) waiting past
     --max-wait after every retry, or kept a built index from becoming valid
     past --max-wait-after-build (no retry); the blocker is named.
  4  status only: a human must decide (an index of our name with another
     definition, an applied migration file edited since); 5 = 4 and 1 together.
  130 interrupted (Ctrl-C); `invoke status` shows what was left, and so does
     --json (ToolError.report).
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2
EXIT_BLOCKED = 3
EXIT_INTERRUPTED = 130
# status: bits of its exit code (1 and 4 together: 5)
STATUS_WORK_TO_DO = EXIT_FAILED
STATUS_NEEDS_HUMAN = 4


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


class StepFailed(ToolError):
    """A build or drop failed part-way for a reason other than waiting: cancelled, a server error
    (`sqlstate`: the server's code, when it is one)."""

    exit_code = EXIT_FAILED
    sqlstate: str | None = None
    detail: str | None = None  # the server's message, in one line


class DataProblem(ToolError):
    """The data does not allow a migration yet: duplicate keys for a unique index, rows violating a
    constraint (found before any change)."""


class BlockedProblem(ToolError):
    """Another session kept a build waiting past --max-wait on every try (or a built index past
    --max-wait-after-build)."""

    exit_code = EXIT_BLOCKED
