"""The returns model's numba likelihood Op (issue 17) against the reference graph (prefix scan)
on ragged, masked real data at random parameters, and its gradient against finite
differences. The slow calibration tests of test_pooled_returns_fit.py fit the default, the Op."""

import numpy as np
import pytest

from bayes_mem.live.gjr_garch import GarchDraws, simulate
from bayes_mem.offline import garch_logp as gl
from bayes_mem.offline import returns_model as rm


def ragged_returns(lengths=(400, 263, 131), seed=0):
    """Percent returns of differing lengths, right-aligned: simulated GJR skew-t series with
    real-looking parameters (the second: inverse leverage, positive skew)."""
    rng = np.random.default_rng(seed)
    draws = [
        GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86], nu=[5.0],
                   lam=[-0.2]),
        GarchDraws(mu=[-1e-4], omega=[4e-6], alpha=[0.12], gamma=[-0.08], beta=[0.85],
                   nu=[8.0], lam=[0.1]),
        GarchDraws(mu=[0.0], omega=[1e-5], alpha=[0.05], gamma=[0.05], beta=[0.9], nu=[3.0],
                   lam=[-0.5]),
    ]  # fmt: skip
    cols = [simulate(d, n, rng)[0][0] * rm.SCALE for d, n in zip(draws, lengths, strict=False)]
    return rm.right_aligned(cols), np.array([c.var() for c in cols])


def real_returns(lengths=(400, 263, 131)):
    """Percent log returns of the S&P 500, the NASDAQ composite and WTI crude (``arch``'s data),
    each the last ``lengths[i]`` days of its own calendar, right-aligned."""
    pytest.importorskip("arch")
    from arch.data import nasdaq, sp500, wti

    prices = [sp500.load()["Adj Close"], nasdaq.load()["Adj Close"], wti.load()["DCOILWTICO"]]
    cols = []
    for p, n in zip(prices, lengths, strict=True):
        p = p.dropna()
        cols.append(np.diff(np.log(p[p > 0].to_numpy()))[-n:] * rm.SCALE)
    return rm.right_aligned(cols), np.array([c.var() for c in cols])


@pytest.fixture(scope="module")
def both():
    """log-density, gradient and deterministics of each likelihood on the same real data."""
    (r, first), var0 = real_returns()
    out = {}
    for lik in rm.LIKELIHOODS:
        model = rm.build_returns_model(r, list("ABC"), var0, 1.3 * var0, first, likelihood=lik)
        # the Python linker: no compile of the reference graph (the numba path of the Op is
        # checked below and by every fit)
        fn = model.logp_dlogp_function(ravel_inputs=True, mode="FAST_COMPILE")
        fn.set_extra_values({})
        last = model.compile_fn(
            model.replace_rvs_by_values([model["last_sigma2_pct"]])[0], mode="FAST_COMPILE"
        )
        out[lik] = (fn, last)
    return model, out


def random_points(model, n, seed=1):
    rng = np.random.default_rng(seed)
    ip = model.initial_point()
    for _ in range(n):
        yield {k: np.asarray(v + rng.normal(0.0, 0.7, np.shape(v))) for k, v in ip.items()}


def test_op_equals_the_graph_in_value_gradient_and_end_state(both):
    """Real ragged symbols (400, 263 and 131 days, right-aligned and masked), 8 random points of
    the unconstrained space: log-density to 1e-9 relative, gradient to 1e-7, last variance."""
    model, out = both
    (f_op, last_op), (f_graph, last_graph) = out["op"], out["graph"]
    names = [v.name for v in model.value_vars]
    for point in random_points(model, 8):
        x = np.concatenate([np.ravel(point[k]) for k in names])
        (lo, go), (lg, gg) = f_op(x), f_graph(x)
        assert lo == pytest.approx(lg, rel=1e-9)
        np.testing.assert_allclose(go, gg, rtol=1e-7, atol=1e-9 * np.abs(gg).max())
        np.testing.assert_allclose(last_op(point), last_graph(point), rtol=1e-12)


def kernel_args(seed=2, lengths=(300, 150, 2)):
    (r, first), var0 = ragged_returns(lengths, seed)
    rng = np.random.default_rng(seed)
    n = r.shape[1]
    params = {
        "mu": rng.normal(0, 0.05, n), "omega": rng.uniform(0.01, 0.1, n),
        "alpha": rng.uniform(0.01, 0.1, n), "gamma": rng.uniform(-0.05, 0.15, n),
        "beta": rng.uniform(0.8, 0.9, n), "nu": rng.uniform(2.5, 10, n),
        "lam": rng.uniform(-0.6, 0.6, n), "a": rng.uniform(-0.3, 0.3, n),
        "b": rng.uniform(0.8, 1.2, n),
    }  # fmt: skip
    return (r, first, var0), params


def test_kernel_gradient_matches_central_differences():
    """Every one of the nine parameters of every symbol (including one of 2 days)."""
    data, params = kernel_args()
    logp, jac = gl.garch_skewt_logp_grad(*data, *params.values())
    assert np.all(np.isfinite(logp)) and jac.shape == (9, 3)
    for k, name in enumerate(gl.PARAMS):
        h = 1e-6 * np.maximum(np.abs(params[name]), 0.1)
        up = gl.garch_skewt_logp_grad(*data, *{**params, name: params[name] + h}.values())[0]
        down = gl.garch_skewt_logp_grad(*data, *{**params, name: params[name] - h}.values())[0]
        np.testing.assert_allclose(jac[k], (up - down) / (2 * h), rtol=1e-5, atol=1e-6,
                                   err_msg=name)  # fmt: skip


def test_extreme_days_are_logged_one_by_one():
    """A variance or a standardised shock far out of range (where a product of 16 days could
    overflow or underflow): the kernel's log-density is still the day-by-day sum."""
    (r, first), _ = ragged_returns((40, 30, 20), seed=3)
    one = np.ones(3)
    # the last three: variances ~1e16-1e17, just inside the chunked range (16 of them multiply
    # to ~1e270), just beyond it, and where 16 of them would overflow
    for scale, v0 in (
        (1e-90, 1e-120),
        (1e60, 1e-3),
        (1.0, 1e130),
        (1e8, 1e16),
        (1e9, 1e18),
        (1e12, 1e24),
    ):
        x = r * scale
        params = (0 * one, 1e-3 * one, 0.05 * one, 0.1 * one, 0.85 * one, 5.0 * one,
                  -0.2 * one, -0.1 * one, 1.01 * one)  # fmt: skip
        got = gl.garch_skewt_logp_grad(x, first, v0 * one, *params)[0]
        want = np.zeros(3)
        for i in range(3):
            s = v0
            for t in range(first[i], x.shape[0]):
                if t > first[i]:
                    e1 = x[t - 1, i]
                    s = 1e-3 + (0.05 + 0.1 * (e1 < 0)) * e1**2 + 0.85 * s
                w = 1.01 * x[t, i] / np.sqrt(s) - 0.1
                u = w / (1.2 if w < 0 else 0.8)
                want[i] += -3.0 * np.log1p(u * u / 3.0) - 0.5 * np.log(s)
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_the_op_is_compiled_by_numba_and_refuses_what_it_cannot_differentiate():
    import pytensor
    import pytensor.tensor as pt

    data, params = kernel_args()
    vecs = [pt.dvector(k) for k in gl.PARAMS]
    logp, _ = gl.garch_skewt_logp(*data, *vecs)
    f = pytensor.function(vecs, [logp, *pytensor.grad(logp.sum(), vecs)], mode="NUMBA")
    got = f(*params.values())
    want_logp, want_jac = gl.garch_skewt_logp_grad(*data, *params.values())
    np.testing.assert_allclose(got[0], want_logp, rtol=1e-12)
    np.testing.assert_allclose(np.stack(got[1:]), want_jac, rtol=1e-12)
    # no Python (object mode) fallback: the numba dispatch is registered for both Ops
    from pytensor.link.numba.dispatch.basic import numba_funcify

    for op in (gl.garch_skewt_logp, gl.garch_last_sigma2):
        assert type(op) in numba_funcify.registry
    from pytensor.gradient import NullTypeGradError

    r = pt.dmatrix("r")  # the returns are data: no gradient
    with pytest.raises(NullTypeGradError, match="returns are data"):
        pytensor.grad(gl.garch_skewt_logp(r, data[1], data[2], *vecs)[0].sum(), r)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        rm.PooledReturnsFitter(likelihood="jax")
    # the fits of test_pooled_returns_fit.py (recovery, PPC, SBC) use the default: this Op
    assert rm.PooledReturnsFitter().likelihood == "op"
