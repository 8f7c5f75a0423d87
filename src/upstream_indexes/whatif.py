"""What-if plans before a build: `invoke whatif` and `invoke migrate --dry-run`.

Each pending index is created hypothetically by HypoPG from its migration's CREATE INDEX
statement, whatever kind the file builds (HypoPG takes UNIQUE, partial (WHERE), INCLUDE and
partitioned tables): in this session's memory only, no build, nothing written, no lock beyond a
moment's ACCESS SHARE. Every catalogue query expecting it (verify/app_queries.sql) is EXPLAINed
for its table's busiest customer without and then with the hypothetical indexes: the plan node
and index chosen, the estimated cost before and after, and HypoPG's estimate of the index's size.

It all runs in one READ ONLY transaction between two hypopg_reset() calls: no hypothetical index
stays on the session (behind a pooler the next client would find ours in its EXPLAINs). The SQL
is queries/hypopg*.sql and queries/busiest_customer.sql.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from . import app_queries, catalog, events, ledger, migrations, planner, versions
from .app_queries import AppQuery
from .config import Target
from .db import connect, one_line, read_only_transaction, translate_errors
from .errors import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_OK, PreflightProblem, ToolError
from .events import Listener
from .migrations import IndexMigration
from .paths import MIGRATIONS_DIR


@dataclass(frozen=True)
class QueryPlan:
    """One catalogue query planned without and with the hypothetical indexes."""

    query: str  # its name in the catalogue
    customer: int  # the customer id it was planned for
    uses_index: bool  # the plan with them reads the index the query expects
    node: str | None  # the plan node that reads it (Index Only Scan, Index Scan, Bitmap Index Scan)
    plan_before: str  # the plan's scans, e.g. "Index Scan using claim_cust_decdate_idx on upstream_claimrecord"
    plan_after: str
    cost_before: float  # the planner's estimated total cost
    cost_after: float


@dataclass(frozen=True)
class IndexPlans:
    """One pending index, created hypothetically, and each catalogue query expecting it."""

    migration_id: str
    index: str
    table: str
    size_bytes: int | None  # HypoPG's estimate; None when it could not create the index
    problem: str | None  # why HypoPG could not create it
    queries: tuple[QueryPlan, ...]

    @property
    def unproven(self) -> list[str]:
        """Why the what-if does not show the planner using it, one line each (none: proven)."""
        if self.problem:
            return [f"{self.index}: HypoPG could not create it ({self.problem})"]
        if not self.queries:
            return [f"{self.index}: no catalogue query expects it (add one to verify/app_queries.sql with "
                    f"`-- expect: {self.index}`)"]
        return [f"{self.index}: {q.query} would not use it (its plan: {q.plan_after})"
                for q in self.queries if not q.uses_index]


@dataclass
class WhatIfReport:
    """What `invoke whatif` found (its exit code for the task)."""

    exit_code: int = EXIT_OK
    indexes: list[IndexPlans] = field(default_factory=list)


def install_hint(server_version: int) -> str:
    """How to get HypoPG onto a server of this version: Debian's package for 15 (production's), else
    the source (or PGDG's package)."""
    major = server_version // 10000
    if major == 15:
        return "install Debian's postgresql-15-hypopg (apt-get install postgresql-15-hypopg)"
    return (f"build it from source against this server's pg_config (https://github.com/HypoPG/hypopg, "
            f"`make install`), or install postgresql-{major}-hypopg from the PGDG repository")


def unavailable(conn: psycopg.Connection, found: dict, tables: list[str]) -> str | None:
    """Why this database cannot show what-if plans (`found`: queries/hypopg.sql's row), as one line
    saying what to do; None when it can."""
    database = conn.info.dbname
    citus = catalog.citus(conn, tables)
    if citus and citus.distributed:  # HypoPG would not help there: first
        return ("this is a Citus coordinator: the plans of distributed tables are made on the workers, where "
                "hypothetical indexes of this session do not exist")
    if found["available"] is None:
        return (f"HypoPG is not installed on this server (PostgreSQL "
                f"{versions.describe(conn.info.server_version)}): {install_hint(conn.info.server_version)}, "
                f"then run CREATE EXTENSION hypopg in database {database}")
    if found["version"] is None:
        return (f"HypoPG {found['available']} is installed on the server but not created in database {database}: "
                "a superuser runs CREATE EXTENSION hypopg there (functions only, no table; the what-if never "
                "writes)")
    return None


def show(conn: psycopg.Connection, todo: list[planner.Action], listener: Listener, require_plan: bool = False,
         queries: list[AppQuery] | None = None) -> list[IndexPlans]:
    """The what-if of the actions that build an index, for the listener (events); the catalogue's
    queries unless `queries`. With require_plan: ToolError when HypoPG is missing (exit 2) or the
    planner would not use a pending index for every query expecting it (exit 1)."""
    pending = [a.state.migration for a in todo if a.builds]
    if not pending:
        listener.emit(events.WhatIfDone(None, 0, 0, ()))
        return []
    hypopg = catalog.fetch(conn, "hypopg", {})[0]
    reason = unavailable(conn, hypopg, [m.table for m in pending])
    if reason:
        if require_plan:
            raise ToolError(f"--require-plan: cannot plan the pending indexes: {reason}; nothing was changed",
                            EXIT_CANNOT_RUN)
        listener.emit(events.WhatIfSkipped(reason))
        return []
    found = plans(conn, hypopg["schema"], pending, app_queries.load() if queries is None else queries)
    for index in found:
        listener.emit(events.WhatIfPlanned(index))
    planned = [q for index in found for q in index.queries]
    listener.emit(events.WhatIfDone(hypopg["version"], sum(q.uses_index for q in planned), len(planned),
                                    tuple(index.index for index in found if index.unproven)))
    unproven = [line for index in found for line in index.unproven]
    if require_plan and unproven:
        raise ToolError("\n".join(f"--require-plan: {line}" for line in unproven) + "\nnothing was changed",
                        EXIT_FAILED)
    return found


def plans(conn: psycopg.Connection, schema: str, pending: list[IndexMigration],
          queries: list[AppQuery]) -> list[IndexPlans]:
    """Each pending index created hypothetically (HypoPG in `schema`), each catalogue query expecting
    one of them planned before and with all of them: the state after migrate builds them all."""
    reset = sql.SQL(catalog.query("hypopg_reset")).format(schema=sql.Identifier(schema))
    create = sql.SQL(catalog.query("hypopg_create")).format(schema=sql.Identifier(schema))
    expected = [q for m in pending for q in queries if q.expected_index == m.index]
    with read_only_transaction(conn):
        # EXPLAIN takes ACCESS SHARE on each table: never queue long behind DDL (others would queue behind us).
        conn.execute("SELECT set_config('lock_timeout', '5s', true)")
        conn.execute(reset)  # only ours count
        try:
            with conn.transaction():  # a savepoint: whatever fails in it, the reset below runs
                customers = {q.name: _busiest_customer(conn, q.table) for q in expected}
                before = {q.name: _explain(conn, q, customers[q.name]) for q in expected}
                created = {m.index: _create(conn, create, m) for m in pending}
                after = {q.name: _explain(conn, q, customers[q.name]) for q in expected}
        finally:
            if not conn.closed:
                conn.execute(reset)
    names = {plan_name: index for index, (plan_name, _, _) in created.items() if plan_name}
    return [IndexPlans(m.id, m.index, m.table, created[m.index][1], created[m.index][2],
                       tuple(_compare(q.name, customers[q.name], before[q.name], after[q.name],
                                      created[m.index][0], names) for q in expected if q.expected_index == m.index))
            for m in pending]


def _create(conn: psycopg.Connection, create: sql.Composed,
            m: IndexMigration) -> tuple[str | None, int | None, str | None]:
    """HypoPG's name and size estimate of the index the migration builds, or why it could not."""
    try:
        with conn.transaction():
            row = conn.execute(create, {"definition": m.definition}).fetchone()
    except psycopg.Error as exc:
        return None, None, one_line(exc)
    if row is None:
        return None, None, f"it did not take `{m.definition}` as a CREATE INDEX statement"
    return row[0], row[1], None


def _busiest_customer(conn: psycopg.Connection, table: str) -> int:
    """As verify/plans.sql picks it: the busiest by the statistics, else any row's, else 0."""
    customer = catalog.fetch(conn, "busiest_customer", {"table": table})
    if customer and customer[0]["customer"] is not None:
        return customer[0]["customer"]
    row = conn.execute(sql.SQL("SELECT customer_id FROM {} LIMIT 1").format(sql.Identifier(table))).fetchone()
    return row[0] if row else 0  # an empty table: any id plans the same


def _explain(conn: psycopg.Connection, query: AppQuery, customer: int) -> dict:
    """The query's plan for this customer (its value in place of $1, as the app sends it)."""
    text = re.sub(r"\$1\b", str(int(customer)), query.query)
    return conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + sql.SQL(text)).fetchone()[0][0]["Plan"]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _scans(plan: dict, names: dict[str, str]) -> str:
    """The plan's scans, each `<node> using <index> on <table>`; a hypothetical index by our name."""
    return ", ".join(node["Node Type"] + (" Backward" if node.get("Scan Direction") == "Backward" else "")
                     + (f" using {names.get(node['Index Name'], node['Index Name'])}" if "Index Name" in node else "")
                     + (f" on {node['Relation Name']}" if "Relation Name" in node else "")
                     for node in _nodes(plan) if "Index Name" in node or "Relation Name" in node) or "no scan"


def _compare(name: str, customer: int, before: dict, after: dict, plan_name: str | None,
             names: dict[str, str]) -> QueryPlan:
    node = next((n["Node Type"] for n in _nodes(after) if plan_name and n.get("Index Name") == plan_name), None)
    return QueryPlan(name, customer, node is not None, node, _scans(before, names), _scans(after, names),
                     before["Total Cost"], after["Total Cost"])


@translate_errors
def whatif(target: Target, listener: Listener, directory: Path = MIGRATIONS_DIR,
           catalogue: Path = app_queries.CATALOGUE, require_plan: bool = False) -> WhatIfReport:
    """The what-if of every index `migrate` would build here, read-only: no lock of the migrator,
    no privilege but to read (a standby, a transaction pooler and a read-only role do)."""
    files = migrations.load(directory)
    queries = app_queries.load(catalogue)
    report = WhatIfReport()
    with connect(target) as conn:
        with read_only_transaction(conn):
            problems = [p for p in [versions.unsupported(conn.info.server_version)] if p]
            problems += catalog.table_problems(conn, files, conn.info.user, will_index=False)
            if problems:
                raise PreflightProblem("\n".join(problems))
            todo = planner.migrate_plan([catalog.index_state(conn, m) for m in files], ledger.applied_ids(conn))
        report.indexes = show(conn, todo, listener, require_plan, queries)
    return report
