"""The tables' pre-flight checks, read-only: one line per problem (a missing table or column, an index the
role may not create, a partition or a kind that cannot run there), collected, never raised."""

import psycopg
from psycopg import sql

from .catalog import Citus, fetch, partitions_of, server_version
from .migration_kinds import Kind
from .migrations import IndexMigration, described


def partition_problems(conn: psycopg.Connection, migrations: list[IndexMigration]) -> list[str]:
    """One line per partition migrate cannot index concurrently: itself partitioned (one level only),
    or a foreign table (no index at all)."""
    kinds = {"p": "is itself partitioned (migrate builds on one level of partitions only)",
             "f": "is a foreign table, which cannot have an index"}
    return [f"table {m.table}: partition {row['partition']} {kinds[row['relkind']]}"
            for m in migrations for row in partitions_of(conn, m) if row["relkind"] in kinds]


def table_problems(conn: psycopg.Connection, migrations: list[IndexMigration], role: str,
                   will_index: bool = True) -> list[str]:
    """One line per indexed table that is missing, lacks a column, or (will_index) that `role` may not index."""
    problems = []
    for table in dict.fromkeys(m.table for m in migrations):
        columns = sorted({c for m in migrations if m.table == table for c in m.columns})
        row = fetch(conn, "table_columns", {"table": table, "columns": columns})[0]
        if not row["table_exists"]:
            problems.append(f"table {table} does not exist (search_path of role {role})")
            continue
        if row["missing_columns"]:
            problems.append(f"table {table} has no column {', '.join(row['missing_columns'])}")
        if will_index and not row["can_index"]:
            problems.append(f"role {role} cannot create indexes on {table}: "
                            f"it is owned by {row['owner']} (own it or be a member of {row['owner']})")
    return problems


def kind_problems(conn: psycopg.Connection, migrations: list[IndexMigration], citus: Citus | None) -> list[str]:
    """One line per migration that cannot run here as its kind: where the table is partitioned or
    distributed by Citus and the kind is not supported there (and why), a foreign key whose referenced
    table or columns are missing or not the role's to reference, a PRIMARY KEY over nullable columns,
    an expression that does not fit the table."""
    distributed = {t.name for t in citus.distributed} if citus else set()
    problems = []
    for m in migrations:
        plain = m.kind == Kind.INDEX and m.plain_columns and not m.index_definition.unique and all(
            not (k.collation or k.opclass) for k in m.index_definition.keys)
        if plain:
            continue
        c = m.constraint
        facts = fetch(conn, "kind_facts", {
            "table": m.table, "references": c.references if c else None,
            "referenced_columns": list(c.referenced_columns) if c else [],
            "not_null_columns": [k.column for k in m.index_definition.keys] if m.kind == Kind.PROMOTION and
            c.type == "primary key" else []})[0]
        what = f"{m.id}: {described(m)}"
        if m.table in distributed:
            problems.append(f"{what}: {m.table} is distributed by Citus, where migrate builds plain indexes only (no "
                            "UNIQUE, WHERE, expression, collation or operator class, no constraint): Citus propagates "
                            "those to every shard under locks of its own, which this tool neither bounds nor verifies")
            continue
        if facts["partitioned"]:
            if m.kind == Kind.INDEX:
                problems.append(f"{what}: {m.table} is partitioned, where migrate builds plain indexes only (no UNIQUE, "
                                "WHERE, expression, collation or operator class), partition by partition: it compares "
                                "and verifies each partition's index by its key columns alone")
            elif m.kind == Kind.PROMOTION:
                problems.append(f"{what}: {m.table} is partitioned, and PostgreSQL cannot add a constraint USING INDEX "
                                "to a partitioned table")
            elif m.kind == Kind.FOREIGN_KEY and server_version(conn) < 180000:
                problems.append(f"{what}: {m.table} is partitioned, and PostgreSQL before 18 cannot add a foreign key "
                                f"NOT VALID to a partitioned table (this server is {conn.info.server_version // 10000})")
        if m.kind == Kind.FOREIGN_KEY:
            if not facts["references_exists"]:
                problems.append(f"{what}: the referenced table {c.references} does not exist")
            elif facts["missing_referenced_columns"]:
                problems.append(f"{what}: the referenced table {c.references} has no column "
                                f"{', '.join(facts['missing_referenced_columns'])}")
            elif not facts["may_reference"]:
                problems.append(f"{what}: role {conn.info.user} may not reference {c.references} (GRANT REFERENCES "
                                f"ON {c.references} TO {conn.info.user})")
        if facts["nullable_columns"]:
            problems.append(f"{what}: {', '.join(facts['nullable_columns'])} may hold NULL, so PostgreSQL would first "
                            f"set NOT NULL, scanning {m.table} under an ACCESS EXCLUSIVE lock: add CHECK (... IS NOT NULL) "
                            "NOT VALID, validate it, and SET NOT NULL first")
        if m.expressions and (problem := _expression_problem(conn, m)):
            problems.append(f"{what}: {problem}")
    return problems


def _expression_problem(conn: psycopg.Connection, m: IndexMigration) -> str | None:
    """Whether the server plans the file's expressions on the table (EXPLAIN: runs nothing)."""
    query = sql.SQL("EXPLAIN SELECT {} FROM ONLY {}").format(
        sql.SQL(", ").join(sql.SQL(f"({e})") for e in m.expressions), sql.Identifier(m.table))
    try:
        with conn.transaction():
            conn.execute(query, prepare=False)
    except psycopg.Error as exc:
        return f"its {'CHECK' if m.kind == Kind.CHECK else 'key or WHERE'} does not fit {m.table}: {exc.diag.message_primary}"
    return None
