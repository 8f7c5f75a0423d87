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

import psycopg.conninfo

from . import settings
from .errors import ConnectionProblem, ToolError
from .records import Record
from .redaction import misread, shown_dsn

LIBPQ_ENV = ("PGHOST", "PGHOSTADDR", "PGSERVICE", "PGDATABASE")
EMBEDDED_DEMO = "embedded demo server"  # a Target's source: the embedded server's demo database
EMBEDDED_DEMO_SHOWN = "embedded demo server in .pgdata/"
APPLICATION_NAME = "upstream-indexes"
EMBEDDED_ENV = "UPSTREAM_INDEXES_EMBEDDED"
_SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


class Target(Record):
    """A database to connect to: libpq conninfo ('' = libpq environment) and where it came from."""

    conninfo: str | None
    source: str
    is_demo: bool = False

    @property
    def embedded(self) -> bool:
        return self.conninfo is None

    @property
    def embedded_demo(self) -> bool:
        """The embedded demo database, before it is started (no conninfo yet) and after."""
        return self.source == EMBEDDED_DEMO

    @property
    def shown(self) -> str:
        """The database, password-free: the conninfo with its secrets as ***, or the libpq variables in use;
        the embedded demo by that name, started or not (its conninfo: `invoke db.url`)."""
        if self.embedded_demo:
            return EMBEDDED_DEMO_SHOWN
        if not self.conninfo:
            return _describe_libpq_env()
        return shown_dsn(self.conninfo) or "a DSN not shown (its password could not be told apart)"

    def describe(self) -> str:
        """The database line every command starts with (and db.start / db.reset print), the same text as
        --json's database.name: the redacted database and where it came from."""
        if self.embedded_demo:
            return f"database: {self.shown} (demo data)"
        suffix = ", demo data" if self.is_demo else ""
        return f"database: {self.shown} (from {self.source}{suffix})"


def resolve_target(dsn: str | None, environ: Mapping[str, str] = os.environ, target: str | None = None) -> Target:
    """Pick the database by the documented order; the embedded one is left unstarted (embedded.choose_target
    starts it).
    The URL's variable is DATABASE_URL unless pyproject.toml's dsn-env names another. A named `target`
    (--target) is its own dsn-env's database and nothing else: no --dsn beside it, no fallback."""
    if target is not None:
        return _named_target(dsn, environ, target)
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
    return Target(None, EMBEDDED_DEMO, is_demo=True)


def _named_target(dsn: str | None, environ: Mapping[str, str], name: str) -> Target:
    try:
        dsn_env = settings.load().for_target(name)["dsn-env"]
    except ToolError as exc:
        raise ConnectionProblem(str(exc)) from None
    if dsn is not None:
        raise ConnectionProblem(f"--dsn and --target {name} together: give one")
    if not environ.get(dsn_env):
        raise ConnectionProblem(f"--target {name}: {dsn_env} is not set (its dsn-env); nothing else is tried")
    return Target(normalize_dsn(environ[dsn_env]), f"{dsn_env}, --target {name}")


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


DEFAULT_CONNECT_TIMEOUT = 10  # seconds; libpq's own default is to wait forever


# What every session of ours sets unless the conninfo (or libpq's environment) sets it: libpq keywords,
# so a DSN that names one wins. application_name as libpq's fallback: the DSN's, else PGAPPNAME, else
# ours. Keepalives and tcp_user_timeout (TCP only; libpq ignores them on a Unix socket): a server that
# vanishes without closing the connection (a host gone, a cut route) is noticed by the kernel within
# about PEER_GONE_SECONDS, whether the connection is idle (keepalives: 10 s, then a probe every 5 s, 2
# unanswered) or has sent data that is not acknowledged (tcp_user_timeout), not after the hours of the
# kernel's defaults.
PEER_GONE_SECONDS = 20
SESSION_DEFAULTS = {
    "fallback_application_name": APPLICATION_NAME,
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "2",
    "tcp_user_timeout": str(PEER_GONE_SECONDS * 1000),
}


def connect_kwargs(target: Target) -> dict:
    """Keyword arguments for psycopg.connect: the conninfo, each of SESSION_DEFAULTS it does not set
    itself, and a connect timeout unless it sets its own."""
    given = psycopg.conninfo.conninfo_to_dict(target.conninfo or "")
    kwargs = {"conninfo": target.conninfo or "", **{k: v for k, v in SESSION_DEFAULTS.items() if k not in given}}
    if "connect_timeout" not in given:
        kwargs["connect_timeout"] = connect_timeout(target)
    return kwargs


def connect_timeout(target: Target) -> int:
    """Seconds to wait for the server to answer: the conninfo's connect_timeout, else PGCONNECT_TIMEOUT,
    else DEFAULT_CONNECT_TIMEOUT; a value libpq would refuse is one error line, not a traceback."""
    given = psycopg.conninfo.conninfo_to_dict(target.conninfo or "").get("connect_timeout")
    value = str(given or os.environ.get("PGCONNECT_TIMEOUT") or DEFAULT_CONNECT_TIMEOUT).strip()
    if not value.lstrip("-").isdigit():
        where = "the DSN's connect_timeout" if given else "PGCONNECT_TIMEOUT"
        raise ConnectionProblem(f"{where} must be a whole number of seconds, not {value!r}")
    return int(value)


def server_address(target: Target) -> str:
    """The host and port libpq tries, as its messages name them: `server at "db1", port 5432`."""
    params = psycopg.conninfo.conninfo_to_dict(target.conninfo or "")
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or \
        os.environ.get("PGHOSTADDR") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    return f"server at \"{host}\", port {port}"


def _describe_libpq_env() -> str:
    parts = [f"{name}={os.environ[name]}" for name in ("PGSERVICE", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER")
             if os.environ.get(name)]
    return " ".join(parts) or "libpq defaults"
