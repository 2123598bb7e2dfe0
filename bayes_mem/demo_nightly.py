"""``bayes-mem demo``: the whole loop on a fresh machine, on synthetic history.

1. creates a SQLite store under ``demo/data`` (recreated each run) and fills it: a few hundred
   signals in four families with known true win rates and a few months of settled trades; three
   years of daily returns for a dozen symbols with volatility clustering (GJR-GARCH-t);
2. runs the nightly job into ``demo/models``: win-rate fit, diagnostics gate, prior set;
3. runs a simulated trading day on the published priors: the decider restored from the store,
   family priors applied, signals decided, positions sized by CVaR budget x Kelly x correlation,
   outcomes recorded to the store.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_mem.live import BetaPrior, ReturnModel, combine_limits, cvar_position_limit, kelly_binary
from bayes_mem.live.changepoint import regime_factor
from bayes_mem.live.correlation import concentration, limit_factors, shrunk_correlation
from bayes_mem.live.gjr_garch import GarchDraws, simulate
from bayes_mem.live.pit import normal_scores
from bayes_mem.live.prior_set import apply_family_priors, load_active

MARKER = ".bayes_mem_demo"
FAMILIES = {"momentum": (0.53, 40.0), "mean_reversion": (0.48, 30.0), "breakout": (0.51, 15.0),
            "carry": (0.55, 60.0)}  # fmt: skip
SYMBOLS = ["SPY", "QQQ", "IWM", "EFA", "EEM", "TLT", "IEF", "GLD", "USO", "XLF", "XLE", "XLK"]


@dataclass
class DemoPaths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def models(self) -> Path:
        return self.root / "models"


def prepare_folder(root: Path) -> DemoPaths:
    """(Re)create the demo folder; refuses to wipe a folder the demo did not create."""
    if root.exists():
        if not (root / MARKER).exists():
            raise ValueError(f"{root} exists and was not created by the demo; not touching it")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("created by bayes-mem demo; deleted and recreated on every run\n")
    return DemoPaths(root)


def synthesize(store, rng: np.random.Generator, signals_per_family: int = 75) -> dict[str, float]:
    """Fill ``store``; returns each signal's true win rate."""
    truth: dict[str, float] = {}
    names: dict[str, str] = {}
    for fam, (mean, conc) in FAMILIES.items():
        for i in range(signals_per_family):
            name = f"{fam}_{i:03d}"
            names[name] = fam
            truth[name] = float(rng.beta(mean * conc, (1 - mean) * conc))
    store.register_signals(names)
    days = pd.bdate_range(end=pd.Timestamp("2026-11-24"), periods=3 * 252)
    rows = []
    for name, p in truth.items():
        n = int(rng.integers(0, 60))
        settled = rng.choice(days[-120:], n)
        won = rng.random(n) < p
        pnl = np.where(won, rng.gamma(2.0, 60.0, n), -rng.gamma(2.0, 50.0, n))
        rows += [
            (f"{name}-{k}", name, bool(w), float(x), d)
            for k, (w, x, d) in enumerate(zip(won, pnl, settled, strict=True))
        ]
    store.ingest_outcomes(
        pd.DataFrame(rows, columns=["trade_id", "signal", "won", "pnl", "settled_at"])
    )
    # correlated GJR-GARCH returns: a common factor plus idiosyncratic noise
    base = GarchDraws(
        mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.87], nu=[6.0], lam=[-0.1]
    )
    market, _ = simulate(base, days.size, rng)
    for k, sym in enumerate(SYMBOLS):
        own, _ = simulate(base, days.size, rng)
        loading = 0.3 + 0.6 * rng.random()
        r = loading * market[0] + np.sqrt(1 - loading**2) * own[0] * (0.7 + 0.1 * (k % 5))
        store.ingest_returns(pd.DataFrame({"symbol": sym, "date": days, "return": r}), kind="log")
    return truth


def trading_day(
    store,
    models: Path,
    rng: np.random.Generator,
    truth: dict[str, float],
    portfolio_value: float = 1e6,
) -> list[str]:
    """One simulated day on the active prior set (outcomes drawn from the signals' true win
    rates); returns the report lines."""
    from bayes_mem.store import PersistentDecider

    prior_set = load_active(models)
    if prior_set is None:
        return ["no active prior set: the gate rejected tonight's fit; trading on flat priors"]
    decider = PersistentDecider.restore(
        store, {f: BetaPrior(1, 1) for f in FAMILIES}, rng=int(rng.integers(2**31))
    )
    apply_family_priors(prior_set, decider.decider)
    model = ReturnModel(
        {s: p.draws for s, p in prior_set.symbols.items()},
        {s: p.sigma2 for s, p in prior_set.symbols.items()},
    )
    # normal scores of the last year under the published posterior predictive: volatility and
    # fat tails removed, so correlation and regime changes are seen for what they are
    hist = store.returns_panel(model.symbols).dropna().iloc[-500:]
    scores = np.column_stack([
        normal_scores(hist[s].to_numpy(), prior_set.symbols[s].draws, float(hist[s].var()))
        for s in model.symbols
    ])  # fmt: skip
    corr, _ = shrunk_correlation(scores[-120:])
    conc = concentration(corr)
    corr_factor, _ = limit_factors(conc.score, 0.0)
    p_change = np.zeros(len(model.symbols))
    if prior_set.regime is not None:
        detector = prior_set.regime_detector(list(model.symbols))
        for row in scores[-250:]:
            p_change = detector.update(row).p_change
    regime = regime_factor(p_change)
    risk = model.risk(0.975)
    lines = [
        f"active prior set v{prior_set.version} ({len(prior_set.families)} families, "
        f"{len(prior_set.symbols)} symbols); concentration {conc.score:.2f}, "
        f"effective bets {conc.effective_bets:.1f} of {len(model.symbols)}",
        f"regime: hazard {prior_set.regime['hazard']:.4f}, P(change in last "
        f"{detector.k} days) max {p_change.max():.2f} ({model.symbols[int(p_change.argmax())]})"
        if prior_set.regime is not None
        else "regime: no prior published",
        "",
        f"{'signal':<22}{'symbol':<7}{'p draw':>8}{'act':>5}{'ES 97.5%':>10}{'regime':>8}"
        f"{'limit $':>12}  binding",
    ]
    fired = rng.choice(list(decider.signals), 12, replace=False)
    for k, name in enumerate(fired):
        act, p = decider.decide(name)
        sym_i = k % len(model.symbols)
        es = float(risk.es_simple[sym_i])
        m = decider.metrics(name)
        payoff = (m.avg_win / m.avg_loss) if m.avg_win and m.avg_loss else 1.0
        post = decider.posterior(name)
        p_draws = rng.beta(post.a, post.b, 200)
        limit = combine_limits(
            cvar_limit=cvar_position_limit(es, portfolio_value, 0.02),
            kelly_limit=portfolio_value * kelly_binary(p_draws, payoff),
            factors={"correlation": corr_factor},
            regime=float(regime[sym_i]),
        )
        lines.append(
            f"{name:<22}{model.symbols[sym_i]:<7}{p:>8.3f}{'yes' if act else 'no':>5}"
            f"{es:>10.2%}{regime[sym_i]:>8.2f}{(limit.limit if act else 0.0):>12,.0f}  "
            f"{limit.binding if act else '-'}"
        )
        if act:
            won = bool(rng.random() < truth[name])
            decider.record(name, won, 80.0 if won else -70.0, trade_id=f"live-{name}-{k}")
    return lines


def run(root: Path = Path("demo"), seed: int = 7) -> tuple[int, list[str]]:
    """The whole demo; returns the nightly job's exit code and the report."""
    import time

    from bayes_mem.offline.recalibrate import RecalibrationConfig, recalibrate
    from bayes_mem.store import Store

    t0 = time.perf_counter()
    paths = prepare_folder(root)
    rng = np.random.default_rng(seed)
    with Store(data_dir=paths.data) as store:
        truth = synthesize(store, rng)
        counts = store.signal_counts()
        t1 = time.perf_counter()
        result = recalibrate(store, paths.models, RecalibrationConfig(returns_draws=100, seed=seed))
        t2 = time.perf_counter()
        day = trading_day(store, paths.models, rng, truth)
    lines = [
        f"store: {paths.data / 'bayes_mem.sqlite'}  ({len(counts)} signals, "
        f"{int(counts['trades'].sum())} settled trades, {len(SYMBOLS)} symbols x 3 years)",
        f"nightly job: prior set v{result.version} {result.status} in {t2 - t1:.0f} s "
        f"(gate: {'passed' if result.verdict['passed'] else '; '.join(result.verdict['reasons'])})",
        f"artifacts: {result.artifact_dir}/ (prior_set.json, winrate_fit.nc, returns_fit.nc)",
        f"analyst report: {result.report or 'failed (see the log)'}",
        "",
        *day,
        "",
        f"demo finished in {time.perf_counter() - t0:.0f} s",
    ]
    return result.exit_code, lines
