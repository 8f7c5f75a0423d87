"""invoke tasks: parse flags, call the upstream_indexes package, turn its errors into exit codes.

Exit codes (README, "Exit codes"): 0 ok, 1 check failed / status found work,
2 could not run (nothing changed), 3 blocked past --max-wait, 130 interrupted.
"""

import sys

from invoke import Collection, Exit, task

from upstream_indexes import embedded, runner, verify as verifier
from upstream_indexes.config import choose_target, redact
from upstream_indexes.db import translate_errors
from upstream_indexes.demo import DEFAULT_SCALE
from upstream_indexes.errors import ToolError
from upstream_indexes.report import Reporter

DSN_HELP = "database URL or libpq conninfo (default: DATABASE_URL, then PG* variables, then the embedded demo)"


def _run(command, dsn=None, reporter=None, **kwargs):
    """Pick the database, say which, run `command(target, reporter, ...)`, exit with its report's code."""
    reporter = reporter or Reporter()
    try:
        target = translate_errors(choose_target)(dsn, announce=reporter.line)
        reporter.line(target.describe())
        report = command(target, reporter, **kwargs)
    except ToolError as exc:
        raise Exit(redact(f"error: {exc}").replace("\n", "\nerror: "), exc.exit_code) from None
    if report.exit_code:
        raise Exit(code=report.exit_code)


def _options(max_wait, retries):
    return runner.MigrateOptions(max_wait=float(max_wait), retries=int(retries))


@task(help={
    "dsn": DSN_HELP,
    "max-wait": "seconds a build may wait for other sessions before it is cancelled and retried (default 60)",
    "retries": "further attempts after a build was cancelled for waiting too long (default 3)",
})
def migrate(c, dsn=None, max_wait=60, retries=3):
    """Build every pending covering index with CREATE INDEX CONCURRENTLY."""
    _run(runner.migrate, dsn, options=_options(max_wait, retries))


@task(help={
    "dsn": DSN_HELP,
    "count": "how many applied migrations to roll back, newest first (default 1)",
    "all": "roll back every applied migration",
    "force": "drop an index of our name even when its definition is not ours",
    "max-wait": "seconds a drop may wait for other sessions (default 60)",
})
def rollback(c, dsn=None, count=1, all=False, force=False, max_wait=60):
    """Drop the newest applied index (or --count N, --all) with DROP INDEX CONCURRENTLY."""
    _run(runner.rollback, dsn, count=int(count), everything=all, force=force,
         options=_options(max_wait, 0))


@task(help={"dsn": DSN_HELP})
def status(c, dsn=None):
    """Show each migration applied or pending and each index's state and size."""
    _run(runner.status, dsn)


@task(help={
    "dsn": DSN_HELP,
    "strict": "turn warnings into failures: an index the planner takes only with sequential and bitmap scans "
              "off; with --analyze, heap fetches",
    "json": "print a machine-readable report on stdout (the database line goes to stderr)",
    "analyze": "also run EXPLAIN (ANALYZE, BUFFERS), read-only, and report heap fetches (is VACUUM due?)",
})
def verify(c, dsn=None, strict=False, json=False, analyze=False):
    """Prove the indexes exist, are valid and ours, and serve the app's queries as index-only scans."""
    _run(verifier.verify, dsn, reporter=Reporter(sys.stderr) if json else None,
         strict=strict, analyze=analyze, as_json=json)


@task(name="start")
def db_start(c):
    """Start the embedded demo server (data in .pgdata/), loading the demo data once."""
    target = embedded.demo_target()
    print(target.describe())


@task(name="stop")
def db_stop(c):
    """Stop the embedded demo server."""
    print("embedded demo server stopped" if embedded.stop() else "embedded demo server was not running")


@task(name="url")
def db_url(c):
    """Print the embedded demo database's connection URL, nothing else."""
    print(embedded.demo_target(announce=lambda line: None).conninfo)


@task(name="reset", help={"scale": f"demo data size; 1.0 = 3M claims (default {DEFAULT_SCALE})"})
def db_reset(c, scale=DEFAULT_SCALE):
    """Drop the demo database and load it again (its indexes and yoyo records go too)."""
    target = embedded.demo_target(scale=float(scale), reset=True)
    print(target.describe())


@task(name="seed", help={"scale": "demo data size; 1.0 = 3M claims, 1M drift events, 300k uploads"})
def db_seed(c, scale=DEFAULT_SCALE):
    """Reload the demo database with demo data at --scale N."""
    db_reset(c, scale)


db = Collection("db", db_start, db_stop, db_url, db_reset, db_seed)
ns = Collection(migrate, rollback, status, verify, db)
