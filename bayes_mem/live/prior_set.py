"""The prior set: the only thing the nightly job hands the live path (see ../shared/DESIGN.md).

A versioned, immutable JSON document (schema ``bayes_mem.prior_set/2``; the contract, with a
field table, an example, the folder layout and the data flow: ``docs/prior_set.md``): per signal
family, posterior draws of the family's mean win rate and concentration; per symbol, posterior
draws of the GJR-GARCH-skew-t parameters and each draw's conditional variance at
``data_through``; the regime detector's prior (:class:`RegimePrior`); the diagnostics verdict;
the manifest of the version's other files.

Components. Win rates (``families``), returns (``symbols``) and the regime prior (``regime``)
are gated and versioned separately: ``components`` records per component the version whose fit
produced it, when, its ``data_through`` and its verdict (:class:`ComponentSource`). A component
whose nightly fit failed is carried from the live set into the next one unchanged, so a set may
hold components of different ages (:meth:`PriorSet.component_ages`). ``data_through`` is the
returns component's. Sets of schema ``/1`` (before components) load with every component from
the set itself. On disk (under
``models/prior_sets/v000042/prior_set.json``) it is wrapped with the SHA-256 of its canonical
JSON (and, with a deployment key, its HMAC-SHA256), and ``models/ACTIVE`` names the active
version.

Publishing is atomic: a version directory is written under a temporary name, flushed and renamed
into place; ``ACTIVE`` is replaced by ``os.replace`` of a flushed temporary file. A reader (or a
crash at any instant) sees the old set or the complete new one. The loader verifies everything
below and refuses anything else, so a live process keeps its last good set.

Live. A set is live only if its verdict is exactly a pass (``diagnostics["passed"] is True``;
missing, ``0``, ``null`` or ``"false"`` is not a pass) and so is every held component's source
verdict (``components[c]["passed"] is True``). :func:`load_live_prior_set` is the one
loader of sets to trade on: :func:`activate`, :func:`load_active` and :class:`ActivePriorSet`
all go through it. :func:`load_prior_set` loads any verified version (rejected ones included) for
analysis.

Bounds. Every published value is checked against the model's own constraints and plausible
bounds when a :class:`PriorSet` is built, so at write and at load; a value outside refuses the
whole set, naming it. Units: daily log returns as fractions (0.01 = 1%).

============================  ==========================  ===================================
value                         model constraint            plausible bound (refused outside)
============================  ==========================  ===================================
family ``mean`` (win rate)    0 < m < 1                   1e-6 <= m <= 1 - 1e-6
family ``kappa``              > 0                         1e-3 <= kappa <= 1e6 pseudo-trades (a)
family ``rho`` (optional)     0 <= rho < 1                0 <= rho <= 0.999 (intra-cluster corr.)
draws per family / symbol     >= 1, equal lengths         <= 10,000 (``MAX_DRAWS``)
``mu``                        finite                      abs(mu) <= 0.05 (5% a day)
``alpha``, ``beta``           >= 0                        implied by persistence < 1
``gamma``                     alpha + gamma >= 0          implied by persistence < 1
persistence P (b)             P < 1 (stationary)          P < 1
long-run variance             omega / (1 - P) > 0         1e-12 .. 1 (daily sd 1e-6 .. 1) (c)
``sigma2`` (next-day var.)    > 0                         1e-12 .. 1 (daily sd 1e-6 .. 1) (c)
``sigma2`` / long-run var.    > 0                         1e-4 .. 1e4 (``STATE_RANGE`` of the
                                                          live model's variance states)
``nu`` (tail weight)          >= 2.1 (``NU_MIN``)         <= 1000
``lam`` (skew)                -1 < lam < 1                abs(lam) <= 0.99
regime ``hazard``             0 < h < 1                   1e-5 .. 0.5 (d)
regime ``mu0``                finite                      -10 .. 10 (d)
regime ``kappa0``             > 0                         1e-3 .. 1e3 (d)
regime ``alpha0``             > 0                         0.05 .. 1e3 (d)
regime ``beta0``              > 0                         1e-4 .. 1e4 (d)
regime ``max_run_length``     integer >= 2                11 .. 10,000 (e)
``version``                   integer >= 1                <= 999,999,999
component ``version``         integer >= 1                <= the set's ``version``
component ``fitted_at``       ISO 8601 text               <= 64 characters
component ``data_through``    ISO date first, or null     returns': equal to ``data_through``
component ``passed``          true or false               every held one true to be live
``created_at``                ISO 8601 text               <= 64 characters
``data_through``              ISO date first, or null     <= 64 characters
``code_version``              text                        <= 100 characters
``config_hash``               text                        <= 64 characters
JSON numbers                  finite                      no NaN/Infinity; integers <= 20 digits
``prior_set.json``            --                          <= 64 MiB (``MAX_BYTES``) (f)
``ACTIVE``                    --                          <= 64 bytes: ASCII digits, a newline
============================  ==========================  ===================================

(a) the fit's prior puts log kappa at log 50 +- 1.5: 1e6 is over 6 sd out, yet a fit can go
far (the gate's mis-specified test, rejected but published for analysts, reached 1.8e4); beyond
1e6 the Beta prior is a point mass for any record a signal can have. Which sets trade is the
gate's decision, not these bounds'.
(b) ``P = alpha + kappa gamma + beta``: the project's persistence (:attr:`GarchDraws.persistence`,
the fits alike), gamma weighted by kappa = E[z^2 1{z<0}] under the draw's skew-t.
(c) the fit's own units check (``gjr_garch._SD_RANGE``); below it ``risk()`` loses precision
and at 1e-100 overflows. (d) the offline estimator's optimisation bounds
(``bayes_mem.offline.regime_prior.BOUNDS``). (e) above ``k`` = 10, the detector's default window;
at most ``changepoint.MAX_RUN_LENGTH``. (f) checked before reading: a 108 MB file took 8.6 s and
1.3 GB to parse.

Files. Paths the writer creates get mode 0700 (directories) and 0600 (files) exactly, whatever
the umask. The loader opens the models directory (its own path may pass through links) and every
path below it (``ACTIVE``, ``prior_sets``, the version directory, ``prior_set.json``) relative to
its directory's descriptor, without following links and without blocking, and refuses any that
is not a directory / regular file, is owned by another user than this process's effective user
or root, or is group- or world-writable (:mod:`bayes_mem.live.files`): a set planted by another
local user is never loaded. The trader must therefore run as the user who publishes (or root must
own the registry).

Manifest. The nightly job's other files in a version folder (``run.json``,
``signal_counts.csv``, ``winrate_fit.nc``, ``returns_fit.nc``) are listed with their SHA-256 in
the document's ``files``, inside the hash and the signature. The live loader reads only
``prior_set.json``; :func:`verify_version` (``bayes-mem priors verify``) checks every file and
that the folder holds nothing else; the analyst report checks the files it reads. Versions
published before the manifest have none: their other files are informational only, unverified.

Signing. With a deployment key (``key=`` or the file named by ``$BAYES_MEM_SIGNING_KEY_FILE``:
a regular file owned by this user or root, no group or other access, 32 to 4096 bytes), the
writer adds ``hmac_sha256`` (HMAC-SHA256 of the canonical document) and every loader refuses a
set that is unsigned or wrongly signed. Without a key, the SHA-256 still detects corruption but
not a deliberate edit (anyone able to write the file can rehash it).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import os
import re
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bayes_mem.live import files as _files
from bayes_mem.live.changepoint import DEFAULT_K, MAX_RUN_LENGTH
from bayes_mem.live.deprecation import warn_renamed
from bayes_mem.live.files import TrustError
from bayes_mem.live.gjr_garch import PARAMS, GarchDraws
from bayes_mem.live.priors import BetaPrior
from bayes_mem.live.return_model import STATE_RANGE
from bayes_mem.live.tail_table import NU_MIN
from bayes_mem.live.validate import (
    as_float_array,
    check_int,
    check_name,
    check_real,
    check_schema,
)

if TYPE_CHECKING:  # pragma: no cover
    from bayes_mem.live.changepoint import NormalGammaBOCPD
    from bayes_mem.live.decider import Decider

log = logging.getLogger("bayes_mem.prior_set")

SCHEMA = "bayes_mem.prior_set/2"
#: the schema before per-component provenance: still loaded (see :meth:`PriorSet.from_dict`)
SCHEMA_V1 = "bayes_mem.prior_set/1"
#: the parts of a prior set that are gated, versioned and carried over separately
COMPONENTS = ("winrate", "returns", "regime")
REGIME_SCHEMA = "bayes_mem.regime_prior/1"
PRIOR_SETS = "prior_sets"
ACTIVE = "ACTIVE"
PRIOR_SET_FILE = "prior_set.json"
SIGNING_KEY_ENV = "BAYES_MEM_SIGNING_KEY_FILE"

# the bounds of the module docstring's table
MAX_BYTES = 64 * 1024 * 1024
MAX_ACTIVE_BYTES = 64
MAX_VERSION = 999_999_999
MAX_DRAWS = 10_000
MAX_INT_DIGITS = 20
MEAN_RANGE = (1e-6, 1.0 - 1e-6)
KAPPA_RANGE = (1e-3, 1e6)
RHO_RANGE = (0.0, 0.999)
MU_MAX = 0.05
VARIANCE_RANGE = (1e-12, 1.0)
NU_MAX = 1000.0
LAM_MAX = 0.99
REGIME_BOUNDS = {
    "hazard": (1e-5, 0.5),
    "mu0": (-10.0, 10.0),
    "kappa0": (1e-3, 1e3),
    "alpha0": (0.05, 1e3),
    "beta0": (1e-4, 1e4),
}
RUN_LENGTH_RANGE = (DEFAULT_K + 1, MAX_RUN_LENGTH)
TEXT_LIMITS = {"created_at": 64, "data_through": 64, "code_version": 100, "config_hash": 64}
KEY_BYTES = (32, 4096)

_DOC_KEYS = {
    "schema", "version", "created_at", "data_through", "code_version", "config_hash",
    "families", "symbols", "diagnostics",
}  # fmt: skip
_OPTIONAL_KEYS = {"regime", "files", "components"}
_FILE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_VERSION_NAME = r"v([0-9]{6,9})"
_ACTIVE_TEXT = rb"([0-9]{1,9})\n?"
_HEX64 = r"[0-9a-f]{64}"


class PriorSetError(ValueError):
    """A prior set that is missing, corrupt, truncated, implausible, untrusted, unsigned or of
    an unknown schema.

    Examples
    --------
    >>> try:
    ...     FamilyPosterior(mean=[1.2], kappa=[40.0])
    ... except PriorSetError as exc:
    ...     print(exc)
    family mean draw 0 is 1.2, outside [1e-06, 0.999999]
    """


def _check_range(values: np.ndarray, what: str, low: float, high: float, unit: str = "") -> None:
    bad = ~((values >= low) & (values <= high))  # NaN is bad too
    if bad.any():
        i = int(np.argmax(bad))
        raise PriorSetError(
            f"{what} draw {i} is {float(values[i])!r}, outside [{low:g}, {high:g}]{unit}"
        )


def _draw_array(value: Any, what: str) -> np.ndarray:
    try:
        arr = as_float_array(value, what)
    except (TypeError, ValueError) as exc:
        raise PriorSetError(str(exc)) from None
    if arr.ndim != 1 or arr.size == 0:
        raise PriorSetError(f"{what} must be a non-empty 1-d array of draws, got shape {arr.shape}")
    if arr.size > MAX_DRAWS:
        raise PriorSetError(f"{what} has {arr.size:,} draws, more than {MAX_DRAWS:,}")
    return arr.copy()  # ours: frozen below, the caller's array untouched


@dataclass(frozen=True)
class FamilyPosterior:
    """Posterior draws of one signal family's Beta prior (the win-rate component).

    The arrays are copied and frozen (read-only) when built; every draw is checked against the
    module docstring's bounds table.

    Parameters
    ----------
    mean : array of float, shape (draws,)
        The family's mean win rate per draw, in ``MEAN_RANGE``.
    kappa : array of float, shape (draws,)
        Its concentration per draw, in pseudo-trades (``KAPPA_RANGE``): a new signal's win rate
        is Beta(mean kappa, (1 - mean) kappa).
    rho : array of float, shape (draws,), optional
        The intra-cluster correlation of the family's trades (``RHO_RANGE``): the live path
        counts outcomes of one signal in one cluster with their effective weight. None: not
        published (independent trades).

    See Also
    --------
    point_prior : the one Beta prior the decider uses (moment-matched by default).

    Examples
    --------
    >>> fam = FamilyPosterior(mean=[0.54, 0.56], kappa=[40.0, 60.0], rho=[0.1, 0.2])
    >>> [round(x, 5) for x in fam.predictive_moments()]  # of a new signal's win rate
    [0.55, 0.00515]
    >>> prior = fam.point_prior()  # moment-matched: wider than the plug-in Beta(27.5, 22.5)
    >>> round(prior.a, 2), round(prior.b, 2), round(fam.rho_mean, 3)
    (25.89, 21.18, 0.15)
    >>> [a.tolist() for a in fam.betas()]  # each draw's Beta(m kappa, (1 - m) kappa)
    [[21.6, 33.6], [18.4, 26.4]]
    """

    mean: np.ndarray
    kappa: np.ndarray
    rho: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = _draw_array(self.mean, "family mean")
        k = _draw_array(self.kappa, "family kappa")
        if m.shape != k.shape:
            raise PriorSetError(
                f"family draws need equal-length 1-d mean and kappa arrays, got {m.size} and "
                f"{k.size}"
            )
        _check_range(m, "family mean", *MEAN_RANGE)
        _check_range(k, "family kappa", *KAPPA_RANGE, " pseudo-trades")
        m.setflags(write=False)
        k.setflags(write=False)
        object.__setattr__(self, "mean", m)
        object.__setattr__(self, "kappa", k)
        if self.rho is not None:
            r = _draw_array(self.rho, "family rho")
            if r.shape != m.shape:
                raise PriorSetError(
                    f"family rho needs one draw per mean draw ({m.size}), got {r.size}"
                )
            _check_range(r, "family rho", *RHO_RANGE)
            r.setflags(write=False)
            object.__setattr__(self, "rho", r)

    def predictive_moments(self) -> tuple[float, float]:
        """Mean and variance of a new signal's win rate under the posterior predictive:
        ``E[m]`` and ``E[m (1 - m) / (kappa + 1)] + Var(m)`` over the draws.

        Examples
        --------
        One draw, mean 0.5 and kappa 9: the variance is ``0.5 * 0.5 / (9 + 1)`` = 0.025:

        >>> FamilyPosterior(mean=[0.5], kappa=[9.0]).predictive_moments()
        (0.5, 0.025)
        """
        m, k = self.mean, self.kappa
        return float(m.mean()), float(np.mean(m * (1 - m) / (k + 1)) + m.var())

    def point_prior(self, kind: str = "moment") -> BetaPrior:
        """One Beta prior for the family. ``"moment"`` (default): the Beta whose mean and
        variance match the posterior predictive of a new signal's win rate
        (:meth:`predictive_moments`), so the hyperparameters' uncertainty widens it.
        ``"plug_in"``: Beta(E[m] E[kappa], (1 - E[m]) E[kappa]), which ignores it (its
        concentration exceeds the moment-matched one, by 1.2-2.8x at a posterior sd of 0.4-1.0
        on log kappa).

        Examples
        --------
        The plug-in Beta(0.55 * 50, 0.45 * 50) is narrower than the moment-matched prior:

        >>> fam = FamilyPosterior(mean=[0.54, 0.56], kappa=[40.0, 60.0])
        >>> plug = fam.point_prior("plug_in")
        >>> round(plug.a, 2), round(plug.b, 2)
        (27.5, 22.5)
        >>> moment = fam.point_prior()
        >>> round(moment.a, 2), round(moment.b, 2)
        (25.89, 21.18)
        """
        if kind == "plug_in":
            m, k = float(self.mean.mean()), float(self.kappa.mean())
            return BetaPrior(m * k, (1 - m) * k)
        if kind != "moment":
            raise ValueError(f"kind must be 'moment' or 'plug_in', got {kind!r}")
        mean, var = self.predictive_moments()
        # a Beta's variance is below mean (1 - mean); the predictive's always is (kappa > 0)
        conc = mean * (1 - mean) / var - 1.0
        return BetaPrior.from_mean_concentration(mean, max(conc, 1e-6))

    def betas(self) -> tuple[np.ndarray, np.ndarray]:
        """Every draw's Beta parameters ``(m kappa, (1 - m) kappa)``: for full-Bayes decisions
        (one draw per decision, ``Decider.set_family_draws``).

        Examples
        --------
        ``0.54 * 40`` = 21.6 and ``0.46 * 40`` = 18.4 for the first draw:

        >>> fam = FamilyPosterior(mean=[0.54, 0.56], kappa=[40.0, 60.0])
        >>> a, b = fam.betas()
        >>> a.round(4).tolist(), b.round(4).tolist()
        ([21.6, 33.6], [18.4, 26.4])
        """
        return self.mean * self.kappa, (1 - self.mean) * self.kappa

    def draw(self, rng: np.random.Generator) -> BetaPrior:
        """The Beta prior of one hyperparameter draw, chosen uniformly.

        Examples
        --------
        The seeded generator picks the second draw, Beta(0.56 * 60, 0.44 * 60):

        >>> import numpy as np
        >>> fam = FamilyPosterior(mean=[0.54, 0.56], kappa=[40.0, 60.0])
        >>> prior = fam.draw(np.random.default_rng(0))
        >>> round(prior.a, 4), round(prior.b, 4)
        (33.6, 26.4)
        """
        j = int(rng.integers(self.mean.size))
        return BetaPrior.from_mean_concentration(float(self.mean[j]), float(self.kappa[j]))

    @property
    def rho_mean(self) -> float:
        """Posterior mean intra-cluster correlation (0 when none was published).

        Examples
        --------
        >>> round(FamilyPosterior([0.54, 0.56], [40.0, 60.0], rho=[0.1, 0.2]).rho_mean, 4)
        0.15
        >>> FamilyPosterior([0.54, 0.56], [40.0, 60.0]).rho_mean  # none published
        0.0
        """
        return 0.0 if self.rho is None else float(self.rho.mean())


def persistence(draws: GarchDraws) -> np.ndarray:
    """``alpha + kappa gamma + beta`` per draw (:attr:`GarchDraws.persistence`; kappa =
    E[z^2 1{z<0}] under the draw's skew-t): < 1 is covariance stationarity.

    Examples
    --------
    A symmetric skew-t (``lam = 0``) has kappa = 1/2: ``0.03 + 0.12 / 2 + 0.86`` = 0.95:

    >>> from bayes_mem.live import GarchDraws
    >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
    ...                    nu=[6.0], lam=[0.0])
    >>> persistence(draws).round(4).tolist()
    [0.95]
    """
    return draws.persistence


@dataclass(frozen=True)
class SymbolPosterior:
    """Posterior draws of one symbol's return model (the returns component).

    Parameters
    ----------
    draws : GarchDraws
        GJR-GARCH(1,1) skew-t parameter draws (``mu omega alpha gamma beta nu lam``), each
        covariance stationary and within the module docstring's bounds.
    sigma2 : array of float, shape (draws,)
        Per draw, the conditional variance for the day after the set's ``data_through``
        (daily log-return units, ``VARIANCE_RANGE``); the engine rolls it forward through the
        returns dated after it.

    Examples
    --------
    >>> from bayes_mem.live import GarchDraws
    >>> draws = GarchDraws(
    ...     mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04], gamma=[0.12, 0.10],
    ...     beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[-0.1, -0.05],
    ... )
    >>> spy = SymbolPosterior(draws, sigma2=draws.long_run_variance)
    >>> (spy.sigma2**0.5).round(4).tolist()  # next-day volatility per draw
    [0.0066, 0.0063]
    >>> try:
    ...     SymbolPosterior(draws, sigma2=[4e-5, 2.0])  # a variance of 2: not daily fractions
    ... except PriorSetError as exc:
    ...     print(exc)
    sigma2 draw 1 is 2.0, outside [1e-12, 1] (daily variance)
    """

    draws: GarchDraws
    sigma2: np.ndarray  # per draw, conditional variance for the day after data_through

    def __post_init__(self) -> None:
        d = self.draws
        if not isinstance(d, GarchDraws):
            raise PriorSetError(f"draws must be GarchDraws, got {type(d).__name__}")
        if d.size > MAX_DRAWS:
            raise PriorSetError(f"GARCH draws: {d.size:,} draws, more than {MAX_DRAWS:,}")
        s2 = _draw_array(self.sigma2, "sigma2")
        if s2.shape != (d.size,) or not np.all(np.isfinite(s2) & (s2 > 0)):
            raise PriorSetError(f"sigma2 needs one positive value per draw ({d.size})")
        _check_range(s2, "sigma2", *VARIANCE_RANGE, " (daily variance)")
        _check_range(d.mu, "mu", -MU_MAX, MU_MAX, " (daily log return)")
        p = persistence(d)
        if not np.all(p < 1.0):
            i = int(np.argmax(~(p < 1.0)))
            raise PriorSetError(
                f"persistence alpha + kappa gamma + beta of draw {i} is {float(p[i])!r} (alpha="
                f"{float(d.alpha[i])!r}, gamma={float(d.gamma[i])!r}, beta={float(d.beta[i])!r}):"
                " must be < 1 (covariance stationary)"
            )
        long_run = d.omega / (1.0 - p)
        _check_range(long_run, "long-run variance omega / (1 - P)", *VARIANCE_RANGE)
        # what the live model accepts as a state (return_model.STATE_RANGE): beyond it a fit is
        # degenerate, and a set the trader could not load must not be published
        _check_range(s2 / long_run, "sigma2 / long-run variance", *STATE_RANGE)
        _check_range(d.nu, "nu", NU_MIN, NU_MAX)
        _check_range(d.lam, "lam", -LAM_MAX, LAM_MAX)
        s2.setflags(write=False)
        object.__setattr__(self, "sigma2", s2)


def _garch_from_json(data: Any) -> GarchDraws:
    """GARCH draws from JSON: exactly the parameters, each an array of numbers (text such as
    ``"0.5"`` is refused, not converted)."""
    if not isinstance(data, dict) or set(data) != set(PARAMS):
        raise PriorSetError(f"GARCH draws need exactly the keys {PARAMS}")
    return GarchDraws(**{k: _draw_array(data[k], k) for k in PARAMS})


def _check_text(value: Any, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    limit = TEXT_LIMITS[what]
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise PriorSetError(
            f"{what} must be printable text of 1 to {limit} characters, got {value!r:.80}"
        )
    try:
        if what == "created_at":
            dt.datetime.fromisoformat(value)
        elif what == "data_through":
            dt.date.fromisoformat(value[:10])
    except ValueError:
        raise PriorSetError(f"{what} must be an ISO 8601 date or time, got {value!r}") from None
    return value


def _check_files(files: Any) -> dict[str, str] | None:
    if files is None:
        return None
    if not isinstance(files, dict):
        raise PriorSetError(f"files must be a JSON object name -> sha256, got {files!r:.80}")
    for name, digest in files.items():
        if (
            not isinstance(name, str)
            or not re.fullmatch(_FILE_NAME, name)
            or name == PRIOR_SET_FILE
        ):
            raise PriorSetError(f"files: {name!r:.80} is not a plain file name of a version")
        if not isinstance(digest, str) or not re.fullmatch(_HEX64, digest):
            raise PriorSetError(
                f"files: the sha256 of {name!r} is not 64 hex digits: {digest!r:.80}"
            )
    return dict(files)


@dataclass(frozen=True)
class RegimePrior:
    """The regime detector's prior: hazard, Normal-Gamma prior and run-length truncation.

    The one typed form of the published regime prior (schema ``bayes_mem.regime_prior/1``),
    parsed and bounds-checked in one place (:meth:`from_dict`): the prior set, the engine's
    detector (:meth:`detector`, :meth:`NormalGammaBOCPD.from_prior_set
    <bayes_mem.live.changepoint.NormalGammaBOCPD.from_prior_set>`) and the nightly job all go
    through it.

    Parameters
    ----------
    hazard : float
        Prior probability of a change after each day, in ``REGIME_BOUNDS["hazard"]``
        (1 / the expected regime length in days).
    normal_gamma : NormalGammaPrior
        The prior of a regime's mean and precision of the normal scores (unit-free), each
        value in ``REGIME_BOUNDS``.
    max_run_length : int or None
        Run-length truncation of the detector, in ``RUN_LENGTH_RANGE``; None: the detector's
        default.
    info : dict
        The estimate's other keys (``method``, ``expected_run_length``, ``log_evidence``,
        ``at_bound`` ...): informational, finite JSON, written back unchanged.

    Examples
    --------
    >>> regime = RegimePrior.from_dict(
    ...     {"hazard": 0.004, "max_run_length": 300,
    ...      "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 3.0, "beta0": 3.0}}
    ... )
    >>> regime.hazard, regime.normal_gamma.alpha0, regime.max_run_length
    (0.004, 3.0, 300)
    >>> detector = regime.detector(["SPY", "QQQ"])  # fed the daily normal scores
    >>> detector.streams, detector.max_run_length
    (('SPY', 'QQQ'), 300)
    """

    hazard: float
    normal_gamma: Any  # NormalGammaPrior (imported lazily: changepoint is the detector's module)
    max_run_length: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from bayes_mem.live.changepoint import NormalGammaPrior

        try:
            if not isinstance(self.normal_gamma, NormalGammaPrior):
                got = type(self.normal_gamma).__name__
                raise TypeError(f"normal_gamma must be a NormalGammaPrior, got {got}")
            values = {"hazard": self.hazard, **self.normal_gamma.to_dict()}
            for name, (low, high) in REGIME_BOUNDS.items():
                v = check_real(values[name], name)
                if not low <= v <= high:
                    raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {values[name]!r}")
            object.__setattr__(self, "hazard", float(self.hazard))
            if self.max_run_length is not None:
                r = check_int(self.max_run_length, "max_run_length")
                low, high = RUN_LENGTH_RANGE
                if not low <= r <= high:
                    raise ValueError(f"max_run_length must be in [{low}, {high:,}], got {r!r:.40}")
                object.__setattr__(self, "max_run_length", r)
            if not isinstance(self.info, dict):
                raise TypeError(f"info must be a dict, got {type(self.info).__name__}")
        except (TypeError, ValueError) as exc:
            raise PriorSetError(f"malformed regime prior: {exc}") from None
        info = copy.deepcopy(self.info)
        _check_finite_json(info, "regime")
        object.__setattr__(self, "info", info)

    @classmethod
    def from_dict(cls, data: Any) -> RegimePrior:
        """The one parse of a published regime prior (or of
        :func:`bayes_mem.offline.regime_prior.estimate_regime_prior`'s output): schema,
        hazard, ``normal_gamma`` with exactly ``mu0``, ``kappa0``, ``alpha0``, ``beta0``,
        optional ``max_run_length``, all in bounds; other keys kept as :attr:`info`.

        Examples
        --------
        An extra key (``method``) is kept as :attr:`info`; a hazard out of bounds is refused:

        >>> regime = RegimePrior.from_dict(
        ...     {"hazard": 0.004, "method": "empirical_bayes",
        ...      "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 3.0, "beta0": 3.0}}
        ... )
        >>> regime.hazard, regime.info
        (0.004, {'method': 'empirical_bayes'})
        >>> try:
        ...     RegimePrior.from_dict({**regime.to_dict(), "hazard": 2.0})
        ... except PriorSetError as exc:
        ...     print(exc)
        malformed regime prior: hazard must be in [1e-05, 0.5], got 2.0
        """
        from bayes_mem.live.changepoint import NormalGammaPrior

        if isinstance(data, RegimePrior):
            return data
        try:
            if not isinstance(data, dict):
                raise TypeError(f"a JSON object, got {type(data).__name__}")
            schema = data.get("schema", REGIME_SCHEMA)
            if schema != REGIME_SCHEMA:
                raise ValueError(f"schema must be {REGIME_SCHEMA!r}, got {schema!r:.80}")
            ng = data["normal_gamma"]
            keys = {"mu0", "kappa0", "alpha0", "beta0"}
            if not isinstance(ng, dict) or set(ng) != keys:
                raise ValueError(f"normal_gamma must be an object with keys {sorted(keys)}")
            for name in ("hazard", *sorted(keys)):  # numbers, not text or bools (named first)
                check_real(data["hazard"] if name == "hazard" else ng[name], name)
            if "max_run_length" in data:  # optional, but never null when given
                check_int(data["max_run_length"], "max_run_length")
            prior = NormalGammaPrior(ng["mu0"], ng["kappa0"], ng["alpha0"], ng["beta0"])
            info = {k: v for k, v in data.items()
                    if k not in ("schema", "hazard", "normal_gamma", "max_run_length")}  # fmt: skip
            return cls(data["hazard"], prior, data.get("max_run_length"), info)
        except PriorSetError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise PriorSetError(f"malformed regime prior: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The published form (``schema``, ``hazard``, ``normal_gamma``, ``max_run_length``
        when set, and :attr:`info`).

        Examples
        --------
        >>> regime = RegimePrior.from_dict(
        ...     {"hazard": 0.004, "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 3.0,
        ...      "beta0": 3.0}}
        ... )
        >>> doc = regime.to_dict()
        >>> doc["schema"], doc["hazard"], doc["normal_gamma"]["alpha0"]
        ('bayes_mem.regime_prior/1', 0.004, 3.0)
        >>> RegimePrior.from_dict(doc) == regime
        True
        """
        out = {**copy.deepcopy(self.info), "schema": REGIME_SCHEMA, "hazard": self.hazard,
               "normal_gamma": self.normal_gamma.to_dict()}  # fmt: skip
        if self.max_run_length is not None:
            out["max_run_length"] = self.max_run_length
        return out

    def to_json(self) -> dict[str, Any]:
        """Deprecated alias of :meth:`to_dict` (it never returned JSON text).

        Examples
        --------
        >>> regime = RegimePrior.from_dict(
        ...     {"hazard": 0.004, "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 3.0,
        ...      "beta0": 3.0}}
        ... )
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     doc = regime.to_json()
        >>> doc == regime.to_dict(), seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("RegimePrior.to_json()", "RegimePrior.to_dict()")
        return self.to_dict()

    @classmethod
    def from_json(cls, data: Any) -> RegimePrior:
        """Deprecated alias of :meth:`from_dict` (it reads a mapping, not JSON text).

        Examples
        --------
        >>> regime = RegimePrior.from_dict(
        ...     {"hazard": 0.004, "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 3.0,
        ...      "beta0": 3.0}}
        ... )
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     back = RegimePrior.from_json(regime.to_dict())
        >>> back == regime, seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("RegimePrior.from_json()", "RegimePrior.from_dict()")
        return cls.from_dict(data)

    def detector(self, symbols: int | Sequence[str]) -> NormalGammaBOCPD:
        """A :class:`~bayes_mem.live.changepoint.NormalGammaBOCPD` over ``symbols`` (names or a
        count) with this hazard and prior.

        Examples
        --------
        Without ``max_run_length`` the detector keeps its default truncation:

        >>> regime = RegimePrior.from_dict(
        ...     {"hazard": 0.004, "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 3.0,
        ...      "beta0": 3.0}}
        ... )
        >>> detector = regime.detector(3)  # three unnamed streams
        >>> len(detector.streams), detector.hazard.tolist()  # the hazard per stream
        (3, [0.004, 0.004, 0.004])
        """
        from bayes_mem.live.changepoint import DEFAULT_MAX_RUN_LENGTH, NormalGammaBOCPD

        return NormalGammaBOCPD(
            symbols, self.normal_gamma, hazard=self.hazard,
            max_run_length=self.max_run_length or DEFAULT_MAX_RUN_LENGTH,
        )  # fmt: skip


@dataclass(frozen=True)
class ComponentSource:
    """Where one component of a prior set (win rates, returns or the regime prior) came from.

    Each component is gated and versioned on its own: a set's component is either tonight's
    fit (``version`` is the set's own) or, when tonight's fit of it failed its gate, the
    component of the previous live set, carried over with its source unchanged.

    Parameters
    ----------
    version : int
        The prior-set version whose nightly fit produced the component (<= the set's version).
    fitted_at : str
        When that fit was published (that version's ``created_at``, ISO 8601).
    data_through : str or None
        The last date of the data that fit saw (ISO date first): the component's age is
        measured from it.
    passed : bool
        That fit's gate verdict for this component; a set is live only if every component's
        is exactly ``True``.

    Examples
    --------
    >>> import datetime as dt
    >>> src = ComponentSource(3, "2026-03-02T22:00:00+00:00", "2026-03-02", passed=True)
    >>> src.through_date(), src.age_days(dt.date(2026, 3, 5))
    (datetime.date(2026, 3, 2), 3)
    >>> ComponentSource.from_dict(src.to_dict()) == src
    True
    """

    version: int
    fitted_at: str
    data_through: str | None
    passed: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", _check_version(self.version))
        _check_text(self.fitted_at, "created_at")
        _check_text(self.data_through, "data_through", optional=True)
        if type(self.passed) is not bool:
            raise PriorSetError(
                f"a component's passed must be true or false, got {self.passed!r:.40}"
            )

    def through_date(self) -> dt.date | None:
        """:attr:`data_through` as a date (None when unknown).

        Examples
        --------
        A timestamp is read by its date part:

        >>> ComponentSource(1, "2026-03-02T22:00:00+00:00", "2026-03-02T21:00", True).through_date()
        datetime.date(2026, 3, 2)
        >>> print(ComponentSource(1, "2026-03-02T22:00:00+00:00", None, True).through_date())
        None
        """
        return None if self.data_through is None else dt.date.fromisoformat(self.data_through[:10])

    def age_days(self, today: dt.date) -> int | None:
        """Calendar days from :attr:`data_through` to ``today`` (None when unknown).

        Examples
        --------
        From 2 March to 1 April 2026: 29 days of March left plus 1:

        >>> import datetime as dt
        >>> src = ComponentSource(3, "2026-03-02T22:00:00+00:00", "2026-03-02", passed=True)
        >>> src.age_days(dt.date(2026, 4, 1))
        30
        """
        through = self.through_date()
        return None if through is None else (today - through).days

    def to_dict(self) -> dict[str, Any]:
        """The published form: ``version``, ``fitted_at``, ``data_through``, ``passed``.

        Examples
        --------
        >>> src = ComponentSource(3, "2026-03-02T22:00:00+00:00", "2026-03-02", passed=True)
        >>> src.to_dict()  # doctest: +NORMALIZE_WHITESPACE
        {'version': 3, 'fitted_at': '2026-03-02T22:00:00+00:00', 'data_through': '2026-03-02',
         'passed': True}
        """
        return {"version": self.version, "fitted_at": self.fitted_at,
                "data_through": self.data_through, "passed": self.passed}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Any) -> ComponentSource:
        """A source from its published form: exactly the four keys of :meth:`to_dict`.

        Examples
        --------
        >>> doc = {"version": 2, "fitted_at": "2026-03-01T22:00:00+00:00",
        ...        "data_through": "2026-03-01", "passed": False}
        >>> ComponentSource.from_dict(doc).passed
        False
        >>> try:
        ...     ComponentSource.from_dict({"version": 2})
        ... except PriorSetError as exc:
        ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
        a component source is a JSON object with keys
        ['data_through', 'fitted_at', 'passed', 'version']
        """
        keys = {"version", "fitted_at", "data_through", "passed"}
        if not isinstance(data, dict) or set(data) != keys:
            raise PriorSetError(f"a component source is a JSON object with keys {sorted(keys)}")
        return cls(data["version"], data["fitted_at"], data["data_through"], data["passed"])

    def to_json(self) -> dict[str, Any]:
        """Deprecated alias of :meth:`to_dict` (it never returned JSON text).

        Examples
        --------
        >>> src = ComponentSource(3, "2026-03-02T22:00:00+00:00", "2026-03-02", passed=True)
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     doc = src.to_json()
        >>> doc == src.to_dict(), seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("ComponentSource.to_json()", "ComponentSource.to_dict()")
        return self.to_dict()

    @classmethod
    def from_json(cls, data: Any) -> ComponentSource:
        """Deprecated alias of :meth:`from_dict` (it reads a mapping, not JSON text).

        Examples
        --------
        >>> src = ComponentSource(3, "2026-03-02T22:00:00+00:00", "2026-03-02", passed=True)
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     back = ComponentSource.from_json(src.to_dict())
        >>> back == src, seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("ComponentSource.from_json()", "ComponentSource.from_dict()")
        return cls.from_dict(data)


@dataclass(frozen=True)
class PriorSet:
    """The prior set: everything the nightly job hands the live path, as one immutable value.

    Built (and so bounds-checked, see the module docstring's table) at write and at load.
    Each of its three components -- win rates (:attr:`families`), returns (:attr:`symbols`)
    and the regime prior (:attr:`regime`) -- records in :attr:`components` the version it came
    from, its date and its verdict: a component whose fit failed keeps its previous version
    while the others refresh. The contract (field table, layout, data flow):
    ``docs/prior_set.md``.

    Parameters
    ----------
    version : int
        The version number, 1 .. ``MAX_VERSION``; its folder is ``prior_sets/v{version:06d}``.
    created_at : str
        When the nightly job published it (ISO 8601).
    data_through : str or None
        The date the symbols' variance states (:attr:`SymbolPosterior.sigma2`) refer to: the
        returns component's ``data_through``. The engine rolls each state forward through the
        returns dated after it.
    code_version, config_hash : str
        The package version and the nightly configuration's hash of the job that wrote it.
    families : dict of str to FamilyPosterior
        The win-rate component: per signal family, posterior draws of its Beta prior.
    symbols : dict of str to SymbolPosterior
        The returns component: per symbol, GJR-GARCH skew-t draws and variance states.
    diagnostics : dict
        The night's verdict: ``passed`` (exactly ``true`` for a set to trade on), ``reasons``,
        ``summary`` and, from schema 2, ``components``: each component's own verdict of that
        night (its fit may have failed while the set carries its previous version).
    regime : RegimePrior or None
        The regime component (a dict is parsed with :meth:`RegimePrior.from_dict`).
    files : dict of str to str or None
        The manifest (file name -> SHA-256) it was published with; None before publishing.
    components : dict of str to ComponentSource or None
        Per component (``COMPONENTS``) its source; a component the set does not hold (no
        passing fit yet) maps to None. Default (and for schema-1 sets): every component from
        this set itself, with its own date and verdict.

    Examples
    --------
    A set holding only the win-rate component (no symbols, no regime prior):

    >>> import datetime as dt
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> prior_set.component_ages(dt.date(2026, 3, 5))
    {'winrate': 3, 'returns': None, 'regime': None}
    >>> PriorSet.from_dict(prior_set.to_dict()).to_dict() == prior_set.to_dict()
    True
    """

    version: int
    created_at: str  # ISO 8601
    data_through: str | None  # the date of the variance states (the returns component's)
    code_version: str
    config_hash: str
    families: dict[str, FamilyPosterior] = field(default_factory=dict)
    symbols: dict[str, SymbolPosterior] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    # the regime detector's hazard and Normal-Gamma prior (bayes_mem.regime_prior/1), or None
    regime: RegimePrior | None = None
    # the manifest it was published with (file name -> SHA-256); None: none (not published yet,
    # or published before manifests existed)
    files: dict[str, str] | None = None
    components: dict[str, ComponentSource | None] | None = None

    def __post_init__(self) -> None:
        try:
            version = check_int(self.version, "version", minimum=1)
        except (TypeError, ValueError) as exc:
            raise PriorSetError(str(exc)) from None
        if version > MAX_VERSION:
            raise PriorSetError(f"version must be <= {MAX_VERSION:,}, got {version!r:.40}")
        object.__setattr__(self, "version", version)
        _check_text(self.created_at, "created_at")
        _check_text(self.data_through, "data_through", optional=True)
        _check_text(self.code_version, "code_version")
        _check_text(self.config_hash, "config_hash")
        for what, table, kind in (("family", self.families, FamilyPosterior),
                                  ("symbol", self.symbols, SymbolPosterior)):  # fmt: skip
            if not isinstance(table, dict):
                raise PriorSetError(f"{what} posteriors must be a dict, got {type(table).__name__}")
            for name, post in table.items():
                try:
                    check_name(name, what)
                except (TypeError, ValueError) as exc:
                    raise PriorSetError(str(exc)) from None
                if not isinstance(post, kind):
                    raise PriorSetError(f"{what} {name!r} is not a {kind.__name__}")
        # ours: validated values must not change through the caller's (or to_dict's) dicts
        object.__setattr__(self, "diagnostics", copy.deepcopy(self.diagnostics))
        _check_finite_json(self.diagnostics, "diagnostics")
        if not isinstance(self.diagnostics, dict):
            raise PriorSetError(
                f"diagnostics must be a dict, got {type(self.diagnostics).__name__}"
            )
        if self.regime is not None and not isinstance(self.regime, RegimePrior):
            object.__setattr__(self, "regime", RegimePrior.from_dict(self.regime))
        object.__setattr__(self, "files", _check_files(self.files))
        object.__setattr__(self, "components", self._check_components(self.components))

    def _check_components(self, components: Any) -> dict[str, ComponentSource | None]:
        """Every component's source: given (checked) or this set itself (a schema-1 set, or
        one built in memory)."""
        if components is None:
            own = ComponentSource(
                self.version, self.created_at, self.data_through, gate_passed(self)
            )
            held = {"winrate": bool(self.families), "returns": bool(self.symbols),
                    "regime": self.regime is not None}  # fmt: skip
            return {c: own if held[c] else None for c in COMPONENTS}
        if not isinstance(components, dict) or set(components) != set(COMPONENTS):
            raise PriorSetError(f"components must name exactly {list(COMPONENTS)}")
        out: dict[str, ComponentSource | None] = {}
        for name in COMPONENTS:
            src = components[name]
            if isinstance(src, dict):
                src = ComponentSource.from_dict(src)
            if src is not None and not isinstance(src, ComponentSource):
                raise PriorSetError(f"component {name}: not a ComponentSource")
            if src is not None and src.version > self.version:
                raise PriorSetError(
                    f"component {name} comes from v{src.version}, later than the set (v"
                    f"{self.version})"
                )
            out[name] = src
        content = {"winrate": self.families, "returns": self.symbols, "regime": self.regime}
        for name in COMPONENTS:
            if out[name] is None and content[name]:
                raise PriorSetError(f"component {name} has content but no source")
        returns = out["returns"]
        if returns is not None and returns.data_through != self.data_through:
            raise PriorSetError(
                f"data_through ({self.data_through!r:.40}) must be the returns component's "
                f"({returns.data_through!r:.40}): the variance states refer to it"
            )
        return out

    def source(self, component: str) -> ComponentSource | None:
        """The source of ``component`` (one of ``COMPONENTS``); None when the set holds none.

        Examples
        --------
        A set built in memory is the source of what it holds:

        >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
        ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
        ...     diagnostics={"passed": True})
        >>> prior_set.source("winrate").version, prior_set.source("returns")
        (1, None)
        """
        if component not in COMPONENTS:
            raise ValueError(f"component must be one of {COMPONENTS}, got {component!r:.40}")
        assert self.components is not None  # __post_init__ fills it (None means "this set")
        return self.components[component]

    def component_ages(self, today: dt.date) -> dict[str, int | None]:
        """Per component, calendar days from its ``data_through`` to ``today`` (None: the set
        holds none of it, or its date is unknown).

        Examples
        --------
        >>> import datetime as dt
        >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
        ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
        ...     diagnostics={"passed": True})
        >>> prior_set.component_ages(dt.date(2026, 3, 9))  # a week after data_through
        {'winrate': 7, 'returns': None, 'regime': None}
        """
        assert self.components is not None  # __post_init__ fills it
        return {c: None if s is None else s.age_days(today)
                for c, s in self.components.items()}  # fmt: skip

    def regime_detector(self, symbols: int | Sequence[str] | None = None) -> NormalGammaBOCPD:
        """A :class:`~bayes_mem.live.changepoint.NormalGammaBOCPD` over ``symbols`` (default:
        this set's symbols) with the published hazard and prior; fed
        :meth:`ReturnModel.last_normal_score` day by day.

        Examples
        --------
        >>> regime = {"hazard": 0.01, "normal_gamma": {"mu0": 0.0, "kappa0": 1.0,
        ...           "alpha0": 3.0, "beta0": 3.0}}
        >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
        ...     regime=regime, diagnostics={"passed": True})
        >>> detector = prior_set.regime_detector(["SPY"])
        >>> detector.streams, detector.hazard.tolist()  # the hazard per stream
        (('SPY',), [0.01])
        """
        if self.regime is None:
            raise PriorSetError(f"prior set v{self.version} has no regime prior")
        names = sorted(self.symbols) if symbols is None else symbols
        return self.regime.detector(names)

    def to_dict(self) -> dict[str, Any]:
        """The set's document (schema ``SCHEMA``): what :func:`write_prior_set` hashes, signs and
        writes, and :meth:`from_dict` reads back.

        Examples
        --------
        >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
        ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
        ...     diagnostics={"passed": True})
        >>> doc = prior_set.to_dict()
        >>> doc["schema"], doc["families"]["momentum"]["kappa"], doc["components"]["returns"]
        ('bayes_mem.prior_set/2', [40.0, 60.0], None)
        """
        extra: dict[str, Any] = {} if self.regime is None else {"regime": self.regime.to_dict()}
        if self.files is not None:
            extra["files"] = dict(sorted(self.files.items()))
        assert self.components is not None  # __post_init__ fills it
        return {
            **extra,
            "schema": SCHEMA,
            "version": self.version,
            "created_at": self.created_at,
            "data_through": self.data_through,
            "code_version": self.code_version,
            "config_hash": self.config_hash,
            "components": {
                c: None if s is None else s.to_dict() for c, s in self.components.items()
            },
            "families": {
                name: {"mean": f.mean.tolist(), "kappa": f.kappa.tolist()}
                | ({} if f.rho is None else {"rho": f.rho.tolist()})
                for name, f in sorted(self.families.items())
            },
            "symbols": {
                name: {"draws": s.draws.to_dict(), "sigma2": s.sigma2.tolist()}
                for name, s in sorted(self.symbols.items())
            },
            "diagnostics": copy.deepcopy(self.diagnostics),
        }

    @classmethod
    def from_dict(cls, data: Any) -> PriorSet:
        """A set from its document. Schema 2 must list ``components``; a schema-1 document
        (published before per-component versions) has none and loads with every component
        from the set itself (its own date and verdict): old versions stay loadable, and
        trading continues on the active one across the upgrade.

        Examples
        --------
        A schema-1 document (no ``components``) loads with the set as every component's source:

        >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
        ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
        ...     diagnostics={"passed": True})
        >>> doc = prior_set.to_dict()
        >>> old = {k: v for k, v in doc.items() if k != "components"} | {"schema": SCHEMA_V1}
        >>> PriorSet.from_dict(old).source("winrate").version
        1
        >>> try:
        ...     PriorSet.from_dict({**doc, "colour": "blue"})
        ... except PriorSetError as exc:
        ...     print(exc)
        malformed prior set: missing keys [], unknown keys ["'colour'"]
        """
        schema = check_schema(
            data, SCHEMA, also=(SCHEMA_V1,), error=PriorSetError, mapping=dict,
            message=lambda got: f"not a {SCHEMA} (or {SCHEMA_V1}) document (schema: {got!r:.80})",
        )  # fmt: skip
        required = _DOC_KEYS | ({"components"} if schema == SCHEMA else set())
        optional = _OPTIONAL_KEYS - ({"components"} if schema == SCHEMA_V1 else set())
        missing, unknown = required - set(data), set(data) - required - optional
        if missing or unknown:
            raise PriorSetError(
                f"malformed prior set: missing keys {sorted(missing)}, unknown keys "
                f"{sorted(map(repr, unknown))[:5]}"
            )
        try:
            families = {}
            for n, f in data["families"].items():
                try:
                    rho = f.get("rho")
                    families[n] = FamilyPosterior(f["mean"], f["kappa"], rho)
                except PriorSetError as exc:
                    raise PriorSetError(f"family {n!r:.80}: {exc}") from None
            symbols = {}
            for n, s in data["symbols"].items():
                try:
                    symbols[n] = SymbolPosterior(_garch_from_json(s["draws"]), s["sigma2"])
                except (PriorSetError, ValueError, TypeError) as exc:
                    raise PriorSetError(f"symbol {n!r:.80}: {exc}") from None
            regime = data.get("regime")
            return cls(
                version=data["version"],
                created_at=data["created_at"],
                data_through=data["data_through"],
                code_version=data["code_version"],
                config_hash=data["config_hash"],
                families=families,
                symbols=symbols,
                diagnostics=data["diagnostics"],
                regime=None if regime is None else RegimePrior.from_dict(regime),
                files=data.get("files"),
                components=data.get("components"),
            )
        except PriorSetError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise PriorSetError(f"malformed prior set: {exc!r:.200}") from exc

    def to_json(self) -> dict[str, Any]:
        """Deprecated alias of :meth:`to_dict` (it never returned JSON text).

        Examples
        --------
        >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
        ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
        ...     diagnostics={"passed": True})
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     doc = prior_set.to_json()
        >>> doc == prior_set.to_dict(), seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("PriorSet.to_json()", "PriorSet.to_dict()")
        return self.to_dict()

    @classmethod
    def from_json(cls, data: Any) -> PriorSet:
        """Deprecated alias of :meth:`from_dict` (it reads a mapping, not JSON text).

        Examples
        --------
        >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
        ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
        ...     diagnostics={"passed": True})
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     back = PriorSet.from_json(prior_set.to_dict())
        >>> back.to_dict() == prior_set.to_dict(), seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("PriorSet.from_json()", "PriorSet.from_dict()")
        return cls.from_dict(data)


def gate_passed(prior_set: PriorSet) -> bool:
    """True only when the set's verdict is exactly a pass (``passed`` is the JSON ``true``)
    and so is the source verdict of every component it holds.

    Examples
    --------
    A truthy verdict that is not exactly ``True`` (here the string ``"yes"``) does not pass:

    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> gate_passed(prior_set)
    True
    >>> gate_passed(PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...                      diagnostics={"passed": "yes"}))
    False
    """
    if prior_set.diagnostics.get("passed") is not True:
        return False
    sources = prior_set.components or {}
    return all(s is None or s.passed is True for s in sources.values())


def check_gate(prior_set: PriorSet) -> PriorSet:
    """``prior_set`` if its verdict is exactly a pass; else :class:`PriorSetError`.

    Examples
    --------
    >>> failed = PriorSet(2, "2026-03-03T22:00:00+00:00", "2026-03-03", "0.1.0", "demo",
    ...                   diagnostics={"passed": False})
    >>> try:
    ...     check_gate(failed)
    ... except PriorSetError as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    prior set v2 did not pass its diagnostics gate (passed: False); only a verdict of exactly
    true is live
    """
    if not gate_passed(prior_set):
        got = prior_set.diagnostics.get("passed", "<missing>")
        failed = [c for c, s in (prior_set.components or {}).items() if s and not s.passed]
        raise PriorSetError(
            f"prior set v{prior_set.version} did not pass its diagnostics gate (passed: "
            f"{got!r:.40}{'; failed components: ' + ', '.join(failed) if failed else ''}); "
            "only a verdict of exactly true is live"
        )
    return prior_set


# ------------------------------------------------------------------------------- JSON and keys
def canonical_bytes(doc: dict[str, Any]) -> bytes:
    """The canonical JSON bytes of ``doc`` (keys sorted, no spaces, no NaN): what the SHA-256
    and the signature of a prior set cover.

    Examples
    --------
    >>> canonical_bytes({"b": [1, 2.5], "a": None})
    b'{"a":null,"b":[1,2.5]}'
    """
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _no_constant(name: str) -> Any:
    raise PriorSetError(f"{name} is not a finite number")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise PriorSetError(f"an integer of {len(text):,} digits (more than {MAX_INT_DIGITS})")
    return int(text)


def _check_finite_json(value: Any, what: str) -> None:
    """Every number in a JSON-like value finite (the draws' arrays are checked by their bounds;
    this covers the small free-form parts: diagnostics, regime)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise PriorSetError(f"{what} holds a non-finite number ({v!r})")
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        # set.add returns None (falsy): the condition adds k and is true at its second sight
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise PriorSetError(f"duplicate key {dup!r:.80}")
    return out


def parse_json(raw: bytes, shown: object) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, integers of at most ``MAX_INT_DIGITS`` digits, no
    duplicate keys, bounded nesting; anything else is a :class:`PriorSetError`. (A float
    literal beyond the float range, 1e999, reads as infinity: the bounds refuse it.)

    Examples
    --------
    ``shown`` names the source in the messages:

    >>> parse_json(b'{"a": [1, 2.5]}', "demo")
    {'a': [1, 2.5]}
    >>> for raw in (b'{"a": NaN}', b'{"a": 1, "a": 2}'):
    ...     try:
    ...         parse_json(raw, "demo")
    ...     except PriorSetError as exc:
    ...         print(exc)
    corrupt prior set demo: NaN is not a finite number
    corrupt prior set demo: duplicate key 'a'
    """
    try:
        return json.loads(
            raw.decode("utf-8"), parse_constant=_no_constant, parse_int=_bounded_int,
            object_pairs_hook=_unique_keys,
        )  # fmt: skip
    except PriorSetError as exc:
        raise PriorSetError(f"corrupt prior set {shown}: {exc}") from None
    except RecursionError:
        raise PriorSetError(f"corrupt prior set {shown}: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise PriorSetError(f"corrupt prior set {shown}: {exc}") from None


def signing_key(path: str | Path | None = None) -> bytes | None:
    """The deployment's signing key: the content (whitespace stripped) of ``path``, else of the
    file named by ``$BAYES_MEM_SIGNING_KEY_FILE``; None when neither is set. The file must be a
    regular file of this user or root with no group or other access, 32 to 4096 bytes (e.g.
    ``umask 077; openssl rand -hex 32 > key``).

    Examples
    --------
    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "key")
    >>> with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
    ...     _ = f.write("0123456789abcdef" * 4 + "\\n")
    >>> len(signing_key(path))  # 64 hex characters, the newline stripped
    64
    >>> tmp.cleanup()
    """
    if path is None:
        path = os.environ.get(SIGNING_KEY_ENV, "").strip() or None
        if path is None:
            return None
    try:
        fd = os.open(path, _files.FILE_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise PriorSetError(f"cannot read the signing key {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        _files.check_trusted(st, f"signing key {path}", directory=False)
        if st.st_mode & 0o077:
            raise PriorSetError(
                f"signing key {path} is readable or writable by others (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); refused (chmod 600)"
            )
        key = _files.read_limited(fd, f"signing key {path}", KEY_BYTES[1]).strip()
    except TrustError as exc:
        raise PriorSetError(str(exc)) from None
    finally:
        os.close(fd)
    return _check_key(key, f"signing key {path}")


def _check_key(key: Any, what: str = "signing key") -> bytes:
    if not isinstance(key, bytes):
        raise TypeError(f"{what} must be bytes, got {type(key).__name__}")
    if not KEY_BYTES[0] <= len(key) <= KEY_BYTES[1]:
        raise PriorSetError(f"{what} has {len(key)} bytes; {KEY_BYTES[0]} to {KEY_BYTES[1]} needed")
    return key


def _resolve_key(key: bytes | None) -> bytes | None:
    return signing_key() if key is None else _check_key(key)


def _sign(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _same_hex(expected: str, got: Any) -> bool:
    return isinstance(got, str) and got.isascii() and hmac.compare_digest(expected, got)


_HEAD = rb'\{(?:"hmac_sha256":"[0-9a-f]{64}",)?"prior_set":'
_TAIL = rb',"sha256":"[0-9a-f]{64}"\}'


def _document_bytes(raw: bytes) -> bytes | None:
    """The bytes of the ``prior_set`` value when ``raw`` has the writer's canonical layout
    (its hash is then that of the canonical document, without serialising it again: 3.8 s
    for a 60 MB set); None otherwise. Only used once ``raw`` parsed with exactly the expected
    keys, none repeated, so these bytes are the whole value."""
    head = re.match(_HEAD, raw)
    if head is None or len(raw) < 77 or not re.fullmatch(_TAIL, raw[-77:]):
        return None
    return raw[head.end() : len(raw) - 77]


def decode_prior_set(raw: bytes, shown: object, key: bytes | None = None) -> PriorSet:
    """Verify and decode the bytes of a ``prior_set.json``: strict JSON, layout, SHA-256, the
    signature when ``key`` is given, every value in bounds.

    Examples
    --------
    The file layout is ``{"prior_set": document, "sha256": hash of its canonical bytes}``; a
    changed byte fails the hash check:

    >>> import hashlib, json
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> doc = prior_set.to_dict()
    >>> digest = hashlib.sha256(canonical_bytes(doc)).hexdigest()
    >>> raw = json.dumps({"prior_set": doc, "sha256": digest}).encode()
    >>> decode_prior_set(raw, "demo").version
    1
    >>> try:
    ...     decode_prior_set(raw.replace(b"0.54", b"0.64"), "demo")
    ... except PriorSetError as exc:
    ...     print(exc)
    prior set demo fails its hash check
    """
    payload = parse_json(raw, shown)
    layout = set(payload) if isinstance(payload, dict) else set()
    if layout not in ({"sha256", "prior_set"}, {"sha256", "prior_set", "hmac_sha256"}):
        raise PriorSetError(f"corrupt prior set {shown}: unexpected layout")
    body = _document_bytes(raw)
    if body is None or not _same_hex(hashlib.sha256(body).hexdigest(), payload["sha256"]):
        try:  # not as the writer wrote it: hash the document's canonical form
            body = canonical_bytes(payload["prior_set"])
        except (ValueError, TypeError, RecursionError) as exc:
            raise PriorSetError(f"corrupt prior set {shown}: {exc}") from None
        if not _same_hex(hashlib.sha256(body).hexdigest(), payload["sha256"]):
            raise PriorSetError(f"prior set {shown} fails its hash check")
    if key is not None:
        if "hmac_sha256" not in payload:
            raise PriorSetError(f"prior set {shown} is not signed, and a signing key is configured")
        if not _same_hex(_sign(key, body), payload["hmac_sha256"]):
            raise PriorSetError(f"prior set {shown} has a wrong signature for the configured key")
    try:
        return PriorSet.from_dict(payload["prior_set"])
    except PriorSetError as exc:
        raise PriorSetError(f"prior set {shown}: {exc}") from None


# ------------------------------------------------------------------------------- the registry
def version_dir(models_dir: str | Path, version: int) -> Path:
    """The folder of ``version`` under ``models_dir``: ``prior_sets/v{version:06d}``.

    Examples
    --------
    >>> version_dir("/srv/models", 42).as_posix()
    '/srv/models/prior_sets/v000042'
    """
    return Path(models_dir) / PRIOR_SETS / f"v{version:06d}"


def _check_version(version: Any) -> int:
    try:
        v = check_int(version, "version", minimum=1)
    except (TypeError, ValueError) as exc:
        raise PriorSetError(str(exc)) from None
    if v > MAX_VERSION:
        raise PriorSetError(f"version must be <= {MAX_VERSION:,}, got {v!r:.40}")
    return v


def list_versions(models_dir: str | Path) -> list[int]:
    """The version numbers under ``models/prior_sets``, ascending: directory names exactly
    ``v`` and six to nine ASCII digits (``v000042``); anything else (a publish in progress, a
    stray ``v1abc``) is ignored. Listing trusts nothing: loading a version checks it.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> list_versions(tmp.name), folder.name
    ([1], 'v000001')
    >>> tmp.cleanup()
    """
    try:
        names = os.listdir(Path(models_dir) / PRIOR_SETS)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        m = re.fullmatch(_VERSION_NAME, name)
        if m and int(m[1]) >= 1 and f"v{int(m[1]):06d}" == name:
            out.append(int(m[1]))
    return sorted(out)


@contextlib.contextmanager
def _opened(models: Path, *names: str, file: str | None = None) -> Iterator[list[int]]:
    """Descriptors of the models directory, each directory in ``names`` below it and ``file``
    in the last, each opened without following links and checked (``_files.check_trusted``);
    a refusal is a :class:`PriorSetError`."""
    with ExitStack() as stack:
        fds = []
        try:
            fds.append(_files.open_dir(models))
            stack.callback(os.close, fds[-1])
            shown = models
            for i, name in enumerate((*names, file) if file else names):
                shown = shown / name
                directory = file is None or i < len(names)
                fds.append(_files.open_in(fds[-1], name, shown, directory=directory))
                stack.callback(os.close, fds[-1])
        except TrustError as exc:
            raise PriorSetError(str(exc)) from None
        yield fds


def _read_active(models: Path) -> bytes | None:
    """The raw content of ``ACTIVE`` (checked, bounded); None when it or the registry is
    missing."""
    try:
        with _opened(models, file=ACTIVE) as fds:
            return _files.read_limited(fds[-1], models / ACTIVE, MAX_ACTIVE_BYTES)
    except FileNotFoundError:
        return None
    except TrustError as exc:
        raise PriorSetError(str(exc)) from None


def active_version(models_dir: str | Path) -> int | None:
    """The version ``ACTIVE`` names (ASCII digits and an optional newline, nothing else), or
    None when none was ever activated.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set, activate
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> print(active_version(tmp.name))  # published, not yet active
    None
    >>> _ = activate(tmp.name, 1)
    >>> active_version(tmp.name)
    1
    >>> tmp.cleanup()
    """
    models = Path(models_dir)
    raw = _read_active(models)
    if raw is None:
        return None
    m = re.fullmatch(_ACTIVE_TEXT, raw)
    if not m or int(m[1]) < 1:
        raise PriorSetError(f"{models / ACTIVE} does not name a version: {raw[:40]!r}")
    return int(m[1])


def read_prior_set_file(path: str | Path, *, key: bytes | None = None) -> PriorSet:
    """Load and verify the prior set in one ``prior_set.json`` file (not a link; a regular file
    of this user or root, not writable by others; schema, hash, signature with a key, bounds);
    the folder may be any version's, even the temporary one of a publish in progress.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> loaded = read_prior_set_file(folder / "prior_set.json")
    >>> loaded.version, sorted(loaded.families)
    (1, ['momentum'])
    >>> tmp.cleanup()
    """
    path = Path(path)
    key = _resolve_key(key)
    try:
        fd = os.open(path, _files.FILE_FLAGS)
    except FileNotFoundError:
        raise PriorSetError(f"no prior set at {path}") from None
    except OSError as exc:
        if os.path.islink(path):
            raise PriorSetError(f"{path} is a symbolic link; refused") from None
        raise PriorSetError(f"cannot open {path}: {exc.strerror}") from None
    try:
        _files.check_trusted(os.fstat(fd), path, directory=False)
        raw = _files.read_limited(fd, path, MAX_BYTES)
    except TrustError as exc:
        raise PriorSetError(str(exc)) from None
    finally:
        os.close(fd)
    return decode_prior_set(raw, path, key)


def load_prior_set(models_dir: str | Path, version: int, *, key: bytes | None = None) -> PriorSet:
    """Load and verify one version (every path checked, schema, SHA-256, signature with a key,
    bounds, and that it is the version asked for), whatever its verdict.

    Examples
    --------
    A rejected set (its gate failed) still loads for analysis:

    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": False})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> loaded = load_prior_set(tmp.name, 1)
    >>> loaded.version, loaded.diagnostics["passed"]
    (1, False)
    >>> tmp.cleanup()
    """
    version = _check_version(version)
    key = _resolve_key(key)
    models = Path(models_dir)
    folder = version_dir(models, version)
    path = folder / PRIOR_SET_FILE
    try:
        with _opened(models, PRIOR_SETS, folder.name, file=PRIOR_SET_FILE) as fds:
            raw = _files.read_limited(fds[-1], path, MAX_BYTES)
    except FileNotFoundError:
        raise PriorSetError(f"no prior set version {version} at {path}") from None
    except TrustError as exc:
        raise PriorSetError(str(exc)) from None
    prior_set = decode_prior_set(raw, path, key)
    if prior_set.version != version:
        raise PriorSetError(f"{path} holds version {prior_set.version}, not {version}")
    return prior_set


def load_live_prior_set(
    models_dir: str | Path, version: int, *, key: bytes | None = None
) -> PriorSet:
    """The one loader of sets to trade on: :func:`load_prior_set` and a verdict of exactly a
    pass (:func:`check_gate`).

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": False})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> try:
    ...     load_live_prior_set(tmp.name, 1)
    ... except PriorSetError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    prior set v1 did not pass its diagnostics gate (passed: False; ...
    >>> tmp.cleanup()
    """
    return check_gate(load_prior_set(models_dir, version, key=key))


def load_active(models_dir: str | Path, *, key: bytes | None = None) -> PriorSet | None:
    """The verified, gate-passed active prior set, or None when none was ever activated.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set, activate
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> print(load_active(tmp.name))
    None
    >>> _ = activate(tmp.name, 1)
    >>> load_active(tmp.name).families["momentum"].mean.tolist()
    [0.54, 0.56]
    >>> tmp.cleanup()
    """
    version = active_version(models_dir)
    return None if version is None else load_live_prior_set(models_dir, version, key=key)


def _hash_fd(fd: int) -> str:
    h = hashlib.sha256()
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    return h.hexdigest()


def _verify_folder_fd(
    vfd: int, folder: Path, prior_set: PriorSet, names: list[str] | None
) -> dict[str, str]:
    """Check the files of a version folder against ``prior_set``'s manifest (``names``: only
    those; None: all, and that nothing else is there). Returns name -> what was found."""
    present = sorted(set(os.listdir(vfd)) - {PRIOR_SET_FILE})
    if prior_set.files is None:
        return {n: "unverified: published without a manifest (informational only)"
                for n in (present if names is None else names)}  # fmt: skip
    wanted = sorted(prior_set.files) if names is None else names
    problems, out = [], {}
    for name in wanted:
        if name not in prior_set.files:
            problems.append(f"{name}: not in the manifest")
            continue
        try:
            fd = _files.open_in(vfd, name, folder / name, directory=False)
        except FileNotFoundError:
            problems.append(f"{name}: missing")
            continue
        except TrustError as exc:
            problems.append(str(exc))
            continue
        try:
            digest = _hash_fd(fd)
        finally:
            os.close(fd)
        if digest != prior_set.files[name]:
            problems.append(f"{name}: SHA-256 {digest[:12]}... differs from the manifest's")
        else:
            out[name] = "sha256 ok"
    if names is None:
        problems += [f"{n}: not in the manifest" for n in present if n not in prior_set.files]
    if problems:
        raise PriorSetError(f"version folder {folder}: " + "; ".join(problems))
    return out


def verify_version(
    models_dir: str | Path, version: int, *, key: bytes | None = None
) -> dict[str, str]:
    """Verify one version whole: ``prior_set.json`` (as :func:`load_prior_set`), every file of
    its manifest (SHA-256) and that the folder holds nothing else. Returns file name -> what
    was checked; raises :class:`PriorSetError` listing every problem.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> verify_version(tmp.name, 1)  # no signing key configured: the hash only
    {'prior_set.json': 'hash ok'}
    >>> tmp.cleanup()
    """
    key = _resolve_key(key)
    prior_set = load_prior_set(models_dir, version, key=key)
    models = Path(models_dir)
    folder = version_dir(models, prior_set.version)
    with _opened(models, PRIOR_SETS, folder.name) as fds:
        files = _verify_folder_fd(fds[-1], folder, prior_set, None)
    checked = "hash ok" + (", signature ok" if key is not None else "")
    return {PRIOR_SET_FILE: checked, **files}


def verify_folder(
    folder: str | Path, names: list[str] | None = None, *, key: bytes | None = None
) -> tuple[PriorSet, dict[str, str]]:
    """A version folder anywhere (the report's): its verified prior set and the check of the
    files ``names`` (None: all) against its manifest.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> loaded, files = verify_folder(folder)
    >>> loaded.version, files  # the set has no other files
    (1, {})
    >>> tmp.cleanup()
    """
    folder = Path(folder)
    prior_set = read_prior_set_file(folder / PRIOR_SET_FILE, key=key)
    try:
        fd = _files.open_dir(folder)
    except TrustError as exc:
        raise PriorSetError(str(exc)) from None
    try:
        return prior_set, _verify_folder_fd(fd, folder, prior_set, names)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------- writing
def _open_registry(models: Path, stack: ExitStack) -> tuple[int, int]:
    """Descriptors of the models directory and its ``prior_sets``, created with mode 0700 where
    missing, checked where they exist."""
    try:
        _files.make_private_dirs(models)
        mfd = _files.open_dir(models)
        stack.callback(os.close, mfd)
        pfd = _files.ensure_dir_in(mfd, PRIOR_SETS, models / PRIOR_SETS)
        stack.callback(os.close, pfd)
    except TrustError as exc:
        raise PriorSetError(f"cannot publish: {exc}") from None
    return mfd, pfd


def _seal_files(tfd: int, folder: Path) -> dict[str, str]:
    """Make the artifacts ``extra`` wrote owner-only (0600 exactly) and durable, and return
    their manifest. Only regular files with plain names are allowed."""
    files = {}
    for name in sorted(os.listdir(tfd)):
        if not re.fullmatch(_FILE_NAME, name) or name == PRIOR_SET_FILE:
            raise PriorSetError(f"{folder / name}: not an allowed artifact name")
        try:
            fd = os.open(name, _files.FILE_FLAGS, dir_fd=tfd)
        except OSError as exc:
            raise PriorSetError(f"{folder / name} is not a regular file ({exc.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PriorSetError(f"{folder / name} is not a regular file")
            os.fchmod(fd, _files.FILE_MODE)
            os.fsync(fd)
            files[name] = _hash_fd(fd)
        finally:
            os.close(fd)
    return files


def write_prior_set(
    prior_set: PriorSet,
    models_dir: str | Path,
    extra: Callable[[Path], None] | None = None,
    *,
    key: bytes | None = None,
) -> Path:
    """Write a new version directory atomically; refuses to overwrite an existing version.
    ``extra`` writes further artifacts (the fit's netCDF ...) into the directory before it is
    sealed (owner-only, listed with their SHA-256 in the document) and renamed into place.
    ``key`` (default: :func:`signing_key`) signs the set. Whatever the umask, the registry's
    directories get mode 0700 and its files 0600; nothing is left behind on failure.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> folder.relative_to(tmp.name).as_posix()
    'prior_sets/v000001'
    >>> try:
    ...     write_prior_set(prior_set, tmp.name)  # versions are immutable
    ... except PriorSetError as exc:
    ...     print(type(exc).__name__)
    PriorSetError
    >>> tmp.cleanup()
    """
    if not isinstance(prior_set, PriorSet):
        raise TypeError(f"prior_set must be a PriorSet, got {type(prior_set).__name__}")
    key = _resolve_key(key)
    doc = prior_set.to_dict()
    doc.pop("files", None)
    PriorSet.from_dict(json.loads(canonical_bytes(doc)))  # what is written must load
    models = Path(models_dir)
    final = version_dir(models, prior_set.version)
    with ExitStack() as stack:
        _, pfd = _open_registry(models, stack)
        if os.path.lexists(final):
            raise PriorSetError(f"prior set version {prior_set.version} already exists: {final}")
        tmp_name = f".tmp-{final.name}-{uuid.uuid4().hex}"
        os.mkdir(tmp_name, _files.DIR_MODE, dir_fd=pfd)
        try:
            tfd = _files.open_in(pfd, tmp_name, final.parent / tmp_name, directory=True)
            try:
                os.fchmod(tfd, _files.DIR_MODE)
                if extra is not None:
                    extra(final.parent / tmp_name)
                doc["files"] = _seal_files(tfd, final.parent / tmp_name)
                body = canonical_bytes(doc)
                payload = {"sha256": hashlib.sha256(body).hexdigest(), "prior_set": doc}
                if key is not None:
                    payload["hmac_sha256"] = _sign(key, body)
                data = canonical_bytes(payload)
                if len(data) > MAX_BYTES:
                    raise PriorSetError(
                        f"prior set v{prior_set.version} is {len(data):,} bytes, over the "
                        f"limit of {MAX_BYTES:,}"
                    )
                _files.write_new_file(tfd, PRIOR_SET_FILE, data)
                os.fsync(tfd)
            finally:
                os.close(tfd)
            # atomic on POSIX; fails if another publisher won the race
            os.rename(tmp_name, final.name, src_dir_fd=pfd, dst_dir_fd=pfd)
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp_name, dir_fd=pfd)
            raise
        os.fsync(pfd)
    return final


def _replace_active(models: Path, content: bytes | None) -> None:
    """Replace ``ACTIVE`` atomically by ``content`` (None: remove it), flushed to disk."""
    with ExitStack() as stack:
        mfd, _ = _open_registry(models, stack)
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(ACTIVE, dir_fd=mfd)
        else:
            tmp = f".{ACTIVE}.{uuid.uuid4().hex}"
            try:
                _files.write_new_file(mfd, tmp, content)
                os.replace(tmp, ACTIVE, src_dir_fd=mfd, dst_dir_fd=mfd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=mfd)
                raise
        os.fsync(mfd)


def activate(
    models_dir: str | Path,
    version: int,
    *,
    key: bytes | None = None,
    record: Callable[[PriorSet], AbstractContextManager[Any]] | None = None,
) -> PriorSet:
    """Make ``version`` the active prior set; it must load, verify and have passed its gate
    (:func:`load_live_prior_set`). Returns it.

    ``record``: one decision with another system (the store's status rows): ``record(set)`` is
    entered (its writes prepared, e.g. a database transaction) before ``ACTIVE`` is switched
    and exited (committed) after. If entering fails, ``ACTIVE`` is untouched; if exiting fails,
    ``ACTIVE`` is restored to its previous bytes. A crash between the switch and the commit
    leaves ``ACTIVE`` ahead: it is the source of truth, and the nightly job's ``reconcile``
    brings the store in line.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set, activate
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> activate(tmp.name, 1).version, active_version(tmp.name)
    (1, 1)
    >>> tmp.cleanup()
    """
    models = Path(models_dir)
    prior_set = load_live_prior_set(models, version, key=key)
    content = f"{prior_set.version}\n".encode()
    if record is None:
        _replace_active(models, content)
        return prior_set
    try:
        previous = _read_active(models)
    except PriorSetError:
        previous = None  # an unreadable ACTIVE is not worth restoring
    switched = False
    try:
        with record(prior_set):
            _replace_active(models, content)
            switched = True
    except BaseException as exc:
        if switched:
            try:
                _replace_active(models, previous)
            except Exception as undo:
                raise PriorSetError(
                    f"activating v{prior_set.version} failed ({exc}) and ACTIVE could not be "
                    f"restored ({undo}): ACTIVE names v{prior_set.version}, the record does not"
                ) from exc
        raise
    return prior_set


class ActivePriorSet:
    """The trader's handle on the active prior set. :meth:`refresh` loads the version ``ACTIVE``
    names when it changed, through :func:`load_live_prior_set` (every path checked, schema,
    SHA-256, signature with a key, bounds, gate passed); a missing, corrupt, truncated,
    implausible, untrusted or rejected set is refused and the last good one kept (the reason in
    ``last_error``, and logged once per distinct reason). ``key``: default
    :func:`signing_key`, read once here (a configured but unreadable key raises here, so a
    trader never runs unsigned by mistake).

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set, activate
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> handle = ActivePriorSet(tmp.name)
    >>> handle.refresh(), handle.current  # nothing active yet
    (False, None)
    >>> _ = activate(tmp.name, 1)
    >>> handle.refresh(), handle.current.version, handle.refresh()  # loaded once
    (True, 1, False)
    >>> tmp.cleanup()
    """

    def __init__(self, models_dir: str | Path, *, key: bytes | None = None) -> None:
        self.models_dir = Path(models_dir)
        self._key = _resolve_key(key)
        self.current: PriorSet | None = None
        self.last_error: str | None = None

    def refresh(self) -> bool:
        """True when a new version was loaded; False when nothing changed or it was refused.
        Never raises.

        Examples
        --------
        A version that fails to load is refused, the reason kept in ``last_error``:

        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()  # the models directory
        >>> handle = ActivePriorSet(tmp.name)
        >>> handle.refresh(), handle.last_error  # no ACTIVE file: nothing to load
        (False, None)
        >>> import os
        >>> os.makedirs(os.path.join(tmp.name, "prior_sets"))
        >>> with open(os.path.join(tmp.name, "ACTIVE"), "w") as f:
        ...     _ = f.write("7\\n")  # names a version that was never written
        >>> handle.refresh(), handle.current, handle.last_error is not None
        (False, None, True)
        >>> tmp.cleanup()
        """
        try:
            version = active_version(self.models_dir)
            if version is None:
                return False
            if self.current is not None and version == self.current.version:
                self.last_error = None
                return False
            loaded = load_live_prior_set(self.models_dir, version, key=self._key)
        except (PriorSetError, OSError) as exc:
            self._refused(str(exc) or type(exc).__name__)
            return False
        except Exception as exc:  # never raise: a bug of ours must not stop the trader either
            self._refused(f"unexpected {type(exc).__name__}: {exc!s:.300}", unexpected=True)
            return False
        self.current, self.last_error = loaded, None
        log.info("prior set v%d loaded from %s", loaded.version, self.models_dir)
        return True

    def _refused(self, reason: str, unexpected: bool = False) -> None:
        if reason != self.last_error:
            kept = "none" if self.current is None else f"v{self.current.version}"
            log.log(
                logging.ERROR if unexpected else logging.WARNING,
                "prior set refused, keeping %s: %s", kept, reason,
                exc_info=unexpected,
            )  # fmt: skip
        self.last_error = reason


def apply_family_priors(prior_set: PriorSet, decider: Decider, *, full_bayes: bool = False) -> None:
    """Give every family of the prior set its point prior (moment-matched,
    :meth:`FamilyPosterior.point_prior`) and intra-cluster correlation in ``decider`` (adding
    new families). ``full_bayes``: every decision also draws one of the family's hyperparameter
    draws (``Decider.set_family_draws``); otherwise any such draws are cleared. The decider
    keeps its raw counts, so nothing is counted twice.

    Examples
    --------
    >>> from bayes_mem.live import Decider
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> decider = Decider(rng=0)
    >>> apply_family_priors(prior_set, decider)
    >>> prior = decider.families["momentum"]
    >>> round(prior.a, 2), round(prior.b, 2)
    (25.89, 21.18)
    """
    known = decider.families
    for name, fam in prior_set.families.items():
        prior = fam.point_prior()
        if name not in known:
            decider.add_family(name, prior)
        decider.set_family_prior(name, prior, rho=fam.rho_mean)
        decider.set_family_draws(name, fam.betas() if full_bayes else None)
