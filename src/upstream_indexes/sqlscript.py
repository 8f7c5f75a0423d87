"""`invoke sql`: the SQL `invoke migrate` (or `invoke rollback`) runs, as one psql script a DBA can
review and run as it is.

The statements are the migration files' text as the run read it, split as yoyo splits a file (the
leading comment block removed; ledger.statements), and the runner sends exactly those, one by one, on a new autocommit
connection per file whose only setting is application_name, after the build settings
(--parallel-workers, --maintenance-work-mem, pyproject.toml) before a build, and takes every setting
back (RESET ALL) after a build. So every session setting that applies is printed here in place.

Without a database the script holds every migration. With one (--dsn), it holds what the runner
would do there now, read from the catalog only: pending builds, an INVALID leftover dropped before
its rebuild, nothing for an index that is already applied and valid.
"""

from dataclasses import dataclass
from pathlib import Path

from . import catalog, ledger, partitions, planner, runner, steps
from .catalog import State
from .migrations import Kind
from .planner import Action, Step
from .config import APPLICATION_NAME, Target
from .db import connect, translate_errors
from .migrations import IndexMigration
from .paths import ROOT


@dataclass(frozen=True)
class Part:
    """One migration's share of the script: why it is there and the statements to run (maybe none)."""

    migration: IndexMigration
    note: str
    statements: list[str]
    sources: tuple[Path, ...] = ()
    builds: bool = False  # ends with the forward file's build: the build settings apply to it
    one_build_session: bool = False  # a partitioned table's expansion: the settings apply to all of it


def every_part(files: list[IndexMigration], rollback: bool) -> list[Part]:
    """Every migration: forward in order, or every rollback newest first (as `invoke rollback --all`)."""
    if rollback:
        return [Part(m, "rollback", file_statements(m, "rollback"), (m.rollback_path,)) for m in reversed(files)]
    return [Part(m, "build", file_statements(m, "apply"), (m.path,), builds=m.kind.makes_index) for m in files]


def file_statements(m: IndexMigration, direction: str) -> list[str]:
    """A file's statements as the runner sends them: an index's as they are, a constraint's step by step
    (each step on a connection of its own: the file's SETs before it again, and before a catalog-only
    statement the runner's short lock_timeout)."""
    if m.kind.makes_index:
        return ledger.statements(m, direction)
    return step_lines(steps.file_steps(m, direction))


def step_lines(found: list[steps.Step]) -> list[str]:
    """Steps as script lines: each step's statements, the runner's own SET lock_timeout said in a comment."""
    lines = []
    for step in found:
        for statement in step.statements:
            if statement.sql == steps.guard_sql() and step.catalog_only:
                lines.append("-- the runner's bound on the wait for the next statement's lock (it retries within "
                             "--max-wait):")
            lines += ([f"-- {statement.note}"] if statement.note else []) + [statement.sql.rstrip().rstrip(";") + ";"]
    return lines


def expanded(action: Action, rollback: bool) -> list[str]:
    """A partitioned table's action as the statements the runner sends, each with its note as a comment."""
    m = action.state.migration
    lines = []
    file_statements = ledger.statements(m, "rollback" if rollback else "apply")
    for statement in partitions.expand(m, action.state.schema, action.partition_steps, file_statements, rollback):
        lines += ([f"-- {statement.note}"] if statement.note else []) + [statement.sql + ";"]
    return lines


def part(action: Action, twin: State | None = None) -> Part:
    """One planned action as the statements it runs (none for a record, a wait or a refusal); `twin`: a
    promotion's twin index as it stands, for its rollback."""
    m = action.state.migration
    if not m.kind.makes_index and action.step in (Step.BUILD, Step.REBUILD, Step.VALIDATE):
        return Part(m, action.reason, step_lines(steps.add(action.state)), (m.path,))
    if not m.kind.makes_index and action.step == Step.DROP:
        return Part(m, action.reason, step_lines(steps.drop(action.state, twin)), (m.rollback_path,))
    if action.step == Step.BUILD_PARTITIONS:
        return Part(m, action.reason, expanded(action, rollback=False), (m.path,), builds=True,
                    one_build_session=True)
    if action.step == Step.DROP and action.partition_steps:
        return Part(m, action.reason, expanded(action, rollback=True), (m.rollback_path,))
    if action.step in (Step.BUILD, Step.REBUILD):
        return Part(m, action.reason, ledger.statements(m, "apply"), (m.path,), builds=True)
    if action.step == Step.DROP_INVALID_THEN_BUILD:
        return Part(m, action.reason, ledger.statements(m, "rollback") + ledger.statements(m, "apply"),
                    (m.rollback_path, m.path), builds=True)
    if action.step == Step.DROP:
        return Part(m, action.reason, ledger.statements(m, "rollback"), (m.rollback_path,))
    if action.step == Step.WAIT_FOR_ORPHAN:
        return Part(m, action.reason + " (run `invoke sql --dsn` again then)", [])
    if action.step == Step.REFUSE:
        return Part(m, action.reason + "; nothing runs until a human decides", [])
    return Part(m, action.reason, [])


@translate_errors
def database_parts(target: Target, files: list[IndexMigration], rollback: bool) -> list[Part]:
    """Read-only: the pre-flight and plan `invoke migrate` / `invoke rollback` (the newest applied
    migration) start with, rendered; nothing else."""
    with connect(target) as conn:
        runner.preflight(conn, files, target, builds=not rollback)
        states, applied = runner.read_state(conn, files)
        twins = {m.id: catalog.index_validity(conn, steps.twin_name(m)) for m in files if m.kind == Kind.PROMOTION}
    actions = planner.rollback_plan(states, applied) if rollback else planner.migrate_plan(states, applied)
    if not rollback:
        runner.refuse(actions)
    return [part(action, twins.get(action.state.migration.id)) for action in actions]


def build_settings_sql(build_settings) -> list[str]:
    """The build settings as the SETs the runner applies to the build session (values checked already:
    a whole number or a size)."""
    return [f"SET {name} = '{value}';" for name, value in build_settings]


def render(parts: list[Part], scope: str, rollback: bool, build_settings=()) -> str:
    """The psql script: how to run it, then each migration's statements under its name and description."""
    command = "invoke rollback" if rollback else "invoke migrate"
    lines = [
        f"-- The SQL `{command}` runs: {scope}.",
        "-- Generated by `invoke sql` from migrations/. Run it as it is with",
        "--   psql -X -v ON_ERROR_STOP=1 -f <this file> <database>",
        "-- but not with --single-transaction: CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction block.",
        "-- The runner sends these statements on a new autocommit connection per migration (application_name",
        f"-- '{APPLICATION_NAME}'); the SET statements below are every session setting it applies.",
    ]
    if rollback:
        lines.append("-- Afterwards the same `invoke rollback` finds the indexes gone and removes yoyo's records.")
    else:
        lines += ["-- A failed build leaves an INVALID index: run the rollback (`invoke sql --rollback`) before",
                  "-- running the build again. Afterwards `invoke migrate` finds the indexes valid and identical",
                  "-- and records them as applied without rebuilding."]
    if any(not part.migration.kind.makes_index for part in parts):
        lines += ["-- A catalog-only ALTER TABLE (ADD CONSTRAINT ... NOT VALID, USING INDEX, DROP CONSTRAINT) runs under",
                  "-- the runner's own short lock_timeout: where psql stops on it (a session held the table), run",
                  "-- the script again later; a constraint left NOT VALID is validated by `invoke migrate`."]
    for part in parts:
        m = part.migration
        sources = ", ".join(_shown(path) for path in part.sources)
        lines += ["", f"-- {m.id}: {m.description}", f"-- {part.note}" + (f" ({sources})" if sources else "")]
        if part.builds and build_settings:
            # Before the build only: a leftover's DROP runs first, and the settings concern the build.
            built_from = 0 if part.one_build_session else len(part.statements) - len(ledger.statements(m, "apply"))
            lines += part.statements[:built_from]
            lines += ["-- the build settings (--parallel-workers, --maintenance-work-mem, pyproject.toml):"]
            lines += build_settings_sql(build_settings) + part.statements[built_from:] + ["RESET ALL;"]
        else:
            lines += part.statements
    if not any(part.statements for part in parts):
        lines += ["", "-- nothing to run"]
    return "\n".join(lines) + "\n"


def script(files: list[IndexMigration], rollback: bool = False, target: Target | None = None,
           build_settings=()) -> str:
    """The script for every migration (no target: no connection), or for what a run on `target` would do;
    each build preceded by the SETs of `build_settings` ((parameter, value) pairs)."""
    if target is None:
        scope = ("every migration's rollback, newest first, as `invoke rollback --all` (no database consulted)"
                 if rollback else "every migration, in order (no database consulted)")
        return render(every_part(files, rollback), scope, rollback, build_settings)
    where = target.describe().removeprefix("database: ")
    scope = f"what it would run now on {where}, read from the catalog"
    return render(database_parts(target, files, rollback), scope, rollback, build_settings)


def _shown(path: Path) -> str:
    """A file as the script's comments name it: relative to the checkout when in it (--migrations may be elsewhere)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
