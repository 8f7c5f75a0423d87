"""`invoke new`: the next-numbered migration pair in the house style (templates/), with the
catalogue entry to add so that verify proves the new index serves the app. With --dsn the pair is
checked against a database first (table, columns, the name, the indexes it would make redundant)."""

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import catalog, django_state, overlaps
from .config import Target
from .db import connect, read_only_transaction, translate_errors
from .errors import PreflightProblem, ToolError
from .migrations import IndexMigration, load
from .overlaps import Overlap
from .paths import TEMPLATES_DIR

MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_KEY_COLUMN = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*)(?P<order>\s+(?:asc|desc))?(?P<nulls>\s+nulls\s+(?:first|last))?$",
                         re.IGNORECASE)


@dataclass(frozen=True)
class NewMigration:
    forward: Path
    rollback: Path
    catalogue_entry: str  # what to add to verify/app_queries.sql
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


def create(directory: Path, index: str, table: str, columns: str, include: str | None,
           long_name: bool = False, target: Target | None = None) -> NewMigration:
    """Write NNNN.<index>.sql and its rollback (NNNN: one past the highest in `directory`).
    A name longer than Django's models.Index allows only with `long_name` (django_state.py). With a
    `target`, the pair is first checked against that database (check_against): nothing is written
    when it could not be built there."""
    existing = load(directory)
    index, table = identifier("NAME", index), identifier("--table", table)
    if len(index) > django_state.MAX_NAME and not long_name:
        raise ToolError(f"NAME: {index} has {len(index)} characters; Django's models.Index takes at most "
                        f"{django_state.MAX_NAME} (models.E034), so `invoke django-state` could not hand it to "
                        "Django: choose a shorter name, or pass --long-name to keep it out of Django's state")
    keys = key_columns(columns)
    included = [identifier("--include", name.strip()) for name in include.split(",")] if include else []
    names = [key.split()[0] for key in keys] + included
    if len(set(names)) != len(names):
        raise ToolError(f"--columns/--include: a column named twice in {', '.join(names)}")
    if index in {m.index for m in existing}:
        raise ToolError(f"NAME: {index} is already built by {next(m.id for m in existing if m.index == index)}")
    number = max(int(m.id.split(".", 1)[0]) for m in existing) + 1
    values = {"index": index, "table": table, "columns": ", ".join(keys),
              "include_clause": f" INCLUDE ({', '.join(included)})" if included else ""}
    forward = directory / f"{number:04d}.{index}.sql"
    rollback = forward.with_name(f"{number:04d}.{index}.rollback.sql")
    texts = {forward: (TEMPLATES_DIR / "migration.sql").read_text().format(**values),
             rollback: (TEMPLATES_DIR / "migration.rollback.sql").read_text().format(**values)}
    with tempfile.TemporaryDirectory() as scratch:
        for path, text in texts.items():
            (Path(scratch) / path.name).write_text(text, encoding="utf-8")
        [draft] = load(Path(scratch))  # the pair must pass the header grammar the runner enforces
    overlapping = check_against(target, draft) if target is not None else []
    for path, text in texts.items():
        path.write_text(text, encoding="utf-8")
    return NewMigration(forward, rollback, _catalogue_entry(index, table, keys, names), overlapping)


@translate_errors
def check_against(target: Target, draft: IndexMigration) -> list[Overlap]:
    """Read-only, before anything is written: the table and every column exist, and the name is free (or
    already holds this very index), as migrate's pre-flight will demand; PreflightProblem says what is
    not. Returns the existing indexes the new one would make redundant (the redundancy report's logic)."""
    with connect(target) as conn, read_only_transaction(conn):
        role = conn.execute("SELECT current_user").fetchone()[0]
        problems = catalog.table_problems(conn, [draft], role, will_index=False)
        if not problems:
            state = catalog.index_state(conn, draft)
            if state.state not in (catalog.State.ABSENT, catalog.State.VALID):
                problems.append(f"{draft.index} already exists there, {state.state.value}: "
                                f"`{state.definition or 'not this index'}`; choose another name")
        if problems:
            raise PreflightProblem("\n".join(f"{problem}; nothing was written" for problem in problems))
        return overlaps.find(conn, [draft])


def _catalogue_entry(index: str, table: str, keys: list[str], names: list[str]) -> str:
    query = f"{index.removesuffix('_cov')}_list"
    order = f"\nORDER BY {', '.join(keys[1:])}" if len(keys) > 1 else ""
    return (f"-- name: {query}\n-- expect: {index}\n-- TODO what the app does with it.\n"
            f"PREPARE {query}(bigint) AS\nSELECT {', '.join(names)}\nFROM {table}\n"
            f"WHERE {names[0]} = $1{order}\nLIMIT 10;\n")
