"""--json: one JSON document per run, built from the RunReport the runner returns (or the
error that ended it). Its schema is docs/report.schema.json; the README's "JSON reports"
section describes every field."""

import json
from dataclasses import asdict

from .config import Target
from .paths import ROOT
from .runner import RunReport

SCHEMA_PATH = ROOT / "docs" / "report.schema.json"
FORMAT_VERSION = 1


def document(command: str, target: Target | None, report: RunReport | None, duration_s: float,
             error: str | None = None, exit_code: int | None = None) -> dict:
    """The report as plain data. `error` (redacted) and `exit_code` when the run ended in an error."""
    indexes = [asdict(outcome) for outcome in report.indexes] if report else []
    doc = {
        "format": FORMAT_VERSION,
        "command": command,
        "database": None if target is None else {
            "name": target.shown, "source": target.source, "demo": target.is_demo},
        "exit_code": report.exit_code if exit_code is None else exit_code,
        "error": error,
        "duration_s": round(duration_s, 3),
        "retries": sum(index["retries"] for index in indexes),
        "indexes": indexes,
    }
    if command == "status":
        doc["overlaps"] = [asdict(overlap) for overlap in report.overlaps] if report else []
    return doc


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2)
