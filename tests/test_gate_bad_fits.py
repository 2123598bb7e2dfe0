"""Deliberately bad fits are rejected by the nightly job's gate and nothing changes for the
trader's win rates: too few draws, a model that cannot describe the data, data that cannot
identify the parameters. A good fit of a first store is active (v1) before each bad run. Each
component is gated on its own: where the store has returns they refresh while the win rates keep
v1's version; where it has none, nothing refreshes and the night is rejected."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from bayes_mem.live.prior_set import ActivePriorSet, active_version, load_prior_set
from bayes_mem.offline.recalibrate import (
    EXIT_PARTIAL,
    EXIT_REJECTED,
    RecalibrationConfig,
    recalibrate,
)
from bayes_mem.offline.winrate import WinRateModel
from bayes_mem.store import Store
from tests.test_recalibrate import fill

FAST = {"returns_model": "laplace", "returns_draws": 50, "returns_min_days": 300, "regime": False}
FAMILIES = ("momentum", "mean_reversion", "breakout")


def bad_store(path, kind: str) -> Store:
    """One trade per signal (the concentration kappa cannot be identified: a single trade's
    likelihood depends on the mean only), or every signal winning exactly half of 40 trades (less
    dispersion than binomial sampling allows: no Beta-Binomial can produce it)."""
    store = Store(data_dir=path)
    names = {f"{f}_{i:02d}": f for f in FAMILIES for i in range(30)}
    store.register_signals(names)
    rng = np.random.default_rng(0)
    rows = []
    for name in names:
        if kind == "unidentified":
            won = bool(rng.random() < 0.5)
            rows.append((f"{name}-0", name, won, 1.0 if won else -1.0, "2026-01-02"))
        else:
            rows += [
                (f"{name}-{t}", name, t % 2 == 0, 1.0 if t % 2 == 0 else -1.0, "2026-01-02")
                for t in range(40)
            ]
    store.ingest_outcomes(pd.DataFrame(rows, columns=["trade_id", "signal", "won", "pnl",
                                                      "settled_at"]))  # fmt: skip
    return store


@pytest.fixture(scope="module")
def winrate_model():
    return WinRateModel()


@pytest.fixture(scope="module")
def published(tmp_path_factory, winrate_model):
    """A registry with a good v1 active (fitted on a well-behaved store)."""
    root = tmp_path_factory.mktemp("gate")
    store = Store(data_dir=root / "good")
    fill(store)
    result = recalibrate(store, root / "models", RecalibrationConfig(**FAST), winrate_model)
    assert result.status == "active" and result.version == 1, result.verdict
    ratios = {k: v for k, v in result.verdict["summary"].items() if k.startswith("sd_ratio")}
    assert ratios and max(ratios.values()) < 0.9  # the good data identify every parameter
    store.close()
    return root


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, config, reason",
    [
        ("too_few_draws", {"draws": 40, "tune": 60, "chains": 2}, "ESS"),
        ("misspecified", {}, "posterior predictive check 'dispersion'"),
        ("unidentified", {}, "do not identify log kappa"),
    ],
)
def test_bad_fits_are_rejected_and_nothing_changes_for_the_trader(
    published, tmp_path, winrate_model, kind, config, reason
):
    models = tmp_path / "models"
    import shutil

    shutil.copytree(published / "models", models)
    trader = ActivePriorSet(models)
    assert trader.refresh() and trader.current.version == 1
    active_bytes = (models / "ACTIVE").read_bytes()
    v1 = (models / "prior_sets" / "v000001" / "prior_set.json").read_bytes()
    if kind == "too_few_draws":
        store = Store(data_dir=tmp_path / "data")
        fill(store, seed=3)
    else:
        store = bad_store(tmp_path / "data", kind)
    result = recalibrate(store, models, RecalibrationConfig(**FAST, **config), winrate_model)
    assert any(reason in r for r in result.verdict["reasons"]), result.verdict["reasons"]
    if kind == "too_few_draws":  # this store has returns: they refresh, the win rates stay v1's
        assert result.status == "active" and result.exit_code == EXIT_PARTIAL
        assert result.components["winrate"]["status"] == "carried"
        assert result.components["winrate"]["kind"] == "computational"
        assert trader.refresh() and trader.current.version == result.version
        v1_set = load_prior_set(models, 1)
        assert trader.current.source("winrate") == v1_set.source("winrate")
        for fam, post in v1_set.families.items():
            np.testing.assert_array_equal(trader.current.families[fam].mean, post.mean)
        store.close()
        return
    # no returns in these stores: nothing refreshes, the night is rejected
    assert result.status == "rejected" and result.exit_code == EXIT_REJECTED
    # nothing changed for the trader: the same ACTIVE, the same bytes, the same loaded set
    assert active_version(models) == 1 and (models / "ACTIVE").read_bytes() == active_bytes
    assert (
        hashlib.sha256((models / "prior_sets" / "v000001" / "prior_set.json").read_bytes()).digest()
        == hashlib.sha256(v1).digest()
    )
    assert not trader.refresh() and trader.current.version == 1
    rows = store.table("prior_sets").set_index("version")["status"]
    assert rows[result.version] == "rejected" and "active" not in set(rows)
    store.close()
