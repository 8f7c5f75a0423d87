"""The pieces every statement parser of grammar.py shares: sqlparse's tokens of one statement (the
lexer yoyo's splitter uses) and a cursor over them that refuses, in one line, what a form does not hold.
"""

import re
from dataclasses import dataclass

from .errors import GrammarError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class Token:
    kind: str  # word | quoted | punct | literal | other
    text: str
    start: int
    end: int

    def upper(self) -> str:
        return self.text.upper()


def tokens(sql: str) -> list[Token]:
    """sqlparse's tokens without whitespace and comments; a keyword of several words ("IF NOT EXISTS",
    "DESC NULLS LAST") as one token per word, each with its place in `sql`."""
    out, position = [], 0
    from sqlparse import lexer, tokens as T  # loaded when a file is read, not for `invoke --list`

    for ttype, value in lexer.tokenize(sql):
        start, position = position, position + len(value)
        if ttype in T.Whitespace or ttype in T.Newline or ttype in T.Comment:
            continue
        if ttype in T.Keyword or ttype in T.Name:
            offset = 0
            for word in value.split():
                at = value.index(word, offset)
                out.append(Token("word", word, start + at, start + at + len(word)))
                offset = at + len(word)
        elif ttype in T.Literal.String.Symbol:
            out.append(Token("quoted", value, start, position))
        elif ttype in T.Punctuation and value in "(),;":
            out.append(Token("punct", value, start, position))
        elif ttype in T.Literal:
            out.append(Token("literal", value, start, position))
        else:
            out.append(Token("other", value, start, position))
    return out


def words(expression: str) -> list[str]:
    """The words an expression holds, lower-cased: its column names among them (with keywords and
    function names, which a caller filters out by the table's columns)."""
    return [t.text.lower() for t in tokens(expression) if t.kind == "word"]


def is_call(expression: str | None) -> bool:
    """`lower(name)`: a function call PostgreSQL accepts as an index key without parentheses."""
    found = tokens(expression or "")
    return (len(found) >= 3 and found[0].kind == "word" and found[1].text == "("
            and closing(found, 1) == len(found) - 1)


def closing(tokens: list[Token], opening: int) -> int:
    """The index of the `)` matching the `(` at `opening`."""
    depth = 0
    for i in range(opening, len(tokens)):
        if tokens[i].kind == "punct" and tokens[i].text == "(":
            depth += 1
        elif tokens[i].kind == "punct" and tokens[i].text == ")":
            depth -= 1
            if depth == 0:
                return i
    raise GrammarError("unbalanced parentheses")


class Parser:
    """A cursor over one statement's tokens."""

    def __init__(self, sql: str):
        self.sql = sql
        self.tokens = tokens(sql)
        while self.tokens and self.tokens[-1].text == ";":
            self.tokens.pop()
        self.at = 0
        if any(t.kind == "punct" and t.text == ";" for t in self.tokens):
            raise GrammarError(f"`{self.shown()}`: one statement, not several")

    def words_ahead(self, *words: str) -> bool:
        ahead = self.tokens[self.at:self.at + len(words)]
        return len(ahead) == len(words) and all(t.kind == "word" and t.upper() == w for t, w in zip(ahead, words))

    def accept(self, *words: str) -> bool:
        if self.words_ahead(*words):
            self.at += len(words)
            return True
        return False

    def expect(self, *words: str, why: str = "") -> None:
        if not self.accept(*words):
            raise GrammarError(f"expected {' '.join(words)} {self.where()}" + (f" ({why})" if why else ""))

    def where(self) -> str:
        return f"after `{self.sql[:self.tokens[self.at - 1].end].split(None)[-1]}`" if self.at else "at the start"

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def identifier(self, what: str) -> str:
        token = self.peek()
        if token is not None and token.kind == "quoted":
            raise GrammarError(f"{what} {token.text}: write names as plain lower-case identifiers, not quoted")
        if token is None or token.kind != "word" or not IDENTIFIER.match(token.text):
            raise GrammarError(f"expected {what} {self.where()}")
        if self.at + 1 < len(self.tokens) and self.tokens[self.at + 1].text == ".":
            raise GrammarError(f"{what} {token.text}.{self.tokens[self.at + 2].text if self.at + 2 < len(self.tokens) else ''}: "
                               "no schema: the runner finds tables and indexes on the search path")
        self.at += 1
        return token.text.lower()

    def group(self, what: str) -> tuple[str, list[Token]]:
        """A parenthesised group: the text inside it and its tokens."""
        token = self.peek()
        if token is None or token.text != "(":
            raise GrammarError(f"expected ( and {what} {self.where()}")
        end = closing(self.tokens, self.at)
        inner = self.tokens[self.at + 1:end]
        self.at = end + 1
        text = self.sql[token.end:self.tokens[end].start].strip()
        if not text:
            raise GrammarError(f"empty () where {what} belongs")
        return text, inner

    def identifiers(self, what: str) -> tuple[str, ...]:
        """(a, b, c)."""
        _, inner = self.group(what)
        names = []
        for part in split_commas(inner):
            if len(part) != 1 or part[0].kind != "word" or not IDENTIFIER.match(part[0].text):
                raise GrammarError(f"{what}: expected plain column names, found `{self._text(part)}`")
            names.append(part[0].text.lower())
        return tuple(names)

    def shown(self) -> str:
        """The statement in one line, for a message: without its comments and `;`, cut at 80 characters."""
        text = one_line(self.sql[self.tokens[0].start:self.tokens[-1].end])
        return text if len(text) <= 80 else text[:77] + "..."

    def rest(self) -> str:
        """The text from here to the end of the statement (its `;` excluded)."""
        if self.at >= len(self.tokens):
            return ""
        text = self.sql[self.tokens[self.at].start:self.tokens[-1].end]
        self.at = len(self.tokens)
        return text

    def end(self) -> None:
        if self.at < len(self.tokens):
            where = self.where()
            raise GrammarError(f"unexpected `{self.rest()}` {where}: a statement holds one action")

    def _text(self, tokens: list[Token]) -> str:
        return self.sql[tokens[0].start:tokens[-1].end] if tokens else ""


def split_commas(tokens: list[Token]) -> list[list[Token]]:
    parts, depth, current = [], 0, []
    for token in tokens:
        if token.kind == "punct" and token.text == "(":
            depth += 1
        elif token.kind == "punct" and token.text == ")":
            depth -= 1
        if token.kind == "punct" and token.text == "," and depth == 0:
            parts.append(current)
            current = []
        else:
            current.append(token)
    parts.append(current)
    if any(not part for part in parts):
        raise GrammarError("an empty item in a list")
    return parts


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
