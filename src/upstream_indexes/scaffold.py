"""`invoke new`: the next-numbered migration pair in the house style (templates/), with the
catalogue entry to add so that verify proves the new index serves the app."""

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolError
from .migrations import load
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


def create(directory: Path, index: str, table: str, columns: str, include: str | None) -> NewMigration:
    """Write NNNN.<index>.sql and its rollback (NNNN: one past the highest in `directory`)."""
    existing = load(directory)
    index, table = identifier("NAME", index), identifier("--table", table)
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
    for path, template in ((forward, "migration.sql"), (rollback, "migration.rollback.sql")):
        path.write_text((TEMPLATES_DIR / template).read_text().format(**values), encoding="utf-8")
    load(directory)  # the pair must pass the header grammar the runner enforces
    return NewMigration(forward, rollback, _catalogue_entry(index, table, keys, names))


def _catalogue_entry(index: str, table: str, keys: list[str], names: list[str]) -> str:
    query = f"{index.removesuffix('_cov')}_list"
    order = f"\nORDER BY {', '.join(keys[1:])}" if len(keys) > 1 else ""
    return (f"-- name: {query}\n-- expect: {index}\n-- TODO what the app does with it.\n"
            f"PREPARE {query}(bigint) AS\nSELECT {', '.join(names)}\nFROM {table}\n"
            f"WHERE {names[0]} = $1{order}\nLIMIT 10;\n")
