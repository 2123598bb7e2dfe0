"""The prior-set contract: JSON round trip, atomic publish and activation, verified loading."""

import json
import os
import stat

import numpy as np
import pytest

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.prior_set import (
    FamilyPosterior,
    PriorSet,
    PriorSetError,
    SymbolPosterior,
    activate,
    active_version,
    apply_family_priors,
    load_active,
    load_prior_set,
    version_dir,
    write_prior_set,
)


def make(version: int, seed: int = 0) -> PriorSet:
    rng = np.random.default_rng(seed)
    s = 50
    draws = GarchDraws(
        mu=rng.normal(3e-4, 1e-4, s), omega=rng.uniform(1e-6, 3e-6, s),
        alpha=rng.uniform(0.01, 0.05, s), gamma=rng.uniform(0.05, 0.15, s),
        beta=rng.uniform(0.8, 0.85, s), nu=rng.uniform(4, 9, s), lam=rng.uniform(-0.3, 0, s),
    )  # fmt: skip
    return PriorSet(
        version=version,
        created_at="2026-11-25T02:00:00+00:00",
        data_through="2026-11-24",
        code_version="0.1.0",
        config_hash="abc123",
        families={
            "momentum": FamilyPosterior(rng.uniform(0.5, 0.55, 100), rng.uniform(20, 40, 100)),
            "mean_reversion": FamilyPosterior(
                rng.uniform(0.45, 0.5, 100), rng.uniform(10, 20, 100)
            ),
        },
        symbols={"SPY": SymbolPosterior(draws, np.full(s, 1e-4))},
        diagnostics={"passed": True, "reasons": []},
    )


def test_json_round_trip_is_exact():
    ps = make(3)
    back = PriorSet.from_json(json.loads(json.dumps(ps.to_json())))
    assert back.to_json() == ps.to_json()


def test_publish_activate_and_load_verified(tmp_path):
    path = write_prior_set(make(1), tmp_path)
    assert path == version_dir(tmp_path, 1) and (path / "prior_set.json").exists()
    assert stat.S_IMODE(os.stat(path / "prior_set.json").st_mode) == 0o600
    assert load_active(tmp_path) is None
    activate(tmp_path, 1)
    assert active_version(tmp_path) == 1 and load_active(tmp_path).to_json() == make(1).to_json()
    write_prior_set(make(2, seed=1), tmp_path)
    activate(tmp_path, 2)
    assert load_active(tmp_path).version == 2
    activate(tmp_path, 1)  # rollback = activate an older version
    assert load_active(tmp_path).version == 1
    with pytest.raises(PriorSetError, match="already exists"):
        write_prior_set(make(2), tmp_path)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda b: b[: len(b) // 2], "corrupt"),
        (lambda b: b.replace(b'"momentum"', b'"momentun"', 1), "hash"),
        (lambda b: b"", "corrupt"),
        (lambda b: b'{"sha256": "x"}', "layout"),
    ],
)
def test_damaged_files_are_refused_and_activation_keeps_the_old_set(tmp_path, damage, match):
    write_prior_set(make(1), tmp_path)
    activate(tmp_path, 1)
    write_prior_set(make(2), tmp_path)
    f = version_dir(tmp_path, 2) / "prior_set.json"
    f.write_bytes(damage(f.read_bytes()))
    with pytest.raises(PriorSetError, match=match):
        load_prior_set(tmp_path, 2)
    with pytest.raises(PriorSetError):
        activate(tmp_path, 2)
    assert load_active(tmp_path).version == 1


def test_a_crash_mid_publish_leaves_only_an_ignored_temporary(tmp_path):
    write_prior_set(make(1), tmp_path)
    activate(tmp_path, 1)
    (tmp_path / "prior_sets" / ".tmp-v000002-dead").mkdir()  # what a killed publisher leaves
    (tmp_path / ".ACTIVE.dead").write_text("2\n")
    assert load_active(tmp_path).version == 1
    write_prior_set(make(2), tmp_path)  # the next run succeeds
    activate(tmp_path, 2)
    assert load_active(tmp_path).version == 2


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update(schema="other/1"), "schema"),
        (lambda d: d["families"]["momentum"].update(mean=[1.5]), "mean"),
        (lambda d: d["families"]["momentum"].update(kappa=[1.0, 2.0]), "equal-length"),
        (lambda d: d["symbols"]["SPY"].update(sigma2=[-1.0] * 50), "sigma2"),
        (lambda d: d["symbols"]["SPY"]["draws"].update(nu=[1.5] * 50), "nu"),
        (lambda d: d.update(version=0), "version"),
        (lambda d: d.pop("families"), "malformed"),
    ],
)
def test_invalid_content_is_refused(edit, match):
    doc = make(1).to_json()
    edit(doc)
    with pytest.raises((PriorSetError, ValueError), match=match):
        PriorSet.from_json(doc)


def test_applying_family_priors_never_double_counts():
    d = Decider({"momentum": BetaPrior(1, 1)}, rng=0)
    d.register("mom_a", "momentum")
    for won in [True] * 6 + [False] * 4:
        d.record("mom_a", won, 1.0 if won else -1.0)
    ps = make(1)
    apply_family_priors(ps, d)
    prior = ps.families["momentum"].point_prior()
    assert d.posterior("mom_a") == BetaPrior(prior.a + 6, prior.b + 4)
    apply_family_priors(ps, d)  # a second application changes nothing
    assert d.posterior("mom_a") == BetaPrior(prior.a + 6, prior.b + 4)
    assert "mean_reversion" in d.families


def test_point_prior_is_moment_matched_to_a_new_signals_predictive():
    """The published prior is the Beta whose mean and variance are those of a new signal's win
    rate under the posterior predictive (E[m]; E[m (1 - m) / (kappa + 1)] + Var m), not the
    Beta at E[m], E[kappa], whose concentration overstates it (1.2-2.8x at a posterior sd of
    0.4-1.0 on log kappa)."""
    rng = np.random.default_rng(0)
    for sd, low, high in ((0.4, 1.1, 1.3), (1.0, 2.3, 3.0)):
        kappa = np.exp(rng.normal(np.log(30), sd, 20_000))
        mean = rng.uniform(0.49, 0.51, kappa.size)
        post = FamilyPosterior(mean, kappa)
        prior = post.point_prior()
        p = rng.beta(mean * kappa, (1 - mean) * kappa)  # new signals' win rates
        assert prior.mean == pytest.approx(p.mean(), abs=2e-3)
        beta_var = prior.a * prior.b / (prior.concentration**2 * (prior.concentration + 1))
        assert beta_var == pytest.approx(p.var(), rel=0.03)
        plug_in = post.point_prior("plug_in")
        assert plug_in.concentration == pytest.approx(kappa.mean())
        assert low < plug_in.concentration / prior.concentration < high
    with pytest.raises(ValueError, match="'median'"):
        post.point_prior("median")


def test_family_rho_round_trips_and_sets_without_it_still_load():
    ps = make(1)
    fam = ps.families["momentum"]
    rho = np.linspace(0.1, 0.3, fam.mean.size)
    with_rho = FamilyPosterior(fam.mean, fam.kappa, rho)
    ps2 = PriorSet(**{**ps.__dict__, "families": {**ps.families, "momentum": with_rho}})
    back = PriorSet.from_json(json.loads(json.dumps(ps2.to_json())))
    assert np.array_equal(back.families["momentum"].rho, rho)
    assert back.families["mean_reversion"].rho is None
    assert back.families["momentum"].rho_mean == pytest.approx(0.2)
    assert "rho" not in ps.to_json()["families"]["momentum"]  # unchanged documents otherwise
    with pytest.raises(PriorSetError, match="rho"):
        FamilyPosterior(fam.mean, fam.kappa, np.full(fam.mean.size, 1.0))


def test_apply_family_priors_sets_rho_and_optionally_full_bayes_draws():
    ps = make(1)
    fam = ps.families["momentum"]
    ps = PriorSet(
        **{
            **ps.__dict__,
            "families": {
                "momentum": FamilyPosterior(fam.mean, fam.kappa, np.full(fam.mean.size, 0.3))
            },
        }
    )
    d = Decider(["momentum"], rng=0)
    apply_family_priors(ps, d, full_bayes=True)
    assert d.families["momentum"] == fam.point_prior() and d.family_rho("momentum") == 0.3
    snap = d.snapshot()["families"][0]
    assert np.allclose(snap["draws"]["a"], fam.mean * fam.kappa)
    apply_family_priors(ps, d)  # back to the point prior alone
    assert "draws" not in d.snapshot()["families"][0]
