"""Property-based fuzzing of the ingest paths (DataFrame, CSV, Parquet), the CLI and the prior-set
loader with hostile input: NaN, inf, huge and negative values, wrong types, empty frames,
duplicated ids and dates, unicode, quotes, SQL and HTML fragments in names.

The contract: a clear refusal (ValueError/TypeError, for a batch an IngestError naming each bad
line) with nothing written, or correct handling: what was accepted is stored exactly (names
unchanged, no NaN), never a crash of another type and never a partial write. Examples are
derandomised and capped so that the file runs in well under a minute per backend.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_mem.cli import main
from bayes_mem.live.prior_set import PriorSet, PriorSetError
from bayes_mem.store import IngestError, Store
from bayes_mem.store.ingest import parse_name

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE_NAMES = [
    "α-mom", "動量", "o'brien", 'say "hi"', "x'); DROP TABLE outcomes;--", "1 OR 1=1",
    "<script>alert(1)</script>", "<b>&amp;</b>", "\u00c5APL (NFC)", "עברית rtl", "back\\slash",
    "emoji 📈", "%s %(x)s {0}", "NULL", "-- comment", "a" * 200,
]  # fmt: skip
name = st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(min_size=1, max_size=12))
junk = st.one_of(
    st.sampled_from(
        [math.nan, math.inf, -math.inf, 1e308, -1e308, 10**30, "", " ", "nan", "inf", None,
         "true", "yes", "1e999", "2026-02-30", "--", "<i>", "'", '"']
    ),
    st.text(max_size=6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.booleans(),
)  # fmt: skip
SIGNALS = ["mom_a", "mom_b", "mr_a", *HOSTILE_NAMES[:6]]


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    s.register_signals({n: ("hostile" if n in HOSTILE_NAMES else "momentum") for n in SIGNALS})
    yield s
    s.close()


@st.composite
def outcome_rows(draw):
    """A batch of outcome rows: mostly valid, with some fields of some rows replaced by junk."""
    n = draw(st.integers(0, 6))
    rows = []
    for _ in range(n):
        won = draw(st.booleans())
        pnl = draw(st.floats(0, 1e12, allow_nan=False))
        row = {
            "trade_id": draw(name),
            "signal": draw(st.one_of(st.sampled_from(SIGNALS), name)),
            "won": won,
            "pnl": pnl if won else -pnl,
            "settled_at": draw(st.sampled_from(["2026-01-02", "2026-01-02T15:30:00+01:00"])),
        }
        for key in draw(st.lists(st.sampled_from(list(row)), max_size=2, unique=True)):
            row[key] = draw(junk)
        rows.append(row)
    return rows


def snapshot(store: Store) -> list:
    return store.table("outcomes").drop(columns=["recorded_at"]).to_dict("records")


def check_outcome_batch(store: Store, rows: list, source) -> None:
    before = snapshot(store)
    try:
        written = store.ingest_outcomes(source)
    except IngestError as exc:
        assert exc.problems and "nothing written" in str(exc)
        assert snapshot(store) == before  # refused whole
        return
    # accepted: every row is now stored exactly as given, and the rows were valid
    assert written == len(rows)
    after = store.outcomes()
    new = after.iloc[len(before) :]
    assert len(new) == len(rows)
    ids = [r["trade_id"] for r in rows]
    assert len(set(map(str, ids))) == len(ids)
    for r, (_, got) in zip(rows, new.iterrows(), strict=True):
        assert got["trade_id"] == str(r["trade_id"]) and got["signal"] == r["signal"]
        assert isinstance(r["won"], bool) and bool(got["won"]) == r["won"]
        assert math.isfinite(got["pnl"]) and got["pnl"] == float(r["pnl"])


@FUZZ
@given(rows=outcome_rows())
def test_outcome_frames_are_stored_exactly_or_refused_whole(store, rows):
    frame = pd.DataFrame(rows, columns=["trade_id", "signal", "won", "pnl", "settled_at"])
    check_outcome_batch(store, rows, frame)


@FUZZ
@given(rows=outcome_rows())
def test_outcome_csv_files_are_stored_exactly_or_refused_whole(store, rows, tmp_path):
    path = tmp_path / "batch.csv"
    pd.DataFrame(rows, columns=["trade_id", "signal", "won", "pnl", "settled_at"]).to_csv(
        path, index=False
    )
    before = snapshot(store)
    try:
        store.ingest_outcomes(path)
    except IngestError as exc:
        assert "nothing written" in str(exc)
        assert snapshot(store) == before
        return
    # CSV is text: what was accepted parses back to what was written
    stored = store.outcomes().iloc[len(before) :]
    text = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(stored["trade_id"]) == list(text["trade_id"])
    assert list(stored["signal"]) == list(text["signal"])
    assert np.array_equal(stored["pnl"].to_numpy(), text["pnl"].astype(float).to_numpy())


@st.composite
def return_rows(draw):
    n = draw(st.integers(0, 6))
    rows = []
    for _ in range(n):
        row = {
            "symbol": draw(name),
            "date": draw(st.sampled_from(["2026-01-02", "2026-01-05", "2026-01-06"])),
            "return": draw(st.floats(-0.5, 0.5)),
        }
        for key in draw(st.lists(st.sampled_from(list(row)), max_size=1)):
            row[key] = draw(junk)
        rows.append(row)
    return rows


@FUZZ
@given(rows=return_rows(), kind=st.sampled_from(["log", "simple"]))
def test_return_batches_are_stored_exactly_or_refused_whole(store, rows, kind):
    frame = pd.DataFrame(rows, columns=["symbol", "date", "return"])
    before = store.table("returns").to_dict("records")
    try:
        written = store.ingest_returns(frame, kind=kind)
    except IngestError as exc:
        assert "nothing written" in str(exc)
        assert store.table("returns").to_dict("records") == before
        return
    assert written == len(rows)
    after = store.table("returns")
    assert len(after) == len(before) + len(rows) and after["log_return"].notna().all()
    got = {(r.symbol, str(r.date)): r.log_return for r in after.itertuples()}
    for r in rows:
        want = float(r["return"]) if kind == "log" else math.log1p(float(r["return"]))
        key = (parse_name(r["symbol"]), str(pd.Timestamp(r["date"]).date()))  # 0 is stored "0"
        assert got[key] == pytest.approx(want)


def test_empty_and_headerless_batches(store, tmp_path):
    empty = pd.DataFrame(columns=["trade_id", "signal", "won", "pnl", "settled_at"])
    assert store.ingest_outcomes(empty) == 0
    assert store.ingest_returns(pd.DataFrame(columns=["symbol", "date", "return"]), kind="log") == 0
    with pytest.raises(IngestError, match="missing column"):
        store.ingest_outcomes(pd.DataFrame())
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ValueError):
        store.ingest_outcomes(path)
    assert len(store.table("outcomes")) == 0


@settings(FUZZ, max_examples=25)
@given(content=st.one_of(st.binary(max_size=200), st.text(max_size=200)),
       what=st.sampled_from(["signals", "outcomes", "returns"]),
       suffix=st.sampled_from([".csv", ".parquet", ".txt"]))  # fmt: skip
def test_cli_ingest_of_garbage_files_exits_cleanly_and_writes_nothing(
    tmp_path, capsys, content, what, suffix
):
    data = tmp_path / "data"
    path = tmp_path / f"in{suffix}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    Store(data_dir=data).close()  # an existing store: a missing one is a usage error (exit 2)
    argv = ["ingest", what, str(path), "--data", str(data)]
    code = main([*argv, "--kind", "log"] if what == "returns" else argv)
    err = capsys.readouterr().err
    assert code in (0, 1), err
    if code == 1:
        assert "bayes-mem ingest: error:" in err and "Traceback" not in err
    store = Store(data_dir=data)
    if code == 1:
        assert all(len(store.table(t)) == 0 for t in ("signals", "outcomes", "returns"))
    store.close()


@settings(FUZZ, max_examples=25)
@given(version=st.one_of(st.text(max_size=8), st.integers(-5, 10**12).map(str)),
       action=st.sampled_from(["list", "show", "activate"]),
       active=st.one_of(st.none(), st.text(max_size=8)))  # fmt: skip
def test_cli_priors_with_hostile_versions_and_registry_exits_cleanly(
    tmp_path, capsys, version, action, active
):
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    if active is not None:
        (models / "ACTIVE").write_text(active)
    try:
        code = main(["priors", action, version, "--models", str(models)])
    except SystemExit as exc:  # argparse: a bad VERSION is a usage error
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2) and "Traceback" not in err


def mutate(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_prior_set_documents_with_junk_anywhere_are_refused_or_exact(data):
    from tests.test_prior_set import make

    doc = make(1).to_dict()
    paths = [
        ["version"], ["created_at"], ["data_through"], ["families"], ["families", "momentum"],
        ["families", "momentum", "mean"], ["families", "momentum", "kappa"], ["symbols"],
        ["symbols", "SPY", "sigma2"], ["symbols", "SPY", "draws", "nu"],
        ["symbols", "SPY", "draws", "beta"], ["diagnostics"], ["regime"],
    ]  # fmt: skip
    path = data.draw(st.sampled_from(paths))
    value = data.draw(
        st.one_of(junk, st.lists(junk, max_size=3), st.dictionaries(st.text(max_size=3), junk))
    )
    mutate(doc, path, value)
    try:
        text = json.dumps(doc, allow_nan=True)
        back = PriorSet.from_dict(json.loads(text))
    except (PriorSetError, ValueError, TypeError) as exc:
        assert str(exc)
        return
    assert PriorSet.from_dict(back.to_dict()).to_dict() == back.to_dict()
    for fam in back.families.values():
        assert np.all(np.isfinite(fam.mean)) and np.all(np.isfinite(fam.kappa))
    for sym in back.symbols.values():
        assert np.all(np.isfinite(sym.sigma2))


CONFIG_FIELDS = [
    "draws", "tune", "chains", "target_accept", "seed", "family_draws_published",
    "returns_window", "returns_min_days", "returns_draws", "returns_model", "returns_mcmc_draws",
    "returns_mcmc_tune", "returns_target_accept", "regime",
    "regime_window",
]  # fmt: skip


@settings(FUZZ, max_examples=40)
@given(
    doc=st.one_of(
        st.dictionaries(st.sampled_from([*CONFIG_FIELDS, "nope", "<script>"]), junk, max_size=3),
        st.lists(junk, max_size=3),
        junk,
    ),
    raw=st.one_of(st.none(), st.binary(max_size=40)),
)
def test_cli_recalibrate_with_hostile_config_files_refuses_before_touching_anything(
    tmp_path, capsys, doc, raw
):
    """A config file of junk (wrong types, NaN, negative counts, unknown keys, not an object,
    not JSON, not UTF-8) is refused with a one-line error before the store or the registry is
    touched; a config that parses runs (here on an empty store: a clear error too)."""
    cfg = tmp_path / "config.json"
    if raw is None:
        cfg.write_text(json.dumps(doc, allow_nan=True))
    else:
        cfg.write_bytes(raw)
    data, models = tmp_path / "data", tmp_path / "models"
    Store(data_dir=data).close()  # an existing empty store: a missing one is exit 2
    code = main(["recalibrate", "--config", str(cfg), "--data", str(data), "--models", str(models)])
    err = capsys.readouterr().err
    assert code == 1 and "bayes-mem recalibrate: error:" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (models / "prior_sets").exists() or not list((models / "prior_sets").iterdir())
