import numpy as np
import pytest
import torch

from drivesim.eval.frechet import GaussianStats, frechet_distance, frechet_from_features, gaussian_stats


def _stats(mean, cov):
    return GaussianStats(mean=np.asarray(mean, np.float64), cov=np.asarray(cov, np.float64), count=100)


def test_diagonal_gaussians_match_closed_form():
    rng = np.random.default_rng(0)
    d = 16
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)  # standard deviations
    expected = np.sum((m1 - m2) ** 2) + np.sum((s1 - s2) ** 2)
    got = frechet_distance(_stats(m1, np.diag(s1**2)), _stats(m2, np.diag(s2**2)))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_non_commuting_2x2_matches_closed_form():
    # For 2x2 M with non-negative eigenvalues: (tr sqrt M)^2 = tr M + 2 sqrt(det M).
    rng = np.random.default_rng(1)
    for _ in range(5):
        a, b = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
        ca, cb = a @ a.T + 0.1 * np.eye(2), b @ b.T + 0.1 * np.eye(2)
        m = ca @ cb
        tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
        mean_a, mean_b = rng.normal(size=2), rng.normal(size=2)
        expected = np.sum((mean_a - mean_b) ** 2) + np.trace(ca) + np.trace(cb) - 2 * tr_sqrt
        assert frechet_distance(_stats(mean_a, ca), _stats(mean_b, cb)) == pytest.approx(expected, rel=1e-8)


def test_identical_and_symmetric_and_rank_deficient():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 32))  # n < d: singular covariance
    y = rng.normal(size=(12, 32)) + 0.5
    assert frechet_from_features(x, x) == pytest.approx(0.0, abs=1e-6)
    dxy, dyx = frechet_from_features(x, y), frechet_from_features(y, x)
    assert np.isfinite(dxy) and dxy > 0
    assert dxy == pytest.approx(dyx, rel=1e-6)


def test_stats_match_numpy_and_accept_torch():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 4))
    s = gaussian_stats(torch.from_numpy(x).float())
    assert s.count == 50
    np.testing.assert_allclose(s.mean, x.mean(0), atol=1e-6)
    np.testing.assert_allclose(s.cov, np.cov(x, rowvar=False), atol=1e-5)


def test_distance_grows_with_shift():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 8))
    y = rng.normal(size=(400, 8))
    values = [frechet_from_features(x, y + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert values == sorted(values)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros(5), "shape"),
        (np.zeros((1, 3)), "at least 2"),
        (np.zeros((4, 3), np.int64), "floating"),
        (np.full((4, 3), np.nan), "NaN"),
        ([[1.0, 2.0]], "numpy array"),
    ],
)
def test_bad_features_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        frechet_from_features(bad, np.zeros((4, 3)))


def test_dimension_mismatch_raises():
    with pytest.raises(ValueError, match="feature dimensions differ"):
        frechet_from_features(np.random.rand(5, 3), np.random.rand(5, 4))
