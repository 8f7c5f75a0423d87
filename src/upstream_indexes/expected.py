"""verify/expected.sql: what verify checks, generated from the migration files and the query
catalogue (the one source of truth), so that verify covers every migration there is.

The verify scripts include it (`\\ir expected.sql`). It sets three settings for their transaction:
upstream_indexes.expected_indexes (each index a migration builds: its table, definition and parts),
upstream_indexes.expected_constraints (each constraint a migration adds, likewise) and
upstream_indexes.expected_plans (each catalogue query and the index its plan must use);
verify/definitions.sql compares the first two with the catalog. `invoke verify` renders it afresh from --migrations (the working checkout's
migrations/ by default) and never reads the file, nor the copy an installed wheel carries; the
committed file is the rendering for this checkout's migrations/, for the DBA's psql, and a test
fails when it is stale.
"""

import json
from pathlib import Path

from .app_queries import AppQuery
from .errors import ToolError
from .migrations import IndexMigration, expected_entry
from .paths import EXPECTED_SQL

_HEADER = """\
-- What verify checks: generated from migrations/ and verify/app_queries.sql
-- by `invoke expected` (`invoke new` too); do not edit, a test fails when it is stale.
-- indexes.sql, constraints.sql, plans.sql and deep.sql include it; it sets, for their transaction only (SET LOCAL):
--   upstream_indexes.expected_indexes      each index a migration builds: table, definition, parts
--   upstream_indexes.expected_constraints  each constraint a migration adds, likewise
--   upstream_indexes.expected_plans        each app query and the index its plan must use
"""


def _json_rows(rows: list[dict]) -> str:
    return "[\n" + ",\n".join(f"  {json.dumps(row)}" for row in rows) + "\n]"


def render(migrations: list[IndexMigration], queries: list[AppQuery]) -> str:
    indexes = [expected_entry(m) for m in migrations if m.kind.makes_index]
    constraints = [expected_entry(m) for m in migrations if not m.kind.makes_index]
    plans = [{"query_name": q.name, "index_name": q.expected_index} for q in queries]
    # SET LOCAL, not SELECT set_config(): psql would print the whole value as a result before the first check.
    return (_HEADER
            + f"SET LOCAL upstream_indexes.expected_indexes = $expected${_json_rows(indexes)}$expected$;\n"
            + f"SET LOCAL upstream_indexes.expected_constraints = $expected${_json_rows(constraints)}$expected$;\n"
            + f"SET LOCAL upstream_indexes.expected_plans = $expected${_json_rows(plans)}$expected$;\n")


def write(migrations: list[IndexMigration], queries: list[AppQuery], path: Path = EXPECTED_SQL) -> Path:
    try:
        path.write_text(render(migrations, queries), encoding="utf-8")
    except OSError as exc:
        raise ToolError(f"cannot write {path}: {exc.strerror}") from None
    return path
