"""The embedded demo server, the database when none is configured: PGPORT alone does not move it,
its start and each demo load step are announced as they begin, the first line names it before it
starts, and `invoke db.url` prints what `invoke --list` says it prints."""

import re

import psycopg
import pytest

from support import DATABASE_ENV, clean_env, invoke
from upstream_indexes import embedded

pytestmark = pytest.mark.pg  # each starts the embedded server (a test's own, or the demo's in .pgdata/)


@pytest.mark.slow
def test_embedded_server_ignores_pgport_and_shows_each_step(tmp_path, monkeypatch):
    """PGPORT set alone (no PGHOST) chooses the embedded server; its conninfo names its own port, so
    libpq does not take PGPORT's. The server start and each demo load step are announced as they begin."""
    for name in DATABASE_ENV:  # pg_virtualenv's too: PGPORT alone is the case
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGPORT", "1")
    lines = []
    pgdata = tmp_path / "pgdata"
    try:
        target = embedded.demo_target(scale=0.002, pgdata=pgdata, announce=lines.append)
        assert re.search(r" port=\d+", target.conninfo), target.conninfo
        monkeypatch.setenv("PGPORT", "2")  # another server's: the conninfo's own port wins
        with psycopg.connect(target.conninfo) as conn:
            assert conn.execute("SELECT count(*) > 0 FROM upstream_claimrecord").fetchone()[0]
    finally:
        embedded.stop(pgdata)
    assert lines[0].startswith("PGPORT=1 is ignored: the embedded server has its own"), lines
    assert lines[1] == f"starting the embedded PostgreSQL server in {pgdata} ...", lines
    assert lines[2].startswith("  server started ("), lines
    steps = [line.split(" (")[0].strip() for line in lines if line.startswith("  demo data: ")]
    assert steps == ["demo data: customers", "demo data: uploads", "demo data: claims", "demo data: report runs",
                     "demo data: drift events", "demo data: foreign keys and the app's 39 indexes",
                     "demo data: VACUUM ANALYZE", "demo data: loaded"], lines


def test_first_line_names_the_embedded_database_before_it_starts():
    was_running = embedded.is_running()
    try:
        result = invoke("status", env=clean_env(PGPORT="1"))
    finally:
        if not was_running:
            embedded.stop()
    assert result.returncode in (0, 1), result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "database: embedded demo server in .pgdata/ (demo data)", lines
    assert lines[1].startswith("PGPORT=1 is ignored"), lines


def test_db_url_prints_what_the_list_says():
    listing = " ".join(invoke("--list").stdout.split())  # as words: invoke wraps them by the widest name
    was_running = embedded.is_running()
    try:
        url = invoke("db.url")
    finally:
        if not was_running:
            embedded.stop()
    assert url.returncode == 0, url.stderr
    assert re.fullmatch(r"user=postgres dbname=upstream_demo host=\S+ port=\d+\n", url.stdout), url.stdout
    assert "libpq connection string" in listing and "URL" not in listing
