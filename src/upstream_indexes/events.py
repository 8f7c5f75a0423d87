"""What migrate, rollback, status, accept and history report, as typed events (no text).

The runner emits each to its listener (anything with `emit(event)`): the plain lines
(lines.LinePrinter, which renders every event's text in one place: lines.plain_lines),
the live display (live.LiveDisplay), the --json report (jsonreport.EventLog) and the
benchmark (benchmarks/builds.py) are listeners. `Listeners` passes each event on to several.

The events themselves, a module per family: run_events.py (the run as a whole, the what-if),
index_events.py (one index or constraint carried out, watched; PhaseNews) and status_events.py
(status, history, stamp, accept).
"""

from typing import Protocol

from .records import Record


class Event(Record):
    """Base of every event: an immutable record (records.Record) of the fields its class annotates, matched
    by position (`case Built(migration_id, ...)`); the --json report reads its fields by `__match_args__`."""


class Listener(Protocol):
    def emit(self, event: Event) -> None: ...


class Listeners:
    """Several listeners as one: each gets every event, in the order given."""

    def __init__(self, *listeners: Listener):
        self.listeners = listeners

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            listener.emit(event)
