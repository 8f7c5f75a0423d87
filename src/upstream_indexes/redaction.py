"""How to name a database without its password: every message and log line goes through redact().

Redaction by structure: the password field of a URL, a URL query, a key=value conninfo, a SQL
literal. Never by searching for a known password: one equal to the user or the database (or "ql")
would mangle every mention of them. libpq's messages name host, port, user and database, never the
password; a URL whose password libpq would misread as a host or port is refused (config.normalize_dsn).
"""

import re

_URL_PASSWORD = re.compile(r"(\b[a-z][\w+.-]*://[^:/?#@\s]*:)([^/?#\s]*)(@)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&']+)", re.IGNORECASE)
# A blocking session's query (CREATE/ALTER ROLE ... PASSWORD '...'), maybe cut short mid-literal.
_SQL_PASSWORD = re.compile(r"(\bPASSWORD\s+)'(?:[^']|'')*(?:'|$)", re.IGNORECASE)


def redact(text: str) -> str:
    """Replace the password in every DSN, URL or SQL role statement in `text` with ***."""
    text = _URL_PASSWORD.sub(lambda m: m.group(1) + ("***" if m.group(2) else "") + m.group(3), text)
    text = _QUERY_PASSWORD.sub(r"\1***", text)
    text = _KV_PASSWORD.sub(r"\1***", text)
    return _SQL_PASSWORD.sub(r"\1'***'", text)
