"""The migration files: read them, check their header, and know which index each builds.

Header grammar (enforced here and by tests/test_migration_files.py):
  line 1      `-- <description>`: what the index is for, one line
  line 2      `-- transactional: false` (CREATE/DROP INDEX CONCURRENTLY cannot
              run in a transaction; yoyo honours the directive only in the
              leading comment block, and crashes on values other than
              true/false)
  then        `--` comment lines for the DBA, then the SQL
Forward file: exactly one `CREATE INDEX CONCURRENTLY <name> ON <table> ...;`
whose <name> is the file's name after the number. Rollback file (same name,
`.rollback.sql`): the same header and `DROP INDEX CONCURRENTLY IF EXISTS <name>;`.
"""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MigrationFileProblem
from .paths import MIGRATIONS_DIR

_FILE_NAME = re.compile(r"^(\d{4})\.([a-z_][a-z0-9_]*)\.sql$")
_DIRECTIVE = re.compile(r"^\s*--\s*(transactional|depends)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_CREATE = re.compile(
    r"CREATE\s+INDEX\s+CONCURRENTLY\s+(?P<name>\w+)\s+ON\s+(?P<table>\w+)\s+(?P<rest>USING\s.*?);",
    re.IGNORECASE | re.DOTALL,
)
_IF_NOT_EXISTS = re.compile(r"CREATE\s+INDEX\s+(CONCURRENTLY\s+)?IF\s+NOT\s+EXISTS", re.IGNORECASE)
_DROP = re.compile(r"DROP\s+INDEX\s+CONCURRENTLY\s+IF\s+EXISTS\s+(?P<name>\w+)\s*;", re.IGNORECASE)


@dataclass(frozen=True)
class IndexMigration:
    """One migration file pair and the index it builds."""

    id: str  # yoyo's id: the file name without .sql
    path: Path
    rollback_path: Path
    index: str
    table: str
    definition: str  # canonical form, comparable with the catalog's (see canonical())
    description: str
    checksum: str  # sha256 of both files: detects an applied migration edited afterwards
    # The files' text as read (once per run): the checksum's bytes, and what a build runs (ledger.py).
    forward_sql: str = field(default="", repr=False)
    rollback_sql: str = field(default="", repr=False)

    @property
    def columns(self) -> list[str]:
        """Every column the index names, key columns and INCLUDE alike."""
        lists = re.findall(r"\(([^()]*)\)", self.definition)
        return [item.split()[0] for group in lists for item in group.split(",")]

    @property
    def plain_columns(self) -> bool:
        """No expression and no WHERE: PostgreSQL 14+ lets other concurrent builds skip this one's
        snapshots (and this one skip theirs), so it can run beside them (migrate --jobs)."""
        return bool(_KEY_LIST.search(self.definition)) and " WHERE " not in self.definition.upper()


DESC, NULLS_FIRST = 1, 2  # a key column's direction bits, as pg_index.indoption stores them
_KEY_LIST = re.compile(r"USING \w+ \((?P<keys>[^()]*)\)")
_INCLUDE_LIST = re.compile(r"INCLUDE \((?P<columns>[^()]*)\)")


def key_options(definition: str) -> tuple[list[str], list[int]]:
    """The key columns of an index definition and their direction bits (DESC, NULLS_FIRST)."""
    names, options = [], []
    for item in _KEY_LIST.search(definition).group("keys").split(","):
        words = item.split()
        rest = " ".join(words[1:]).upper()
        descending = "DESC" in rest
        nulls_first = "NULLS FIRST" in rest or (descending and "NULLS LAST" not in rest)
        names.append(words[0])
        options.append((DESC if descending else 0) | (NULLS_FIRST if nulls_first else 0))
    return names, options


def include_columns(definition: str) -> list[str]:
    """The INCLUDE columns of an index definition (none: [])."""
    found = _INCLUDE_LIST.search(definition)
    return [item.strip() for item in found.group("columns").split(",")] if found else []


def column_list(definition: str) -> str:
    """"(a, b DESC) INCLUDE (c)" out of a whole index definition."""
    include = include_columns(definition)
    keys = f"({_KEY_LIST.search(definition).group('keys')})"
    return keys + (f" INCLUDE ({', '.join(include)})" if include else "")


def canonical(indexdef: str) -> str:
    """One spelling for an index definition, from a migration file or pg_get_indexdef().

    Drops what does not change the index (CONCURRENTLY, the schema qualifier
    pg_get_indexdef adds, the ONLY it shows for every partitioned table's index,
    the trailing semicolon, whitespace).
    """
    text = re.sub(r"\s+", " ", indexdef).strip().rstrip(";").strip()
    text = re.sub(r"\bCONCURRENTLY\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\bON (ONLY )?(\w+\.)?", "ON ", text)
    return text


def load(directory: Path = MIGRATIONS_DIR) -> list[IndexMigration]:
    """Every forward migration in order, checked; MigrationFileProblem names the first bad file."""
    checked = _check_each(directory)
    for problem in (c for c in checked if isinstance(c, MigrationFileProblem)):
        raise problem
    return checked


def problems(directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Every bad file in `directory`, one line each (lint lists them all; load stops at the first)."""
    return [str(c) for c in _check_each(directory) if isinstance(c, MigrationFileProblem)]


def _check_each(directory: Path) -> list[IndexMigration | MigrationFileProblem]:
    """Each file checked on its own, in order: a forward migration, or what is wrong with a file."""
    checked: list[IndexMigration | MigrationFileProblem] = []
    for path in sorted(directory.glob("*.sql")):
        try:
            if not path.name.endswith(".rollback.sql"):
                checked.append(_load_one(path))
            elif not path.with_name(path.name.removesuffix(".rollback.sql") + ".sql").exists():
                raise MigrationFileProblem(f"{path.name}: a rollback file without its forward migration")
        except MigrationFileProblem as problem:
            checked.append(problem)
    if not checked:
        checked.append(MigrationFileProblem(f"no migrations found in {directory}"))
    return checked


def up_to(files: list[IndexMigration], reference: str, flag: str = "--to") -> list[IndexMigration]:
    """The files up to and including the one `reference` names: its id, or its number (`0002`)."""
    matches = [i for i, m in enumerate(files) if reference in (m.id, m.id.split(".")[0])]
    if len(matches) != 1:
        raise MigrationFileProblem(f"{flag} {reference}: no such migration; the migrations are "
                                   + ", ".join(m.id for m in files))
    return files[:matches[0] + 1]


def _load_one(path: Path) -> IndexMigration:
    match = _FILE_NAME.match(path.name)
    if not match:
        raise MigrationFileProblem(f"{path.name}: name must be NNNN.<index_name>.sql")
    expected_index = match.group(2)
    rollback_path = path.with_name(path.name[: -len(".sql")] + ".rollback.sql")
    if not rollback_path.exists():
        raise MigrationFileProblem(f"{path.name}: its rollback file {rollback_path.name} is missing")
    forward, rollback = _text(path), _text(rollback_path)
    description = check_header(path.name, forward)
    check_header(rollback_path.name, rollback)

    if _IF_NOT_EXISTS.search(forward):
        raise MigrationFileProblem(f"{path.name}: CREATE INDEX ... IF NOT EXISTS would silently skip the INVALID "
                                   "index a failed build leaves (and yoyo would record it as applied); remove it")
    creates = list(_CREATE.finditer(forward))
    if len(creates) != 1:
        raise MigrationFileProblem(f"{path.name}: must hold exactly one CREATE INDEX CONCURRENTLY ... ON <table> USING ...;")
    create = creates[0]
    if create.group("name") != expected_index:
        raise MigrationFileProblem(
            f"{path.name}: builds {create.group('name')}, but the file name says {expected_index}")
    drop = _DROP.search(rollback)
    if not drop or drop.group("name") != expected_index:
        raise MigrationFileProblem(
            f"{rollback_path.name}: must hold DROP INDEX CONCURRENTLY IF EXISTS {expected_index};")
    return IndexMigration(
        id=path.name[: -len(".sql")],
        path=path,
        rollback_path=rollback_path,
        index=expected_index,
        table=create.group("table"),
        definition=canonical(create.group(0)),
        description=description,
        checksum=hashlib.sha256(forward.encode() + b"\0" + rollback.encode()).hexdigest(),
        forward_sql=forward,
        rollback_sql=rollback,
    )


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MigrationFileProblem(f"{path.name}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise MigrationFileProblem(f"{path.name}: cannot read it: {exc.strerror}") from None


def check_header(name: str, text: str) -> str:
    """Enforce the header grammar; return the description line."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("-- ") or _DIRECTIVE.match(lines[0]):
        raise MigrationFileProblem(f"{name}: line 1 must be a `-- <description>` comment")
    in_header = True
    saw_transactional_false = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("/*") and in_header:
            raise MigrationFileProblem(
                f"{name}: line {number}: a /* */ comment in the header hides the directives from yoyo; use --")
        if in_header and stripped and not stripped.startswith("--"):
            in_header = False
        directive = _DIRECTIVE.match(line)
        if directive and not in_header:
            raise MigrationFileProblem(
                f"{name}: line {number}: `{stripped}` after the first SQL statement is ignored by yoyo; "
                "move it into the leading comment block")
        if directive and directive.group(1).lower() == "transactional":
            value = directive.group(2)
            if value.lower() not in ("true", "false"):
                raise MigrationFileProblem(
                    f"{name}: line {number}: `-- transactional: {value}` must be `true` or `false` "
                    "(yoyo crashes on anything else)")
            saw_transactional_false = value.lower() == "false"
    if not saw_transactional_false:
        raise MigrationFileProblem(
            f"{name}: the leading comment block must say `-- transactional: false` "
            "(CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction)")
    return lines[0][3:].strip()
