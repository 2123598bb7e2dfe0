"""The pooled fit's walk-forward (bayes_mem.evaluation.pooled_risk): which posterior forecasts
each day, checked against a brute-force rule on synthetic refits; the refit store round trip and
resume; the comparison's handling of extra forecasts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayes_mem.evaluation import compare, pooled_risk
from bayes_mem.evaluation.pooled_risk import PooledFit
from bayes_mem.live.gjr_garch import GarchDraws, variance_path
from bayes_mem.live.return_model import ReturnModel

S = 7  # draws per refit


def _draws(rng: np.random.Generator) -> GarchDraws:
    return GarchDraws(
        mu=rng.normal(3e-4, 1e-4, S),
        omega=rng.uniform(1e-6, 4e-6, S),
        alpha=rng.uniform(0.02, 0.06, S),
        gamma=rng.uniform(0.05, 0.12, S),
        beta=rng.uniform(0.80, 0.88, S),
        nu=rng.uniform(5.0, 9.0, S),
        lam=rng.uniform(-0.2, 0.1, S),
    )


def _frame(rng: np.random.Generator, n: int = 260) -> pd.DataFrame:
    """Two series on different calendars: b starts late and misses some days of a."""
    dates = pd.bdate_range("2020-01-01", periods=n)
    a = pd.Series(rng.standard_t(5, n) * 0.01, index=dates)
    b = pd.Series(rng.standard_t(5, n) * 0.012, index=dates)
    b.iloc[:40] = np.nan
    b.iloc[rng.choice(np.arange(40, n), 25, replace=False)] = np.nan
    return pd.DataFrame({"a": a, "b": b})


def _fits(rng: np.random.Generator, frame: pd.DataFrame, days: list[int]) -> list[PooledFit]:
    """Refits on ``days``: the third refused, the fourth without b, the others with both."""
    out = []
    for k, day in enumerate(days):
        passed = k != 2
        names = ["a"] if k == 3 else ["a", "b"]
        symbols = {n: (_draws(rng), rng.uniform(5e-5, 2e-4, S)) for n in names} if passed else {}
        out.append(PooledFit(day, str(frame.index[day].date()), passed, () if passed else
                             ("misfit",), 1.0, symbols))  # fmt: skip
    return out


def _brute_force(frame, fits, name, window, level):
    """Per forecast day: the latest refit on or before the day's panel row with a posterior of
    the series, its state (for the series' first return on or after the refit) rolled forward
    through every return of the series from there to the day before."""
    col = frame[name].to_numpy()
    rows = np.flatnonzero(~np.isnan(col))
    r = col[rows]
    var, sd = [], []
    for t in range(window, r.size):
        ok = [f for f in fits if f.day <= rows[t] and f.passed and name in f.symbols]
        f = max(ok, key=lambda f: f.day)
        draws, sigma2 = f.symbols[name]
        t_f = int(np.sum(rows < f.day))
        s2 = variance_path(r[t_f:t], draws, sigma2)[:, -1] if t > t_f else sigma2
        var.append(ReturnModel({"x": draws}, {"x": s2}).risk(level).var_log[0])
        sd.append(np.sqrt(s2))
    return np.array(var), np.array(sd)


def test_forecasts_use_the_latest_refit_rolled_forward():
    rng = np.random.default_rng(0)
    frame = _frame(rng)
    window = 60
    days = pooled_risk.refit_days(frame, window, 37)
    assert days[0] == window  # a has 60 returns before row 60
    fits = _fits(rng, frame, days)
    got = pooled_risk.pooled_forecasts(frame, fits, window=window, levels=(0.975,), horizon=1)
    assert set(got) == {"a", "b"}
    for name in ("a", "b"):
        var, sd = _brute_force(frame, fits, name, window, 0.975)
        # the state exactly; VaR to the live mixture quantile's tolerance (a model built afresh
        # and one rolled forward start its solver differently)
        np.testing.assert_allclose(got[name].predictive.sd, sd, rtol=1e-12)
        np.testing.assert_allclose(got[name].var[0.975], var, rtol=1e-4)
        np.testing.assert_array_equal(got[name].returns, frame[name].dropna().to_numpy()[window:])
    # the refused refit counts for both series, the refit without b for b only
    assert len(got["a"].failed_refits) == 1
    assert len(got["b"].failed_refits) == 2


def test_a_series_no_refit_covers_is_named():
    rng = np.random.default_rng(1)
    frame = _frame(rng)
    days = pooled_risk.refit_days(frame, 60, 37)
    fits = [f for f in _fits(rng, frame, days) if f.day > 200]  # nothing before b's first day
    with pytest.raises(ValueError, match="b: no passed refit covers its first forecast day"):
        pooled_risk.pooled_forecasts(frame.loc[:, ["b"]], fits, window=60, horizon=1)


def test_refit_days_start_when_a_series_has_the_window():
    frame = pd.DataFrame({"x": [np.nan] * 5 + [0.01] * 20, "y": [np.nan] * 12 + [0.02] * 13})
    assert pooled_risk.refit_days(frame, 10, 4) == [15, 19, 23]  # x has 10 returns before 15
    with pytest.raises(ValueError, match="no series has 30 returns"):
        pooled_risk.refit_days(frame, 30, 4)
    with pytest.raises(ValueError, match="cadence"):
        pooled_risk.refit_days(frame, 10, 0)


def test_the_refit_store_round_trips_and_resumes(tmp_path):
    rng = np.random.default_rng(2)
    frame = _frame(rng)
    from bayes_mem.offline.recalibrate import RecalibrationConfig

    config = RecalibrationConfig(returns_window=100, returns_min_days=100)
    days = pooled_risk.refit_days(frame, config.returns_window, 50)
    fits = [
        dataclasses.replace(f, key=pooled_risk.refit_key(frame, f.day,
                                                         dataclasses.replace(config, seed=k)))
        for k, f in enumerate(_fits(rng, frame, days))
    ]  # fmt: skip
    for f in fits:
        pooled_risk._save(f, tmp_path)
    # every refit is stored: nothing is fitted (no model is compiled), the fits come back equal
    again = pooled_risk.walk_forward_fits(frame, cadence=50, fits_dir=tmp_path, config=config)
    assert [f.day for f in again] == days
    for a, b in zip(fits, again, strict=True):
        assert (a.date, a.passed, a.reasons, set(a.symbols)) == (b.date, b.passed, b.reasons,
                                                                  set(b.symbols))  # fmt: skip
        for name, (draws, sigma2) in a.symbols.items():
            np.testing.assert_array_equal(b.symbols[name][1], sigma2)
            for p in pooled_risk._PARAMS:
                np.testing.assert_array_equal(getattr(b.symbols[name][0], p), getattr(draws, p))
    # a refit whose arrays were never written (stopped between the two writes) is not read
    (tmp_path / f"{days[-1]:06d}.npz").unlink()
    assert days[-1] not in {f.day for f in pooled_risk._load(tmp_path).values()}


def test_a_stored_refit_is_reused_only_for_the_same_data_and_settings():
    """refit_key: the configuration (seed included), the day and every return before it; a
    return on or after the day does not enter."""
    from bayes_mem.offline.recalibrate import RecalibrationConfig

    frame = _frame(np.random.default_rng(6))
    cfg = RecalibrationConfig(seed=3)
    key = pooled_risk.refit_key(frame, 100, cfg)
    assert key == pooled_risk.refit_key(frame.copy(), 100, RecalibrationConfig(seed=3))
    assert key != pooled_risk.refit_key(frame, 100, RecalibrationConfig(seed=4))
    assert key != pooled_risk.refit_key(frame, 100, RecalibrationConfig(seed=3, draws=500))
    assert key != pooled_risk.refit_key(frame, 101, cfg)
    later, earlier = frame.copy(), frame.copy()
    later.iloc[100, 0] += 0.01  # the day itself: not seen by the refit
    earlier.iloc[99, 0] += 1e-12  # the day before: seen
    assert pooled_risk.refit_key(later, 100, cfg) == key
    assert pooled_risk.refit_key(earlier, 100, cfg) != key


def test_walk_forward_refuses_a_laplace_config(tmp_path):
    from bayes_mem.offline.recalibrate import RecalibrationConfig

    frame = _frame(np.random.default_rng(3))
    with pytest.raises(ValueError, match="returns_model='pymc'"):
        pooled_risk.walk_forward_fits(frame, config=RecalibrationConfig(returns_model="laplace"))


def test_dated_series_are_the_compared_returns():
    for name in compare.available_series():
        dated = compare.load_dated_series(name)
        np.testing.assert_array_equal(dated.to_numpy(), compare.load_series(name))
        assert dated.index.is_monotonic_increasing and not dated.index.has_duplicates


def test_extra_forecasts_must_be_of_the_same_returns():
    rng = np.random.default_rng(4)
    frame = _frame(rng, n=400)
    window = 150  # the Laplace fit of ours needs 100 returns
    days = pooled_risk.refit_days(frame, window, 60)
    fits = _fits(rng, frame, days)
    got = pooled_risk.pooled_forecasts(frame, fits, window=window, levels=(0.975, 0.99),
                                       horizon=1)  # fmt: skip
    r_a = frame["a"].to_numpy()
    kw = {"window": window, "refit_every": 200, "n_draws": 20, "horizon": 1, "seed": 0}
    out = compare.build_forecasts(r_a, extra={compare.POOLED: got["a"]}, **kw)
    assert list(out)[:2] == [compare.OURS, compare.POOLED]
    assert set(out) == {*compare.MODELS, compare.POOLED}
    n = out[compare.OURS].returns.size  # every model on the same (last) days
    np.testing.assert_array_equal(out[compare.POOLED].var[0.99], got["a"].var[0.99][-n:])
    np.testing.assert_array_equal(out[compare.POOLED].returns, out[compare.OURS].returns)
    with pytest.raises(ValueError, match="forecasts other returns"):
        compare.build_forecasts(r_a, extra={compare.POOLED: got["b"]}, **kw)
    with pytest.raises(ValueError, match="built-in"):
        compare.build_forecasts(r_a, extra={compare.OURS: got["a"]}, **kw)
