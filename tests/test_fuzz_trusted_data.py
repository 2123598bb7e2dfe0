"""Property-based fuzzing of the three ways data went silently wrong (issue 15): dates, names and
numbers, each against an oracle written independently of the code under test.

- Dates: a random day rendered in a random layout (ISO, day first, month first, dotted, with a
  time, an offset, other scripts' digits, spaces ...). Without a date format only ISO 8601 is
  read, and always as the day it names; with the layout's format, the day is read back exactly.
- Names: random Unicode text, and names built to look alike (decomposed, with zero-width or
  bidirectional characters, odd spaces). Accepted exactly when the rule (NFC, 1-200 characters,
  no Cc/Cf/Cs/Co/Cn/Zl/Zp, no space but U+0020, no default-ignorable code point, no surrounding
  space) holds, computed here from the Unicode categories; returned unchanged when accepted.
- Numbers: random text over digits of several scripts, separators, signs, exponents, words, and
  floats printed every way. Accepted only as plain ASCII notation, and then as ``float(text)``.

Each class also goes through the store (SQLite and PostgreSQL): a batch is stored exactly as the
oracle says or refused whole with nothing written. ``COUNTS`` tallies the values tried (printed
with ``-s``; docs/reliability.md quotes them). Derandomised, no example database.
"""

import datetime as dt
import math
import re
import unicodedata
from collections import Counter

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_mem.live import Decider
from bayes_mem.live.validate import check_name
from bayes_mem.store import IngestError, Store, schema
from bayes_mem.store.ingest import MAX_YEAR, MIN_YEAR, parse_date, parse_float, parse_timestamp

MANY = settings(max_examples=1500, deadline=None, derandomize=True, database=None)
STORE = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\nvalues tried:", dict(sorted(COUNTS.items())))


# ================================================================== names
# Default_Ignorable_Code_Point (Unicode 15 DerivedCoreProperties.txt) and U+2800 BRAILLE PATTERN
# BLANK: invisible whatever their category
IGNORABLE = [(0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
             (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
             (0x2060, 0x206F), (0x2800, 0x2800), (0x3164, 0x3164), (0xFE00, 0xFE0F),
             (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
             (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF)]  # fmt: skip
REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def name_ok(s: str) -> bool:
    """The name rule, from the Unicode database (independent of ``check_name``)."""
    if not 1 <= len(s) <= 200 or s[0] == " " or s[-1] == " ":
        return False
    if unicodedata.normalize("NFC", s) != s:
        return False
    for c in s:
        cat = unicodedata.category(c)
        if cat in REFUSED_CATEGORIES or (cat == "Zs" and c != " "):
            return False
        if any(lo <= ord(c) <= hi for lo, hi in IGNORABLE):
            return False
    return True


LOOKALIKE_PARTS = ["A", "a", "\u00c5", "A\u030a", "e\u0301", "\u00e9", " ", "\u00a0", "\u200b",
                   "\u200d", "\u2060", "\ufeff", "\u202e", "\u3000", "\t", "\n", "\u2028",
                   "\ufe0f", "\u3164", "\u034f", "x", "1", "_", "-", "\U0001f4c8",
                   "\u0661"]  # fmt: skip
names = st.one_of(
    st.text(max_size=12),
    st.lists(st.sampled_from(LOOKALIKE_PARTS), min_size=1, max_size=6).map("".join),
    st.text(st.characters(codec="ascii"), min_size=1, max_size=10),
    st.sampled_from(["a" * 200, "a" * 201, "é" * 200, " a", "a ", "AAPL", "\ud800", "\ue000"]),
)


@MANY
@given(s=names)
def test_fuzz_names_accepted_exactly_when_the_rule_holds(s):
    COUNTS["names (check_name)"] += 1
    try:
        out = check_name(s, "symbol")
    except ValueError as exc:
        assert not name_ok(s), f"refused a valid name {s!r}: {exc}"
        assert "symbol" in str(exc)
        return
    assert name_ok(s), f"accepted {s!r}"
    assert out == s  # returned unchanged, never rewritten
    # what only looks like it is refused, so two accepted names never differ by it
    variants = [s + "\u200b", s + " ", " " + s, s + "\u00a0"]
    if unicodedata.normalize("NFD", s) != s:
        variants.append(unicodedata.normalize("NFD", s))
    for v in variants:
        COUNTS["names (check_name)"] += 1
        with pytest.raises(ValueError):
            check_name(v)


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    yield s
    s.close()


def tables(store: Store) -> dict:
    return {t: store.table(t).to_dict("records") for t in ("signals", "outcomes", "returns")}


def encodable(s: str) -> bool:  # pandas (arrow strings) cannot even hold a lone surrogate
    return not any(0xD800 <= ord(c) <= 0xDFFF for c in s)


@STORE
@given(batch=st.lists(names.filter(encodable), min_size=1, max_size=5, unique=True))
def test_fuzz_names_through_the_store_and_the_decider(store, batch):
    COUNTS["names (store, decider)"] += len(batch)
    frame = pd.DataFrame({"symbol": batch, "date": ["2024-01-02"] * len(batch),
                          "return": [0.01] * len(batch)})  # fmt: skip
    before = tables(store)
    try:
        store.ingest_returns(frame, kind="log")
    except IngestError as exc:
        assert not all(name_ok(s) for s in batch)
        assert len(exc.problems) == sum(not name_ok(s) for s in batch)
        assert tables(store) == before
    else:
        assert all(name_ok(s) for s in batch)
        stored = store.table("returns")["symbol"].tolist()
        assert set(batch) <= set(stored)  # exactly as given
        with store.transaction() as conn:  # clean up for the next example
            conn.execute(schema.returns.delete())
    d = Decider(["f"], rng=0)
    for s in batch:
        snap = d.to_json()
        try:
            d.register(s, "f")
        except ValueError:
            assert not name_ok(s) and d.to_json() == snap
        else:
            assert name_ok(s) and s in d


# ================================================================== dates
LAYOUTS = {  # strftime layout -> a date-only strptime format for it (None: not a date)
    "%Y-%m-%d": "%Y-%m-%d", "%Y%m%d": "%Y%m%d", "%d/%m/%Y": "%d/%m/%Y", "%m/%d/%Y": "%m/%d/%Y",
    "%d.%m.%Y": "%d.%m.%Y", "%Y/%m/%d": "%Y/%m/%d", "%d-%m-%Y": "%d-%m-%Y", "%m-%d-%Y": "%m-%d-%Y",
    "%d %b %Y": "%d %b %Y", "%B %d, %Y": "%B %d, %Y", "%y-%m-%d": None,  # %y: refused
    "%Y-%m-%dT%H:%M": None, "%Y-%m-%d %H:%M:%S": None, "%Y-%m-%dT%H:%M%z": None,
    "%Y-%m-%dT%H:%M:%SZ": None, "%Y-%m-%dT00:00": None,
}  # fmt: skip
ARABIC = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")


def iso_day(text: str) -> dt.date | None:
    """The day ISO 8601 text names (the standard library's reading), if it names one."""
    if not text.isascii():
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return day if MIN_YEAR <= day.year <= MAX_YEAR else None


def iso_instant(text: str) -> dt.datetime | None:
    """The UTC instant ISO 8601 text names (a naive one is UTC), if it names one."""
    if not text.isascii():
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if not MIN_YEAR <= when.year <= MAX_YEAR:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


@st.composite
def rendered_dates(draw):
    day = draw(st.dates(dt.date(1950, 1, 1), dt.date.today()))
    layout = draw(st.sampled_from(list(LAYOUTS)))
    hour = draw(st.sampled_from([0, 0, 9, 23]))
    tz = draw(st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-1)),
                               dt.timezone(dt.timedelta(hours=5, minutes=30))]))  # fmt: skip
    when = dt.datetime.combine(day, dt.time(hour), tz)
    text = when.strftime(layout)
    mangle = draw(st.sampled_from(["", "", "", "space", "arabic", "junk"]))
    if mangle == "space":
        text = f" {text}"
    elif mangle == "arabic":
        text = text.translate(ARABIC)
    elif mangle == "junk":
        text = draw(st.text(max_size=12))
    return day, layout, text


@MANY
@given(case=rendered_dates())
def test_fuzz_dates_are_iso_or_refused_never_guessed(case):
    day, layout, text = case
    COUNTS["dates (parse)"] += 1
    want = iso_day(text)
    try:
        got = parse_date(text)
    except ValueError:
        assert want is None, f"ISO date {text!r} refused"
    else:  # only ISO text, read as the day it names
        assert want is not None, f"{text!r} accepted without a format"
        assert got.date() == want
        if layout in ("%Y-%m-%d", "%Y%m%d") and text == day.strftime(layout):
            assert got.date() == day
    fmt = LAYOUTS[layout]
    if fmt is not None and text.isascii() and text == day.strftime(layout):
        COUNTS["dates (parse)"] += 1
        assert parse_date(text, date_format=fmt).date() == day  # said explicitly: exact
    # an outcome's timestamp: ISO 8601 only, its offset applied
    COUNTS["dates (parse)"] += 1
    instant = iso_instant(text)
    try:
        ts = parse_timestamp(text)
    except ValueError:
        assert instant is None, f"ISO timestamp {text!r} refused"
    else:
        assert instant is not None and ts.to_pydatetime() == instant


@STORE
@given(cases=st.lists(rendered_dates(), min_size=1, max_size=5))
def test_fuzz_dates_through_the_store(store, cases, tmp_path_factory):
    COUNTS["dates (store)"] += len(cases)
    texts = [text for _, _, text in cases]
    frame = pd.DataFrame({"symbol": [f"S{i}" for i in range(len(texts))], "date": texts,
                          "return": [0.01] * len(texts)})  # fmt: skip
    path = tmp_path_factory.mktemp("dates") / "r.csv"
    frame.to_csv(path, index=False)
    before = tables(store)
    text_back = pd.read_csv(path, dtype=str, keep_default_na=False)["date"].tolist()
    try:
        store.ingest_returns(path, kind="log")
    except IngestError:
        assert not all(iso_day(t) for t in text_back)
        assert tables(store) == before
        return
    assert all(iso_day(t) for t in text_back)
    stored = store.table("returns").set_index("symbol")["date"]
    for i, t in enumerate(text_back):
        assert stored[f"S{i}"] == iso_day(t)
    with store.transaction() as conn:
        conn.execute(schema.returns.delete())


# ================================================================== numbers
PLAIN = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
numbers = st.one_of(
    st.text("0123456789.eE+-_ ,x\u0660\u0661\u06f1\u0967\uff11\u200bnaif", max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-1e6, 1e6).map(lambda x: f"{x:.4e}"),
    st.floats(-1e6, 1e6).map(lambda x: f"{x:f}"),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["1_0", "\u0661", "0x1A", "1e999", "-0", ".5", "5.", "+1", "1e-400"]),
)


@MANY
@given(text=numbers)
def test_fuzz_numbers_are_plain_ascii_or_refused(text):
    COUNTS["numbers (parse)"] += 1
    try:
        value = parse_float(text)
    except ValueError:
        if PLAIN.fullmatch(text):  # plain notation is refused only beyond the float range
            assert not math.isfinite(float(text))
        return
    assert PLAIN.fullmatch(text), f"{text!r} accepted"
    assert value == float(text) and math.isfinite(value)


@STORE
@given(texts=st.lists(numbers, min_size=1, max_size=5))
def test_fuzz_numbers_through_the_store(store, texts, tmp_path_factory):
    COUNTS["numbers (store)"] += len(texts)
    store.register_signals({"s": "f"})
    path = tmp_path_factory.mktemp("numbers") / "o.csv"
    lines = ["trade_id,signal,won,pnl,settled_at"]
    lines += [f'n{i},s,{"false" if t.startswith("-") else "true"},"{t}",2024-01-02'
              for i, t in enumerate(texts)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = tables(store)

    def ok(t: str) -> bool:
        return bool(PLAIN.fullmatch(t)) and math.isfinite(float(t))

    try:
        store.ingest_outcomes(path)
    except IngestError:
        assert tables(store) == before
        assert not all(ok(t) for t in texts)  # won is set from the sign: never contradicts
        return
    assert all(ok(t) for t in texts)
    got = store.outcomes().set_index("trade_id")["pnl"]
    for i, t in enumerate(texts):
        assert got[f"n{i}"] == float(t)
    with store.transaction() as conn:
        conn.execute(schema.outcomes.delete())
