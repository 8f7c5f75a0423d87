"""--json: one JSON document per run, built from the report the command returns (a
runner.RunReport, or verify.VerifyReport), or from the error that ended it. Its schema is
docs/report.schema.json; the README's "JSON reports" section describes every field."""

import json
from dataclasses import asdict

from .config import Target
from .paths import ROOT

SCHEMA_PATH = ROOT / "docs" / "report.schema.json"
FORMAT_VERSION = 1


def document(command: str, target: Target | None, report, duration_s: float,
             error: str | None = None, exit_code: int | None = None) -> dict:
    """The report as plain data. `error` (redacted) and `exit_code` when the run ended in an error."""
    doc = {
        "format": FORMAT_VERSION,
        "command": command,
        "database": None if target is None else {
            "name": target.shown, "source": target.source, "demo": target.is_demo},
        "exit_code": report.exit_code if exit_code is None else exit_code,
        "error": error,
        "duration_s": round(duration_s, 3),
    }
    doc.update(_verify_fields(report) if command == "verify" else _run_fields(command, report))
    return doc


def _run_fields(command: str, report) -> dict:
    """migrate / rollback / status: what happened to each index (empty when the run failed first)."""
    indexes = [asdict(outcome) for outcome in report.indexes] if report else []
    fields = {"retries": sum(index["retries"] for index in indexes), "indexes": indexes}
    if command == "status":
        fields["overlaps"] = [asdict(overlap) for overlap in report.overlaps] if report else []
        fields["history"] = [asdict(entry) for entry in report.history] if report else []
    return fields


def _verify_fields(report) -> dict:
    """verify: every check and the counts (no checks when it could not run)."""
    checks = [asdict(check) for check in report.checks] if report else []
    fields = {"summary": {status: sum(c["status"] == status for c in checks) for status in ("pass", "warn", "fail")},
              "checks": checks}
    if report:
        fields.update(strict=report.strict, analyze=report.analyze)
    return fields


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2)
