"""What-if plans before a build: `invoke whatif` and `invoke migrate --dry-run`.

Each pending index is created hypothetically by HypoPG from its migration's CREATE INDEX
statement, whatever kind the file builds (HypoPG takes UNIQUE, partial (WHERE), INCLUDE and
partitioned tables): in this session's memory only, no build, nothing written, no lock beyond a
moment's ACCESS SHARE. Every catalogue query expecting it (verify/app_queries.sql and the
migrations folder's own app_queries.sql) is EXPLAINed for its table's busiest customer without and
then with the hypothetical indexes: the plan node and index chosen, the estimated cost before and
after, and HypoPG's estimate of the index's size (on a partitioned table, the sum of its estimates
for each partition's index, which migrate builds). A pending constraint (CHECK, FOREIGN KEY, a
promotion USING INDEX) builds no index: one line says so, and --require-plan asks nothing of it.

It all runs in one READ ONLY transaction between two hypopg_reset() calls: no hypothetical index
stays on the session (behind a pooler the next client would find ours in its EXPLAINs). The SQL
is queries/hypopg*.sql and queries/busiest_customer.sql.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from . import app_queries, catalog, ledger, migrations, planner, run_events, table_checks, versions
from .app_queries import AppQuery
from .config import Target
from .db import connect, one_line, read_only_transaction, translate_errors
from .errors import EXIT_CANNOT_RUN, EXIT_FAILED, EXIT_OK, PreflightProblem, ToolError
from .events import Listener
from .migrations import IndexMigration
from .partitions import definition_tail
from .paths import MIGRATIONS_DIR


@dataclass(frozen=True)
class Plan:
    """A catalogue query's plan, in short: the scan that matters, all its scans, its cost."""

    node: str | None  # the node reading the table: the one reading the expected index, else the first index scan,
    #                   else the first scan (Seq Scan); on a partitioned table, a partition's
    index: str | None  # the index that node reads (a hypothetical one by its migration's name); None: no index
    scans: str  # e.g. "Index Scan Backward using claim_cust_decdate_idx on upstream_claimrecord"
    cost: float  # the planner's estimated total cost


@dataclass(frozen=True)
class QueryPlan:
    """One catalogue query planned without and with the hypothetical indexes."""

    query: str  # its name in the catalogue
    customer: int  # the customer id it was planned for
    uses_index: bool  # the plan with them reads the index the query expects
    before: Plan
    after: Plan


@dataclass(frozen=True)
class IndexPlans:
    """One pending index, created hypothetically, and each catalogue query expecting it."""

    migration_id: str
    index: str
    table: str
    definition: str  # the CREATE INDEX statement HypoPG was given (the migration's, without CONCURRENTLY)
    size_bytes: int | None  # HypoPG's estimate; None when it could not create the index
    partitions: int | None  # a partitioned table: how many partitions' estimates size_bytes sums (None: not one)
    problem: str | None  # why HypoPG could not create it
    queries: tuple[QueryPlan, ...]
    unique: bool = False  # a unique index: it enforces its key, so no query need expect it (as for verify)

    @property
    def unproven(self) -> list[str]:
        """Why the what-if does not show the planner using it, one line each (none: proven)."""
        if self.problem:
            return [f"{self.index}: HypoPG could not create it ({self.problem})"]
        if not self.queries and not self.unique:
            return [f"{self.index}: no catalogue query expects it (add one to verify/app_queries.sql with "
                    f"`-- expect: {self.index}`)"]
        return [f"{self.index}: {q.query} would not use it (its plan: {q.after.scans})"
                for q in self.queries if not q.uses_index]


@dataclass
class WhatIfReport:
    """What the what-if found (`invoke whatif` returns it: its exit code and --json)."""

    exit_code: int = EXIT_OK
    hypopg: str | None = None  # HypoPG's version that planned (None: nothing planned)
    skipped: str | None = None  # why nothing could be planned here (no HypoPG, a Citus coordinator)
    indexes: list[IndexPlans] = field(default_factory=list)
    constraints: list[run_events.WhatIfNoIndex] = field(default_factory=list)  # the pending ones: no index, no plan

    @property
    def planned(self) -> int:
        """Catalogue queries expecting a pending index."""
        return sum(len(index.queries) for index in self.indexes)

    @property
    def used(self) -> int:
        """Of those, the ones whose plan would use the index they expect."""
        return sum(q.uses_index for index in self.indexes for q in index.queries)

    @property
    def unproven(self) -> list[str]:
        """The pending indexes the what-if does not show used by every query expecting them (or, but for a
        unique index, expected by none)."""
        return [index.index for index in self.indexes if index.unproven]


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
         queries: list[AppQuery] | None = None) -> WhatIfReport:
    """The what-if of the actions that build an index, for the listener (events); the catalogue's
    queries unless `queries`. With require_plan no `skipped` line: require() says it as the error."""
    report = WhatIfReport()
    pending = [a.state.migration for a in todo if a.builds]
    report.constraints = [run_events.WhatIfNoIndex(m.id, m.constraint.type, m.constraint.index)
                          for m in (a.state.migration for a in todo) if not m.kind.makes_index]
    if pending:
        hypopg = catalog.fetch(conn, "hypopg", {})[0]
        report.skipped = unavailable(conn, hypopg, [m.table for m in pending])
        if report.skipped and require_plan:
            return report
        if not report.skipped:
            report.hypopg = hypopg["version"]
            report.indexes = plans(conn, hypopg["schema"], pending, app_queries.load() if queries is None else queries)
    said = {c.migration_id: c for c in report.constraints} | {
        index.migration_id: run_events.WhatIfPlanned(index) for index in report.indexes}
    for action in todo:  # in migration order: each pending index's plans, each constraint's line
        if action.state.migration.id in said:
            listener.emit(said[action.state.migration.id])
    listener.emit(run_events.WhatIfSkipped(report.skipped) if report.skipped else
                  run_events.WhatIfDone(report.hypopg, report.used, report.planned, tuple(report.unproven)))
    return report


def require(found: WhatIfReport, report=None) -> None:
    """--require-plan: a ToolError (carrying `report`, the command's, for its --json) when the what-if
    could not plan (exit 2) or does not show every pending index used (exit 1)."""
    if found.skipped:
        raise ToolError(f"--require-plan: cannot plan the pending indexes: {found.skipped}; nothing was changed",
                        EXIT_CANNOT_RUN, report)
    unproven = [line for index in found.indexes for line in index.unproven]
    if unproven:
        raise ToolError("\n".join(f"--require-plan: {line}" for line in unproven) + "\nnothing was changed",
                        EXIT_FAILED, report)


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
                partitions = {m.index: [(row["schema"], row["partition"]) for row in catalog.partition_rows(conn, m)
                                        if row["relkind"] == "r"] for m in pending}
                customers = {q.name: _busiest_customer(conn, q.table) for q in expected}
                before = {q.name: _explain(conn, q, customers[q.name]) for q in expected}
                summed = {m.index: _partitions_estimate(conn, create, m, partitions[m.index])
                          for m in pending if partitions[m.index]}
                conn.execute(reset)  # the partitions' own were only for their sizes
                created = {m.index: _create(conn, create, m.definition) for m in pending}
                after = {q.name: _explain(conn, q, customers[q.name]) for q in expected}
        finally:
            if not conn.closed:
                conn.execute(reset)
    names = {plan_name: index for index, (plan_name, _, _) in created.items() if plan_name}
    parents = {partition: m.table for m in pending for _, partition in partitions[m.index]}

    def planned(m: IndexMigration) -> IndexPlans:
        plan_name, size_bytes, problem = created[m.index]
        queries = []
        for q in (q for q in expected if q.expected_index == m.index):
            shown = [_plan(explained, plan_name, names, parents) for explained in (before[q.name], after[q.name])]
            queries.append(QueryPlan(q.name, customers[q.name], shown[1].index == m.index, *shown))
        if partitions[m.index] and not problem:
            size_bytes = summed[m.index]
        return IndexPlans(m.id, m.index, m.table, m.definition, size_bytes, len(partitions[m.index]) or None, problem,
                          tuple(queries), m.index_definition.unique)

    return [planned(m) for m in pending]


def _create(conn: psycopg.Connection, create: sql.Composed,
            definition: str) -> tuple[str | None, int | None, str | None]:
    """HypoPG's name and size estimate of the index a CREATE INDEX statement makes, or why it could not."""
    try:
        with conn.transaction():
            row = conn.execute(create, {"definition": definition}).fetchone()
    except psycopg.Error as exc:
        return None, None, one_line(exc)
    if row is None:
        return None, None, f"it did not take `{definition}` as a CREATE INDEX statement"
    return row[0], row[1], None


def _partitions_estimate(conn: psycopg.Connection, create: sql.Composed, m: IndexMigration,
                         partitions: list[tuple[str, str]]) -> int | None:
    """A partitioned table's index: the sum of HypoPG's estimates of each partition's (migrate builds one on
    each); None when HypoPG cannot create one. HypoPG would size the parent's from the parent's
    pg_class.reltuples, which autovacuum never updates on a partitioned table: -1 until a DBA runs ANALYZE
    on it, then stale; it said 8 kB for the test's 2 MB (tests/test_whatif.py)."""
    sizes = [_create(conn, create, sql.SQL("CREATE INDEX {} ON {} {}").format(
        sql.Identifier(m.index), sql.Identifier(schema, partition), sql.SQL(definition_tail(m))).as_string(conn))[1]
        for schema, partition in partitions]
    return None if None in sizes else sum(sizes)


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


def _plan(plan: dict, expected: str | None, names: dict[str, str], parents: dict[str, str]) -> Plan:
    """A plan in short (`expected`: HypoPG's name of the index the query expects; `names`: ours of each of
    HypoPG's; `parents`: each partition's partitioned table)."""
    scans = [n for n in _nodes(plan) if "Index Name" in n or "Relation Name" in n]
    main = (next((n for n in scans if expected and n.get("Index Name") == expected), None)
            or next((n for n in scans if "Index Name" in n), None) or next(iter(scans), None))
    index = main and main.get("Index Name")
    return Plan(main and main["Node Type"], index and names.get(index, index), _scans(plan, names, parents),
                plan["Total Cost"])


def _scans(plan: dict, names: dict[str, str], parents: dict[str, str]) -> str:
    """The plan's scans, each `<node> using <index> on <table>` (a hypothetical index by our name); the
    scans of a partitioned table's partitions counted, not listed: `<node> [using <ours>] on N partitions
    of <table>` (a partition's own index, named after it, is not named)."""
    shown: list[str | tuple[str, str | None, str]] = []  # a scan's text, or a partitions' group (node, ours, table)
    partitions: Counter = Counter()

    def walk(node: dict) -> None:
        kind = node["Node Type"] + (" Backward" if node.get("Scan Direction") == "Backward" else "")
        parent = parents.get(node.get("Relation Name"))
        if parent:  # not its children: a bitmap heap scan's index scans read its partition's indexes
            ours = next((names[n["Index Name"]] for n in _nodes(node) if n.get("Index Name") in names), None)
            group = (kind, ours, parent)
            if group not in partitions:
                shown.append(group)
            partitions[group] += 1
            return
        if "Index Name" in node or "Relation Name" in node:
            shown.append(kind + (f" using {names.get(node['Index Name'], node['Index Name'])}" if "Index Name" in node
                                 else "") + (f" on {node['Relation Name']}" if "Relation Name" in node else ""))
        for child in node.get("Plans", ()):
            walk(child)

    def text(scan) -> str:
        if isinstance(scan, str):
            return scan
        kind, ours, parent = scan
        count = partitions[scan]
        return f"{kind}{f' using {ours}' if ours else ''} on {count} partition{'s' if count > 1 else ''} of {parent}"

    walk(plan)
    return ", ".join(text(scan) for scan in shown) or "no scan"


@translate_errors
def whatif(target: Target, listener: Listener, directory: Path = MIGRATIONS_DIR,
           catalogue: Path | None = None, require_plan: bool = False) -> WhatIfReport:
    """The what-if of every index `migrate` would build here, read-only: no lock of the migrator,
    no privilege but to read (a standby, a transaction pooler and a read-only role do). The queries:
    `catalogue`'s, else those verify proves the folder's indexes by (the folder's own catalogue too)."""
    files = migrations.load(directory)
    queries = app_queries.load(catalogue) if catalogue else app_queries.load_all(app_queries.for_folder(directory))
    with connect(target) as conn:
        with read_only_transaction(conn):
            problems = [p for p in [versions.unsupported(conn.info.server_version)] if p]
            problems += table_checks.table_problems(conn, files, conn.info.user, will_index=False)
            if problems:
                raise PreflightProblem("\n".join(problems))
            todo = planner.migrate_plan(catalog.index_states(conn, files), ledger.applied_ids(conn))
        report = show(conn, todo, listener, require_plan, queries)
    if require_plan:
        require(report, report)
    return report
