"""The app query catalogue, verify/app_queries.sql: the upstream app's read
queries as prepared statements, each with the covering index that must serve it.

Format (a test enforces it; verify and the benchmarks both read it):
  -- name: <prepared statement name>
  -- expect: <covering index the plan must use as an Index Only Scan>
  -- <what the app does with it>
  PREPARE <name>(bigint) AS
  SELECT ... FROM <one table> ... ;      (ends with `;` at the end of a line)
Other `--` comments and blank lines may stand between entries. $1 is the customer id.

A migrations folder may hold an app_queries.sql of its own, in the same format: the queries that
prove the indexes it adds beyond migrations/ (examples/next-migrations/ has one); verify
--migrations checks both.
"""

import re
from pathlib import Path

from .errors import ToolError
from .paths import CATALOGUE
from .records import Record

_ENTRY = re.compile(
    r"^-- name: (?P<name>\S+)\n"
    r"-- expect: (?P<expect>\S+)\n"
    r"-- (?P<description>[^\n]+)\n"
    r"(?P<prepare>PREPARE (?P<prepared>\w+)\(bigint\) AS\n.*?;)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_TABLE = re.compile(r"\bFROM\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)


class CatalogueProblem(ToolError):
    """verify/app_queries.sql breaks its format."""


class AppQuery(Record):
    """One query the app runs, and the index that must answer it."""

    name: str  # the prepared statement's name
    expected_index: str
    table: str  # the one table it reads
    description: str
    prepare: str  # the PREPARE statement, `;` included

    @property
    def query(self) -> str:
        """The SELECT alone, with $1 for the customer id."""
        return self.prepare.split(" AS\n", 1)[1].rstrip(";").strip()


def read(path: Path = CATALOGUE) -> str:
    """The catalogue's text (the checkout's: it goes with its migrations), or one error line."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueProblem(f"cannot read the query catalogue {path}: {exc.strerror}") from None


def for_folder(migrations_dir: Path) -> list[Path]:
    """The catalogue files verify reads for a migrations folder: verify/app_queries.sql, then the
    folder's own app_queries.sql when it has one."""
    own = migrations_dir / CATALOGUE.name
    return [CATALOGUE] + ([own] if own.is_file() and own.resolve() != CATALOGUE.resolve() else [])


def load_all(paths: list[Path]) -> list[AppQuery]:
    """Every entry of each catalogue file in turn; a name defined twice is a CatalogueProblem."""
    queries = [q for path in paths for q in load(path)]
    names = [q.name for q in queries]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise CatalogueProblem(f"{', '.join(duplicates)} defined in more than one of "
                               f"{', '.join(str(p) for p in paths)}")
    return queries


def load(path: Path = CATALOGUE) -> list[AppQuery]:
    """Every entry of the catalogue in file order; CatalogueProblem names the first malformed one."""
    text = read(path)
    headers = len(re.findall(r"^-- name:", text, re.MULTILINE))
    queries = [_query(path.name, match) for match in _ENTRY.finditer(text)]
    if not queries or len(queries) != headers:
        raise CatalogueProblem(
            f"{path.name}: {headers} `-- name:` headers but {len(queries)} well-formed entries "
            "(-- name / -- expect / -- description, then PREPARE <name>(bigint) AS ...;)")
    names = [q.name for q in queries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CatalogueProblem(f"{path.name}: {', '.join(duplicates)} defined more than once")
    return queries


def _query(file_name: str, match: re.Match) -> AppQuery:
    name = match.group("name")
    if match.group("prepared") != name:
        raise CatalogueProblem(f"{file_name}: `-- name: {name}` heads PREPARE {match.group('prepared')}")
    tables = set(_TABLE.findall(match.group("prepare")))
    if len(tables) != 1:
        raise CatalogueProblem(f"{file_name}: {name} must read exactly one table, found {sorted(tables) or 'none'}")
    return AppQuery(name, match.group("expect"), tables.pop(), match.group("description").strip(),
                    match.group("prepare"))
