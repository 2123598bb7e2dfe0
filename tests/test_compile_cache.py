"""The nutpie callbacks cached on disk (:mod:`bayes_mem.offline.compile_cache`, issue 17).

What must hold: the compiled model samples exactly as ``nutpie.compile_pymc_model``'s (same
draws for a seed, to the bit); a second process loads the callbacks from the cache instead of
compiling them; a cached callback serves another model of the same structure with *that*
model's log-density (never a stale address or value); a point where the graph function raises
gives nutpie's error code, not a crash; bad ``with_data`` input changes nothing."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bayes_mem.offline import compile_cache as cc

ROOT = Path(__file__).resolve().parents[1]


def _callback(cm, x: np.ndarray) -> tuple[int, float, np.ndarray]:
    """(status, log-density, gradient) from the compiled model's C callback, as nutpie calls it."""
    grad, value = np.zeros_like(x), np.zeros(1)
    dbl = ctypes.POINTER(ctypes.c_double)
    code = cm.compiled_logp_func.ctypes(
        x.size, x.ctypes.data_as(dbl), grad.ctypes.data_as(dbl), value.ctypes.data_as(dbl),
        ctypes.c_void_p(cm.user_data.ctypes.data),
    )  # fmt: skip
    return int(code), float(value[0]), grad


def test_callback_source_is_deterministic_and_names_its_slots():
    a = cc.callback_source([1, 0], [0], [2, 1], ["float64", "int32"])
    assert a == cc.callback_source([1, 0], [0], [2, 1], ["float64", "int32"])
    assert "a0 = numba.carray(_void_pointer(u[4]), (u[5], u[6],), np.float64)" in a
    assert "a1 = numba.carray(_void_pointer(u[9]), (u[10],), np.int32)" in a
    assert "(x, a1, a0,)" in a  # the log-density's inputs in its graph function's order
    assert a != cc.callback_source([0, 1], [0], [2, 1], ["float64", "int32"])


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BAYES_MEM_CACHE_DIR", str(tmp_path))
    assert cc.cache_dir() == tmp_path / "nutpie_callbacks"


@pytest.fixture(scope="module")
def returns_pair():
    """The returns model (2 symbols x 120 days) compiled both ways, with the same data."""
    import nutpie

    from bayes_mem.offline import returns_model as rm

    r = np.random.default_rng(3).standard_normal((120, 2))
    v = r.var(axis=0)
    model = rm.build_returns_model(r, ["A", "B"], v, v)
    return model, cc.compile_model(model), nutpie.compile_pymc_model(model)


def test_draws_equal_nutpie_compile_to_the_bit(returns_pair):
    import nutpie

    _, ours, theirs = returns_pair
    assert type(ours).__name__ == "CachedModel"
    kw = dict(draws=40, tune=40, chains=2, seed=11, progress_bar=False)
    a, b = nutpie.sample(ours, **kw), nutpie.sample(theirs, **kw)
    for name in ("mu_pct", "alpha", "beta", "nu", "lam", "last_sigma2_pct"):
        assert np.array_equal(a["posterior"][name].values, b["posterior"][name].values), name
    assert np.array_equal(a["sample_stats"]["n_steps"].values, b["sample_stats"]["n_steps"].values)


def test_callback_equals_the_models_log_density_after_with_data(returns_pair):
    from bayes_mem.offline import returns_model as rm

    _, ours, _ = returns_pair
    r = np.random.default_rng(4).standard_normal((90, 2)) * 2.0
    v = r.var(axis=0)
    swapped = ours.with_data(returns_pct=r, var0=v, log_vref=np.log(v))
    fresh = rm.build_returns_model(r, ["A", "B"], v, v)  # the model built on those data
    logp = fresh.compile_logp(jacobian=True)
    dlogp = fresh.compile_dlogp(jacobian=True)
    names, slices, shapes = swapped.shape_info
    x = np.random.default_rng(5).normal(0.0, 0.3, swapped.n_dim)
    point = {n: x[s].reshape(sh) for n, s, sh in zip(names, slices, shapes, strict=False)
             if n in fresh.initial_point()}  # fmt: skip
    code, value, grad = _callback(swapped, x)
    assert code == 0
    assert value == pytest.approx(float(logp(point)), rel=1e-12)
    want = np.concatenate([np.ravel(g) for g in np.atleast_1d(dlogp(point))])
    np.testing.assert_allclose(grad, want, rtol=1e-10, atol=1e-12)
    # the original keeps its own data
    code0, value0, _ = _callback(ours, x)
    assert code0 == 0 and value0 != value


def test_bad_with_data_raises_and_changes_nothing(returns_pair):
    _, ours, _ = returns_pair
    before = (ours.user_data.copy(), {k: v.copy() for k, v in ours.shared_data.items()})
    with pytest.raises(KeyError, match="Unknown shared variable: returns"):
        ours.with_data(returns=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="var0 must have rank 1"):
        ours.with_data(var0=np.zeros((2, 2)))
    assert np.array_equal(ours.user_data, before[0])
    assert all(np.array_equal(ours.shared_data[k], v) for k, v in before[1].items())


def test_a_raising_graph_function_gives_nutpies_error_code():
    import nutpie
    import pymc as pm
    from pytensor.raise_op import Assert

    with pm.Model() as model:
        s = pm.Data("s", 1.0)
        x = pm.Normal("x", 0.0, 1.0, shape=2)
        pm.Potential("checked", Assert("s must be positive")(x, s > 0).sum() * 1e-3)
    ours = cc.compile_model(model).with_data(s=-1.0)  # the graph raises
    theirs = nutpie.compile_pymc_model(model).with_data(s=-1.0)
    x = np.zeros(2)
    code, _, _ = _callback(ours, x)
    assert code == _callback(theirs, x)[0] == 1
    assert _callback(cc.compile_model(model), x)[0] == 0  # and s = 1 is fine


def test_types_the_callbacks_cannot_express_fall_back_to_nutpie(caplog):
    import pymc as pm

    with pm.Model() as model:
        d = pm.Data("d", np.zeros((1, 1, 1, 1, 2)))
        pm.Normal("x", d.sum(), 1.0)
    with caplog.at_level("INFO", logger="bayes_mem.offline.compile_cache"):
        compiled = cc.compile_model(model)
    assert type(compiled).__name__ == "CompiledPyMCModel"
    assert "data of rank > 4" in caplog.text


def test_an_unwritable_cache_directory_falls_back_to_nutpie(monkeypatch, tmp_path, caplog):
    from bayes_mem.offline import returns_model as rm

    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("BAYES_MEM_CACHE_DIR", str(blocker))
    for name in [m for m in sys.modules if m.startswith("bayes_mem_nutpie_callbacks_")]:
        monkeypatch.delitem(sys.modules, name)  # as if not yet imported in this process
    r = np.resize([1.0, -1.0], (30, 2))
    model = rm.build_returns_model(r, ["A", "B"], np.ones(2), np.ones(2))
    with caplog.at_level("WARNING", logger="bayes_mem.offline.compile_cache"):
        compiled = cc.compile_model(model)
    assert type(compiled).__name__ == "CompiledPyMCModel"
    assert "compile cache directory unusable" in caplog.text
    assert blocker.read_text() == "a file where the cache directory would go"


_PROBE = """
import json, sys
import numpy as np
from bayes_mem.offline import compile_cache as cc
from bayes_mem.offline import returns_model as rm
n, seed = int(sys.argv[1]), int(sys.argv[2])
r = np.random.default_rng(seed).standard_normal((80, n))
v = r.var(axis=0)
model = rm.build_returns_model(r, [f"S{i}" for i in range(n)], v, v)
cm = cc.compile_model(model)
logp = model.compile_logp(jacobian=True)
names, slices, shapes = cm.shape_info
x = np.random.default_rng(seed + 1).normal(0.0, 0.3, cm.n_dim)
point = {k: x[s].reshape(sh) for k, s, sh in zip(names, slices, shapes)
         if k in model.initial_point()}
grad, value = np.zeros_like(x), np.zeros(1)
import ctypes
dbl = ctypes.POINTER(ctypes.c_double)
user_data = ctypes.c_void_p(cm.user_data.ctypes.data)
code = cm.compiled_logp_func.ctypes(x.size, x.ctypes.data_as(dbl), grad.ctypes.data_as(dbl),
                                    value.ctypes.data_as(dbl), user_data)
print(json.dumps({"code": int(code), "callback": float(value[0]), "model": float(logp(point)),
                  "logp_hits": cm.compiled_logp_func.cache_hits,
                  "expand_hits": cm.compiled_expand_func.cache_hits}))
"""


@pytest.mark.slow
def test_a_second_process_loads_the_callbacks_and_serves_its_own_model(tmp_path: Path):
    env = {**os.environ, "BAYES_MEM_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    runs = []
    for n, seed in ((2, 1), (3, 7)):  # another model of the same structure: 3 symbols, other data
        out = subprocess.run([sys.executable, "-c", _PROBE, str(n), str(seed)], env=env,
                             check=True, capture_output=True, text=True)  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for run in runs:
        assert run["code"] == 0
        assert run["callback"] == pytest.approx(run["model"], rel=1e-12)
    assert runs[0]["callback"] != pytest.approx(runs[1]["callback"])
    assert (runs[0]["logp_hits"], runs[0]["expand_hits"]) == (0, 0)  # compiled and stored
    assert (runs[1]["logp_hits"], runs[1]["expand_hits"]) == (1, 1)  # loaded, not compiled
    assert len(list((tmp_path / "nutpie_callbacks").glob("*.py"))) == 1
