"""Connections: one place that opens them, names us, and turns failures into one line."""

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from .config import DEFAULT_CONNECT_TIMEOUT, Target, connect_kwargs, connect_timeout, server_address
from .errors import EXIT_INTERRUPTED, INTERRUPTED, ConnectionProblem, ToolError
from .redaction import redact


def connect(target: Target, **kwargs) -> psycopg.Connection:
    """An autocommit connection, so that we never hold a transaction a concurrent build would wait for.

    Never server-side prepared (psycopg prepares a query it runs often): behind a transaction-mode
    pooler the next statement may land on another server session, where it does not exist.
    """
    try:
        return psycopg.connect(**connect_kwargs(target), autocommit=True, prepare_threshold=None, **kwargs)
    except psycopg.errors.ConnectionTimeout:
        # psycopg's own message names neither the server nor the limit.
        raise ConnectionProblem(f"cannot connect: no answer from {server_address(target)} within "
                                f"{connect_timeout(target)}s (connect_timeout in the DSN, else PGCONNECT_TIMEOUT, "
                                f"else {DEFAULT_CONNECT_TIMEOUT})") from None
    except psycopg.Error as exc:
        raise ConnectionProblem(f"cannot connect: {one_line(exc)}") from None


@contextmanager
def read_only_transaction(conn: psycopg.Connection) -> Iterator[None]:
    """A READ ONLY transaction, rolled back: no session setting, so nothing of ours stays on a server
    connection a pooler hands to the app's next client; every read in it sees one snapshot."""
    was = conn.read_only
    conn.read_only = True
    try:
        with conn.transaction(force_rollback=True):
            yield
    finally:
        if not conn.closed:  # its later transactions are as the caller had them
            conn.read_only = was


def one_line(exc: BaseException) -> str:
    """The first meaningful line of a driver error, password-free."""
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # libpq puts the useful part last on multi-host attempts ("connection to server ... failed: <why>").
    return redact(lines[0] if len(lines) == 1 else "; ".join(lines[:2]))


def translate_errors(func):
    """Decorator for task entry points: a driver error that escaped becomes one ToolError line."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except psycopg.Error as exc:
            raise ToolError(f"database error: {one_line(exc)}") from None
        except KeyboardInterrupt:
            raise ToolError(INTERRUPTED, EXIT_INTERRUPTED) from None

    return wrapper
