"""`invoke history`: yoyo's whole log of this database in the terminal, oldest first: every apply,
record, rollback and unrecord, when (UTC), by whom, from where, how long. `status` shows only each
migration's latest entry; `status --json` carries the same whole log (field `history`)."""

from dataclasses import dataclass, field

from . import ledger, status_events
from .config import Target
from .db import connect, read_only_transaction, translate_errors
from .errors import EXIT_OK
from .events import Listener


@dataclass
class HistoryReport:
    command: str = "history"
    exit_code: int = EXIT_OK
    history: list[ledger.LogEntry] = field(default_factory=list)


@translate_errors
def history(target: Target, reporter: Listener) -> HistoryReport:
    """Read-only: the log, an event per entry, then a closing line."""
    with connect(target) as conn, read_only_transaction(conn):
        report = HistoryReport(history=ledger.history(conn))
    for entry in report.history:
        reporter.emit(status_events.Logged(entry))
    reporter.emit(status_events.HistoryDone(len(report.history)))
    return report
