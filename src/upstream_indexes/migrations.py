"""The migration files: read them, check their grammar, and know the kind of change each makes.

Header grammar (enforced here and by tests/test_migration_files.py):
  line 1      `-- <description>`: what the change is for, one line
  line 2      `-- transactional: false` (CREATE/DROP INDEX CONCURRENTLY cannot
              run in a transaction, and the runner bounds each ALTER TABLE's
              lock wait on its own; yoyo honours the directive only in the
              leading comment block, and crashes on values other than
              true/false)
  then        `--` comment lines for the DBA, then the SQL

A file holds exactly the statements of one kind (grammar.py parses each statement;
migration_kinds.KINDS says which sequences make a kind), with SET statement_timeout /
lock_timeout between them, and nothing else: a DROP TABLE, an UPDATE or a second index is
refused, before any connection. <name> is the file's name after its number: the index or
constraint the migration makes. Its rollback file (same name, `.rollback.sql`) has the same
header and the rollback statements of its kind.
"""

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GrammarError, MigrationFileProblem
from .grammar import parse
from .migration_kinds import KINDS, Kind, check_consistent, kind_of
from .paths import CATALOGUE, MIGRATIONS_DIR
from .statement import ACTIONS, ConstraintDefinition, IndexDefinition, Statement, Verb

_FILE_NAME = re.compile(r"^(\d{4})\.([a-z_][a-z0-9_]*)\.sql$")
_DIRECTIVE = re.compile(r"^\s*--\s*(transactional|depends)\s*:\s*(.*?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class IndexMigration:
    """One migration file pair and the index or constraint it makes."""

    id: str  # yoyo's id: the file name without .sql
    path: Path
    rollback_path: Path
    index: str  # the name of the index or constraint it makes (the file's name after its number)
    table: str
    definition: str  # one spelling of it, for messages (statement.IndexDefinition.sql / ConstraintDefinition.sql)
    description: str
    checksum: str  # sha256 of both files: detects an applied migration edited afterwards
    # The files' text as read (once per run): the checksum's bytes, and what a build runs (ledger.py).
    forward_sql: str = field(default="", repr=False)
    rollback_sql: str = field(default="", repr=False)
    kind: Kind = Kind.INDEX
    # The index it builds (an index), or the one its rollback restores (a promotion).
    index_definition: IndexDefinition | None = field(default=None, repr=False)
    constraint: ConstraintDefinition | None = field(default=None, repr=False)  # a constraint's kinds
    statements: tuple[Statement, ...] = field(default=(), repr=False)  # the forward file's, recognised
    rollback_statements: tuple[Statement, ...] = field(default=(), repr=False)

    @property
    def columns(self) -> list[str]:
        """Every column the forward file names outside expressions (pre-flight checks they exist)."""
        return list(dict.fromkeys(c for s in self.statements for c in s.columns))

    @property
    def plain_columns(self) -> bool:
        """An index of columns only (no expression, no WHERE): PostgreSQL 14+ lets other concurrent builds
        skip this one's snapshots (and this one skip theirs), so it can run beside them (migrate --jobs)."""
        return self.kind == Kind.INDEX and self.index_definition.plain

    @property
    def twin(self) -> str | None:
        """A promotion's twin: the unique index its rollback builds to take the constraint's index's place."""
        return next((s.name for s in self.rollback_statements if s.verb == Verb.CREATE_INDEX), None) \
            if self.kind == Kind.PROMOTION else None

    @property
    def expressions(self) -> list[str]:
        """Every expression it holds (index keys, a WHERE, a CHECK): the server checks them in pre-flight."""
        found = []
        if self.kind == Kind.INDEX:
            found += [k.expression for k in self.index_definition.keys if k.expression]
            found += [self.index_definition.predicate] if self.index_definition.predicate else []
        if self.constraint is not None and self.constraint.expression:
            found.append(self.constraint.expression)
        return found


def described(m: IndexMigration) -> str:
    """`the index x`, `the CHECK constraint x`, `the foreign key x`, `the UNIQUE constraint x`."""
    if m.kind == Kind.INDEX:
        return f"the {'unique ' if m.index_definition.unique else ''}index {m.index}"
    if m.kind == Kind.FOREIGN_KEY:
        return f"the foreign key {m.index}"
    return f"the {m.constraint.type.upper()} constraint {m.index}"


def expected_entry(m: IndexMigration) -> dict:
    """What verify/definitions.sql compares with the catalog (expected.sql lists one per migration):
    an index's parts, or a constraint's."""
    if m.kind.makes_index:
        d = m.index_definition
        return {"index_name": m.index, "table_name": m.table, "definition": d.tail(), "unique": d.unique,
                "method": d.method, "keys": [{"column": k.column, "expression": k.expression, "collation": k.collation,
                                              "opclass": k.opclass, "option": k.option} for k in d.keys],
                "include": list(d.include), "nulls_not_distinct": d.nulls_not_distinct, "predicate": d.predicate}
    c = m.constraint
    return {"constraint_name": m.index, "table_name": m.table, "definition": c.sql(), "type": c.type,
            "expression": c.expression, "columns": list(c.columns), "references": c.references,
            "referenced_columns": list(c.referenced_columns), "match_full": c.match_full,
            "on_delete": c.on_delete, "on_delete_code": ACTIONS[c.on_delete], "on_update": c.on_update,
            "on_update_code": ACTIONS[c.on_update], "deferrable": c.deferrable,
            "initially_deferred": c.initially_deferred, "index_name": c.index}


def canonical(indexdef: str) -> str:
    """One spelling for a plain index definition from pg_get_indexdef() (Citus shards, partitions).

    Drops what does not change the index (CONCURRENTLY, the schema qualifier
    pg_get_indexdef adds, the ONLY it shows for every partitioned table's index,
    the trailing semicolon, whitespace).
    """
    text = re.sub(r"\s+", " ", indexdef).strip().rstrip(";").strip()
    text = re.sub(r"\bCONCURRENTLY\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\bON (ONLY )?(\w+\.)?", "ON ", text)
    return text


def column_list(definition: str) -> str:
    """"(a, b DESC) INCLUDE (c)" out of a plain index's whole definition (pg_get_indexdef)."""
    keys = re.search(r"USING \w+ (\([^()]*\))", definition).group(1)
    include = re.search(r"INCLUDE (\([^()]*\))", definition)
    return keys + (f" INCLUDE {include.group(1)}" if include else "")


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
        if path.name == CATALOGUE.name:
            continue  # the folder's own query catalogue (app_queries.py), not a migration
        try:
            if not path.name.endswith(".rollback.sql"):
                checked.append(_load_one(path))
            elif not path.with_name(path.name.removesuffix(".rollback.sql") + ".sql").exists():
                raise MigrationFileProblem(f"{path.name}: a rollback file without its forward migration")
        except MigrationFileProblem as problem:
            checked.append(problem)
    if not checked:
        checked.append(MigrationFileProblem(f"no migrations found in {directory}"))
    return [_promotion_problem(c, checked[:i]) or c for i, c in enumerate(checked)]


def _promotion_problem(m, earlier: list) -> MigrationFileProblem | None:
    """A promotion of an index an earlier migration builds: that index must be unique, and the rollback's
    twin must be that same index (it takes its place)."""
    if not isinstance(m, IndexMigration) or m.kind != Kind.PROMOTION:
        return None
    built = next((e for e in reversed(earlier) if isinstance(e, IndexMigration) and e.kind == Kind.INDEX
                  and e.index == m.index), None)
    if built is None:
        return None
    if not built.index_definition.unique:
        return MigrationFileProblem(f"{m.path.name}: {built.id} builds {m.index} without UNIQUE; a UNIQUE or PRIMARY "
                                    "KEY constraint needs a unique index")
    if built.index_definition != m.index_definition:
        return MigrationFileProblem(f"{m.rollback_path.name}: its twin must be the index {built.id} builds, "
                                    f"`{built.definition}`, found `{m.index_definition.sql(m.index)}`")
    return None


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
        raise MigrationFileProblem(f"{path.name}: name must be NNNN.<index_or_constraint_name>.sql")
    name = match.group(2)
    rollback_path = path.with_name(path.name[: -len(".sql")] + ".rollback.sql")
    if not rollback_path.exists():
        raise MigrationFileProblem(f"{path.name}: its rollback file {rollback_path.name} is missing")
    forward, rollback = _text(path), _text(rollback_path)
    description = check_header(path.name, forward)
    check_header(rollback_path.name, rollback)
    statements, rollback_statements = _statements(path.name, forward), _statements(rollback_path.name, rollback)
    spec = kind_of(path.name, statements, KINDS, "forward")
    kind_of(rollback_path.name, rollback_statements, [spec], "rollback")
    made = [s for s in statements if s.verb != Verb.SET_TIMEOUT][0]
    if made.name != name:
        raise MigrationFileProblem(f"{path.name}: {'builds' if spec.kind.makes_index else 'adds'} {made.name}, but "
                                   f"the file name says {name}")
    check_consistent(path.name, rollback_path.name, spec.kind, statements, rollback_statements)
    restored = next((s.index for s in rollback_statements if s.verb == Verb.CREATE_INDEX), None)
    return IndexMigration(
        id=path.name[: -len(".sql")],
        path=path,
        rollback_path=rollback_path,
        index=name,
        table=made.table,
        definition=made.index.sql(name) if made.index else made.constraint.sql(),
        description=description,
        checksum=hashlib.sha256(forward.encode() + b"\0" + rollback.encode()).hexdigest(),
        forward_sql=forward,
        rollback_sql=rollback,
        kind=spec.kind,
        index_definition=made.index or restored,
        constraint=made.constraint,
        statements=statements,
        rollback_statements=rollback_statements,
    )


_COMMENT_OR_BLANK = re.compile(r"^(\s*|\s*--.*)$")


def split(text: str) -> list[str]:
    """A migration file's statements as yoyo's reader (read_sql_migration) splits a file: sqlparse's
    statements, the leading comment block (yoyo's directives) removed, blank ones dropped
    (tests/test_ledger.py compares it with yoyo's on every file)."""
    import sqlparse

    statements = sqlparse.split(text)
    if statements:
        ending = re.search(r"\n|\r\n|\r", statements[0] + "\n").group(0)
        lines = statements[0].split(ending)
        leading = next((i for i, line in enumerate(lines) if not _COMMENT_OR_BLANK.match(line)), len(lines))
        statements[0] = ending.join(lines[leading:])
    return [s for s in statements if s.strip()]


@functools.lru_cache(maxsize=256)
def _statements(name: str, text: str) -> tuple[Statement, ...]:
    """Each statement of the file as yoyo splits it, recognised (comment-only pieces left out). Cached by
    the file's name and text: a command reads its files twice (tasks.py checks them before connecting, the
    command loads them again) and sqlparse's lexer takes about 4 ms per migration."""
    found = []
    for number, sql in enumerate(split(text), start=1):
        try:
            statement = parse(sql)
        except GrammarError as problem:
            raise MigrationFileProblem(f"{name}: statement {number}: {problem}") from None
        if statement is not None:
            found.append(statement)
    return tuple(found)


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
            "(CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction, and the runner runs each "
            "statement on its own)")
    return lines[0][3:].strip()
