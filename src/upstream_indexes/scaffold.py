"""`invoke new`: the next-numbered migration pair in the house style (templates/), for each kind: an
index (--unique, --where), a CHECK (--check), a foreign key (--foreign-key), a promotion of a unique
index to its constraint (--using-index); for an index that serves queries, the catalogue entry to
add so that verify proves it. The pair must pass the grammar the runner enforces, or nothing is
written. With --dsn the pair is checked against a database first (table, columns, the name, what
its kind needs there, the indexes it would make redundant)."""

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import catalog, django_state, overlaps, table_checks
from .config import Target
from .db import connect, read_only_transaction, translate_errors
from .errors import GrammarError, MigrationFileProblem, PreflightProblem, ToolError
from .grammar import parse
from .migration_kinds import Kind
from .migrations import IndexMigration, load
from .overlaps import Overlap
from .paths import TEMPLATES_DIR

MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_KEY_COLUMN = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*)(?P<order>\s+(?:asc|desc))?(?P<nulls>\s+nulls\s+(?:first|last))?$",
                         re.IGNORECASE)
_FOREIGN_KEY = re.compile(r"^\(?(?P<columns>[^()]+?)\)?\s+REFERENCES\s+(?P<references>.+)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class NewMigration:
    forward: Path
    rollback: Path
    catalogue_entry: str | None  # what to add to verify/app_queries.sql (None: nothing, verify proves it otherwise)
    overlapping: list[Overlap] = field(default_factory=list)  # with --dsn: existing indexes it makes redundant


def identifier(flag: str, value: str) -> str:
    if not _IDENTIFIER.match(value or "") or len(value) > MAX_IDENTIFIER:
        raise ToolError(f"{flag}: {value!r} is not a lower-case SQL identifier of at most {MAX_IDENTIFIER} "
                        "characters (a-z, 0-9, _)")
    return value


def key_columns(value: str) -> list[str]:
    """`customer_id, payer, decided_date DESC` as ["customer_id", "payer", "decided_date DESC"]."""
    columns = []
    for item in (value or "").split(","):
        match = _KEY_COLUMN.match(item.strip())
        if not match:
            raise ToolError(f"--columns: {item.strip()!r} is not `<column> [ASC|DESC] [NULLS FIRST|LAST]`")
        words = [match["name"]] + [part.strip().upper() for part in (match["order"], match["nulls"]) if part]
        columns.append(" ".join(re.sub(r"\s+", " ", word) for word in words))
    return columns


def create(directory: Path, name: str, table: str, columns: str | None = None, include: str | None = None,
           unique: bool = False, where: str | None = None, check: str | None = None,
           using_index: str | None = None, foreign_key: str | None = None, long_name: bool = False,
           target: Target | None = None) -> NewMigration:
    """Write NNNN.<name>.sql and its rollback (NNNN: one past the highest in `directory`). An index
    name longer than Django's models.Index allows only with `long_name` (django_state.py). With a
    `target`, the pair is first checked against that database (check_against): nothing is written
    when it could not be made there."""
    existing = load(directory)
    name, table = identifier("NAME", name), identifier("--table", table)
    if columns and not unique and len(name) > django_state.MAX_NAME and not long_name:
        raise ToolError(f"NAME: {name} has {len(name)} characters; Django's models.Index takes at most "
                        f"{django_state.MAX_NAME} (models.E034), so `invoke django-state` could not hand it to "
                        "Django: choose a shorter name, or pass --long-name to keep it out of Django's state")
    kinds = [flag for flag, given in (("--columns", columns), ("--check", check), ("--using-index", using_index),
                                      ("--foreign-key", foreign_key)) if given]
    if len(kinds) != 1:
        raise ToolError("give one of --columns (an index), --check (a CHECK), --foreign-key (a foreign key) or "
                        f"--using-index (a promotion){'; not ' + ' and '.join(kinds) if kinds else ''}")
    if (include or unique or where) and not columns:
        raise ToolError("--include, --unique and --where describe an index: give its --columns")
    if taken := next((m for m in existing if m.index == name and not (using_index and m.kind == Kind.INDEX)), None):
        raise ToolError(f"NAME: {name} is already {'built' if taken.kind.makes_index else 'added'} by {taken.id}")
    values = {"index": name, "constraint": name, "table": table}
    entry = None
    if columns:
        values.update(_index_values(name, table, columns, include, unique, where))
        templates = ("migration.sql", "migration.rollback.sql")
        if not unique:
            entry = _catalogue_entry(name, table, key_columns(columns), values["names"], where)
    elif check:
        values["check"] = check.strip()
        templates = ("check.sql", "constraint.rollback.sql")
    elif foreign_key:
        match = _FOREIGN_KEY.match(foreign_key.strip())
        if not match:
            raise ToolError(f"--foreign-key: {foreign_key!r} is not `<column>[, ...] REFERENCES <table> [(<column>, "
                            "...)]`")
        values.update(columns=match["columns"].strip(), references=match["references"].strip())
        templates = ("foreign_key.sql", "constraint.rollback.sql")
    else:
        values.update(_promotion_values(existing, name, table, identifier("--using-index", using_index)))
        templates = ("promotion.sql", "promotion.rollback.sql")
    number = max(int(m.id.split(".", 1)[0]) for m in existing) + 1
    forward = directory / f"{number:04d}.{name}.sql"
    rollback = forward.with_name(f"{number:04d}.{name}.rollback.sql")
    texts = {path: (TEMPLATES_DIR / template).read_text().format(**values)
             for path, template in zip((forward, rollback), templates)}
    with tempfile.TemporaryDirectory() as scratch:
        for path, text in texts.items():
            (Path(scratch) / path.name).write_text(text, encoding="utf-8")
        try:
            [draft] = load(Path(scratch))  # the pair must pass the grammar the runner enforces
        except MigrationFileProblem as problem:
            raise ToolError(f"nothing written: {problem}") from None
    overlapping = check_against(target, draft) if target is not None else []
    for path, text in texts.items():
        path.write_text(text, encoding="utf-8")
    return NewMigration(forward, rollback, entry, overlapping)


@translate_errors
def check_against(target: Target, draft: IndexMigration) -> list[Overlap]:
    """Read-only, before anything is written: the table and every column exist, the name is free (or
    already holds this very index or constraint), and what the kind needs there holds
    (table_checks.kind_problems), as migrate's pre-flight will demand; PreflightProblem says what is not.
    Returns the existing indexes the new one would make redundant (the redundancy report's logic)."""
    with connect(target) as conn, read_only_transaction(conn):
        role = conn.execute("SELECT current_user").fetchone()[0]
        problems = table_checks.table_problems(conn, [draft], role, will_index=False)
        if not problems:
            state = catalog.index_state(conn, draft)
            if state.state not in (catalog.State.ABSENT, catalog.State.VALID):
                problems.append(f"{draft.index} already exists there, {state.state.value}: "
                                f"`{state.definition or 'not this index'}`; choose another name")
            problems += table_checks.kind_problems(conn, [draft], catalog.citus(conn, [draft.table]))
        if problems:
            raise PreflightProblem("\n".join(f"{problem}; nothing was written" for problem in problems))
        return overlaps.find(conn, [draft])


def _index_values(name: str, table: str, columns: str, include: str | None, unique: bool,
                  where: str | None) -> dict:
    keys = key_columns(columns)
    included = [identifier("--include", column.strip()) for column in include.split(",")] if include else []
    names = [key.split()[0] for key in keys] + included
    if len(set(names)) != len(names):
        raise ToolError(f"--columns/--include: a column named twice in {', '.join(names)}")
    where_clause = f" WHERE {where.strip()}" if where and where.strip() else ""
    try:
        parse(f"CREATE INDEX CONCURRENTLY {name} ON {table} ({', '.join(keys)}){where_clause}")
    except GrammarError as problem:
        raise ToolError(f"--where: {problem}") from None
    what = "Unique index" if unique else ("Partial covering index" if where_clause else "Covering index")
    return {"columns": ", ".join(keys), "include_clause": f" INCLUDE ({', '.join(included)})" if included else "",
            "unique": "UNIQUE " if unique else "", "where_clause": where_clause, "what": what, "names": names}


def _promotion_values(existing: list[IndexMigration], name: str, table: str, index: str) -> dict:
    if index != name:
        raise ToolError(f"--using-index {index}: name the constraint as its index ({index}): PostgreSQL renames the "
                        "index to the constraint's name, and the index's own migration would find it gone")
    built = next((m for m in reversed(existing) if m.kind == Kind.INDEX and m.index == index), None)
    if built is None or not built.index_definition.unique or built.table != table:
        raise ToolError(f"--using-index {index}: no migration in this folder builds a unique index {index} on {table} "
                        f"(`invoke new {index} --table {table} --columns ... --unique` writes one)")
    twin = f"{index[:MAX_IDENTIFIER - len('_twin')]}_twin"
    return {"kind": "UNIQUE", "twin": built.index_definition.sql(twin).replace(" INDEX ", " INDEX CONCURRENTLY ", 1),
            "twin_name": twin}


def _catalogue_entry(index: str, table: str, keys: list[str], names: list[str], where: str | None) -> str:
    query = f"{index.removesuffix('_cov')}_list"
    order = f"\nORDER BY {', '.join(keys[1:])}" if len(keys) > 1 else ""
    implied = f"\n  AND {where.strip()}" if where and where.strip() else ""
    return (f"-- name: {query}\n-- expect: {index}\n-- TODO what the app does with it.\n"
            f"PREPARE {query}(bigint) AS\nSELECT {', '.join(names)}\nFROM {table}\n"
            f"WHERE {names[0]} = $1{implied}{order}\nLIMIT 10;\n")
