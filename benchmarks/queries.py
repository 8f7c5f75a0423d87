"""Query cost: each app query of verify/app_queries.sql for a small, the
median and the largest customer, EXPLAIN (ANALYZE, BUFFERS) before the
migration and after it: plan node, index, shared buffers, heap fetches,
execution time, median over repetitions.

Django sends literal values, so the planner sees each customer id: the
session forces custom plans (plan_cache_mode), or after five executions a
prepared statement could switch to one generic plan for every customer.
"""

import statistics
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from upstream_indexes import app_queries, partitions
from upstream_indexes.app_queries import AppQuery

from . import bench_sql

SAMPLE_FIELDS = ("query", "customer", "customer_id", "customer_rows")


@dataclass(frozen=True)
class Workload:
    """The catalogue and the customers each query runs for, fixed before the migration."""

    queries: list[AppQuery]
    samples: dict[str, list[dict]]  # table -> customer_sample()

    @property
    def size(self) -> int:
        return sum(len(self.samples[q.table]) for q in self.queries)


def workload(conn: psycopg.Connection) -> Workload:
    queries = app_queries.load()
    return Workload(queries, {table: customer_sample(conn, table) for table in {q.table for q in queries}})


def customer_sample(conn: psycopg.Connection, table: str) -> list[dict]:
    """The smallest customer with rows, the median and the largest, by rows in `table`."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.SQL(bench_sql("customers")).format(table=sql.Identifier(table))).fetchall()


def _prepare(conn: psycopg.Connection, queries: list[AppQuery]) -> None:
    """The catalogue's PREPAREs in this session, with custom plans forced (see the module docstring)."""
    conn.execute("DEALLOCATE ALL")
    conn.execute("SET plan_cache_mode = force_custom_plan")
    for query in queries:
        conn.execute(query.prepare)


def measure(conn: psycopg.Connection, work: Workload, reps: int) -> list[dict]:
    """One row per query and sampled customer: the median of `reps` runs after one warm-up run."""
    _prepare(conn, work.queries)
    rows = []
    for query in work.queries:
        for customer in work.samples[query.table]:
            runs = [explain(conn, query.name, customer["customer_id"]) for _ in range(reps + 1)][1:]
            first = runs[0]
            rows.append({
                "query": query.name,
                "customer": customer["size"],
                "customer_id": customer["customer_id"],
                "customer_rows": customer["row_count"],
                "node": first["node"],
                "index": first["index"],
                "plans_differ": any((r["node"], r["index"]) != (first["node"], first["index"]) for r in runs),
                "shared_buffers": statistics.median(r["shared_buffers"] for r in runs),
                "shared_read": statistics.median(r["shared_read"] for r in runs),
                "heap_fetches": statistics.median(r["heap_fetches"] for r in runs),
                "execution_ms": round(statistics.median(r["execution_ms"] for r in runs), 4),
                # On a partitioned table the scan reads a partition: our index there is the partition's.
                "index_only_on_expected": first["node"] == "Index Only Scan" and first["index"] in (
                    query.expected_index, partitions.index_name(query.expected_index, first["relation"] or "")),
            })
    return rows


def explain(conn: psycopg.Connection, name: str, customer_id: int) -> dict:
    statement = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE {}(%s)").format(sql.Identifier(name))
    # EXPLAIN EXECUTE is a utility statement: the argument is bound client-side, still as a parameter.
    with psycopg.ClientCursor(conn) as cur:
        (result,) = cur.execute(statement, [customer_id]).fetchone()
    top = result[0]
    plan = top["Plan"]
    scan = _scan_node(plan)
    return {
        "node": scan.get("Node Type") if scan else None,
        "index": _index_name(scan) if scan else None,
        "relation": scan.get("Relation Name") if scan else None,
        "shared_buffers": plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0),
        "shared_read": plan.get("Shared Read Blocks", 0),
        "heap_fetches": sum(node.get("Heap Fetches", 0) for node in _nodes(plan)),
        "execution_ms": top["Execution Time"],
    }


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _scan_node(plan: dict) -> dict | None:
    """The node that reads the query's table (a scan with a Relation Name)."""
    return next((node for node in _nodes(plan) if "Relation Name" in node), None)


def _index_name(scan: dict) -> str | None:
    """The index a scan uses: its own, or for a bitmap heap scan, its bitmap index scans' (joined)."""
    if "Index Name" in scan:
        return scan["Index Name"]
    names = [node["Index Name"] for node in _nodes(scan) if "Index Name" in node]
    return " + ".join(dict.fromkeys(names)) or None


def compare(before: list[dict], after: list[dict]) -> list[dict]:
    """Pair each before row with its after row; ratios before / after (how many times cheaper)."""
    rows = []
    for old, new in zip(before, after, strict=True):
        rows.append({
            **{k: old[k] for k in SAMPLE_FIELDS},
            "before": {k: v for k, v in old.items() if k not in SAMPLE_FIELDS},
            "after": {k: v for k, v in new.items() if k not in SAMPLE_FIELDS},
            "buffers_ratio": _ratio(old["shared_buffers"], new["shared_buffers"]),
            "time_ratio": _ratio(old["execution_ms"], new["execution_ms"]),
        })
    return rows


def _ratio(before: float, after: float) -> float | None:
    return round(before / after, 2) if after else None
