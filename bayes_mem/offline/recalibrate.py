"""The nightly recalibration job: read the store, fit, gate, publish (or reject) a prior set.

Steps, each timed: the settled trades from the store (per trade its signal, family, outcome and
*cluster*: the family and the day the trade opened, or settled when the opening is unknown) ->
hierarchical win-rate fit with correlated outcomes in a cluster (PyMC + nutpie,
:mod:`bayes_mem.offline.winrate`) -> posterior predictive check -> diagnostics gate -> per-symbol
return draws -> a new prior-set
version written atomically with its fit as netCDF (configuration in attrs) -> store record ->
activation when the gate passed (``ACTIVE`` and the store's statuses as one decision: a store
that fails to commit leaves ``ACTIVE`` as it was). A rejected fit is written too, for analysts,
but never activated: the previous prior set stays live. A fit whose values fall outside the
prior set's bounds (:mod:`bayes_mem.live.prior_set`) fails that component (never written).

Components. Win rates, returns and the regime prior are gated and versioned separately (one
:class:`Verdict` each): the published set holds tonight's version of every component that
passed and, of one that failed, the live set's version, carried unchanged with its source
(:func:`compose_prior_set`; the contract: ``docs/prior_set.md``). The set goes live when at
least one component refreshed; when none did it is rejected as before. The regime prior is
estimated on the returns fit's normal scores, so it fails with it.

Returns: by default the partially pooled GJR-GARCH skew-t PyMC model of
:mod:`bayes_mem.offline.returns_model`, fitted on the last ``returns_window`` dates of the returns
panel with each symbol on its own dates there (a day a symbol did not trade is not a day of its
series: no shock is skipped, and symbols on different holiday calendars do not shrink each
other's windows to the dates all share), and gated like the win-rate fit (both must pass, each
with its posterior predictive check); its draws and each symbol's variance state after its last
return are published. ``returns_model="laplace"`` uses the per-symbol maximum-likelihood +
Laplace approximation of :func:`bayes_mem.live.gjr_garch.fit_laplace` instead (fast, not gated
beyond the fit's own checks). Either way a symbol with fewer than ``returns_min_days`` returns in
the window, or a stale series (:func:`~bayes_mem.live.gjr_garch.stale_reason`: mostly zero
returns, whose likelihood is unbounded), is skipped with a warning naming the reason; so is a
symbol whose Laplace fit is refused (:class:`~bayes_mem.live.gjr_garch.LaplaceFitError`).
With ``fanout="dask"`` the PyMC returns fit is the two-stage fit of
:mod:`bayes_mem.offline.fanout` on a Dask cluster (``scheduler``, or a local one), gathered into
one fit of the pooled model's layout and gated and published as the same one component.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayes_mem import __version__
from bayes_mem.live.deprecation import warn_renamed
from bayes_mem.live.files import make_private_dirs
from bayes_mem.live.gjr_garch import UnfitSeriesError, fit_laplace, stale_reason, variance_path
from bayes_mem.live.pit import normal_scores
from bayes_mem.live.prior_set import (
    COMPONENTS,
    MAX_DRAWS,
    RHO_RANGE,
    ComponentSource,
    FamilyPosterior,
    PriorSet,
    PriorSetError,
    RegimePrior,
    SymbolPosterior,
    activate,
    active_version,
    list_versions,
    load_active,
    write_prior_set,
)
from bayes_mem.offline import returns_model as rm
from bayes_mem.offline import winrate
from bayes_mem.offline.diagnostics import REFUSED, Failure, FitSettings, Verdict
from bayes_mem.offline.regime_prior import estimate_regime_prior
from bayes_mem.offline.report import write_version_report
from bayes_mem.offline.run_files import COUNTS_FILE, RUN_FILE, run_record
from bayes_mem.offline.winrate import (
    PRIORS,
    WinRateData,
    WinRateModel,
    family_draws,
)
from bayes_mem.store.prior_records import activation_record, prior_set_row, reconcile
from bayes_mem.store.store import Store

log = logging.getLogger("bayes_mem.recalibrate")

#: family concentration draws are published up to this many pseudo-trades (the prior set's
#: plausible bound): beyond it a family's signals are indistinguishable at any trade count the
#: live path sees, and the moment-matched prior is set by the uncertainty of the mean anyway
KAPPA_PUBLISHED_MAX = 1e4
# intra-cluster correlation draws likewise up to the prior set's bound (``RHO_RANGE``, 0.999):
# above it a cluster of n trades counts n / (1 + (n - 1) rho) ~ 1 trade either way

EXIT_PUBLISHED = 0
EXIT_ERROR = 1
EXIT_REJECTED = 3
#: published and active, but a component's fit failed: it kept its previous version (or the
#: set holds none of it yet); ``RecalibrationResult.components`` says which and why
EXIT_PARTIAL = 4


# integer fields of RecalibrationConfig and their smallest accepted values
_INT_MINIMUM = {
    "draws": 1, "tune": 0, "chains": 1, "seed": 0, "family_draws_published": 1,
    "returns_window": 100, "returns_min_days": 100, "returns_draws": 1,
    "returns_mcmc_draws": 1, "returns_mcmc_tune": 0, "regime_window": 10,
    "fanout_workers": 0, "fanout_subset": 2,
}  # fmt: skip
# ... and the largest: draws published in a prior set
_INT_MAXIMUM = {"family_draws_published": MAX_DRAWS, "returns_draws": MAX_DRAWS}
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True)
class RecalibrationConfig:
    """The nightly job's settings (:func:`recalibrate`), checked when built: the win-rate fit's
    sampler (draws and tuning steps per chain, chains, target acceptance, seed), the returns
    fit's (days per symbol, draws published, the model and its sampler), the regime prior's and
    the fan-out's; see each field's comment.

    Examples
    --------
    >>> import json, os, tempfile
    >>> config = RecalibrationConfig(draws=1000, returns_model="laplace")
    >>> config.tune, config.returns_window, len(config.hash())  # the others keep their defaults
    (2000, 1000, 16)
    >>> config.hash() == RecalibrationConfig(draws=1000, returns_model="laplace").hash()
    True
    >>> with tempfile.TemporaryDirectory() as tmp:  # a JSON file of the fields to change
    ...     path = os.path.join(tmp, "nightly.json")
    ...     with open(path, "w") as fh:
    ...         json.dump({"draws": 1000, "returns_model": "laplace"}, fh)
    ...     print(RecalibrationConfig.from_file(path) == config)
    True
    >>> try:
    ...     RecalibrationConfig(returns_min_days=2000)
    ... except ValueError as exc:
    ...     print(exc)
    returns_min_days (2000) exceeds returns_window (1000)
    """

    draws: int = 2000
    tune: int = 2000
    chains: int = 4
    target_accept: float = 0.99
    # the win-rate fit's target acceptance for a data-rich book (winrate_target_accept): there
    # 0.99 only made the trees deeper (1,000,000 signals x 100 families: depth 6 -> 4)
    target_accept_data_rich: float = 0.9
    seed: int = 0
    family_draws_published: int = 400  # hyperparameter draws kept in the prior set
    returns_window: int = 1000  # days per symbol for the returns fit
    returns_min_days: int = 250
    returns_draws: int = 200  # parameter draws per symbol in the prior set
    returns_model: str = "pymc"  # "pymc" (pooled Bayesian GJR-GARCH skew-t) or "laplace"
    returns_mcmc_draws: int = 1000  # per chain, for returns_model="pymc"
    returns_mcmc_tune: int = 1000
    returns_target_accept: float = 0.9
    regime: bool = True  # estimate and publish the regime detector's hazard and prior
    regime_window: int = 500  # last days of normal scores per symbol for that estimate
    # the returns fit beyond one machine (bayes_mem.offline.fanout), returns_model="pymc" only:
    # "off" (one pooled fit in this process) or "dask" (two-stage: a pooled fit of fanout_subset
    # symbols, then one task per other symbol on a Dask cluster; a book of at most
    # fanout_subset symbols is still one pooled fit)
    fanout: str = "off"
    scheduler: str = ""  # address of an existing Dask scheduler; "" starts a local cluster
    fanout_workers: int = 0  # local cluster's worker processes; 0: one per core
    fanout_subset: int = 20

    def __post_init__(self) -> None:
        for name, low in _INT_MINIMUM.items():
            v = getattr(self, name)
            if type(v) is not int or v < low:  # bool is not int here; 2.0 is not an int
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r:.80}")
            if v > _INT_MAXIMUM.get(name, v):
                raise ValueError(f"{name} must be <= {_INT_MAXIMUM[name]:,}, got {v!r:.80}")
        if type(self.regime) is not bool:
            raise ValueError(f"regime must be true or false, got {self.regime!r:.80}")
        if self.returns_min_days > self.returns_window:
            raise ValueError(
                f"returns_min_days ({self.returns_min_days}) exceeds returns_window "
                f"({self.returns_window})"
            )
        if self.returns_model not in ("laplace", "pymc"):
            raise ValueError(
                f"returns_model must be 'laplace' or 'pymc', got {self.returns_model!r:.80}"
            )
        if self.fanout not in ("off", "dask"):
            raise ValueError(f"fanout must be 'off' or 'dask', got {self.fanout!r:.80}")
        if not isinstance(self.scheduler, str):
            raise ValueError(f"scheduler must be an address string, got {self.scheduler!r:.80}")
        if self.scheduler and self.fanout != "dask":
            raise ValueError(f"scheduler {self.scheduler!r:.80} is given but fanout is "
                             f"{self.fanout!r:.80} (set fanout to 'dask')")  # fmt: skip
        for name in ("target_accept", "target_accept_data_rich", "returns_target_accept"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 < v < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {v!r:.80}")

    @classmethod
    def from_file(cls, path: str | Path) -> RecalibrationConfig:
        """A config from a JSON object of field values (the others keep their defaults); at
        most ``MAX_CONFIG_BYTES``.

        Examples
        --------
        >>> import json, os, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "nightly.json")
        ...     with open(path, "w") as fh:
        ...         json.dump({"chains": 2, "regime": False}, fh)
        ...     config = RecalibrationConfig.from_file(path)
        >>> config.chains, config.regime, config.draws  # draws keeps its default
        (2, False, 2000)
        """
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ValueError(f"config {path} is over {MAX_CONFIG_BYTES:,} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"config {path} is not UTF-8 text: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"config {path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise ValueError(f"config {path} is nested too deeply") from None
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            raise ValueError(f"config {path}: {str(exc)[:120]}") from None
        if not isinstance(data, dict):
            raise ValueError(f"config {path} must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)!r:.200} in {path}")
        return cls(**data)

    def hash(self) -> str:
        """The configuration's hash: every field that can change a fit, and the priors. Where
        the fit runs (``scheduler``, ``fanout_workers``) is left out (same seed, same result);
        so are the fan-out fields when it is off (earlier configurations keep their hash).

        Examples
        --------
        Where the fit runs is left out of the hash; what it computes is not:

        >>> base = RecalibrationConfig(fanout="dask", fanout_workers=2)
        >>> base.hash() == RecalibrationConfig(fanout="dask", fanout_workers=8).hash()
        True
        >>> base.hash() == RecalibrationConfig(fanout="dask", fanout_workers=2, seed=1).hash()
        False
        """
        priors = {"winrate": PRIORS, "returns": rm.priors_json()}
        fields = asdict(self)
        for name in ("scheduler", "fanout_workers") + (
            ("fanout", "fanout_subset") if self.fanout == "off" else ()
        ):
            fields.pop(name)
        text = json.dumps({**fields, "priors": priors}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RecalibrationResult:
    """What one run of :func:`recalibrate` did: the prior set's ``version`` and ``status``
    (``"active"`` or ``"rejected"``), the gate's ``verdict`` (JSON), each step's ``timings``
    (seconds), the version's folder, the signals and symbols it covers, the report's path and
    what became of each component; :attr:`exit_code` is the command line's exit status.

    Examples
    --------
    >>> result = RecalibrationResult(7, "active", {"passed": True}, components={
    ...     "winrate": {"status": "refreshed"}, "returns": {"status": "carried"},
    ...     "regime": {"status": "disabled"}})
    >>> result.exit_code == EXIT_PARTIAL  # returns kept last night's version
    True
    >>> RecalibrationResult(8, "rejected", {"passed": False}).exit_code == EXIT_REJECTED
    True
    """

    version: int
    status: str  # "active" or "rejected"
    verdict: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    artifact_dir: str = ""
    n_signals: int = 0
    n_symbols: int = 0
    report: str = ""  # the analyst report's path ("" if it failed or was not asked for)
    # per component (COMPONENTS): tonight's verdict ("passed", "reasons", "kind": "passed",
    # "computational", "misfit", "identification" or "other"), what the set holds of it
    # ("status": "refreshed", "carried", "absent", "disabled") and its source ("version",
    # "data_through")
    components: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The command line's exit status: published and fresh, partial, or rejected.

        Examples
        --------
        >>> fresh = {"winrate": {"status": "refreshed"}, "regime": {"status": "disabled"}}
        >>> RecalibrationResult(3, "active", {"passed": True}, components=fresh).exit_code
        0
        >>> RecalibrationResult(3, "rejected", {"passed": False}).exit_code == EXIT_REJECTED
        True
        """
        if self.status != "active":
            return EXIT_REJECTED
        fresh = all(c.get("status") in ("refreshed", "disabled") for c in self.components.values())
        return EXIT_PUBLISHED if fresh else EXIT_PARTIAL

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data (for the run record's JSON).

        Examples
        --------
        >>> out = RecalibrationResult(3, "active", {"passed": True}, n_signals=12).to_dict()
        >>> out["version"], out["status"], out["n_signals"], out["timings"]
        (3, 'active', 12, {})
        """
        return asdict(self)

    def to_json(self) -> dict[str, Any]:
        """Deprecated alias of :meth:`to_dict` (it never returned JSON text).

        Examples
        --------
        >>> import warnings
        >>> result = RecalibrationResult(3, "active", {"passed": True})
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     out = result.to_json()
        >>> out == result.to_dict(), caught[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("RecalibrationResult.to_json()", "RecalibrationResult.to_dict()")
        return self.to_dict()


def next_version(store: Store, models_dir: Path) -> int:
    """The next prior-set version: one above the highest in the store's records and in the
    ``models_dir`` registry (1 when neither has any).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> next_version(store, Path(tmp.name) / "models")  # no prior set yet: version 1
    1
    >>> store.close()
    >>> tmp.cleanup()
    """
    top = store.latest_prior_version()
    return max([top, *list_versions(models_dir)]) + 1


def recalibrate(
    store: Store,
    models_dir: str | Path = "models",
    config: RecalibrationConfig | None = None,
    winrate_model: WinRateModel | None = None,
    returns_model: Any = None,
    *,
    report: bool = True,
) -> RecalibrationResult:
    """Run the nightly job once; ``winrate_model``/``returns_model`` carry compiled models across
    runs in one process (default: the process-wide caches). ``report``: write the analyst report
    of the new version (published or rejected) after publishing.

    With ``config.fanout == "dask"`` (and the PyMC returns model) the returns fit is the
    two-stage fit of :mod:`bayes_mem.offline.fanout`: the cluster (``config.scheduler``, or a
    local one of ``config.fanout_workers`` processes) is reached before anything is read or
    written, so an unreachable scheduler fails the job with nothing changed. ``returns_model``
    may then be a ready :class:`~bayes_mem.offline.fanout.FanoutReturnsFitter` (its client is
    used as it is) or the stage-1 :class:`~bayes_mem.offline.returns_model.PooledReturnsFitter`.

    Examples
    --------
    The job fits the win rates with PyMC and nutpie (minutes), so the example is not run here:

    >>> config = RecalibrationConfig(returns_model="laplace", draws=1000, tune=1000)
    >>> store = Store(data_dir="data")  # doctest: +SKIP
    >>> result = recalibrate(store, "models", config)  # doctest: +SKIP
    >>> result.status, result.exit_code, result.components["returns"]["status"]  # doctest: +SKIP
    """
    config = config or RecalibrationConfig()
    if config.fanout == "dask" and config.returns_model == "pymc":
        from bayes_mem.offline import fanout

        if isinstance(returns_model, fanout.FanoutReturnsFitter):
            return _recalibrate(store, models_dir, config, winrate_model, returns_model,
                                report=report)  # fmt: skip
        with fanout.dask_client(config.scheduler or None, config.fanout_workers or None) as client:
            fitter = fanout.FanoutReturnsFitter(
                client, subset=config.fanout_subset, pooled=returns_model
            )
            return _recalibrate(store, models_dir, config, winrate_model, fitter, report=report)
    return _recalibrate(store, models_dir, config, winrate_model, returns_model, report=report)


def _recalibrate(
    store: Store,
    models_dir: str | Path,
    config: RecalibrationConfig,
    winrate_model: WinRateModel | None,
    returns_model: Any,
    *,
    report: bool,
) -> RecalibrationResult:
    """The nightly job's steps in order (:func:`recalibrate`), each timed into ``timings``: read
    the outcomes, fit and gate the win rates, fit and gate the returns, estimate the regime
    prior, compose and publish the prior set with its artifacts, write the report."""
    models = Path(models_dir)
    make_private_dirs(models)  # 0700 where created; an existing directory is left as it is
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 3)
        log.info("%s done in %.1f s", name, timings[name])

    reconcile(store, models)
    t0 = time.perf_counter()
    outcomes = read_outcomes(store)
    step("read_store", t0)

    t0 = time.perf_counter()
    win = fit_winrate(outcomes, config, winrate_model)
    verdicts: dict[str, Verdict] = {"winrate": win.verdict}  # one per component
    step("fit_win_rates", t0)  # the fit(s) and their gate

    t0 = time.perf_counter()
    rng = np.random.default_rng(config.seed)  # the families' draws, then the returns'
    families = publish_families(win, config, rng, verdicts)
    panel = store.returns_panel()
    data_through = str(panel.index.max()) if len(panel.index) else None
    fitted = fit_returns(panel, config, rng, returns_model)
    verdicts["returns"] = fitted.verdict
    step("fit_returns", t0)

    live, live_error = None, None
    try:
        live = load_active(models)  # a failing component keeps this set's version of it
    except (PriorSetError, OSError) as exc:
        live_error = str(exc)
        log.warning("cannot load the live prior set (%s): no component can be carried", exc)
    keep_live_symbols(live, panel, fitted.symbols, verdicts)

    t0 = time.perf_counter()
    regime, estimated = estimate_regime(fitted, config, verdicts)
    if estimated:
        step("regime_prior", t0)

    t0 = time.perf_counter()
    version = next_version(store, models)
    try:
        previous = active_version(models)
    except PriorSetError as exc:
        log.warning("cannot read the active version (%s); the report compares with none", exc)
        previous = None
    prior_set, components = compose_prior_set(
        version=version,
        created_at=dt.datetime.now(dt.UTC).isoformat(),
        code_version=__version__,
        config_hash=config.hash(),
        fresh={"winrate": families, "returns": fitted.symbols, "regime": regime},
        through={"winrate": outcomes.through, "returns": data_through, "regime": data_through},
        verdicts=verdicts,
        previous=live,
        previous_error=live_error,
    )
    run = run_record(
        version=version, timings=timings, config=asdict(config), previous_active=previous,
        window=fitted.window, outcomes=store.outcome_span(),
    )  # fmt: skip
    final = publish(store, models, prior_set, config, run, outcomes.counts, win.tree, fitted.tree)
    step("publish", t0)
    verdict = prior_set.diagnostics
    status = "active" if verdict["passed"] is True else "rejected"
    log.info(
        "prior set v%d %s: %s; %s", version, status,
        "; ".join(verdict["reasons"]) or "gate passed", describe_components(components),
    )  # fmt: skip
    report_file = ""
    if report:
        t0 = time.perf_counter()
        report_file = _report(store, models, version, previous, timings, config.seed)
        step("report", t0)
    return RecalibrationResult(
        version, status, verdict, timings, str(final), len(outcomes.counts),
        len(prior_set.symbols), report_file, components,
    )  # fmt: skip


@dataclass
class Outcomes:
    """What the win-rate step reads from the store: per-signal ``counts`` (signal, family,
    wins, trades), the clustered trades as the fit's ``data``, and the last settlement
    (``through``, ISO text).

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> _ = store.register_signals({"mom_a": "momentum", "rev_a": "reversal"})
    >>> _ = store.ingest_outcomes(pd.DataFrame({
    ...     "trade_id": ["t1", "t2", "t3"], "signal": ["mom_a", "mom_a", "rev_a"],
    ...     "won": [True, False, True], "pnl": [12.5, -8.0, 3.0],
    ...     "settled_at": ["2026-03-02T16:00", "2026-03-03T16:00", "2026-03-03T16:00"]}))
    >>> outcomes = read_outcomes(store)
    >>> outcomes.through, outcomes.data.families
    ('2026-03-03', ('momentum', 'reversal'))
    >>> outcomes.counts
      signal    family  wins  trades
    0  mom_a  momentum     1       2
    1  rev_a  reversal     1       1
    >>> store.close()
    >>> tmp.cleanup()
    """

    counts: Any
    data: WinRateData
    through: str | None


def read_outcomes(store: Store) -> Outcomes:
    """The settled outcomes the win rates are fitted on; a store without any is an error.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> _ = store.register_signals({"mom_a": "momentum"})
    >>> try:
    ...     read_outcomes(store)
    ... except ValueError as exc:
    ...     print(exc)
    the store has no settled outcomes to fit
    >>> store.append_outcome("t1", "mom_a", True, 12.5, settled_at="2026-03-02T16:00")
    >>> read_outcomes(store).counts.to_dict("records")
    [{'signal': 'mom_a', 'family': 'momentum', 'wins': 1, 'trades': 1}]
    >>> store.close()
    >>> tmp.cleanup()
    """
    counts = store.signal_counts()
    if counts.empty or counts["trades"].sum() == 0:
        raise ValueError("the store has no settled outcomes to fit")
    outcomes = store.outcomes()
    data = WinRateData.from_trades(
        winrate_trades(outcomes), dict(zip(counts["signal"], counts["family"], strict=True))
    )
    return Outcomes(counts, data, _last_settled(outcomes))


@dataclass
class WinRateFit:
    """The win-rate component's fit: its posterior ``tree``, the gate's ``verdict`` and the
    data it was fitted on.

    Examples
    --------
    What :func:`fit_winrate` returns (it samples); here with a stand-in posterior:

    >>> import numpy as np, pandas as pd, xarray as xr
    >>> data = WinRateData.from_trades(pd.DataFrame(
    ...     {"signal": ["mom_a", "mom_a", "rev_a"], "won": [True, False, True],
    ...      "cluster": ["d1", "d2", "d2"]}), {"mom_a": "momentum", "rev_a": "reversal"})
    >>> ones = np.ones((1, 4, 2))  # (chain, draw, family)
    >>> post = xr.Dataset({"mean": (("chain", "draw", "family"), 0.5 * ones),
    ...                    "kappa": (("chain", "draw", "family"), 20 * ones)})
    >>> win = WinRateFit(xr.DataTree.from_dict({"posterior": post}), Verdict(True, ()), data)
    >>> win.data.families, win.data.clustered, win.tree["posterior"].sizes["draw"]
    (('momentum', 'reversal'), False, 4)
    """

    tree: Any
    verdict: Verdict
    data: WinRateData


def fit_winrate(
    outcomes: Outcomes, config: RecalibrationConfig, model: WinRateModel | None = None
) -> WinRateFit:
    """Fit, gate and (on computational failures) refit the hierarchical win-rate model at the
    configuration's settings (:func:`bayes_mem.offline.winrate.fit_gated`).

    Examples
    --------
    It samples the hierarchical win-rate model (PyMC + nutpie: minutes), so the example is not
    run here:

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> _ = store.register_signals({"mom_a": "momentum"})
    >>> store.append_outcome("t1", "mom_a", True, 12.5, settled_at="2026-03-02T16:00")
    >>> config = RecalibrationConfig(draws=500, tune=500, chains=2)
    >>> win = fit_winrate(read_outcomes(store), config)  # doctest: +SKIP
    >>> win.verdict.passed, win.tree["posterior"].sizes["draw"]  # doctest: +SKIP
    >>> store.close()
    >>> tmp.cleanup()
    """
    data = outcomes.data
    accept = winrate_target_accept(data, config)
    log.info("fitting win rates: %d signals in %d families (target acceptance %s)",
             len(outcomes.counts), len(data.families), accept)  # fmt: skip
    gated = winrate.fit_gated(  # fit, check, and refit on computational failures
        model or winrate.default_model(), data,
        FitSettings(config.draws, config.tune, config.chains, accept, config.seed),
        rng=config.seed,
    )  # fmt: skip
    return WinRateFit(gated.tree, gated.verdict, data)


#: families a book needs for ``target_accept_data_rich`` (its hyperparameters identified)
DATA_RICH_MIN_FAMILIES = 20


def winrate_target_accept(data: winrate.WinRateData, config: RecalibrationConfig) -> float:
    """The win-rate fit's target acceptance for ``data``: ``target_accept_data_rich`` for a
    data-rich book (every family's concentration pinned by its own signals, so sampled centred:
    :func:`~bayes_mem.offline.winrate.centred_concentrations`; and at least
    ``DATA_RICH_MIN_FAMILIES`` families), else ``target_accept``.

    Measured at 0.9 (session 8, clustered synthetic books, 4 chains x (2,000 + 2,000)): 100
    families x 10,000 signals and 20 x 5,000 had no divergences and passed the gate (tree depth 4,
    against 6 at 0.99); 4 families x 2,000 signals diverged (3 and 21 of 792 draws in two of three
    fits of 2 chains), none at 0.99. Data-poor families keep 0.99 for their funnels (1,000 tuning
    steps left divergences on 4 of them).

    Examples
    --------
    >>> import pandas as pd
    >>> few = pd.DataFrame({"family": ["a", "b"], "wins": [30, 40], "trades": [50, 80]})
    >>> winrate_target_accept(winrate.WinRateData.from_counts(few), RecalibrationConfig())
    0.99
    >>> rich = pd.DataFrame({"family": np.repeat([f"f{i}" for i in range(20)], 500),
    ...                      "wins": 300, "trades": 500})
    >>> winrate_target_accept(winrate.WinRateData.from_counts(rich), RecalibrationConfig())
    0.9
    >>> one = rich[rich["family"] == "f0"]  # as rich, but one family: its spread is unknown
    >>> winrate_target_accept(winrate.WinRateData.from_counts(one), RecalibrationConfig())
    0.99
    """
    rich = winrate.centred_concentrations(data) and len(data.families) >= DATA_RICH_MIN_FAMILIES
    return config.target_accept_data_rich if rich else config.target_accept


def publish_families(
    win: WinRateFit,
    config: RecalibrationConfig,
    rng: np.random.Generator,
    verdicts: dict[str, Verdict],
) -> dict[str, FamilyPosterior]:
    """The families' published hyperparameter draws (``family_draws_published`` of them, from
    ``rng``; concentration and intra-cluster correlation capped at their published bounds);
    empty, with the component failed, when a value is outside the prior set's bounds.

    Examples
    --------
    A stand-in for the win-rate fit (one family, 2 chains x 500 draws; ``fit_winrate`` samples):

    >>> import numpy as np, pandas as pd, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> dims = ("chain", "draw", "family")
    >>> post = xr.Dataset({"mean": (dims, rng.beta(55, 45, (2, 500, 1))),
    ...                    "kappa": (dims, rng.gamma(4.0, 10.0, (2, 500, 1)))})
    >>> data = WinRateData.from_trades(pd.DataFrame(
    ...     {"signal": ["mom_a"] * 2, "won": [True, False], "cluster": ["d1", "d2"]}),
    ...     {"mom_a": "momentum"})
    >>> win = WinRateFit(xr.DataTree.from_dict({"posterior": post}), Verdict(True, ()), data)
    >>> config = RecalibrationConfig(family_draws_published=400)
    >>> families = publish_families(win, config, np.random.default_rng(1), {"winrate": win.verdict})
    >>> fam = families["momentum"]
    >>> fam.mean.shape, round(float(fam.mean.mean()), 3), fam.rho is None  # independent trades
    ((400,), 0.553, True)
    """
    tree = win.tree
    hyper = family_draws(
        tree,
        min(
            config.family_draws_published,
            tree["posterior"].sizes["draw"] * tree["posterior"].sizes["chain"],
        ),
        rng,
    )
    clustered = win.data.clustered
    return _within_bounds("winrate", verdicts, lambda: {
        f: FamilyPosterior(
            hyper["mean"][:, i],
            np.minimum(hyper["kappa"][:, i], KAPPA_PUBLISHED_MAX),
            np.minimum(hyper["rho"][:, i], RHO_RANGE[1]) if clustered else None,
        )
        for i, f in enumerate(win.data.families)
    }) or {}  # fmt: skip


def keep_live_symbols(
    live: Any, panel: Any, symbols: dict[str, SymbolPosterior], verdicts: dict[str, Verdict]
) -> None:
    """The trader's return model must keep every symbol it trades: a refresh that lost one (its
    fit refused tonight) fails the returns component, so the live returns are kept instead.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import pandas as pd
    >>> live = SimpleNamespace(symbols={"SPY": ..., "QQQ": ...})  # the live prior set's symbols
    >>> panel = pd.DataFrame(columns=["SPY", "QQQ"])  # both still have returns
    >>> verdicts = {"returns": Verdict(True, ())}
    >>> keep_live_symbols(live, panel, {"SPY": ...}, verdicts)  # tonight's fit lost QQQ
    >>> verdicts["returns"].passed, verdicts["returns"].reasons
    (False, ('would drop symbols the live set covers: QQQ (fits refused tonight, see log)',))
    """
    if live is None or not verdicts["returns"].passed:
        return
    dropped = sorted((set(live.symbols) & {str(c) for c in panel.columns}) - set(symbols))
    if dropped:
        reason = f"{DROPS_SYMBOLS}: {', '.join(dropped[:10])} (fits refused tonight, see log)"
        refuse(verdicts, "returns", "coverage", reason)


def estimate_regime(
    fitted: ReturnsFit, config: RecalibrationConfig, verdicts: dict[str, Verdict]
) -> tuple[RegimePrior | None, bool]:
    """``(prior, estimated)``: the regime detector's prior (hazard and normal-gamma prior)
    estimated on the last ``regime_window`` normal scores of every fitted symbol. Not estimated
    (None, False): off in the configuration, the returns component failed (a ``dependency``
    failure) or no symbol was fitted (``no_fit``); estimated but outside the prior set's bounds:
    (None, True), the component failed.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> panel = pd.DataFrame({"SPY": 0.01 * rng.standard_t(5, 300)},
    ...                      index=pd.bdate_range("2025-01-01", periods=300))
    >>> config = RecalibrationConfig(returns_model="laplace", returns_window=300,
    ...                              returns_min_days=250, returns_draws=50)
    >>> fitted = fit_returns(panel, config, np.random.default_rng(1))
    >>> verdicts = {"returns": fitted.verdict}
    >>> prior, estimated = estimate_regime(fitted, config, verdicts)
    >>> estimated, prior.hazard, prior.max_run_length, verdicts["regime"].passed
    (True, 0.001, 300, True)
    >>> estimate_regime(fitted, RecalibrationConfig(regime=False), verdicts)  # switched off
    (None, False)
    """
    if not config.regime:
        return None, False
    if not verdicts["returns"].passed:
        refuse(verdicts, "regime", "dependency",
               "not estimated: the returns fit it is estimated on failed its gate")  # fmt: skip
        return None, False
    if not fitted.pit_inputs:
        refuse(verdicts, "regime", "no_fit", "not estimated: no symbol's returns were fitted")
        return None, False
    scores = [
        normal_scores(r, d, v)[-config.regime_window :] for r, d, v in fitted.pit_inputs.values()
    ]
    estimate = estimate_regime_prior(scores, refine=False)
    log.info(
        "regime prior: hazard %.4g (expected run %.0f days)%s", estimate["hazard"],
        estimate["expected_run_length"],
        f", at bound: {estimate['at_bound']}" if estimate["at_bound"] else "",
    )  # fmt: skip
    verdicts["regime"] = Verdict(
        True, (), {"hazard": estimate["hazard"], "at_bound": estimate["at_bound"]}
    )
    # the one parse, bounds checked here
    return _within_bounds("regime", verdicts, lambda: RegimePrior.from_dict(estimate)), True


def publish(
    store: Store,
    models: Path,
    prior_set: PriorSet,
    config: RecalibrationConfig,
    run: dict[str, Any],
    counts: Any,
    winrate_tree: Any,
    returns_tree: Any,
) -> Path:
    """Write the prior set with its artifacts (the fits, the counts, the run record) atomically,
    record it in the store and, when its gate passed, activate it (the registry's ACTIVE and the
    store's statuses change together). Returns the version's folder.

    Examples
    --------
    >>> import tempfile, numpy as np, pandas as pd, xarray as xr
    >>> from pathlib import Path
    >>> from bayes_mem.live.prior_set import FamilyPosterior, active_version
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store, models = Store(data_dir=tmp.name), Path(tmp.name) / "models"
    >>> prior_set, _ = compose_prior_set(
    ...     version=1, created_at="2026-03-04T02:00:00+00:00", code_version="0.1",
    ...     config_hash="0123456789abcdef", verdicts={"winrate": Verdict(True, ())}, previous=None,
    ...     fresh={"winrate": {"momentum": FamilyPosterior(np.full(100, 0.55), np.full(100, 40.0))},
    ...            "returns": {}, "regime": None}, through={c: "2026-03-03" for c in COMPONENTS})
    >>> fit = xr.DataTree.from_dict({"posterior": xr.Dataset({"mean": ("draw", np.full(4, 0.55))}),
    ...                              "sample_stats": xr.Dataset()})  # a stand-in win-rate fit
    >>> folder = publish(store, models, prior_set, RecalibrationConfig(), {"version": 1},
    ...                  pd.DataFrame({"signal": ["mom_a"], "trades": [2]}), fit, None)
    >>> sorted(p.name for p in folder.iterdir()), active_version(models)
    (['prior_set.json', 'run.json', 'signal_counts.csv', 'winrate_fit.nc'], 1)
    >>> store.close()
    >>> tmp.cleanup()
    """

    def artifacts(directory: Path) -> None:
        _write_fit(winrate_tree, directory, config)
        if returns_tree is not None:
            _write_fit(returns_tree, directory, config, "returns")
        counts.to_csv(directory / COUNTS_FILE, index=False)
        (directory / COUNTS_FILE).chmod(0o600)
        (directory / RUN_FILE).write_text(json.dumps(run, indent=1, default=str))
        (directory / RUN_FILE).chmod(0o600)

    final = write_prior_set(prior_set, models, extra=artifacts)
    passed = prior_set.diagnostics["passed"] is True
    record = prior_set_row(
        prior_set, models, "candidate" if passed else "rejected", artifact_dir=str(final)
    )
    store.record_prior_set(record)
    if passed:  # ACTIVE and the store's statuses: both change or neither
        version = prior_set.version
        activate(models, version, record=lambda ps: activation_record(store, ps, models))
    return final


def _report(
    store: Store, models: Path, version: int, previous: int | None, timings: dict[str, float],
    seed: int,
) -> str:  # fmt: skip
    """The analyst report of ``version``'s path, or "" when it failed: the report never blocks
    or undoes the publish."""
    try:
        path = str(write_version_report(models, version, store, previous=previous,
                                        timings=timings, seed=seed))  # fmt: skip
    except Exception:  # the report must never block or undo the publish
        log.exception("the report of prior set v%d failed; the prior set stands", version)
        return ""
    log.info("report written to %s", path)
    return path


def _within_bounds(component: str, verdicts: dict[str, Verdict], build: Callable[[], Any]) -> Any:
    """``build()`` (a component's published values, bounds-checked as they are built), or None
    when a value is outside the prior set's bounds: the component then fails its verdict
    (reason ``published values out of bounds: ...``) and is kept back like any failed
    component, while the others refresh. Nothing out of bounds is ever written."""
    try:
        return build()
    except PriorSetError as exc:
        refuse(verdicts, component, "bounds", f"{OUT_OF_BOUNDS}: {exc}")
        return None


def refuse(verdicts: dict[str, Verdict], component: str, check: str, message: str) -> None:
    """Fail ``component`` for a reason found after (or instead of) its gate: ``check`` is
    ``"bounds"``, ``"coverage"``, ``"dependency"`` or ``"no_fit"`` (a :data:`REFUSED`
    failure: never retried). The gate's failures and attempts are kept.

    Examples
    --------
    >>> verdicts = {"returns": Verdict(True, (), {"max_rhat": 1.003})}
    >>> refuse(verdicts, "returns", "coverage", "would drop symbols the live set covers: QQQ")
    >>> v = verdicts["returns"]
    >>> v.passed, v.reasons, v.summary, verdict_kind(v)
    (False, ('would drop symbols the live set covers: QQQ',), {'max_rhat': 1.003}, 'coverage')
    """
    v = verdicts.get(component) or Verdict(True, ())
    out = Verdict.of((*v.failures, Failure(check, REFUSED, message)), dict(v.summary))
    verdicts[component] = Verdict(out.passed, out.reasons, out.summary, out.failures, v.attempts)
    log.warning("%s: %s", component, message)


OUT_OF_BOUNDS = "published values out of bounds"
DROPS_SYMBOLS = "would drop symbols the live set covers"


#: a failed verdict's kind, the first of these its failures have (:func:`failure_kind`)
KINDS = ("misfit", "bounds", "coverage", "dependency", "no_fit", "identification",
         "computational")  # fmt: skip


def failure_kind(failure: Failure) -> str:
    """``"computational"`` (the sampler: R-hat, ESS, ranks, divergences, E-BFMI, tree depth),
    ``"misfit"`` (a posterior predictive check or the live state: the model's),
    ``"identification"`` (the data do not identify a parameter: the sd-ratio check), or, for a
    component refused after its gate (:func:`refuse`), its check: ``"bounds"`` (a published
    value outside the prior set's bounds), ``"coverage"`` (tonight's returns fit lost a symbol
    the live set covers), ``"dependency"`` (the fit it is estimated on failed) or ``"no_fit"``.

    Examples
    --------
    >>> from bayes_mem.offline.diagnostics import COMPUTATIONAL, MISFIT, REFUSED
    >>> failure_kind(Failure("rhat", COMPUTATIONAL, "R-hat 1.05 > 1.01 (tau)"))
    'computational'
    >>> failure_kind(Failure("sd_ratio", MISFIT, "the data do not identify nu"))
    'identification'
    >>> failure_kind(Failure("bounds", REFUSED, "published values out of bounds: kappa"))
    'bounds'
    """
    if failure.kind == REFUSED:
        return failure.check
    if failure.check == "sd_ratio":
        return "identification"
    return failure.kind


def verdict_kind(verdict: Verdict) -> str:
    """``"passed"``, or the kind of a failed verdict: the first of :data:`KINDS` among its
    failures (a misfit first: retrying cannot cure it), else ``"other"``.

    Examples
    --------
    >>> from bayes_mem.offline.diagnostics import COMPUTATIONAL, MISFIT
    >>> both = Verdict.of([Failure("divergences", COMPUTATIONAL, "3 divergent transitions"),
    ...                    Failure("ppc", MISFIT, "check 'max': p = 0.001")], {})
    >>> verdict_kind(both)  # a misfit first: retrying cannot cure it
    'misfit'
    >>> verdict_kind(Verdict(True, ()))
    'passed'
    """
    if verdict.passed:
        return "passed"
    kinds = {failure_kind(f) for f in verdict.failures}
    return next((k for k in KINDS if k in kinds), "other")


def laplace_verdict(symbols: dict[str, SymbolPosterior]) -> Verdict:
    """The returns component's verdict under ``returns_model="laplace"``: no MCMC gate (the
    fit's own checks refuse bad windows); it fails only when no symbol could be fitted.

    Examples
    --------
    >>> v = laplace_verdict({})  # no symbol could be fitted
    >>> v.passed, v.reasons, verdict_kind(v)
    (False, ('no symbol could be fitted (returns_model laplace)',), 'no_fit')
    """
    if not symbols:
        return Verdict.of([Failure("no_fit", REFUSED, "no symbol could be fitted (returns_model "
                                   "laplace)")], {})  # fmt: skip
    return Verdict(True, (), {"returns_model": "laplace", "symbols": len(symbols)})


def compose_prior_set(
    *,
    version: int,
    created_at: str,
    code_version: str,
    config_hash: str,
    fresh: dict[str, Any],
    through: dict[str, str | None],
    verdicts: dict[str, Verdict],
    previous: PriorSet | None,
    previous_error: str | None = None,
) -> tuple[PriorSet, dict[str, dict[str, Any]]]:
    """Tonight's prior set from each component's fit and verdict.

    A component whose fit passed its gate is refreshed (source: this version, ``through`` its
    date). One that failed (or was not fitted) keeps the live set's version (``previous``,
    content and source carried unchanged) or, when the live set holds none of it (or there is
    none), is absent. A component with no verdict (the regime prior switched off) is absent.
    The set is live (``diagnostics["passed"]`` true) when at least one component refreshed and
    every failure could be resolved; when nothing refreshed, or a failure could not be carried
    because the live set is unreadable (``previous_error``), it is rejected: it then holds
    tonight's fits as they are (for analysts) and is never activated.

    Returns the set and, per component, what became of it (see
    :attr:`RecalibrationResult.components`).

    Examples
    --------
    The win rates refreshed, the returns fit failed and there is no live set to carry it from:

    >>> import numpy as np
    >>> from bayes_mem.live.prior_set import FamilyPosterior
    >>> families = {"momentum": FamilyPosterior(np.full(100, 0.55), np.full(100, 40.0))}
    >>> verdicts = {"winrate": Verdict(True, ()), "returns": laplace_verdict({})}
    >>> prior_set, components = compose_prior_set(
    ...     version=1, created_at="2026-03-04T02:00:00+00:00", code_version="0.1",
    ...     config_hash="0123456789abcdef", verdicts=verdicts, previous=None,
    ...     fresh={"winrate": families, "returns": {}, "regime": None},
    ...     through={"winrate": "2026-03-03", "returns": None, "regime": None})
    >>> prior_set.diagnostics["passed"], list(prior_set.families), prior_set.symbols
    (True, ['momentum'], {})
    >>> {c: (info["status"], info["kind"]) for c, info in components.items()}
    {'winrate': ('refreshed', 'passed'), 'returns': ('absent', 'no_fit'),
     'regime': ('disabled', 'disabled')}
    """
    content = {"winrate": fresh["winrate"] or {}, "returns": fresh["returns"] or {},
               "regime": fresh["regime"]}  # fmt: skip
    ok = {c: c in verdicts and verdicts[c].passed and bool(content[c]) for c in COMPONENTS}
    failed = [c for c in COMPONENTS if c in verdicts and not ok[c]]
    live = any(ok.values()) and not (failed and previous_error is not None)
    sources: dict[str, ComponentSource | None] = {}
    report: dict[str, dict[str, Any]] = {}
    for c in COMPONENTS:
        v = verdicts.get(c)
        info: dict[str, Any] = {
            "passed": None if v is None else v.passed,
            "reasons": [] if v is None else list(v.reasons),
            "kind": "disabled" if v is None else verdict_kind(v),
        }
        if not live:  # rejected: tonight's fits as they are
            has = bool(content[c])
            sources[c] = (
                ComponentSource(version, created_at, through[c], bool(v and v.passed))
                if has else None
            )  # fmt: skip
            info["status"] = "rejected" if v is not None else "disabled"
        elif ok[c]:
            sources[c] = ComponentSource(version, created_at, through[c], True)
            info["status"] = "refreshed"
        elif v is not None and previous is not None and previous.source(c) is not None:
            sources[c] = previous.source(c)
            content[c] = {"winrate": previous.families, "returns": previous.symbols,
                          "regime": previous.regime}[c]  # fmt: skip
            info["status"] = "carried"
        else:
            sources[c], content[c] = None, ({} if c != "regime" else None)
            info["status"] = "disabled" if v is None else "absent"
        src = sources[c]
        info["version"] = None if src is None else src.version
        info["data_through"] = None if src is None else src.data_through
        report[c] = info
    returns_src = sources["returns"]
    reasons = [f"{c}: {r}" for c in COMPONENTS if c in verdicts for r in verdicts[c].reasons]
    if failed and previous_error is not None and any(ok.values()):
        reasons.append(f"cannot carry {', '.join(failed)}: the live prior set is unreadable "
                       f"({previous_error})")  # fmt: skip
    summary: dict[str, Any] = dict(verdicts["winrate"].summary) if "winrate" in verdicts else {}
    for c in ("returns", "regime"):
        if c in verdicts:
            summary.update({f"{c}_{k}": x for k, x in verdicts[c].summary.items()})
    diagnostics = {
        "passed": live,
        "reasons": reasons,
        "summary": summary,
        "components": {
            c: {
                **{k: report[c][k] for k in ("passed", "reasons", "kind", "status")},
                # every fit tried (settings, failures): retries of computational failures
                "attempts": verdicts[c].to_dict()["attempts"] if c in verdicts else [],
            }
            for c in COMPONENTS
        },
    }
    prior_set = PriorSet(
        version=version,
        created_at=created_at,
        data_through=through["returns"] if returns_src is None else returns_src.data_through,
        code_version=code_version,
        config_hash=config_hash,
        families=dict(content["winrate"]),
        symbols=dict(content["returns"]),
        diagnostics=diagnostics,
        regime=content["regime"],
        components=sources,
    )
    return prior_set, report


def describe_components(components: dict[str, dict[str, Any]]) -> str:
    """One line: per component what the set holds (``winrate carried from v3 (data through
    2008-07-28; tonight: misfit)``).

    Examples
    --------
    >>> describe_components({
    ...     "winrate": {"status": "refreshed", "kind": "passed", "data_through": "2026-03-03"},
    ...     "returns": {"status": "carried", "version": 6, "kind": "misfit",
    ...                 "data_through": "2026-03-02"},
    ...     "regime": {"status": "disabled", "kind": "disabled"}}).split("; ")
    ['winrate refreshed (data through 2026-03-03)',
     'returns carried from v6 (data through 2026-03-02) [tonight: misfit]', 'regime disabled']
    """
    parts = []
    for c, info in components.items():
        st = info["status"]
        text = f"{c} {st}"
        if st == "carried":
            text += f" from v{info['version']}"
        if info.get("data_through"):
            text += f" (data through {str(info['data_through'])[:10]})"
        if info["kind"] not in ("passed", "disabled"):
            text += f" [tonight: {info['kind']}]"
        parts.append(text)
    return "; ".join(parts)


def _last_settled(outcomes: Any) -> str | None:
    """The UTC date of the last settlement in ``outcomes`` (ISO), None when empty."""
    import pandas as pd

    if outcomes is None or len(outcomes) == 0:
        return None
    last = pd.to_datetime(outcomes["settled_at"], utc=True).max()
    return None if pd.isna(last) else last.date().isoformat()


def winrate_trades(outcomes: Any) -> Any:
    """One row per settled trade for :meth:`WinRateData.from_trades`: signal, won and the
    cluster key, the UTC day the trade opened (or settled, when its opening is unknown).

    Examples
    --------
    >>> import pandas as pd
    >>> outcomes = pd.DataFrame({"signal": ["mom_a", "mom_a"], "won": [True, False],
    ...                          "opened_at": [pd.Timestamp("2026-03-02 23:30", tz="UTC"), pd.NaT],
    ...                          "settled_at": pd.to_datetime(["2026-03-04", "2026-03-05"])})
    >>> winrate_trades(outcomes)  # the day it opened, else the day it settled
      signal    won     cluster
    0  mom_a   True  2026-03-02
    1  mom_a  False  2026-03-05
    """
    import pandas as pd

    opened = pd.to_datetime(outcomes["opened_at"], utc=True)
    settled = pd.to_datetime(outcomes["settled_at"], utc=True)
    day = opened.fillna(settled).dt.strftime("%Y-%m-%d")
    return pd.DataFrame(
        {"signal": outcomes["signal"].to_numpy(), "won": outcomes["won"].astype(bool).to_numpy(),
         "cluster": day.to_numpy()}
    )  # fmt: skip


@dataclass
class ReturnsFit:
    """The nightly job's returns component on one panel (:func:`fit_returns`): its ``verdict``,
    the published per-symbol posteriors (``symbols``: draws and the variance after each symbol's
    last return; empty when the component failed), the PIT inputs of each fitted symbol
    (returns, draws, start variance: the regime estimate's input), and with the pooled model
    its posterior ``tree`` and the fitted ``window`` (None otherwise).

    Examples
    --------
    A returns fit on a panel with nothing to fit fails its component:

    >>> import numpy as np, pandas as pd
    >>> fitted = fit_returns(pd.DataFrame(), RecalibrationConfig(returns_model="laplace"),
    ...                      np.random.default_rng(0))
    >>> fitted.verdict.passed, fitted.symbols, fitted.tree is None
    (False, {}, True)
    """

    verdict: Verdict
    symbols: dict[str, SymbolPosterior]
    pit_inputs: dict[str, tuple[np.ndarray, Any, float]]
    tree: Any = None
    window: Any = None


def fit_returns(
    panel: Any, config: RecalibrationConfig, rng: np.random.Generator, returns_model: Any = None
) -> ReturnsFit:
    """The returns component of the nightly job on ``panel`` (dates x symbols of daily log
    returns, NaN where a symbol has none), as :func:`recalibrate` fits, gates and draws it:
    with ``returns_model="pymc"`` the pooled fit of :func:`returns_window` (holdout, gate and
    retries of :func:`~bayes_mem.offline.returns_model.fit_gated`), ``config.returns_draws``
    draws per symbol from ``rng``; with ``"laplace"`` the per-symbol fits. ``returns_model``:
    a compiled :class:`~bayes_mem.offline.returns_model.PooledReturnsFitter` to reuse (default: the
    process-wide one). The walk-forward risk evaluation calls it as the job does.

    Examples
    --------
    With ``returns_model="laplace"`` (no sampling); QQQ has too few days and is skipped:

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> panel = pd.DataFrame({"SPY": 0.01 * rng.standard_t(5, 300),
    ...                       "QQQ": 0.012 * rng.standard_t(5, 300)},
    ...                      index=pd.bdate_range("2025-01-01", periods=300))
    >>> panel.iloc[:200, 1] = np.nan  # QQQ: 100 days
    >>> config = RecalibrationConfig(returns_model="laplace", returns_window=300,
    ...                              returns_min_days=250, returns_draws=50)
    >>> fitted = fit_returns(panel, config, np.random.default_rng(1))
    >>> fitted.verdict.passed, list(fitted.symbols), fitted.symbols["SPY"].sigma2.shape
    (True, ['SPY'], (50,))
    """
    verdicts: dict[str, Verdict] = {}
    symbols: dict[str, SymbolPosterior] = {}
    pit_inputs: dict[str, tuple[np.ndarray, Any, float]] = {}  # returns, draws, start variance
    window = None
    if config.returns_model == "pymc" and len(panel.columns):
        window = returns_window(panel, config)
    if window is not None and window.shape[1]:
        names = [str(c) for c in window.columns]
        series = [window[c].dropna().to_numpy() for c in window.columns]  # each on its own dates
        log.info(
            "fitting returns: %d symbols x %d-%d days", len(names),
            min(x.size for x in series), max(x.size for x in series),
        )  # fmt: skip
        gated = rm.fit_gated(  # holds out the last days (LFO), checks the live state
            returns_model or rm.default_model(), series, names,
            FitSettings(config.returns_mcmc_draws, config.returns_mcmc_tune, config.chains,
                        config.returns_target_accept, config.seed),
            rng=config.seed,
        )  # fmt: skip
        verdicts["returns"] = gated.verdict
        own = dict(zip(names, series, strict=True))
        # the window ends at the panel's last date: each state is after its symbol's last return
        live_draws = rm.draws_for_live(gated.tree, config.returns_draws, rng)
        symbols = _within_bounds("returns", verdicts, lambda: {
            name: SymbolPosterior(draws, sigma2) for name, (draws, sigma2) in live_draws.items()
        }) or {}  # fmt: skip
        pit_inputs = {name: (own[name], symbols[name].draws, float(own[name].var()))
                      for name in symbols}  # fmt: skip
        return ReturnsFit(verdicts["returns"], symbols, pit_inputs, gated.tree, window)
    if config.returns_model == "laplace":
        symbols, pit_inputs = laplace_returns(panel, config, rng)
        return ReturnsFit(laplace_verdict(symbols), symbols, pit_inputs)
    refuse(verdicts, "returns", "no_fit", "no symbol has enough returns to fit")
    return ReturnsFit(verdicts["returns"], symbols, pit_inputs, None, window)


def laplace_returns(
    panel: Any, config: RecalibrationConfig, rng: np.random.Generator
) -> tuple[dict[str, SymbolPosterior], dict[str, tuple[np.ndarray, Any, float]]]:
    """``returns_model="laplace"``: per symbol its last ``returns_window`` returns (own dates),
    the Laplace fit's draws and the variance state after its last return; and the PIT inputs
    (returns, draws, start variance). Symbols with fewer than ``returns_min_days`` returns,
    stale ones and refused fits are skipped with a warning naming the reason.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> panel = pd.DataFrame({"SPY": 0.01 * np.random.default_rng(0).standard_t(5, 300)})
    >>> config = RecalibrationConfig(returns_model="laplace", returns_window=300,
    ...                              returns_min_days=250, returns_draws=50)
    >>> symbols, pit_inputs = laplace_returns(panel, config, np.random.default_rng(1))
    >>> post = symbols["SPY"]
    >>> post.draws.size, round(float(np.median(post.draws.nu)), 1), pit_inputs["SPY"][0].shape
    (50, 6.1, (300,))
    """
    symbols: dict[str, SymbolPosterior] = {}
    pit_inputs: dict[str, tuple[np.ndarray, Any, float]] = {}
    for symbol in panel.columns:
        r = panel[symbol].dropna().to_numpy()[-config.returns_window :]
        if r.size < config.returns_min_days:
            log.warning("skipping %s: %d days < %d", symbol, r.size, config.returns_min_days)
            continue
        try:
            fit = fit_laplace(r, config.returns_draws, rng, symbol=str(symbol))
        except UnfitSeriesError as exc:
            log.warning("skipping %s: %s", symbol, exc)
            continue
        sigma2 = variance_path(r, fit.draws, float(np.var(r)))[:, -1]
        symbols[str(symbol)] = SymbolPosterior(fit.draws, sigma2)
        pit_inputs[str(symbol)] = (r, fit.draws, float(np.var(r)))
    return symbols, pit_inputs


def returns_window(panel: Any, config: RecalibrationConfig) -> Any:
    """The returns the pooled model is fitted on: the last ``returns_window`` dates of the panel
    (the union of the symbols' calendars) and the symbols with at least ``returns_min_days``
    returns there that are not stale (others skipped with a warning naming the reason). NaN
    where a symbol has no return: each symbol is fitted on its own dates (its non-missing
    returns, in order), never on the dates all symbols share, so a holiday of one symbol
    neither drops another's return nor joins the shocks around it.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> panel = pd.DataFrame({"SPY": 0.01 * rng.standard_t(5, 400),
    ...                       "QQQ": 0.012 * rng.standard_t(5, 400), "OLD": 0.0},
    ...                      index=pd.bdate_range("2025-01-01", periods=400))
    >>> panel.iloc[:250, 1] = np.nan  # QQQ: 150 days
    >>> config = RecalibrationConfig(returns_window=300, returns_min_days=120)
    >>> window = returns_window(panel, config)  # OLD: stale (every return zero), skipped
    >>> window.shape, list(window.columns), int(window["QQQ"].notna().sum())
    ((300, 2), ['SPY', 'QQQ'], 150)
    """
    recent = panel.iloc[-config.returns_window :]
    keep = []
    for symbol in recent.columns:
        r = recent[symbol].dropna().to_numpy()
        if r.size < config.returns_min_days:
            log.warning("skipping %s: %d days < %d", symbol, r.size, config.returns_min_days)
            continue
        stale = stale_reason(r, str(symbol))
        if stale is not None:
            log.warning("skipping %s: %s", symbol, stale)
            continue
        keep.append(symbol)
    return recent.loc[:, keep]


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
        priors=json.dumps(PRIORS if which == "winrate" else rm.priors_json()),
    )  # fmt: skip
    path = directory / f"{which}_fit.nc"
    out.to_netcdf(path, engine="h5netcdf")
    path.chmod(0o600)
