"""A server that never answers (issue 23): the error names the host and port it waited for and the limit,
and the limit is the documented one: the DSN's connect_timeout, else PGCONNECT_TIMEOUT, else 10 s."""

import socket
import time

import pytest

from support import clean_env, invoke
from upstream_indexes.config import DEFAULT_CONNECT_TIMEOUT, Target, connect_kwargs


@pytest.fixture
def silent_port():
    """A loopback port whose listener accepts connections (the kernel's backlog) and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize("query, env, seconds", [("", {"PGCONNECT_TIMEOUT": "2"}, 2),
                                                 ("?connect_timeout=1", {"PGCONNECT_TIMEOUT": "30"}, 1)])
def test_no_answer_names_the_server_and_the_limit(silent_port, query, env, seconds):
    started = time.monotonic()
    result = invoke("status", "--dsn", f"postgresql://app:s3cret@127.0.0.1:{silent_port}/appdb{query}",
                    env=clean_env(**env))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f'error: cannot connect: no answer from server at "127.0.0.1", port {silent_port} within {seconds}s '
        "(connect_timeout in the DSN, else PGCONNECT_TIMEOUT, else 10)")
    assert time.monotonic() - started < 30 + seconds  # the limit it names is the one it kept


def test_the_default_is_ten_seconds_and_documented(monkeypatch):
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    assert DEFAULT_CONNECT_TIMEOUT == 10
    assert connect_kwargs(Target("host=h dbname=d", "--dsn"))["connect_timeout"] == 10
    assert "connect_timeout" not in connect_kwargs(Target("host=h dbname=d connect_timeout=3", "--dsn"))
    from upstream_indexes.paths import ROOT
    assert "waits 10 s for the server to answer" in (ROOT / "docs" / "topology.md").read_text()
