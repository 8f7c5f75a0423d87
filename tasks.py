"""invoke tasks: parse flags, call the upstream_indexes package, turn its errors into exit codes.

Each task imports the part of the package it runs in its body, so that a command does not pay for the
others' imports (yoyo, rich, sqlparse, matplotlib...); at the top only what --help shows (the settings,
upstream_indexes.defaults, the bench's defaults: no psycopg) and the line printer's stream guard.
docs/performance.md ("The tool's own overhead") measures what that buys; tests/test_imports.py checks it.

Exit codes: errors.EXIT_CODES (each case in full: docs/running.md, "Exit codes").
"""

import atexit
import functools
import gc
import math
from dataclasses import replace
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import invoke
from invoke import Collection, Exit, ParseError

# invoke turns Python's bytecode cache off (so that no __pycache__ appears beside tasks.py): in an editable
# install every module of the package would then be compiled again on every command (0.07 s of a no-op
# migrate's 0.33 s on the bench's machine). Its modules are cached as Python caches them, unless -B or
# PYTHONDONTWRITEBYTECODE says not to; a wheel's were compiled when pip installed it.
sys.dont_write_bytecode = bool(sys.flags.dont_write_bytecode)

from benchmarks import HELD_SNAPSHOT_HOLD_S, HELD_SNAPSHOT_MAX_WAIT_S, HELD_SNAPSHOT_SCALE
from upstream_indexes import settings
from upstream_indexes.defaults import DEMO_SCALE, DJANGO_MAX_NAME, TRAFFIC_TOP
from upstream_indexes.errors import EXIT_CANNOT_RUN, EXIT_FAILED, ToolError
from upstream_indexes.streams import guard_standard_streams
from upstream_indexes.paths import MIGRATIONS_DIR

# Before invoke prints anything (--list and --help too): output piped into `head` must not end in a traceback.
guard_standard_streams()

# Python's last garbage collection at exit walks every object the imports made (psycopg's alone took
# 0.06-0.1 s on the bench's machine): nothing of ours waits for it (connections are closed, threads
# joined, files flushed by then), so the objects alive at exit are left out of it.
atexit.register(gc.freeze)

# No short flags: invoke derives them from each task's own flags, so one letter meant two things.
task = functools.partial(invoke.task, auto_shortflags=False)


JSON_TASKS = ("migrate", "rollback", "status", "verify", "whatif")


def _usage_errors_exit_2():
    """invoke's parser errors (an unknown flag or task, a flag without its value) would exit 1, which
    here means "a check failed": make them one `error:` line that quotes no word which may hold a
    password, exit 2, and under --json print the one JSON document too. They arise in the running
    Program's parse_tasks, after it has loaded this file."""
    from invoke.main import program

    parse_tasks = program.parse_tasks

    def parse_tasks_or_exit_2():
        try:
            parse_tasks()
        except ParseError as exc:
            from upstream_indexes import jsonreport

            words = program.core.unparsed
            problem = _usage_problem(str(exc), exc.context, words)
            task_name = exc.context.name if exc.context else None
            if task_name in JSON_TASKS and any(word.split("=")[0] == "--json" for word in words):
                print(jsonreport.dumps(jsonreport.document(task_name, None, None, 0.0, error=problem,
                                                           exit_code=EXIT_CANNOT_RUN)))
            raise Exit(f"error: {problem} (`invoke --list`, `invoke --help TASK`)", EXIT_CANNOT_RUN) from None

    program.parse_tasks = parse_tasks_or_exit_2


def _usage_problem(message, context, words):
    """invoke's parse error `message` in our words; `words`: the command line after invoke's own flags."""
    import ast

    from upstream_indexes.redaction import redact, shown_word

    if flag := re.fullmatch(r"Flag <Argument: ([\w-]+).*> (needed|doesn't take any) value.*", message):
        return f"--{flag[1].replace('_', '-')} " + ("needs a value" if flag[2] == "needed" else "takes no value")
    unknown = re.fullmatch(r"No idea what (.*) is!", message)
    if not unknown:
        return redact(message)
    # A flag that takes a value given twice: invoke reads the second value as a task (maybe a second DSN).
    flags = [word.split("=")[0] for word in words if word.startswith("--")]
    repeated = [flag for flag in dict.fromkeys(flags) if flags.count(flag) > 1 and context
                and flag in context.flags and context.flags[flag].takes_value]
    if repeated:
        return f"{repeated[0]} given twice: give it once"
    shown = shown_word(ast.literal_eval(unknown[1]))
    if shown is None:
        return "unknown task or flag: a word that may hold a password (not shown; a DSN goes after --dsn)"
    return f"unknown task or flag {shown!r}"


_usage_errors_exit_2()


def _errors_fit_the_terminal():
    """On a terminal, each error line (an Exit's message, which invoke prints) broken between words, its rest
    indented past `error: `: the terminal's own wrap cuts words. Pipes and files get one line each."""
    from invoke.main import program

    def fitted(step):
        def run_step():
            try:
                step()
            except Exit as exc:
                if not (exc.message and sys.stderr.isatty()):
                    raise
                from upstream_indexes.live import fit

                width = shutil.get_terminal_size().columns
                raise Exit("\n".join(row for line in exc.message.splitlines() for row in fit(line, width)),
                           exc.code) from None
        return run_step

    program.parse_tasks, program.execute = fitted(program.parse_tasks), fitted(program.execute)


_errors_fit_the_terminal()

JSON_HELP = "print one JSON report on stdout (docs/json.md); the progress lines go to stderr"
try:
    SETTINGS = settings.load()  # pyproject.toml [tool.upstream-indexes]: the defaults --help shows
except ToolError as exc:
    print(f"error: {exc}".replace("\n", "\nerror: "), file=sys.stderr)
    sys.exit(EXIT_CANNOT_RUN)

DSN_HELP = (f"database URL or libpq conninfo (default: {SETTINGS['dsn-env']}, then PG* variables, then the "
            "embedded demo unless turned off: embedded = false, UPSTREAM_INDEXES_EMBEDDED=0)")
TARGET_HELP = ("a named target of pyproject.toml, [tool.upstream-indexes.targets.NAME]: its dsn-env's database "
               "(nothing else is tried) and its settings over the section's")
MIGRATIONS_HELP = f"folder of migration files, e.g. a reviewed copy ({SETTINGS.shown('migrations')})"


def _fail(exc: ToolError) -> Exit:
    """The error as invoke ends with it: each line `error: ...` on stderr, the exit code."""
    from upstream_indexes.redaction import redact

    return Exit(redact(f"error: {exc}").replace("\n", "\nerror: "), exc.exit_code)


@contextmanager
def _errors_as_exit():
    """Around a task's body: a ToolError ends the task as _fail says (a driver error or Ctrl-C
    escaping the package is one via translate_errors)."""
    try:
        yield
    except ToolError as exc:
        raise _fail(exc) from None


def _run(command, dsn, json, arguments, target_name=None, events=True):
    """Check the flags (`arguments()`: the keyword arguments of `command`) and the migration files, pick the
    database (`target_name`: a --target), say which, run `command(target, printer, ...)`, exit with its
    report's code. `events`: the command emits events, which the printer and the JSON report's log both
    take (verify only prints lines).

    With json, stdout holds exactly one JSON document, also on failure (a bad flag too); the human lines go
    to stderr.
    """
    from upstream_indexes import jsonreport
    from upstream_indexes.db import translate_errors
    from upstream_indexes.embedded import choose_target
    from upstream_indexes.events import Listeners
    from upstream_indexes.redaction import redact

    printer = _printer(sys.stderr if json else sys.stdout)
    log = jsonreport.EventLog()  # the runner's events for the JSON report (verify only prints lines)
    target = None
    started = time.monotonic()
    try:
        kwargs = arguments()
        _files_first(command.__name__, kwargs)
        target = translate_errors(choose_target)(dsn, announce=printer.line, named=target_name)
        report = command(target, Listeners(printer, log) if events else printer, **kwargs)
    except ToolError as exc:
        if json:
            # One message in one line (several problems, each an `error:` line on stderr, joined by "; ").
            print(jsonreport.dumps(jsonreport.document(command.__name__, target, exc.report,
                                                       time.monotonic() - started, exit_code=exc.exit_code,
                                                       error=redact(str(exc)).replace("\n", "; "),
                                                       events=log.entries)))
        raise _fail(exc) from None
    if json:
        print(jsonreport.dumps(jsonreport.document(command.__name__, target, report, time.monotonic() - started,
                                                   events=log.entries)))
    if report.exit_code:
        raise Exit(code=report.exit_code)


def _printer(out):
    """The live display on a terminal, plain lines anywhere else: rich loads only for a terminal."""
    if out.isatty():
        from upstream_indexes.live import LiveDisplay

        return LiveDisplay(out)
    from upstream_indexes.lines import LinePrinter

    return LinePrinter(out)


def _files_first(command_name, kwargs):
    """The migration files, and a migration named by --to or accept's ID, checked before any connection and
    before the database line (docs/running.md): bad input is one line, and no server is started for it."""
    from upstream_indexes import migrations as migration_files

    directory = kwargs.get("directory") or kwargs.get("migrations_dir")
    if directory is None:
        return
    files = migration_files.load(directory)
    for flag, reference in (("--to", kwargs.get("to")), (command_name, kwargs.get("reference"))):
        if reference:
            migration_files.up_to(files, reference, flag=flag)


REQUIRE_PLAN_HELP = ("exit 1 when a catalogue query would not use the pending index it expects, no query "
                     "expects one (but a unique one), or HypoPG cannot create one; exit 2 without HypoPG; "
                     "a constraint builds no index: nothing is asked of it")


def _number(flag, value, kind, minimum):
    """A numeric flag's value, or one error line (the flags default to strings so invoke never casts them)."""
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not number >= minimum:
        raise ToolError(f"--{flag} must be a number >= {minimum:g}, not {value!r}")
    return number


def _settings(target):
    """pyproject.toml's settings, or with --target that target's (its keys over the section's)."""
    return SETTINGS.for_target(target) if target is not None else SETTINGS


def _options(chosen, max_wait, retries, backoff=None, max_replica_lag=None, max_wait_after_build=None,
             parallel_workers=None, maintenance_work_mem=None, jobs="1"):
    """The flags given, else the `chosen` settings (pyproject.toml's, or a --target's), else the built-in
    defaults."""
    from upstream_indexes.run import MigrateOptions

    def value(flag, given):
        return str(chosen[flag]) if given is None else given

    return MigrateOptions(max_wait=_number("max-wait", value("max-wait", max_wait), float, 0.1),
                          max_wait_after_build=math.inf if max_wait_after_build is None else
                          _number("max-wait-after-build", max_wait_after_build, float, 0.1),
                          retries=_number("retries", value("retries", retries), int, 0),
                          backoff=_number("backoff", value("backoff", backoff), float, 0),
                          max_replica_lag=None if max_replica_lag is None else
                          _number("max-replica-lag", max_replica_lag, float, 0),
                          build_settings=_build_settings(parallel_workers, maintenance_work_mem, chosen),
                          jobs=_number("jobs", jobs, int, 1))


def _build_settings(parallel_workers, maintenance_work_mem, chosen=SETTINGS):
    """The build session's settings: the flags given, else the chosen settings', else the defaults."""
    if maintenance_work_mem is not None and not settings.is_size(maintenance_work_mem):
        raise ToolError(f"--maintenance-work-mem must be a size such as 1GB or 512MB, not {maintenance_work_mem!r}")
    return chosen.build_settings({
        "max-parallel-maintenance-workers": None if parallel_workers is None else
        _number("parallel-workers", parallel_workers, int, 0),
        "maintenance-work-mem": maintenance_work_mem})


def _reference(flag, value):
    """A migration named on the command line (its id or number); an empty one is bad input."""
    if value is not None and not value.strip():
        raise ToolError(f"--{flag} is empty: give a migration id or number")
    return value and value.strip()


def _directory(migrations, chosen=SETTINGS):
    """The --migrations folder (this checkout's migrations/ by default); a missing one is bad input."""
    if not migrations:
        migrations = chosen.migrations_dir()
        if migrations is None:
            return MIGRATIONS_DIR
    if not Path(migrations).is_dir():
        raise ToolError(f"--migrations: no such folder: {migrations}")
    return Path(migrations)


@task(help={
    "dsn": DSN_HELP,
    "max-wait": "seconds a build may wait for other sessions before building its index, then it is cancelled "
                "and retried; also for another migrate or rollback holding the migrator lock and for a CREATE "
                "INDEX of ours a killed run left running (then exit 3), and the most to wait for standbys under "
                f"--max-replica-lag ({SETTINGS.shown('max-wait')})",
    "max-wait-after-build": "seconds a built index may wait for other sessions to become valid (old snapshots, "
                            "writers before validation; it blocks no reads or writes meanwhile), then it is "
                            "cancelled, dropped and not retried: exit 3 (default: no limit, only Ctrl-C)",
    "parallel-workers": "max_parallel_maintenance_workers for the build session only "
                        f"({SETTINGS.shown('max-parallel-maintenance-workers')})",
    "maintenance-work-mem": "maintenance_work_mem for the build session only, e.g. 1GB "
                            f"({SETTINGS.shown('maintenance-work-mem')})",
    "retries": f"further attempts after a build was cancelled for waiting too long ({SETTINGS.shown('retries')})",
    "backoff": f"seconds before the first retry, doubled before each next one ({SETTINGS.shown('backoff')})",
    "max-replica-lag": "before each next build, wait until every standby's replay is less than this many "
                       "seconds behind (default: report the lag, never wait)",
    "migrations": MIGRATIONS_HELP,
    "json": JSON_HELP,
    "dry-run": "say what it would do to each index (the pre-flight and the plan, read-only), change nothing",
    "to": "apply the pending migrations up to and including this one (its id, or its number: 0002); "
          "later ones stay pending",
    "jobs": "build up to this many indexes at once, each on another table, on PostgreSQL 14+ (older servers: "
            "one at a time, and a line why) (default 1)",
    "require-plan": "first the what-if of --dry-run (HypoPG): " + REQUIRE_PLAN_HELP + "; nothing is built then",
    "skip-data-checks": "do not look for duplicate keys (a unique index) or violating rows (a CHECK, a foreign key) "
                        "before any change (docs/migration-kinds.md: when)",
    "target": TARGET_HELP,
})
def migrate(c, dsn=None, max_wait=None, retries=None, backoff=None, max_replica_lag=None, migrations=None,
            json=False, dry_run=False, to=None, max_wait_after_build=None, parallel_workers=None,
            maintenance_work_mem=None, jobs="1", require_plan=False, target=None, skip_data_checks=False):
    """Build every pending covering index with CREATE INDEX CONCURRENTLY."""
    from upstream_indexes import runner

    def arguments():
        chosen = _settings(target)
        options = _options(chosen, max_wait, retries, backoff, max_replica_lag, max_wait_after_build,
                           parallel_workers, maintenance_work_mem, jobs)
        return dict(options=replace(options, data_checks=not skip_data_checks),
                    directory=_directory(migrations, chosen), dry_run=dry_run, to=_reference("to", to),
                    require_plan=require_plan)

    _run(runner.migrate, dsn, json, arguments, target)


@task(help={
    "dsn": DSN_HELP,
    "count": "how many applied migrations to roll back, newest first (default 1)",
    "all": "roll back every applied migration",
    "force": "drop an index of our name even when its definition is not ours",
    "max-wait": "seconds a drop may wait for other sessions, for another migrate or rollback holding the "
                f"migrator lock, and for a CREATE INDEX of ours a killed run left running ({SETTINGS.shown('max-wait')})",
    "migrations": MIGRATIONS_HELP,
    "json": JSON_HELP,
    "to": "roll back every applied migration after this one, newest first; it stays applied (its id, or "
          "its number: 0001)",
    "yes": "roll back more than one migration on a database that is not the embedded demo without asking "
           "(without a terminal to ask on, it is refused unless --yes)",
    "target": TARGET_HELP,
})
def rollback(c, dsn=None, count=None, all=False, force=False, max_wait=None, migrations=None, json=False,
             to=None, yes=False, target=None):
    """Drop the newest applied index (or --count N, --all, --to ID) with DROP INDEX CONCURRENTLY."""
    from upstream_indexes import runner

    def arguments():
        given = [f"--{flag}" for flag, value in (("count", count), ("all", all), ("to", to))
                 if value not in (None, False)]
        if len(given) > 1:
            raise ToolError(f"{' and '.join(given)} together: give one")
        chosen = _settings(target)
        return dict(count=_number("count", count or "1", int, 1), everything=all, force=force,
                    options=_options(chosen, max_wait, "0"), directory=_directory(migrations, chosen),
                    to=_reference("to", to), confirm=None if yes else _confirm_on_terminal)

    _run(runner.rollback, dsn, json, arguments, target)


def _confirm_on_terminal(target, ids):
    """Ask before a rollback of several indexes outside the demo; no terminal (a script): refuse."""
    question = f"roll back {len(ids)} migrations ({', '.join(ids)}) on {target.shown}?"
    if not sys.stdin.isatty():
        raise ToolError(f"{question} No terminal to ask on: pass --yes; nothing was changed")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise ToolError("rollback not confirmed; nothing was changed")


@task(help={"dsn": DSN_HELP, "migrations": MIGRATIONS_HELP, "json": JSON_HELP, "target": TARGET_HELP})
def status(c, dsn=None, migrations=None, json=False, target=None):
    """Show each migration applied or pending (when, by whom, how long) and each index's state and size."""
    from upstream_indexes import runner

    _run(runner.status, dsn, json, lambda: dict(directory=_directory(migrations, _settings(target))), target)


@task(name="history", help={"dsn": DSN_HELP, "target": TARGET_HELP})
def history_log(c, dsn=None, target=None):
    """Show every apply, record and rollback logged on the database, oldest first (when, by whom, how long)."""
    from upstream_indexes import history

    def arguments():
        _settings(target)  # an unknown --target is bad input, found before any connection
        return {}

    _run(history.history, dsn, False, arguments, target)


@task(help={"dsn": DSN_HELP, "migrations": MIGRATIONS_HELP, "id": "the applied migration whose edited files "
            "a DBA reviewed (its id, or its number: 0002)", "target": TARGET_HELP})
def accept(c, id, dsn=None, migrations=None, target=None):
    """Record the sha256 of an applied migration's reviewed edit (Flyway repair), printing old and new."""
    from upstream_indexes import runner

    _run(runner.accept, dsn, False, lambda: dict(reference=_reference("id", id),
                                                 directory=_directory(migrations, _settings(target))), target)


@task(help={"id": "the pending migration to record as applied (its id, or its number: 0002)",
            "force": "record it even when the catalog holds no valid index of its definition (a line says so)",
            "dsn": DSN_HELP, "migrations": MIGRATIONS_HELP, "target": TARGET_HELP})
def stamp(c, id, force=False, dsn=None, migrations=None, target=None):
    """Record a migration as applied without building, for a valid index of its definition (Alembic stamp)."""
    from upstream_indexes import runner

    _run(runner.stamp, dsn, False, lambda: dict(reference=_reference("id", id), force=force,
                                                directory=_directory(migrations, _settings(target))), target)


# --- DBA review and operator experience ------------------------------------


@task(help={
    "dsn": "read this database's catalog (read-only) and print only what `migrate`/`rollback` would run there; "
           "without it nothing is consulted and every migration is printed",
    "all": "every migration (every rollback, newest first, with --rollback), even with --dsn: no connection",
    "rollback": "the rollback SQL instead: every rollback newest first, or with --dsn what `rollback` would drop",
    "migrations": MIGRATIONS_HELP,
    "parallel-workers": "as migrate's: the build session's max_parallel_maintenance_workers the script sets",
    "maintenance-work-mem": "as migrate's: the build session's maintenance_work_mem the script sets",
    "target": "as --dsn, the database of a named target of pyproject.toml, whose settings apply too",
})
def sql(c, dsn=None, all=False, rollback=False, migrations=None, parallel_workers=None, maintenance_work_mem=None,
        target=None):
    """Print the exact SQL migrate (or rollback) runs, as a psql script for review."""
    from upstream_indexes import migrations as migration_files, sqlscript
    from upstream_indexes.config import resolve_target

    with _errors_as_exit():
        chosen = _settings(target)
        build_settings = _build_settings(parallel_workers, maintenance_work_mem, chosen)
        files = migration_files.load(_directory(migrations, chosen))
        database = resolve_target(dsn, target=target) if (dsn or target) and not all else None
        print(sqlscript.script(files, rollback=rollback, target=database, build_settings=build_settings), end="")


@task(help={"migrations": MIGRATIONS_HELP})
def lint(c, migrations=None):
    """Check migrations/ without a database: header grammar, TODOs left in headers, squawk; fails on any finding."""
    from upstream_indexes import lint as linter

    with _errors_as_exit():
        problems = linter.findings(_directory(migrations))
    for problem in problems:
        print(problem)
    if problems:
        raise Exit(f"lint: {len(problems)} finding(s)", EXIT_FAILED)
    print("lint: no findings (header grammar, header TODOs, squawk)")


@task(name="django-state", help={
    "after": "the upstream app's latest migration, which the generated one depends on (e.g. 0018_add_claim_indexes)",
    "migrations": MIGRATIONS_HELP,
})
def django_migration(c, after=None, migrations=None):
    """Print the Django migration (and Meta.indexes lines) recording the indexes in Django's state only."""
    from upstream_indexes import django_state, migrations as migration_files

    with _errors_as_exit():
        files = migration_files.load(_directory(migrations))
        print(django_state.module(files, after), end="")
    for m in django_state.too_long(files):
        print(f"warning: {m.id}: {m.index} is left out: its name is longer than Django's {DJANGO_MAX_NAME} "
              "characters (models.E034); Django will not know this index", file=sys.stderr)


@task(name="new", help={
    "name": "the index's or constraint's name, which names the files too (e.g. claim_cust_payer_date_cov)",
    "table": "the table it indexes or constrains (e.g. upstream_claimrecord)",
    "columns": "an index: its key columns in order, comma-separated, each optionally ASC/DESC and NULLS FIRST/LAST "
               "(e.g. \"customer_id, payer, decided_date DESC\")",
    "include": "an index: columns it also stores, comma-separated, for index-only scans (e.g. id)",
    "unique": "an index: a unique one (migrate first looks for duplicate keys)",
    "where": "an index: a partial one, over the rows of this predicate (e.g. \"status = 'processing'\")",
    "check": "a CHECK constraint of this expression, added NOT VALID then validated (e.g. \"row_count >= 0\")",
    "foreign-key": "a foreign key, added NOT VALID then validated: \"<column> REFERENCES <table> (<column>)\"",
    "using-index": "promote this unique index (built by a migration in the folder) to the UNIQUE constraint of the "
                   "same name",
    "migrations": MIGRATIONS_HELP,
    "long-name": f"allow a name of {DJANGO_MAX_NAME + 1} to 63 characters, which Django's models.Index "
                 "cannot carry (models.E034): `invoke django-state` then leaves this index out of Django's state",
    "dsn": "first check it against this database, read-only: the table and columns exist, the name is free; "
           "and list the existing indexes it would make redundant (without it nothing is consulted)",
    "target": "as --dsn, the database of a named target of pyproject.toml",
})
def new_migration(c, name, table, columns=None, include=None, unique=False, where=None, check=None,
                  foreign_key=None, using_index=None, migrations=None, long_name=False, dsn=None, target=None):
    """Write the next-numbered migration pair for an index or constraint, in the house style."""
    from upstream_indexes import app_queries, expected, migrations as migration_files, scaffold
    from upstream_indexes.config import resolve_target
    from upstream_indexes.lines import overlap_line

    with _errors_as_exit():
        directory = _directory(migrations, _settings(target))
        database = resolve_target(dsn, target=target) if dsn is not None or target else None
        if database is not None:
            print(database.describe())
        made = scaffold.create(directory, name, table, columns, include, unique, where, check, using_index,
                               foreign_key, long_name, database)
        if database is not None:
            print(f"checked: {table} and its columns exist, {name} is free"
                  + ("; existing indexes it would make redundant (for the DBA to weigh; nothing is dropped):"
                     if made.overlapping else "; it would make no existing index redundant"))
            print("".join(f"  {overlap_line(overlap)}\n" for overlap in made.overlapping), end="")
        print(f"wrote {made.forward} and {made.rollback.name}: fill in the TODO lines of its header (`invoke lint` "
              "fails until then)")
        if directory == MIGRATIONS_DIR:
            print(f"rewrote {expected.write(migration_files.load(), app_queries.load())}")
    if made.catalogue_entry:
        print("add the app queries it serves to verify/app_queries.sql, so that verify proves it; for example:\n\n"
              f"{made.catalogue_entry}\n"
              "then run `invoke expected`, `invoke lint`, `invoke migrate` and `invoke verify --strict`")
    else:
        print("verify proves it as it is (verify/indexes.sql: unique; verify/constraints.sql: a constraint); run "
              "`invoke lint`, `invoke migrate` and `invoke verify --strict`")


@task(name="expected")
def expected_sql(c):
    """Rewrite verify/expected.sql (what the psql verify scripts check) from migrations/ and the catalogue."""
    from upstream_indexes import app_queries, expected, migrations as migration_files

    with _errors_as_exit():
        print(f"rewrote {expected.write(migration_files.load(), app_queries.load())}")


@task(help={
    "dsn": DSN_HELP,
    "strict": "turn warnings into failures: an index the planner takes only with sequential and bitmap scans "
              "off; with --analyze, heap fetches",
    "json": JSON_HELP,
    "analyze": "also run EXPLAIN (ANALYZE, BUFFERS), read-only, and report heap fetches (is VACUUM due?)",
    "migrations": MIGRATIONS_HELP + "; verify checks every index they build",
    "deep": "also check with amcheck that each index holds every row of its table (verify/deep.sql; reads "
            "every index and table in full)",
    "traffic": "also check the app's real statements: the heaviest ones pg_stat_statements holds on the indexed "
               "tables, each as a generic plan: does it use one of our indexes? (verify/traffic.sql; --strict: one "
               "that filters on an index's leading column must)",
    "top": f"with --traffic: how many statements, heaviest (total time) first (default {TRAFFIC_TOP})",
    "target": TARGET_HELP,
})
def verify(c, dsn=None, strict=False, json=False, analyze=False, migrations=None, deep=False, traffic=False,
           top=None, target=None):
    """Prove the indexes exist, are valid and ours, and serve the app's queries as index-only scans."""
    from upstream_indexes import verify as verifier

    def arguments():
        if top is not None and not traffic:
            raise ToolError("--top goes with --traffic")
        return dict(strict=strict, analyze=analyze, migrations_dir=_directory(migrations, _settings(target)),
                    deep=deep, traffic=traffic, top=_number("top", top or str(TRAFFIC_TOP), int, 1))

    _run(verifier.verify, dsn, json, arguments, target, events=False)


@task(help={
    "dsn": DSN_HELP,
    "migrations": MIGRATIONS_HELP,
    "catalogue": "the app query catalogue to plan (default verify/app_queries.sql and the migrations folder's own "
                 "app_queries.sql), e.g. a copy holding the queries of an index `invoke new` just wrote",
    "require-plan": REQUIRE_PLAN_HELP,
    "json": JSON_HELP,
    "target": TARGET_HELP,
})
def whatif(c, dsn=None, migrations=None, catalogue=None, require_plan=False, json=False, target=None):
    """Plan the app's queries with each pending index created hypothetically (HypoPG): read-only, nothing built."""
    from upstream_indexes import whatif as whatif_plans

    def arguments():
        if catalogue is not None and not Path(catalogue).is_file():
            raise ToolError(f"--catalogue: no such file: {catalogue}")
        return dict(directory=_directory(migrations, _settings(target)),
                    catalogue=Path(catalogue) if catalogue else None, require_plan=require_plan)

    _run(whatif_plans.whatif, dsn, json, arguments, target)


@task(name="reference")
def reference_docs(c):
    """Rewrite the docs generated from the code: the tasks' and settings' reference, the index and task tables."""
    from upstream_indexes import docs, migrations as migration_files

    if SETTINGS.from_file:
        raise Exit(f"error: {SETTINGS.path} sets {', '.join(sorted(SETTINGS.from_file))}, but the reference shows "
                   "the built-in defaults: run `UPSTREAM_INDEXES_SETTINGS=/dev/null invoke reference`", EXIT_CANNOT_RUN)
    with _errors_as_exit():
        changed = docs.write(ns, migration_files.load())
    print("\n".join(f"rewrote {path.relative_to(docs.ROOT)}" for path in changed) or "reference: nothing stale")


@task(name="docs")
def docs_site(c):
    """Build the docs site into site/ with mkdocs --strict: a broken link or a page left out of the nav fails."""
    from upstream_indexes import docs

    with _errors_as_exit():
        code = docs.build_site()
    if code:
        raise Exit("error: the docs site did not build (mkdocs's lines above)", EXIT_FAILED)


def _demo_target(**kwargs):
    """The embedded demo database, started and loaded as `kwargs` say, or one error line."""
    from upstream_indexes import embedded
    from upstream_indexes.db import translate_errors

    with _errors_as_exit():
        return translate_errors(embedded.demo_target)(**kwargs)


def _demo_scale(scale):
    from upstream_indexes import demo

    with _errors_as_exit():
        return demo.check_scale(scale)


@task(name="start")
def db_start(c):
    """Start the embedded demo server (data in .pgdata/), loading the demo data once."""
    print(_demo_target().describe())


@task(name="stop")
def db_stop(c):
    """Stop the embedded demo server."""
    from upstream_indexes import embedded

    with _errors_as_exit():
        print("embedded demo server stopped" if embedded.stop() else "embedded demo server was not running")


@task(name="url")
def db_url(c):
    """Print the embedded demo database's libpq connection string, nothing else."""
    print(_demo_target(announce=lambda line: None).conninfo)


SCALE_HELP = f"demo data size; 1.0 = 3M claims, 1M drift events, 300k uploads (default {DEMO_SCALE})"


PARTITIONED_HELP = ("claims range-partitioned by month of decided_date (primary key (id, decided_date)); "
                    "migrate then builds the claim index partition by partition")


@task(name="reset", aliases=["seed"], help={"scale": SCALE_HELP, "partitioned": PARTITIONED_HELP})
def db_reset(c, scale=str(DEMO_SCALE), partitioned=False):
    """Drop the demo database and load it again (its indexes and yoyo records go too)."""
    print(_demo_target(scale=_demo_scale(scale), reset=True, partitioned=partitioned).describe())


@task(help={
    "dsn": "an empty database to benchmark in (default: DATABASE_URL, then PG* variables, then a database "
           "of its own on the embedded server)",
    "quick": "the CI-sized run: scale 0.1 and fewer repetitions, under 3 minutes on 2 cores",
    "scale": "the largest demo data size (the stall is also measured at 1/4 and 1/2 of it); "
             "1.0 = 3M claims (default 1.0, with --quick 0.1)",
    "i-know-this-writes": "benchmark in a database that holds other relations too (the bench still writes "
                          "only into its own schema, upstream_bench)",
    "out": "directory for the JSON, markdown and charts (default benchmarks/results)",
    "held-snapshot": "only the held-snapshot scenario: an old snapshot held --hold seconds against `invoke migrate "
                     f"--max-wait`, counting the builds of each index (default scale {HELD_SNAPSHOT_SCALE:g})",
    "hold": f"--held-snapshot: seconds the REPEATABLE READ transaction holds its snapshot "
            f"(default {HELD_SNAPSHOT_HOLD_S:g})",
    "max-wait": f"--held-snapshot: the --max-wait of the migrate it runs (default {HELD_SNAPSHOT_MAX_WAIT_S:g})",
    "partitioned": "load the claims range-partitioned by month (as `invoke db.reset --partitioned`); "
                   "skips the build-cost runs (CONCURRENTLY cannot build on a partitioned table)",
    "constraints": "only the constraints scenario: the claims' CHECK added back as Django does and as migrate does "
                   "(worst write of each step), and what the data pre-checks cost against the work they guard "
                   "(default scale 1.0)",
})
def bench(c, dsn=None, quick=False, scale=None, i_know_this_writes=False, out=None, held_snapshot=False, hold=None,
          max_wait=None, partitioned=False, constraints=False):
    """Measure the builds against a bare CREATE INDEX CONCURRENTLY under writes, query cost, overhead; write results."""
    from benchmarks import constraints as constraint_bench, held_snapshot as held, run  # matplotlib and the bench load only for this task
    from upstream_indexes.db import translate_errors

    with _errors_as_exit():
        scale = _demo_scale(scale) if scale is not None else None
        out_dir = Path(out) if out else None
        if constraints:
            summary = translate_errors(constraint_bench.run)(dsn, scale, i_know_this_writes, out_dir)
        elif held_snapshot:
            summary = translate_errors(held.run)(
                dsn, scale, _number("hold", hold or str(HELD_SNAPSHOT_HOLD_S), float, 0),
                _number("max-wait", max_wait or str(HELD_SNAPSHOT_MAX_WAIT_S), float, 0.1), i_know_this_writes,
                out_dir)
        else:
            summary = translate_errors(run.run)(dsn, quick, scale, i_know_this_writes, out_dir,
                                                partitioned=partitioned)
    print(f"summary: {summary}")


db = Collection("db", db_start, db_stop, db_url, db_reset)
ns = Collection(migrate, rollback, status, history_log, accept, stamp, verify, whatif, sql, lint, django_migration,
                new_migration, expected_sql, reference_docs, docs_site, bench, db)
