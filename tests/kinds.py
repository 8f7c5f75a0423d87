"""Helpers the tests of the migration kinds share (issue 18): a migrations folder holding the
app's next migrations after the three covering indexes, and the demo data made fit for them."""

import shutil
import subprocess
from pathlib import Path

import psycopg

from support import clean_env
from upstream_indexes import app_queries, expected, migrations
from upstream_indexes.paths import MIGRATIONS_DIR, ROOT, VERIFY_DIR

EXAMPLES = ROOT / "examples" / "next-migrations"
EXAMPLE_IDS = ("0004.upload_status_valid", "0005.drift_event_unique", "0006.drift_event_unique",
               "0007.upload_processing_cov")
DRIFT_KEY = "customer_id, report_run_id, payer, cpt_group, drift_type"


def next_migrations(directory: Path) -> Path:
    """migrations/ and examples/next-migrations/ (with its app_queries.sql) in one folder."""
    shutil.copytree(MIGRATIONS_DIR, directory)
    for path in EXAMPLES.iterdir():
        shutil.copy(path, directory)
    return directory


HEADER = "-- {what}\n-- transactional: false\nSET statement_timeout = 0;\nSET lock_timeout = '2s';\n"


def write(folder: Path, name: str, forward: str, rollback: str) -> None:
    """A migration pair `name` (e.g. 0004.x_idx) of these statements, under the header grammar's lines."""
    (folder / f"{name}.sql").write_text(HEADER.format(what="forward") + forward)
    (folder / f"{name}.rollback.sql").write_text(HEADER.format(what="rollback") + rollback)


def only(folder: Path, *keep: str) -> Path:
    """Leave migrations/ and the examples whose numbers start with one of `keep` in a next_migrations folder."""
    for path in folder.iterdir():
        if path.name[:4] in ("0004", "0005", "0006", "0007") and not path.name.startswith(keep):
            path.unlink()
    (folder / "app_queries.sql").unlink()
    return folder


def server_major(db) -> int:
    with db.connect() as conn:
        return conn.info.server_version // 10000


def examples(directory: Path, *numbers: str) -> Path:
    """A folder holding only the example migrations of these numbers (e.g. "0004"): a test of one kind
    need not build the covering indexes first."""
    directory.mkdir()
    for path in EXAMPLES.glob("0*.sql"):
        if path.name[:4] in numbers:
            shutil.copy(path, directory)
    return directory


def drift_duplicates(conn: psycopg.Connection) -> int:
    """How many drift events share their key with an older one (the demo data holds some)."""
    return conn.execute(f"SELECT count(*) - count(DISTINCT ({DRIFT_KEY})) FROM upstream_driftevent").fetchone()[0]


def remove_drift_duplicates(conn: psycopg.Connection) -> None:
    """Keep the oldest drift event of each key: what a DBA does before the unique index."""
    conn.execute(f"DELETE FROM upstream_driftevent AS newer USING upstream_driftevent AS older "
                 f"WHERE newer.id > older.id AND ({', '.join('newer.' + c for c in DRIFT_KEY.split(', '))}) "
                 f"= ({', '.join('older.' + c for c in DRIFT_KEY.split(', '))})")


def psql_verify(server, db, folder, tmp_path, files=("indexes.sql", "constraints.sql", "plans.sql")
                ) -> subprocess.CompletedProcess:
    """The DBA's psql run of verify/ with expected.sql for `folder` (as `invoke expected` writes it once the
    files are in migrations/)."""
    verify = shutil.copytree(VERIFY_DIR, tmp_path / "verify", dirs_exist_ok=True)
    catalogues = app_queries.for_folder(folder)
    (verify / "app_queries.sql").write_text("\n".join(p.read_text() for p in catalogues))
    expected.write(migrations.load(folder), app_queries.load_all(catalogues), verify / "expected.sql")
    args = [server.psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", db.conninfo]
    for name in files:
        args += ["-f", str(verify / name)]
    return subprocess.run(args, capture_output=True, text=True, env=clean_env(), timeout=120)
