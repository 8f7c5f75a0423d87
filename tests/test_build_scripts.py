"""scripts/citus-build and scripts/hypopg-build: each builds an extension once against the wheel's
PostgreSQL 18 into the cache outside the repo, from a tarball whose sha256 it checks first."""

import subprocess
import sys

import pytest

import citus_cluster
from support import clean_env, hypopg_build
from upstream_indexes.paths import ROOT

SCRIPTS = {  # script: (its tarball's name, what the error says of a missing one, where its build is found)
    "citus-build": ("citus-14.0.1.tar.gz", "no Citus tarball at", citus_cluster.pginstall),
    "hypopg-build": ("hypopg-b83f50d8f193.tar.gz", "no HypoPG tarball at", hypopg_build),
}


@pytest.mark.parametrize("script", SCRIPTS)
def test_build_script_refuses_a_tarball_that_is_not_the_release(script, tmp_path):
    """The tarball's sha256 is checked before anything else: one error line, exit 2, no cache."""
    name, absent, _ = SCRIPTS[script]
    fake = tmp_path / name
    fake.write_bytes(b"not the release")
    for tarball, why in ((fake, f"is not {name} (sha256 differs"), (tmp_path / "absent.tar.gz", absent)):
        result = subprocess.run([ROOT / "scripts" / script, tarball], capture_output=True, text=True,
                                env=clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHON=sys.executable))
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and why in result.stderr and result.stderr.count("\n") == 1
        assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_build_script_reuses_its_build(script):
    built = SCRIPTS[script][2]
    if built() is None:
        pytest.skip(f"not built: run scripts/{script}")
    result = subprocess.run([ROOT / "scripts" / script], capture_output=True, text=True,
                            env=clean_env(PYTHON=sys.executable), timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(built())
    assert "building" not in result.stderr
