"""The gate's failures are classified (computational or misfit) and computational ones are
retried with escalated sampler settings, every attempt recorded (issue 16)."""

import arviz_stats  # noqa: F401  (the .azstats accessor)
import numpy as np
import pytest
import xarray as xr

from bayes_mem.offline import diagnostics as dg
from bayes_mem.offline.diagnostics import (
    COMPUTATIONAL,
    MISFIT,
    Escalation,
    FitSettings,
    PValues,
    RetryPolicy,
    fit_gated,
    gate,
    holm,
)

BASE = FitSettings(draws=500, tune=500, chains=4, target_accept=0.9, seed=7)


def fake_tree(
    rng: np.random.Generator,
    chains: int = 4,
    draws: int = 500,
    shift: float = 0.0,
    divergences: int = 0,
):
    """A posterior of iid N(0, 1) draws (chain 0 shifted by ``shift``: R-hat fails) with
    well-behaved sampler statistics, ``divergences`` divergent transitions."""
    x = rng.standard_normal((chains, draws))
    x[0] += shift
    diverging = np.zeros((chains, draws), bool)
    diverging.flat[:divergences] = True
    return xr.DataTree.from_dict({
        "posterior": xr.Dataset({"theta": (("chain", "draw"), x)}),
        "sample_stats": xr.Dataset({
            "diverging": (("chain", "draw"), diverging),
            "energy": (("chain", "draw"), rng.standard_normal((chains, draws))),
            "maxdepth_reached": (("chain", "draw"), np.zeros((chains, draws), bool)),
        }),
    })  # fmt: skip


class FakeModel:
    """Diverges while ``target_accept`` is below ``cure``; records the settings asked for."""

    def __init__(self, cure: float) -> None:
        self.cure, self.calls, self.rng = cure, [], np.random.default_rng(0)

    def __call__(self, s: FitSettings):
        self.calls.append(s)
        return fake_tree(self.rng, s.chains, s.draws, divergences=3 * (s.target_accept < self.cure))


def check(tree):
    return gate(tree, ["theta"])


def test_failures_are_classified_by_kind_not_by_text():
    rng = np.random.default_rng(1)
    good = gate(fake_tree(rng), ["theta"])
    assert good.passed and good.failures == () and not good.retryable
    bad = gate(fake_tree(rng, shift=1.0, divergences=2), ["theta"], {"x": 0.9999},
               {"theta": 0.95})  # fmt: skip
    kinds = {f.check: f.kind for f in bad.failures}
    assert kinds == {"rhat": COMPUTATIONAL, "divergences": COMPUTATIONAL, "ppc": MISFIT,
                     "sd_ratio": MISFIT, "ess_bulk": COMPUTATIONAL,
                     "ess_tail": COMPUTATIONAL, "rank": COMPUTATIONAL}  # fmt: skip
    assert bad.reasons == tuple(f.message for f in bad.failures)
    assert not bad.retryable  # a misfit among the failures: not retried
    assert gate(fake_tree(rng, divergences=1), ["theta"]).retryable
    js = bad.to_dict()
    assert len(js["computational"]) == 5 and len(js["misfit"]) == 2
    assert js["failures"][0]["kind"] in (COMPUTATIONAL, MISFIT)


def test_a_computational_failure_is_retried_with_escalated_settings_and_recorded():
    model = FakeModel(cure=0.93)
    out = fit_gated(model, check, BASE)
    assert out.verdict.passed
    attempts = out.verdict.attempts
    assert [a.passed for a in attempts] == [False, True]
    assert attempts[0].settings == {"draws": 500, "tune": 500, "chains": 4,
                                    "target_accept": 0.9, "seed": 7}  # fmt: skip
    s2 = attempts[1].settings
    assert s2["draws"] == 750 and s2["tune"] == 1000 and s2["seed"] == 8
    assert s2["target_accept"] == pytest.approx(0.95)
    assert [f.check for f in attempts[0].failures] == ["divergences"]
    assert attempts[0].failures[0].kind == COMPUTATIONAL
    assert out.verdict.summary["attempts"] == 2
    assert out.tree["posterior"].sizes["draw"] == 750  # the passing fit is the one kept
    assert len(model.calls) == 2


def test_a_misfit_is_not_retried():
    model = FakeModel(cure=0.0)
    out = fit_gated(model, lambda t: gate(t, ["theta"], {"dispersion": 1.0}), BASE)
    assert not out.verdict.passed and len(out.verdict.attempts) == 1 and len(model.calls) == 1
    assert [f.kind for f in out.verdict.failures] == [MISFIT]


def test_exhaustion_rejects_with_every_attempt_listed():
    model = FakeModel(cure=1.0)  # never cured
    out = fit_gated(model, check, BASE)
    v = out.verdict
    assert not v.passed and len(v.attempts) == 3 and len(model.calls) == 3
    assert all(not a.passed and a.failures[0].check == "divergences" for a in v.attempts)
    last = v.attempts[-1].settings
    assert last["chains"] == 6 and last["draws"] == 1000 and last["tune"] == 2000
    assert last["target_accept"] == pytest.approx(0.975)
    # the schedule's last escalation repeats past its end; max_attempts bounds the fits
    policy = RetryPolicy(schedule=(Escalation(tune=2.0),), max_attempts=4)
    out = fit_gated(FakeModel(cure=1.0), check, BASE, policy)
    assert [a.settings["tune"] for a in out.verdict.attempts] == [500, 1000, 1000, 1000]
    assert len(fit_gated(FakeModel(cure=1.0), check, BASE, dg.NO_RETRY).verdict.attempts) == 1
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_holm_matches_a_brute_force_reference():
    rng = np.random.default_rng(3)
    p = rng.random(7) ** 3
    m = p.size
    # Holm by definition: reject H_(i) iff p_(j) <= alpha / (m - j + 1) for every j <= i;
    # the adjusted p-value is the smallest alpha that rejects it
    order = np.argsort(p)
    ref = np.empty(m)
    for i in range(m):
        ref[order[i]] = min(1.0, max(p[order[j]] * (m - j) for j in range(i + 1)))
    np.testing.assert_allclose(holm(p), ref)
    assert np.isnan(holm(np.array([np.nan, 0.01]))[0]) and holm(np.array([np.nan, 0.01]))[1] == 0.01


def test_ppc_resolution_is_stated_and_holm_applies_to_the_family_of_checks():
    rng = np.random.default_rng(4)
    tree = fake_tree(rng)
    v = gate(tree, ["theta"], PValues({"a": 0.5}, replicates=2000))
    assert v.summary["ppc_replicates"] == 2000
    assert v.summary["ppc_resolution"] == pytest.approx(1 / 2001)
    # 0.004 fails on its own (two-sided 0.008 < 0.01); among 5 checks Holm makes it 0.04
    ppc = {"a": 0.004, "b": 0.5, "c": 0.5, "d": 0.5, "e": 0.5}
    assert not gate(tree, ["theta"], ppc).passed
    assert gate(tree, ["theta"], ppc, ppc_correction="holm").passed
    ppc["a"] = 0.0004  # two-sided 0.0008, x5 = 0.004 < 0.01
    assert not gate(tree, ["theta"], ppc, ppc_correction="holm").passed


# ------------------------------------------------------------------------ rank plots
def ar1_tree(rng: np.random.Generator, phi: float, chains: int = 4, draws: int = 2000):
    """Chains that agree (same stationary N(0, 1)) but are autocorrelated (AR(1), lag-1
    correlation ``phi``), like tau and sigma_logk in the win-rate fit, for variables ``tau``
    and ``sigma_logk``; clean sampler statistics."""
    post = {}
    for name in ("tau", "sigma_logk"):
        x = np.empty((chains, draws))
        x[:, 0] = rng.standard_normal(chains)
        e = rng.standard_normal((chains, draws)) * np.sqrt(1 - phi**2)
        for t in range(1, draws):
            x[:, t] = phi * x[:, t - 1] + e[:, t]
        post[name] = (("chain", "draw"), x)
    tree = fake_tree(rng, chains, draws)
    return xr.DataTree.from_dict({"posterior": xr.Dataset(post),
                                  "sample_stats": tree["sample_stats"].to_dataset()})  # fmt: skip


def _plot_texts(monkeypatch, tree, names):
    """The rank plot's figure: every text on it, and how many filled bands it draws."""
    import re

    from matplotlib.collections import PolyCollection

    from bayes_mem.offline.report import figures as rp  # the module that draws and saves

    seen = {}
    monkeypatch.setattr(rp, "_png", lambda fig: seen.setdefault("fig", fig) and "uri")
    rp._rank_plot(tree, names)
    fig = seen["fig"]
    texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
    p = [float(m) for t in texts for m in re.findall(r"p\s*=\s*([0-9.eE+-]+)", t)]
    bands = sum(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)
    import matplotlib.pyplot as plt

    plt.close(fig)  # the real _png closes it; a figure left open leaks into later tests
    return p, bands


def test_rank_plot_agrees_with_the_gate_on_autocorrelated_chains_that_agree(monkeypatch):
    """Old code: the report's ArviZ rank plot printed p = 0.00 (its test takes draws as
    independent) for chains that pass the gate, and drew no band."""
    from bayes_mem.offline.diagnostics import rank_tests

    tree = ar1_tree(np.random.default_rng(13), phi=0.9, draws=3000)
    # the cause: ArviZ's multi-chain test on the raw (autocorrelated) draws says p ~ 0
    ranks = tree["posterior"].to_dataset().azstats.compute_ranks(dim=["chain", "draw"],
                                                                relative=True)  # fmt: skip
    raw, _, _ = ranks.azstats.mchain_uniformity_test(dim=["chain", "draw"])
    assert max(float(raw[k]) for k in raw.data_vars) < 0.005
    verdict = gate(tree, ["tau", "sigma_logk"])
    assert verdict.passed, verdict.reasons  # R-hat, ESS (~600 of 12,000) and ranks agree
    p, bands = _plot_texts(monkeypatch, tree, ["tau", "sigma_logk"])
    assert len(p) == 2 and min(p) >= 0.01, p
    assert bands >= 2  # a uniformity band in every panel
    gate_p = [t.p for t in rank_tests(tree, ["tau", "sigma_logk"])]
    np.testing.assert_allclose(p, gate_p, rtol=2e-3)  # printed to 3 digits: the gate's numbers
    assert verdict.summary["min_rank_p"] == pytest.approx(min(gate_p))


def test_rank_test_catches_a_chain_that_disagrees_and_the_plot_says_so(monkeypatch):
    rng = np.random.default_rng(12)
    tree = ar1_tree(rng, phi=0.5)
    tau = tree["posterior"]["tau"].values.copy()
    tau[0] += 0.25  # one chain off by a quarter sd: R-hat ~1.005 still passes
    post = tree["posterior"].to_dataset().assign(tau=(("chain", "draw"), tau))
    tree["posterior"] = post
    verdict = gate(tree, ["tau", "sigma_logk"])
    assert verdict.summary["max_rhat"] <= 1.01
    assert [f.check for f in verdict.failures] == ["rank"]
    assert verdict.failures[0].kind == COMPUTATIONAL and verdict.retryable
    p, _ = _plot_texts(monkeypatch, tree, ["tau", "sigma_logk"])
    assert min(p) == pytest.approx(verdict.failures[0].value, rel=2e-3)


def test_the_verdict_json_is_finite_for_the_prior_set():
    import json

    from bayes_mem.offline.diagnostics import Failure, Verdict

    v = Verdict.of([Failure("live_state", MISFIT, "x", float("inf"), "S")],
                   {"ratio": float("nan"), "n": np.int64(3)})  # fmt: skip
    text = json.dumps(v.to_dict(), allow_nan=False)
    assert '"inf"' in text and '"nan"' in text


def test_merged_verdicts_keep_kinds_and_every_attempt_with_its_component():
    w = fit_gated(FakeModel(cure=0.93), check, BASE).verdict  # passed on attempt 2
    r = fit_gated(FakeModel(cure=0.0), lambda t: gate(t, ["theta"], {"x": 1.0}), BASE).verdict
    m = w.merged(r, "returns")
    assert not m.passed and m.reasons == ("returns: posterior predictive check 'x': p = 1",)
    assert [f.kind for f in m.failures] == [MISFIT] and not m.retryable
    assert [(a.settings.get("component"), a.number) for a in m.attempts] == [
        (None, 1), (None, 2), ("returns", 1)]  # fmt: skip
    assert m.summary["returns_ppc_x"] == 1.0 and m.summary["attempts"] == 2


def test_the_gate_s_e_bfmi_is_the_textbook_estimate_per_chain():
    """E-BFMI (ArviZ's ``bfmi``) = sum of squared energy differences over n, divided by the
    energy's variance, per chain (Betancourt 2016); a chain below 0.3 fails the gate."""
    rng = np.random.default_rng(3)
    tree = fake_tree(rng)
    energy = rng.standard_normal((4, 500))
    energy[2] = np.cumsum(0.05 * rng.standard_normal(500))  # a random walk: tiny E-BFMI
    stats = tree["sample_stats"].to_dataset().assign(energy=(("chain", "draw"), energy))
    tree = xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset(),
                                  "sample_stats": stats})  # fmt: skip
    by_hand = np.sum(np.diff(energy, axis=1) ** 2, axis=1) / 500 / np.var(energy, axis=1)
    verdict = gate(tree, ["theta"])
    assert verdict.summary["min_ebfmi"] == pytest.approx(by_hand.min(), rel=1e-12)
    assert by_hand.min() < 0.3 and {f.check for f in verdict.failures} == {"ebfmi"}
