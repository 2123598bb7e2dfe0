"""The returns fit beyond one machine (issue 17): a two-stage procedure whose second stage fans
out on Dask distributed, one task per symbol, gathered into one fit of the pooled model's layout.

Specification. The pooled model (:mod:`bayes_mem.offline.returns_model`, units: daily log returns
in percent inside the model, variances in percent squared) ties the symbols together only through
the six hyperparameters ``h = (pi0, s_pi, n0, s_nu, l0, s_lam)``: given ``h`` the symbols are
independent, each with::

    a_i = logit persistence_i ~ N(pi0, s_pi),   b_i = log(nu_i - NU_MIN) ~ N(n0, s_nu),
    c_i = atanh lam_i ~ N(l0, s_lam)

(the non-centred ``u, w, x`` of the pooled model are ``(a - pi0) / s_pi`` etc.), and shock share,
asymmetry, long-run variance and mean with their own, unpooled priors.

Stage 1 fits the pooled model (:meth:`PooledReturnsFitter.fit <bayes_mem.offline.returns_model.
PooledReturnsFitter.fit>`, unchanged) on a representative subset ``S`` of the symbols
(:func:`representative_subset`: evenly spaced ranks of the sample kurtosis, so the subset spans
the book's range of tail weight, the pooled parameter one symbol identifies worst). Its
posterior gives ``K`` = :data:`MIXTURE_DRAWS` draws ``h_1 .. h_K`` of the hyperposterior (evenly
spaced over all chains and draws, no random thinning).

Stage 2 fits every symbol ``i`` outside ``S`` on its own, as an independent task, with the
unpooled priors of the pooled model and, for ``(a_i, b_i, c_i)``, the stage-1 posterior
predictive::

    p(a, b, c | y_S) ~= (1 / K) sum_k N(a | pi0_k, s_pi_k) N(b | n0_k, s_nu_k) N(c | l0_k, s_lam_k)

a K-component mixture (one component per hyper draw, the same ``k`` for the three: their
posterior dependence is kept), evaluated exactly (log-sum-exp) in the symbol's model. Its
posterior is ``p(theta_i | y_S, y_i)``: exactly the marginal posterior of symbol ``i`` under the
pooled model fitted on ``S`` and ``i`` together (the hyperparameters are integrated over their
stage-1 posterior, reweighted by symbol i's own evidence). What is approximated:

- the hyperposterior is learnt from ``S`` (plus, inside each task, the one symbol): the other
  stage-2 symbols do not inform it, so with a subset that is not representative the shrinkage
  is towards the subset's population;
- the hyperposterior is represented by ``K`` draws (Monte Carlo error of the mixture);
- across stage-2 symbols the draws are independent given the data: the pooled posterior's
  correlation between symbols through ``h`` is not kept (a shared draw index in
  :func:`~bayes_mem.offline.returns_model.draws_for_live` does not couple them).

The symbols of ``S`` keep their stage-1 draws (their data is not used twice). A book of at most
``subset`` symbols is the full pooled fit: no stage 2, no cluster work.

Gathering (:func:`gather`). One DataTree with the pooled fit's variables, dims and coordinates:
``posterior`` holds the six hyperparameters (stage-1 draws, chain c and draw d as stage 1
sampled them), and per symbol every per-symbol variable of the pooled model; for stage-2 symbols
``u, w, x`` are derived from the symbol's ``(a, b, c)`` and the hyperparameters of the same
(chain, draw), so ``persistence = invlogit(pi0 + s_pi u)`` holds draw by draw as in the pooled
fit (they are not pooled-model draws of ``u``: ``u`` is not gated, nor used by the live path).
Stage 2 uses stage 1's chains and draws, so chain c of a symbol is a real Markov chain of that
symbol's task. ``sample_stats`` holds the sampler statistics of every fit on a ``fit`` dimension
(``"pooled"``, then the stage-2 symbols): the diagnostics gate sums divergences and tree-depth
saturations over it and takes the smallest E-BFMI over chains and fits. The gate
(:func:`~bayes_mem.offline.returns_model.check`), the retries (``fit_gated``) and the prior-set
publishing take the gathered tree as they take a pooled fit: :class:`FanoutReturnsFitter` has the
``fit`` of :class:`~bayes_mem.offline.returns_model.PooledReturnsFitter`.

Dask. :func:`dask_client` starts a ``distributed.LocalCluster`` (one single-threaded worker
process per core, loopback) or connects to an existing scheduler by address; the dashboard's
address is logged. Each task carries its symbol's series (percent), start and reference
variances, the ``K`` hyper draws and the sampler settings, and returns numpy arrays; a worker
compiles the per-symbol model once (per process) and refits it by swapping data. Determinism:
a task's seed is :func:`task_seed` ``(seed, symbol)`` (SHA-256, not the worker or the order of
completion), results are gathered in the input order, and nutpie runs a task's chains on one
thread: the same seed gives the same draws whatever the number of workers. A task whose worker
dies is rescheduled by the scheduler (``distributed.scheduler.allowed-failures``); a task that
raises is retried ``retries`` times; beyond that the fit raises :class:`FanoutError` and the
nightly job stops before anything is written (the active prior set stays active).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayes_mem.live.deprecation import renamed_module_attributes
from bayes_mem.live.gjr_garch import NU_MIN
from bayes_mem.offline import returns_model as rm

log = logging.getLogger("bayes_mem.fanout")

#: the pooled model's hyperparameters, in the order of a task's ``hyper`` columns
HYPER = ("pi0", "s_pi", "n0", "s_nu", "l0", "s_lam")
#: hyperposterior draws in each stage-2 symbol's prior mixture
MIXTURE_DRAWS = 400
#: symbols in the stage-1 pooled fit (default)
SUBSET = 20
#: seconds to wait for an existing scheduler
CONNECT_TIMEOUT = 10.0
#: sampler statistics kept per fit in the gathered tree (what the gate reads)
STATS = ("diverging", "energy", "maxdepth_reached", "n_steps")
# the pooled model's non-centred per-symbol latents and the centre and scale hyperparameters
# of each (the stage-2 model's centred latents a, b, c, in this order)
_LATENTS = {
    "u": ("pi0", "s_pi"),
    "w": ("n0", "s_nu"),
    "x": ("l0", "s_lam"),
}


class FanoutError(ValueError):
    """The cluster could not be reached or a symbol's task failed for good.

    Examples
    --------
    >>> try:
    ...     with dask_client(" ") as client:  # not a scheduler address
    ...         pass
    ... except FanoutError as exc:
    ...     print(exc)
    scheduler must be an address like tcp://host:8786, got ' '
    """


def task_seed(seed: int, symbol: str) -> int:
    """The sampler seed of ``symbol``'s task: a function of the run's seed and the symbol only
    (first 4 bytes of SHA-256 of both), never of the worker or the order tasks run in.

    Examples
    --------
    >>> task_seed(0, "SPY"), task_seed(0, "QQQ"), task_seed(1, "SPY")
    (2261994667, 557747314, 2406936380)
    >>> task_seed(0, "SPY") == task_seed(0, "SPY")  # whatever worker runs it, in whatever order
    True
    """
    if type(seed) is not int or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    digest = hashlib.sha256(f"bayes_mem.fanout/{seed}/{symbol}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def representative_subset(cols: Sequence[np.ndarray], n: int) -> list[int]:
    """Indices (ascending) of ``n`` of the series ``cols`` at evenly spaced ranks of their
    sample excess kurtosis (ties by position): the stage-1 subset spans the book's tail
    weights. All of them when ``n >= len(cols)``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> cols = [rng.standard_t(df, 500) for df in (3, 30, 4, 100, 6, 10)]  # tail weights vary
    >>> representative_subset(cols, 3)  # lowest, middle and highest sample kurtosis
    [0, 1, 4]
    >>> representative_subset(cols, 10)  # a book no larger than the subset: all of it
    [0, 1, 2, 3, 4, 5]
    """
    if type(n) is not int or n < 2:
        raise ValueError(f"the stage-1 subset needs at least 2 symbols, got {n!r}")
    if n >= len(cols):
        return list(range(len(cols)))
    kurt = []
    for c in cols:
        z = (c - c.mean()) / c.std()
        kurt.append(float(np.mean(z**4)) - 3.0)
    order = np.lexsort((np.arange(len(cols)), np.array(kurt)))
    ranks = np.round(np.linspace(0, len(cols) - 1, n)).astype(int)
    return sorted(int(order[r]) for r in ranks)


def hyper_draws(tree: Any, k: int = MIXTURE_DRAWS) -> np.ndarray:
    """(k, 6) draws of :data:`HYPER` from a pooled fit, evenly spaced over its chains x draws
    (all of them when there are fewer than ``k``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> post = xr.Dataset({h: (("chain", "draw"), rng.standard_normal((4, 250))) for h in HYPER})
    >>> h = hyper_draws(xr.DataTree.from_dict({"posterior": post}), k=400)
    >>> h.shape, h.flags["C_CONTIGUOUS"]  # 400 of the 1,000 draws, evenly spaced
    ((400, 6), True)
    """
    post = tree["posterior"]
    flat = np.stack(
        [post[h].stack(sample=("chain", "draw")).values for h in HYPER], axis=1
    )  # (S, 6)
    if k < 1:
        raise ValueError(f"need at least one hyper draw, got k={k!r}")
    pick = np.unique(np.round(np.linspace(0, flat.shape[0] - 1, min(k, flat.shape[0]))))
    return np.ascontiguousarray(flat[pick.astype(int)])


# ------------------------------------------------------------------------- the per-symbol model
def build_conditional_model(
    returns_pct: np.ndarray, var0: float, vref: float, hyper: np.ndarray, symbol: str = "S"
):
    """The stage-2 PyMC model of one symbol (module docstring): ``returns_pct`` (days,) in
    percent, ``var0``/``vref`` in percent squared, ``hyper`` (K, 6) stage-1 draws of
    :data:`HYPER`. The latents ``a, b, c`` (logit persistence, log(nu - NU_MIN), atanh lam)
    are sampled centred: a normal with the mixture's mean and variance, corrected by a
    potential to the mixture's exact log density.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> returns_pct = rng.standard_t(5, 300)  # one symbol's daily returns, percent
    >>> hyper = np.array([[3.5, 0.3, 1.4, 0.2, 0.0, 0.1], [3.4, 0.25, 1.3, 0.25, -0.1, 0.1]])
    >>> model = build_conditional_model(returns_pct, 1.0, 1.0, hyper, symbol="SPY")
    >>> sorted(rv.name for rv in model.free_RVs)
    ['a', 'asymmetry', 'b', 'c', 'long_run_var', 'mu_pct', 'shock_share']
    >>> sorted(model.deterministics, key=str)
    [alpha, beta, gamma, kappa, lam, last_sigma2_pct, nu, omega_pct, persistence]
    """
    import pymc as pm
    import pytensor.tensor as pt

    r = np.asarray(returns_pct, dtype=float).reshape(-1, 1)
    h = _checked_hyper(hyper)
    with pm.Model(coords={"symbol": [symbol]}) as model:
        data = pm.Data("returns_pct", r)
        v0 = pm.Data("var0", np.array([float(var0)]))
        log_vref = pm.Data("log_vref", np.log(np.array([float(vref)])))
        start = pm.Data("first", np.zeros(1, dtype=np.int64))
        hd = {name: pm.Data(f"hyper_{name}", h[:, j]) for j, name in enumerate(HYPER)}
        latents = {}
        for lat, (centre, scale) in zip(("a", "b", "c"), _LATENTS.values(), strict=True):
            m, s = hd[centre], hd[scale]
            mean = m.mean()
            sd = pt.sqrt(pt.mean((m - mean) ** 2) + pt.mean(s**2))
            latents[lat] = (pm.Normal(lat, mean, sd, dims="symbol"), mean, sd)
        mix = 0.0
        base = 0.0
        for lat, (centre, scale) in zip(("a", "b", "c"), _LATENTS.values(), strict=True):
            v, mean, sd = latents[lat]
            m, s = hd[centre], hd[scale]
            mix = mix + (-0.5 * ((v[:, None] - m[None, :]) / s[None, :]) ** 2 - pt.log(s)[None, :])
            base = base + (-0.5 * ((v - mean) / sd) ** 2 - pt.log(sd))
        # the mixture's log density minus the base normals' (both without their 2 pi terms)
        n_mix = hd["pi0"].shape[0]
        pm.Potential("hyper_mixture", (pt.logsumexp(mix, axis=1) - pt.log(n_mix) - base).sum())
        persistence = pm.Deterministic(
            "persistence", pm.math.invlogit(latents["a"][0]), dims="symbol"
        )
        share = rm.PRIORS["shock_share"].rv("shock_share", dims="symbol")
        asym = rm.PRIORS["asymmetry"].rv("asymmetry", dims="symbol")
        long_run = rm.PRIORS["long_run_var"].rv(
            "long_run_var", {"log vref": log_vref}, dims="symbol"
        )
        nu = pm.Deterministic("nu", NU_MIN + pm.math.exp(latents["b"][0]), dims="symbol")
        lam = pm.Deterministic("lam", pt.tanh(latents["c"][0]), dims="symbol")
        rm.garch_likelihood(data, start, v0, persistence, share, asym, long_run, nu, lam, "op", 0)
    return model


def _checked_hyper(hyper: Any) -> np.ndarray:
    h = np.asarray(hyper, dtype=float)
    if h.ndim != 2 or h.shape[1] != len(HYPER) or h.shape[0] < 1:
        raise ValueError(f"hyper must be (draws, {len(HYPER)}) {HYPER}, got shape {h.shape}")
    if not np.all(np.isfinite(h)) or np.any(h[:, 1::2] <= 0):
        raise ValueError("hyper draws must be finite with positive scales (s_pi, s_nu, s_lam)")
    return h


@dataclass(frozen=True)
class SymbolTask:
    """One stage-2 task: a symbol's series (percent, its own days), start and reference
    variances (percent squared), the stage-1 hyper draws (K, 6) and the sampler settings.

    Examples
    --------
    >>> import numpy as np
    >>> returns_pct = np.random.default_rng(0).standard_t(5, 300)
    >>> hyper = np.array([[3.5, 0.3, 1.4, 0.2, 0.0, 0.1]])  # stage-1 draws of HYPER, (K, 6)
    >>> task = SymbolTask("SPY", returns_pct, float(returns_pct.var()), float(returns_pct.var()),
    ...                   hyper, draws=1000, tune=1000, chains=4, target_accept=0.9,
    ...                   seed=task_seed(0, "SPY"))
    >>> task.symbol, task.returns_pct.shape, task.seed
    ('SPY', (300,), 2261994667)
    """

    symbol: str
    returns_pct: np.ndarray
    var0: float
    vref: float
    hyper: np.ndarray
    draws: int
    tune: int
    chains: int
    target_accept: float
    seed: int


_COMPILED: dict[str, Any] = {}
# hyper draws the model is compiled with: the prior centres of pi0, n0, l0 and their scales' means
_PLACEHOLDER = np.array([[math.log(0.97 / 0.03), 0.25, math.log(4.0), 0.2, 0.0, 0.1]])
_COMPILE_LOCK = threading.Lock()


def _compiled(task: SymbolTask):
    """The per-symbol model compiled once in this process, with the task's data swapped in."""
    from bayes_mem.offline.compile_cache import compile_model

    r = np.asarray(task.returns_pct, dtype=float).reshape(-1, 1)
    h = _checked_hyper(task.hyper)
    with _COMPILE_LOCK:
        if "model" not in _COMPILED:
            t0 = time.perf_counter()
            # compiled on placeholder data, never the first task's: what the compiled function
            # keeps of its build-time data (the initial point) is then the same in every process
            # whatever task came first (measured: compiled on the task's data, draws depended on
            # which symbol a worker fitted first)
            model = build_conditional_model(np.resize([1.0, -1.0], 100), 1.0, 1.0, _PLACEHOLDER)
            _COMPILED["model"] = compile_model(model)
            log.info("compiled the per-symbol model in %.1f s", time.perf_counter() - t0)
        base = _COMPILED["model"]
    data = {f"hyper_{name}": np.ascontiguousarray(h[:, j]) for j, name in enumerate(HYPER)}
    return base.with_data(
        returns_pct=r, var0=np.array([task.var0]), log_vref=np.log(np.array([task.vref])),
        first=np.zeros(1, dtype=np.int64), **data,
    )  # fmt: skip


def fit_symbol(task: SymbolTask) -> dict[str, np.ndarray]:
    """Run one stage-2 task (in a worker, or in-process): the symbol's posterior draws
    ((chain, draw) arrays of every per-symbol variable of the pooled model but ``u, w, x``,
    and of the latents ``a, b, c``), sampler statistics (:data:`STATS`, prefixed ``"stat:"``)
    and the CPU seconds of the sampling (``"cpu_seconds"``). The chains run one after another
    on this thread.

    Examples
    --------
    It compiles the per-symbol model (once per process) and samples: about 27 s of CPU for this
    task here, so the fit is not run by the doctests (the output shown is from a run):

    >>> import numpy as np
    >>> returns_pct = np.random.default_rng(0).standard_t(5, 300)
    >>> hyper = np.array([[3.5, 0.3, 1.4, 0.2, 0.0, 0.1]])
    >>> task = SymbolTask("SPY", returns_pct, 1.0, 1.0, hyper, draws=500, tune=500, chains=2,
    ...                   target_accept=0.9, seed=task_seed(0, "SPY"))
    >>> out = fit_symbol(task)  # doctest: +SKIP
    >>> out["persistence"].shape, out["stat:diverging"].shape  # doctest: +SKIP
    ((2, 500), (2, 500))
    """
    import nutpie

    if not np.all(np.isfinite(task.returns_pct)) or np.size(task.returns_pct) < 2:
        raise ValueError(f"{task.symbol}: returns must be >= 2 finite values")
    compiled = _compiled(task)
    c0 = time.process_time()
    tree = nutpie.sample(
        compiled, draws=task.draws, tune=task.tune, chains=task.chains, seed=task.seed,
        target_accept=task.target_accept, cores=1, progress_bar=False,
    )  # fmt: skip
    post = tree["posterior"].to_dataset()
    out = {
        k: np.asarray(v.values[..., 0] if "symbol" in v.dims else v.values)
        for k, v in post.data_vars.items()
        if not k.startswith("hyper_")
    }
    stats = tree["sample_stats"].to_dataset()
    out.update({f"stat:{k}": np.asarray(stats[k].values) for k in STATS if k in stats})
    out["cpu_seconds"] = np.array(time.process_time() - c0)  # the sampling's, this process
    return out


# ------------------------------------------------------------------------------- gathering
def gather(
    stage1: Any,
    symbols: list[str],
    subset: list[int],
    results: dict[str, dict[str, np.ndarray]],
):
    """The one DataTree of the two-stage fit (module docstring): ``stage1`` the pooled fit of
    the symbols at ``subset`` (indices into ``symbols``, in order), ``results`` the
    :func:`fit_symbol` output of every other symbol.

    Examples
    --------
    A stage-1 fit of SPY (one chain, two draws) and QQQ's stage-2 task; QQQ's ``u`` is derived
    from its ``a`` and the hyperparameters of the same draw:

    >>> import numpy as np, xarray as xr
    >>> dims, full = ("chain", "draw"), np.full
    >>> post = xr.Dataset({h: (dims, full((1, 2), 0.5)) for h in HYPER})
    >>> post["u"] = xr.DataArray(full((1, 2, 1), 0.1), dims=(*dims, "symbol"))  # SPY's u
    >>> stats = xr.Dataset({"diverging": (dims, full((1, 2), False))})
    >>> stage1 = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    >>> results = {"QQQ": {"a": full((1, 2), 1.5), "stat:diverging": full((1, 2), False)}}
    >>> tree = gather(stage1, ["QQQ", "SPY"], [1], results)
    >>> tree["posterior"]["u"].sel(chain=0, draw=0).values  # QQQ: (1.5 - 0.5) / 0.5
    array([2. , 0.1])
    >>> tree["sample_stats"]["fit"].values.tolist(), tree.attrs["stage1_symbols"]
    (['pooled', 'QQQ'], 'SPY')
    """
    import xarray as xr

    post1 = stage1["posterior"].to_dataset()
    chains, draws = post1.sizes["chain"], post1.sizes["draw"]
    pos1 = {symbols[i]: j for j, i in enumerate(subset)}
    per_symbol = [k for k, v in post1.data_vars.items() if "symbol" in v.dims]
    hyper = {h: post1[h].values for h in HYPER}
    data: dict[str, Any] = {h: (("chain", "draw"), hyper[h]) for h in HYPER}
    for name in per_symbol:
        cols = []
        for s in symbols:
            if s in pos1:
                cols.append(post1[name].values[..., pos1[s]])
                continue
            res = results[s]
            if name in _LATENTS:
                centre, scale = _LATENTS[name]
                latent = res[{"u": "a", "w": "b", "x": "c"}[name]]
                cols.append((latent - hyper[centre]) / hyper[scale])
            else:
                cols.append(res[name])
        for s, c in zip(symbols, cols, strict=True):
            if c.shape != (chains, draws):
                raise ValueError(
                    f"{s}: {name} has shape {c.shape}, the pooled fit ({chains}, {draws})"
                )
        data[name] = (("chain", "draw", "symbol"), np.stack(cols, axis=-1))
    posterior = xr.Dataset(
        data, coords={"chain": post1["chain"].values, "draw": post1["draw"].values,
                      "symbol": symbols},
    )  # fmt: skip
    stats1 = stage1["sample_stats"].to_dataset()
    fits = ["pooled"] + [s for s in symbols if s not in pos1]
    stats = {}
    for k in STATS:
        if k not in stats1:
            continue
        arrays = [np.asarray(stats1[k].values)]
        arrays += [results[s][f"stat:{k}"] for s in fits[1:]]
        stats[k] = (("chain", "draw", "fit"), np.stack(arrays, axis=-1))
    coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values, "fit": fits}
    sample_stats = xr.Dataset(stats, coords=coords)
    tree = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": sample_stats})
    tree.attrs.update(fit="two-stage", stage1_symbols=",".join(symbols[i] for i in subset))
    return tree


# ------------------------------------------------------------------------------- the cluster
@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    n_workers: int | None = None,
    *,
    timeout: float = CONNECT_TIMEOUT,
) -> Iterator[Any]:
    """A ``distributed.Client``: on the scheduler at ``scheduler`` (e.g.
    ``"tcp://10.0.0.5:8786"``), or on a new ``LocalCluster`` of ``n_workers`` single-threaded
    worker processes on loopback (default: one per core), closed on exit. Logs the dashboard's
    address. An unreachable or malformed address raises :class:`FanoutError` naming it.

    Examples
    --------
    A fit on a local cluster of four worker processes (not run by the doctests: it starts
    processes; ``returns``, ``symbols`` as for :meth:`FanoutReturnsFitter.fit`); a bad argument
    raises :class:`FanoutError` at once:

    >>> with dask_client(n_workers=4) as client:  # doctest: +SKIP
    ...     model = FanoutReturnsFitter(client, subset=20)
    ...     tree = model.fit(returns, symbols, seed=0)
    >>> try:
    ...     with dask_client(n_workers=0):
    ...         pass
    ... except FanoutError as exc:
    ...     print(exc)
    n_workers must be an integer >= 1, got 0
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise FanoutError(f"scheduler must be an address like tcp://host:8786, got "
                              f"{scheduler!r:.200}")  # fmt: skip
        try:
            client = Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise FanoutError(
                f"cannot reach the Dask scheduler at {scheduler!r:.200} (waited {timeout:g} s): "
                f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
            ) from None
        try:
            _log_cluster(client, f"scheduler {scheduler}")
            yield client
        finally:
            client.close()
        return
    n = (os.cpu_count() or 1) if n_workers is None else n_workers
    if type(n) is not int or n < 1:
        raise FanoutError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )  # fmt: skip
    try:
        client = Client(cluster, set_as_default=False)
        try:
            _log_cluster(client, f"local cluster of {n} worker processes")
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def _log_cluster(client: Any, what: str) -> None:
    link = None
    with contextlib.suppress(Exception):
        link = client.dashboard_link
    log.info("Dask %s at %s; dashboard %s", what, client.scheduler.address,
             link or "not served (bokeh missing)")  # fmt: skip


# ------------------------------------------------------------------------------- the fit
class FanoutReturnsFitter:
    """The two-stage returns fit on a Dask cluster, with the interface of
    :class:`~bayes_mem.offline.returns_model.PooledReturnsFitter` (``fit``), so that
    :func:`~bayes_mem.offline.returns_model.fit_gated` holds out, gates and retries it
    unchanged.

    Parameters
    ----------
    client
        A ``distributed.Client`` (:func:`dask_client`).
    subset
        Symbols in the stage-1 pooled fit; a book of at most this many is fitted pooled whole.
    pooled
        The stage-1 model (default: the process-wide compile cache).
    retries
        Retries of a stage-2 task that raised (a dead worker's task is rescheduled by the
        scheduler on its own terms).
    task
        The stage-2 function run on the workers (default :func:`fit_symbol`; tests wrap it).

    Examples
    --------
    >>> model = FanoutReturnsFitter(client=None, subset=10, retries=1)  # client: dask_client()
    >>> model.subset, model.retries, model.task is fit_symbol, model.pooled.likelihood
    (10, 1, True, 'op')
    >>> try:
    ...     FanoutReturnsFitter(None, subset=1)
    ... except ValueError as exc:
    ...     print(exc)
    subset must be an integer >= 2, got 1
    """

    def __init__(
        self,
        client: Any,
        *,
        subset: int = SUBSET,
        pooled: rm.PooledReturnsFitter | None = None,
        retries: int = 2,
        task: Callable[[SymbolTask], dict[str, np.ndarray]] | None = None,
    ) -> None:
        if type(subset) is not int or subset < 2:
            raise ValueError(f"subset must be an integer >= 2, got {subset!r}")
        if type(retries) is not int or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        self.client = client
        self.subset = subset
        self.pooled = pooled or rm.default_model()
        self.retries = retries
        self.task = task or fit_symbol

    def fit(
        self,
        returns: Any,
        symbols: list[str],
        *,
        var0: np.ndarray | None = None,
        vref: np.ndarray | None = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.9,
        seed: int = 0,
        progress: bool = True,
    ):
        """The two-stage posterior DataTree (module docstring) of daily log returns
        (fractions), as :meth:`PooledReturnsFitter.fit
        <bayes_mem.offline.returns_model.PooledReturnsFitter.fit>`.

        Examples
        --------
        A book of no more symbols than ``subset`` is one pooled fit, by ``pooled``; here a stand-in
        fitter (no sampling) shows the call it gets (variances in fractions squared):

        >>> import numpy as np
        >>> class StandIn:
        ...     def fit(self, cols, symbols, *, var0, vref, **settings):
        ...         return {"symbols": symbols, "var0": var0.round(6).tolist(),
        ...                 "draws": settings["draws"]}
        >>> returns = 0.01 * np.random.default_rng(0).standard_normal((300, 2))
        >>> model = FanoutReturnsFitter(client=None, subset=2, pooled=StandIn())
        >>> model.fit(returns, ["SPY", "QQQ"], draws=500, var0=[1e-4, 2e-4])
        {'symbols': ['SPY', 'QQQ'], 'var0': [0.0001, 0.0002], 'draws': 500}
        """
        symbols = [str(s) for s in symbols]
        cols = rm._validated(returns, symbols)
        n = len(symbols)
        sample_var = np.array([c.var() for c in cols]) * rm.SCALE**2
        v0 = sample_var if var0 is None else rm._positive(var0, "var0", n) * rm.SCALE**2
        vr = sample_var if vref is None else rm._positive(vref, "vref", n) * rm.SCALE**2
        settings = dict(draws=draws, tune=tune, chains=chains, target_accept=target_accept)
        if n <= self.subset:
            log.info("fan-out: %d symbols <= subset %d, one pooled fit", n, self.subset)
            return self.pooled.fit(cols, symbols, var0=v0 / rm.SCALE**2, vref=vr / rm.SCALE**2,
                                   seed=seed, progress=progress, **settings)  # fmt: skip
        subset = representative_subset(cols, self.subset)
        t0 = time.perf_counter()
        stage1 = self.pooled.fit(
            [cols[i] for i in subset], [symbols[i] for i in subset],
            var0=v0[subset] / rm.SCALE**2, vref=vr[subset] / rm.SCALE**2, seed=seed,
            progress=progress, **settings,
        )  # fmt: skip
        log.info("fan-out stage 1: pooled fit of %d symbols in %.1f s",
                 len(subset), time.perf_counter() - t0)  # fmt: skip
        hyper = hyper_draws(stage1)
        inside = set(subset)
        tasks = []
        for i in range(n):
            if i not in inside:
                tasks.append(SymbolTask(
                    symbols[i], cols[i] * rm.SCALE, float(v0[i]), float(vr[i]), hyper,
                    seed=task_seed(seed, symbols[i]), **settings,
                ))  # fmt: skip
        results = self.run_tasks(tasks)
        return gather(stage1, symbols, subset, results)

    def run_tasks(self, tasks: list[SymbolTask]) -> dict[str, dict[str, np.ndarray]]:
        """Submit every stage-2 task to the cluster, wait for all; results by symbol (input
        order). A task that failed for good raises :class:`FanoutError` naming its symbol.

        Examples
        --------
        Two tasks on an in-process Dask cluster, run by a stand-in task (the real one,
        :func:`fit_symbol`, samples):

        >>> import numpy as np
        >>> from distributed import Client
        >>> def stand_in(task):
        ...     return {"var0": np.array([task.var0])}
        >>> tasks = [SymbolTask(s, np.zeros(5), v, v, np.zeros((1, 6)), draws=1, tune=1, chains=1,
        ...                     target_accept=0.9, seed=0) for s, v in (("SPY", 1.0), ("QQQ", 2.0))]
        >>> with Client(processes=False, n_workers=1, dashboard_address=None) as client:
        ...     out = FanoutReturnsFitter(client, task=stand_in).run_tasks(tasks)
        >>> {s: r["var0"].tolist() for s, r in out.items()}
        {'SPY': [1.0], 'QQQ': [2.0]}
        """
        from distributed import as_completed

        t0 = time.perf_counter()
        run = uuid.uuid4().hex[:8]
        futures = [
            self.client.submit(
                self.task, t, key=f"fit_symbol-{t.symbol}-{run}", pure=False, retries=self.retries
            )
            for t in tasks
        ]
        symbol_of = {f.key: t.symbol for f, t in zip(futures, tasks, strict=True)}
        done, step = 0, max(1, math.ceil(len(tasks) / 10))
        try:
            for future in as_completed(futures, loop=self.client.loop):
                if future.status != "finished":
                    exc = future.exception()
                    raise FanoutError(
                        f"the stage-2 fit of {symbol_of[future.key]!r} failed on the cluster: "
                        f"{type(exc).__name__}: {str(exc)[:300]}"
                    )
                done += 1
                if done % step == 0 or done == len(tasks):
                    log.info("fan-out stage 2: %d/%d symbols fitted (%.0f s)", done,
                             len(tasks), time.perf_counter() - t0)  # fmt: skip
            results = self.client.gather(futures)
        finally:
            for f in futures:
                f.release()
        return {t.symbol: r for t, r in zip(tasks, results, strict=True)}


# the deprecated name (issue 20: the offline fitters are no longer named like the live model)
__getattr__ = renamed_module_attributes(__name__, {"FanoutReturnsModel": "FanoutReturnsFitter"})
