import numpy as np
import pytest

from bayes_mem.live import BetaPrior, Decider


@pytest.fixture
def decider() -> Decider:
    """Two families with distinct priors and a few signals, some with history."""
    d = Decider({"momentum": BetaPrior(2.0, 3.0), "mean_reversion": BetaPrior(5.0, 5.0)}, rng=11)
    for name in ("mom_a", "mom_b", "mom_new"):
        d.register(name, "momentum")
    d.register("mr_a", "mean_reversion")
    rng = np.random.default_rng(5)
    for i in range(40):
        won = bool(rng.random() < 0.6)
        pnl = float(rng.uniform(0.5, 2.0)) if won else -float(rng.uniform(0.5, 1.5))
        d.record("mom_a" if i % 2 else "mr_a", won, pnl, trade_id=f"t{i}")
    d.record("mom_b", True, 1.0)
    return d
