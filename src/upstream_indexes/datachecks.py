"""The data pre-checks: nothing is changed until the data allows it. Before a unique index is built,
the keys rows share (a unique build would fail after its whole scan, leaving an INVALID index);
before a CHECK or a foreign key is added, the rows that violate it (added NOT VALID it would already
refuse the app's next update of such a row, and VALIDATE would fail). Each is a query in queries/
with a header, filled in with the migration's parts; all read-only. migrate runs them before any
change (`--skip-data-checks` skips them: docs/migration-kinds.md says when).
"""

import json
import time

import psycopg
from psycopg import sql

from . import catalog
from .db import one_line, read_only_transaction
from .errors import PreflightProblem
from .grammar_tokens import words
from .migration_kinds import Kind
from .migrations import IndexMigration
from .records import Record

EXAMPLES = 5


class Finding(Record):
    """What one check found: how many keys or rows, and up to five of them."""

    migration: IndexMigration
    count: int  # duplicate keys, or violating rows
    examples: tuple[str, ...]
    rows: int | None = None  # duplicate keys: the rows that hold them

    def describe(self) -> str:
        m = self.migration
        shown = "; ".join(self.examples)
        if m.kind == Kind.INDEX:
            return (f"{m.id}: {self.count} keys of the unique index {m.index} are each held by more than one row of "
                    f"{m.table} ({self.rows} rows), e.g. {shown}: CREATE UNIQUE INDEX CONCURRENTLY would fail after "
                    "its whole scan and leave an INVALID index; remove or merge those rows, then run migrate again")
        return (f"{m.id}: {self.count} rows of {m.table} violate {m.definition}, e.g. {shown}: added NOT VALID it "
                "would already refuse the app's next update of each, and VALIDATE would fail; correct those rows, "
                "then run migrate again")


class Checked(Record):
    """One check run: what it looked for, how long it took, and what it found (None: nothing)."""

    migration: IndexMigration
    what: str
    seconds: float
    finding: Finding | None


def needed(m: IndexMigration) -> bool:
    """Whether the data can stop `m`: a unique index, a CHECK, a foreign key."""
    return (m.kind == Kind.INDEX and m.index_definition.unique) or m.kind in (Kind.CHECK, Kind.FOREIGN_KEY)


def what(m: IndexMigration) -> str:
    """What the check looks for, in words."""
    if m.kind == Kind.INDEX:
        return f"duplicate keys of {m.index} in {m.table}"
    return f"rows of {m.table} that violate {m.index}"


def run(conn: psycopg.Connection, m: IndexMigration) -> Checked:
    """Run the check `m` needs, read-only; PreflightProblem when the server cannot run it (the file's
    expression does not fit the table, say)."""
    started = time.monotonic()
    try:
        with read_only_transaction(conn):
            finding = _duplicates(conn, m) if m.kind == Kind.INDEX else _violations(conn, m)
    except psycopg.Error as exc:
        raise PreflightProblem(f"{m.id}: the check for {what(m)} does not run: {one_line(exc)}") from None
    return Checked(m, what(m), time.monotonic() - started, finding)


def _duplicates(conn: psycopg.Connection, m: IndexMigration) -> Finding | None:
    index = m.index_definition
    keys = [sql.SQL("{}{}").format(sql.Identifier(k.column) if k.column else sql.SQL(f"({k.expression})"),
                                   sql.SQL(f" COLLATE {k.collation}") if k.collation else sql.SQL(""))
            for k in index.keys]
    conditions = [sql.SQL(f"({index.predicate})")] if index.predicate else []
    if not index.nulls_not_distinct:
        conditions += [sql.SQL("{} IS NOT NULL").format(key) for key in keys]
    query = _filled("duplicate_keys", table=sql.Identifier(m.table), keys=sql.SQL(", ").join(keys),
                    where=sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true"), limit=sql.Literal(EXAMPLES))
    rows = conn.execute(query).fetchall()
    if not rows:
        return None
    return Finding(m, rows[0][0], tuple(f"{key} in {count} rows" for _, _, key, count in rows), int(rows[0][1]))


def _violations(conn: psycopg.Connection, m: IndexMigration) -> Finding | None:
    c = m.constraint
    if m.kind == Kind.CHECK:
        named = words(c.expression)
        query = lambda limit: _filled(
            "check_violations", table=sql.Identifier(m.table), expression=sql.SQL(c.expression),
            shown=_shown(conn, m.table, named, None), limit=limit)
    else:
        referenced = c.referenced_columns or tuple(_primary_key(conn, c.references, [])[0])
        pairs = list(zip(c.columns, referenced))
        columns = [sql.SQL("referencing.{}").format(sql.Identifier(col)) for col in c.columns]
        all_set = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(col) for col in columns)
        any_set = sql.SQL(" OR ").join(sql.SQL("{} IS NOT NULL").format(col) for col in columns)
        query = lambda limit: _filled(
            "foreign_key_violations", table=sql.Identifier(m.table), references=sql.Identifier(c.references),
            matched=sql.SQL(" AND ").join(sql.SQL("referenced.{} = referencing.{}").format(
                sql.Identifier(theirs), sql.Identifier(ours)) for ours, theirs in pairs),
            checked=all_set,
            partly_null=sql.SQL("({}) AND NOT ({})").format(any_set, all_set) if c.match_full else sql.SQL("false"),
            shown=_shown(conn, m.table, list(c.columns), "referencing"), limit=limit)
    examples = [row[0] for row in conn.execute(query(sql.Literal(EXAMPLES))).fetchall()]
    if not examples:
        return None
    count = conn.execute(_filled("violation_count", query=query(sql.SQL("ALL")))).fetchone()[0]
    return Finding(m, count, tuple(json.dumps(example) for example in examples))


def _filled(name: str, **parts: sql.Composable) -> sql.Composed:
    """queries/<name>.sql with its {parts} filled in, without its header (which names them) and its
    closing `;` (it may be a subquery)."""
    text = "\n".join(line for line in catalog.query(name).splitlines() if not line.startswith("--"))
    return sql.SQL(text.rstrip().removesuffix(";")).format(**parts)


def _primary_key(conn: psycopg.Connection, table: str, named: list[str]) -> tuple[list[str], list[str]]:
    row = catalog.fetch(conn, "primary_key", {"table": table, "columns": named})[0]
    return row["primary_key"], row["present"]


def _shown(conn: psycopg.Connection, table: str, named: list[str], alias: str | None) -> sql.Composable:
    """A violating row as JSON: its primary key and the columns the constraint names."""
    primary_key, present = _primary_key(conn, table, named)
    columns = list(dict.fromkeys(primary_key + [c for c in named if c in present]))
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier(alias, c) if alias else sql.Identifier(c))
        for c in columns))
