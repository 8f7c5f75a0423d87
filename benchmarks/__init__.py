"""The measurements behind every performance claim in the docs (docs/performance.md): `invoke bench`.

run.py orchestrates; sandbox.py picks the throwaway database and loads the
demo data; queries.py, builds.py and overhead.py measure; writer.py is the
write load during index builds and waits.py what its slow writes waited on;
results.py writes the JSON, the markdown summary and the charts.
"""

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SQL_DIR = BENCH_DIR / "sql"
RESULTS_DIR = BENCH_DIR / "results"

# The held-snapshot scenario's defaults (held_snapshot.py), here so that `invoke --help bench` shows them
# without loading the benchmark (and psycopg with it).
HELD_SNAPSHOT_SCALE = 0.1
HELD_SNAPSHOT_HOLD_S = 60.0  # how long the REPEATABLE READ transaction holds its snapshot
HELD_SNAPSHOT_MAX_WAIT_S = 10.0  # the --max-wait of the migrate it runs


def bench_sql(name: str) -> str:
    """The text of benchmarks/sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()
