"""--json: one JSON document per run, built from the report the command returns (a
runner.RunReport, verify.VerifyReport or whatif.WhatIfReport), or from the error that ended it. Its schema is
docs/report.schema.json; docs/json.md describes every field."""

import json
import time
from dataclasses import asdict, fields as dataclass_fields, is_dataclass
from enum import Enum

from . import events as ev, index_events
from .config import Target
from .records import Record
from .redaction import redact
from .migrations import IndexMigration
from .paths import REPORT_SCHEMA as SCHEMA_PATH  # docs/report.schema.json, as the package carries it

FORMAT_VERSION = 1


class EventLog:
    """The --json report's listener to migrate, rollback and status: each event the plain lines show,
    as data (strings redacted), timed from the start of the run."""

    def __init__(self):
        self.started = time.monotonic()
        self.entries: list[dict] = []
        self._news = index_events.PhaseNews()

    def emit(self, event: ev.Event) -> None:
        if self._news(event) and not isinstance(event, (index_events.StatementsStarted, index_events.StatementsEnded)):
            self.entries.append({"at_s": round(time.monotonic() - self.started, 3),
                                 "event": type(event).__name__, **_data(event)})


def _data(value):
    """An event's fields as JSON data: a record's (or dataclass's) fields by name, a migration by its id, an
    enum by its value, the rest as text."""
    if isinstance(value, IndexMigration):
        return value.id
    if isinstance(value, Record):
        return {name: _data(getattr(value, name)) for name in value.__match_args__}
    if is_dataclass(value):
        return {f.name: _data(getattr(value, f.name)) for f in dataclass_fields(value)}
    if isinstance(value, (list, tuple)):
        return [_data(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def document(command: str, target: Target | None, report, duration_s: float,
             error: str | None = None, exit_code: int | None = None, events: list[dict] = ()) -> dict:
    """The report as plain data. `error` (redacted) and `exit_code` when the run ended in an error;
    `events`: an EventLog's entries (not for verify and whatif)."""
    doc = {
        "format": FORMAT_VERSION,
        "command": command,
        "database": None if target is None else {
            "name": target.shown, "source": target.source, "demo": target.is_demo},
        "exit_code": report.exit_code if exit_code is None else exit_code,
        "error": error,
        "duration_s": round(duration_s, 3),
    }
    if command == "verify":
        doc.update(_verify_fields(report))
    elif command == "whatif":
        doc.update(_whatif_fields(report))
    else:
        doc.update(_run_fields(command, report, events))
    return doc


def _run_fields(command: str, report, events: list[dict]) -> dict:
    """migrate / rollback / status: what happened to each index (empty when the run failed first)."""
    indexes = [asdict(outcome) for outcome in report.indexes] if report else []
    run = {"retries": sum(index["retries"] for index in indexes), "indexes": indexes, "events": list(events)}
    if command == "status":
        run["overlaps"] = [asdict(overlap) for overlap in report.overlaps] if report else []
        run["history"] = [asdict(entry) for entry in report.history] if report else []
    return run


def _verify_fields(report) -> dict:
    """verify: every check and the counts (no checks when it could not run)."""
    checks = [asdict(check) for check in report.checks] if report else []
    fields = {"summary": {status: sum(c["status"] == status for c in checks) for status in ("pass", "warn", "fail")},
              "checks": checks}
    if report:
        fields.update(strict=report.strict, analyze=report.analyze, traffic=report.traffic)
    return fields


def _whatif_fields(report) -> dict:
    """whatif: each pending index as planned, as the WhatIfPlanned events carry them, and each pending constraint
    as its WhatIfNoIndex event (none when it could not run)."""
    return {"hypopg": report and report.hypopg, "warning": _data(report.skipped) if report else None,
            "planned": report.planned if report else 0, "used": report.used if report else 0,
            "unproven": report.unproven if report else [],
            "plans": [_data(index) for index in report.indexes] if report else [],
            "constraints": [_data(constraint) for constraint in report.constraints] if report else []}


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2)
