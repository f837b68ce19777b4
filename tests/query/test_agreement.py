"""The same answer in SQL and in Python: records and filters drawn by Hypothesis, the
records written to a real database, and the ids the database selects with a filter's
SQL equal to those its Python evaluator passes, on SQLite and on PostgreSQL. Nulls,
case (unicode included), `%` and `_`, numbers of mixed kinds and dates are drawn on
purpose."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.db import tracking_database
from runtime.query import compile_filter
from tests.databases import BACKENDS

proxy = peewee.DatabaseProxy()


class Sample(peewee.Model):
    text = peewee.CharField(null=True)
    label = peewee.TextField(default="")  # never null: no guard in its SQL
    number = peewee.IntegerField(null=True)
    ratio = peewee.FloatField(null=True)
    price = peewee.DecimalField(max_digits=12, decimal_places=2, null=True)
    flag = peewee.BooleanField(null=True)
    at = peewee.DateTimeField(null=True)
    day = peewee.DateField(null=True)

    class Meta:
        database = proxy
        table_name = "query_samples"


@pytest.fixture(scope="module", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    url = None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        url = server.database()
    target = url or str(Path(tmp_path_factory.mktemp("query")) / "agreement.sqlite3")
    db = tracking_database(target)
    proxy.initialize(db)
    db.connect()
    db.create_tables([Sample])
    if request.param == "postgresql":
        # A collation that does not sort by code point (ICU's: 'a' < 'B'), as a server
        # in a real locale has: the filter's text order must not follow it.
        for column in ("text", "label"):
            db.execute_sql(
                f'ALTER TABLE query_samples ALTER COLUMN {column} TYPE text COLLATE "und-x-icu"'
            )
    yield request.param
    db.close()
    proxy.initialize(None)
    if url:
        server.drop(url)


# Small pools that records and filters share, so that equality hits; wide ranges beside.
ALPHABET = st.one_of(
    st.sampled_from("aAzZ%_\\'\" "),  # LIKE's wildcards, the quotes and escape of the language
    st.sampled_from("ςσΣſsSµμéÉßẞİiıKkǅǆ"),  # noqa: RUF001 - where case folding differs
    st.sampled_from("日本ﬀ\U0001f600\U00010400\U00010428"),  # wide, and beyond the BMP
    st.characters(codec="utf-8", exclude_characters="\x00"),
)
# Joined by hand: st.text() would merge the alphabets into one range of code points,
# where the few characters above are rarely drawn.
texts = st.lists(ALPHABET, max_size=6).map("".join)
integers = st.integers(-3, 3) | st.integers(-(2**31), 2**31 - 1)
floats = st.sampled_from([0.0, -0.0, 0.5, 1.0, -1.5]) | st.floats(
    allow_nan=False, allow_infinity=False, width=32
)
prices = st.decimals(
    min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False
)
times = st.sampled_from(
    [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 0, 1)]
) | st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1))
days = st.sampled_from([dt.date(2024, 1, 1)]) | st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1))

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "text": texts,
    "label": texts,
    "number": integers,
    "ratio": floats,
    "price": prices,
    "flag": st.booleans(),
    "at": times,
    "day": days,
}


def nullable(name: str) -> st.SearchStrategy[Any]:
    return VALUES[name] if name == "label" else st.none() | VALUES[name]


records = st.lists(st.fixed_dictionaries({name: nullable(name) for name in VALUES}), max_size=8)


def quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'"{escaped}"'
        if text.count("'") % 2
        else f"'{text.replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}'"
    )


def literal(name: str, value: Any) -> st.SearchStrategy[str]:
    """`value` of field `name` as filter text, in the forms the language accepts for it."""
    if value is None:
        return st.just("null")
    if isinstance(value, bool):
        return st.just("true" if value else "false")
    if isinstance(value, int) and name == "ratio":
        return st.just(str(value))
    if isinstance(value, int | float):
        return st.just(repr(value))
    if isinstance(value, decimal.Decimal):
        return st.sampled_from([str(value), repr(float(value))])
    if isinstance(value, dt.datetime):
        return st.sampled_from(
            [value.isoformat(), value.isoformat(" "), value.date().isoformat()]
        ).map(quoted)
    if isinstance(value, dt.date):
        return st.sampled_from([value.isoformat(), f"{value.isoformat()}T10:00:00"]).map(quoted)
    return st.just(quoted(value))


def pool(name: str, rows: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Values for a filter on `name`: the records' own, often, so that equality hits."""
    own = [row[name] for row in rows if row[name] is not None]
    drawn = floats | integers if name == "ratio" else VALUES[name]  # ints for floats too
    return st.sampled_from(own) | drawn if own else drawn


@st.composite
def needle(draw: st.DrawFn, name: str, rows: list[dict[str, Any]]) -> str:
    """Text to look for: a piece of some record's text, its case changed, or any text."""
    own = [row[name] for row in rows if row[name]]
    text = draw(texts)
    if own and draw(st.integers(0, 3)):
        whole = draw(st.sampled_from(own))
        start = draw(st.integers(0, len(whole)))
        text = whole[start : draw(st.integers(start, len(whole)))]
    change = draw(st.sampled_from([str, str.upper, str.lower, str.swapcase, str.casefold]))
    return change(text)


@st.composite
def comparison(draw: st.DrawFn, rows: list[dict[str, Any]]) -> str:
    # Text half the time: case, collation and unicode are where databases differ most.
    name = draw(st.sampled_from(["text", "label"]) | st.sampled_from(sorted(VALUES)))
    values = pool(name, rows)
    if name in ("text", "label") and draw(st.booleans()):
        found = draw(needle(name, rows))
        return f"{name} {draw(st.sampled_from(['~', '!~']))} {quoted(found)}"
    if draw(st.integers(0, 5)) == 0:
        items = draw(st.lists(st.none() | values, min_size=1, max_size=3))
        listed = ", ".join(draw(literal(name, v)) for v in items)
        return f"{name} {draw(st.sampled_from(['in', '!in']))} ({listed})"
    value = draw(st.none() | values)
    operators = ["=", "!="] if value is None else ["=", "!=", "<", "<=", ">", ">="]
    return f"{name} {draw(st.sampled_from(operators))} {draw(literal(name, value))}"


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str]:
    """Records, and a filter made with their values in mind."""
    rows = draw(records)
    expression = st.recursive(
        comparison(rows),
        lambda inner: st.one_of(
            inner.map(lambda e: f"!({e})"),
            st.lists(inner, min_size=2, max_size=3).map(lambda es: "(" + " && ".join(es) + ")"),
            st.lists(inner, min_size=2, max_size=3).map(lambda es: "(" + " || ".join(es) + ")"),
        ),
        max_leaves=6,
    )
    return rows, draw(expression)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_sql_and_python_select_the_same_records(
    database: str, scenario: tuple[list[dict[str, Any]], str]
) -> None:
    rows, expression = scenario
    db = proxy.obj
    with db.atomic():
        Sample.delete().execute()
        if rows:
            Sample.insert_many(rows).execute()
    compiled = compile_filter(expression, Sample, None)
    in_sql = {r.id for r in Sample.select(Sample.id).where(compiled.where())}
    in_python = {r.id for r in Sample.select() if compiled.matches(r.__data__)}
    assert in_sql == in_python, (expression, list(Sample.select().dicts()))


WORDS = ["a", "B", "é", "É", "ς", "Σ", "50%", "5_0", "ß", "SS", "日本", "\U0001f600"]


@pytest.mark.parametrize(
    "expression, expected",
    [
        # by code point, whatever the column's collation ('B' < 'a' < 'é')
        ("label < 'a'", {"B", "5_0", "50%", "SS"}),
        ("label >= 'é'", {"é", "ς", "Σ", "日本", "\U0001f600"}),
        # folded character by character; % and _ are plain characters
        ("label ~ 'é'", {"é", "É"}),
        ("label ~ 'σ'", {"ς", "Σ"}),  # noqa: RUF001
        ("label ~ '%'", {"50%"}),
        ("label ~ '_'", {"5_0"}),
        ("label ~ 'ss'", {"SS"}),  # 'ß' folds to two characters: kept as it is
        ("label !~ 'a'", set(WORDS) - {"a"}),
        ("label in ('a', 'B')", {"a", "B"}),
    ],
)
def test_text_rules_on_both_databases(database: str, expression: str, expected: set[str]) -> None:
    with proxy.obj.atomic():
        Sample.delete().execute()
        Sample.insert_many([{"label": w} for w in WORDS]).execute()
    compiled = compile_filter(expression, Sample, None)
    in_sql = {r.label for r in Sample.select().where(compiled.where())}
    in_python = {r.label for r in Sample.select() if compiled.matches(r.__data__)}
    assert in_sql == in_python == expected
