"""Settings a project keeps in pyproject.toml under [tool.upstream-indexes], in place of the
built-in defaults; a flag given on the command line overrides both.

The file is the pyproject.toml of the checkout invoke runs in (paths.ROOT, found from the working
directory), or the one UPSTREAM_INDEXES_SETTINGS names (a deployment repository's, say). Every key
is optional. KEYS below is the one list of the keys, their defaults and meanings: `invoke --help`,
docs/reference/settings.md and pyproject.toml's commented example are rendered from it (docs.py; a
test fails when a copy is stale).

An unknown key or a value of the wrong kind is one error line (exit 2).

Named targets: [tool.upstream-indexes.targets.<name>] tables hold the same keys, each for one
database (staging, production), and must name their own dsn-env; `--target <name>` picks one,
its keys over the section's (Settings.for_target).
"""

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Callable

from .errors import ToolError
from .paths import ROOT
from .records import Record

SECTION = "tool.upstream-indexes"
TARGETS = "targets"  # [tool.upstream-indexes.targets.<name>]
ENV_FILE = "UPSTREAM_INDEXES_SETTINGS"


class Key(Record):
    default: object  # the built-in default; None: leave it to the server (or to this checkout)
    valid: Callable[[object], object]  # does a value from the file qualify
    what: str  # what a value must be, for the error line
    flag: str | None  # the flag that overrides it
    meaning: str  # one line for the docs and pyproject.toml's example
    unset: str = ""  # where the default is None: what applies then
    example: object = None  # where the default is None: a value to show


_NUMBER = (int, float)
KEYS = {
    "dsn-env": Key("DATABASE_URL", lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z_]\w*", v),
                   "an environment variable's name", None, "the environment variable holding the database URL"),
    "max-wait": Key(60, lambda v: isinstance(v, _NUMBER) and not isinstance(v, bool) and v >= 0.1,
                    "a number >= 0.1", "--max-wait",
                    "seconds a build (before it has built its index) or a drop may wait for other sessions, "
                    "and a run for another migrate or rollback"),
    "retries": Key(3, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number >= 0",
                   "--retries", "further attempts after a build was cancelled for waiting too long"),
    "backoff": Key(5, lambda v: isinstance(v, _NUMBER) and not isinstance(v, bool) and v >= 0, "a number >= 0",
                   "--backoff", "seconds before the first retry, doubled before each next one"),
    "migrations": Key(None, lambda v: isinstance(v, str) and v.strip(), "a folder", "--migrations",
                      "folder of migration files, relative to the settings file",
                      unset="migrations/ of this checkout", example="migrations"),
    "maintenance-work-mem": Key(None, lambda v: isinstance(v, str) and is_size(v), "a size such as \"1GB\"",
                                "--maintenance-work-mem",
                                "maintenance_work_mem of the build's session only",
                                unset="the server's", example="1GB"),
    # The server's by default, as a bare CREATE INDEX CONCURRENTLY gets it: PostgreSQL's 2 builds faster
    # than 0 and writes fared no worse, except on a CPU-saturated machine, where 0 had fewer slow writes
    # (docs/performance.md, "Parallel maintenance workers"); a DBA's 0 or 4 on the server or role stands.
    "max-parallel-maintenance-workers": Key(None, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                                            "a whole number >= 0", "--parallel-workers",
                                            "max_parallel_maintenance_workers of the build's session only",
                                            unset="the server's", example=0),
    # false: with no database configured, exit 2 instead of using the embedded demo (config.resolve_target)
    "embedded": Key(True, lambda v: isinstance(v, bool), "true or false", None,
                    "false: no database configured is an error, never the embedded demo (UPSTREAM_INDEXES_EMBEDDED overrides)"),
}
# Settings for the session that builds each index: server parameter names.
BUILD_PARAMETERS = {"maintenance-work-mem": "maintenance_work_mem",
                    "max-parallel-maintenance-workers": "max_parallel_maintenance_workers"}


def is_size(value: str) -> bool:
    """A memory size as the server takes it: digits and a unit (kB, MB, GB, TB)."""
    return bool(re.fullmatch(r"\d+\s*[kMGT]?B", value))


@dataclass(frozen=True)
class Settings:
    path: Path
    values: dict  # key -> value, the file's where it sets one, else the built-in default
    from_file: frozenset  # the keys the file sets
    targets: dict = field(default_factory=dict)  # name -> its table's keys and values (checked)
    target: str | None = None  # the target these values are for (for_target)

    def __getitem__(self, key: str):
        return self.values[key]

    def shown(self, key: str) -> str:
        """The effective default as `invoke --help` shows it: its value and where it comes from."""
        value = self.values[key]
        where = f", from {self.path.name} [{SECTION}]" if key in self.from_file else ""
        if value is None:
            return f"default: {KEYS[key].unset}"
        return f"default {value:g}{where}" if isinstance(value, _NUMBER) else f"default {value}{where}"

    def build_settings(self, given: dict | None = None) -> tuple[tuple[str, str], ...]:
        """(server parameter, value) for each build setting: `given` (the flags; key -> value or None),
        else the file's, else the default; none where all three leave it to the server."""
        given = given or {}
        values = {key: self.values[key] if given.get(key) is None else given[key] for key in BUILD_PARAMETERS}
        return tuple((parameter, str(values[key])) for key, parameter in BUILD_PARAMETERS.items()
                     if values[key] is not None)

    def migrations_dir(self) -> Path | None:
        value = self.values["migrations"]
        return None if value is None else (self.path.parent / value)

    def for_target(self, name: str) -> "Settings":
        """The settings of target `name`: its table's keys over the section's; ToolError for an unknown name."""
        if name not in self.targets:
            known = ", ".join(self.targets) or f"none: add [{SECTION}.{TARGETS}.{name}] to {self.path.name}"
            raise ToolError(f"--target {name}: no such target in {self.path} (targets: {known})")
        table = self.targets[name]
        return replace(self, values={**self.values, **table}, from_file=self.from_file | frozenset(table),
                       target=name)


@cache
def load() -> Settings:
    path = Path(os.environ.get(ENV_FILE) or ROOT / "pyproject.toml")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ToolError(f"settings: cannot read {path}: {exc}") from None
    section = dict(document.get("tool", {}).get("upstream-indexes", {}))
    targets = section.pop(TARGETS, {})
    problems = _problems(path, SECTION, section)
    problems += _target_problems(path, targets)
    if problems:
        raise ToolError("\n".join(problems))
    values = {key: section.get(key, spec.default) for key, spec in KEYS.items()}
    return Settings(path, values, frozenset(section), targets)


def _problems(path: Path, where: str, table: dict) -> list[str]:
    problems = [f"settings: {path} [{where}]: unknown key {key!r} (known: {', '.join(KEYS)})"
                for key in table if key not in KEYS]
    return problems + [f"settings: {path} [{where}]: {key} must be {spec.what}, not {table[key]!r}"
                       for key, spec in KEYS.items() if key in table and not spec.valid(table[key])]


# --- named targets -------------------------------------------------------------------------------


def _target_problems(path: Path, targets) -> list[str]:
    if not isinstance(targets, dict) or not all(isinstance(table, dict) for table in targets.values()):
        return [f"settings: {path} [{SECTION}.{TARGETS}]: each target must be a table, "
                f"[{SECTION}.{TARGETS}.<name>]"]
    problems = []
    for name, table in targets.items():
        where = f"{SECTION}.{TARGETS}.{name}"
        problems += _problems(path, where, table)
        if "dsn-env" not in table:
            problems.append(f"settings: {path} [{where}]: dsn-env is missing: each target names the "
                            "environment variable holding its database URL")
    return problems

