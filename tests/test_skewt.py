"""Hansen's skewed t against numerical integration and scipy's Student t."""

import numpy as np
import pytest
from scipy import integrate, stats

from bayes_mem.live.skewt import SkewT

CASES = [(5.0, 0.0), (4.0, -0.3), (8.0, 0.4), (2.5, -0.7), (30.0, 0.1)]


@pytest.mark.parametrize("nu,lam", CASES)
def test_standardised_moments_and_tail_functions_by_quadrature(nu, lam):
    d = SkewT.from_params(nu, lam)

    def pdf(z):
        return float(d.pdf(np.array(z)))

    assert integrate.quad(pdf, -np.inf, np.inf)[0] == pytest.approx(1.0, abs=1e-9)
    assert integrate.quad(lambda z: z * pdf(z), -np.inf, np.inf)[0] == pytest.approx(0.0, abs=1e-8)
    var = integrate.quad(lambda z: z * z * pdf(z), -np.inf, np.inf, limit=400)[0]
    assert var == pytest.approx(1.0, rel=1e-6)
    split = float(d.mode_split)

    def below(f, z):  # integrate up to z, splitting at the kink where the halves meet
        if z <= split:
            return integrate.quad(f, -np.inf, z, epsabs=1e-14)[0]
        return (
            integrate.quad(f, -np.inf, split, epsabs=1e-14)[0]
            + integrate.quad(f, split, z, epsabs=1e-14)[0]
        )

    for z in (-4.0, -1.7, -0.1, 0.6, 2.5):
        cdf_num = below(pdf, z)
        pm_num = below(lambda x: x * pdf(x), z)
        assert float(d.cdf(np.array(z))) == pytest.approx(cdf_num, abs=1e-10)
        assert float(d.partial_mean(np.array(z))) == pytest.approx(pm_num, abs=1e-10)
    p = np.array([1e-4, 0.01, 0.025, 0.3, 0.5, 0.9])
    np.testing.assert_allclose(d.cdf(d.ppf(p)), p, rtol=1e-9)


@pytest.mark.parametrize("nu", [2.5, 4.0, 6.0, 12.0])
@pytest.mark.parametrize("alpha", [0.01, 0.025, 0.05])
def test_symmetric_case_matches_mfe_closed_form_es(nu, alpha):
    # McNeil, Frey & Embrechts Ex. 2.19: standard t ES = f(t_a)/a * (nu + t_a^2)/(nu - 1);
    # the standardised t is the standard t times sqrt((nu - 2)/nu).
    d = SkewT.from_params(nu, 0.0)
    t_a = stats.t(nu).ppf(alpha)
    es_standard = stats.t(nu).pdf(t_a) / alpha * (nu + t_a**2) / (nu - 1)
    expected = es_standard * np.sqrt((nu - 2) / nu)
    assert float(d.expected_shortfall(alpha)) == pytest.approx(expected, rel=1e-10)
    assert float(d.cdf(np.array(-1.3))) == pytest.approx(
        stats.t(nu).cdf(-1.3 * np.sqrt(nu / (nu - 2))), rel=1e-12
    )


def test_negative_skew_fattens_the_left_tail():
    sym, neg = SkewT.from_params(6.0, 0.0), SkewT.from_params(6.0, -0.3)
    assert float(neg.expected_shortfall(0.01)) > float(sym.expected_shortfall(0.01))


def test_sampling_reproduces_the_moments():
    d = SkewT.from_params(np.full(200_000, 6.0), np.full(200_000, -0.2))
    x = d.sample(np.random.default_rng(0))
    assert abs(x.mean()) < 0.01 and x.var() == pytest.approx(1.0, rel=0.03)
    assert (x <= float(d.ppf(np.array(0.05))[0])).mean() == pytest.approx(0.05, abs=0.002)


@pytest.mark.parametrize("nu,lam", [(2.0, 0.0), (1.5, 0.0), (np.nan, 0.0), (5.0, 1.0), (5.0, -1.2)])
def test_invalid_parameters_are_refused(nu, lam):
    with pytest.raises(ValueError, match=r"nu|lam"):
        SkewT.from_params(nu, lam)


@pytest.mark.parametrize("nu,lam", CASES)
def test_reflection_reverses_the_skew(nu, lam):
    # -Z for Z ~ skew-t(nu, lam) is skew-t(nu, -lam): density, CDF, quantile and tail moments
    d, m = SkewT.from_params(nu, lam), SkewT.from_params(nu, lam).mirrored()
    assert float(m.lam) == -lam and float(m.nu) == nu
    z = np.linspace(-6.0, 6.0, 241)
    np.testing.assert_allclose(m.pdf(z), d.pdf(-z), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(m.cdf(z), 1.0 - d.cdf(-z), rtol=1e-12, atol=1e-15)
    p = np.array([1e-4, 0.025, 0.5, 0.9])
    np.testing.assert_allclose(m.ppf(p), -d.ppf(1.0 - p), rtol=1e-9, atol=1e-12)
    # E[-Z 1{-Z <= z}] = -E[Z 1{Z >= -z}] = partial_mean(-z) (the mean is 0)
    np.testing.assert_allclose(m.partial_mean(z), d.partial_mean(-z), atol=1e-13)
    # E[Z^2 1{-Z <= z}] = 1 - E[Z^2 1{Z < -z}]
    np.testing.assert_allclose(m.partial_moment2(z), 1.0 - d.partial_moment2(-z), atol=1e-12)


@pytest.mark.parametrize("nu,lam", CASES)
def test_second_partial_moment_by_quadrature(nu, lam):
    d = SkewT.from_params(nu, lam)
    split = float(d.mode_split)

    def f(x):
        return x * x * float(d.pdf(np.array(x)))

    for z in (-5.0, -1.2, split, 0.3, 2.0, 40.0):
        if z <= split:
            num = integrate.quad(f, -np.inf, z, epsabs=1e-14, limit=400)[0]
        else:
            num = (
                integrate.quad(f, -np.inf, split, epsabs=1e-14, limit=400)[0]
                + integrate.quad(f, split, z, epsabs=1e-14, limit=400)[0]
            )
        assert float(d.partial_moment2(np.array(z))) == pytest.approx(num, abs=1e-9)
    # the whole second moment is the variance, 1 (the tail beyond z decays like z^(2 - nu))
    assert float(d.partial_moment2(np.array(1e7))) == pytest.approx(1.0, abs=2e-5)
