"""No password in anything the tool prints: redaction by structure (the password field of a URL, a
URL query, a key=value conninfo, a SQL literal), never by searching for the password's text, so a
password equal to the user or the database leaves them readable; a URL whose password libpq would
misread as a host or port is refused without echoing it."""

import pytest

from support import assert_refused, clean_env, invoke
from upstream_indexes.config import normalize_dsn
from upstream_indexes.errors import ConnectionProblem
from upstream_indexes.redaction import redact

ACCEPTED = "accepted as it is"


@pytest.mark.parametrize("text, shown, as_a_dsn", [
    # the password equal to the user, the database and a fragment of the scheme: only the password goes
    ("postgresql://postgres:postgres@127.0.0.1:5499/postgres", "postgresql://postgres:***@127.0.0.1:5499/postgres",
     ACCEPTED),
    ("postgresql://app:ql@db.example/app", "postgresql://app:***@db.example/app", ACCEPTED),
    ("postgresql://app:1@127.0.0.1:5499/upstream", "postgresql://app:***@127.0.0.1:5499/upstream", ACCEPTED),
    # URL-escaped: neither the escaped nor the plain spelling survives
    ("postgresql://app:p%40ss%2Fw%3A@db.example/app", "postgresql://app:***@db.example/app", ACCEPTED),
    ("postgresql://app@db.example/app?password=p%40ss&sslmode=require",
     "postgresql://app@db.example/app?password=***&sslmode=require", ACCEPTED),
    # key=value, quoted with spaces, escaped quote inside
    ("host=db.example password='two words \\' here' dbname=app", "host=db.example password=*** dbname=app", ACCEPTED),
    ("host=db.example password = app user=app dbname=app", "host=db.example password = *** user=app dbname=app",
     ACCEPTED),
    # libpq's error quotes the user, never the password: the user stays readable
    ('connection to server at "127.0.0.1", port 5499 failed: FATAL:  password authentication failed for user '
     '"postgres"', 'connection to server at "127.0.0.1", port 5499 failed: FATAL:  password authentication failed '
     'for user "postgres"', "malformed DSN"),
    ("ALTER ROLE app PASSWORD 'it''s' VALID UNTIL 'infinity'", "ALTER ROLE app PASSWORD '***' VALID UNTIL 'infinity'",
     "malformed DSN"),
])
def test_redaction_replaces_the_password_field_only(text, shown, as_a_dsn):
    # The tool reads a --dsn first, as here; that read once remembered the password, and redact() then
    # replaced every copy of it. A connection string is taken as it is; a message or a statement is not one.
    if as_a_dsn == ACCEPTED:
        assert normalize_dsn(text) == text
    else:
        with pytest.raises(ConnectionProblem, match=as_a_dsn):
            normalize_dsn(text)
    assert redact(text) == shown


@pytest.mark.parametrize("dsn", [
    "postgresql://app:p@ss@db.example/appdb",  # libpq would take 'ss@db.example' as the host
    "postgresql://app:pa/ss@db.example/appdb",  # libpq would take 'pa' as the port
    "postgresql://app:pa#ss@db.example/appdb",
])
def test_a_url_whose_password_needs_escaping_is_refused_without_echoing_it(dsn):
    with pytest.raises(ConnectionProblem) as refused:
        normalize_dsn(dsn)
    message = str(refused.value)
    assert "percent-encode" in message, message
    assert "ss@" not in message and "pa" not in message.replace("password", "").replace("part", ""), message


def test_malformed_url_end_to_end_names_no_part_of_the_password():
    result = invoke("status", "--dsn", "postgresql://app:p@ss@127.0.0.1:1/appdb")
    assert_refused(result, "malformed DSN")
    assert "ss@" not in result.stdout + result.stderr and "p@ss" not in result.stdout + result.stderr


def test_password_equal_to_user_and_database_leaves_them_readable(db, server):
    """Issue 15's case: every `postgres` was replaced. Only the password field may be."""
    url = server.url(db.name, "postgres", "postgres")
    result = invoke("status", "--dsn", url)
    first = result.stdout.splitlines()[0]
    assert first.startswith("database: postgresql://postgres:***@"), first


def test_pgpassword_never_printed(db, server):
    secret = "pgpass-Secret-7"
    params = dict(part.split("=", 1) for part in db.conninfo.split())
    env = clean_env(PGHOST=params["host"], PGDATABASE=db.name, PGUSER=params.get("user", "postgres"),
                    PGPASSWORD=secret, **({"PGPORT": params["port"]} if "port" in params else {}))
    result = invoke("status", env=env)
    assert secret not in result.stdout + result.stderr
    assert result.stdout.startswith("database: PGHOST="), result.stdout
