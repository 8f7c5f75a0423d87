"""invoke verify: run the verify/*.sql checks over psycopg and report each one.

The SQL files are the checks; a DBA runs the very same files with psql. This
module feeds them to the server, turns each `pass:` / `warn:` / `fail:`
notice into a line, and decides the exit code. It never writes: every
statement runs in a READ ONLY transaction, each file is one ending in
ROLLBACK, nothing is set for the session (it may be a pooled server
connection the app uses next), and yoyo is not used (its get_backend()
creates tables).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import pq, sql

from . import app_queries, catalog, expected, migrations, table_checks, versions
from .config import Target
from .defaults import TRAFFIC_TOP as DEFAULT_TOP
from .db import connect, one_line, read_only_transaction, translate_errors
from .errors import EXIT_FAILED, EXIT_OK, PreflightProblem, ToolError
from .paths import MIGRATIONS_DIR, VERIFY_DIR
from .lines import LinePrinter
from .redaction import redact

SCRIPTS = ("indexes.sql", "constraints.sql", "plans.sql")  # in this order: the plan checks assume the indexes
DEEP_SCRIPT = "deep.sql"  # --deep: amcheck reads every index and table in full, so only on request
TRAFFIC_SCRIPT = "traffic.sql"  # --traffic: the statements pg_stat_statements has seen, on request
STATUSES = ("pass", "warn", "fail")
_RESULT = re.compile(r"^(?P<status>pass|warn|fail): (?P<check>[^:]+): (?P<message>.*)$", re.DOTALL)
_BEGIN = re.compile(r"^BEGIN READ ONLY;[ \t]*$", re.MULTILINE)
_META = re.compile(r"^\\(?P<command>\S+)[ \t]*(?P<argument>[^\n]*?)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Check:
    """One line of a verify script's output."""

    script: str  # the verify file, or "server" for the server version (checked here, not in a file)
    check: str  # e.g. "index claim_cust_date_outcome_cov", "plan latest_claims"
    status: str  # pass | warn | fail
    message: str
    data: dict | None = None  # the check's facts as data, when its script gives them (traffic.sql's DETAIL)


@dataclass
class VerifyReport:
    """What verify found; the task prints it as --json (jsonreport.py)."""

    strict: bool
    analyze: bool
    traffic: bool = False
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


def script_sql(path: Path, rendered: dict[str, str] | None = None) -> str:
    """The file as the server must run it: psql's `\\ir <file>` replaced by that file's text, or by
    `rendered[<file>]` (expected.sql, rendered from --migrations)."""
    rendered = rendered or {}

    def include(match: re.Match) -> str:
        if match.group("command") != "ir" or not re.fullmatch(r"[\w./-]+", match.group("argument")):
            raise ToolError(f"{path.name}: psql command `{match.group(0).strip()}` is not supported here "
                            "(only `\\ir <file>`)")
        if match.group("argument") in rendered:
            return rendered[match.group("argument")]
        return script_sql(path.parent / match.group("argument"), rendered)

    return _META.sub(include, path.read_text(encoding="utf-8"))


def with_transaction_settings(conn: psycopg.Connection, name: str, text: str, options: dict[str, bool | str]) -> str:
    """The script with `options` set (set_config(..., true): its transaction only) after its BEGIN;
    a boolean as on / off."""
    begin = _BEGIN.search(text)
    if begin is None:
        raise ToolError(f"{name}: expected its checks in one transaction opening with `BEGIN READ ONLY;`")
    settings = sql.SQL("SELECT {};\n").format(sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, true)").format(sql.Literal(setting), sql.Literal(
            value if isinstance(value, str) else "on" if value else "off"))
        for setting, value in options.items())).as_string(conn) if options else ""
    return text[:begin.end()] + "\n" + settings + text[begin.end():]


@translate_errors
def verify(target: Target, printer: LinePrinter, strict: bool = False, analyze: bool = False,
           deep: bool = False, directory: Path = VERIFY_DIR,
           migrations_dir: Path = MIGRATIONS_DIR, traffic: bool = False, top: int = DEFAULT_TOP) -> VerifyReport:
    """Run every verify script read-only, checking every migration in `migrations_dir`; print one
    line per check and a summary. `traffic`: also the `top` statements pg_stat_statements holds."""
    report = VerifyReport(strict, analyze, traffic)

    def show(check: Check) -> None:
        report.checks.append(check)
        printer.line(f"{check.status}  {check.check}: {check.message}")

    # Malformed migration files or catalogue stop here, before any connection (exit 2).
    files = migrations.load(migrations_dir)
    # What the scripts include: the checkout's catalogue (and the migrations folder's own, when it has one:
    # app_queries.for_folder), and expected.sql rendered from the migrations.
    catalogues = app_queries.for_folder(migrations_dir)
    rendered = {expected.EXPECTED_SQL.name: expected.render(files, app_queries.load_all(catalogues)),
                app_queries.CATALOGUE.name: "\n".join(app_queries.read(path) for path in catalogues)}
    options = {"upstream_indexes.strict": strict, "upstream_indexes.analyze": analyze,
               "upstream_indexes.traffic_top": str(top)}
    with connect(target) as conn:
        # Nothing set for the session: behind a transaction-mode pooler a session setting would stay
        # on the server connection for the app's next client (a read-only default fails its writes).
        with read_only_transaction(conn):
            require_tables(conn, files)
        bug = versions.cic_corruption_warning(catalog.server_version(conn))
        if bug:
            show(Check("server", "server version", "fail" if strict else "warn", bug))
        for name in SCRIPTS + ((DEEP_SCRIPT,) if deep else ()) + ((TRAFFIC_SCRIPT,) if traffic else ()):
            for check in run_script(conn, directory / name, printer, options, rendered):
                show(check)
    printer.line(report.summary())
    return report


def require_tables(conn: psycopg.Connection, files: list[migrations.IndexMigration]) -> None:
    """The indexed tables and columns must exist, else verify cannot run (exit 2). Verify only
    reads: a role that may not create indexes on them is no problem here."""
    problems = table_checks.table_problems(conn, files, conn.info.user, will_index=False)
    if problems:
        raise PreflightProblem("\n".join(problems))


def run_script(conn: psycopg.Connection, path: Path, printer: LinePrinter,
               options: dict[str, bool | str] | None = None, rendered: dict[str, str] | None = None) -> list[Check]:
    """Run one verify file as psql would; its checks, from the notices it raised.

    The file is sent as one message: one server session runs it, even behind
    a transaction-mode pooler. `options` (upstream_indexes.* settings the file
    reads) are set for its transaction only, right after its opening BEGIN.
    The file ends with an ERROR (raise_exception) when a check failed: that is
    its verdict, already reported check by check. Any other error means the
    file could not run.
    """
    checks: list[Check] = []

    def on_notice(diagnostic: psycopg.errors.Diagnostic) -> None:
        match = _RESULT.match(diagnostic.message_primary or "")
        if match:
            # A statement's text (traffic.sql's) is whatever the app sent: redacted, as every line is.
            detail = diagnostic.message_detail or ""
            data = {key: redact(value) if isinstance(value, str) else value
                    for key, value in json.loads(detail).items()} if detail.startswith("{") else None
            checks.append(Check(path.name, match["check"], match["status"], redact(match["message"]), data))
        else:
            printer.line(f"  {path.name}: server {diagnostic.severity_nonlocalized}: {diagnostic.message_primary}")

    conn.add_notice_handler(on_notice)
    try:
        conn.execute(with_transaction_settings(conn, path.name, script_sql(path, rendered), options or {}))
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
