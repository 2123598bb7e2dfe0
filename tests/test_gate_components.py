"""Issue 16: each component of the prior set (win rates, returns, regime) is gated and versioned
on its own. A component whose fit fails keeps its previous version while the others refresh;
every set records per component the version it came from, its date and its verdict.

The nightly job runs for real here (store, Laplace returns fits, regime estimate, publish,
activation), with the win-rate MCMC fit and its gate replaced by a stand-in whose verdict each
test chooses: the structure is under test, not the sampler (``test_recalibrate.py`` and
``test_gate_bad_fits.py`` fit PyMC for real, marked slow)."""

import datetime as dt
import hashlib
import json
import os
import types

import numpy as np
import pandas as pd
import pytest

from bayes_mem.live.prior_set import (
    COMPONENTS,
    RHO_RANGE,
    SCHEMA_V1,
    ActivePriorSet,
    ComponentSource,
    PriorSet,
    PriorSetError,
    RegimePrior,
    active_version,
    canonical_bytes,
    load_active,
    load_live_prior_set,
    load_prior_set,
    write_prior_set,
)
from bayes_mem.offline import recalibrate as rc
from bayes_mem.offline.diagnostics import COMPUTATIONAL, REFUSED, Failure, GatedFit, Verdict
from bayes_mem.offline.diagnostics import MISFIT as MISFIT_KIND
from bayes_mem.offline.recalibrate import (
    EXIT_PARTIAL,
    EXIT_PUBLISHED,
    EXIT_REJECTED,
    RecalibrationConfig,
    compose_prior_set,
    recalibrate,
    verdict_kind,
)
from bayes_mem.store import Store
from tests.test_prior_set import REGIME, make

FAMILIES = ("momentum", "mean_reversion", "breakout")
MISFIT = "posterior predictive check 'dispersion': p = 0.9950"


def failed(check: str, kind: str, message: str) -> Verdict:
    """A verdict with one structured failure, as the gate (or the job) makes it."""
    return Verdict.of([Failure(check, kind, message)], {})


def misfit() -> Verdict:
    return failed("ppc", MISFIT_KIND, MISFIT)


CONFIG = RecalibrationConfig(
    draws=100, tune=100, chains=2, returns_model="laplace", returns_draws=30,
    returns_min_days=250, returns_window=300,
)  # fmt: skip


class FakeWinRates:
    """Stands in for the win-rate MCMC fit and its gate: ``verdict`` is what the gate says."""

    def __init__(self) -> None:
        self.verdict = Verdict(True, (), {"max_rhat": 1.001})
        self.kappa = 30.0
        self.rho = 0.05
        self.fits = 0


@pytest.fixture
def fake(monkeypatch):
    wr = FakeWinRates()

    class Tree(dict):
        pass

    def fit(data, **kw):
        wr.fits += 1
        tree = Tree(posterior=types.SimpleNamespace(sizes={"draw": 50, "chain": 2}))
        tree.families = data.families
        return tree

    def family_draws(tree, n, rng):
        f = len(tree.families)
        base = 0.45 + 0.01 * wr.fits  # each night's fit differs
        return {
            "mean": np.full((n, f), base) + rng.uniform(0, 0.01, (n, f)),
            "kappa": np.full((n, f), wr.kappa),
            "rho": np.full((n, f), wr.rho),
        }

    model = types.SimpleNamespace(fit=fit)
    monkeypatch.setattr(rc.winrate, "default_model", lambda: model)
    monkeypatch.setattr(  # one fit, and what its gate says
        rc.winrate, "fit_gated", lambda m, data, *a, **k: GatedFit(m.fit(data), wr.verdict)
    )
    monkeypatch.setattr(rc, "family_draws", family_draws)

    def write_fit(tree, directory, config, which="winrate"):
        (directory / f"{which}_fit.nc").write_bytes(b"stand-in fit\n")

    monkeypatch.setattr(rc, "_write_fit", write_fit)
    return wr


DATES = pd.bdate_range("2007-01-01", periods=700)


def fill_until(store: Store, upto: int, start: int = 0, seed: int = 0) -> None:
    """Returns of three symbols for days ``start .. upto - 1`` and the trades settled then."""
    rng = np.random.default_rng([seed, start])
    if start == 0:
        store.register_signals({f"{f}_{i}": f for f in FAMILIES for i in range(4)})
    days = DATES[start:upto]
    for sym, vol in (("SPY", 0.01), ("QQQ", 0.013), ("TLT", 0.008)):
        store.ingest_returns(
            pd.DataFrame({"symbol": sym, "date": days,
                          "return": rng.standard_t(6, days.size) * vol * 0.8}),
            kind="log",
        )  # fmt: skip
    rows = []
    for k, day in enumerate(days[::5]):
        for f in FAMILIES:
            for i in range(4):
                won = bool(rng.random() < 0.5)
                rows.append((f"{f}_{i}-{start}-{k}", f"{f}_{i}", won, 1.0 if won else -1.0,
                             day, day))  # fmt: skip
    store.ingest_outcomes(pd.DataFrame(
        rows, columns=["trade_id", "signal", "won", "pnl", "opened_at", "settled_at"]
    ))  # fmt: skip


def snapshot(models, store) -> dict:
    """Every file under the registry (bytes and mode) and the store's prior-set rows."""
    out = {}
    for root, dirs, files in os.walk(models):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            data = b""
            if os.path.isfile(path):
                with open(path, "rb") as fh:
                    data = fh.read()
            out[os.path.relpath(path, models)] = (st.st_mode, hashlib.sha256(data).hexdigest())
    rows = store.table("prior_sets").to_dict(orient="records")
    return {"files": out, "rows": json.dumps(rows, default=str, sort_keys=True)}


# ------------------------------------------------------------------- the freeze, end to end
def test_win_rates_fail_returns_refresh_and_the_old_win_rates_stay_live(tmp_path, fake, capsys):
    """The policy backtest's freeze: the win-rate PPC failed night after night and, with one
    verdict for the whole set, the returns model stayed at its first fit for years. Now the
    live set after a win-rate misfit has tonight's returns and regime and the previous
    win rates, each component naming its version and date. (Before: status "rejected",
    ACTIVE unchanged, the returns frozen.)"""
    models = tmp_path / "models"
    store = Store(data_dir=tmp_path / "data")
    fill_until(store, 400)
    first = recalibrate(store, models, CONFIG, report=False)
    assert first.status == "active" and first.exit_code == EXIT_PUBLISHED, first.verdict
    v1 = load_active(models)
    assert {c: s.version for c, s in v1.components.items()} == dict.fromkeys(COMPONENTS, 1)
    through1 = DATES[399].date().isoformat()
    assert v1.data_through[:10] == through1
    assert v1.source("winrate").data_through == DATES[395].date().isoformat()  # last trade

    fill_until(store, 500, start=400)  # 100 more days of returns and trades
    fake.verdict = Verdict.of([Failure("ppc", MISFIT_KIND, MISFIT)], {"ppc_dispersion": 0.995})
    second = recalibrate(store, models, CONFIG, report=False)
    assert second.status == "active" and second.exit_code == EXIT_PARTIAL, second.verdict
    live = load_active(models)
    assert active_version(models) == live.version == 2
    # returns and regime: tonight's fit, dated tonight
    through2 = DATES[499].date().isoformat()
    assert live.source("returns") == ComponentSource(2, live.created_at, live.data_through, True)
    assert live.data_through[:10] == through2 and live.source("regime").version == 2
    assert set(live.symbols) == {"SPY", "QQQ", "TLT"}
    assert not np.array_equal(live.symbols["SPY"].sigma2, v1.symbols["SPY"].sigma2)
    # win rates: v1's, unchanged, with v1's date and verdict
    assert live.source("winrate") == v1.source("winrate")
    for name, fam in v1.families.items():
        np.testing.assert_array_equal(live.families[name].mean, fam.mean)
        np.testing.assert_array_equal(live.families[name].kappa, fam.kappa)
    # ages, as the engine and `priors show` state them
    today = DATES[500].date()
    ages = live.component_ages(today)
    assert ages["returns"] == (today - DATES[499].date()).days
    assert ages["winrate"] == (today - DATES[395].date()).days > 100
    # the night's verdicts, per component, with the misfit named as such
    comp = live.diagnostics["components"]
    assert comp["winrate"] == {
        "passed": False,
        "reasons": [MISFIT],
        "kind": "misfit",
        "status": "carried",
        "attempts": [],
    }  # the fake tries none
    assert comp["returns"]["status"] == comp["regime"]["status"] == "refreshed"
    assert second.components["winrate"]["version"] == 1
    assert live.diagnostics["reasons"] == [f"winrate: {MISFIT}"]
    # the store agrees: v2 active, v1 retired, the components in its diagnostics
    rows = store.table("prior_sets").set_index("version")
    assert rows.loc[2, "status"] == "active" and rows.loc[1, "status"] == "retired"
    assert json.loads(rows.loc[2, "diagnostics"])["components"]["winrate"]["status"] == "carried"
    # `priors list` and `priors show` say where each component came from and how old it is
    from bayes_mem.cli import main

    capsys.readouterr()
    assert main(["priors", "list", "--models", str(models)]) == 0
    lines = capsys.readouterr().out.splitlines()
    d1, d2, w = through1, through2, DATES[395].date().isoformat()
    lines = lines[1:]  # after the header (issue 20)
    assert lines[1].startswith("v000002  active") and lines[1].endswith(
        f"winrate v1 (through {w}), returns v2 (through {d2}), regime v2 (through {d2})"
    ), lines
    assert lines[0].endswith(f"returns v1 (through {d1}), regime v1 (through {d1})")
    assert main(["priors", "show", "2", "--json", "--models", str(models)]) == 0
    shown = json.loads(capsys.readouterr().out)
    today = dt.datetime.now(dt.UTC).date()
    assert shown["components"]["winrate"] == {
        **v1.source("winrate").to_dict(), "carried": True,
        "age_days": (today - DATES[395].date()).days,
    }  # fmt: skip
    assert shown["components"]["returns"]["carried"] is False
    assert shown["diagnostics"]["components"]["winrate"]["kind"] == "misfit"

    # a third night with every component passing refreshes the win rates again
    fill_until(store, 520, start=500)
    fake.verdict = Verdict(True, (), {})
    third = recalibrate(store, models, CONFIG, report=False)
    assert third.exit_code == EXIT_PUBLISHED
    assert {c: s.version for c, s in load_active(models).components.items()} == dict.fromkeys(
        COMPONENTS, 3
    )
    store.close()


def test_when_every_component_fails_nothing_changes_for_the_trader(tmp_path, fake):
    models = tmp_path / "models"
    store = Store(data_dir=tmp_path / "data")
    fill_until(store, 400)
    recalibrate(store, models, CONFIG, report=False)
    trader = ActivePriorSet(models)
    assert trader.refresh()
    active_bytes = (models / "ACTIVE").read_bytes()
    fake.verdict = failed("rhat", COMPUTATIONAL, "R-hat 1.0128 > 1.01 (tau)")
    # returns with too few days in the window: the returns component fails too (and so the
    # regime, estimated on its normal scores)
    config = RecalibrationConfig(**{**CONFIG.__dict__, "returns_min_days": 300,
                                    "returns_window": 300})  # fmt: skip
    store2 = Store(data_dir=tmp_path / "data2")
    fill_until(store2, 260)
    result = recalibrate(store2, models, config, report=False)
    assert result.status == "rejected" and result.exit_code == EXIT_REJECTED
    assert {c: i["status"] for c, i in result.components.items()} == dict.fromkeys(
        COMPONENTS, "rejected"
    )
    assert result.components["winrate"]["kind"] == "computational"
    assert (models / "ACTIVE").read_bytes() == active_bytes and not trader.refresh()
    with pytest.raises(PriorSetError, match="did not pass"):
        load_live_prior_set(models, result.version)
    store.close()
    store2.close()


def test_a_failure_with_an_unreadable_live_set_is_rejected_not_half_carried(tmp_path, fake):
    """Carrying needs the live set: when it cannot be loaded, a night with a failing component
    is rejected (the failing component would otherwise silently vanish from the live set)."""
    models = tmp_path / "models"
    store = Store(data_dir=tmp_path / "data")
    fill_until(store, 400)
    recalibrate(store, models, CONFIG, report=False)
    path = models / "prior_sets" / "v000001" / "prior_set.json"
    path.write_bytes(path.read_bytes().replace(b'"version":1', b'"version":7', 1))
    fake.verdict = misfit()
    result = recalibrate(store, models, CONFIG, report=False)
    assert result.status == "rejected" and active_version(models) == 1
    assert any("cannot carry winrate" in r for r in result.verdict["reasons"])
    store.close()


def test_first_night_with_failing_win_rates_publishes_the_returns_alone(tmp_path, fake):
    """No previous version to keep: the live set holds no win-rate component (the engine uses
    flat family priors, as with no set) while the returns go live."""
    models = tmp_path / "models"
    store = Store(data_dir=tmp_path / "data")
    fill_until(store, 400)
    fake.verdict = failed("sd_ratio", MISFIT_KIND, "the data do not identify log kappa: "
                          "posterior sd is 0.95 of the prior's")  # fmt: skip
    result = recalibrate(store, models, CONFIG, report=False)
    assert result.status == "active" and result.exit_code == EXIT_PARTIAL
    live = load_active(models)
    assert live.families == {} and live.source("winrate") is None
    assert live.source("returns").version == 1 and set(live.symbols) == {"SPY", "QQQ", "TLT"}
    assert result.components["winrate"] | {"reasons": None} == {
        "passed": False, "reasons": None, "kind": "identification", "status": "absent",
        "version": None, "data_through": None,
    }  # fmt: skip
    store.close()


def test_bad_input_leaves_every_state_unchanged(tmp_path, fake):
    """Refused input (a store with no settled outcome, a bad config file, a corrupt store
    database path): registry files, ACTIVE and the store's rows are byte for byte as before."""
    models = tmp_path / "models"
    store = Store(data_dir=tmp_path / "data")
    fill_until(store, 400)
    recalibrate(store, models, CONFIG, report=False)
    fill_until(store, 450, start=400)
    before = snapshot(models, store)
    empty = Store(data_dir=tmp_path / "empty")
    with pytest.raises(ValueError, match="no settled outcomes"):
        recalibrate(empty, models, CONFIG, report=False)
    bad = tmp_path / "bad.json"
    for text, match in [
        (json.dumps({"draws": 10, "max_component_age": 3}), "unknown config keys"),
        (json.dumps({"regime": "yes"}), "regime must be true or false"),
        ("{", "not valid JSON"),
    ]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=match):
            recalibrate(store, models, RecalibrationConfig.from_file(bad), report=False)
    assert snapshot(models, store) == before
    store.close()
    empty.close()


def test_a_rho_draw_beyond_the_published_bound_is_published_at_it(tmp_path, fake):
    """The backtest's first night lost its win rates to one rho draw of 0.99906 (bound 0.999):
    like kappa, rho is published up to the bound (above it the effective weight of a cluster is
    1 trade either way), so the component refreshes."""
    store = Store(data_dir=tmp_path / "data")
    fill_until(store, 400)
    fake.rho = 0.99906
    result = recalibrate(store, tmp_path / "models", CONFIG, report=False)
    assert result.components["winrate"]["status"] == "refreshed", result.components
    live = load_active(tmp_path / "models")
    for fam in live.families.values():
        assert fam.rho is not None and np.all(fam.rho == RHO_RANGE[1])
    store.close()


def test_an_out_of_bounds_component_fails_alone_and_is_never_written(tmp_path, fake):
    """The backtest's first night errored whole on one family's rho draw of 0.99906 (bound
    0.999): now a component whose published values are outside the bounds fails its verdict
    (kind "bounds") and keeps its previous version; the others refresh."""
    models = tmp_path / "models"
    store = Store(data_dir=tmp_path / "data")
    fill_until(store, 400)
    recalibrate(store, models, CONFIG, report=False)
    v1 = load_active(models)
    fill_until(store, 450, start=400)
    fake.kappa = float("nan")
    result = recalibrate(store, models, CONFIG, report=False)
    assert result.status == "active" and result.exit_code == EXIT_PARTIAL
    assert result.components["winrate"]["kind"] == "bounds"
    assert result.components["winrate"]["status"] == "carried"
    assert any("family kappa" in r for r in result.verdict["reasons"])
    live = load_active(models)
    assert live.version == 2 and live.source("winrate").version == 1
    for name, fam in v1.families.items():
        np.testing.assert_array_equal(live.families[name].kappa, fam.kappa)
    # the strict loader (no NaN, every bound) reads the whole document: nothing of the bad fit
    assert load_prior_set(models, 2).families.keys() == v1.families.keys()
    store.close()


# ------------------------------------------------------------------- composition, unit level
def _verdicts(**passed: bool) -> dict[str, Verdict]:
    return {c: Verdict(True, ()) if ok else misfit() for c, ok in passed.items()}


def _compose(previous, verdicts, **kw):
    fresh = make(9, seed=5)
    return compose_prior_set(
        version=9, created_at="2026-12-01T02:00:00+00:00", code_version="0.1.0",
        config_hash="h", fresh={"winrate": fresh.families, "returns": fresh.symbols,
                                "regime": fresh.regime},
        through={"winrate": "2026-11-30", "returns": "2026-11-30", "regime": "2026-11-30"},
        verdicts=verdicts, previous=previous, **kw,
    )  # fmt: skip


def test_compose_carries_each_failed_component_from_the_live_set():
    previous = make(4, seed=1)
    for failing in COMPONENTS:
        ps, report = _compose(previous, _verdicts(**{c: c != failing for c in COMPONENTS}))
        assert ps.diagnostics["passed"] is True
        assert ps.source(failing) == previous.source(failing)
        assert ps.source(failing).version == 4 and report[failing]["status"] == "carried"
        for c in COMPONENTS:
            if c != failing:
                assert ps.source(c).version == 9 and ps.source(c).data_through == "2026-11-30"
        if failing == "returns":  # the variance states' date follows the returns component
            assert ps.data_through == previous.data_through == "2026-11-24"
        back = PriorSet.from_dict(json.loads(canonical_bytes(ps.to_dict())))
        assert back.to_dict() == ps.to_dict()


def test_compose_rejects_when_nothing_refreshed_and_leaves_regime_off_when_disabled():
    ps, report = _compose(make(4), _verdicts(winrate=False, returns=False, regime=False))
    assert ps.diagnostics["passed"] is False
    assert {c: s.passed for c, s in ps.components.items()} == dict.fromkeys(COMPONENTS, False)
    ps, report = _compose(make(4), _verdicts(winrate=True, returns=True))  # regime disabled
    assert ps.regime is None and ps.source("regime") is None
    assert report["regime"]["status"] == "disabled"


def test_verdict_kinds_come_from_structured_failures():
    assert verdict_kind(Verdict(True, ())) == "passed"
    assert verdict_kind(failed("rhat", COMPUTATIONAL, "R-hat 1.0128 > 1.01 (tau)")) == (
        "computational"
    )
    assert verdict_kind(misfit()) == "misfit"
    assert verdict_kind(failed("sd_ratio", MISFIT_KIND, "the data do not identify rho")) == (
        "identification"
    )
    assert verdict_kind(failed("bounds", REFUSED, "published values out of bounds: ...")) == (
        "bounds"
    )
    both = Verdict.of([Failure("rhat", COMPUTATIONAL, "R-hat"), Failure("ppc", MISFIT_KIND, "p")],
                      {})  # fmt: skip
    assert verdict_kind(both) == "misfit" and not both.retryable  # a misfit is never retried
    assert not failed("coverage", REFUSED, "lost SPY").retryable


# ------------------------------------------------------------------- the contract
def test_components_round_trip_through_publish_and_load(tmp_path):
    ps = make(3)
    doc = ps.to_dict()
    assert doc["schema"] == "bayes_mem.prior_set/2"
    assert doc["components"]["winrate"] == {
        "version": 3,
        "fitted_at": ps.created_at,
        "data_through": "2026-11-24",
        "passed": True,
    }
    carried = PriorSet.from_dict(
        {**doc, "components": {**doc["components"], "winrate": {
            "version": 1, "fitted_at": "2026-10-01T02:00:00+00:00",
            "data_through": "2026-09-30", "passed": True}}}
    )  # fmt: skip
    write_prior_set(carried, tmp_path)
    loaded = load_live_prior_set(tmp_path, 3)
    assert loaded.to_dict() == {**carried.to_dict(), "files": {}}
    assert loaded.component_ages(dt.date(2026, 12, 1)) == {"winrate": 62, "returns": 7, "regime": 7}


def test_schema_1_sets_still_load_with_every_component_from_themselves(tmp_path):
    """Sets published before per-component versions load (the active one keeps trading across
    the upgrade): every component from the set itself, its verdict the set's."""
    import hashlib as h

    doc = make(2).to_dict()
    del doc["components"]
    doc["schema"] = SCHEMA_V1
    body = canonical_bytes(doc)
    folder = tmp_path / "prior_sets" / "v000002"
    folder.mkdir(parents=True, mode=0o700)
    tmp_path.chmod(0o700)
    (tmp_path / "prior_sets").chmod(0o700)
    raw = canonical_bytes({"prior_set": doc, "sha256": h.sha256(body).hexdigest()})
    (folder / "prior_set.json").write_bytes(raw)
    (folder / "prior_set.json").chmod(0o600)
    ps = load_live_prior_set(tmp_path, 2)
    assert {c: s.version for c, s in ps.components.items()} == dict.fromkeys(COMPONENTS, 2)
    assert ps.source("returns").data_through == ps.data_through
    with pytest.raises(PriorSetError, match="unknown keys"):  # /1 with /2's key is malformed
        PriorSet.from_dict({**doc, "components": make(2).to_dict()["components"]})


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c.pop("regime"), "components must name exactly"),
        (lambda c: c.update(extra=None), "components must name exactly"),
        (lambda c: c["winrate"].update(version=4), "later than the set"),
        (lambda c: c["returns"].update(data_through="2026-11-01"), "returns component"),
        (lambda c: c["winrate"].update(passed="true"), "true or false"),
        (lambda c: c["winrate"].update(fitted_at="yesterday"), "ISO 8601"),
        (lambda c: c["winrate"].pop("fitted_at"), "keys"),
        (lambda c: c.update(winrate=None), "has content but no source"),
    ],
)
def test_malformed_components_are_refused(edit, match):
    doc = make(3).to_dict()
    edit(doc["components"])
    with pytest.raises(PriorSetError, match=match):
        PriorSet.from_dict(doc)


def test_a_set_holding_a_failed_component_is_not_live(tmp_path):
    doc = make(3).to_dict()
    doc["components"]["regime"]["passed"] = False
    ps = PriorSet.from_dict(doc)
    write_prior_set(ps, tmp_path)
    with pytest.raises(PriorSetError, match="failed components: regime"):
        load_live_prior_set(tmp_path, 3)
    assert load_prior_set(tmp_path, 3).source("regime").passed is False


def test_the_regime_prior_is_one_typed_object_parsed_once():
    from bayes_mem.live.changepoint import NormalGammaBOCPD

    regime = RegimePrior.from_dict({**REGIME, "expected_run_length": 250.0})
    assert regime.hazard == 0.004 and regime.normal_gamma.alpha0 == 2.0
    assert regime.max_run_length == 300 and regime.info == {"expected_run_length": 250.0}
    assert RegimePrior.from_dict(regime.to_dict()) == regime
    assert make(1).regime == RegimePrior.from_dict(REGIME)
    a = NormalGammaBOCPD.from_prior_set(["A"], regime.to_dict())
    b = make(1).regime_detector(["A"])
    assert a.to_json() == b.to_json()
    for bad, match in [
        ({**REGIME, "hazard": 0.9}, "hazard must be in"),
        ({**REGIME, "hazard": "0.004"}, "hazard"),
        ({**REGIME, "normal_gamma": {"mu0": 0.0}}, "normal_gamma must be"),
        ({**REGIME, "schema": "x/2"}, "schema"),
        ({**REGIME, "max_run_length": 5}, "max_run_length"),
        ({**REGIME, "note": float("nan")}, "non-finite"),
    ]:
        with pytest.raises(PriorSetError, match=match):
            RegimePrior.from_dict(bad)


# ------------------------------------------------------------------- the engine
def test_the_engine_states_each_components_age_and_warns_past_the_limit(caplog):
    """A set whose win rates were carried from an older version: the engine says how old each
    component is, warns once when one is past ``max_component_age_days`` and names it on every
    decision (and its explain line)."""
    from bayes_mem.live import TradingEngine
    from bayes_mem.live.engine import EngineConfig
    from tests import engine_parts as parts

    start = parts.START
    doc = parts.prior_set(5, data_through=str(start)).to_dict()
    doc["components"]["winrate"] = {"version": 2, "fitted_at": "2024-01-03T02:00:00+00:00",
                                    "data_through": str(start - dt.timedelta(days=40)),
                                    "passed": True}  # fmt: skip
    ps = PriorSet.from_dict(doc)
    m = parts.model()
    eng = TradingEngine(parts.decider(), m, portfolio_value=1e6, prior_set=ps,
                        signal_symbols=parts.links(), shadow=EngineConfig.baseline(),
                        max_component_age_days=30, last_date=start)  # fmt: skip
    returns = parts.correlated_returns(5)
    with caplog.at_level("WARNING", logger="bayes_mem.live.engine"):
        for t in range(5):
            eng.bar(start + dt.timedelta(days=t + 1), parts.day_returns(returns[t]))
    ages = eng.component_ages()
    assert ages["winrate"]["age_days"] == 45 and ages["winrate"]["stale"]
    assert ages["returns"] == {
        "version": 5,
        "fitted_at": ps.created_at,
        "data_through": str(start),
        "age_days": 5,
        "stale": False,
    }
    warned = [r for r in caplog.records if "stale" in r.getMessage()]
    assert len(warned) == 1 and "winrate v2" in warned[0].getMessage()  # once, not per bar
    status = eng.prior_status()
    assert status["version"] == 5 and status["max_component_age_days"] == 30
    assert status["stale"] == [f"winrate v2 (data through {start - dt.timedelta(days=40)}, "
                               "45 d > 30 d)"]  # fmt: skip
    d = eng.signal("AAA:mom", "AAA")
    assert d.stale_priors == tuple(status["stale"]) and "stale priors: winrate v2" in d.explain()
    assert d.shadow.stale_priors == d.stale_priors and d.to_dict()["stale_priors"]
    # a fresh set clears it
    eng.use_prior_set(parts.prior_set(6, data_through=str(start + dt.timedelta(days=5))))
    assert eng.prior_status()["stale"] == [] and eng.signal("BBB:mom", "BBB").stale_priors == ()
    with pytest.raises(ValueError, match="max_component_age_days"):
        TradingEngine(parts.decider(), m, portfolio_value=1e6, max_component_age_days=-1)


def test_the_report_tables_each_components_source_and_age():
    from bayes_mem.offline.report import _components_table

    previous = make(4, seed=1)
    ps, _ = _compose(previous, _verdicts(winrate=False, returns=True, regime=True))
    html = _components_table(ps)
    assert "<h3>Components</h3>" in html
    assert "v000004 (carried)" in html and "2026-11-24" in html  # the win rates, from v4
    assert "v000009" in html and "2026-11-30" in html and ">1<" in html  # fresh, 1 day old
    assert "misfit: posterior predictive check &#x27;dispersion&#x27;" in html


def test_a_returns_refresh_that_loses_a_traded_symbol_keeps_the_live_returns(
    tmp_path, fake, monkeypatch
):
    """The full backtest's 2005-07-21 night: SP500's Laplace fit was refused (optimiser did
    not converge), the refreshed returns covered 2 of 3 symbols, and the engine then refused
    the next day's bar for SP500 (UnknownSymbolError ended the run). A returns refresh that
    drops a symbol the live set covers now fails (kind "coverage"): the live returns (and the
    regime estimated on them) stay, the win rates refresh."""
    from bayes_mem.live.gjr_garch import UnfitSeriesError

    models = tmp_path / "models"
    store = Store(data_dir=tmp_path / "data")
    fill_until(store, 400)
    recalibrate(store, models, CONFIG, report=False)
    fill_until(store, 450, start=400)
    real = rc.fit_laplace

    def refuse_tlt(r, n, rng, symbol=None):
        if symbol == "TLT":
            raise UnfitSeriesError("returns of 'TLT': no usable fit (stand-in)")
        return real(r, n, rng, symbol=symbol)

    monkeypatch.setattr(rc, "fit_laplace", refuse_tlt)
    result = recalibrate(store, models, CONFIG, report=False)
    assert result.status == "active" and result.exit_code == EXIT_PARTIAL
    assert result.components["returns"]["kind"] == "coverage"
    assert {c: i["status"] for c, i in result.components.items()} == {
        "winrate": "refreshed",
        "returns": "carried",
        "regime": "carried",
    }
    live = load_active(models)
    assert set(live.symbols) == {"SPY", "QQQ", "TLT"} and live.source("returns").version == 1
    assert live.source("winrate").version == 2
    assert any(
        "would drop symbols the live set covers: TLT" in r for r in result.verdict["reasons"]
    )
    store.close()
