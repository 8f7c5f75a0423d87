"""Before any change, read-only: what must hold on the server (the pre-flight), and the state the plan
is made from (the catalog and the ledger). `invoke sql --dsn` starts as migrate and rollback do, here.

Pre-flight problems are findings, collected: one PreflightProblem lists them all, one per line."""

import psycopg

from . import catalog, datachecks, index_events, ledger, planner, run_events, table_checks, topology, versions
from .catalog import IndexState
from .config import Target
from .db import one_line
from .errors import BadBuildSetting, DataProblem, FilesEdited, PreflightProblem, Refused
from .events import Listener
from .migrations import IndexMigration


def preflight(conn: psycopg.Connection, files: list[IndexMigration], target: Target,
              max_replica_lag: float | None = None, builds: bool = True) -> None:
    """Everything that must hold before any DDL (`builds`: migrate's, not rollback's);
    PreflightProblem lists each failure, one per line."""
    version = catalog.server_version(conn)
    problems = [p for p in (versions.unsupported(version), builds and versions.unsafe_to_build(version)) if p]
    pooled = topology.pooler_problem(conn, target)
    if pooled:
        problems.append(pooled)
    session = catalog.fetch(conn, "preflight_session", {})[0]
    if session["in_recovery"]:
        problems.append("the server is a read-only standby; run against the primary")
    elif session["read_only"]:
        problems.append(f"the session of role {session['role']} is read-only (default_transaction_read_only)")
    elif max_replica_lag is not None:
        problems += [f"--max-replica-lag: role {session['role']} may not read the replay position of "
                     f"standby {replica.name} (grant it pg_monitor, or pg_read_all_stats)"
                     for replica in topology.unreadable_replicas(conn)]
    if not session["bookkeeping_tables_exist"] and not session["can_create_in_schema"]:
        problems.append(f"role {session['role']} cannot create the bookkeeping tables in schema "
                        f"{session['schema']} (needs CREATE on it)")
    problems += table_checks.table_problems(conn, files, session["role"])
    if builds and not problems:
        problems += table_checks.partition_problems(conn, files)
    citus = catalog.citus(conn, [m.table for m in files]) if not problems else None
    if citus and citus.distributed and not citus.is_coordinator:
        problems.append("this is a Citus worker node: run against the coordinator, which builds the index "
                        "on every shard")
    if not problems:
        problems += table_checks.kind_problems(conn, files, citus)
    if problems:
        raise PreflightProblem("\n".join(problems))


def check_data(conn: psycopg.Connection, todo: list[planner.Action], listener: Listener) -> None:
    """Before any change: each unique index to build, each CHECK or foreign key to add or validate, checked
    against the data (datachecks.py); what any finds stops the run, DataProblem (exit 2), nothing changed."""
    findings = []
    for action in todo:
        m = action.state.migration
        if datachecks.needed(m) and action.step in (planner.Step.BUILD, planner.Step.REBUILD,
                                                    planner.Step.DROP_INVALID_THEN_BUILD, planner.Step.VALIDATE):
            checked = datachecks.run(conn, m)
            if checked.finding:
                findings.append(checked.finding.describe())
            else:
                listener.emit(index_events.DataChecked(m.id, checked.what, checked.seconds))
    if findings:
        raise DataProblem(findings)


def check_build_settings(conn: psycopg.Connection, build_settings) -> None:
    """The server's verdict on each build setting (pyproject.toml), tried for one transaction only."""
    for name, value in build_settings:
        try:
            with conn.transaction():
                conn.execute("SELECT set_config(%s, %s, true)", [name, value])
        except psycopg.Error as exc:
            raise BadBuildSetting(name, value, one_line(exc)) from None


def announce_citus(conn: psycopg.Connection, files: list[IndexMigration], listener: Listener) -> None:
    """On a Citus coordinator, say so: the builds go to every shard on every worker."""
    citus = catalog.citus(conn, [m.table for m in files])
    if citus and citus.distributed:
        listener.emit(run_events.CitusCoordinator(citus))


def read_state(conn: psycopg.Connection, files: list[IndexMigration]) -> tuple[list[IndexState], set[str]]:
    """What the planner decides from: the catalog state of every index and what yoyo recorded.
    Applied files edited since are refused here, before any plan."""
    applied = ledger.applied_ids(conn)
    edited = ledger.edited(conn, files, applied)
    if edited:
        raise FilesEdited(edited)
    return catalog.index_states(conn, files), applied


def refuse(actions: list[planner.Action], rollback: bool = False) -> None:
    """A plan with a refusal in it runs nothing: every refusal, one line each."""
    refused = planner.refusals(actions)
    if refused:
        raise Refused([a.reason for a in refused], rollback)
