"""The ledger (yoyo behind one module): a run that fails after it took the migrator lock leaves
none of its connections behind, and a build runs the very text whose sha256 it records."""

import ast
import io
import re
from pathlib import Path

import pytest
from yoyo.migrations import read_sql_migration

from support import Database
from upstream_indexes import ledger, migrations, runner
from upstream_indexes.config import APPLICATION_NAME, Target
from upstream_indexes.errors import ToolError
from upstream_indexes.paths import MIGRATIONS_DIR
from upstream_indexes.lines import LinePrinter


def our_connections(db: Database) -> list[tuple]:
    """The server backends this process (the tool, in-process) still has open on the test's database."""
    with db.connect() as conn:
        return conn.execute("SELECT pid, state, query FROM pg_stat_activity "
                            "WHERE datname = current_database() AND application_name = %s "
                            "AND pid <> pg_backend_pid()", [APPLICATION_NAME]).fetchall()


def test_a_run_that_fails_inside_the_ledger_closes_every_connection(db, monkeypatch):
    """The bookkeeping tables exist (one index applied); a DBA's transaction holds yoyo's lock table,
    so the run fails after it took the migrator lock and opened yoyo's backend, on its first look at
    yoyo_lock (lock_timeout from PGOPTIONS, as an operator would set it)."""
    target = Target(db.conninfo, "test")
    runner.migrate(target, LinePrinter(io.StringIO()), to="0001")
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=1s")
    with db.connect() as dba, dba.transaction():
        dba.execute("LOCK TABLE yoyo_lock IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(ToolError, match="lock timeout") as failed:
            runner.migrate(target, LinePrinter(io.StringIO()))
        # Checked while the error (and everything its traceback holds) is still alive.
        assert our_connections(db) == [], failed.value


def test_a_build_runs_the_text_that_was_read_and_checksummed(migrations_copy):
    """An edit to the file after the run read it changes neither the checksum nor the SQL it runs."""
    first = migrations.load(migrations_copy)[0]
    first.path.write_text(first.path.read_text().replace(first.index, "edited_meanwhile"))
    statements = ledger.statements(first, "apply")
    assert any(first.index in s for s in statements)
    assert not any("edited_meanwhile" in s for s in statements)
    assert ledger.statements(first, "rollback") == ledger.split(first.rollback_sql)


def test_the_text_is_split_as_yoyos_reader_splits_the_file():
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        assert ledger.split(path.read_text(encoding="utf-8")) == read_sql_migration(str(path))[2], path.name


# --- the layering docs/development.md's Layout states -------------------------------------------

PACKAGE = Path(migrations.__file__).parent
DEVELOPMENT_PAGE = PACKAGE.parent.parent / "docs" / "development.md"


def imports(path: Path) -> set[str]:
    """The top-level names a module imports: its package's modules by their own name, others by theirs."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
    return found


def test_no_module_imports_one_above_it_in_the_layout():
    layout = re.findall(r"^  (\w+)\.py ", DEVELOPMENT_PAGE.read_text().split("## Layout", 1)[1].split("\n## ", 1)[0],
                        re.M)
    assert sorted(layout) == sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    for position, name in enumerate(layout):
        above = set(layout[:position + 1])
        assert not imports(PACKAGE / f"{name}.py") & above, f"{name}.py imports {imports(PACKAGE / f'{name}.py') & above}"


def test_only_the_ledger_uses_yoyo():
    assert [p.name for p in sorted(PACKAGE.glob("*.py")) if "yoyo" in imports(p)] == ["ledger.py"]
