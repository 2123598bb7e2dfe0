"""The live path must not pull in the offline stack (pymc, pytensor, arviz, matplotlib)."""

import subprocess
import sys

HEAVY = ("pymc", "pytensor", "arviz", "matplotlib", "sqlalchemy", "pandas", "bokeh", "tornado")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    return {name.split(".")[0] for name in out}


def test_live_path_imports_no_offline_stack_in_fresh_interpreter():
    code = """
import bayes_mem
import bayes_mem.live
from bayes_mem import ThompsonSamplingDecider, Decider
d = Decider(["f"], rng=0)
d.register("s", "f")
d.decide("s")
d.record("s", True, 1.0)
d.metrics("s")
d.choose(["s"], 1)
ts = ThompsonSamplingDecider()
ts.decide_execute("x")
ts.get_signal_quality_metrics("x")
Decider.from_json(d.to_json())
from bayes_mem.live.prior_set import load_active, apply_family_priors
import bayes_mem.live.return_model, bayes_mem.live.portfolio, bayes_mem.live.correlation
from bayes_mem.live.changepoint import NormalGammaBOCPD, BetaBernoulliBOCPD, regime_factor
from bayes_mem.live.regime import RegimeForgetting
det = NormalGammaBOCPD(["SPY", "QQQ"], max_run_length=20, k=3)
regime_factor(det.update([0.1, -0.2]).p_change)
NormalGammaBOCPD.from_json(det.to_json())
hook = RegimeForgetting(d, ["f"])
hook.record("s", True, 1.0)
import numpy as np
from bayes_mem import EulerES, GarchDraws, ReturnModel
g = GarchDraws(mu=[0.0] * 4, omega=[1e-6] * 4, alpha=[0.05] * 4, gamma=[0.1] * 4,
               beta=[0.85] * 4, nu=[6.0] * 4, lam=[-0.2] * 4)
rm = ReturnModel({"A": g, "B": g}, {"A": np.full(4, 1e-4), "B": np.full(4, 2e-4)})
rm.risk(0.975, side="short", horizon=3).es_simple
rm.position_risk("A", side="short", horizon=2)
EulerES.from_model(rm, np.eye(2)).max_addition({"A": 1e5}, "B", -1, 1e4)
"""
    loaded = _modules_after(code)
    assert "bayes_mem" in loaded and "numpy" in loaded
    assert not loaded.intersection(HEAVY), sorted(loaded.intersection(HEAVY))


def test_probe_detects_heavy_imports():
    # The check above can fail: importing pymc is seen.
    assert "pytensor" in _modules_after("import pytensor")


def _loaded_after(code: str) -> set[str]:
    """Full names of the modules loaded in a fresh interpreter after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    return set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
        ).stdout.split()
    )


def test_import_bayes_mem_loads_only_the_live_subpackage():
    loaded = _loaded_after("import bayes_mem")
    assert "bayes_mem.live" in loaded
    ours = {name.split(".")[1] for name in loaded if name.startswith("bayes_mem.")}
    assert ours <= {"live"}, sorted(ours)


def test_strategy_abtest_stays_at_the_top_level_loaded_on_first_use():
    code = """
import sys
import bayes_mem
assert "bayes_mem.evaluation" not in sys.modules
assert "StrategyABTest" in bayes_mem.__all__ and "StrategyABTest" in dir(bayes_mem)
from bayes_mem import StrategyABTest
from bayes_mem.evaluation.abtest import StrategyABTest as direct
assert StrategyABTest is direct is bayes_mem.StrategyABTest
try:
    bayes_mem.no_such_name
except AttributeError as exc:
    assert "no_such_name" in str(exc)
else:
    raise AssertionError("an unknown name was found")
"""
    loaded = _loaded_after(code)
    assert "bayes_mem.evaluation.abtest" in loaded
    assert not {name.split(".")[0] for name in loaded}.intersection(HEAVY)


def test_the_prior_set_api_is_part_of_the_live_api():
    import bayes_mem
    import bayes_mem.live
    from bayes_mem.live import prior_set

    documented = {
        "ActivePriorSet", "PriorSet", "PriorSetError", "FamilyPosterior", "SymbolPosterior",
        "RegimePrior", "ComponentSource", "load_active", "load_prior_set", "load_live_prior_set",
        "read_prior_set_file", "verify_version", "verify_folder", "write_prior_set", "activate",
        "active_version", "list_versions", "apply_family_priors", "signing_key",
    }  # fmt: skip
    assert documented <= set(bayes_mem.live.__all__)
    for name in documented:
        assert getattr(bayes_mem.live, name) is getattr(prior_set, name)
        assert getattr(bayes_mem, name) is getattr(prior_set, name)
    for name in bayes_mem.live.__all__:
        assert hasattr(bayes_mem.live, name), name
