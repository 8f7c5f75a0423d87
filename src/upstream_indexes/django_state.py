"""`invoke django-state`: what the upstream app's Django models must say about the indexes and
constraints of migrations/ (the one source of truth), generated from it.

Django knows only the indexes and constraints its migration state holds. Declaring ours in each
model's Meta and recording them in the state keeps models and state in agreement, so
makemigrations proposes nothing for them: neither an AddIndex / AddConstraint (a second, blocking
CREATE INDEX or ADD CONSTRAINT of something that exists) when a model declares them, nor a Remove
when the state has them and a model does not. The output is one Python module: the Meta.indexes
and Meta.constraints lines as a comment to paste into each model, and a Django migration
recording the same with SeparateDatabaseAndState, state only (database_operations=[]), so
`manage.py migrate` runs no SQL for it.

Each kind as Django says it: an index as models.Index (a partial one with condition=Q(...)); a
unique index as models.UniqueConstraint (Django's only unique index), unless a later migration
promotes it, whose UniqueConstraint then stands for both; a CHECK as models.CheckConstraint; a
foreign key is the model's ForeignKey field (nothing to add, said in a comment), as is a PRIMARY
KEY. A WHERE or CHECK becomes Q(...) when it is a conjunction or disjunction of comparisons of a
column with a value or another column, IS [NOT] NULL, IN (...) or a boolean column; anything else
(and an expression key, an operator class or collation of its own) is refused, naming it.

Fields are spelled as the migration files spell the columns: Django accepts a field's column
name (its attname, e.g. customer_id for the ForeignKey customer), so nothing is guessed.

Django's models.Index names are at most 30 characters (system check models.E034), PostgreSQL's
63. An index with a longer name (`invoke new --long-name`) is left out of both halves, and the
output says so: declared in Meta it would fail Django's checks, recorded in the state alone it
would make makemigrations propose a RemoveIndex. Left out of both, Django neither knows it nor
proposes anything for it, as with any index built outside Django. (A constraint's name has no
such limit.)
"""

import json
import re
from dataclasses import dataclass

from .defaults import DJANGO_MAX_NAME as MAX_NAME
from .errors import ToolError
from .grammar_tokens import tokens
from .migration_kinds import Kind
from .migrations import IndexMigration
from .statement import DESC, NULLS_FIRST, IndexDefinition

APP_LABEL = "upstream"
_MIGRATION_NAME = re.compile(r"^\w+$")
_LOOKUPS = {"=": "", "<": "__lt", "<=": "__lte", ">": "__gt", ">=": "__gte"}


@dataclass(frozen=True)
class DjangoObject:
    """One index or constraint as Django declares it on one model."""

    model_name: str  # Django's lower-case model name: the table is upstream_<model_name>
    table: str
    meta: str  # "indexes" or "constraints": the Meta list it goes in
    code: str  # e.g. models.Index(fields=[...], name="...")

    @property
    def operation(self) -> str:
        return "AddIndex" if self.meta == "indexes" else "AddConstraint"

    @property
    def argument(self) -> str:
        return "index" if self.meta == "indexes" else "constraint"


def too_long(migrations: list[IndexMigration]) -> list[IndexMigration]:
    """The migrations whose index Django would declare as a models.Index, with a name none can carry."""
    return [m for m in migrations if m.kind == Kind.INDEX and not m.index_definition.unique
            and len(m.index) > MAX_NAME]


def django_objects(migrations: list[IndexMigration]) -> tuple[list[DjangoObject], list[str]]:
    """Each migration as Django declares it, and a note for each that the model says otherwise (those
    too_long are left out: the caller says so)."""
    promoted = {m.index for m in migrations if m.kind == Kind.PROMOTION}
    left_out = too_long(migrations)
    objects, notes = [], []
    for m in migrations:
        if m in left_out:
            continue
        model = _model_name(m)
        if m.kind == Kind.INDEX and m.index_definition.unique and m.index in promoted:
            continue  # its promotion's UniqueConstraint stands for it
        if m.kind == Kind.FOREIGN_KEY:
            notes.append(f"{m.id}: the foreign key {m.index} is the model \"{model}\"'s ForeignKey field "
                         f"({', '.join(m.constraint.columns)}): nothing to add to Meta")
        elif m.kind == Kind.PROMOTION and m.constraint.type == "primary key":
            notes.append(f"{m.id}: the primary key {m.index} is the model \"{model}\"'s primary_key=True field: "
                         "nothing to add to Meta")
        elif m.kind == Kind.CHECK:
            objects.append(DjangoObject(model, m.table, "constraints",
                                        f"models.CheckConstraint(condition={_q(m, m.constraint.expression)}, "
                                        f"name={json.dumps(m.index)})"))
        elif m.kind == Kind.PROMOTION or m.index_definition.unique:
            objects.append(DjangoObject(model, m.table, "constraints", _unique(m, m.index_definition)))
        else:
            objects.append(DjangoObject(model, m.table, "indexes", _index(m, m.index_definition)))
    return objects, notes


def _model_name(m: IndexMigration) -> str:
    prefix = f"{APP_LABEL}_"
    if not m.table.startswith(prefix):
        raise ToolError(f"{m.id}: table {m.table} is not one of the {APP_LABEL} app's ({prefix}<model>)")
    return m.table.removeprefix(prefix)


def _fields(m: IndexMigration, index: IndexDefinition, ordered: bool) -> list[str]:
    fields = []
    for key in index.keys:
        if not key.column or key.collation or key.opclass:
            raise ToolError(f"{m.id}: key `{key.sql()}` is an expression or has its own collation or operator "
                            "class: declare it in the model by hand (models.Index(<expression>, ...))")
        if key.option not in (0, DESC | NULLS_FIRST):  # ASC NULLS LAST and DESC NULLS FIRST, the defaults
            raise ToolError(f"{m.id}: {key.column}'s NULLS order is not the default; Django cannot say it")
        if key.option and not ordered:
            raise ToolError(f"{m.id}: {key.column} DESC in a unique index: UniqueConstraint(fields=...) has no order")
        fields.append(f"-{key.column}" if key.option & DESC else key.column)
    return fields


def _extras(m: IndexMigration, index: IndexDefinition) -> str:
    text = f", include={_list(list(index.include))}" if index.include else ""
    text += ", nulls_distinct=False" if index.nulls_not_distinct else ""
    return text + (f", condition={_q(m, index.predicate)}" if index.predicate else "")


def _index(m: IndexMigration, index: IndexDefinition) -> str:
    return f"models.Index(fields={_list(_fields(m, index, True))}, name={json.dumps(m.index)}{_extras(m, index)})"


def _unique(m: IndexMigration, index: IndexDefinition) -> str:
    return (f"models.UniqueConstraint(fields={_list(_fields(m, index, False))}, name={json.dumps(m.index)}"
            f"{_extras(m, index)})")


def _q(m: IndexMigration, expression: str) -> str:
    """A WHERE or CHECK as Django's Q(...), or a ToolError naming it."""
    found = tokens(expression)
    words = [t.text.upper() if t.kind == "word" else t.text for t in found]
    refuse = ToolError(f"{m.id}: `{expression}` has no Q(...) here (comparisons of a column with a value or "
                       "another column, IS [NOT] NULL, IN (...), a boolean column, joined by AND or OR): write the "
                       "condition in the model by hand")
    if "AND" in words and "OR" in words:
        raise refuse
    joiner = " | " if "OR" in words else " & "
    terms, current = [], []
    for token, word in zip(found, words):
        if word in ("AND", "OR"):
            terms.append(current)
            current = []
        else:
            current.append((token, word))
    terms.append(current)
    return joiner.join(_term(term, refuse) for term in terms)


def _term(term: list, refuse: ToolError) -> str:
    texts = [word for _, word in term]
    kinds = [token.kind for token, _ in term]
    column = term[0][0].text.lower() if term and kinds[0] == "word" else None
    if column is None:
        if texts[:1] == ["NOT"] and len(term) == 2 and kinds[1] == "word":
            return f"models.Q({term[1][0].text.lower()}=False)"
        raise refuse
    rest, rest_kinds = texts[1:], kinds[1:]
    if not rest:
        return f"models.Q({column}=True)"
    if rest in (["IS", "NULL"], ["IS", "NOT", "NULL"]):
        return f"models.Q({column}__isnull={'True' if len(rest) == 2 else 'False'})"
    if rest[0] == "IN" and rest[1:2] == ["("] and rest[-1] == ")":
        values = [_value(token, refuse) for token, word in term[3:-1] if word != ","]
        return f"models.Q({column}__in=[{', '.join(values)}])"
    if len(rest) == 2 and rest[0] in (*_LOOKUPS, "<>", "!="):
        other = term[2][0]
        value = f"models.F({json.dumps(other.text.lower())})" if rest_kinds[1] == "word" and other.upper() not in (
            "TRUE", "FALSE") else _value(other, refuse)
        if rest[0] in ("<>", "!="):
            return f"~models.Q({column}={value})"
        return f"models.Q({column}{_LOOKUPS[rest[0]]}={value})"
    raise refuse


def _value(token, refuse: ToolError) -> str:
    if token.kind == "literal" and token.text.startswith("'") and token.text.endswith("'"):
        return json.dumps(token.text[1:-1].replace("''", "'"))
    if token.kind == "literal" and re.fullmatch(r"-?\d+(\.\d+)?", token.text):
        return token.text
    if token.kind == "word" and token.upper() in ("TRUE", "FALSE"):
        return token.text.capitalize()
    raise refuse


def module(migrations: list[IndexMigration], after: str) -> str:
    """The Django migration module, Meta lines in its opening comment."""
    if not _MIGRATION_NAME.match(after or ""):
        raise ToolError(f"--after must name the {APP_LABEL} app's latest migration, e.g. 0018_add_claim_indexes "
                        f"(a file name in {APP_LABEL}/migrations/ without .py)")
    objects, notes = django_objects(migrations)
    left_out = too_long(migrations)
    lines = [
        "# Generated by `invoke django-state` (upstream-indexes) from its migrations/; regenerate, don't edit.",
        "#",
    ]
    if left_out:
        lines += [f"# Left out: a name longer than Django's {MAX_NAME} characters (models.E034), so neither declared",
                  "# nor recorded; Django does not know these indexes and proposes nothing for them:"]
        lines += [f"#   {m.index} on {m.table} ({m.id})" for m in left_out]
        lines.append("#")
    lines += [
        "# 1. Add each index to its model's Meta.indexes and each constraint to its Meta.constraints, next to",
        "#    those already there:",
        "#",
    ]
    for model_name in dict.fromkeys(o.model_name for o in objects):
        for meta in ("indexes", "constraints"):
            of_model = [o for o in objects if o.model_name == model_name and o.meta == meta]
            if of_model:
                lines.append(f'#   model "{model_name}" (table {of_model[0].table}), Meta.{meta} += [')
                lines += [f"#       {o.code}," for o in of_model]
                lines.append("#   ]")
    lines += [f"#   {note}" for note in notes]
    lines += [
        "#",
        f"# 2. Save this file as the app's next migration, after {after}, e.g.",
        f"#    {APP_LABEL}/migrations/NNNN_covering_indexes.py. It records them in Django's",
        "#    migration state only: `manage.py migrate` runs no SQL for it, and `makemigrations`",
        "#    then finds the models and the state in agreement. The indexes and constraints themselves",
        "#    are made, on every database, by `invoke migrate` (CONCURRENTLY, NOT VALID then VALIDATE).",
        "",
        "from django.db import migrations, models",
        "",
        "",
        "class Migration(migrations.Migration):",
        "",
        "    dependencies = [",
        f"        ({json.dumps(APP_LABEL)}, {json.dumps(after)}),",
        "    ]",
        "",
        "    operations = [",
        "        migrations.SeparateDatabaseAndState(",
        "            state_operations=[",
    ]
    for o in objects:
        lines += [
            f"                migrations.{o.operation}(",
            f"                    model_name={json.dumps(o.model_name)},",
            f"                    {o.argument}={o.code},",
            "                ),",
        ]
    lines += [
        "            ],",
        "            database_operations=[],",
        "        ),",
        "    ]",
    ]
    return "\n".join(lines) + "\n"


def _list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"
