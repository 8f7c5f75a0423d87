"""invoke verify: run the verify/*.sql checks over psycopg and report each one.

The SQL files are the checks; a DBA runs the very same files with psql. This
module feeds them to the server, turns each `pass:` / `warn:` / `fail:`
notice into a line, and decides the exit code. It never writes: the session
is read-only, each file is one READ ONLY transaction ending in ROLLBACK, and
yoyo is not used (its get_backend() creates tables).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import pq

from . import app_queries, catalog, migrations, versions
from .config import Target
from .db import connect, one_line, translate_errors
from .errors import EXIT_FAILED, EXIT_OK, PreflightProblem, ToolError
from .paths import VERIFY_DIR
from .report import Reporter

SCRIPTS = ("indexes.sql", "plans.sql")  # in this order: the plan checks assume the indexes
STATUSES = ("pass", "warn", "fail")
_RESULT = re.compile(r"^(?P<status>pass|warn|fail): (?P<check>[^:]+): (?P<message>.*)$", re.DOTALL)
_META = re.compile(r"^\\(?P<command>\S+)[ \t]*(?P<argument>[^\n]*?)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Check:
    """One line of a verify script's output."""

    script: str  # the verify file, or "server" for the server version (checked here, not in a file)
    check: str  # e.g. "index claim_cust_date_outcome_cov", "plan latest_claims"
    status: str  # pass | warn | fail
    message: str


@dataclass
class VerifyReport:
    """What verify found; the task prints it as --json (jsonreport.py)."""

    strict: bool
    analyze: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {status: sum(c.status == status for c in self.checks) for status in STATUSES}

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.counts["fail"] else EXIT_OK

    def summary(self) -> str:
        counts = self.counts
        text = f"verify: {len(self.checks)} checks: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES)
        return text + (" (--strict: warnings fail)" if self.strict else "")


def script_sql(path: Path) -> str:
    """The file as the server must run it: psql's `\\ir <file>` replaced by that file's text."""
    def include(match: re.Match) -> str:
        if match.group("command") != "ir" or not re.fullmatch(r"[\w./-]+", match.group("argument")):
            raise ToolError(f"{path.name}: psql command `{match.group(0).strip()}` is not supported here "
                            "(only `\\ir <file>`)")
        return script_sql(path.parent / match.group("argument"))

    return _META.sub(include, path.read_text(encoding="utf-8"))


@translate_errors
def verify(target: Target, reporter: Reporter, strict: bool = False, analyze: bool = False,
           directory: Path = VERIFY_DIR) -> VerifyReport:
    """Run every verify script read-only; print one line per check and a summary."""
    report = VerifyReport(strict, analyze)

    def show(check: Check) -> None:
        report.checks.append(check)
        reporter.line(f"{check.status}  {check.check}: {check.message}")

    app_queries.load()  # a malformed catalogue stops here, before any connection (exit 2)
    with connect(target) as conn:
        conn.execute("SET default_transaction_read_only = on")
        require_tables(conn)
        bug = versions.cic_corruption_warning(catalog.server_version(conn))
        if bug:
            show(Check("server", "server version", "fail" if strict else "warn", bug))
        conn.execute("SELECT set_config('upstream_indexes.strict', %s, false), "
                     "set_config('upstream_indexes.analyze', %s, false)",
                     ["on" if strict else "off", "on" if analyze else "off"])
        for name in SCRIPTS:
            for check in run_script(conn, directory / name, reporter):
                show(check)
    reporter.line(report.summary())
    return report


def require_tables(conn: psycopg.Connection) -> None:
    """The indexed tables and columns must exist, else verify cannot run (exit 2). Verify only
    reads: a role that may not create indexes on them is no problem here."""
    problems = catalog.table_problems(conn, migrations.load(), conn.info.user, will_index=False)
    if problems:
        raise PreflightProblem("\n".join(problems))


def run_script(conn: psycopg.Connection, path: Path, reporter: Reporter) -> list[Check]:
    """Run one verify file as psql would; its checks, from the notices it raised.

    The file ends with an ERROR (raise_exception) when a check failed: that is
    its verdict, already reported check by check. Any other error means the
    file could not run.
    """
    checks: list[Check] = []

    def on_notice(diagnostic: psycopg.errors.Diagnostic) -> None:
        match = _RESULT.match(diagnostic.message_primary or "")
        if match:
            checks.append(Check(path.name, match["check"], match["status"], match["message"]))
        else:
            reporter.line(f"  {path.name}: server {diagnostic.severity_nonlocalized}: {diagnostic.message_primary}")

    conn.add_notice_handler(on_notice)
    try:
        conn.execute(script_sql(path))
    except psycopg.errors.RaiseException as exc:
        if not any(c.status == "fail" for c in checks):
            raise ToolError(f"{path.name}: {one_line(exc)}") from None
    except psycopg.Error as exc:
        raise ToolError(f"{path.name}: could not run: {one_line(exc)}") from None
    finally:
        conn.remove_notice_handler(on_notice)
        if conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    return checks
