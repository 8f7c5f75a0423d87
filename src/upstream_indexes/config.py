"""Which database to use (the target), and how to connect to it.

Order: the --dsn flag, then DATABASE_URL, then libpq's own environment
(PGHOST / PGSERVICE / PGDATABASE), else the embedded demo server (started by
embedded.choose_target), unless the project forbids that fallback (`embedded = false`
in pyproject.toml, or UPSTREAM_INDEXES_EMBEDDED=0): then no database is an error.
Naming it without its password: redaction.py.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg.conninfo

from . import settings
from .errors import ConnectionProblem
from .redaction import misread, shown_dsn

LIBPQ_ENV = ("PGHOST", "PGHOSTADDR", "PGSERVICE", "PGDATABASE")
APPLICATION_NAME = "upstream-indexes"
EMBEDDED_ENV = "UPSTREAM_INDEXES_EMBEDDED"
_SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class Target:
    """A database to connect to: libpq conninfo ('' = libpq environment) and where it came from."""

    conninfo: str | None
    source: str
    is_demo: bool = False

    @property
    def embedded(self) -> bool:
        return self.conninfo is None

    @property
    def shown(self) -> str:
        """The database, password-free: the conninfo with its secrets as ***, or the libpq variables in use."""
        if self.embedded:
            return "embedded demo server in .pgdata/"
        if not self.conninfo:
            return _describe_libpq_env()
        return shown_dsn(self.conninfo) or "a DSN not shown (its password could not be told apart)"

    def describe(self) -> str:
        """One line for the operator: the redacted database and where it came from."""
        if self.embedded:
            return f"database: {self.shown} (demo data)"
        suffix = ", demo data" if self.is_demo else ""
        return f"database: {self.shown} (from {self.source}{suffix})"


def resolve_target(dsn: str | None, environ: Mapping[str, str] = os.environ) -> Target:
    """Pick the database by the documented order; the embedded one is left unstarted (embedded.choose_target
    starts it).
    The URL's variable is DATABASE_URL unless pyproject.toml's dsn-env names another."""
    dsn_env = settings.load()["dsn-env"]
    if dsn is not None:
        return Target(normalize_dsn(dsn, "--dsn"), "--dsn")
    if environ.get(dsn_env):
        return Target(normalize_dsn(environ[dsn_env], dsn_env), dsn_env)
    if any(environ.get(name) for name in LIBPQ_ENV):
        return Target("", "libpq environment")
    forbidden_by = embedded_forbidden_by(environ)
    if forbidden_by:
        raise ConnectionProblem(f"no database configured, and the embedded demo is off ({forbidden_by}): "
                                + how_to_configure())
    return Target(None, "embedded demo server", is_demo=True)


def embedded_forbidden_by(environ: Mapping[str, str] = os.environ) -> str | None:
    """The switch that forbids the embedded demo to a run without a configured database, or None:
    UPSTREAM_INDEXES_EMBEDDED when set (0 or 1), else pyproject.toml's `embedded` (default true)."""
    value = environ.get(EMBEDDED_ENV, "").strip()
    if value:
        if value.lower() not in _SWITCH:
            raise ConnectionProblem(f"{EMBEDDED_ENV} must be 0 or 1 (or false, true, no, yes, off, on), "
                                    f"not {value!r}")
        return None if _SWITCH[value.lower()] else f"{EMBEDDED_ENV}={value}"
    configured = settings.load()
    return None if configured["embedded"] else f"embedded = false in {configured.path}"


def how_to_configure() -> str:
    """The ways to name a database, for the line that says none is configured."""
    return (f"give --dsn URL, or set {settings.load()['dsn-env']} (postgresql://user@host:5432/db), or libpq's "
            "PGHOST / PGSERVICE / PGDATABASE")


def normalize_dsn(dsn: str, source: str = "--dsn") -> str:
    """Accept what Django, yoyo and libpq users write; fail early on what libpq cannot parse, saying what
    is wrong without quoting any of it (`source`: where the DSN came from)."""
    # yoyo spells psycopg 3 as postgresql+psycopg://, Django/Heroku use postgres://.
    dsn = re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", dsn.strip())
    if not dsn:
        raise ConnectionProblem("--dsn is empty (an unset variable?); leave the flag out to use DATABASE_URL, "
                                "libpq's environment or the embedded demo")
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise _malformed(source, _parse_problem(str(exc))) from None
    # (a bad port too: psycopg resolves hosts itself and would report it as a host it cannot resolve)
    if problem := misread(dsn, params):
        raise _malformed(source, problem)
    return dsn


def _malformed(source: str, problem: str) -> ConnectionProblem:
    return ConnectionProblem(f"malformed DSN in {source} (not shown: it may hold a password): {problem}")


# libpq's parse errors quote the part they could not read, which may be the password: each is told by its
# fixed text (fe-connect.c) instead.
_PARSE_PROBLEMS = {
    "missing \"=\" after": "a word without '=' (separate key=value pairs by spaces; quote a value that holds "
                            "spaces in single quotes)",
    "unterminated quoted string": "a quoted value without its closing quote",
    "invalid connection option": "an option libpq does not know",
    "invalid URI query parameter": "an option libpq does not know in the URL's query",
    "missing key/value separator": "a parameter without '=' in the URL's query",
    "extra key/value separator": "a parameter with two '=' in the URL's query",
    "invalid percent-encoded token": "a '%' not followed by two hex digits (write a literal '%' as %25)",
    "forbidden value %00": "%00 in a percent-encoded value",
    "unexpected spaces found": "a space in the URL (write it as %20)",
    "end of string reached when looking for matching": "an IPv6 host without its closing ']'",
    "IPv6 host address may not be empty": "an empty IPv6 host '[]'",
    "unexpected character": "an unexpected character after an IPv6 host '[...]'",
}


def _parse_problem(libpq_message: str) -> str:
    return next((problem for start, problem in _PARSE_PROBLEMS.items() if libpq_message.startswith(start)),
                "libpq cannot parse it")


def connect_kwargs(target: Target) -> dict:
    """Keyword arguments for psycopg.connect: the conninfo plus our identity."""
    return {
        "conninfo": target.conninfo or "",
        "application_name": APPLICATION_NAME,
        "connect_timeout": int(os.environ.get("PGCONNECT_TIMEOUT", "10")),
    }


def _describe_libpq_env() -> str:
    parts = [f"{name}={os.environ[name]}" for name in ("PGSERVICE", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER")
             if os.environ.get(name)]
    return " ".join(parts) or "libpq defaults"
