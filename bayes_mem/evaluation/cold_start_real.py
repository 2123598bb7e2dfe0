"""Cold start on real outcomes (issue 18): how well does each kind of family prior predict a new
signal's trades, on the policy backtest's real shadow trades?

The bandit experiments (:mod:`bayes_mem.evaluation.cold_start`) draw their arms from the model's own
class. These trades are real: the 21 shadow signals of
:func:`bayes_mem.evaluation.signals.shadow_trades` (momentum, mean reversion and breakout on the
S&P 500, the NASDAQ composite and WTI crude, 1999-2018, 5-day holds). They are correlated, since
a family's signals trade on the same days and markets. They are also under-dispersed: the
signals' win rates differ less than a Beta-Binomial with independent trades expects.

Design: leave one signal out, walk forward.

- Split the history at day ``split`` (default: the middle). For each signal ``s`` (the *new*
  signal), the nightly win-rate model (:mod:`bayes_mem.offline.winrate`, clustered by family and
  opening day, the job's settings) is fitted on every **other** signal's trades settled by the
  split. ``s``'s own history never enters its family's prior.
- ``s``'s trades opened after the split are its cold start. Each trade's outcome is scored by its
  log predictive probability given the prior and ``s``'s earlier outcomes (the conjugate update
  the live decider makes; ``s`` holds one trade at a time, so its trades are in different
  clusters and count fully).
- The priors compared, all from the same fit:
  ``flat`` Beta(1, 1); ``plug_in`` Beta(E[m] E[kappa], (1 - E[m]) E[kappa]), as published before
  issue 16; ``moment``, the moment-matched prior the nightly job publishes
  (``FamilyPosterior.point_prior()``); ``full_bayes_live``, what the live decider does with
  ``EngineConfig(full_bayes=True)``: each decision draws one hyperparameter draw uniformly, so
  the predictive probability is the average of ``(a_j + w) / (a_j + b_j + n)`` over draws; and
  ``full_bayes_exact``, the exact posterior predictive of the hierarchical model, in which the
  signal's own outcomes also reweight the draws (``B(a_j + w, b_j + l) / B(a_j, b_j)``).
- Reported per prior, over all new signals: the mean log score per trade within the first 5, 20
  and 50 trades and over all of them (higher is better), and the difference from ``moment``
  with a 95% interval from a bootstrap over signals. That interval treats the 21 signals as
  independent, which they are not (one family trades on the same days), so it is optimistic.

Run ``python -m bayes_mem.evaluation.cold_start_real [OUT_DIR]`` (default
``docs/evaluation/bandits``): writes ``cold_start_real.csv`` and ``cold_start_real.md``.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

PRIORS = ("flat", "plug_in", "moment", "full_bayes_live", "full_bayes_exact")
HORIZONS = (5, 20, 50, None)  # first n trades of the cold start; None: all of them


def sequential_log_scores(won: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Log predictive probability of each outcome given the earlier ones, under a mixture of
    Beta priors with equal weights (one component: a single Beta prior). The exact Bayesian
    predictive: each component is reweighted by the outcomes so far.

    ``won``: (n,) bool; ``a``, ``b``: (J,) Beta parameters. Returns (n,) log probabilities.

    Examples
    --------
    Under a flat prior the outcomes win, win, loss have predictives 1/2, 2/3 and 1/4 (Laplace's
    rule). A two-component mixture learns which component fits: after one win the Beta(9, 1)
    component dominates:

    >>> import numpy as np
    >>> won = np.array([True, True, False])
    >>> np.exp(sequential_log_scores(won, np.array([1.0]), np.array([1.0])))
    array([0.5       , 0.66666667, 0.25      ])
    >>> np.round(np.exp(sequential_log_scores(won, [1.0, 9.0], [9.0, 1.0])), 4)
    array([0.5   , 0.8364, 0.0978])
    """
    y = np.asarray(won, dtype=bool)
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    w = np.concatenate([[0], np.cumsum(y)])
    n = np.arange(y.size + 1)
    # log marginal likelihood of the first k outcomes, k = 0..n: logsumexp_j of the
    # Beta-Bernoulli evidence, minus log J
    lb = (special.betaln(a[None, :] + w[:, None], b[None, :] + (n - w)[:, None])
          - special.betaln(a, b)[None, :])  # fmt: skip
    evidence = special.logsumexp(lb, axis=1) - np.log(a.size)
    return np.diff(evidence)


def uniform_draw_log_scores(won: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Log predictive probability of each outcome when every decision draws one hyperparameter
    draw uniformly (the live full-Bayes rule): ``p = mean_j (a_j + w) / (a_j + b_j + n)``.

    Examples
    --------
    The same two components, not reweighted: after one win ``(2 / 11 + 10 / 11) / 2 = 0.5455``:

    >>> import numpy as np
    >>> won = np.array([True, True, False])
    >>> np.round(np.exp(uniform_draw_log_scores(won, [1.0, 9.0], [9.0, 1.0])), 4)
    array([0.5   , 0.5455, 0.4167])
    """
    y = np.asarray(won, dtype=bool)
    a, b = np.asarray(a, float), np.asarray(b, float)
    w = np.concatenate([[0], np.cumsum(y)])[:-1]
    n = np.arange(y.size)
    p = ((a[None, :] + w[:, None]) / (a[None, :] + b[None, :] + n[:, None])).mean(axis=1)
    return np.where(y, np.log(p), np.log1p(-p))


@dataclass(frozen=True)
class FoldResult:
    """One leave-one-signal-out fold: the new signal, its family, each prior's log scores of
    its cold-start trades (nats, in trade order) and whether the fit passed its gate.

    Examples
    --------
    >>> import numpy as np
    >>> f = FoldResult("WTI:breakout_20", "breakout", {"flat": np.log([0.5, 0.5])}, True)
    >>> f.family, round(float(f.scores["flat"].sum()), 4)
    ('breakout', -1.3863)
    """

    signal: str
    family: str
    scores: dict[str, np.ndarray]  # prior -> (trades,) log scores of the cold start
    gate_passed: bool


def _fit_family(trades: Any, dates: pd.DatetimeIndex, keep: np.ndarray, families: dict[str, str],
                seed: int, model: Any) -> tuple[Any, bool]:  # fmt: skip
    """The nightly win-rate model and gate on the kept trades; the fit's family posteriors."""
    from bayes_mem.live.prior_set import FamilyPosterior
    from bayes_mem.offline.diagnostics import FitSettings
    from bayes_mem.offline.recalibrate import KAPPA_PUBLISHED_MAX, RecalibrationConfig
    from bayes_mem.offline.winrate import WinRateData, family_draws, fit_gated

    frame = pd.DataFrame({
        "signal": trades.signal[keep],
        "won": trades.won[keep],
        "cluster": dates[trades.open_idx[keep]].strftime("%Y-%m-%d"),  # the nightly fit's key
    })  # fmt: skip
    data = WinRateData.from_trades(frame, families)
    cfg = RecalibrationConfig()
    settings = FitSettings(cfg.draws, cfg.tune, cfg.chains, cfg.target_accept, seed)
    gated = fit_gated(model, data, settings, rng=seed)
    draws = family_draws(gated.tree, 1000, np.random.default_rng(seed))
    out = {f: FamilyPosterior(draws["mean"][:, i],  # published as the nightly job does
                              np.minimum(draws["kappa"][:, i], KAPPA_PUBLISHED_MAX))
           for i, f in enumerate(data.families)}  # fmt: skip
    return out, gated.verdict.passed


def run(seed: int = 0, split: float = 0.5, signals: list[str] | None = None) -> list[FoldResult]:
    """Every leave-one-signal-out fold (or those of ``signals``), on the shadow trades of
    :func:`~bayes_mem.evaluation.signals.load_prices` split at ``split`` of the history.

    Examples
    --------
    A split outside (0, 1) is refused at once; the folds themselves are skipped here (each is a
    nightly PyMC fit, tens of seconds):

    >>> run(split=1.5)
    Traceback (most recent call last):
    ...
    ValueError: split must be in (0, 1), got 1.5
    >>> folds = run(signals=["SP500:momentum_20"])  # doctest: +SKIP
    >>> folds[0].family, sorted(folds[0].scores) == sorted(PRIORS)  # doctest: +SKIP
    ('momentum', True)
    """
    from bayes_mem.evaluation.signals import load_prices, shadow_trades
    from bayes_mem.offline.winrate import WinRateModel

    if not 0.0 < split < 1.0:
        raise ValueError(f"split must be in (0, 1), got {split!r}")
    prices = load_prices()
    trades = shadow_trades(prices)
    dates = pd.DatetimeIndex(prices.index)
    cut = int(split * len(dates))
    families = dict(zip(trades.signal.tolist(), trades.family.tolist(), strict=True))
    names = sorted(families) if signals is None else list(signals)
    unknown = sorted(set(names) - set(families))
    if unknown:
        raise ValueError(f"unknown signals {unknown}; the shadow signals are {sorted(families)}")
    model = WinRateModel()  # compiled once for every fold
    out = []
    for s in names:
        keep = (trades.signal != s) & (trades.settle_idx <= cut)
        others = {k: v for k, v in families.items() if k != s}
        posts, passed = _fit_family(trades, dates, keep, others, seed, model)
        fam = posts[families[s]]
        mine = (trades.signal == s) & (trades.open_idx > cut)
        won = trades.won[mine]
        a_j, b_j = fam.betas()
        scores = {}
        for kind, prior in (("flat", (1.0, 1.0)), ("plug_in", fam.point_prior("plug_in")),
                            ("moment", fam.point_prior())):  # fmt: skip
            a, b = prior if isinstance(prior, tuple) else (prior.a, prior.b)
            scores[kind] = sequential_log_scores(won, np.array([a]), np.array([b]))
        scores["full_bayes_live"] = uniform_draw_log_scores(won, a_j, b_j)
        scores["full_bayes_exact"] = sequential_log_scores(won, a_j, b_j)
        out.append(FoldResult(s, families[s], scores, passed))
    return out


def summarise(folds: list[FoldResult], *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per horizon and prior: mean log score per trade, and its difference from ``moment``
    with a 95% bootstrap interval over signals (resampled with their trades).

    Examples
    --------
    Two folds of four trades; only the second fold's moment-matched prior differs from a coin:
    ``(4 log 0.5 + 3 log 0.6 + log 0.4) / 8 = -0.6527`` nats per trade:

    >>> import numpy as np
    >>> coin = {p: np.log(np.full(4, 0.5)) for p in PRIORS}  # four trades scored at 1/2
    >>> sharper = {**coin, "moment": np.log([0.6, 0.6, 0.4, 0.6])}
    >>> folds = [FoldResult("SP500:momentum_20", "momentum", coin, True),
    ...          FoldResult("WTI:breakout_20", "breakout", sharper, False)]
    >>> table = summarise(folds, n_boot=200)
    >>> table[table["trades"] == "first 5"][["prior", "log_score", "vs_moment"]].round(4)
                  prior  log_score  vs_moment
    0              flat    -0.6931    -0.0405
    1           plug_in    -0.6931    -0.0405
    2            moment    -0.6527     0.0000
    3   full_bayes_live    -0.6931    -0.0405
    4  full_bayes_exact    -0.6931    -0.0405
    """
    gen = np.random.default_rng(seed)
    rows = []
    k = len(folds)
    pick = gen.integers(0, k, size=(n_boot, k))
    for h in HORIZONS:
        sums = {p: np.array([f.scores[p][:h].sum() for f in folds]) for p in PRIORS}
        counts = np.array([f.scores["moment"][:h].size for f in folds], dtype=float)
        for p in PRIORS:
            diff = sums[p] - sums["moment"]
            boot = diff[pick].sum(axis=1) / counts[pick].sum(axis=1)
            rows.append({
                "trades": "all" if h is None else f"first {h}",
                "prior": p,
                "log_score": sums[p].sum() / counts.sum(),
                "vs_moment": diff.sum() / counts.sum(),
                "vs_moment_lo": float(np.quantile(boot, 0.025)),
                "vs_moment_hi": float(np.quantile(boot, 0.975)),
                "n_trades": int(counts.sum()),
            })  # fmt: skip
    return pd.DataFrame(rows)


def main(out_dir: str = "docs/evaluation/bandits") -> None:
    """Run every fold (:func:`run`), summarise them (:func:`summarise`) and write
    ``cold_start_real.csv`` and ``cold_start_real.md`` into ``out_dir``.

    Examples
    --------
    Skipped: 21 nightly PyMC fits (tens of minutes):

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     main(d)
    """
    from bayes_mem.evaluation.tables import markdown_table

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip() or "unknown"  # fmt: skip
    t0 = time.perf_counter()
    folds = run()
    table = summarise(folds)
    table.to_csv(out / "cold_start_real.csv", index=False, float_format="%.6g")
    gates = sum(f.gate_passed for f in folds)
    text = (
        f"Command: `python -m bayes_mem.evaluation.cold_start_real`, commit {commit}, "
        f"{time.perf_counter() - t0:.0f} s. {len(folds)} leave-one-signal-out folds on the "
        f"policy backtest's real shadow trades (split at the middle of 1999-2018); the fit's "
        f"gate passed in {gates} of {len(folds)} folds (all folds are scored). Mean log "
        f"predictive score per trade of the new signal's trades (higher is better; a coin "
        f"scores {np.log(0.5):.4f}), and the difference from the published moment-matched prior "
        f"with a 95% bootstrap interval over signals (optimistic: one family's signals trade "
        f"on the same days).\n\n" + markdown_table(table, floatfmt=".5f") + "\n"
    )
    (out / "cold_start_real.md").write_text(text)


if __name__ == "__main__":  # pragma: no cover
    main(*sys.argv[1:])
