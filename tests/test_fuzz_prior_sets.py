"""Property-based fuzzing of the prior-set loader (hypothesis, derandomised; counts of inputs in
``EXAMPLES``): published values against an oracle written from the bounds table (accepted
exactly when inside it, and then ``risk()`` finite), registry file modes, ``ACTIVE`` contents,
byte-level damage and sizes of ``prior_set.json``. The trader's ``refresh()`` never raises and
never loads anything but a set the oracle accepts."""

import json
import os
import re
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import gammaln

from bayes_mem.live import ReturnModel
from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.prior_set import (
    MAX_BYTES,
    ActivePriorSet,
    FamilyPosterior,
    PriorSet,
    PriorSetError,
    SymbolPosterior,
    activate,
    version_dir,
    write_prior_set,
)

EXAMPLES = {"values": 600, "modes": 200, "active": 400, "bytes": 200}


def fuzz(n: int) -> settings:
    return settings(
        max_examples=n, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )  # fmt: skip


S = 5
BASE = {"mu": 3e-4, "omega": 2e-6, "alpha": 0.03, "gamma": 0.1, "beta": 0.85, "nu": 6.0,
        "lam": -0.1}  # fmt: skip
REGIME = {"hazard": 0.004, "mu0": 0.0, "kappa0": 1.0, "alpha0": 2.0, "beta0": 2.0}


def document(param: str, value) -> dict:
    """A prior-set document with every draw of ``param`` (or the regime value) set to
    ``value``."""
    draws = {k: [v] * S for k, v in BASE.items()}
    fam = {"mean": [0.52] * S, "kappa": [30.0] * S}
    sigma2 = [1e-4] * S
    ng = {k: REGIME[k] for k in ("mu0", "kappa0", "alpha0", "beta0")}
    regime = {"hazard": REGIME["hazard"], "max_run_length": 300, "normal_gamma": ng}
    if param in BASE:
        draws[param] = [value] * S
    elif param in fam:
        fam[param] = [value] * S
    elif param == "sigma2":
        sigma2 = [value] * S
    elif param in ("hazard", "max_run_length"):
        regime[param] = value
    else:
        regime["normal_gamma"][param] = value
    return {
        "schema": "bayes_mem.prior_set/1", "version": 1, "created_at": "2026-12-01T00:00:00",
        "data_through": "2026-11-30", "code_version": "t", "config_hash": "h",
        "families": {"f": fam}, "symbols": {"X": {"draws": draws, "sigma2": sigma2}},
        "diagnostics": {"passed": True}, "regime": regime,
    }  # fmt: skip


def skewt_kappa(nu: float, lam: float) -> float:
    """E[z^2 1{z<0}] under Hansen's skew-t by numerical integration of its density (written out
    here, independently of ``bayes_mem.live.skewt``)."""
    c = np.exp(gammaln((nu + 1) / 2) - gammaln(nu / 2)) / np.sqrt(np.pi * (nu - 2))
    a = 4 * lam * c * (nu - 2) / (nu - 1)
    b = np.sqrt(1 + 3 * lam**2 - a**2)

    def pdf(z: float) -> float:
        s = 1 - lam if z < -a / b else 1 + lam
        return b * c * (1 + ((b * z + a) / s) ** 2 / (nu - 2)) ** (-(nu + 1) / 2)

    knot = min(-a / b, 0.0)  # the density's two halves meet at -a / b
    left, _ = quad(lambda z: z * z * pdf(z), -np.inf, knot, epsabs=0, epsrel=1e-10)
    middle, _ = quad(lambda z: z * z * pdf(z), knot, 0.0, epsabs=0, epsrel=1e-10)
    return left + middle


def oracle(param: str, v) -> bool:
    """The bounds table of ``bayes_mem.live.prior_set``, written out independently."""
    if param == "max_run_length":
        return type(v) is int and 11 <= v <= 10_000
    if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
        return False
    p = dict(BASE)
    if param in p:
        p[param] = v
    if not (2.1 <= p["nu"] <= 1000 and abs(p["lam"]) <= 0.99):
        return False
    persistence = p["alpha"] + skewt_kappa(p["nu"], p["lam"]) * p["gamma"] + p["beta"]
    long_run = p["omega"] / (1 - persistence)
    sigma2 = v if param == "sigma2" else 1e-4
    garch = (
        p["omega"] > 0 and p["alpha"] >= 0 and p["beta"] >= 0 and p["alpha"] + p["gamma"] >= 0
        and persistence < 1 and 1e-12 <= long_run <= 1 and 1e-4 <= sigma2 / long_run <= 1e4
        and abs(p["mu"]) <= 0.05
    )  # fmt: skip
    ranges = {
        "mean": (1e-6, 1 - 1e-6), "kappa": (1e-3, 1e6), "sigma2": (1e-12, 1.0),
        "hazard": (1e-5, 0.5), "mu0": (-10.0, 10.0), "kappa0": (1e-3, 1e3),
        "alpha0": (0.05, 1e3), "beta0": (1e-4, 1e4),
    }  # fmt: skip
    if param in ranges:
        low, high = ranges[param]
        return garch and low <= v <= high
    return garch


EDGES = [1e-12, 1e-6, 1e-5, 1e-4, 1e-3, 0.05, 0.5, 0.99, 1.0, 2.1, 10.0, 1e3, 1e4, 1e6]
values = st.one_of(
    st.sampled_from([e * f for e in EDGES for f in (1 - 1e-12, 1.0, 1 + 1e-12, -1.0)]),
    st.builds(lambda sign, e: sign * 10.0**e, st.sampled_from([-1.0, 1.0]), st.floats(-300, 300)),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**6), 10**6),
    st.sampled_from([0, 1, True, False, None, "0.5", [0.5], {"x": 1}]),
)


@fuzz(EXAMPLES["values"])
@given(param=st.sampled_from([*BASE, "mean", "kappa", "sigma2", *REGIME, "max_run_length"]),
       value=values)  # fmt: skip
def test_published_values_are_accepted_exactly_inside_the_bounds_table(param, value):
    doc = json.loads(json.dumps(document(param, value)))
    try:
        ps = PriorSet.from_dict(doc)
    except PriorSetError as exc:
        assert not oracle(param, value), f"{param}={value!r} refused: {exc}"
        return
    assert oracle(param, value), f"{param}={value!r} accepted"
    sym = ps.symbols["X"]
    risk = ReturnModel({"X": sym.draws}, {"X": sym.sigma2}).risk(0.975)
    assert np.isfinite(risk.var_log).all() and np.isfinite(risk.es_log).all()
    assert (risk.es_log >= risk.var_log - 1e-12).all() and (risk.es_simple < 1).all()
    assert len(ps.regime_detector()) == 1


@pytest.fixture(scope="module")
def sample_sets():
    """v1 and v2 of one registry, as bytes, to copy into each example's registry."""
    with tempfile.TemporaryDirectory() as d:
        from tests.test_prior_set import make

        write_prior_set(make(1), d)
        write_prior_set(make(2, seed=1), d)
        yield {v: (version_dir(d, v) / "prior_set.json").read_bytes() for v in (1, 2)}


def registry(root, sets):
    """A registry under a fresh folder of ``root``: v1 active and held by a trader, v2 there;
    every path created by the writer's rules (0700/0600)."""
    models = tempfile.mkdtemp(dir=root) + "/models"
    for v, raw in sets.items():
        folder = version_dir(models, v)
        os.makedirs(folder, mode=0o700)
        fd = os.open(folder / "prior_set.json", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, raw)
        os.close(fd)
    os.chmod(models, 0o700)
    os.chmod(os.path.dirname(folder), 0o700)
    activate(models, 1)
    trader = ActivePriorSet(models)
    assert trader.refresh() and trader.current.version == 1
    return models, trader


modes = st.integers(0, 0o777) | st.sampled_from([0o700, 0o600, 0o755, 0o644, 0o1777])


@fuzz(EXAMPLES["modes"])
@given(m=st.fixed_dictionaries({k: modes for k in ("models", "prior_sets", "v2", "file",
                                                   "ACTIVE")}))  # fmt: skip
def test_registry_modes_loaded_exactly_when_nobody_else_can_write(tmp_path, sample_sets, m):
    models, trader = registry(tmp_path, sample_sets)
    with open(f"{models}/ACTIVE", "w") as fh:
        fh.write("2\n")
    v2 = version_dir(models, 2)
    paths = {"models": models, "prior_sets": f"{models}/prior_sets", "v2": v2,
             "file": v2 / "prior_set.json", "ACTIVE": f"{models}/ACTIVE"}  # fmt: skip
    for k in ("file", "ACTIVE", "v2", "prior_sets", "models"):
        os.chmod(paths[k], m[k])
    try:
        loaded = trader.refresh()
    finally:
        for k in ("models", "prior_sets", "v2"):
            os.chmod(paths[k], 0o700)
    root = os.geteuid() == 0
    readable = root or (
        all(m[k] & 0o500 == 0o500 for k in ("models", "prior_sets", "v2"))
        and all(m[k] & 0o400 for k in ("file", "ACTIVE"))
    )
    expected = readable and not any(v & 0o022 for v in m.values())
    assert loaded == expected, (m, trader.last_error)
    assert trader.current.version == (2 if expected else 1)


@fuzz(EXAMPLES["active"])
@given(content=st.one_of(
    st.binary(max_size=80),
    st.text(max_size=12).map(str.encode),
    st.from_regex(rb"\A[0-9\s+\-.]{0,12}\Z"),
    st.sampled_from([b"2", b"2\n", b"02\n", b"000000002", b"1\n", b"3\n", b"2\r\n",
                     b"\xef\xbb\xbf2"]),
))  # fmt: skip
def test_active_contents_never_raise_and_load_only_a_named_version(tmp_path, sample_sets, content):
    models, trader = registry(tmp_path, sample_sets)
    with open(f"{models}/ACTIVE", "wb") as fh:
        fh.write(content)
    loaded = trader.refresh()  # never raises
    m = re.fullmatch(rb"([0-9]{1,9})\n?", content)
    named = int(m[1]) if m else None
    assert loaded == (named == 2), content
    assert trader.current.version == (2 if named == 2 else 1)
    assert (trader.last_error is None) == (named in (1, 2)), (content, trader.last_error)


@fuzz(EXAMPLES["bytes"])
@given(
    damage=st.sampled_from(["flip", "truncate", "insert", "size"]),
    where=st.floats(0, 1),
    byte=st.integers(0, 255),
    size=st.integers(MAX_BYTES - 4, MAX_BYTES + 10**10),
)
def test_damaged_or_oversized_sets_are_refused_and_refresh_never_raises(
    tmp_path, sample_sets, damage, where, byte, size
):
    models, trader = registry(tmp_path, sample_sets)
    f = version_dir(models, 2) / "prior_set.json"
    raw = sample_sets[2]
    i = int(where * (len(raw) - 1))
    if damage == "flip":
        f.write_bytes(raw[:i] + bytes([raw[i] ^ (byte or 1)]) + raw[i + 1 :])
    elif damage == "truncate":
        f.write_bytes(raw[:i])
    elif damage == "insert":
        f.write_bytes(raw[:i] + bytes([byte]) + raw[i:])
    else:
        os.truncate(f, size)  # sparse: the NUL bytes cost nothing until read
    with open(f"{models}/ACTIVE", "w") as fh:
        fh.write("2\n")
    loaded = trader.refresh()
    if loaded:  # only a harmless change (whitespace between tokens) can still verify
        assert (
            trader.current.to_dict() == PriorSet.from_dict(json.loads(raw)["prior_set"]).to_dict()
        )
    else:
        assert trader.current.version == 1 and trader.last_error
    if damage == "size" and size > MAX_BYTES:
        assert "over the limit" in trader.last_error


def test_the_bounds_oracle_agrees_with_hand_picked_rows():
    """The oracle itself, on the reviewer's values: a wrong oracle would make the fuzzing
    vacuous."""
    assert not oracle("kappa", 1e300) and not oracle("mu", 10.0) and not oracle("sigma2", 1e-20)
    assert not oracle("gamma", 1.04) and oracle("gamma", 0.1)  # persistence 0.03+0.52+0.85=1.4
    assert not oracle("max_run_length", 1) and not oracle("max_run_length", 10**12)
    assert oracle("max_run_length", 300) and not oracle("max_run_length", 300.0)
    fam = FamilyPosterior([0.5], [30.0])
    assert fam.point_prior().a == 15.0
    d = GarchDraws(**{k: [v] for k, v in BASE.items()})
    assert SymbolPosterior(d, [1e-4]).sigma2[0] == 1e-4
