"""Where the files live: the tool's own inside the package, the project's in the checkout invoke runs in.

The tool's files are package data, read through importlib.resources, so that a wheel installed with
`pip install .` finds them as an editable checkout does: queries/, templates/, the verify scripts
(verify/indexes.sql, plans.sql, deep.sql, traffic.sql), the demo's SQL (demo/) and docs/report.schema.json. Those
outside src/ stay where a DBA and a reader find them; the package holds a symbolic link to each
(verify_sql, demo_sql, report.schema.json) and the wheel carries the files themselves (pyproject.toml,
[tool.setuptools.package-data]). One copy: the DBA's psql and `invoke verify` run the same scripts.

The project's files are the checkout's: the nearest folder, from the working directory up, that holds
tasks.py (where invoke finds its tasks), else the working directory. They are its pyproject.toml
settings, migrations/, the query catalogue verify/app_queries.sql and verify/expected.sql (what the
verify scripts include: `invoke verify` renders both from these files, psql reads them beside the
scripts), .squawk.toml, and the embedded server's .pgdata/.
"""

from importlib.resources import files
from pathlib import Path

PACKAGE = files(__package__)
QUERIES_DIR = PACKAGE / "queries"
TEMPLATES_DIR = PACKAGE / "templates"
VERIFY_DIR = PACKAGE / "verify_sql"
DEMO_DIR = PACKAGE / "demo_sql"
REPORT_SCHEMA = PACKAGE / "report.schema.json"


def _project_root(start: Path) -> Path:
    return next((folder for folder in (start, *start.parents) if (folder / "tasks.py").is_file()), start)


ROOT = _project_root(Path.cwd())
MIGRATIONS_DIR = ROOT / "migrations"
CATALOGUE = ROOT / "verify" / "app_queries.sql"
EXPECTED_SQL = ROOT / "verify" / "expected.sql"
SQUAWK_CONFIG = ROOT / ".squawk.toml"
PGDATA = ROOT / ".pgdata"
