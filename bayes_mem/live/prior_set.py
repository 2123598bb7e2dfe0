"""The prior set: the only thing the nightly job hands the live path (see ../shared/DESIGN.md).

A versioned, immutable JSON document: per signal family, posterior draws of the family's mean win
rate and concentration; per symbol, posterior draws of the GJR-GARCH-skew-t parameters and each
draw's conditional variance at ``data_through``; the diagnostics verdict. On disk (under
``models/prior_sets/v000042/prior_set.json``) it is wrapped with the SHA-256 of its canonical
JSON, and ``models/ACTIVE`` names the active version.

Publishing is atomic: a version directory is written under a temporary name, flushed and renamed
into place; ``ACTIVE`` is replaced by ``os.replace`` of a flushed temporary file. A reader (or a
crash at any instant) sees the old set or the complete new one. The loader verifies schema and
hash and refuses anything else, so a live process keeps its last good set.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayes_mem.live._validate import check_int, check_name
from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.priors import BetaPrior

SCHEMA = "bayes_mem.prior_set/1"
PRIOR_SETS = "prior_sets"
ACTIVE = "ACTIVE"


class PriorSetError(ValueError):
    """A prior set that is missing, corrupt, truncated or of an unknown schema."""


@dataclass(frozen=True)
class FamilyPosterior:
    """Posterior draws of one family's Beta prior: mean win rate and concentration
    (pseudo-trades), and optionally the intra-cluster correlation ``rho`` of its trades (the
    live path counts outcomes of one signal in one cluster with their effective weight)."""

    mean: np.ndarray
    kappa: np.ndarray
    rho: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = np.asarray(self.mean, dtype=float)
        k = np.asarray(self.kappa, dtype=float)
        if m.ndim != 1 or m.shape != k.shape or m.size == 0:
            raise PriorSetError("family draws need equal-length 1-d mean and kappa arrays")
        if not (np.all((m > 0) & (m < 1)) and np.all(np.isfinite(k) & (k > 0))):
            raise PriorSetError("family draws need 0 < mean < 1 and kappa > 0")
        object.__setattr__(self, "mean", m)
        object.__setattr__(self, "kappa", k)
        if self.rho is not None:
            r = np.asarray(self.rho, dtype=float)
            if r.shape != m.shape or not np.all((r >= 0) & (r < 1)):
                raise PriorSetError(f"family rho draws need {m.size} values in [0, 1)")
            object.__setattr__(self, "rho", r)

    def predictive_moments(self) -> tuple[float, float]:
        """Mean and variance of a new signal's win rate under the posterior predictive:
        ``E[m]`` and ``E[m (1 - m) / (kappa + 1)] + Var(m)`` over the draws."""
        m, k = self.mean, self.kappa
        return float(m.mean()), float(np.mean(m * (1 - m) / (k + 1)) + m.var())

    def point_prior(self, kind: str = "moment") -> BetaPrior:
        """One Beta prior for the family. ``"moment"`` (default): the Beta whose mean and
        variance match the posterior predictive of a new signal's win rate
        (:meth:`predictive_moments`), so the hyperparameters' uncertainty widens it.
        ``"plug_in"``: Beta(E[m] E[kappa], (1 - E[m]) E[kappa]), which ignores it (its
        concentration exceeds the moment-matched one, by 1.2-2.8x at a posterior sd of 0.4-1.0
        on log kappa)."""
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
        (one draw per decision, ``Decider.set_family_draws``)."""
        return self.mean * self.kappa, (1 - self.mean) * self.kappa

    def draw(self, rng: np.random.Generator) -> BetaPrior:
        """The Beta prior of one hyperparameter draw, chosen uniformly."""
        j = int(rng.integers(self.mean.size))
        return BetaPrior.from_mean_concentration(float(self.mean[j]), float(self.kappa[j]))

    @property
    def rho_mean(self) -> float:
        """Posterior mean intra-cluster correlation (0 when none was published)."""
        return 0.0 if self.rho is None else float(self.rho.mean())


@dataclass(frozen=True)
class SymbolPosterior:
    draws: GarchDraws
    sigma2: np.ndarray  # per draw, conditional variance for the day after data_through

    def __post_init__(self) -> None:
        s2 = np.asarray(self.sigma2, dtype=float)
        if s2.shape != (self.draws.size,) or not np.all(np.isfinite(s2) & (s2 > 0)):
            raise PriorSetError("sigma2 needs one positive value per draw")
        object.__setattr__(self, "sigma2", s2)


@dataclass(frozen=True)
class PriorSet:
    version: int
    created_at: str  # ISO 8601
    data_through: str | None  # last date of data used
    code_version: str
    config_hash: str
    families: dict[str, FamilyPosterior] = field(default_factory=dict)
    symbols: dict[str, SymbolPosterior] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    # the regime detector's hazard and Normal-Gamma prior (bayes_mem.regime_prior/1), or None
    regime: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.regime is not None:
            _check_regime(self.regime)

    def regime_detector(self, symbols: Any = None) -> Any:
        """A :class:`~bayes_mem.live.changepoint.NormalGammaBOCPD` over ``symbols`` (default:
        this set's symbols) with the published hazard and prior; fed
        :meth:`ReturnModel.last_normal_score` day by day."""
        from bayes_mem.live.changepoint import NormalGammaBOCPD

        if self.regime is None:
            raise PriorSetError(f"prior set v{self.version} has no regime prior")
        names = sorted(self.symbols) if symbols is None else symbols
        return NormalGammaBOCPD.from_prior_set(names, self.regime)

    def to_json(self) -> dict[str, Any]:
        extra = {} if self.regime is None else {"regime": self.regime}
        return {
            **extra,
            "schema": SCHEMA,
            "version": self.version,
            "created_at": self.created_at,
            "data_through": self.data_through,
            "code_version": self.code_version,
            "config_hash": self.config_hash,
            "families": {
                name: {"mean": f.mean.tolist(), "kappa": f.kappa.tolist()}
                | ({} if f.rho is None else {"rho": f.rho.tolist()})
                for name, f in sorted(self.families.items())
            },
            "symbols": {
                name: {"draws": s.draws.to_json(), "sigma2": s.sigma2.tolist()}
                for name, s in sorted(self.symbols.items())
            },
            "diagnostics": self.diagnostics,
        }

    @classmethod
    def from_json(cls, data: Any) -> PriorSet:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            got = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise PriorSetError(f"not a {SCHEMA} document (schema: {got!r})")
        try:
            families = {
                check_name(n, "family"): FamilyPosterior(
                    np.asarray(f["mean"]),
                    np.asarray(f["kappa"]),
                    None if f.get("rho") is None else np.asarray(f["rho"]),
                )
                for n, f in data["families"].items()
            }
            symbols = {
                check_name(n, "symbol"): SymbolPosterior(
                    GarchDraws.from_json(s["draws"]), np.asarray(s["sigma2"])
                )
                for n, s in data["symbols"].items()
            }
            return cls(
                version=check_int(data["version"], "version", minimum=1),
                created_at=str(data["created_at"]),
                data_through=None if data["data_through"] is None else str(data["data_through"]),
                code_version=str(data["code_version"]),
                config_hash=str(data["config_hash"]),
                families=families,
                symbols=symbols,
                diagnostics=dict(data["diagnostics"]),
                regime=data.get("regime"),
            )
        except PriorSetError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PriorSetError(f"malformed prior set: {exc!r}") from exc


def _check_regime(regime: Any) -> None:
    from bayes_mem.live.changepoint import NormalGammaPrior

    try:
        if not isinstance(regime, dict):
            raise TypeError(f"a JSON object, got {type(regime).__name__}")
        NormalGammaPrior.from_json(regime["normal_gamma"])
        h = regime["hazard"]
        if isinstance(h, bool) or not isinstance(h, int | float) or not 0.0 < h < 1.0:
            raise ValueError(f"hazard must be in (0, 1), got {h!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise PriorSetError(f"malformed regime prior: {exc}") from exc


def canonical_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def version_dir(models_dir: str | Path, version: int) -> Path:
    return Path(models_dir) / PRIOR_SETS / f"v{version:06d}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_prior_set(
    prior_set: PriorSet,
    models_dir: str | Path,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write a new version directory atomically; refuses to overwrite an existing version.
    ``extra`` writes further artifacts (the fit's netCDF ...) into the directory before it is
    renamed into place."""
    final = version_dir(models_dir, prior_set.version)
    if final.exists():
        raise PriorSetError(f"prior set version {prior_set.version} already exists: {final}")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex}"
    tmp.mkdir(mode=0o700)
    doc = prior_set.to_json()
    payload = {"sha256": hashlib.sha256(canonical_bytes(doc)).hexdigest(), "prior_set": doc}
    path = tmp / "prior_set.json"
    with open(path, "wb") as fh:
        fh.write(canonical_bytes(payload))
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o600)
    if extra is not None:
        extra(tmp)
    _fsync_dir(tmp)
    os.rename(tmp, final)  # atomic on POSIX; fails if another publisher won the race
    _fsync_dir(final.parent)
    return final


def activate(models_dir: str | Path, version: int) -> None:
    """Make ``version`` the active prior set (it must load, verify, and have passed its gate)."""
    prior_set = load_prior_set(models_dir, version)
    if prior_set.diagnostics.get("passed") is False:
        raise PriorSetError(f"prior set v{version} failed its diagnostics gate; not activating")
    models = Path(models_dir)
    tmp = models / f".{ACTIVE}.{uuid.uuid4().hex}"
    with open(tmp, "w") as fh:
        fh.write(f"{version}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, models / ACTIVE)
    _fsync_dir(models)


def active_version(models_dir: str | Path) -> int | None:
    path = Path(models_dir) / ACTIVE
    if not path.exists():
        return None
    text = path.read_text().strip()
    if not text.isdigit():
        raise PriorSetError(f"{path} does not name a version: {text[:40]!r}")
    return int(text)


def read_prior_set_file(path: str | Path) -> PriorSet:
    """Load and verify (schema and SHA-256) the prior set in one ``prior_set.json`` file; the
    folder may be any version's, even the temporary one of a publish in progress."""
    path = Path(path)
    try:
        payload = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise PriorSetError(f"no prior set at {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PriorSetError(f"corrupt prior set {path}: {exc}") from exc
    if not isinstance(payload, dict) or set(payload) != {"sha256", "prior_set"}:
        raise PriorSetError(f"corrupt prior set {path}: unexpected layout")
    digest = hashlib.sha256(canonical_bytes(payload["prior_set"])).hexdigest()
    if digest != payload["sha256"]:
        raise PriorSetError(f"prior set {path} fails its hash check")
    return PriorSet.from_json(payload["prior_set"])


def load_prior_set(models_dir: str | Path, version: int) -> PriorSet:
    """Load and verify one version (schema, SHA-256, and that it is the version asked for)."""
    path = version_dir(models_dir, version) / "prior_set.json"
    if not path.exists():
        raise PriorSetError(f"no prior set version {version} at {path}")
    prior_set = read_prior_set_file(path)
    if prior_set.version != version:
        raise PriorSetError(f"{path} holds version {prior_set.version}, not {version}")
    return prior_set


def load_active(models_dir: str | Path) -> PriorSet | None:
    """The verified active prior set, or None when none was ever activated."""
    version = active_version(models_dir)
    return None if version is None else load_prior_set(models_dir, version)


class ActivePriorSet:
    """The trader's handle on the active prior set. :meth:`refresh` loads the version ``ACTIVE``
    names when it changed, verified (schema, SHA-256, gate passed); a missing, corrupt, truncated
    or rejected set is refused and the last good one kept (the error is in ``last_error``)."""

    def __init__(self, models_dir: str | Path) -> None:
        self.models_dir = Path(models_dir)
        self.current: PriorSet | None = None
        self.last_error: str | None = None

    def refresh(self) -> bool:
        """True when a new version was loaded; False when nothing changed or it was refused."""
        try:
            version = active_version(self.models_dir)
            if version is None or (self.current is not None and version == self.current.version):
                return False
            loaded = load_prior_set(self.models_dir, version)
            if loaded.diagnostics.get("passed") is False:
                raise PriorSetError(f"prior set v{version} failed its diagnostics gate")
        except (PriorSetError, OSError) as exc:
            self.last_error = str(exc)
            return False
        self.current, self.last_error = loaded, None
        return True


def apply_family_priors(prior_set: PriorSet, decider: Any, *, full_bayes: bool = False) -> None:
    """Give every family of the prior set its point prior (moment-matched,
    :meth:`FamilyPosterior.point_prior`) and intra-cluster correlation in ``decider`` (adding
    new families). ``full_bayes``: every decision also draws one of the family's hyperparameter
    draws (``Decider.set_family_draws``); otherwise any such draws are cleared. The decider
    keeps its raw counts, so nothing is counted twice."""
    known = decider.families
    for name, fam in prior_set.families.items():
        prior = fam.point_prior()
        if name not in known:
            decider.add_family(name, prior)
        decider.set_family_prior(name, prior, rho=fam.rho_mean)
        decider.set_family_draws(name, fam.betas() if full_bayes else None)
