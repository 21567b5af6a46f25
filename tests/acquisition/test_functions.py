from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from asynchpo.acquisition import (
    log_ei,
    log_ei_grad,
    log_h,
    log_qei,
    log_qei_grad,
    numpy_namespace,
    optimize_acquisition,
    rff_evaluate,
    rff_evaluate_grad,
    rff_sample,
    ucb,
    ucb_grad,
)
from asynchpo.surrogate import Hyper, Posterior


def exact_log_h(z: float) -> float:
    with mpmath.workdps(50):
        z = mpmath.mpf(z)
        return float(mpmath.log(mpmath.npdf(z) + z * mpmath.ncdf(z)))


Z = [-1e4, -300.0, -40.0, -10.0, -5.0, -1.5, -1.0, -0.999, -0.3, 0.0, 0.7, 3.0, 12.0]


def test_log_h_matches_high_precision_everywhere(ns):
    got = ns.to_numpy(log_h(ns.xp.asarray(Z), ns))
    want = np.array([exact_log_h(z) for z in Z])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_log_ei_is_the_log_of_the_closed_form(ns):
    rng = np.random.default_rng(0)
    mean, var, best = rng.normal(size=50), rng.uniform(0.01, 2.0, 50), 0.3
    sigma = np.sqrt(var)
    z = (best - mean) / sigma
    phi = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    ei = sigma * (phi + z * cdf)
    xp = ns.xp
    got = ns.to_numpy(log_ei(xp.asarray(mean), xp.asarray(var), best, ns))
    np.testing.assert_allclose(got, np.log(ei), rtol=1e-9)
    # far below the best, EI underflows to 0 but its log stays finite and ordered
    far = ns.to_numpy(log_ei(xp.asarray([50.0, 60.0]), xp.asarray([1e-2, 1e-2]), 0.0, ns))
    assert np.isfinite(far).all() and far[0] > far[1]


def test_ucb_is_the_negated_lower_bound(ns):
    xp = ns.xp
    got = ns.to_numpy(ucb(xp.asarray([1.0, -2.0]), xp.asarray([4.0, 0.25]), 9.0, ns))
    np.testing.assert_allclose(got, [-(1.0 - 3 * 2.0), -(-2.0 - 3 * 0.5)])


def test_random_fourier_draws_have_the_kernels_covariance(ns):
    hyper = Hyper(np.array([0.4]), 1.3, 1e-6)
    rng = np.random.default_rng(0)
    x = np.array([[0.0], [0.2], [0.6]])
    draws = []
    for _ in range(2000):  # prior draws: no data
        omega, phase, w = rff_sample(
            np.empty((0, 1)),
            np.empty(0),
            hyper.lengthscales,
            hyper.outputscale,
            1.0,
            rng,
            n_features=128,
        )
        xp = ns.xp
        draws.append(
            ns.to_numpy(
                rff_evaluate(
                    xp.asarray(x),
                    xp.asarray(omega),
                    xp.asarray(phase),
                    xp.asarray(w),
                    hyper.outputscale,
                    ns,
                )
            )
        )
    emp = np.cov(np.array(draws).T)
    K = Posterior(hyper, x, np.zeros(3)).L
    np.testing.assert_allclose(emp, K @ K.T, atol=0.15)


def test_random_fourier_posterior_draws_interpolate_the_data():
    rng = np.random.default_rng(0)
    X = rng.random((15, 2))
    y = np.sin(5 * X[:, 0]) + X[:, 1]
    omega, phase, w = rff_sample(X, y, np.array([0.3, 0.3]), 1.0, 1e-4, rng, n_features=1024)
    f = rff_evaluate(X, omega, phase, w, 1.0, numpy_namespace())
    assert np.abs(f - y).max() < 0.1


def test_optimizer_finds_the_peak_and_avoids_taken_points():
    rng = np.random.default_rng(0)
    peak = np.array([0.731, 0.2, 0.55])

    def score(U):
        return -((U - peak) ** 2).sum(axis=1)

    base = rng.random((512, 3))
    u, val = optimize_acquisition(
        score, lambda U: np.clip(U, 0, 1), base, np.empty((0, 3)), np.empty((0, 3)), rng
    )
    assert np.abs(u - peak).max() < 0.01 and val > -1e-4

    def snap(U):  # a grid of 11 values per coordinate: the peak itself is taken
        return np.round(np.clip(U, 0, 1) * 10) / 10

    taken = snap(peak[None, :])
    u, _ = optimize_acquisition(score, snap, base, taken, taken, rng)
    assert not np.allclose(u, taken[0]) and np.abs(u - taken[0]).max() <= 0.1 + 1e-12


@pytest.mark.parametrize("n_taken", [0, 5])
def test_optimizer_returns_points_of_the_space(n_taken):
    rng = np.random.default_rng(1)

    def snap(U):
        return (np.floor(np.clip(U, 0, 1 - 1e-12) * 4) + 0.5) / 4

    taken = snap(rng.random((n_taken, 2)))
    u, _ = optimize_acquisition(
        lambda U: U.sum(axis=1), snap, rng.random((64, 2)), taken, taken, rng
    )
    np.testing.assert_array_equal(snap(u[None, :])[0], u)


@pytest.mark.parametrize("gap", [0.5, -3.0, -40.0])  # best above, below and far below the mean
def test_acquisition_gradients_follow_the_closed_forms(gap):
    """Along a path x -> (mean(x), var(x)) with known derivatives, the chain rule through
    log EI and UCB must match central differences of the functions themselves."""
    ns = numpy_namespace()
    x = np.linspace(0.1, 0.9, 7)

    def moments(t):
        return np.sin(3 * t), 0.05 + t**2

    mean, var = moments(x)
    dmean, dvar = 3 * np.cos(3 * x)[:, None], (2 * x)[:, None]
    best = float(np.min(mean)) + gap
    eps = 1e-6
    for value, fn in [
        (log_ei_grad(mean, var, dmean, dvar, best), lambda t: log_ei(*moments(t), best, ns)),
        (ucb_grad(mean, var, dmean, dvar, 2.0), lambda t: ucb(*moments(t), 2.0, ns)),
    ]:
        v, g = value
        np.testing.assert_allclose(v, fn(x), rtol=1e-12)
        numeric = (fn(x + eps) - fn(x - eps)) / (2 * eps)
        np.testing.assert_allclose(g[:, 0], numeric, rtol=1e-5, atol=1e-6)


def test_random_fourier_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    X = rng.random((20, 2))
    draw = rff_sample(X, np.sin(5 * X[:, 0]), np.array([0.3, 0.4]), 1.0, 1e-4, rng)
    Xc = rng.random((5, 2))
    value, grad = rff_evaluate_grad(Xc, *draw, 1.0)
    f = lambda Z: rff_evaluate(Z, *draw, 1.0, numpy_namespace())  # noqa: E731
    np.testing.assert_allclose(value, f(Xc), atol=1e-12)
    for j in range(2):
        e = np.zeros(2)
        e[j] = 1e-6
        np.testing.assert_allclose(grad[:, j], (f(Xc + e) - f(Xc - e)) / 2e-6, atol=1e-5)


def test_the_gradient_step_reaches_the_peak_precisely_in_the_free_coordinates():
    rng = np.random.default_rng(0)
    peak = np.array([0.731, 0.2, 0.55])

    def score(U):
        return -((U - peak) ** 2).sum(axis=1)

    def gradient(U):
        return score(U), -2 * (U - peak)

    base = rng.random((64, 3))
    none = np.empty((0, 3))
    clip = lambda U: np.clip(U, 0, 1)  # noqa: E731
    rough, _ = optimize_acquisition(score, clip, base, none, none, np.random.default_rng(1))
    fine, val = optimize_acquisition(
        score, clip, base, none, none, np.random.default_rng(1), gradient=gradient
    )
    assert np.abs(fine - peak).max() < 1e-6 < np.abs(rough - peak).max()
    assert val > -1e-12
    # only coordinate 1 may move: the others keep what the candidates found
    part, _ = optimize_acquisition(
        score,
        clip,
        base,
        none,
        none,
        np.random.default_rng(1),
        gradient=gradient,
        free=np.array([1]),
    )
    np.testing.assert_allclose(part[[0, 2]], rough[[0, 2]])
    assert abs(part[1] - peak[1]) < 1e-6


def test_log_qei_is_the_expected_gain_over_the_pending_outcomes_too():
    """Against brute force: draw the pending outcomes and ``f(x)`` jointly from the GP
    posterior (a covariance built directly from the kernel) and average the improvement of
    ``f(x)`` on the best of the data and of the pending outcomes."""
    from asynchpo.surrogate._kernel import matern52

    rng = np.random.default_rng(0)
    hyper = Hyper(np.array([0.25, 0.4]), 1.3, 1e-3)
    X = rng.random((15, 2))
    y = np.sin(5 * X[:, 0]) + X[:, 1]
    post = Posterior(hyper, X, y)
    Xp = np.array([[0.93, 0.05], [0.88, 0.1], [0.3, 0.8]])
    Xc = np.array([[0.94, 0.06], [0.85, 0.0], [0.99, 0.2]])
    fantasy = post.fantasize(Xp)
    mean_p, factor = fantasy.pending_factor()
    mean, var, C = fantasy.to(numpy_namespace()).predict_joint(Xc)
    best = float(y.min())
    Z = rng.standard_normal((200_000, 3))
    bests = np.minimum(best, (mean_p + Z @ factor.T).min(axis=1))
    got = np.exp(log_qei(mean, var, C, Z, bests, numpy_namespace()))

    k = lambda A, B: matern52(A, B, hyper.lengthscales, hyper.outputscale, np)  # noqa: E731
    Kxx_inv = np.linalg.inv(k(X, X) + (hyper.noise + 1e-8) * np.eye(len(X)))
    for i, x in enumerate(Xc):
        A = np.vstack([Xp, x[None, :]])
        cov = k(A, A) - k(A, X) @ Kxx_inv @ k(X, A) + np.diag([hyper.noise] * 3 + [0.0])
        mu = k(A, X) @ Kxx_inv @ y
        draws = rng.multivariate_normal(mu, cov, size=400_000, method="cholesky")
        gain = np.maximum(np.minimum(best, draws[:, :3].min(axis=1)) - draws[:, 3], 0.0)
        np.testing.assert_allclose(got[i], gain.mean(), rtol=0.02)
    # next to a promising pending point the gain is smaller than plain EI says
    plain = np.exp(log_ei(*post.predict(Xc[:1]), best, numpy_namespace()))
    assert got[0] < 0.5 * plain[0]


def test_log_qei_without_pending_influence_is_log_ei(ns):
    rng = np.random.default_rng(1)
    xp = ns.xp
    mean, var = xp.asarray(rng.normal(size=6)), xp.asarray(rng.uniform(0.1, 1.0, 6))
    Z = xp.asarray(rng.standard_normal((16, 3)))
    no_effect = log_qei(mean, var, xp.zeros((3, 6)), Z, xp.full(16, 0.2), ns)
    np.testing.assert_allclose(
        ns.to_numpy(no_effect), ns.to_numpy(log_ei(mean, var, 0.2, ns)), rtol=1e-12
    )


def test_log_qei_gradient_follows_central_differences():
    ns = numpy_namespace()
    rng = np.random.default_rng(1)
    Z = rng.standard_normal((16, 3))

    # along a path x -> (mean, var, C)(x) with known derivatives, as for log EI
    def moments(t):
        C = np.stack([np.cos(t), t**2, np.sin(2 * t)])
        return np.sin(3 * t), 0.05 + t**2, C

    x = np.linspace(0.1, 0.9, 6)
    bests = np.minimum(-0.5, rng.normal(-0.5, 0.5, 16))
    m, v, C = moments(x)
    dC = np.stack([-np.sin(x), 2 * x, 2 * np.cos(2 * x)], axis=1)[:, :, None]
    value, grad = log_qei_grad(m, v, 3 * np.cos(3 * x)[:, None], (2 * x)[:, None], C, dC, Z, bests)
    f = lambda t: log_qei(*moments(t), Z, bests, ns)  # noqa: E731
    np.testing.assert_allclose(value, f(x), rtol=1e-12)
    np.testing.assert_allclose(grad[:, 0], (f(x + 1e-6) - f(x - 1e-6)) / 2e-6, rtol=1e-5, atol=1e-6)
