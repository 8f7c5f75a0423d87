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


def bench_sql(name: str) -> str:
    """The text of benchmarks/sql/<name>.sql."""
    return (SQL_DIR / f"{name}.sql").read_text()
