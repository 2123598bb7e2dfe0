"""The prior-set contract: JSON round trip, atomic publish and activation, verified loading."""

import hashlib
import json
import os
import re
import stat
import threading
import time

import numpy as np
import pytest

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.prior_set import (
    ActivePriorSet,
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

REGIME = {
    "hazard": 0.004,
    "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 2.0, "beta0": 2.0},
    "max_run_length": 300,
}


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
        regime=REGIME,
    )


def test_json_round_trip_is_exact():
    ps = make(3)
    back = PriorSet.from_dict(json.loads(json.dumps(ps.to_dict())))
    assert back.to_dict() == ps.to_dict()


def test_publish_activate_and_load_verified(tmp_path):
    path = write_prior_set(make(1), tmp_path)
    assert path == version_dir(tmp_path, 1) and (path / "prior_set.json").exists()
    assert stat.S_IMODE(os.stat(path / "prior_set.json").st_mode) == 0o600
    assert load_active(tmp_path) is None
    activate(tmp_path, 1)
    published = {**make(1).to_dict(), "files": {}}  # with its (empty) manifest
    assert active_version(tmp_path) == 1 and load_active(tmp_path).to_dict() == published
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
    doc = make(1).to_dict()
    edit(doc)
    with pytest.raises((PriorSetError, ValueError), match=match):
        PriorSet.from_dict(doc)


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


# ------------------------------------------------------------------ what the loader must not trust
def rehash(models, version: int, edit) -> None:
    """What anyone able to write a set can do: edit its document and recompute its SHA-256."""
    f = version_dir(models, version) / "prior_set.json"
    payload = json.loads(f.read_bytes())
    edit(payload["prior_set"])
    body = json.dumps(payload["prior_set"], sort_keys=True, separators=(",", ":")).encode()
    payload["sha256"] = hashlib.sha256(body).hexdigest()
    f.write_bytes(json.dumps(payload).encode())


def two_versions(models):
    """v1 published and active, the trader holding it; v2 published (passing), not active."""
    write_prior_set(make(1), models)
    activate(models, 1)
    trader = ActivePriorSet(models)
    assert trader.refresh() and trader.current.version == 1
    write_prior_set(make(2, seed=1), models)
    return trader


def draws_edit(**values):
    def edit(doc):
        doc["symbols"]["SPY"]["draws"].update({k: [v] * 50 for k, v in values.items()})

    return edit


def family_edit(**values):
    def edit(doc):
        doc["families"]["momentum"].update({k: [v] * 100 for k, v in values.items()})

    return edit


def regime_edit(**values):
    def edit(doc):
        for k, v in values.items():
            target = doc["regime"]["normal_gamma"] if k in ("mu0", "kappa0", "beta0") else None
            (target if target is not None else doc["regime"])[k] = v

    return edit


IMPLAUSIBLE = {  # each was loaded (and activated) by the loader before the bounds existed
    # refused by GarchDraws' own persistence check (or the set's bound naming the value)
    "persistence 1.5": (
        draws_edit(alpha=0.05, gamma=0.9, beta=0.9),
        r"persistence alpha \+ kappa gamma \+ beta < 1 .*: it is 1\.[45]",
    ),
    "kappa 1e300": (family_edit(kappa=1e300), "kappa .* 1e\\+300"),
    "kappa 1e-9": (family_edit(kappa=1e-9), "kappa"),
    "mean 1e-9": (family_edit(mean=1e-9), "mean"),
    "mean as text": (family_edit(mean="0.5"), "must be numbers"),
    "mu +10": (draws_edit(mu=10.0), "mu draw 0 is 10.0"),
    "sigma2 1e-20": (lambda d: d["symbols"]["SPY"].update(sigma2=[1e-20] * 50), "sigma2"),
    "sigma2 1e-100": (lambda d: d["symbols"]["SPY"].update(sigma2=[1e-100] * 50), "sigma2"),
    "sigma2 4.0": (lambda d: d["symbols"]["SPY"].update(sigma2=[4.0] * 50), "sigma2"),
    "omega 1e-300": (draws_edit(omega=1e-300), "long-run variance"),
    "nu 1e6": (draws_edit(nu=1e6), "nu"),
    "lam 0.9999": (draws_edit(lam=0.9999), "lam"),
    "20,001 draws": (
        lambda d: d["families"]["momentum"].update(mean=[0.5] * 20_001, kappa=[30.0] * 20_001),
        "more than 10,000",
    ),
    "regime max_run_length 1": (regime_edit(max_run_length=1), "max_run_length"),
    "regime max_run_length 'x'": (regime_edit(max_run_length="x"), "max_run_length"),
    "regime max_run_length 10**12": (regime_edit(max_run_length=10**12), "max_run_length"),
    "regime hazard 0.9": (regime_edit(hazard=0.9), "hazard"),
    "regime beta0 1e-300": (regime_edit(beta0=1e-300), "beta0"),
    "created_at 'x'": (lambda d: d.update(created_at="x"), "created_at"),
    "config_hash 1,000 chars": (lambda d: d.update(config_hash="a" * 1000), "config_hash"),
    "unknown key": (lambda d: d.update(evil=1), "unknown keys"),
    "400-digit integer": (family_edit(mean=7 * 10**399), "400 digits|must be numbers"),
}


@pytest.mark.parametrize("case", list(IMPLAUSIBLE))
def test_implausible_values_are_refused_at_write_and_at_load(tmp_path, case):
    edit, match = IMPLAUSIBLE[case]
    trader = two_versions(tmp_path)
    rehash(tmp_path, 2, edit)
    with pytest.raises(PriorSetError, match=match):
        load_prior_set(tmp_path, 2)
    with pytest.raises(PriorSetError, match=match):
        activate(tmp_path, 2)
    assert (tmp_path / "ACTIVE").read_bytes() == b"1\n"  # nothing changed
    (tmp_path / "ACTIVE").write_text("2\n")  # and if ACTIVE is planted too
    with pytest.raises(PriorSetError, match=match):
        load_active(tmp_path)
    assert not trader.refresh() and trader.current.version == 1
    assert re.search(match, trader.last_error)
    doc = make(3).to_dict()  # the write path: no PriorSet holds such a value
    edit(doc)
    with pytest.raises(PriorSetError, match=match):
        PriorSet.from_dict(doc)


def test_published_arrays_are_frozen_and_callers_arrays_untouched():
    mean, kappa = np.full(10, 0.5), np.full(10, 30.0)
    fam = FamilyPosterior(mean, kappa)
    mean[0] = 0.9  # the caller's array is the caller's
    assert fam.mean[0] == 0.5
    with pytest.raises(ValueError, match="read-only"):
        fam.kappa[0] = 1e300  # what was validated cannot change before it is written
    with pytest.raises(ValueError, match="read-only"):
        make(1).symbols["SPY"].sigma2[0] = 1e-100


MISSING = object()


@pytest.mark.parametrize("verdict", [MISSING, 0, None, "false", "true", 1, False, [True]])
def test_only_a_verdict_of_exactly_true_is_live(tmp_path, verdict):
    trader = two_versions(tmp_path)

    def edit(doc):
        if verdict is MISSING:
            del doc["diagnostics"]["passed"]
        else:
            doc["diagnostics"]["passed"] = verdict

    rehash(tmp_path, 2, edit)
    assert load_prior_set(tmp_path, 2).version == 2  # loads for analysis (priors show, report)
    with pytest.raises(PriorSetError, match="did not pass its diagnostics gate"):
        activate(tmp_path, 2)
    assert (tmp_path / "ACTIVE").read_bytes() == b"1\n"
    (tmp_path / "ACTIVE").write_text("2\n")
    with pytest.raises(PriorSetError, match="did not pass its diagnostics gate"):
        load_active(tmp_path)  # the demo's loader
    assert not trader.refresh() and trader.current.version == 1
    assert "did not pass its diagnostics gate" in trader.last_error


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe2", "\u00b2".encode(), b"9" * 5000, "\u0662".encode(), b"", b" 2", b"2 ", b"+2",
     b"-2", b"0", b"2\n\n", b"2.0", b"\x002", b"1000000000"],
    ids=["utf16-bom", "superscript-2", "5000-digits", "arabic-2", "empty", "space-before",
         "space-after", "plus", "minus", "zero", "two-newlines", "float", "nul", "10-digits"],
)  # fmt: skip
def test_active_is_ascii_digits_only_and_refresh_never_raises(tmp_path, content):
    trader = two_versions(tmp_path)
    (tmp_path / "ACTIVE").write_bytes(content)
    with pytest.raises(PriorSetError, match=r"does not name a version|over the limit of 64"):
        active_version(tmp_path)
    assert not trader.refresh() and trader.current.version == 1 and trader.last_error
    (tmp_path / "ACTIVE").write_bytes(b"2")  # digits without a newline are fine
    assert trader.refresh() and trader.current.version == 2 and trader.last_error is None


def _refresh_in_thread(trader, timeout=10.0):
    out = {}
    thread = threading.Thread(target=lambda: out.update(r=trader.refresh()), daemon=True)
    thread.start()
    thread.join(timeout)
    return thread, out


def test_active_as_fifo_directory_or_link_is_refused_without_hanging(tmp_path):
    trader = two_versions(tmp_path)
    active = tmp_path / "ACTIVE"
    active.unlink()
    os.mkfifo(active)
    t0 = time.perf_counter()
    thread, out = _refresh_in_thread(trader)
    if thread.is_alive():  # the old loader blocks in open(): release it, then fail
        fd = os.open(active, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
    assert not thread.is_alive() and out == {"r": False}, "refresh hung on a FIFO"
    assert time.perf_counter() - t0 < 1.0 and "FIFO" in trader.last_error
    active.unlink()
    active.mkdir()
    assert not trader.refresh() and "directory" in trader.last_error
    active.rmdir()
    outside = tmp_path.parent / f"{tmp_path.name}-outside-active"
    outside.write_text("2\n")
    active.symlink_to(outside)
    assert not trader.refresh() and "symbolic link" in trader.last_error
    assert trader.current.version == 1


HOSTILE_FILES = {  # each escaped ActivePriorSet.refresh() as an exception before
    "NaN in a mean": lambda raw: raw.replace(b'"mean":[', b'"mean":[NaN,', 1),
    "1e999 in a kappa": lambda raw: raw.replace(b'"kappa":[', b'"kappa":[1e999,', 1),
    "5,000-digit integer": lambda raw: raw.replace(b'"version":2', b'"version":' + b"2" * 5000),
    "100k-deep nesting": lambda raw: b'{"sha256":"0","prior_set":' + b"[" * 100_000
    + b"]" * 100_000 + b"}",
    "-Infinity in sigma2": lambda raw: raw.replace(b'"sigma2":[', b'"sigma2":[-Infinity,', 1),
    "duplicate keys": lambda raw: raw.replace(b'{"prior_set":', b'{"prior_set":0,"prior_set":', 1),
    "not UTF-8": lambda raw: b"\xff\xfe" + raw,
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE_FILES))
def test_hostile_prior_set_files_are_refused_and_refresh_never_raises(tmp_path, case):
    trader = two_versions(tmp_path)
    f = version_dir(tmp_path, 2) / "prior_set.json"
    f.write_bytes(HOSTILE_FILES[case](f.read_bytes()))
    with pytest.raises(PriorSetError):
        load_prior_set(tmp_path, 2)
    (tmp_path / "ACTIVE").write_text("2\n")
    assert not trader.refresh() and trader.current.version == 1 and trader.last_error


def test_an_oversized_prior_set_is_refused_before_reading(tmp_path):
    trader = two_versions(tmp_path)
    f = version_dir(tmp_path, 2) / "prior_set.json"
    os.truncate(f, 108_000_000)  # sparse: 108 MB took 8.6 s and 1.3 GB to refuse
    (tmp_path / "ACTIVE").write_text("2\n")
    t0 = time.perf_counter()
    assert not trader.refresh() and trader.current.version == 1
    assert time.perf_counter() - t0 < 0.5 and "over the limit of 67,108,864" in trader.last_error


@pytest.mark.parametrize("where", [b'"reasons":[]', b'"hazard":0.004'])
def test_a_literal_beyond_the_float_range_is_refused_even_when_hashed(tmp_path, where):
    """1e999 reads as infinity; hashed over the file's own bytes (what a forger can do without
    a canonical form to hash) it is still refused, wherever it is."""
    trader = two_versions(tmp_path)
    f = version_dir(tmp_path, 2) / "prior_set.json"
    raw = f.read_bytes()
    head, tail = raw.index(b'"prior_set":') + len(b'"prior_set":'), len(raw) - 77
    body = raw[head:tail].replace(where, where + b',"x":1e999', 1)
    assert body != raw[head:tail]
    sha = hashlib.sha256(body).hexdigest().encode()
    f.write_bytes(raw[:head] + body + b',"sha256":"' + sha + b'"}')
    with pytest.raises(PriorSetError, match="non-finite"):
        load_prior_set(tmp_path, 2)
    (tmp_path / "ACTIVE").write_text("2\n")
    assert not trader.refresh() and "non-finite" in trader.last_error


def test_point_prior_is_moment_matched_to_a_new_signals_predictive():
    """The published prior is the Beta whose mean and variance are those of a new signal's win
    rate under the posterior predictive (E[m]; E[m (1 - m) / (kappa + 1)] + Var m), not the
    Beta at E[m], E[kappa], whose concentration overstates it (1.2-2.8x at a posterior sd of
    0.4-1.0 on log kappa)."""
    rng = np.random.default_rng(0)
    for sd, low, high in ((0.4, 1.1, 1.3), (1.0, 2.3, 3.0)):
        kappa = np.exp(rng.normal(np.log(30), sd, 10_000))
        mean = rng.uniform(0.49, 0.51, kappa.size)
        post = FamilyPosterior(mean, kappa)
        prior = post.point_prior()
        p = rng.beta(mean * kappa, (1 - mean) * kappa)  # new signals' win rates
        assert prior.mean == pytest.approx(mean.mean(), rel=1e-12)  # E[m], exactly
        assert abs(p.mean() - prior.mean) < 4 * p.std() / np.sqrt(p.size)
        beta_var = prior.a * prior.b / (prior.concentration**2 * (prior.concentration + 1))
        assert beta_var == pytest.approx(p.var(), rel=0.05)  # ~3.5 standard errors
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
    back = PriorSet.from_dict(json.loads(json.dumps(ps2.to_dict())))
    assert np.array_equal(back.families["momentum"].rho, rho)
    assert back.families["mean_reversion"].rho is None
    assert back.families["momentum"].rho_mean == pytest.approx(0.2)
    assert "rho" not in ps.to_dict()["families"]["momentum"]  # unchanged documents otherwise
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
