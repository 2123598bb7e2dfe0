"""The pooled PyMC returns model (work in progress): recovery of simulated parameters and the
conversion of its posterior into live-path draws."""

import numpy as np
import pytest

from bayes_mem.live.gjr_garch import GarchDraws, simulate, variance_path
from bayes_mem.live.return_model import ReturnModel


@pytest.mark.slow
def test_recovers_simulated_gjr_parameters_and_feeds_the_live_model():
    from bayes_mem.offline.returns_model import draws_for_live, fit_returns

    rng = np.random.default_rng(0)
    truth = GarchDraws(
        mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.88], nu=[6.0], lam=[0.0]
    )
    r = np.stack([simulate(truth, 1500, rng)[0][0] for _ in range(3)], axis=1)
    tree = fit_returns(r, ["A", "B", "C"], draws=500, tune=500, seed=1)
    assert int(tree["sample_stats"]["diverging"].sum()) == 0
    post = tree["posterior"]
    for name, value in (("beta", 0.88), ("nu", 6.0)):
        lo, hi = post[name].quantile([0.005, 0.995], dim=("chain", "draw")).values
        assert np.all((lo <= value) & (value <= hi)), (name, lo, hi)
    persistence = (post["alpha"] + post["gamma"] / 2 + post["beta"]).mean(("chain", "draw")).values
    assert np.allclose(persistence, 0.03 + 0.06 + 0.88, atol=0.03)
    live = draws_for_live(tree, 100, rng)
    model = ReturnModel({s: d for s, (d, _) in live.items()}, {s: v for s, (_, v) in live.items()})
    # the published state equals the recursion run through the data with each draw
    for j, s in enumerate(["A", "B", "C"]):
        d, v = live[s]
        np.testing.assert_allclose(variance_path(r[:, j], d, r[:, j].var())[:, -1], v, rtol=1e-6)
    assert np.all(model.risk(0.99).es_log > 0)
