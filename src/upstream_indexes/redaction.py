"""How to name a database without its password (docs/security.md): a DSN the tool holds is shown by
shown_dsn(), a word typed on the command line by shown_word(), and every other line goes through redact().

By structure, never by searching for a known password: one equal to the user, the database (or "ql")
would mangle every mention of them. The structure is libpq's own (fe-connect.c):
- which options are secret: those libpq marks as not to be shown (password, sslpassword,
  oauth_client_secret, and the debug-only ones such as the SCRAM keys);
- how it splits a URL: the user runs to the first ':', the password on to the first '@' (so '?', '#'
  and ':' are the password's), a query parameter (keyword percent-decoded) to the next '&';
- how it splits key=value: a value runs to the next whitespace, a quoted one to its closing quote,
  and '\\' escapes the next character in both.
shown_dsn() proves its work: libpq must parse the result as the same options, only the secret values
changed to ***; otherwise nothing of the DSN is shown. What libpq cannot parse is not shown either
(config.normalize_dsn names the problem without quoting it: libpq's message would).
"""

import re
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

HIDDEN = "***"
_SPACE = " \t\n\r\f\v"  # C's isspace(), which libpq uses (Python's \s also matches Unicode spaces)


# The options libpq itself never displays: dispchar "*" (a password field) or "D" (debug only). PQconninfoParse
# of nothing lists every option, reading no environment or service file.
SECRET_OPTIONS = frozenset(option.keyword.decode() for option in psycopg.pq.Conninfo.parse(b"")
                           if option.dispchar in (b"*", b"D"))


def shown_dsn(dsn: str) -> str | None:
    """`dsn` as written, the value of every secret option replaced by ***; None when libpq cannot parse it,
    would read a piece of its password as something else (misread), or does not read the result as the
    same options with only those values changed."""
    try:
        options = conninfo_to_dict(dsn)
        shown = _hide_in_url(dsn) if _is_url(dsn) else _hide_in_keywords(dsn)
        read_back = conninfo_to_dict(shown)
    except psycopg.ProgrammingError:
        return None
    hidden = {key: HIDDEN if key in SECRET_OPTIONS and value else value for key, value in options.items()}
    if misread(dsn, options) or read_back != hidden:
        return None
    return redact(shown)  # a value may itself hold a URL (dbname='postgresql://...')


def misread(dsn: str, options: dict[str, str]) -> str | None:
    """Why libpq would read a piece of what was meant as the password of `dsn` as a host, port or database
    (`options`: as libpq parsed it), or None. libpq ends a URL's user and password at the first '@' or '/';
    '#' is the password's for libpq, not for other URL parsers; without '@', user:password is host:port."""
    if _is_url(dsn):
        _, userinfo, rest = _url_parts(dsn)
        if "@" in rest.partition("?")[0] or "#" in (userinfo or ""):
            return "the URL's user or password holds '@', '/' or '#'; percent-encode them (%40, %2F, %23)"
    if any(port and not port.isdigit() for port in options.get("port", "").split(",")):
        return "a port that is not a number"
    return None


def shown_word(word: str) -> str | None:
    """A command-line word to quote in an error: as typed when it could be a task or flag name (or a value
    such as 10 or 1GB), a DSN as shown_dsn shows it; None for anything else, which may be a piece of a
    DSN the shell split at a space."""
    if re.fullmatch(r"-{0,2}[\w.-]+", word):
        return word
    return shown_dsn(word) if ("://" in word or "=" in word) else None


def _is_url(dsn: str) -> bool:
    return dsn.startswith(("postgresql://", "postgres://"))  # libpq's two URI designators, case-sensitive


def _url_parts(url: str) -> tuple[str, str | None, str]:
    """The scheme, the user info (None without an '@' before the first '/') and the rest of a URL."""
    scheme, _, rest = url.partition("://")
    userinfo_end = next((i for i, char in enumerate(rest) if char in "@/"), len(rest))
    if rest[userinfo_end:userinfo_end + 1] == "@":
        return scheme, rest[:userinfo_end], rest[userinfo_end + 1:]
    return scheme, None, rest


def _hide_in_url(url: str) -> str:
    scheme, userinfo, rest = _url_parts(url)
    shown_userinfo = ""
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        shown_userinfo = user + colon + (HIDDEN if password else "") + "@"
    hosts_and_path, question_mark, query = rest.partition("?")
    if question_mark:
        query = "&".join(_hide_in_parameter(parameter) for parameter in query.split("&"))
    return f"{scheme}://{shown_userinfo}{hosts_and_path}{question_mark}{query}"


def _hide_in_parameter(parameter: str) -> str:
    keyword, equals, value = parameter.partition("=")
    return keyword + equals + HIDDEN if unquote(keyword) in SECRET_OPTIONS and value else parameter


# One keyword = value pair as libpq's conninfo_parse reads it (whitespace allowed around '=').
_PAIR = re.compile(rf"(?P<keyword>[^={_SPACE}]+)(?P<equals>[{_SPACE}]*=[{_SPACE}]*)"
                   rf"(?P<value>'(?:\\.|[^'\\])*'|(?:\\.|[^{_SPACE}\\])*\\?)", re.DOTALL)


def _hide_in_keywords(conninfo: str) -> str:
    def hide(pair: re.Match) -> str:
        if pair["keyword"] in SECRET_OPTIONS and pair["value"] not in ("", "''"):
            return pair["keyword"] + pair["equals"] + HIDDEN
        return pair[0]

    return _PAIR.sub(hide, conninfo)


# --- free text: libpq's and the server's messages, a blocking session's query -------------------------------

_SECRET_KEYWORDS = "|".join(sorted(SECRET_OPTIONS))
# A URL in a message: the password runs to the last '@' of the word (a '/' or '@' in it, which libpq would
# misread, is hidden too).
_URL_PASSWORD = re.compile(r"(\b[a-z][\w+.-]*://[^:@/\s]*:)(\S+)(@)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(rf"([?&](?:{_SECRET_KEYWORDS})=)[^&\s]*", re.IGNORECASE)
# key=value (not a URL's query parameter): quoted to the closing quote (or the end), else to whitespace.
_KV_PASSWORD = re.compile(rf"((?<![?&\w])(?:{_SECRET_KEYWORDS})\s*=\s*)('(?:\\.|[^'\\])*(?:'|$)|(?:\\.|[^\s\\])+)",
                          re.IGNORECASE | re.DOTALL)
# A blocking session's query (CREATE/ALTER ROLE ... PASSWORD '...'), maybe cut short mid-literal.
_SQL_PASSWORD = re.compile(r"(\bPASSWORD\s+)'(?:[^']|'')*(?:'|$)", re.IGNORECASE)


def redact(text: str) -> str:
    """Replace the password in every URL, key=value pair or SQL role statement in `text` with ***."""
    text = _URL_PASSWORD.sub(rf"\1{HIDDEN}\3", text)
    text = _QUERY_PASSWORD.sub(rf"\1{HIDDEN}", text)
    text = _KV_PASSWORD.sub(rf"\1{HIDDEN}", text)
    return _SQL_PASSWORD.sub(rf"\1'{HIDDEN}'", text)
