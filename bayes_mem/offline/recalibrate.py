"""The nightly recalibration job: read the store, fit, gate, publish (or reject) a prior set.

Steps, each timed: the settled trades from the store (per trade its signal, family, outcome and
*cluster*: the family and the day the trade opened, or settled when the opening is unknown) ->
hierarchical win-rate fit with correlated outcomes in a cluster (PyMC + nutpie,
:mod:`bayes_mem.offline.winrate`) -> posterior predictive check -> diagnostics gate -> per-symbol
return draws -> a new prior-set
version written atomically with its fit as netCDF (configuration in attrs) -> store record ->
activation when the gate passed. A rejected fit is written too, for analysts, but never activated:
the previous prior set stays live.

Returns: by default the partially pooled GJR-GARCH skew-t PyMC model of
:mod:`bayes_mem.offline.returns_model`, fitted on the symbols' common dates in the window and gated
like the win-rate fit (both must pass, each with its posterior predictive check); its draws and
end-of-window variance states (rolled forward through any later returns of a symbol) are
published. ``returns_model="laplace"`` uses the per-symbol maximum-likelihood + Laplace
approximation of :func:`bayes_mem.live.gjr_garch.fit_laplace` instead (fast, not gated).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from bayes_mem import __version__
from bayes_mem.live.gjr_garch import fit_laplace, variance_path
from bayes_mem.live.pit import normal_scores
from bayes_mem.live.prior_set import (
    FamilyPosterior,
    PriorSet,
    PriorSetError,
    SymbolPosterior,
    activate,
    active_version,
    write_prior_set,
)
from bayes_mem.offline import returns_model as rm
from bayes_mem.offline import winrate
from bayes_mem.offline.diagnostics import Verdict, gate
from bayes_mem.offline.regime_prior import estimate_regime_prior
from bayes_mem.offline.report import COUNTS_FILE, RUN_FILE, run_record, write_version_report
from bayes_mem.offline.winrate import (
    PRIORS,
    WinRateData,
    WinRateModel,
    family_draws,
    gated_vars,
    posterior_predictive_pvalues,
    prior_sd_ratios,
)
from bayes_mem.store import schema
from bayes_mem.store.store import Store

log = logging.getLogger("bayes_mem.recalibrate")

#: family concentration draws are published up to this many pseudo-trades (the prior set's
#: plausible bound): beyond it a family's signals are indistinguishable at any trade count the
#: live path sees, and the moment-matched prior is set by the uncertainty of the mean anyway
KAPPA_PUBLISHED_MAX = 1e4

EXIT_PUBLISHED = 0
EXIT_ERROR = 1
EXIT_REJECTED = 3


# integer fields of RecalibrationConfig and their smallest accepted values
_INT_MINIMUM = {
    "draws": 1, "tune": 0, "chains": 1, "seed": 0, "family_draws_published": 1,
    "returns_window": 100, "returns_min_days": 100, "returns_draws": 1,
    "returns_mcmc_draws": 1, "returns_mcmc_tune": 0, "regime_window": 10,
}  # fmt: skip


@dataclass(frozen=True)
class RecalibrationConfig:
    draws: int = 2000
    tune: int = 2000
    chains: int = 4
    target_accept: float = 0.99
    seed: int = 0
    family_draws_published: int = 400  # hyperparameter draws kept in the prior set
    returns_window: int = 1000  # days per symbol for the returns fit
    returns_min_days: int = 250
    returns_draws: int = 200  # parameter draws per symbol in the prior set
    returns_model: str = "pymc"  # "pymc" (pooled Bayesian GJR-GARCH skew-t) or "laplace"
    returns_mcmc_draws: int = 1000  # per chain, for returns_model="pymc"
    returns_mcmc_tune: int = 1000
    returns_target_accept: float = 0.9
    # a returns fit with divergences is refitted once at this target acceptance (None: never);
    # the gate still judges the refit, and nothing with divergences is published
    returns_retry_target_accept: float | None = 0.97
    regime: bool = True  # estimate and publish the regime detector's hazard and prior
    regime_window: int = 500  # last days of normal scores per symbol for that estimate

    def __post_init__(self) -> None:
        for name, low in _INT_MINIMUM.items():
            v = getattr(self, name)
            if type(v) is not int or v < low:  # bool is not int here; 2.0 is not an int
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if type(self.regime) is not bool:
            raise ValueError(f"regime must be true or false, got {self.regime!r}")
        if self.returns_min_days > self.returns_window:
            raise ValueError(
                f"returns_min_days ({self.returns_min_days}) exceeds returns_window "
                f"({self.returns_window})"
            )
        if self.returns_model not in ("laplace", "pymc"):
            raise ValueError(
                f"returns_model must be 'laplace' or 'pymc', got {self.returns_model!r}"
            )
        for name in ("target_accept", "returns_target_accept", "returns_retry_target_accept"):
            v = getattr(self, name)
            if v is None and name == "returns_retry_target_accept":
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 < v < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {v!r}")

    @classmethod
    def from_file(cls, path: str | Path) -> RecalibrationConfig:
        """A config from a JSON object of field values (the others keep their defaults)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"config {path} is not UTF-8 text: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"config {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"config {path} must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)} in {path}")
        return cls(**data)

    def hash(self) -> str:
        priors = {"winrate": PRIORS, "returns": rm.PRIORS}
        text = json.dumps({**asdict(self), "priors": priors}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RecalibrationResult:
    version: int
    status: str  # "active" or "rejected"
    verdict: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    artifact_dir: str = ""
    n_signals: int = 0
    n_symbols: int = 0
    report: str = ""  # the analyst report's path ("" if it failed or was not asked for)

    @property
    def exit_code(self) -> int:
        return EXIT_PUBLISHED if self.status == "active" else EXIT_REJECTED

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def next_version(store: Store, models_dir: Path) -> int:
    with store.engine.connect() as conn:
        top = conn.execute(sa.select(sa.func.max(schema.prior_sets.c.version))).scalar() or 0
    existing = [
        int(p.name[1:]) for p in (models_dir / "prior_sets").glob("v[0-9]*") if p.name[1:].isdigit()
    ]
    return max([top, *existing]) + 1


def reconcile(store: Store, models_dir: Path) -> None:
    """Make the store's prior-set statuses agree with ``ACTIVE`` (the trader's source of truth):
    a run killed between activation and its status update left them apart."""
    active = active_version(models_dir)
    if active is None:
        return
    ps = schema.prior_sets
    with store.transaction() as conn:
        rows = dict(conn.execute(sa.select(ps.c.version, ps.c.status)).all())
        wrong = [v for v, st in rows.items() if st == "active" and v != active]
        if wrong:
            conn.execute(ps.update().where(ps.c.version.in_(wrong)).values(status="retired"))
        if rows.get(active) not in (None, "active"):
            conn.execute(
                ps.update().where(ps.c.version == active)
                .values(status="active", activated_at=dt.datetime.now(dt.UTC))
            )  # fmt: skip
        if wrong or rows.get(active) not in (None, "active"):
            log.warning("store prior-set statuses reconciled with ACTIVE (v%d)", active)


def recalibrate(
    store: Store,
    models_dir: str | Path = "models",
    config: RecalibrationConfig | None = None,
    winrate_model: WinRateModel | None = None,
    returns_model: rm.ReturnsModel | None = None,
    *,
    report: bool = True,
) -> RecalibrationResult:
    """Run the nightly job once; ``winrate_model``/``returns_model`` carry compiled models across
    runs in one process (default: the process-wide caches). ``report``: write the analyst report
    of the new version (published or rejected) after publishing."""
    config = config or RecalibrationConfig()
    models = Path(models_dir)
    models.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 3)
        log.info("%s done in %.1f s", name, timings[name])

    reconcile(store, models)
    t0 = time.perf_counter()
    counts = store.signal_counts()
    if counts.empty or counts["trades"].sum() == 0:
        raise ValueError("the store has no settled outcomes to fit")
    data = WinRateData.from_trades(
        winrate_trades(store.outcomes()), dict(zip(counts["signal"], counts["family"], strict=True))
    )
    step("read_store", t0)

    t0 = time.perf_counter()
    log.info("fitting win rates: %d signals in %d families", len(counts), len(data.families))
    tree = (winrate_model or winrate.default_model()).fit(
        data, draws=config.draws, tune=config.tune, chains=config.chains,
        target_accept=config.target_accept, seed=config.seed,
    )  # fmt: skip
    step("fit_win_rates", t0)

    t0 = time.perf_counter()
    ppc = posterior_predictive_pvalues(data, tree, rng=config.seed)
    verdict: Verdict = gate(tree, gated_vars(tree), ppc, prior_sd_ratios(tree))
    step("diagnostics", t0)

    t0 = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    hyper = family_draws(
        tree,
        min(
            config.family_draws_published,
            tree["posterior"].sizes["draw"] * tree["posterior"].sizes["chain"],
        ),
        rng,
    )
    families = {
        f: FamilyPosterior(
            hyper["mean"][:, i],
            np.minimum(hyper["kappa"][:, i], KAPPA_PUBLISHED_MAX),
            hyper["rho"][:, i] if data.clustered else None,
        )
        for i, f in enumerate(data.families)
    }
    symbols: dict[str, SymbolPosterior] = {}
    panel = store.returns_panel()
    data_through = str(panel.index.max()) if len(panel.index) else None
    returns_tree, window = None, None
    pit_inputs: dict[str, tuple[np.ndarray, Any, float]] = {}  # returns, draws, start variance
    if config.returns_model == "pymc" and len(panel.columns):
        window = returns_window(panel, config)
    if window is not None and window.shape[1]:
        names = [str(c) for c in window.columns]
        log.info("fitting returns: %d symbols x %d days", len(names), len(window))
        r = window.to_numpy()
        returns_tree = _fit_returns(returns_model or rm.default_model(), r, names, config)
        ppc_r = rm.posterior_predictive_pvalues(returns_tree, r, rng=config.seed)
        returns_verdict = gate(returns_tree, rm.GATED_VARS, ppc_r)
        verdict = Verdict(
            verdict.passed and returns_verdict.passed,
            verdict.reasons + tuple(f"returns: {x}" for x in returns_verdict.reasons),
            {**verdict.summary, **{f"returns_{k}": v for k, v in returns_verdict.summary.items()}},
        )
        last = window.index.max()
        for name, (draws, sigma2) in rm.draws_for_live(
            returns_tree, config.returns_draws, rng
        ).items():
            later = panel[name].loc[panel.index > last].dropna().to_numpy()
            if later.size:  # bring the state forward through the symbol's later returns
                sigma2 = variance_path(later, draws, sigma2)[:, -1]
            symbols[name] = SymbolPosterior(draws, sigma2)
            col = window[name].to_numpy()
            pit_inputs[name] = (col, draws, float(col.var()))
    elif config.returns_model == "laplace":
        for symbol in panel.columns:
            r = panel[symbol].dropna().to_numpy()[-config.returns_window :]
            if r.size < config.returns_min_days:
                log.warning("skipping %s: %d days < %d", symbol, r.size, config.returns_min_days)
                continue
            fit = fit_laplace(r, config.returns_draws, rng)
            sigma2 = variance_path(r, fit.draws, float(np.var(r)))[:, -1]
            symbols[str(symbol)] = SymbolPosterior(fit.draws, sigma2)
            pit_inputs[str(symbol)] = (r, fit.draws, float(np.var(r)))
    step("fit_returns", t0)

    regime = None
    if config.regime and pit_inputs:
        t0 = time.perf_counter()
        scores = [
            normal_scores(r, d, v)[-config.regime_window :] for r, d, v in pit_inputs.values()
        ]
        regime = estimate_regime_prior(scores, refine=False)
        log.info(
            "regime prior: hazard %.4g (expected run %.0f days)%s", regime["hazard"],
            regime["expected_run_length"],
            f", at bound: {regime['at_bound']}" if regime["at_bound"] else "",
        )  # fmt: skip
        step("regime_prior", t0)

    t0 = time.perf_counter()
    version = next_version(store, models)
    prior_set = PriorSet(
        version=version,
        created_at=dt.datetime.now(dt.UTC).isoformat(),
        data_through=data_through,
        code_version=__version__,
        config_hash=config.hash(),
        families=families,
        symbols=symbols,
        diagnostics=verdict.to_json(),
        regime=regime,
    )

    try:
        previous = active_version(models)
    except PriorSetError as exc:
        log.warning("cannot read the active version (%s); the report compares with none", exc)
        previous = None
    run = run_record(
        version=version, timings=timings, config=asdict(config), previous_active=previous,
        window=window, outcomes=_outcome_span(store),
    )  # fmt: skip

    def artifacts(directory: Path) -> None:
        _write_fit(tree, directory, config)
        if returns_tree is not None:
            _write_fit(returns_tree, directory, config, "returns")
        counts.to_csv(directory / COUNTS_FILE, index=False)
        (directory / COUNTS_FILE).chmod(0o600)
        (directory / RUN_FILE).write_text(json.dumps(run, indent=1, default=str))
        (directory / RUN_FILE).chmod(0o600)

    final = write_prior_set(prior_set, models, extra=artifacts)
    status = "active" if verdict.passed else "rejected"
    through = None if data_through is None else dt.date.fromisoformat(data_through[:10])
    record = {
        "version": version,
        "created_at": dt.datetime.now(dt.UTC),
        "data_from": None,
        "data_through": through,
        "code_version": __version__,
        "config_hash": config.hash(),
        "status": "candidate" if verdict.passed else "rejected",
        "diagnostics": json.dumps(verdict.to_json()),
        "artifact_dir": str(final),
    }
    with store.transaction() as conn:
        conn.execute(schema.prior_sets.insert().values(**record))
    if verdict.passed:
        activate(models, version)
        with store.transaction() as conn:
            ps = schema.prior_sets
            conn.execute(ps.update().where(ps.c.status == "active").values(status="retired"))
            conn.execute(
                ps.update().where(ps.c.version == version)
                .values(status="active", activated_at=dt.datetime.now(dt.UTC))
            )  # fmt: skip
    step("publish", t0)
    log.info("prior set v%d %s: %s", version, status, "; ".join(verdict.reasons) or "gate passed")
    report_file = ""
    if report:
        t0 = time.perf_counter()
        try:
            report_file = str(
                write_version_report(
                    models, version, store, previous=previous, timings=timings, seed=config.seed
                )
            )
            log.info("report written to %s", report_file)
        except Exception:  # the report must never block or undo the publish
            log.exception("the report of prior set v%d failed; the prior set stands", version)
        step("report", t0)
    return RecalibrationResult(
        version, status, verdict.to_json(), timings, str(final), len(counts), len(symbols),
        report_file,
    )  # fmt: skip


def winrate_trades(outcomes: Any) -> Any:
    """One row per settled trade for :meth:`WinRateData.from_trades`: signal, won and the
    cluster key, the UTC day the trade opened (or settled, when its opening is unknown)."""
    import pandas as pd

    opened = pd.to_datetime(outcomes["opened_at"], utc=True)
    settled = pd.to_datetime(outcomes["settled_at"], utc=True)
    day = opened.fillna(settled).dt.strftime("%Y-%m-%d")
    return pd.DataFrame(
        {"signal": outcomes["signal"].to_numpy(), "won": outcomes["won"].astype(bool).to_numpy(),
         "cluster": day.to_numpy()}
    )  # fmt: skip


def _outcome_span(store: Store) -> dict[str, Any]:
    """What the win-rate fit saw of the outcomes table: trades, signals, settlement dates and
    the last arrival number (the report replays outcomes up to it)."""
    o = schema.outcomes
    q = sa.select(
        sa.func.count(o.c.seq), sa.func.count(sa.distinct(o.c.signal)),
        sa.func.min(o.c.settled_at), sa.func.max(o.c.settled_at), sa.func.max(o.c.seq),
    )  # fmt: skip
    with store.engine.connect() as conn:
        n, signals, first, last, seq = conn.execute(q).one()
    return {
        "trades": int(n), "signals": int(signals), "settled_from": str(first),
        "settled_through": str(last), "through_seq": None if seq is None else int(seq),
    }  # fmt: skip


def _fit_returns(model: rm.ReturnsModel, r: np.ndarray, names: list[str], config) -> Any:
    """The returns fit at ``returns_target_accept``; if it diverged, once more at
    ``returns_retry_target_accept`` (smaller steps: slower, but the usual cure). The target
    used is recorded in the tree's attrs."""
    targets = [config.returns_target_accept]
    if config.returns_retry_target_accept is not None:
        targets.append(config.returns_retry_target_accept)
    for i, target in enumerate(targets):
        tree = model.fit(
            r, names, draws=config.returns_mcmc_draws, tune=config.returns_mcmc_tune,
            chains=config.chains, target_accept=target, seed=config.seed + i,
        )  # fmt: skip
        tree.attrs["target_accept"] = target
        diverging = int(np.asarray(tree["sample_stats"]["diverging"]).sum())
        if diverging == 0 or i == len(targets) - 1:
            return tree
        log.warning(
            "returns fit: %d divergent transitions at target_accept %.2f; refitting at %.2f",
            diverging, target, targets[i + 1],
        )  # fmt: skip
    raise AssertionError("unreachable")  # pragma: no cover


def returns_window(panel: Any, config: RecalibrationConfig) -> Any:
    """The returns the pooled model is fitted on: the last ``returns_window`` days, symbols with
    at least ``returns_min_days`` returns there (others skipped with a warning), and the dates on
    which all of them have a return."""
    recent = panel.iloc[-config.returns_window :]
    counts = recent.notna().sum()
    for symbol in counts.index[counts < config.returns_min_days]:
        log.warning("skipping %s: %d days < %d", symbol, counts[symbol], config.returns_min_days)
    window = recent.loc[:, counts >= config.returns_min_days].dropna()
    if window.shape[1] and len(window) < config.returns_min_days:
        raise ValueError(
            f"only {len(window)} dates with a return for all of {list(window.columns)} "
            f"(returns_min_days={config.returns_min_days})"
        )
    return window


def _write_fit(
    tree: Any, directory: Path, config: RecalibrationConfig, which: str = "winrate"
) -> None:
    """A fit as netCDF (posterior and sample stats) with its configuration in attrs."""
    import xarray as xr

    stats = tree["sample_stats"].to_dataset()
    stats = stats.drop_vars([k for k, v in stats.data_vars.items() if v.dtype == object])
    out = xr.DataTree.from_dict(
        {"posterior": tree["posterior"].to_dataset(), "sample_stats": stats}
    )
    out.attrs.update(
        model=f"bayes_mem.offline.{'winrate' if which == 'winrate' else 'returns_model'}",
        config=json.dumps(asdict(config)), config_hash=config.hash(), code_version=__version__,
        priors=json.dumps(PRIORS if which == "winrate" else rm.PRIORS),
    )  # fmt: skip
    path = directory / f"{which}_fit.nc"
    out.to_netcdf(path, engine="h5netcdf")
    path.chmod(0o600)
