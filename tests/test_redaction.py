"""No password is ever printed (docs/security.md), whatever its characters and however it is given:
each way of writing one that libpq reads (a URL's user info or query, key=value plain, escaped or
quoted), through --dsn, DATABASE_URL, `invoke sql`, --json, a malformed DSN libpq cannot parse, and a
DSN typed where a task or flag belongs, run through the real `invoke` as a user runs it.

Where a database is involved the password is the role's real one and the server asks for it: the
connection succeeding proves libpq read exactly that password from the DSN as written.

Redaction itself, without a server: by structure (the password field of a URL, a URL query, a
key=value conninfo, a SQL literal), never by searching for the password's text, so a password equal
to the user or the database leaves them readable."""

import re
import uuid
from urllib.parse import quote

import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from support import assert_refused, clean_env, invoke, json_report
from upstream_indexes.config import normalize_dsn
from upstream_indexes.errors import ConnectionProblem
from upstream_indexes.redaction import redact

def piece() -> str:
    """A distinctive run of letters and digits, so that any part of a password printed is found."""
    return f"Pw{uuid.uuid4().hex[:6]}"


def assert_never_shown(result, *secrets):
    """Neither a secret nor any run of 4+ letters and digits of it is in stdout or stderr."""
    output = result.stdout + result.stderr
    for secret in secrets:
        for part in [secret, *(run for run in re.split(r"[^A-Za-z0-9]+", secret) if len(run) >= 4)]:
            assert part not in output, f"{part!r} of the password printed:\n{output}"
    assert "Traceback" not in output, output


# --- forms libpq reads: (password the role has, DSN as a user writes it, the DSN as it must be shown) -----

def with_query(url: str, parameter: str) -> str:
    return url + ("&" if "?" in url else "?") + parameter


def keywords_base(server, dbname: str, user: str) -> str:
    """The test database in key=value form, without a password (pg_virtualenv's admin conninfo has one)."""
    params = conninfo_to_dict(server.conninfo(dbname, user=user))
    params.pop("password", None)
    return make_conninfo("", **params)


def url_with_question_mark(server, dbname, user):
    password = f"{piece()}?{piece()}:{piece()}"  # libpq: the whole of it, '?' and ':' too, is the password
    return password, server.url(dbname, user, password), server.url(dbname, user, "***")


def postgres_scheme(server, dbname, user):
    password, url, shown = url_with_question_mark(server, dbname, user)
    return password, url.replace("postgresql://", "postgres://", 1), shown.replace("postgresql://", "postgres://", 1)


def multi_host_url(server, dbname, user):
    """A closed port first, then the test server: libpq tries each host in turn."""
    params = conninfo_to_dict(server.admin_conninfo)
    password = f"{piece()}?{piece()}"
    hosts = f"127.0.0.1:1,{quote(params['host'], safe='')}:{params.get('port', '5432')}"
    return (password, f"postgresql://{user}:{password}@{hosts}/{dbname}", f"postgresql://{user}:***@{hosts}/{dbname}")


def url_percent_encoded(server, dbname, user):
    first, second, third = piece(), piece(), piece()
    password = f"{first}@{second}?{third}"
    return (password, server.url(dbname, user, f"{first}%40{second}?{third}"), server.url(dbname, user, "***"))


def query_keyword_percent_encoded(server, dbname, user):
    """libpq decodes a query parameter's keyword too: pass%77ord is password."""
    password = f"{piece()}-{piece()}"
    return (password, with_query(server.url(dbname, user, None), f"pass%77ord={password}"),
            with_query(server.url(dbname, user, None), "pass%77ord=***"))


def query_sslpassword(server, dbname, user):
    """sslpassword (a client key's passphrase; unused without sslkey) is a secret too."""
    password, passphrase = f"{piece()}-{piece()}", piece()
    return (password, with_query(server.url(dbname, user, password), f"sslpassword={passphrase}"),
            with_query(server.url(dbname, user, "***"), "sslpassword=***"))


def keywords(typed: str, password: str, shown: str = "password=***"):
    def form(server, dbname, user):
        base = keywords_base(server, dbname, user)
        return password, f"{base} {typed}", f"{base} {shown}"
    return form


A, B, C = piece(), piece(), piece()

FORMS = {
    "url, '?' and ':' in the password": url_with_question_mark,
    "postgres:// url": postgres_scheme,
    "multi-host url": multi_host_url,
    "url, percent-encoded '@' and a '?'": url_percent_encoded,
    "url query, percent-encoded keyword": query_keyword_percent_encoded,
    "url query, sslpassword": query_sslpassword,
    "key=value, a quote inside": keywords(f"password={A}'{B}", f"{A}'{B}"),
    "key=value, an escaped space": keywords(f"password={A}\\ {B}", f"{A} {B}"),
    "key=value, an '&'": keywords(f"password={A}&{B}", f"{A}&{B}"),
    "key=value, quoted with an escaped quote and spaces, and an sslpassword": keywords(
        f"password = '{A} \\' {B}' sslpassword={C}", f"{A} ' {B}", "password = *** sslpassword=***"),
}


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
@pytest.mark.slow
def test_each_form_connects_and_its_password_is_never_shown(form, db, server, role):
    name, _ = role
    password, dsn, shown = form(server, db.name, name)
    with db.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
        owner = conn.execute("SELECT current_user").fetchone()[0]  # `invoke sql` checks the role's privileges
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(name)))
    secrets = [password, *re.findall(r"sslpassword=([^&\s]+)", dsn)]

    for source, args, env in (("--dsn", ["--dsn", dsn], clean_env()),
                              ("DATABASE_URL", [], clean_env(DATABASE_URL=dsn))):
        result = invoke("status", *args, env=env)
        assert_never_shown(result, *secrets)
        assert "cannot connect" not in result.stderr and result.returncode in (0, 1), result.stderr
        assert result.stdout.splitlines()[0] == f"database: {shown} (from {source})"

    as_json = invoke("status", "--json", "--dsn", dsn)
    assert_never_shown(as_json, *secrets)
    assert json_report(as_json)["database"]["name"] == shown

    script = invoke("sql", "--dsn", dsn)
    assert_never_shown(script, *secrets)
    assert f"on {shown} (from --dsn)" in script.stdout, script.stdout + script.stderr


# --- what libpq cannot parse: named, never quoted -------------------------------------------------------------

MALFORMED = {
    "a '%' not a percent-encoding": (f"postgresql://app:{A}100%pure{B}@127.0.0.1:1/appdb", "a '%' not followed"),
    "a space in a url": (f"postgresql://app:{A} {B}@127.0.0.1:1/appdb", "a space in the URL"),
    "a space in key=value": (f"host=127.0.0.1 port=1 password={A} {B}", "a word without '='"),
    "the rest of a password read as an option": (f"host=127.0.0.1 password={A} {B}=x", "an option libpq does not know"),
    "an unclosed IPv6 host": (f"postgresql://app:{A}?{B}@[::1/appdb", "an IPv6 host without its closing ']'"),
    "a url without '@'": (f"postgresql://app:{A}", "a port that is not a number"),
    "':' for '=' in a url query": (f"postgresql://app@127.0.0.1:1/db?password:{A}", "a parameter without '='"),
}


@pytest.mark.parametrize("dsn, problem", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.slow
def test_a_malformed_dsn_is_named_not_quoted(dsn, problem):
    for source, args, env in (("--dsn", ["--dsn", dsn], clean_env()),
                              ("DATABASE_URL", [], clean_env(DATABASE_URL=dsn))):
        result = invoke("migrate", *args, env=env)
        assert_never_shown(result, A, B)
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(
            f"error: malformed DSN in {source} (not shown: it may hold a password): {problem}"), result.stderr

    as_json = invoke("status", "--json", "--dsn", dsn)
    assert_never_shown(as_json, A, B)
    doc = json_report(as_json)
    assert doc["database"] is None and problem in doc["error"]


# --- a DSN where a task or flag belongs (invoke's usage errors) ------------------------------------------------

URL = f"postgresql://app:{A}?{B}@127.0.0.1:1/appdb"

MISPLACED = {
    "a url as a task": (["migrate", URL], "unknown task or flag 'postgresql://app:***@127.0.0.1:1/appdb'"),
    "key=value as a task": (["status", f"host=127.0.0.1 password={A}'{B}"],
                            "unknown task or flag 'host=127.0.0.1 password=***'"),
    "--dsn given twice": (["migrate", "--dsn", URL, "--dsn", URL], "--dsn given twice: give it once"),
    "a url the shell split at a space": (["migrate", "--dsn", f"postgresql://app:{A}", f"{B}@127.0.0.1:1/appdb"],
                                         "a word that may hold a password (not shown"),
    "a url libpq would misread": (["status", f"postgresql://app:{A}/{B}@127.0.0.1:1/appdb"],
                                  "a word that may hold a password (not shown"),
    "a url as --migrations": (["status", "--migrations", URL],
                              "--migrations: no such folder: postgresql://app:***@127.0.0.1:1/appdb"),
}


@pytest.mark.parametrize("args, message", MISPLACED.values(), ids=MISPLACED.keys())
@pytest.mark.parametrize("json", [False, True], ids=["lines", "json"])
def test_a_misplaced_dsn_is_never_echoed(args, message, json):
    result = invoke(*args, *(["--json"] if json else []))
    assert_never_shown(result, A, B)
    assert result.returncode == 2
    errors = result.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], result.stderr
    if json:
        assert message in json_report(result)["error"]


# --- redact() by structure -------------------------------------------------------------------------------

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
