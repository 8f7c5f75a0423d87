"""A partition's index name is computed in two places: in Python (partitions.index_name: the name
`invoke migrate` builds) and in SQL (verify/indexes.sql, which runs with psql alone and names the
index migrate would build on a partition that has none). Past PostgreSQL's 63 bytes both clip the
name to its first 54 bytes, `_` and 8 hex digits of its md5; here both run against a real server,
on names kept whole at exactly 63 bytes, clipped at 64, and clipped inside a multibyte character,
and must agree with each other and with the indexes migrate builds."""

import io
import re
import shutil

import pytest

from support import Database
from upstream_indexes import app_queries, expected, migrations, runner, verify
from upstream_indexes.config import Target
from upstream_indexes.lines import LinePrinter
from upstream_indexes.partitions import MAX_IDENTIFIER_BYTES, definition_tail, index_name
from upstream_indexes.paths import MIGRATIONS_DIR, VERIFY_DIR

CLAIM_MIGRATION = "0001.claim_cust_date_outcome_cov"
CLAIM_INDEX = "claim_cust_date_outcome_cov"  # `<index>_` is 28 bytes
PARTITIONS = [
    "p_short",  # well under 63 bytes
    "p" * 35,  # exactly 63 bytes: kept whole
    "q" * 36,  # 64 bytes: clipped
    "upstream_claimrecord_archive_partition_2026_03",
    "x" + "ä" * 30,  # 2-byte characters: byte 54 falls inside one, so the clipped part ends a character earlier
]
MISSING = re.compile(r"(\S+): no index attached \(`invoke migrate` builds (\S+)\)")


@pytest.fixture
def partitioned(server, tmp_path) -> tuple[Database, list]:
    """A database whose claim table has only PARTITIONS, and the claim index's migration alone."""
    name = server.create_database()
    db = Database(server, name)
    with db.connect() as conn:
        conn.execute("CREATE TABLE upstream_claimrecord (id bigint NOT NULL, customer_id bigint NOT NULL, "
                     "decided_date date NOT NULL, outcome varchar(20) NOT NULL) PARTITION BY RANGE (decided_date)")
        for month, partition in enumerate(PARTITIONS, start=1):
            conn.execute(f'CREATE TABLE "{partition}" PARTITION OF upstream_claimrecord '
                         f"FOR VALUES FROM ('2026-{month:02d}-01') TO ('2026-{month + 1:02d}-01')")
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in MIGRATIONS_DIR.glob(f"{CLAIM_MIGRATION}.*"):
        shutil.copy(path, folder)
    yield db, folder
    server.drop_database(name)


def names_verify_expects(db: Database, files) -> dict[str, str]:
    """verify/indexes.sql's name for each partition's index, from its `no index attached` failure."""
    rendered = {expected.EXPECTED_SQL.name: expected.render(files, app_queries.load())}
    with db.connect() as conn:
        checks = verify.run_script(conn, VERIFY_DIR / "indexes.sql", LinePrinter(io.StringIO()), {}, rendered)
    return {partition: name for check in checks for partition, name in MISSING.findall(check.message)}


def names_migrate_built(db: Database) -> dict[str, str]:
    with db.connect() as conn:
        return dict(conn.execute(
            "SELECT t.relname, c.relname FROM pg_inherits AS h JOIN pg_class AS c ON c.oid = h.inhrelid "
            "JOIN pg_index AS i ON i.indexrelid = c.oid JOIN pg_class AS t ON t.oid = i.indrelid "
            "WHERE h.inhparent = %s::regclass", [CLAIM_INDEX]).fetchall())


def test_python_and_sql_name_a_partitions_index_alike_past_63_bytes(partitioned):
    db, folder = partitioned
    ours = {p: index_name(CLAIM_INDEX, p) for p in PARTITIONS}
    clipped = [p for p in PARTITIONS if len(f"{CLAIM_INDEX}_{p}".encode()) > MAX_IDENTIFIER_BYTES]
    assert len(clipped) == 3 and all(len(ours[p].encode()) <= MAX_IDENTIFIER_BYTES for p in PARTITIONS)
    assert ours["p" * 35] == f"{CLAIM_INDEX}_{'p' * 35}"

    # The parent index alone (ON ONLY, INVALID), no partition's: verify names each one migrate would build.
    files = migrations.load(folder)
    with db.connect() as conn:
        conn.execute(f"CREATE INDEX {CLAIM_INDEX} ON ONLY upstream_claimrecord {definition_tail(files[0])}")
    assert names_verify_expects(db, files) == ours

    runner.migrate(Target(db.conninfo, "test"), LinePrinter(io.StringIO()), directory=folder)
    assert names_migrate_built(db) == ours
